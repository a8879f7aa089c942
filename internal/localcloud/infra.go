package localcloud

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"sort"
	"strings"

	corev1 "k8s.io/api/core/v1"

	"github.com/bosun-platform/bosun/internal/provider"
	"github.com/bosun-platform/bosun/internal/version"
)

// ControlPlanes tells the local infrastructure which control planes run.
// On the local provider control planes are started by `bosun up` (or a
// test), not by Infra: Infra checks them and manages the node groups.
type ControlPlanes interface {
	// ControlPlane describes the cluster's control plane; an error
	// wrapping provider.ErrNotFound when none runs for the cluster.
	ControlPlane(ctx context.Context, cluster string) (provider.ControlPlaneInfo, error)
}

// ControlPlane implements ControlPlanes: a cluster added to the registry
// has a control plane; it is Ready when its API server answers, at the
// version it reports.
func (r *ClientRegistry) ControlPlane(_ context.Context, cluster string) (provider.ControlPlaneInfo, error) {
	cs, err := r.client(cluster)
	if err != nil {
		return provider.ControlPlaneInfo{}, fmt.Errorf("%w: %w", err, provider.ErrNotFound)
	}
	v, err := cs.Discovery().ServerVersion()
	if err != nil {
		return provider.ControlPlaneInfo{Version: BuiltVersion()}, nil
	}
	return provider.ControlPlaneInfo{Version: v.Major + "." + strings.TrimSuffix(v.Minor, "+"), Ready: true}, nil
}

// BuiltVersion is the Kubernetes major.minor of the control-plane binaries
// Bosun builds (version.Kubernetes): the only version the local provider
// runs.
func BuiltVersion() string {
	v := strings.TrimPrefix(version.Kubernetes, "v")
	if i := strings.LastIndex(v, "."); i > 0 {
		v = v[:i]
	}
	return v
}

// Infra is provider.Infra for the local cloud: the control plane must run
// at the built version (BuiltVersion; any other kubernetesVersion fails
// with provider.ErrUnsupported), and the cluster's node groups are created,
// updated and deleted in the cloud to match the spec's pools. An updated
// group keeps its instances: nodes built from an older template keep their
// template hash label until the lifecycle manager rolls them (L44).
type Infra struct {
	cloud   *Cloud
	cps     ControlPlanes
	version string
}

var _ provider.Infra = (*Infra)(nil)

// NewInfra returns the infrastructure of the local cloud over cloud, with
// the control planes cps knows.
func NewInfra(cloud *Cloud, cps ControlPlanes) *Infra {
	return &Infra{cloud: cloud, cps: cps, version: BuiltVersion()}
}

// ControlPlane implements provider.Infra.
func (i *Infra) ControlPlane(ctx context.Context, cluster string) (provider.ControlPlaneInfo, error) {
	return i.cps.ControlPlane(ctx, cluster)
}

// Plan implements provider.Infra.
func (i *Infra) Plan(ctx context.Context, spec provider.ClusterSpec) ([]provider.Change, error) {
	groups, err := i.check(ctx, spec)
	if err != nil {
		return nil, err
	}
	i.cloud.mu.Lock()
	defer i.cloud.mu.Unlock()
	return i.cloud.groupChanges(spec.ID, groups), nil
}

// Apply implements provider.Infra. Groups are created at their minimum
// size; an updated group keeps its instances and its target size within
// the new bounds; a deleted group's instances terminate and their Nodes
// are removed before the group goes.
func (i *Infra) Apply(ctx context.Context, spec provider.ClusterSpec) ([]provider.Change, error) {
	groups, err := i.check(ctx, spec)
	if err != nil {
		return nil, err
	}
	c := i.cloud
	c.mu.Lock()
	changes := c.groupChanges(spec.ID, groups)
	var gone []*group
	for _, ch := range changes {
		switch ch.Action {
		case provider.Create:
			c.groups[ch.Name] = groups[ch.Name]
		case provider.Update:
			// In place: Reconcile may hold the group between its passes.
			old, g := c.groups[ch.Name], groups[ch.Name]
			target := clamp(old.TargetSize, g.MinSize, g.MaxSize)
			old.NodeGroup, old.region = g.NodeGroup, g.region
			old.TargetSize = target
		case provider.Delete:
			g := c.groups[ch.Name]
			g.MinSize, g.TargetSize = 0, 0
			for _, in := range g.instances {
				if in.State == provider.Pending || in.State == provider.Running {
					in.State = provider.Terminating
				}
			}
			gone = append(gone, g)
		}
	}
	c.mu.Unlock()
	var errs []error
	for _, g := range gone {
		if err := i.deleteGroup(ctx, g); err != nil {
			errs = append(errs, err)
		}
	}
	return changes, errors.Join(errs...)
}

// deleteGroup removes the Nodes of a group's terminating instances, then
// the group. On an error the group stays, marked empty; the next Apply or
// Reconcile finishes the job.
func (i *Infra) deleteGroup(ctx context.Context, g *group) error {
	c := i.cloud
	c.mu.Lock()
	var names []string
	for _, in := range g.instances {
		if in.NodeName != "" && in.State == provider.Terminating {
			names = append(names, in.NodeName)
		}
	}
	c.mu.Unlock()
	for _, n := range names {
		if err := c.nodes.Deregister(ctx, g.Cluster, n); err != nil {
			return fmt.Errorf("deleting node group %s, %w", g.ID, err)
		}
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.groups[g.ID] == g {
		delete(c.groups, g.ID)
	}
	return nil
}

// check refuses what the local provider cannot do (another provider, a
// Kubernetes version it did not build, a control plane that does not run)
// and builds the spec's groups, keyed by ID.
func (i *Infra) check(ctx context.Context, spec provider.ClusterSpec) (map[string]*group, error) {
	if spec.Provider != "local" {
		return nil, fmt.Errorf("cluster %s: provider %q: the local cloud builds only provider local clusters: %w", spec.ID, spec.Provider, provider.ErrUnsupported)
	}
	if spec.KubernetesVersion != i.version {
		return nil, fmt.Errorf("cluster %s: kubernetesVersion %q: the local provider supports only %s, the version it built (%s): %w",
			spec.ID, spec.KubernetesVersion, i.version, version.Kubernetes, provider.ErrUnsupported)
	}
	cp, err := i.cps.ControlPlane(ctx, spec.ID)
	if err != nil {
		return nil, fmt.Errorf("cluster %s: control plane: %w (local control planes are started by bosun up)", spec.ID, err)
	}
	if !cp.Ready {
		return nil, fmt.Errorf("cluster %s: control plane is not ready", spec.ID)
	}
	groups := make(map[string]*group, len(spec.Groups))
	for _, gs := range spec.Groups {
		if gs.Cluster != spec.ID {
			return nil, fmt.Errorf("cluster %s: node group %s belongs to cluster %q", spec.ID, gs.ID, gs.Cluster)
		}
		g, err := groupFromSpec(gs, spec.Region)
		if err != nil {
			return nil, err
		}
		groups[g.ID] = g
	}
	return groups, nil
}

// groupChanges compares the cluster's groups with the desired ones; the
// caller holds c.mu. Changes come sorted by group ID.
func (c *Cloud) groupChanges(cluster string, want map[string]*group) []provider.Change {
	var out []provider.Change
	for id, g := range want {
		old, ok := c.groups[id]
		if !ok {
			out = append(out, provider.Change{Action: provider.Create, Resource: "node-group", Name: id,
				Detail: fmt.Sprintf("%s %v in %v, size %d-%d", g.Lifecycle, g.InstanceTypes, g.Zones, g.MinSize, g.MaxSize)})
			continue
		}
		if d := groupDiff(old, g); d != "" {
			out = append(out, provider.Change{Action: provider.Update, Resource: "node-group", Name: id, Detail: d})
		}
	}
	for id, g := range c.groups {
		if g.Cluster == cluster && want[id] == nil {
			out = append(out, provider.Change{Action: provider.Delete, Resource: "node-group", Name: id})
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}

// groupDiff says what differs between a group and its desired settings,
// empty when nothing does. The target size is the cloud's (it is only
// clamped to the new bounds).
func groupDiff(old, g *group) string {
	var d []string
	add := func(name string, from, to any) { d = append(d, fmt.Sprintf("%s %v -> %v", name, from, to)) }
	if old.Lifecycle != g.Lifecycle {
		add("lifecycle", old.Lifecycle, g.Lifecycle)
	}
	if !slices.Equal(old.InstanceTypes, g.InstanceTypes) {
		add("instanceTypes", old.InstanceTypes, g.InstanceTypes)
	}
	if !slices.Equal(old.Zones, g.Zones) {
		add("zones", old.Zones, g.Zones)
	}
	if old.MinSize != g.MinSize {
		add("minSize", old.MinSize, g.MinSize)
	}
	if old.MaxSize != g.MaxSize {
		add("maxSize", old.MaxSize, g.MaxSize)
	}
	if old.Priority != g.Priority {
		add("priority", old.Priority, g.Priority)
	}
	if old.Labels[provider.LabelTemplateHash] != g.Labels[provider.LabelTemplateHash] {
		add("template", old.Labels[provider.LabelTemplateHash], g.Labels[provider.LabelTemplateHash])
	} else if !maps.Equal(old.Labels, g.Labels) {
		d = append(d, "labels")
	}
	if !slices.EqualFunc(old.Taints, g.Taints, func(a, b corev1.Taint) bool {
		return a.Key == b.Key && a.Value == b.Value && a.Effect == b.Effect
	}) {
		d = append(d, "taints")
	}
	if old.region != g.region {
		add("region", old.region, g.region)
	}
	return strings.Join(d, ", ")
}
