// Package lint checks a fleet and its rendered manifests against the
// lessons in docs/lessons.md. Every rule is named after the lesson it encodes
// (L04-equal-instance-sizes), reports file:line, a message and a hint, and
// can be suppressed for one cluster or one object, always with a reason.
package lint

import (
	"context"
	"fmt"
	"sort"
	"strings"

	"github.com/bosun-platform/bosun/internal/fleet"
	"github.com/bosun-platform/bosun/internal/render"
)

// Severity of a finding. Errors fail `bosun lint`; warnings do not.
type Severity string

// Severities.
const (
	SeverityError   Severity = "error"
	SeverityWarning Severity = "warning"
)

// SuppressAnnotationPrefix starts the annotation that suppresses a rule for
// one object: lint.bosun.dev/<rule-name>: "<reason>".
const SuppressAnnotationPrefix = "lint.bosun.dev/"

// Finding is one problem found by a rule.
type Finding struct {
	// Rule is the rule's name, e.g. L04-equal-instance-sizes.
	Rule string `json:"rule"`
	// Lesson is the lesson ID, e.g. L04 (empty for rules about lint itself).
	Lesson string `json:"lesson,omitempty"`
	// Severity is error or warning.
	Severity Severity `json:"severity"`
	// Cluster is the cluster the finding is about (empty for fleet-wide ones).
	Cluster string `json:"cluster,omitempty"`
	// File is relative to the fleet directory.
	File string `json:"file"`
	// Line is 1-based; 0 when the finding concerns the whole file.
	Line int `json:"line,omitempty"`
	// Rendered is true when Line counts lines of the rendered output of File
	// for Cluster (as `bosun render --out` writes it), not of the template.
	Rendered bool `json:"rendered,omitempty"`
	// Object is kind/namespace/name of the object concerned, if any.
	Object string `json:"object,omitempty"`
	// Message says what is wrong.
	Message string `json:"message"`
	// Hint says how to fix it.
	Hint string `json:"hint,omitempty"`
	// Suppressed is set when a suppression with a reason silences the finding.
	Suppressed bool `json:"suppressed,omitempty"`
	// Reason is the suppression's reason.
	Reason string `json:"reason,omitempty"`

	obj *render.Object
}

// Location returns file:line, marked when the line is in rendered output.
func (f Finding) Location() string {
	loc := f.File
	if f.Line > 0 {
		loc = fmt.Sprintf("%s:%d", f.File, f.Line)
	}
	if f.Rendered {
		loc += " (rendered)"
	}
	return loc
}

// Rule is one check.
type Rule struct {
	// Name is the lesson ID and a slug, e.g. L05-max-pools-per-group.
	Name string
	// Severity is the default severity of its findings.
	Severity Severity
	// Description says what the rule checks.
	Description string
	// Hint says how to fix a finding.
	Hint string

	cluster func(*clusterContext, *Rule)
	fleet   func(*fleetContext, *Rule)
	// cel is the rule's form as a ValidatingAdmissionPolicy, for rules
	// that CEL can express (admission.go); nil for the others.
	cel *celForm
}

// Lesson returns the lesson ID of the rule (the part before the first '-').
func (r *Rule) Lesson() string {
	id, _, _ := strings.Cut(r.Name, "-")
	if len(id) == 3 && id[0] == 'L' {
		return id
	}
	return ""
}

// Report is the result of a lint run.
type Report struct {
	// Findings are sorted by cluster, file, line and rule; suppressed ones
	// included (with Suppressed set).
	Findings []Finding `json:"findings"`
	// Errors counts unsuppressed errors.
	Errors int `json:"errors"`
	// Warnings counts unsuppressed warnings.
	Warnings int `json:"warnings"`
	// Suppressed counts suppressed findings.
	Suppressed int `json:"suppressed"`
}

// Options choose what to lint.
type Options struct {
	// Clusters limits the findings to these cluster IDs (default: all).
	// Every cluster is still rendered, since fleet-wide rules compare them.
	Clusters []string
}

// Run renders every cluster and runs every rule. Once ctx is done it stops
// within a template function call, a write or a cluster's rules, and
// returns an error wrapping ctx's cause.
func Run(ctx context.Context, f *fleet.Fleet, opts Options) (*Report, error) {
	for _, id := range opts.Clusters {
		if f.Cluster(id) == nil {
			return nil, fmt.Errorf("cluster %q: not in fleet %s", id, f.Dir)
		}
	}
	r, err := render.New(f)
	if err != nil {
		return nil, err
	}
	results, err := r.All(ctx)
	if err != nil {
		return nil, err
	}
	return check(ctx, f, results, opts.Clusters)
}

// Check runs the rules over the rendered clusters of f (all of them, for
// the fleet-wide rules) and keeps the findings about the clusters in only
// (all when empty).
func Check(f *fleet.Fleet, results []*render.Result, only []string) *Report {
	rep, _ := check(context.Background(), f, results, only)
	return rep
}

// check is Check, stopping between clusters once ctx is done.
func check(ctx context.Context, f *fleet.Fleet, results []*render.Result, only []string) (*Report, error) {
	keep := func(id string) bool {
		if len(only) == 0 {
			return true
		}
		for _, o := range only {
			if o == id {
				return true
			}
		}
		return false
	}
	var findings []Finding
	rules := Rules()
	merged := map[string]*fleet.Cluster{}
	for _, res := range results {
		merged[res.Cluster.ID] = res.Cluster
		if !keep(res.Cluster.ID) {
			continue
		}
		if ctx.Err() != nil {
			return nil, fmt.Errorf("linting stopped, %w", context.Cause(ctx))
		}
		cctx := newClusterContext(f, res)
		for i := range rules {
			if rules[i].cluster != nil {
				rules[i].cluster(cctx, &rules[i])
			}
		}
		cctx.checkSuppressionReasons()
		findings = append(findings, cctx.suppress(cctx.findings)...)
	}
	fctx := &fleetContext{fleet: f, merged: merged}
	for i := range rules {
		if rules[i].fleet != nil {
			rules[i].fleet(fctx, &rules[i])
		}
	}
	for _, fd := range fctx.findings {
		if !keep(fd.Cluster) {
			continue
		}
		if c := f.Cluster(fd.Cluster); c != nil {
			fd = suppressByCluster(c, fd)
		}
		findings = append(findings, fd)
	}
	return newReport(findings), nil
}

func newReport(findings []Finding) *Report {
	sort.SliceStable(findings, func(i, j int) bool {
		a, b := findings[i], findings[j]
		if a.Cluster != b.Cluster {
			return a.Cluster < b.Cluster
		}
		if a.File != b.File {
			return a.File < b.File
		}
		if a.Line != b.Line {
			return a.Line < b.Line
		}
		if a.Rule != b.Rule {
			return a.Rule < b.Rule
		}
		return a.Message < b.Message
	})
	rep := &Report{Findings: findings}
	if rep.Findings == nil {
		rep.Findings = []Finding{}
	}
	for _, f := range findings {
		switch {
		case f.Suppressed:
			rep.Suppressed++
		case f.Severity == SeverityError:
			rep.Errors++
		default:
			rep.Warnings++
		}
	}
	return rep
}

// ruleMatches reports whether a suppression naming name covers rule: the
// full rule name or its lesson ID.
func ruleMatches(name string, rule string) bool {
	if name == rule {
		return true
	}
	id, _, _ := strings.Cut(rule, "-")
	return name == id
}

func suppressByCluster(c *fleet.Cluster, f Finding) Finding {
	for _, s := range c.Lint.Suppress {
		if ruleMatches(s.Rule, f.Rule) && strings.TrimSpace(s.Reason) != "" {
			f.Suppressed, f.Reason = true, strings.TrimSpace(s.Reason)
			return f
		}
	}
	return f
}

func (ctx *clusterContext) suppress(in []Finding) []Finding {
	for i, f := range in {
		in[i] = suppressByCluster(ctx.cluster, f)
		if in[i].Suppressed || f.obj == nil {
			continue
		}
		for key, reason := range f.obj.Object.GetAnnotations() {
			name, ok := strings.CutPrefix(key, SuppressAnnotationPrefix)
			if ok && ruleMatches(name, f.Rule) && strings.TrimSpace(reason) != "" {
				in[i].Suppressed, in[i].Reason = true, strings.TrimSpace(reason)
			}
		}
	}
	return in
}

// checkSuppressionReasons reports object suppressions without a reason:
// they do not count, and saying so beats silently ignoring them.
func (ctx *clusterContext) checkSuppressionReasons() {
	rule := &Rule{Name: "suppression-needs-reason", Severity: SeverityError,
		Hint: "write why the rule does not apply as the annotation's value"}
	for _, o := range ctx.res.Objects {
		for key, reason := range o.Object.GetAnnotations() {
			if name, ok := strings.CutPrefix(key, SuppressAnnotationPrefix); ok && strings.TrimSpace(reason) == "" {
				ctx.object(rule, o, "annotation %s suppresses %s without a reason; it is ignored", key, name)
			}
		}
	}
}
