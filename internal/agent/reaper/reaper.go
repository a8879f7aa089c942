// Package reaper implements L22: on-demand fallback is temporary. It
// replaces an on-demand fallback node with spot once spot offerings of its
// application group are available again: spot node first, then the
// on-demand node is drained through the Eviction API (PDBs respected) and
// its instance deleted. RBAC as the scale-down's (internal/agent/scaledown).
package reaper

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/utils/ptr"

	"github.com/bosun-platform/bosun/internal/agent/capacity"
	"github.com/bosun-platform/bosun/internal/agent/controller"
	"github.com/bosun-platform/bosun/internal/agent/placement"
	"github.com/bosun-platform/bosun/internal/agentcmd"
	"github.com/bosun-platform/bosun/internal/provider"
)

// Options configure the on-demand reaper. They are used as given:
// start from DefaultOptions; Validate says what is out of range. The
// cloud (Deps.Provider), the cluster (Deps.Cluster), the recorder (Events
// on Nodes), the logger and dry-run (log, count and report what would be
// done, change nothing) come with controller.Deps, and so does the
// registry of the metrics it shares with the scale-down (CapacityMetrics).
type Options struct {
	// MinAge: on-demand nodes younger than this stay (L22).
	MinAge time.Duration
	// ReplacementTimeout: a spot replacement not Ready after this long is
	// given up and the on-demand node stays.
	ReplacementTimeout time.Duration
	// DrainTimeout: a drain still waiting (for a PDB) after this long
	// fails and the node is uncordoned.
	DrainTimeout time.Duration
	// Backoff: after a reap of a node was given up, the node is not tried
	// again for this long.
	Backoff time.Duration
	// Templates, if set, returns a spot group's template nodes (one per
	// zone); the replacement must be able to take all of the on-demand
	// node's pods on one node.
	Templates func(g provider.NodeGroup) ([]*corev1.Node, error)
	// EvictKubeSystemWithoutPDB lets kube-system pods without a
	// PodDisruptionBudget move (default false, as cluster-autoscaler).
	EvictKubeSystemWithoutPDB bool
}

// DefaultOptions returns the defaults: minimum age 2h (L22),
// replacement timeout 10m, drain timeout 5m, backoff 10m.
func DefaultOptions() Options {
	return Options{MinAge: 2 * time.Hour, ReplacementTimeout: 10 * time.Minute, DrainTimeout: 5 * time.Minute, Backoff: 10 * time.Minute}
}

// Validate reports the options out of range, naming the agent's flag.
func (o Options) Validate() error {
	var errs []error
	for _, d := range []struct {
		name string
		v    time.Duration
	}{{"--reaper-min-age", o.MinAge}, {"reaper ReplacementTimeout", o.ReplacementTimeout}, {"--drain-timeout", o.DrainTimeout}, {"reaper Backoff", o.Backoff}} {
		if d.v <= 0 {
			errs = append(errs, fmt.Errorf("%s %s: expected a positive duration", d.name, d.v))
		}
	}
	return errors.Join(errs...)
}

// config is what the reaper runs with.
type config struct {
	Options
	controller.Deps
}

// Controller implements L22: on-demand fallback is temporary. An on-demand
// node older than MinAge, in an application group that also has spot
// groups, is replaced once spot offerings of such a group are available
// again: first the spot group is scaled up (replace with spot first), and
// only once the replacement node is Ready is the on-demand node cordoned,
// drained through the Eviction API (PDBs respected) and its instance
// deleted. One node at a time per on-demand group; if the spot launch
// fails again (ICE), the on-demand node is left alone.
//
// Its state lives in the API and the provider, so it can be killed at any
// point: the on-demand node carries AnnotationReapStarted and
// AnnotationReapSpotGroup while its replacement boots (the replacement is
// a spot instance of that group launched since), and TaintReapOnDemand
// while it drains.
type Controller struct {
	capacity.Remover
	opts config
	mu   sync.Mutex
	// notBefore holds nodes whose reap was given up, until when.
	notBefore map[string]time.Time
	// started holds the reaps this process started (the annotations'
	// values), so a pass that runs before the informer shows the
	// annotations does not start the same reap twice.
	started map[string]reapStart
}

// reapStart is when a reap asked for its replacement, and from which group.
type reapStart struct {
	at   string
	spot string
}

// Name is the reaper's name in --controllers, logs and metrics.
const Name = agentcmd.ControllerReaper

// New returns the on-demand reaper. It reads nodes, pods and
// PodDisruptionBudgets from the factory's informers (Deps.Factory must be
// cluster-wide; the caller starts it), so an idle pass makes no API
// request. Deps.Provider, Client and Factory are required.
//
// RBAC: nodes get, list, watch, patch; pods list, watch, get; pods/eviction
// create; poddisruptionbudgets (policy) list, watch; events create, patch.
func New(deps controller.Deps, opts Options) (*Controller, error) {
	if err := opts.Validate(); err != nil {
		return nil, fmt.Errorf("%s: %w", Name, err)
	}
	base, deps, err := capacity.NewRemover(Name, deps, capacity.EvictionRules{EvictKubeSystemWithoutPDB: opts.EvictKubeSystemWithoutPDB})
	if err != nil {
		return nil, err
	}
	return &Controller{
		Remover:   base,
		opts:      config{Options: opts, Deps: deps},
		notBefore: map[string]time.Time{},
		started:   map[string]reapStart{},
	}, nil
}

// Name is the controller's name.
func (r *Controller) Name() string { return Name }

// Pass advances the reaps in progress and starts one per on-demand group
// where spot is back, and returns what it did (or, in dry-run, would do).
func (r *Controller) Pass(ctx context.Context) ([]string, error) {
	now := r.opts.Clock.Now()
	v, err := capacity.ReadView(ctx, r.opts.Provider, r.opts.Cluster, r.Listers)
	if err != nil {
		return nil, fmt.Errorf("reaper, %w", err)
	}
	r.Metrics.OnDemandRatio.Set(v.OnDemandRatio())
	actions, errs := r.recover(ctx, v)
	var offerings []provider.Offering
	for _, g := range v.Groups {
		if g.Lifecycle != provider.OnDemand || len(r.spotSiblings(v, g)) == 0 {
			continue
		}
		var a string
		if m := r.inProgress(v, g); m != nil {
			a, err = r.advance(ctx, v, m, now)
		} else if g.TargetSize > g.MinSize {
			if offerings == nil {
				if offerings, err = r.opts.Provider.Offerings(ctx); err != nil {
					return actions, errors.Join(append(errs, fmt.Errorf("reaper: listing offerings, %w", err))...)
				}
			}
			a, err = r.start(ctx, v, g, offerings, now)
		}
		if err != nil {
			errs = append(errs, err)
		}
		if a != "" {
			actions = append(actions, a)
		}
	}
	return actions, errors.Join(errs...)
}

// spotSiblings are the spot groups of the on-demand group's application
// group, highest priority first.
func (r *Controller) spotSiblings(v *capacity.View, od provider.NodeGroup) []provider.NodeGroup {
	app := od.Labels[capacity.LabelApplicationGroup]
	if app == "" {
		return nil
	}
	var out []provider.NodeGroup
	for _, g := range v.Groups {
		if g.Lifecycle == provider.Spot && g.Labels[capacity.LabelApplicationGroup] == app {
			out = append(out, g)
		}
	}
	sort.SliceStable(out, func(i, j int) bool { return out[i].Priority > out[j].Priority })
	return out
}

// inProgress returns the group's node whose reap has started, if any.
func (r *Controller) inProgress(v *capacity.View, g provider.NodeGroup) *capacity.Member {
	for _, m := range v.Members {
		if m.Group.ID != g.ID {
			continue
		}
		if _, ok := r.startOf(m); ok {
			return m
		}
	}
	return nil
}

// startOf reads a reap's start from the node's annotations or, until the
// informer shows them, from this process's memory.
func (r *Controller) startOf(m *capacity.Member) (reapStart, bool) {
	if at := m.Node.Annotations[capacity.AnnotationReapStarted]; at != "" {
		return reapStart{at: at, spot: m.Node.Annotations[capacity.AnnotationReapSpotGroup]}, true
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	s, ok := r.started[m.Node.Name]
	return s, ok
}

func (r *Controller) remember(node string, s *reapStart) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if s == nil {
		delete(r.started, node)
		return
	}
	r.started[node] = *s
}

// recover uncordons nodes this controller tainted but is not draining (a
// previous process crashed mid-drain); the reap resumes from its
// annotations. A node with no pods left to move is finished instead.
func (r *Controller) recover(ctx context.Context, v *capacity.View) ([]string, []error) {
	var actions []string
	var errs []error
	for _, n := range v.Nodes {
		if !capacity.HasTaint(n, capacity.TaintReapOnDemand) || r.Drains.Active(n.Name) {
			continue
		}
		m := v.ByNode[n.Name]
		if m == nil || m.Instance.State != provider.Running {
			// No instance, or it is already going away: so is the node.
			continue
		}
		if len(capacity.Movable(m.Pods)) == 0 {
			if !r.opts.DryRun {
				if err := r.opts.Provider.DeleteInstances(ctx, m.Group.ID, []string{m.Instance.ID}); err != nil {
					errs = append(errs, fmt.Errorf("deleting instance %s of node %s, %w", m.Instance.ID, n.Name, err))
					continue
				}
			}
			actions = append(actions, fmt.Sprintf("finish reaping drained on-demand node %s: delete instance %s", n.Name, m.Instance.ID))
			continue
		}
		if !r.opts.DryRun {
			if err := capacity.Untaint(ctx, r.opts.Client, n.Name, capacity.TaintReapOnDemand); err != nil {
				errs = append(errs, err)
				continue
			}
		}
		actions = append(actions, fmt.Sprintf("uncordon on-demand node %s left by an interrupted reap", n.Name))
	}
	return actions, errs
}

// start picks the group's oldest reapable node and asks its spot
// replacement: the node is annotated first, then the spot group scaled up.
func (r *Controller) start(ctx context.Context, v *capacity.View, g provider.NodeGroup, offerings []provider.Offering, now time.Time) (string, error) {
	var oldest *capacity.Member
	for _, m := range v.Members {
		if m.Group.ID != g.ID || !r.reapable(v, m, now) {
			continue
		}
		if oldest == nil || m.Instance.LaunchTime.Before(oldest.Instance.LaunchTime) {
			oldest = m
		}
	}
	if oldest == nil {
		return "", nil
	}
	spot, ok := r.spotFor(v, g, oldest, offerings)
	if !ok {
		return "", nil
	}
	name := oldest.Node.Name
	action := fmt.Sprintf("replace on-demand node %s of %s (age %s) with spot from %s: scale %s to %d",
		name, g.ID, now.Sub(oldest.Instance.LaunchTime).Round(time.Second), spot.ID, spot.ID, spot.TargetSize+1)
	r.opts.Logger.Info("reaper: spot is back, replacing on-demand node", "node", name, "spotGroup", spot.ID, "dryRun", r.opts.DryRun)
	if r.opts.DryRun {
		r.Metrics.CountRemoved(capacity.ReasonReapOnDemand, provider.OnDemand, true)
		return action, nil
	}
	st := reapStart{at: now.UTC().Format(time.RFC3339), spot: spot.ID}
	err := capacity.Annotate(ctx, r.opts.Client, name, map[string]*string{
		capacity.AnnotationReapStarted:   ptr.To(st.at),
		capacity.AnnotationReapSpotGroup: ptr.To(st.spot),
	})
	if err != nil {
		return "", fmt.Errorf("reaper: annotating %s, %w", name, err)
	}
	r.remember(name, &st)
	if err := r.opts.Provider.SetTargetSize(ctx, spot.ID, spot.TargetSize+1); err != nil {
		return "", fmt.Errorf("reaper: scaling %s up to replace %s, %w", spot.ID, name, err)
	}
	r.event(oldest.Node, corev1.EventTypeNormal, "ReapOnDemand", "Spot is back: replacing this on-demand node with a node of %s", spot.ID)
	return action, nil
}

// reapable: a running, Ready on-demand node older than MinAge that nobody
// else works on, not backing off, whose pods may all be evicted.
func (r *Controller) reapable(v *capacity.View, m *capacity.Member, now time.Time) bool {
	if m.Instance.State != provider.Running || m.Instance.Interruption != nil || !capacity.NodeReady(m.Node) || capacity.Busy(m.Node) {
		return false
	}
	if now.Sub(m.Instance.LaunchTime) < r.opts.MinAge || r.backingOff(m.Node.Name, now) {
		return false
	}
	for _, p := range capacity.Movable(m.Pods) {
		if why := r.Rules.Blocker(p, v.PDBs); why != "" {
			r.opts.Logger.Debug("reaper: node stays", "node", m.Node.Name, "why", why)
			return false
		}
	}
	return true
}

// spotFor picks the spot group to replace the node from: room below its
// max, an offering available, and (with Templates) room for all the node's
// pods on one node. Failed launches listed by the provider are not looked
// at here: a group that stopped trying keeps its last failures listed, and
// the offerings say whether capacity is back; a launch that fails again
// gives the reap up (advance).
func (r *Controller) spotFor(v *capacity.View, od provider.NodeGroup, m *capacity.Member, offerings []provider.Offering) (provider.NodeGroup, bool) {
	for _, g := range r.spotSiblings(v, od) {
		if g.TargetSize >= g.MaxSize || !spotAvailable(g, offerings) {
			continue
		}
		if r.opts.Templates != nil && !r.takesAll(g, capacity.Movable(m.Pods)) {
			continue
		}
		return g, true
	}
	return provider.NodeGroup{}, false
}

// spotAvailable reports whether any of the group's spot offerings has
// capacity (L22: only then is spot "back").
func spotAvailable(g provider.NodeGroup, offerings []provider.Offering) bool {
	types := map[string]bool{}
	for _, t := range g.InstanceTypes {
		types[t] = true
	}
	zones := map[string]bool{}
	for _, z := range g.Zones {
		zones[z] = true
	}
	for _, o := range offerings {
		if o.Lifecycle == provider.Spot && o.Available && types[o.InstanceType] && zones[o.Zone] {
			return true
		}
	}
	return false
}

func (r *Controller) takesAll(g provider.NodeGroup, pods []*corev1.Pod) bool {
	templates, err := r.opts.Templates(g)
	if err != nil {
		r.opts.Logger.Warn("reaper: template nodes", "group", g.ID, "error", err)
		return false
	}
	for _, t := range templates {
		if _, placed, _ := placement.BinPack(pods, t, placement.Resources{}, 1); len(placed) == len(pods) {
			return true
		}
	}
	return false
}

// advance moves a started reap on: give up if the spot launch failed or
// timed out; once a spot instance launched since the start runs a Ready
// node, cordon and drain the on-demand node and delete its instance.
func (r *Controller) advance(ctx context.Context, v *capacity.View, m *capacity.Member, now time.Time) (string, error) {
	name := m.Node.Name
	if r.Drains.Active(name) || capacity.HasTaint(m.Node, capacity.TaintReapOnDemand) {
		return "", nil
	}
	st, _ := r.startOf(m)
	started, err := time.Parse(time.RFC3339, st.at)
	spotID := st.spot
	if err != nil || !hasGroup(v, spotID) {
		return r.abort(ctx, m, "bad-annotation", fmt.Sprintf("annotation %s=%q or group %q not understood", capacity.AnnotationReapStarted, st.at, spotID), now)
	}
	ready := false
	for _, in := range v.Instances[spotID] {
		if in.LaunchTime.Before(started) {
			continue
		}
		if in.State == provider.Failed {
			// L21 again: spot ran out; the on-demand node stays.
			r.giveBack(ctx, spotID, v.Instances[spotID])
			return r.abort(ctx, m, "spot-unavailable", fmt.Sprintf("spot launch in %s failed: %s", spotID, in.ErrorClass), now)
		}
		if n := v.ByNode[in.NodeName]; in.State == provider.Running && in.Interruption == nil && n != nil && capacity.NodeReady(n.Node) {
			ready = true
		}
	}
	if !ready {
		if now.Sub(started) > r.opts.ReplacementTimeout {
			return r.abort(ctx, m, "replacement-timeout", fmt.Sprintf("no Ready spot node from %s after %s", spotID, r.opts.ReplacementTimeout), now)
		}
		return "", nil
	}
	for _, p := range capacity.Movable(m.Pods) {
		if why := r.Rules.Blocker(p, v.PDBs); why != "" {
			return r.abort(ctx, m, "blocked", why, now)
		}
	}
	action := fmt.Sprintf("spot replacement from %s is Ready: drain on-demand node %s and delete instance %s of %s", spotID, name, m.Instance.ID, m.Group.ID)
	if r.opts.DryRun {
		return action, nil
	}
	if err := capacity.Taint(ctx, r.opts.Client, m.Node, capacity.TaintReapOnDemand, now); err != nil {
		return "", fmt.Errorf("reaper, %w", err)
	}
	r.event(m.Node, corev1.EventTypeNormal, "ReapOnDemand", "Spot replacement Ready: draining %d pod(s)", len(capacity.Movable(m.Pods)))
	r.Drains.Start(name, func() { r.drainAndDelete(ctx, m) })
	return action, nil
}

// giveBack lowers the spot group's target to what runs, so a failed
// replacement is not retried forever.
func (r *Controller) giveBack(ctx context.Context, id string, ins []provider.Instance) {
	if r.opts.DryRun {
		return
	}
	g, err := r.opts.Provider.NodeGroup(ctx, id)
	if err != nil {
		return
	}
	live := 0
	for _, in := range ins {
		if in.State == provider.Pending || in.State == provider.Running {
			live++
		}
	}
	if g.TargetSize > live && live >= g.MinSize {
		if err := r.opts.Provider.SetTargetSize(ctx, id, live); err != nil {
			r.opts.Logger.Warn("reaper: giving back a failed spot request", "group", id, "error", err)
		}
	}
}

// abort gives a reap up: the annotations go, the node stays and is not
// tried again for Backoff.
func (r *Controller) abort(ctx context.Context, m *capacity.Member, reason, detail string, now time.Time) (string, error) {
	name := m.Node.Name
	action := fmt.Sprintf("keep on-demand node %s: %s", name, detail)
	r.opts.Logger.Info("reaper: giving up", "node", name, "reason", reason, "detail", detail)
	r.Metrics.ReapAborted.WithLabelValues(reason).Inc()
	if r.opts.DryRun {
		return action, nil
	}
	r.backOff(name, now)
	r.remember(name, nil)
	if err := capacity.Annotate(ctx, r.opts.Client, name, map[string]*string{capacity.AnnotationReapStarted: nil, capacity.AnnotationReapSpotGroup: nil}); err != nil {
		return "", fmt.Errorf("reaper: clearing annotations of %s, %w", name, err)
	}
	r.event(m.Node, corev1.EventTypeWarning, "ReapOnDemandFailed", "Node stays: %s", detail)
	return action, nil
}

func (r *Controller) drainAndDelete(ctx context.Context, m *capacity.Member) {
	name := m.Node.Name
	if err := capacity.DrainNode(ctx, r.opts.Client, name, r.opts.DrainTimeout); err != nil {
		r.fail(ctx, m, err)
		return
	}
	if err := r.opts.Provider.DeleteInstances(ctx, m.Group.ID, []string{m.Instance.ID}); err != nil {
		r.fail(ctx, m, fmt.Errorf("deleting instance %s of %s, %w", m.Instance.ID, m.Group.ID, err))
		return
	}
	r.Metrics.CountRemoved(capacity.ReasonReapOnDemand, provider.OnDemand, false)
	r.remember(name, nil)
	r.event(m.Node, corev1.EventTypeNormal, "ReapOnDemand", "Drained; instance %s of %s deleted", m.Instance.ID, m.Group.ID)
	r.opts.Logger.Info("reaper: on-demand node replaced by spot", "node", name, "instance", m.Instance.ID)
}

// fail uncordons a node whose drain failed and gives its reap up.
func (r *Controller) fail(ctx context.Context, m *capacity.Member, err error) {
	name := m.Node.Name
	r.Metrics.DrainFailures.WithLabelValues(Name).Inc()
	r.opts.Logger.Warn("reaper: drain failed; uncordoning", "node", name, "error", err)
	r.event(m.Node, corev1.EventTypeWarning, "ReapOnDemandFailed", "Node stays: %v", err)
	if err := capacity.Untaint(ctx, r.opts.Client, name, capacity.TaintReapOnDemand); err != nil {
		r.opts.Logger.Warn("reaper: uncordoning", "node", name, "error", err)
	}
	if err := capacity.Annotate(ctx, r.opts.Client, name, map[string]*string{capacity.AnnotationReapStarted: nil, capacity.AnnotationReapSpotGroup: nil}); err != nil {
		r.opts.Logger.Warn("reaper: clearing annotations", "node", name, "error", err)
	}
	r.backOff(name, r.opts.Clock.Now())
	r.remember(name, nil)
}

func (r *Controller) backOff(node string, now time.Time) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.notBefore[node] = now.Add(r.opts.Backoff)
}

func (r *Controller) backingOff(node string, now time.Time) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	return now.Before(r.notBefore[node])
}

func hasGroup(v *capacity.View, id string) bool {
	for _, g := range v.Groups {
		if g.ID == id {
			return true
		}
	}
	return false
}

func (r *Controller) event(n *corev1.Node, typ, reason, format string, args ...any) {
	if r.opts.Recorder != nil {
		r.opts.Recorder.Eventf(n, typ, reason, format, args...)
	}
}
