package fleet

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"text/template"

	"filippo.io/age"
	"github.com/Masterminds/sprig/v3"
	"gopkg.in/yaml.v3"
)

// Well-known paths inside a fleet directory.
const (
	SettingsFile  = "fleet.yaml"
	DefaultsFile  = "defaults.yaml"
	DeletionsFile = "manifests/deletions.yaml"
	ClustersDir   = "clusters"
	ManifestsDir  = "manifests"
	SnippetsDir   = "snippets"
	VarsDir       = "vars"
	// CommonVarsFile holds vars for every cluster; vars/<id>.yaml are
	// deep-merged over it.
	CommonVarsFile = "vars/_all.yaml"
)

var (
	idPattern       = regexp.MustCompile(`^[a-z0-9]([-a-z0-9]*[a-z0-9])?$`)
	versionPattern  = regexp.MustCompile(`^1\.[0-9]{1,2}$`)
	instancePattern = regexp.MustCompile(`^[a-z][a-z0-9-]*\.[a-z0-9]+$`)
	lineInError     = regexp.MustCompile(`^line ([0-9]+): (.*)$`)
)

// Load reads the fleet in dir. Every problem found is reported, each with
// its file and line, in one *LoadError.
func Load(dir string) (*Fleet, error) {
	return LoadFS(os.DirFS(dir), dir)
}

// LoadFS reads a fleet from fsys; dir is only recorded in the result.
func LoadFS(fsys fs.FS, dir string) (*Fleet, error) {
	l := &loader{fsys: fsys, f: &Fleet{Dir: dir, Vars: map[string]map[string]any{}}}
	if err := l.load(); err != nil {
		return nil, err
	}
	if len(l.ps.list) > 0 {
		sort.SliceStable(l.ps.list, func(i, j int) bool {
			a, b := l.ps.list[i], l.ps.list[j]
			if a.File != b.File {
				return a.File < b.File
			}
			return a.Line < b.Line
		})
		return nil, &LoadError{Problems: l.ps.list}
	}
	return l.f, nil
}

type loader struct {
	fsys fs.FS
	f    *Fleet
	ps   problems
}

func (l *loader) load() error {
	if _, err := fs.Stat(l.fsys, ClustersDir); err != nil {
		return fmt.Errorf("reading fleet %s: expected a %s/ directory, %w", l.f.Dir, ClustersDir, err)
	}
	if err := l.loadSettings(); err != nil {
		return err
	}
	if err := l.loadClusters(); err != nil {
		return err
	}
	var err error
	if l.f.Defaults, err = l.optionalFile(DefaultsFile); err != nil {
		return err
	}
	if l.f.Deletions, err = l.optionalFile(DeletionsFile); err != nil {
		return err
	}
	if err := l.loadManifests(); err != nil {
		return err
	}
	if err := l.loadSnippets(); err != nil {
		return err
	}
	if err := l.loadVars(); err != nil {
		return err
	}
	l.checkTemplates()
	return nil
}

func (l *loader) loadSettings() error {
	data, err := fs.ReadFile(l.fsys, SettingsFile)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("reading %s, %w", SettingsFile, err)
	}
	l.decodeStrict(SettingsFile, data, &l.f.Settings)
	if l.f.Settings.Lint.MinSpotInstanceTypes < 0 {
		l.ps.add(SettingsFile, 0, "lint.minSpotInstanceTypes: expected a number >= 0, got %d", l.f.Settings.Lint.MinSpotInstanceTypes)
	}
	for i, r := range l.f.Settings.Backup.Recipients {
		if _, err := age.ParseX25519Recipient(r); err != nil {
			l.ps.add(SettingsFile, 0, "backup.recipients[%d] %q: expected an age public key (age1...), %v", i, r, err)
		}
	}
	if l.f.Settings.Backup.Keep < 0 {
		l.ps.add(SettingsFile, 0, "backup.keep: expected a number >= 0, got %d", l.f.Settings.Backup.Keep)
	}
	return nil
}

// decodeStrict decodes one YAML document into v, reporting unknown fields
// and type errors as problems with lines. It returns false on any problem.
func (l *loader) decodeStrict(file string, data []byte, v any) bool {
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	err := dec.Decode(v)
	if errors.Is(err, io.EOF) {
		return true
	}
	if err != nil {
		l.addYAMLError(file, err)
		return false
	}
	return true
}

func (l *loader) addYAMLError(file string, err error) {
	var te *yaml.TypeError
	if errors.As(err, &te) {
		for _, msg := range te.Errors {
			line, text := splitLine(msg)
			l.ps.add(file, line, "%s", friendlyYAML(text))
		}
		return
	}
	line, text := splitLine(strings.TrimPrefix(err.Error(), "yaml: "))
	l.ps.add(file, line, "invalid YAML: %s", text)
}

func splitLine(msg string) (int, string) {
	if m := lineInError.FindStringSubmatch(msg); m != nil {
		n, _ := strconv.Atoi(m[1])
		return n, m[2]
	}
	return 0, msg
}

var typeNames = strings.NewReplacer(
	"fleet.Cluster", "cluster", "fleet.NodePool", "node pool", "fleet.Taint", "taint",
	"fleet.Settings", "fleet settings", "fleet.LintSettings", "lint settings", "fleet.BackupSettings", "backup settings",
	"fleet.ClusterLint", "cluster lint", "fleet.Suppression", "suppression",
)

func friendlyYAML(msg string) string { return FriendlyYAMLError(msg, typeNames) }

// FriendlyYAMLError rewrites a YAML decoder's message for people: "field x
// not found in type pkg.T" becomes `unknown field "x" in <name>`, and Go
// type names become the names names gives them (the scenario loader uses
// it too).
func FriendlyYAMLError(msg string, names *strings.Replacer) string {
	if strings.HasPrefix(msg, "field ") && strings.Contains(msg, " not found in type ") {
		parts := strings.SplitN(strings.TrimPrefix(msg, "field "), " not found in type ", 2)
		return fmt.Sprintf("unknown field %q in %s", parts[0], names.Replace(parts[1]))
	}
	return names.Replace(msg)
}

func (l *loader) optionalFile(name string) (*File, error) {
	data, err := fs.ReadFile(l.fsys, name)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("reading %s, %w", name, err)
	}
	return &File{Path: name, Content: string(data)}, nil
}

func (l *loader) loadClusters() error {
	entries, err := fs.ReadDir(l.fsys, ClustersDir)
	if err != nil {
		return fmt.Errorf("reading %s/, %w", ClustersDir, err)
	}
	seen := map[string]string{}
	for _, e := range entries {
		name := e.Name()
		if e.IsDir() || (!strings.HasSuffix(name, ".yaml") && !strings.HasSuffix(name, ".yml")) {
			continue
		}
		file := path.Join(ClustersDir, name)
		data, err := fs.ReadFile(l.fsys, file)
		if err != nil {
			return fmt.Errorf("reading %s, %w", file, err)
		}
		c := l.loadCluster(file, data)
		if c == nil {
			continue
		}
		if prev, ok := seen[c.ID]; ok {
			l.ps.add(file, c.Line, "cluster id %q is already used by %s", c.ID, prev)
			continue
		}
		seen[c.ID] = file
		l.f.Clusters = append(l.f.Clusters, c)
	}
	if len(entries) == 0 {
		l.ps.add(ClustersDir, 0, "no cluster files: expected clusters/<id>.yaml")
	}
	sort.Slice(l.f.Clusters, func(i, j int) bool { return l.f.Clusters[i].ID < l.f.Clusters[j].ID })
	return nil
}

func (l *loader) loadCluster(file string, data []byte) *Cluster {
	c := &Cluster{File: file}
	if !l.decodeStrict(file, data, c) {
		return nil
	}
	var root yaml.Node
	if err := yaml.Unmarshal(data, &root); err != nil {
		l.addYAMLError(file, err)
		return nil
	}
	doc := docNode(&root)
	c.Line = keyLine(doc, "id")
	c.ConfigItemLines = map[string]int{}
	if items := valueNode(doc, "configItems"); items != nil && items.Kind == yaml.MappingNode {
		for i := 0; i+1 < len(items.Content); i += 2 {
			c.ConfigItemLines[items.Content[i].Value] = items.Content[i].Line
		}
	}
	if pools := valueNode(doc, "nodePools"); pools != nil && pools.Kind == yaml.SequenceNode {
		for i := range c.NodePools {
			if i < len(pools.Content) {
				c.NodePools[i].Line = pools.Content[i].Line
			}
		}
	}
	if lint := valueNode(doc, "lint"); lint != nil {
		if sup := valueNode(lint, "suppress"); sup != nil && sup.Kind == yaml.SequenceNode {
			for i := range c.Lint.Suppress {
				if i < len(sup.Content) {
					c.Lint.Suppress[i].Line = sup.Content[i].Line
				}
			}
		}
	}
	l.validateCluster(c, doc)
	return c
}

func docNode(n *yaml.Node) *yaml.Node {
	if n.Kind == yaml.DocumentNode && len(n.Content) > 0 {
		return n.Content[0]
	}
	return n
}

// valueNode returns the value of key in mapping node m, or nil.
func valueNode(m *yaml.Node, key string) *yaml.Node {
	if m == nil || m.Kind != yaml.MappingNode {
		return nil
	}
	for i := 0; i+1 < len(m.Content); i += 2 {
		if m.Content[i].Value == key {
			return m.Content[i+1]
		}
	}
	return nil
}

// keyLine returns the line of key in mapping node m, or the mapping's own
// line when the key is absent.
func keyLine(m *yaml.Node, key string) int {
	if m == nil {
		return 0
	}
	if m.Kind == yaml.MappingNode {
		for i := 0; i+1 < len(m.Content); i += 2 {
			if m.Content[i].Value == key {
				return m.Content[i].Line
			}
		}
	}
	return m.Line
}

func (l *loader) validateCluster(c *Cluster, doc *yaml.Node) {
	f := c.File
	want := strings.TrimSuffix(strings.TrimSuffix(path.Base(f), ".yaml"), ".yml")
	switch {
	case c.ID == "":
		l.ps.add(f, keyLine(doc, "id"), "id: required, expected %q (the file name)", want)
	case !idPattern.MatchString(c.ID):
		l.ps.add(f, keyLine(doc, "id"), "id %q: expected lower-case letters, digits and '-'", c.ID)
	case c.ID != want:
		l.ps.add(f, keyLine(doc, "id"), "id %q: expected %q, the file name without .yaml", c.ID, want)
	}
	if c.Environment == "" {
		l.ps.add(f, keyLine(doc, "environment"), "environment: required, e.g. production or test")
	}
	switch c.Provider {
	case "aws":
		if c.Account == "" {
			l.ps.add(f, keyLine(doc, "account"), "account: required for provider aws")
		}
	case "local":
	default:
		l.ps.add(f, keyLine(doc, "provider"), "provider %q: expected aws or local", c.Provider)
	}
	if c.Region == "" {
		l.ps.add(f, keyLine(doc, "region"), "region: required, e.g. eu-central-1")
	}
	switch c.Channel {
	case "":
		c.Channel = "stable"
	case "dev", "alpha", "beta", "stable":
	default:
		l.ps.add(f, keyLine(doc, "channel"), "channel %q: expected dev, alpha, beta or stable", c.Channel)
	}
	if !versionPattern.MatchString(c.KubernetesVersion) {
		l.ps.add(f, keyLine(doc, "kubernetesVersion"), "kubernetesVersion %q: expected major.minor, e.g. \"1.33\"", c.KubernetesVersion)
	}
	if valueNode(doc, "updateBlock") != nil && strings.TrimSpace(c.UpdateBlock) == "" {
		l.ps.add(f, keyLine(doc, "updateBlock"), "updateBlock: expected a reason why the cluster must not be updated, e.g. \"incident 123\"; remove the key to unblock")
	}
	for key := range c.ConfigItems {
		if key == "" {
			l.ps.add(f, keyLine(doc, "configItems"), "configItems: empty key")
		}
	}
	names := map[string]bool{}
	for _, p := range c.NodePools {
		l.validatePool(c, p, names)
	}
	for _, s := range c.Lint.Suppress {
		if s.Rule == "" {
			l.ps.add(f, s.Line, "lint.suppress: rule is required")
		}
		if strings.TrimSpace(s.Reason) == "" {
			l.ps.add(f, s.Line, "lint.suppress %s: reason is required, say why the rule does not apply", s.Rule)
		}
	}
}

func (l *loader) validatePool(c *Cluster, p NodePool, names map[string]bool) {
	f := c.File
	where := fmt.Sprintf("node pool %q", p.Name)
	if p.Name == "" {
		l.ps.add(f, p.Line, "node pool: name is required")
	} else if !idPattern.MatchString(p.Name) {
		l.ps.add(f, p.Line, "%s: name: expected lower-case letters, digits and '-'", where)
	} else if names[p.Name] {
		l.ps.add(f, p.Line, "%s: name is used twice in this cluster", where)
	}
	names[p.Name] = true
	switch p.Role {
	case RoleSystem:
	case RoleWorker, RoleDedicated:
		if p.ApplicationGroup == "" {
			l.ps.add(f, p.Line, "%s: applicationGroup: required for role %s", where, p.Role)
		}
	default:
		l.ps.add(f, p.Line, "%s: role %q: expected system, worker or dedicated", where, p.Role)
	}
	if p.Lifecycle != LifecycleSpot && p.Lifecycle != LifecycleOnDemand {
		l.ps.add(f, p.Line, "%s: lifecycle %q: expected spot or on-demand", where, p.Lifecycle)
	}
	if len(p.InstanceTypes) == 0 {
		l.ps.add(f, p.Line, "%s: instanceTypes: expected at least one, e.g. [m6i.xlarge]", where)
	}
	for _, it := range p.InstanceTypes {
		if !instancePattern.MatchString(it) {
			l.ps.add(f, p.Line, "%s: instance type %q: expected family.size, e.g. m6i.xlarge", where, it)
		}
	}
	if len(p.Zones) == 0 {
		l.ps.add(f, p.Line, "%s: zones: expected at least one, e.g. [%sa]", where, c.Region)
	}
	if p.MinSize < 0 || p.MaxSize < p.MinSize || p.MaxSize == 0 {
		l.ps.add(f, p.Line, "%s: expected 0 <= minSize <= maxSize and maxSize > 0, got %d..%d", where, p.MinSize, p.MaxSize)
	}
	for _, t := range p.Taints {
		if t.Key == "" {
			l.ps.add(f, p.Line, "%s: taint without key", where)
		}
		switch t.Effect {
		case "NoSchedule", "PreferNoSchedule", "NoExecute":
		default:
			l.ps.add(f, p.Line, "%s: taint %s: effect %q: expected NoSchedule, PreferNoSchedule or NoExecute", where, t.Key, t.Effect)
		}
	}
}

func (l *loader) loadManifests() error {
	return l.walk(ManifestsDir, func(p string, data []byte) {
		if p == DeletionsFile {
			return
		}
		rel := strings.TrimPrefix(p, ManifestsDir+"/")
		comp, _, ok := strings.Cut(rel, "/")
		if !ok {
			l.ps.add(p, 0, "manifest outside a component: expected manifests/<component>/%s", rel)
			return
		}
		if !strings.HasSuffix(p, ".yaml") && !strings.HasSuffix(p, ".yml") {
			l.ps.add(p, 0, "unexpected file: manifests end in .yaml or .yml")
			return
		}
		l.f.Manifests = append(l.f.Manifests, &File{Path: p, Component: comp, Content: string(data)})
	})
}

func (l *loader) loadSnippets() error {
	return l.walk(SnippetsDir, func(p string, data []byte) {
		l.f.Snippets = append(l.f.Snippets, &File{Path: p, Content: string(data)})
	})
}

// walk calls fn for every regular file under dir (if dir exists), in
// lexical order; hidden files are skipped.
func (l *loader) walk(dir string, fn func(p string, data []byte)) error {
	if _, err := fs.Stat(l.fsys, dir); errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	return fs.WalkDir(l.fsys, dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return fmt.Errorf("reading %s, %w", p, err)
		}
		if strings.HasPrefix(d.Name(), ".") && p != dir {
			if d.IsDir() {
				return fs.SkipDir
			}
			return nil
		}
		if d.IsDir() {
			return nil
		}
		data, err := fs.ReadFile(l.fsys, p)
		if err != nil {
			return fmt.Errorf("reading %s, %w", p, err)
		}
		fn(p, data)
		return nil
	})
}

func (l *loader) loadVars() error {
	common := map[string]any{}
	files := map[string]map[string]any{}
	err := l.walk(VarsDir, func(p string, data []byte) {
		var v map[string]any
		if err := yaml.Unmarshal(data, &v); err != nil {
			l.addYAMLError(p, err)
			return
		}
		if v == nil {
			v = map[string]any{}
		}
		if p == CommonVarsFile {
			common = v
			return
		}
		id := strings.TrimSuffix(strings.TrimSuffix(path.Base(p), ".yaml"), ".yml")
		if path.Dir(p) != VarsDir || l.f.Cluster(id) == nil {
			l.ps.add(p, 0, "vars for unknown cluster %q: expected vars/<cluster-id>.yaml or %s", id, CommonVarsFile)
			return
		}
		files[id] = v
	})
	if err != nil {
		return err
	}
	for _, c := range l.f.Clusters {
		l.f.Vars[c.ID] = DeepMerge(common, files[c.ID])
	}
	return nil
}

// DeepMerge returns base with over merged into it: maps merge key by key,
// everything else in over replaces base. Neither argument is modified.
func DeepMerge(base, over map[string]any) map[string]any {
	out := make(map[string]any, len(base)+len(over))
	for k, v := range base {
		out[k] = v
	}
	for k, v := range over {
		bm, bok := out[k].(map[string]any)
		om, ook := v.(map[string]any)
		if bok && ook {
			out[k] = DeepMerge(bm, om)
			continue
		}
		out[k] = v
	}
	return out
}

// checkTemplates parses every template once so syntax errors are reported
// at load time, with their file and line.
func (l *loader) checkTemplates() {
	files := append([]*File{}, l.f.Snippets...)
	files = append(files, l.f.Manifests...)
	if l.f.Defaults != nil {
		files = append(files, l.f.Defaults)
	}
	if l.f.Deletions != nil {
		files = append(files, l.f.Deletions)
	}
	funcs := TemplateFuncs()
	for _, file := range files {
		if _, err := template.New(file.Path).Funcs(funcs).Parse(file.Content); err != nil {
			line, msg := templateErrorLine(file.Path, err)
			l.ps.add(file.Path, line, "template: %s", msg)
		}
	}
}

var templateLine = regexp.MustCompile(`^template: ([^:]+):([0-9]+):(?:[0-9]+:)? ?(.*)$`)

func templateErrorLine(file string, err error) (int, string) {
	if m := templateLine.FindStringSubmatch(err.Error()); m != nil && m[1] == file {
		n, _ := strconv.Atoi(m[2])
		return n, m[3]
	}
	return 0, err.Error()
}

// TemplateFuncs are the functions fleet templates may call: sprig's, plus
// include, required, toYaml, fromYaml and tpl-free helpers. include is a
// placeholder here; the renderer binds it to the template set.
func TemplateFuncs() template.FuncMap {
	funcs := sprig.TxtFuncMap()
	// Non-deterministic sprig functions would break L01's promise that the
	// same inputs render the same bytes.
	for _, name := range []string{"now", "ago", "randAlpha", "randAlphaNum", "randAscii", "randNumeric", "randBytes", "uuidv4", "genPrivateKey", "genCA", "genSelfSignedCert", "genSignedCert", "genCAWithKey", "genSelfSignedCertWithKey", "genSignedCertWithKey", "derivePassword", "bcrypt", "htpasswd", "randInt", "shuffle", "env", "expandenv", "getHostByName"} {
		delete(funcs, name)
	}
	funcs["include"] = func(string, any) (string, error) { return "", errors.New("include is bound at render time") }
	funcs["required"] = Required
	funcs["toYaml"] = ToYAML
	return funcs
}

// Required returns val, or an error with msg when val is nil or empty.
func Required(msg string, val any) (any, error) {
	if val == nil {
		return nil, errors.New(msg)
	}
	if s, ok := val.(string); ok && s == "" {
		return nil, errors.New(msg)
	}
	return val, nil
}

// ToYAML marshals v as YAML without a trailing newline.
func ToYAML(v any) (string, error) {
	var b bytes.Buffer
	enc := yaml.NewEncoder(&b)
	enc.SetIndent(2)
	if err := enc.Encode(v); err != nil {
		return "", fmt.Errorf("toYaml, %w", err)
	}
	return strings.TrimSuffix(b.String(), "\n"), nil
}
