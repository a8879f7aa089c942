// Package scenario plays timed scripts against the local fleet: capacity
// changes in the local cloud's market, spot interruptions, node group sizes
// and workload steps. `bosun sim run FILE` plays one; the provisioner's
// benchmarks use them to reproduce the seeds' spot outages (L11, L20, L23).
package scenario

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"time"

	"gopkg.in/yaml.v3"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/utils/clock"
	"k8s.io/utils/ptr"

	"github.com/bosun-platform/bosun/internal/fleet"
	"github.com/bosun-platform/bosun/internal/localcloud"
	"github.com/bosun-platform/bosun/internal/provider"
)

// Scenario is a scenario file.
type Scenario struct {
	// Name describes the scenario.
	Name string `json:"name" yaml:"name"`
	// Steps run in order, each at its offset from the start.
	Steps []Step `json:"steps" yaml:"steps"`

	file string // set by Load, for problems found by Play
}

// Step is one timed action; exactly one action field is set.
type Step struct {
	// At is the offset from the scenario's start, a Go duration ("90s").
	At string `json:"at" yaml:"at"`
	// Capacity sets or clears a capacity limit in the market.
	Capacity *CapacityStep `json:"capacity,omitempty" yaml:"capacity,omitempty"`
	// Interrupt sends spot interruption notices.
	Interrupt *InterruptStep `json:"interrupt,omitempty" yaml:"interrupt,omitempty"`
	// TargetSize sets a node group's size.
	TargetSize *TargetSizeStep `json:"targetSize,omitempty" yaml:"targetSize,omitempty"`
	// Scale creates or scales a Deployment.
	Scale *ScaleStep `json:"scale,omitempty" yaml:"scale,omitempty"`

	at    time.Duration
	line  int            // of the step in its file; 0 when unknown
	lines map[string]int // of the step's fields (at, capacity, ...)
}

// lineOf is the line of the step's field, else of the step.
func (st *Step) lineOf(field string) int {
	if l, ok := st.lines[field]; ok {
		return l
	}
	return st.line
}

// CapacityStep is localcloud.CapacityRequest in a scenario.
type CapacityStep struct {
	InstanceType string `json:"instanceType,omitempty" yaml:"instanceType,omitempty"`
	Zone         string `json:"zone,omitempty" yaml:"zone,omitempty"`
	Lifecycle    string `json:"lifecycle,omitempty" yaml:"lifecycle,omitempty"`
	Limit        int    `json:"limit,omitempty" yaml:"limit,omitempty"`
	Clear        bool   `json:"clear,omitempty" yaml:"clear,omitempty"`
}

// InterruptStep names a node, or a group and how many of its running
// instances to interrupt (newest first).
type InterruptStep struct {
	Node  string `json:"node,omitempty" yaml:"node,omitempty"`
	Group string `json:"group,omitempty" yaml:"group,omitempty"`
	Count int    `json:"count,omitempty" yaml:"count,omitempty"`
}

// TargetSizeStep sets a group's target size.
type TargetSizeStep struct {
	Group string `json:"group" yaml:"group"`
	Size  int    `json:"size" yaml:"size"`
}

// ScaleStep creates the Deployment if missing (pause pods with the given
// requests) and sets its replicas.
type ScaleStep struct {
	Cluster      string            `json:"cluster" yaml:"cluster"`
	Namespace    string            `json:"namespace,omitempty" yaml:"namespace,omitempty"`
	Deployment   string            `json:"deployment" yaml:"deployment"`
	Replicas     int32             `json:"replicas" yaml:"replicas"`
	CPU          string            `json:"cpu,omitempty" yaml:"cpu,omitempty"`
	Memory       string            `json:"memory,omitempty" yaml:"memory,omitempty"`
	NodeSelector map[string]string `json:"nodeSelector,omitempty" yaml:"nodeSelector,omitempty"`
}

// Problem is one thing wrong with a scenario.
type Problem struct {
	// Line is 1-based; 0 when the problem concerns the whole file.
	Line int
	// Message names the step and field, and says what was expected.
	Message string
}

// Error lists every problem found in a scenario, so that one run reports
// all of them.
type Error struct {
	// File is the scenario's path; empty when it was parsed from bytes.
	File string
	// Problems are in line order.
	Problems []Problem
}

// Error lists every problem, one per line, as file:line: message.
func (e *Error) Error() string {
	file := e.File
	if file == "" {
		file = "scenario"
	}
	var b strings.Builder
	fmt.Fprintf(&b, "%s has %d problem(s):", file, len(e.Problems))
	for _, p := range e.Problems {
		b.WriteString("\n  ")
		b.WriteString(fleet.Problem{File: file, Line: p.Line, Message: p.Message}.String())
	}
	return b.String()
}

type problems []Problem

func (ps *problems) add(line int, format string, args ...any) {
	*ps = append(*ps, Problem{Line: line, Message: fmt.Sprintf(format, args...)})
}

// err returns nil without problems, else an *Error in line order.
func (ps problems) err(file string) error {
	if len(ps) == 0 {
		return nil
	}
	sort.SliceStable(ps, func(i, j int) bool { return ps[i].Line < ps[j].Line })
	return &Error{File: file, Problems: ps}
}

var lineInError = regexp.MustCompile(`^line ([0-9]+): (.*)$`)

// Load reads and validates a scenario file; problems are an *Error naming
// the file.
func Load(path string) (*Scenario, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("reading scenario, %w", err)
	}
	s, err := Parse(data)
	var se *Error
	if errors.As(err, &se) {
		se.File = path
	}
	if err != nil {
		return nil, err
	}
	s.file = path
	return s, nil
}

// Parse decodes a scenario strictly (unknown fields are errors) and checks
// every step: a valid offset, offsets in order, exactly one action, and
// the action's own fields. Every problem is reported, with its line, in
// one *Error.
func Parse(data []byte) (*Scenario, error) {
	var s Scenario
	var ps problems
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	if err := dec.Decode(&s); err != nil && !errors.Is(err, io.EOF) {
		var te *yaml.TypeError
		if !errors.As(err, &te) {
			line, msg := splitLine(strings.TrimPrefix(err.Error(), "yaml: "))
			ps.add(line, "invalid YAML: %s", msg)
			return nil, ps.err("")
		}
		for _, msg := range te.Errors {
			line, text := splitLine(msg)
			ps.add(line, "%s", friendlyYAML(text))
		}
	}
	stepLines(data, s.Steps)
	if len(s.Steps) == 0 && len(ps) == 0 {
		ps.add(0, "scenario has no steps: expected steps: [{at: 0s, ...}]")
	}
	var prev time.Duration
	for i := range s.Steps {
		st := &s.Steps[i]
		where := fmt.Sprintf("steps[%d]", i)
		d, err := time.ParseDuration(st.At)
		switch {
		case err != nil || d < 0:
			ps.add(st.lineOf("at"), "%s.at %q: expected a duration from the start such as 30s or 2m", where, st.At)
		case d < prev:
			ps.add(st.lineOf("at"), "%s.at %s is before the previous step (%s): steps must be in time order", where, d, prev)
		default:
			st.at, prev = d, d
		}
		st.validate(where, &ps)
	}
	if err := ps.err(""); err != nil {
		return nil, err
	}
	return &s, nil
}

func splitLine(msg string) (int, string) {
	if m := lineInError.FindStringSubmatch(msg); m != nil {
		n, _ := strconv.Atoi(m[1])
		return n, m[2]
	}
	return 0, msg
}

var typeNames = strings.NewReplacer(
	"scenario.Scenario", "scenario", "scenario.Step", "step",
	"scenario.CapacityStep", "capacity", "scenario.InterruptStep", "interrupt",
	"scenario.TargetSizeStep", "targetSize", "scenario.ScaleStep", "scale",
)

func friendlyYAML(msg string) string { return fleet.FriendlyYAMLError(msg, typeNames) }

// stepLines records the line of every step from the document's nodes.
func stepLines(data []byte, steps []Step) {
	var root yaml.Node
	if yaml.Unmarshal(data, &root) != nil || len(root.Content) == 0 {
		return
	}
	doc := root.Content[0]
	if doc.Kind != yaml.MappingNode {
		return
	}
	for i := 0; i+1 < len(doc.Content); i += 2 {
		if doc.Content[i].Value != "steps" || doc.Content[i+1].Kind != yaml.SequenceNode {
			continue
		}
		for j, n := range doc.Content[i+1].Content {
			if j >= len(steps) {
				break
			}
			steps[j].line = n.Line
			if n.Kind != yaml.MappingNode {
				continue
			}
			steps[j].lines = map[string]int{}
			for k := 0; k+1 < len(n.Content); k += 2 {
				steps[j].lines[n.Content[k].Value] = n.Content[k].Line
			}
		}
	}
}

func (st *Step) validate(where string, ps *problems) {
	n := 0
	for _, set := range []bool{st.Capacity != nil, st.Interrupt != nil, st.TargetSize != nil, st.Scale != nil} {
		if set {
			n++
		}
	}
	if n != 1 {
		ps.add(st.line, "%s: expected exactly one of capacity, interrupt, targetSize, scale; found %d", where, n)
	}
	if c := st.Capacity; c != nil {
		if c.Lifecycle != "" {
			if _, err := provider.ParseLifecycle(c.Lifecycle); err != nil {
				ps.add(st.lineOf("capacity"), "%s.capacity.%v", where, err)
			}
		}
		if c.Limit < 0 {
			ps.add(st.lineOf("capacity"), "%s.capacity.limit %d: expected 0 or more", where, c.Limit)
		}
	}
	if in := st.Interrupt; in != nil {
		if (in.Node == "") == (in.Group == "") {
			ps.add(st.lineOf("interrupt"), "%s.interrupt: expected either node, or group with count", where)
		}
		if in.Group != "" && in.Count < 1 {
			ps.add(st.lineOf("interrupt"), "%s.interrupt.count %d: expected 1 or more", where, in.Count)
		}
	}
	if ts := st.TargetSize; ts != nil {
		if ts.Group == "" || ts.Size < 0 {
			ps.add(st.lineOf("targetSize"), "%s.targetSize: expected a group and a size of 0 or more", where)
		}
	}
	if sc := st.Scale; sc != nil {
		if sc.Cluster == "" || sc.Deployment == "" || sc.Replicas < 0 {
			ps.add(st.lineOf("scale"), "%s.scale: expected cluster, deployment and replicas >= 0", where)
		}
		for _, f := range []struct{ field, q string }{{"cpu", sc.CPU}, {"memory", sc.Memory}} {
			if f.q == "" {
				continue
			}
			if _, err := resource.ParseQuantity(f.q); err != nil {
				ps.add(st.lineOf("scale"), "%s.scale.%s %q: expected a Kubernetes quantity such as 500m or 1Gi", where, f.field, f.q)
			}
		}
	}
}

// Check compares every name a scenario uses with what runs, before
// anything is played: scale clusters with the clusters, interrupt and
// targetSize groups with the node groups (and a target size with the
// group's min and max), capacity instance types and zones with what some
// group launches. Every problem is reported, with its line, in one *Error.
// Interrupted nodes are not checked: they come and go while a scenario
// plays.
func (s *Scenario) Check(clusters []string, groups []provider.NodeGroup) error {
	var ps problems
	clusterSet := map[string]bool{}
	for _, c := range clusters {
		clusterSet[c] = true
	}
	byID := map[string]provider.NodeGroup{}
	types, zones := map[string]bool{}, map[string]bool{}
	var groupIDs []string
	for _, g := range groups {
		byID[g.ID] = g
		groupIDs = append(groupIDs, g.ID)
		for _, t := range g.InstanceTypes {
			types[t] = true
		}
		for _, z := range g.Zones {
			zones[z] = true
		}
	}
	sort.Strings(groupIDs)
	for i := range s.Steps {
		st := &s.Steps[i]
		where := fmt.Sprintf("steps[%d]", i)
		if sc := st.Scale; sc != nil && !clusterSet[sc.Cluster] {
			ps.add(st.lineOf("scale"), "%s.scale.cluster %q: no such cluster is running (running: %s)", where, sc.Cluster, list(sortedKeys(clusterSet)))
		}
		if in := st.Interrupt; in != nil && in.Group != "" {
			if _, ok := byID[in.Group]; !ok {
				ps.add(st.lineOf("interrupt"), "%s.interrupt.group %q: no such node group (groups: %s)", where, in.Group, list(groupIDs))
			}
		}
		if ts := st.TargetSize; ts != nil {
			g, ok := byID[ts.Group]
			switch {
			case !ok:
				ps.add(st.lineOf("targetSize"), "%s.targetSize.group %q: no such node group (groups: %s)", where, ts.Group, list(groupIDs))
			case ts.Size < g.MinSize || ts.Size > g.MaxSize:
				ps.add(st.lineOf("targetSize"), "%s.targetSize.size %d: expected a size within group %s's min and max [%d, %d]", where, ts.Size, g.ID, g.MinSize, g.MaxSize)
			}
		}
		if c := st.Capacity; c != nil {
			if c.InstanceType != "" && !types[c.InstanceType] {
				ps.add(st.lineOf("capacity"), "%s.capacity.instanceType %q: no node group launches it (types: %s)", where, c.InstanceType, list(sortedKeys(types)))
			}
			if c.Zone != "" && !zones[c.Zone] {
				ps.add(st.lineOf("capacity"), "%s.capacity.zone %q: no node group launches there (zones: %s)", where, c.Zone, list(sortedKeys(zones)))
			}
		}
	}
	return ps.err(s.file)
}

func sortedKeys(m map[string]bool) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

func list(names []string) string {
	if len(names) == 0 {
		return "none"
	}
	return strings.Join(names, ", ")
}

// Cloud is what a scenario needs of the local cloud (provider/local's
// Client implements it).
type Cloud interface {
	NodeGroups(ctx context.Context) ([]provider.NodeGroup, error)
	SetCapacity(ctx context.Context, req localcloud.CapacityRequest) ([]localcloud.CapacityLimit, error)
	Interrupt(ctx context.Context, node string) (provider.InterruptionNotice, error)
	Instances(ctx context.Context, group string) ([]provider.Instance, error)
	SetTargetSize(ctx context.Context, group string, size int) error
}

// Env is where a scenario plays.
type Env struct {
	Cloud Cloud
	// Clusters are clients by cluster ID, for scale steps.
	Clusters map[string]kubernetes.Interface
	Clock    clock.Clock
	Out      io.Writer
}

// CheckEnv is Check against what runs in env: its clusters and the cloud's
// node groups.
func (s *Scenario) CheckEnv(ctx context.Context, env Env) error {
	groups, err := env.Cloud.NodeGroups(ctx)
	if err != nil {
		return fmt.Errorf("listing the node groups to check the scenario, %w", err)
	}
	clusters := make([]string, 0, len(env.Clusters))
	for id := range env.Clusters {
		clusters = append(clusters, id)
	}
	return s.Check(clusters, groups)
}

// Play checks every name the scenario uses against env (see Check) and
// runs nothing if one is unknown; then it runs the steps at their offsets
// and stops at the first failing step.
func Play(ctx context.Context, s *Scenario, env Env) error {
	if err := s.CheckEnv(ctx, env); err != nil {
		return err
	}
	start := env.Clock.Now()
	for i, st := range s.Steps {
		if wait := st.at - env.Clock.Since(start); wait > 0 {
			select {
			case <-ctx.Done():
				return ctx.Err()
			case <-env.Clock.After(wait):
			}
		}
		what, err := st.run(ctx, env)
		if err != nil {
			return fmt.Errorf("steps[%d] at %s: %w", i, st.at, err)
		}
		fmt.Fprintf(env.Out, "[%8s] %s\n", env.Clock.Since(start).Round(time.Millisecond), what)
	}
	return nil
}

func (st *Step) run(ctx context.Context, env Env) (string, error) {
	switch {
	case st.Capacity != nil:
		c := st.Capacity
		key := localcloud.OfferingKey{InstanceType: c.InstanceType, Zone: c.Zone}
		if c.Lifecycle != "" {
			key.Lifecycle, _ = provider.ParseLifecycle(c.Lifecycle) // checked by Parse
		}
		if _, err := env.Cloud.SetCapacity(ctx, localcloud.CapacityRequest{OfferingKey: key, Limit: c.Limit, Clear: c.Clear}); err != nil {
			return "", err
		}
		if c.Clear {
			return "capacity " + key.String() + ": limit cleared", nil
		}
		return fmt.Sprintf("capacity %s: limit %d", key, c.Limit), nil
	case st.Interrupt != nil:
		return st.interrupt(ctx, env)
	case st.TargetSize != nil:
		if err := env.Cloud.SetTargetSize(ctx, st.TargetSize.Group, st.TargetSize.Size); err != nil {
			return "", err
		}
		return fmt.Sprintf("group %s: target size %d", st.TargetSize.Group, st.TargetSize.Size), nil
	default:
		return st.scale(ctx, env)
	}
}

func (st *Step) interrupt(ctx context.Context, env Env) (string, error) {
	in := st.Interrupt
	if in.Node != "" {
		n, err := env.Cloud.Interrupt(ctx, in.Node)
		if err != nil {
			return "", err
		}
		return fmt.Sprintf("interrupt %s (terminates %s)", n.NodeName, n.TerminationTime.Format(time.TimeOnly)), nil
	}
	ins, err := env.Cloud.Instances(ctx, in.Group)
	if err != nil {
		return "", err
	}
	var names []string
	for i := len(ins) - 1; i >= 0 && len(names) < in.Count; i-- {
		if ins[i].State != provider.Running || ins[i].Interruption != nil {
			continue
		}
		if _, err := env.Cloud.Interrupt(ctx, ins[i].NodeName); err != nil {
			return "", err
		}
		names = append(names, ins[i].NodeName)
	}
	return fmt.Sprintf("interrupt %d of %s: %s", len(names), in.Group, strings.Join(names, ", ")), nil
}

func (st *Step) scale(ctx context.Context, env Env) (string, error) {
	sc := st.Scale
	cs, ok := env.Clusters[sc.Cluster]
	if !ok {
		return "", fmt.Errorf("scale: cluster %q is not running", sc.Cluster)
	}
	ns := sc.Namespace
	if ns == "" {
		ns = "default"
	}
	deps := cs.AppsV1().Deployments(ns)
	d, err := deps.Get(ctx, sc.Deployment, metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		_, err = deps.Create(ctx, newDeployment(ns, sc), metav1.CreateOptions{})
		if err != nil {
			return "", fmt.Errorf("creating deployment %s/%s, %w", ns, sc.Deployment, err)
		}
		return fmt.Sprintf("created deployment %s/%s/%s with %d replicas", sc.Cluster, ns, sc.Deployment, sc.Replicas), nil
	}
	if err != nil {
		return "", fmt.Errorf("reading deployment %s/%s, %w", ns, sc.Deployment, err)
	}
	d.Spec.Replicas = ptr.To(sc.Replicas)
	if _, err := deps.Update(ctx, d, metav1.UpdateOptions{}); err != nil {
		return "", fmt.Errorf("scaling deployment %s/%s, %w", ns, sc.Deployment, err)
	}
	return fmt.Sprintf("scaled deployment %s/%s/%s to %d", sc.Cluster, ns, sc.Deployment, sc.Replicas), nil
}

func newDeployment(ns string, sc *ScaleStep) *appsv1.Deployment {
	labels := map[string]string{"app": sc.Deployment}
	req := corev1.ResourceList{}
	if sc.CPU != "" {
		req[corev1.ResourceCPU] = resource.MustParse(sc.CPU)
	}
	if sc.Memory != "" {
		req[corev1.ResourceMemory] = resource.MustParse(sc.Memory)
	}
	return &appsv1.Deployment{
		ObjectMeta: metav1.ObjectMeta{Name: sc.Deployment, Namespace: ns, Labels: labels},
		Spec: appsv1.DeploymentSpec{
			Replicas: ptr.To(sc.Replicas),
			Selector: &metav1.LabelSelector{MatchLabels: labels},
			Template: corev1.PodTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Labels: labels},
				Spec: corev1.PodSpec{
					NodeSelector: sc.NodeSelector,
					Containers: []corev1.Container{{
						Name: "app", Image: "registry.k8s.io/pause:3.10",
						Resources: corev1.ResourceRequirements{Requests: req, Limits: req},
					}},
				},
			},
		},
	}
}
