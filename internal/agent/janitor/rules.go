package janitor

import (
	"errors"
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/google/cel-go/cel"
	"sigs.k8s.io/yaml"
)

// RulesFile is the on-disk form of the rules: kube-janitor's shape with CEL
// instead of a Python-like expression language.
//
//	rules:
//	- id: temporary-pr-namespaces
//	  resources: [namespaces]
//	  expression: object.metadata.name.startsWith("pr-")
//	  ttl: 2d
//	- id: unused-pvcs
//	  resources: [persistentvolumeclaims]
//	  expression: context.pvcIsNotMounted
//	  ttl: 7d
type RulesFile struct {
	Rules []RuleSpec `json:"rules"`
}

// RuleSpec is one rule as written.
type RuleSpec struct {
	// ID names the rule in events and metrics.
	ID string `json:"id"`
	// Resources are plural resource names ("deployments"); "*" matches all.
	Resources []string `json:"resources"`
	// Expression is CEL over `object` (the object as a map), `resource`
	// (its plural name) and `context` (facts the janitor computes, such as
	// pvcIsNotMounted).
	Expression string `json:"expression"`
	// TTL is counted from the object's creation.
	TTL string `json:"ttl"`
}

// Rule is a compiled rule.
type Rule struct {
	ID        string
	Resources map[string]bool
	TTL       time.Duration
	program   cel.Program
	// needsPVCContext tells the janitor to watch pods.
	needsPVCContext bool
}

// LoadRules reads and compiles a rules file.
func LoadRules(path string) ([]Rule, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("reading rules, %w", err)
	}
	var f RulesFile
	if err := yaml.UnmarshalStrict(data, &f); err != nil {
		return nil, fmt.Errorf("parsing rules %s, %w", path, err)
	}
	return CompileRules(f.Rules)
}

// CompileRules validates and compiles rules; every problem is reported with
// the rule's id.
func CompileRules(specs []RuleSpec) ([]Rule, error) {
	env, err := cel.NewEnv(
		cel.Variable("object", cel.MapType(cel.StringType, cel.DynType)),
		cel.Variable("resource", cel.StringType),
		cel.Variable("context", cel.MapType(cel.StringType, cel.DynType)),
	)
	if err != nil {
		return nil, fmt.Errorf("creating CEL environment, %w", err)
	}
	var out []Rule
	var errs []error
	seen := map[string]bool{}
	for i, s := range specs {
		where := fmt.Sprintf("rule %d (%s)", i+1, s.ID)
		if s.ID == "" || seen[s.ID] {
			errs = append(errs, fmt.Errorf("%s: id must be set and unique", where))
			continue
		}
		seen[s.ID] = true
		if len(s.Resources) == 0 {
			errs = append(errs, fmt.Errorf("%s: resources must name at least one resource", where))
			continue
		}
		ttl, err := ParseTTL(s.TTL)
		if err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", where, err))
			continue
		}
		ast, iss := env.Compile(s.Expression)
		if iss.Err() != nil {
			errs = append(errs, fmt.Errorf("%s: expression: %w", where, iss.Err()))
			continue
		}
		if ast.OutputType() != cel.BoolType && ast.OutputType() != cel.DynType {
			errs = append(errs, fmt.Errorf("%s: expression must be a bool, is %s", where, ast.OutputType()))
			continue
		}
		prg, err := env.Program(ast, cel.CostLimit(100000))
		if err != nil {
			errs = append(errs, fmt.Errorf("%s: expression: %w", where, err))
			continue
		}
		res := map[string]bool{}
		for _, r := range s.Resources {
			res[strings.ToLower(r)] = true
		}
		out = append(out, Rule{ID: s.ID, Resources: res, TTL: ttl, program: prg,
			needsPVCContext: strings.Contains(s.Expression, "pvcIsNot")})
	}
	return out, errors.Join(errs...)
}

// applies reports whether the rule covers the resource.
func (r Rule) applies(resource string) bool { return r.Resources["*"] || r.Resources[resource] }

// Matches evaluates the rule's expression; an evaluation error (a missing
// field, say) is returned and counts as no match.
func (r Rule) Matches(object map[string]any, resource string, context map[string]any) (bool, error) {
	out, _, err := r.program.Eval(map[string]any{"object": object, "resource": resource, "context": context})
	if err != nil {
		return false, fmt.Errorf("rule %s, %w", r.ID, err)
	}
	b, ok := out.Value().(bool)
	if !ok {
		return false, fmt.Errorf("rule %s: expression returned %T, not bool", r.ID, out.Value())
	}
	return b, nil
}
