package janitor

import (
	"strings"
	"testing"
)

func TestCompileRules(t *testing.T) {
	tests := []struct {
		name    string
		specs   []RuleSpec
		wantErr string
	}{
		{"valid", []RuleSpec{{ID: "a", Resources: []string{"deployments"}, Expression: `object.metadata.name.startsWith("pr-")`, TTL: "2d"}}, ""},
		{"missing id", []RuleSpec{{Resources: []string{"deployments"}, Expression: "true", TTL: "2d"}}, "id must be set"},
		{"duplicate id", []RuleSpec{{ID: "a", Resources: []string{"x"}, Expression: "true", TTL: "1h"}, {ID: "a", Resources: []string{"x"}, Expression: "true", TTL: "1h"}}, "unique"},
		{"no resources", []RuleSpec{{ID: "a", Expression: "true", TTL: "2d"}}, "resources"},
		{"bad ttl", []RuleSpec{{ID: "a", Resources: []string{"x"}, Expression: "true", TTL: "soon"}}, "ttl"},
		{"syntax error", []RuleSpec{{ID: "a", Resources: []string{"x"}, Expression: "object.metadata.name ==", TTL: "1h"}}, "expression"},
		{"not a bool", []RuleSpec{{ID: "a", Resources: []string{"x"}, Expression: `"yes"`, TTL: "1h"}}, "must be a bool"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := CompileRules(tt.specs)
			if tt.wantErr == "" {
				if err != nil {
					t.Fatalf("unexpected error: %v", err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("error %v, want one containing %q", err, tt.wantErr)
			}
		})
	}
}

func TestRuleMatches(t *testing.T) {
	rules, err := CompileRules([]RuleSpec{
		{ID: "pr", Resources: []string{"deployments"}, Expression: `object.metadata.name.startsWith("pr-")`, TTL: "2d"},
		{ID: "pvc", Resources: []string{"persistentvolumeclaims"}, Expression: `context.pvcIsNotMounted`, TTL: "7d"},
		{ID: "label", Resources: []string{"*"}, Expression: `has(object.metadata.labels) && object.metadata.labels["env"] == "temp"`, TTL: "1h"},
	})
	if err != nil {
		t.Fatal(err)
	}
	obj := func(name string, labels map[string]any) map[string]any {
		md := map[string]any{"name": name}
		if labels != nil {
			md["labels"] = labels
		}
		return map[string]any{"metadata": md}
	}
	tests := []struct {
		rule     int
		object   map[string]any
		resource string
		context  map[string]any
		want     bool
	}{
		{0, obj("pr-42", nil), "deployments", nil, true},
		{0, obj("main", nil), "deployments", nil, false},
		{1, obj("data", nil), "persistentvolumeclaims", map[string]any{"pvcIsNotMounted": true}, true},
		{1, obj("data", nil), "persistentvolumeclaims", map[string]any{"pvcIsNotMounted": false}, false},
		{2, obj("x", map[string]any{"env": "temp"}), "configmaps", nil, true},
		{2, obj("x", nil), "configmaps", nil, false},
	}
	for i, tt := range tests {
		ctx := tt.context
		if ctx == nil {
			ctx = map[string]any{}
		}
		got, err := rules[tt.rule].Matches(tt.object, tt.resource, ctx)
		if err != nil {
			t.Errorf("case %d: %v", i, err)
			continue
		}
		if got != tt.want {
			t.Errorf("case %d: rule %s = %v, want %v", i, rules[tt.rule].ID, got, tt.want)
		}
	}
}
