package observability

import (
	"fmt"
	"sort"
	"strings"

	"sigs.k8s.io/yaml"

	"github.com/bosun-platform/bosun/internal/render"
)

// RulesLabel marks a ConfigMap whose data keys are Prometheus rule files
// (value "true"), as a rules-loading sidecar finds them.
const RulesLabel = "prometheus-rules"

// RuleFile is a Prometheus rule file: groups of alerting and recording
// rules, in the format of `promtool check rules`.
type RuleFile struct {
	Groups []RuleGroup `json:"groups"`
}

// RuleGroup is one group of rules.
type RuleGroup struct {
	Name     string `json:"name"`
	Interval string `json:"interval,omitempty"`
	Rules    []Rule `json:"rules"`
}

// Rule is an alerting rule (Alert set) or a recording rule (Record set).
type Rule struct {
	Alert         string            `json:"alert,omitempty"`
	Record        string            `json:"record,omitempty"`
	Expr          string            `json:"expr"`
	For           string            `json:"for,omitempty"`
	KeepFiringFor string            `json:"keep_firing_for,omitempty"`
	Labels        map[string]string `json:"labels,omitempty"`
	Annotations   map[string]string `json:"annotations,omitempty"`
}

// RenderedRules is a rule file found in a cluster's rendered manifests.
type RenderedRules struct {
	// Source names the object (and data key) it came from, e.g.
	// "ConfigMap monitoring/bosun-alert-rules bosun.rules.yaml".
	Source string
	// Text is the rule file as rendered (a ConfigMap's data), or the
	// PrometheusRule's spec as YAML.
	Text string
	// File is Text parsed.
	File RuleFile
}

// FindRules returns the rule files in a cluster's rendered objects:
// every .yaml/.yml key of the ConfigMaps labelled prometheus-rules=true
// and the spec of every PrometheusRule. Rule files are parsed strictly: an
// unknown field (a misspelt "expr") is an error naming the object.
func FindRules(res *render.Result) ([]RenderedRules, error) {
	var out []RenderedRules
	for _, o := range res.Objects {
		u := o.Object
		source := fmt.Sprintf("%s %s/%s", u.GetKind(), u.GetNamespace(), u.GetName())
		switch {
		case u.GetKind() == "ConfigMap" && u.GetLabels()[RulesLabel] == "true":
			data, _, _ := unstructuredStringMap(u.Object, "data")
			keys := make([]string, 0, len(data))
			for k := range data {
				keys = append(keys, k)
			}
			sort.Strings(keys)
			for _, k := range keys {
				if !strings.HasSuffix(k, ".yaml") && !strings.HasSuffix(k, ".yml") {
					continue
				}
				r, err := parseRules(source+" "+k, data[k])
				if err != nil {
					return nil, err
				}
				out = append(out, r)
			}
		case u.GetKind() == "PrometheusRule":
			spec, ok := u.Object["spec"]
			if !ok {
				return nil, fmt.Errorf("%s (%s:%d): no spec", source, o.File, o.Line)
			}
			b, err := yaml.Marshal(spec)
			if err != nil {
				return nil, fmt.Errorf("%s: %w", source, err)
			}
			r, err := parseRules(source, string(b))
			if err != nil {
				return nil, err
			}
			out = append(out, r)
		}
	}
	return out, nil
}

func parseRules(source, text string) (RenderedRules, error) {
	var f RuleFile
	if err := yaml.UnmarshalStrict([]byte(text), &f); err != nil {
		return RenderedRules{}, fmt.Errorf("%s: not a rule file: %w", source, err)
	}
	for _, g := range f.Groups {
		for i, r := range g.Rules {
			if (r.Alert == "") == (r.Record == "") {
				return RenderedRules{}, fmt.Errorf("%s: group %s rule %d: expected exactly one of alert and record", source, g.Name, i+1)
			}
		}
	}
	return RenderedRules{Source: source, Text: text, File: f}, nil
}

func unstructuredStringMap(obj map[string]any, field string) (map[string]string, bool, error) {
	raw, ok := obj[field].(map[string]any)
	if !ok {
		return nil, false, nil
	}
	out := make(map[string]string, len(raw))
	for k, v := range raw {
		s, ok := v.(string)
		if !ok {
			return nil, true, fmt.Errorf("%s.%s: expected a string", field, k)
		}
		out[k] = s
	}
	return out, true, nil
}
