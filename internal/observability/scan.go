package observability

import (
	"errors"
	"fmt"
	"go/ast"
	"go/parser"
	"go/token"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
)

// Metric is a metric a component registers, as the source declares it.
type Metric struct {
	// Name is the full metric name (Namespace_Subsystem_Name).
	Name string
	// Type is counter, gauge, histogram or summary.
	Type string
	// Labels are the variable label names, in declaration order.
	Labels []string
	// Help is the help text.
	Help string
	// Pos is file:line of the declaration, relative to the scanned root.
	Pos string
}

// constructors maps client_golang's constructors to the metric type.
var constructors = map[string]string{
	"NewCounter": "counter", "NewCounterVec": "counter", "NewCounterFunc": "counter",
	"NewGauge": "gauge", "NewGaugeVec": "gauge", "NewGaugeFunc": "gauge",
	"NewHistogram": "histogram", "NewHistogramVec": "histogram",
	"NewSummary": "summary", "NewSummaryVec": "summary",
}

// valueTypes maps the ValueType of a const metric to the metric type.
var valueTypes = map[string]string{"CounterValue": "counter", "GaugeValue": "gauge", "UntypedValue": "untyped"}

// skipDirs are not components: the benchmark harness swaps a finer-grained
// copy of a provisioner histogram in for its measurements.
var skipDirs = map[string]bool{"internal/bench": true, "testdata": true}

// ScanMetrics finds every metric registered by the Go code under root's
// cmd/ and internal/ (test files excluded), by reading the source: the
// Opts literals passed to client_golang's constructors
// (prometheus.NewCounterVec(prometheus.CounterOpts{Name: ...}, []string{...}))
// and prometheus.NewDesc calls, whose type comes from the const metrics
// built from them. A metric whose name, help or labels are not literals (or
// constants of the same package) is an error naming file:line, so a new
// metric is never silently missed.
func ScanMetrics(root string) ([]Metric, error) {
	fset := token.NewFileSet()
	byDir := map[string][]*ast.File{}
	for _, top := range []string{"cmd", "internal"} {
		if _, err := os.Stat(filepath.Join(root, top)); errors.Is(err, fs.ErrNotExist) {
			continue
		}
		err := filepath.WalkDir(filepath.Join(root, top), func(p string, d fs.DirEntry, err error) error {
			if err != nil {
				return err
			}
			rel, _ := filepath.Rel(root, p)
			rel = filepath.ToSlash(rel)
			if d.IsDir() {
				if skipDirs[rel] || d.Name() == "testdata" {
					return filepath.SkipDir
				}
				return nil
			}
			if !strings.HasSuffix(p, ".go") || strings.HasSuffix(p, "_test.go") {
				return nil
			}
			f, err := parser.ParseFile(fset, p, nil, parser.SkipObjectResolution)
			if err != nil {
				return err
			}
			byDir[filepath.Dir(p)] = append(byDir[filepath.Dir(p)], f)
			return nil
		})
		if err != nil {
			return nil, err
		}
	}
	var out []Metric
	var errs []string
	for _, files := range byDir {
		ms, es := scanPackage(root, fset, files)
		out = append(out, ms...)
		errs = append(errs, es...)
	}
	if len(errs) > 0 {
		sort.Strings(errs)
		return nil, fmt.Errorf("scanning metrics:\n  %s", strings.Join(errs, "\n  "))
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	// One metric may be declared in several places (the same name in two
	// registries); they must agree.
	var merged []Metric
	for _, m := range out {
		if n := len(merged); n > 0 && merged[n-1].Name == m.Name {
			p := merged[n-1]
			if p.Type != m.Type || strings.Join(p.Labels, ",") != strings.Join(m.Labels, ",") {
				return nil, fmt.Errorf("metric %s declared twice, differently: %s (%s %v) and %s (%s %v)", m.Name, p.Pos, p.Type, p.Labels, m.Pos, m.Type, m.Labels)
			}
			continue
		}
		merged = append(merged, m)
	}
	return merged, nil
}

// scanPackage scans the files of one package.
func scanPackage(root string, fset *token.FileSet, files []*ast.File) ([]Metric, []string) {
	consts := map[string]string{}
	for _, f := range files {
		for _, d := range f.Decls {
			g, ok := d.(*ast.GenDecl)
			if !ok || g.Tok != token.CONST {
				continue
			}
			for _, s := range g.Specs {
				vs := s.(*ast.ValueSpec)
				for i, n := range vs.Names {
					if i < len(vs.Values) {
						if v, ok := stringLit(vs.Values[i], nil); ok {
							consts[n.Name] = v
						}
					}
				}
			}
		}
	}
	pos := func(n ast.Node) string {
		p := fset.Position(n.Pos())
		rel, err := filepath.Rel(root, p.Filename)
		if err != nil {
			rel = p.Filename
		}
		return fmt.Sprintf("%s:%d", filepath.ToSlash(rel), p.Line)
	}
	var out []Metric
	var errs []string
	descs := map[string]*Metric{} // variable name -> desc
	descTypes := map[string]string{}
	for _, f := range files {
		ast.Inspect(f, func(n ast.Node) bool {
			switch n := n.(type) {
			case *ast.ValueSpec: // var descX = prometheus.NewDesc(...)
				for i, v := range n.Values {
					if m, ok, err := newDesc(v, consts, pos); ok && i < len(n.Names) {
						if err != "" {
							errs = append(errs, err)
						} else {
							descs[n.Names[i].Name] = m
						}
					}
				}
			case *ast.AssignStmt: // descX := prometheus.NewDesc(...)
				for i, v := range n.Rhs {
					if m, ok, err := newDesc(v, consts, pos); ok && i < len(n.Lhs) {
						id, isIdent := n.Lhs[i].(*ast.Ident)
						switch {
						case err != "":
							errs = append(errs, err)
						case isIdent:
							descs[id.Name] = m
						default:
							errs = append(errs, pos(v)+": prometheus.NewDesc assigned to something other than a variable")
						}
					}
				}
			case *ast.CallExpr:
				fn := selectorName(n.Fun, "prometheus", "promauto")
				switch {
				case constructors[fn] != "":
					m, err := fromOpts(n, constructors[fn], consts, pos)
					if err != "" {
						errs = append(errs, err)
					} else {
						out = append(out, m)
					}
				case fn == "MustNewConstMetric" || fn == "NewConstMetric" || fn == "MustNewConstHistogram" || fn == "NewConstHistogram" ||
					fn == "MustNewConstSummary" || fn == "NewConstSummary":
					id, ok := n.Args[0].(*ast.Ident)
					if !ok {
						errs = append(errs, pos(n)+": "+fn+" with a desc that is not a variable")
						return true
					}
					typ := ""
					switch {
					case strings.Contains(fn, "Histogram"):
						typ = "histogram"
					case strings.Contains(fn, "Summary"):
						typ = "summary"
					case len(n.Args) > 1:
						typ = valueTypes[selectorName(n.Args[1], "prometheus")]
					}
					if typ == "" {
						errs = append(errs, pos(n)+": "+fn+": cannot tell the value type")
						return true
					}
					descTypes[id.Name] = typ
				}
			}
			return true
		})
	}
	for name, m := range descs {
		typ, ok := descTypes[name]
		if !ok {
			errs = append(errs, fmt.Sprintf("%s: desc %s (%s) is never used in a const metric, so its type is unknown", m.Pos, name, m.Name))
			continue
		}
		m.Type = typ
		out = append(out, *m)
	}
	return out, errs
}

// newDesc reads a prometheus.NewDesc(name, help, labels, constLabels) call.
func newDesc(e ast.Expr, consts map[string]string, pos func(ast.Node) string) (*Metric, bool, string) {
	call, ok := e.(*ast.CallExpr)
	if !ok || selectorName(call.Fun, "prometheus") != "NewDesc" {
		return nil, false, ""
	}
	if len(call.Args) < 3 {
		return nil, true, pos(call) + ": NewDesc with fewer than 3 arguments"
	}
	name, ok := stringLit(call.Args[0], consts)
	if !ok {
		return nil, true, pos(call) + ": NewDesc name is not a string literal or constant"
	}
	help, _ := stringLit(call.Args[1], consts)
	labels, ok := stringSlice(call.Args[2], consts)
	if !ok {
		return nil, true, pos(call) + ": NewDesc labels are not a []string literal or nil"
	}
	return &Metric{Name: name, Help: help, Labels: labels, Pos: pos(call)}, true, ""
}

// fromOpts reads a constructor call whose first argument is an Opts
// literal and, for vectors, whose second is the label names.
func fromOpts(call *ast.CallExpr, typ string, consts map[string]string, pos func(ast.Node) string) (Metric, string) {
	if len(call.Args) == 0 {
		return Metric{}, pos(call) + ": constructor without options"
	}
	lit, ok := call.Args[0].(*ast.CompositeLit)
	if !ok {
		return Metric{}, pos(call) + ": metric options are not a literal (write prometheus.XOpts{Name: ...} in the call)"
	}
	fields := map[string]string{}
	for _, el := range lit.Elts {
		kv, ok := el.(*ast.KeyValueExpr)
		if !ok {
			continue
		}
		key, _ := kv.Key.(*ast.Ident)
		if key == nil {
			continue
		}
		switch key.Name {
		case "Namespace", "Subsystem", "Name", "Help":
			v, ok := stringLit(kv.Value, consts)
			if !ok {
				return Metric{}, fmt.Sprintf("%s: %s is not a string literal or constant", pos(kv), key.Name)
			}
			fields[key.Name] = v
		}
	}
	if fields["Name"] == "" {
		return Metric{}, pos(call) + ": metric without a Name"
	}
	name := fields["Name"]
	if s := fields["Subsystem"]; s != "" {
		name = s + "_" + name
	}
	if ns := fields["Namespace"]; ns != "" {
		name = ns + "_" + name
	}
	var labels []string
	if strings.HasSuffix(selectorName(call.Fun, "prometheus", "promauto"), "Vec") {
		if len(call.Args) < 2 {
			return Metric{}, pos(call) + ": vector without label names"
		}
		labels, ok = stringSlice(call.Args[1], consts)
		if !ok {
			return Metric{}, pos(call) + ": label names are not a []string literal or nil"
		}
	}
	return Metric{Name: name, Type: typ, Help: fields["Help"], Labels: labels, Pos: pos(call)}, ""
}

// selectorName returns Sel of pkg.Sel when pkg is one of pkgs.
func selectorName(e ast.Expr, pkgs ...string) string {
	sel, ok := e.(*ast.SelectorExpr)
	if !ok {
		return ""
	}
	x, ok := sel.X.(*ast.Ident)
	if !ok {
		return ""
	}
	for _, p := range pkgs {
		if x.Name == p {
			return sel.Sel.Name
		}
	}
	return ""
}

// stringLit evaluates a string literal, a constant of the package, or a
// concatenation of those.
func stringLit(e ast.Expr, consts map[string]string) (string, bool) {
	switch e := e.(type) {
	case *ast.BasicLit:
		if e.Kind != token.STRING {
			return "", false
		}
		s, err := strconv.Unquote(e.Value)
		return s, err == nil
	case *ast.Ident:
		s, ok := consts[e.Name]
		return s, ok
	case *ast.BinaryExpr:
		if e.Op != token.ADD {
			return "", false
		}
		a, ok1 := stringLit(e.X, consts)
		b, ok2 := stringLit(e.Y, consts)
		return a + b, ok1 && ok2
	case *ast.ParenExpr:
		return stringLit(e.X, consts)
	}
	return "", false
}

// stringSlice evaluates nil or a []string literal.
func stringSlice(e ast.Expr, consts map[string]string) ([]string, bool) {
	if id, ok := e.(*ast.Ident); ok && id.Name == "nil" {
		return nil, true
	}
	lit, ok := e.(*ast.CompositeLit)
	if !ok {
		return nil, false
	}
	var out []string
	for _, el := range lit.Elts {
		s, ok := stringLit(el, consts)
		if !ok {
			return nil, false
		}
		out = append(out, s)
	}
	return out, true
}
