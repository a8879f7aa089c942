// Package lifecycle is Bosun's lifecycle manager (`bosun controller`): it
// keeps every cluster of a fleet at its rendered state, continuously and
// reentrantly. Each pass, per cluster: lint errors stop it (L02); an update
// block stops it; the infrastructure is brought to the cluster's spec
// through provider.Infra; the manifests are applied (internal/apply: SSA,
// prune, deletions) and waited for until healthy; node pools whose
// template changed are rolled (L44, L45); the status is written to the
// cluster's ConfigMap bosun-system/bosun-status (L40) with Events. One
// failing cluster never blocks the others: each has its own exponential
// backoff, and at most Concurrency clusters are worked on at once. All of
// its state lives in the clusters and their cloud (status ConfigMap, node
// labels and annotations), so it may be killed at any moment and started
// again (L42).
package lifecycle

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/utils/clock"

	"github.com/bosun-platform/bosun/internal/apply"
	"github.com/bosun-platform/bosun/internal/channels"
	"github.com/bosun-platform/bosun/internal/fleet"
	"github.com/bosun-platform/bosun/internal/lint"
	"github.com/bosun-platform/bosun/internal/provider"
	"github.com/bosun-platform/bosun/internal/render"
)

// Applier applies a rendered cluster's manifests (*apply.Applier).
type Applier interface {
	Apply(ctx context.Context, res *render.Result, opts apply.Options) (*apply.Result, error)
}

// Conn is how the controller reaches one cluster.
type Conn struct {
	// Kube is the cluster's API.
	Kube kubernetes.Interface
	// Dynamic reads any kind; the removed-API scan before an upgrade
	// (L30) needs it.
	Dynamic dynamic.Interface
	// Apply applies its manifests.
	Apply Applier
	// Infra builds its control plane and node groups; nil when the
	// controller does not manage them (reported in the status).
	Infra provider.Infra
	// Cloud sizes node groups and deletes instances during rolls; nil:
	// no rolls.
	Cloud provider.Provider
	// Config is the client configuration Kube was built from (the e2e
	// suite runs the downscaler's preview through it); may be nil.
	Config *rest.Config
}

// E2ERunner runs the smoke suite (`bosun e2e`, internal/e2e) against a
// cluster at its revision and records the result in the cluster's status;
// the controller runs it through this seam (internal/e2e imports this
// package).
type E2ERunner func(ctx context.Context, cl *fleet.Cluster, conn *Conn, res *render.Result) (E2EResult, error)

// Connector connects to the clusters of the fleet.
type Connector interface {
	// Connect returns the connection to the cluster; it is kept across
	// passes until a pass over the cluster fails.
	Connect(ctx context.Context, cl *fleet.Cluster) (*Conn, error)
}

// Options configure a Controller.
type Options struct {
	// FleetDir is the fleet directory, loaded again on every pass.
	FleetDir string
	// LoadFleet, if set, loads the fleet instead of fleet.Load(FleetDir).
	LoadFleet func() (*fleet.Fleet, error)
	// Channels, if set, reads the fleet's channels every pass (default
	// with FleetDir and without LoadFleet: channels.Open(FleetDir)); nil:
	// every cluster is rendered from the loaded fleet, with no revision.
	Channels func() (*channels.Channels, error)
	// Checkouts caches the fleet at channel revisions (default under the
	// user's cache directory, bosun/fleet-revisions).
	Checkouts *channels.Checkouts
	// Interval between passes (default 1m); also the first backoff.
	Interval time.Duration
	// MaxBackoff bounds the wait after repeated failures (default 10m).
	MaxBackoff time.Duration
	// Concurrency is how many clusters are worked on at once (default 4).
	Concurrency int
	// Clusters limits the controller to these IDs (default: every cluster).
	Clusters []string
	// DryRun reports what would change and changes nothing (no status is
	// written either).
	DryRun bool
	// HealthTimeout bounds the wait for applied workloads to roll out
	// (default 5m); PollEvery is how often they are checked (default 2s).
	HealthTimeout, PollEvery time.Duration
	// Roll tunes node pool rolls.
	Roll RollOptions
	// Clock (default the real clock).
	Clock clock.Clock
	// Connector reaches the clusters (required).
	Connector Connector
	// E2E, if set, runs the smoke suite once a cluster reached a version
	// it has no e2e result for (reconciled, applied = desired): the result
	// recorded in its status gates `bosun promote` (L43). A failure is
	// reported (Event, metric, status) but rolls nothing back; a suite cut
	// off (kill -9) runs again at the next pass. Nil: never.
	E2E E2ERunner
	// AfterApply, if set, is called with the cluster ID once its
	// manifests were applied, before the wait until they are healthy
	// (`bosun up` starts the cluster's agent there).
	AfterApply func(cluster string)
	// Registry receives the metrics (nil: not registered).
	Registry prometheus.Registerer
	// Log receives warnings (default: discard); Out one line per cluster
	// and pass that changed something or failed (default: discard).
	Log *slog.Logger
	Out io.Writer
}

// Controller is the lifecycle manager over one fleet.
type Controller struct {
	opts    Options
	metrics *metrics

	mu     sync.Mutex
	states map[string]*clusterState
}

// clusterState is the controller's memory of a cluster between passes:
// only the backoff and the connection; everything else is read again.
type clusterState struct {
	failures int
	next     time.Time
	conn     *Conn
}

// New checks the options and returns a controller.
func New(opts Options) (*Controller, error) {
	if opts.Connector == nil {
		return nil, errors.New("lifecycle: a Connector is required")
	}
	if opts.Interval < 0 || opts.Concurrency < 0 || opts.HealthTimeout < 0 {
		return nil, fmt.Errorf("lifecycle: interval %s, concurrency %d, health timeout %s: expected 0 (default) or more", opts.Interval, opts.Concurrency, opts.HealthTimeout)
	}
	if opts.Interval == 0 {
		opts.Interval = time.Minute
	}
	if opts.MaxBackoff == 0 {
		opts.MaxBackoff = 10 * time.Minute
	}
	if opts.Concurrency == 0 {
		opts.Concurrency = 4
	}
	if opts.HealthTimeout == 0 {
		opts.HealthTimeout = 5 * time.Minute
	}
	if opts.PollEvery == 0 {
		opts.PollEvery = 2 * time.Second
	}
	if opts.Clock == nil {
		opts.Clock = clock.RealClock{}
	}
	if opts.Log == nil {
		opts.Log = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	if opts.Out == nil {
		opts.Out = io.Discard
	}
	if opts.LoadFleet == nil {
		dir := opts.FleetDir
		opts.LoadFleet = func() (*fleet.Fleet, error) { return fleet.Load(dir) }
		if opts.Channels == nil {
			opts.Channels = func() (*channels.Channels, error) { return channels.Open(dir) }
		}
	}
	if opts.Checkouts == nil {
		root, err := os.UserCacheDir()
		if err != nil {
			root = os.TempDir()
		}
		opts.Checkouts = &channels.Checkouts{Root: filepath.Join(root, "bosun", "fleet-revisions")}
	}
	opts.Roll.defaults()
	return &Controller{opts: opts, metrics: newMetrics(opts.Registry), states: map[string]*clusterState{}}, nil
}

// Run makes a pass every interval until ctx ends. A pass that cannot load
// or render the fleet is logged and retried at the next interval.
func (c *Controller) Run(ctx context.Context) error {
	for {
		if _, err := c.Pass(ctx); err != nil {
			if ctx.Err() != nil {
				return nil
			}
			c.opts.Log.Warn("controller pass", "error", err)
			fmt.Fprintf(c.opts.Out, "pass failed: %v\n", err)
		}
		select {
		case <-ctx.Done():
			return nil
		case <-c.opts.Clock.After(c.opts.Interval):
		}
	}
}

// Result is the outcome of one pass over one cluster.
type Result struct {
	// Status is what the pass recorded (or would have, with DryRun).
	Status Status
	// Err is the pass's error; nil for a cluster that is only stopped by
	// lint or a block.
	Err error
	// Changes lists what the pass changed (or would have, with DryRun).
	Changes []string
	// Skipped: the cluster was not due (backing off).
	Skipped bool
}

// Pass loads and renders the fleet and works on every due cluster, at most
// Concurrency at once. It returns one result per selected cluster, sorted
// by ID; an error only when the fleet itself could not be used.
//
// Each cluster is rendered from the fleet at its channel's revision
// (channels.yaml; the working tree for dev, for channels without an
// entry and for a fleet outside git). Non-production clusters are worked
// on first; a production cluster moves to a new revision of its channel
// only once every non-production cluster of that channel in this pass
// has reached it (L43).
func (c *Controller) Pass(ctx context.Context) ([]Result, error) {
	start := c.opts.Clock.Now()
	f, err := c.opts.LoadFleet()
	if err != nil {
		return nil, fmt.Errorf("loading the fleet, %w", err)
	}
	clusters, err := c.selected(f)
	if err != nil {
		return nil, err
	}
	targets, err := c.targets(ctx, f)
	if err != nil {
		return nil, err
	}

	results := make([]Result, len(clusters))
	var prod, other []int
	for i, cl := range clusters {
		if cl.Environment == "production" {
			prod = append(prod, i)
		} else {
			other = append(other, i)
		}
	}
	c.wave(ctx, clusters, other, targets, results)
	// A production cluster waits for the non-production clusters of its
	// channel that did not reach the channel's revision: in this pass, or,
	// for those this pass does not cover (--clusters), by the status they
	// recorded (L40), so a pass over production alone still holds.
	behind := c.behindElsewhere(ctx, f, clusters, prod, targets)
	for _, i := range other {
		cl, r := clusters[i], results[i]
		t := targets[cl.ID]
		if r.Skipped || r.Err != nil || r.Status.Phase != PhaseReconciled || r.Status.ChannelRevision != t.revision {
			why := string(r.Status.Phase)
			if r.Skipped {
				why = "backing off"
			}
			behind[cl.Channel] = append(behind[cl.Channel], cl.ID+" ("+why+")")
		}
	}
	for _, i := range prod {
		cl := clusters[i]
		if b := behind[cl.Channel]; len(b) > 0 {
			t := targets[cl.ID]
			t.hold = fmt.Sprintf("waiting for the non-production clusters of channel %s to reach revision %s: %s",
				cl.Channel, shortRev(t.revision), strings.Join(b, ", "))
			targets[cl.ID] = t
		}
	}
	c.wave(ctx, clusters, prod, targets, results)
	c.metrics.passSeconds.Set(c.opts.Clock.Since(start).Seconds())
	return results, nil
}

// behindElsewhere returns, per channel of the production clusters at
// idx, the fleet's non-production clusters of that channel outside this
// pass that have not recorded reaching the channel's revision
// (reconciled at it), each with why; an unreachable one counts as behind.
func (c *Controller) behindElsewhere(ctx context.Context, f *fleet.Fleet, clusters []*fleet.Cluster, prod []int, targets map[string]target) map[string][]string {
	behind := map[string][]string{}
	if len(prod) == 0 {
		return behind
	}
	inPass := map[string]bool{}
	for _, cl := range clusters {
		inPass[cl.ID] = true
	}
	channels := map[string]string{} // channel -> revision
	for _, i := range prod {
		cl := clusters[i]
		channels[cl.Channel] = targets[cl.ID].revision
	}
	for _, cl := range f.Clusters {
		rev, ok := channels[cl.Channel]
		if !ok || inPass[cl.ID] || cl.Environment == "production" {
			continue
		}
		if why := c.recordedBehind(ctx, cl, rev); why != "" {
			behind[cl.Channel] = append(behind[cl.Channel], cl.ID+" ("+why+")")
		}
	}
	return behind
}

// recordedBehind says why cluster cl has not recorded reaching revision
// rev in its status, "" when it has.
func (c *Controller) recordedBehind(ctx context.Context, cl *fleet.Cluster, rev string) string {
	st := c.state(cl.ID)
	c.mu.Lock()
	conn := st.conn
	c.mu.Unlock()
	if conn == nil {
		var err error
		if conn, err = c.opts.Connector.Connect(ctx, cl); err != nil {
			return "unreachable: " + err.Error()
		}
	}
	rctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	live, err := ReadStatus(rctx, conn.Kube)
	switch {
	case err != nil:
		return "status unreadable: " + err.Error()
	case !live.Found:
		return "no status recorded"
	case live.Status.ChannelRevision != rev:
		return "at revision " + shortRev(live.Status.ChannelRevision)
	case live.Status.Phase != PhaseReconciled:
		return string(live.Status.Phase)
	}
	return ""
}

// wave works on the clusters at the given indexes, at most Concurrency at
// once, and waits for all of them.
func (c *Controller) wave(ctx context.Context, clusters []*fleet.Cluster, idx []int, targets map[string]target, results []Result) {
	start := c.opts.Clock.Now()
	sem := make(chan struct{}, c.opts.Concurrency)
	var wg sync.WaitGroup
	for _, i := range idx {
		cl := clusters[i]
		st := c.state(cl.ID)
		if start.Before(st.next) {
			results[i] = Result{Skipped: true, Status: Status{Cluster: cl.ID}}
			continue
		}
		wg.Add(1)
		sem <- struct{}{}
		go func(i int, cl *fleet.Cluster) {
			defer wg.Done()
			defer func() { <-sem }()
			results[i] = c.cluster(ctx, cl, targets[cl.ID])
		}(i, cl)
	}
	wg.Wait()
}

// target is what a pass brings one cluster to.
type target struct {
	res       *render.Result
	renderErr error
	lintErrs  []string
	// revision is the fleet revision res was rendered from ("" when the
	// controller does not read channels).
	revision string
	// hold says why a production cluster must not move to revision yet.
	hold string
}

// targets renders every cluster of the fleet at its channel's revision
// and lints each fleet revision as a whole: fleet-wide rules (L49)
// compare clusters with each other.
func (c *Controller) targets(ctx context.Context, f *fleet.Fleet) (map[string]target, error) {
	var chans *channels.Channels
	if c.opts.Channels != nil {
		var err error
		if chans, err = c.opts.Channels(); err != nil {
			return nil, fmt.Errorf("reading the fleet's channels, %w", err)
		}
	}
	byChannel := map[string]*revFleet{}
	byRev := map[string]*revFleet{}
	out := map[string]target{}
	for _, cl := range f.Clusters {
		rf, ok := byChannel[cl.Channel]
		if !ok {
			rev, followsTree := "", true
			var err error
			if chans != nil {
				rev, followsTree, err = chans.Resolve(cl.Channel)
			}
			if prev, seen := byRev[rev]; err == nil && seen {
				rf = prev
			} else {
				rf = &revFleet{f: f, rev: rev, err: err}
				if err == nil && !followsTree {
					if dir, err := chans.Tree(c.opts.Checkouts, rev); err != nil {
						rf.err = err
					} else if rf.f, err = fleet.Load(dir); err != nil {
						rf.err = fmt.Errorf("the fleet at revision %s (channel %s): %w", shortRev(rev), cl.Channel, err)
					}
				}
				if rf.err == nil {
					rf.render(ctx)
					byRev[rev] = rf
				}
			}
			byChannel[cl.Channel] = rf
		}
		t := target{revision: rf.rev}
		switch {
		case rf.err != nil:
			t.renderErr = rf.err
		case rf.errs[cl.ID] != nil:
			t.renderErr = rf.errs[cl.ID]
		case rf.res[cl.ID] == nil:
			t.renderErr = fmt.Errorf("cluster %s is not in the fleet at revision %s of channel %s", cl.ID, shortRev(rf.rev), cl.Channel)
		default:
			t.res, t.lintErrs = rf.res[cl.ID], rf.lint[cl.ID]
		}
		out[cl.ID] = t
	}
	return out, nil
}

// revFleet is the fleet at one revision, rendered and linted.
type revFleet struct {
	f    *fleet.Fleet
	rev  string
	err  error
	res  map[string]*render.Result
	errs map[string]error
	lint map[string][]string
}

// render renders every cluster of the fleet and lints them together.
func (rf *revFleet) render(ctx context.Context) {
	rf.res, rf.errs = map[string]*render.Result{}, map[string]error{}
	r, err := render.New(rf.f)
	if err != nil {
		rf.err = fmt.Errorf("preparing the fleet's templates, %w", err)
		if rf.rev != "" {
			rf.err = fmt.Errorf("preparing the fleet's templates at revision %s, %w", shortRev(rf.rev), err)
		}
		return
	}
	var ok []*render.Result
	for _, cl := range rf.f.Clusters {
		res, err := r.Cluster(ctx, cl.ID)
		if err != nil {
			rf.errs[cl.ID] = err
			continue
		}
		rf.res[cl.ID] = res
		ok = append(ok, res)
	}
	rf.lint = lintErrors(rf.f, ok)
}

// shortRev shortens a commit hash for messages.
func shortRev(rev string) string {
	if len(rev) >= 40 {
		return rev[:12]
	}
	return rev
}

// selected returns the clusters the controller works on, refusing IDs the
// fleet does not have.
func (c *Controller) selected(f *fleet.Fleet) ([]*fleet.Cluster, error) {
	if len(c.opts.Clusters) == 0 {
		return f.Clusters, nil
	}
	var out []*fleet.Cluster
	for _, id := range c.opts.Clusters {
		cl := f.Cluster(id)
		if cl == nil {
			return nil, fmt.Errorf("--clusters: cluster %q is not in fleet %s", id, f.Dir)
		}
		out = append(out, cl)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].ID < out[j].ID })
	return out, nil
}

// lintErrors returns, per cluster, the rules with unsuppressed errors.
func lintErrors(f *fleet.Fleet, results []*render.Result) map[string][]string {
	out := map[string][]string{}
	if len(results) == 0 {
		return out
	}
	rep := lint.Check(f, results, nil)
	for _, fd := range rep.Findings {
		if fd.Severity == lint.SeverityError && !fd.Suppressed && fd.Cluster != "" {
			out[fd.Cluster] = append(out[fd.Cluster], fd.Rule)
		}
	}
	return out
}

func (c *Controller) state(id string) *clusterState {
	c.mu.Lock()
	defer c.mu.Unlock()
	st, ok := c.states[id]
	if !ok {
		st = &clusterState{}
		c.states[id] = st
	}
	return st
}

// cluster makes one pass over one cluster and records its outcome.
func (c *Controller) cluster(ctx context.Context, cl *fleet.Cluster, t target) Result {
	st := c.state(cl.ID)
	now := c.opts.Clock.Now()
	out := c.reconcile(ctx, st, cl, t)
	c.mu.Lock()
	if out.Err != nil {
		st.failures++
		st.conn = nil
		st.next = now.Add(Backoff(st.failures, c.opts.Interval, c.opts.MaxBackoff))
	} else {
		st.failures = 0
		st.next = time.Time{}
	}
	c.mu.Unlock()
	c.metrics.observe(out.Status, out.Err != nil, float64(c.opts.Clock.Now().Unix()))
	switch {
	case out.Err != nil:
		fmt.Fprintf(c.opts.Out, "[%s] %s: %v\n", cl.ID, out.Status.Phase, out.Err)
	case len(out.Changes) > 0:
		verb := ""
		if c.opts.DryRun {
			verb = "would: "
		}
		fmt.Fprintf(c.opts.Out, "[%s] %s%s\n", cl.ID, verb, strings.Join(out.Changes, "; "))
	}
	return out
}

// pass is the work of one pass over one cluster: what it changed and the
// events to record.
type pass struct {
	changes []string
	events  []event
}

type event struct{ kind, reason, message string }

func (p *pass) change(reason, msg string) {
	p.changes = append(p.changes, msg)
	p.events = append(p.events, event{corev1.EventTypeNormal, reason, msg})
}

func (c *Controller) reconcile(ctx context.Context, st *clusterState, cl *fleet.Cluster, t target) Result {
	now := c.opts.Clock.Now()
	status := Status{Cluster: cl.ID, Channel: cl.Channel, Phase: PhaseFailed}
	if t.res != nil {
		status.DesiredVersion = t.res.Version
	}
	conn := st.conn
	if conn == nil {
		var err error
		if conn, err = c.opts.Connector.Connect(ctx, cl); err != nil {
			return Result{Status: status, Err: fmt.Errorf("connecting, %w", err)}
		}
		st.conn = conn
	}
	live, err := ReadStatus(ctx, conn.Kube)
	if err != nil {
		return Result{Status: status, Err: err}
	}
	last := live.Status
	status.AppliedVersion, status.ManifestsVersion, status.Roll = last.AppliedVersion, last.ManifestsVersion, last.Roll
	status.ChannelRevision = last.ChannelRevision
	if last.ChannelRevision == t.revision {
		t.hold = "" // already there: nothing to wait for
	}
	p := &pass{}
	err = c.work(ctx, conn, cl, t, live, &status, p)
	if err != nil {
		status.Phase, status.LastError = PhaseFailed, err.Error()
		p.events = append(p.events, event{corev1.EventTypeWarning, "Failed", err.Error()})
	}
	status = Next(last, status, now)
	if !c.opts.DryRun && (!live.Found || live.Invalid != "" || !sameContent(last, status)) {
		if werr := WriteStatus(ctx, conn.Kube, status); werr != nil {
			err = errors.Join(err, werr)
		}
		if last.Phase != status.Phase || len(p.changes) > 0 || (err != nil && last.LastError != status.LastError) {
			c.recordEvents(ctx, conn.Kube, p.events)
		}
	}
	if err == nil && !c.opts.DryRun && c.opts.E2E != nil && t.res != nil && needsE2E(live, status) {
		res := c.runE2E(ctx, cl, conn, t.res, status)
		p.changes = append(p.changes, res)
	}
	return Result{Status: status, Err: err, Changes: p.changes}
}

// needsE2E reports a cluster reconciled at a version (and revision) its
// status has no e2e result for.
func needsE2E(live Live, status Status) bool {
	if status.Phase != PhaseReconciled || status.AppliedVersion == "" || status.AppliedVersion != status.DesiredVersion {
		return false
	}
	e := live.E2E
	return e == nil || e.Version != status.AppliedVersion || e.Revision != status.ChannelRevision
}

// runE2E runs the suite, records an Event and the metric, and says what
// happened.
func (c *Controller) runE2E(ctx context.Context, cl *fleet.Cluster, conn *Conn, res *render.Result, status Status) string {
	fmt.Fprintf(c.opts.Out, "[%s] running the e2e suite at version %s\n", cl.ID, status.AppliedVersion)
	r, err := c.opts.E2E(ctx, cl, conn, res)
	result, ev := "passed", event{corev1.EventTypeNormal, "E2EPassed", ""}
	switch {
	case err != nil:
		result, ev = "error", event{corev1.EventTypeWarning, "E2EError", "the e2e suite could not run: " + err.Error()}
	case !r.Passed:
		result, ev = "failed", event{corev1.EventTypeWarning, "E2EFailed", ""}
	}
	if ev.message == "" {
		var failed []string
		for _, ch := range r.Checks {
			if ch.Result == CheckFailed {
				failed = append(failed, ch.Name)
			}
		}
		ev.message = fmt.Sprintf("e2e suite %s at version %s (revision %s) in %s", result, status.AppliedVersion, shortRev(status.ChannelRevision), r.Duration)
		if len(failed) > 0 {
			ev.message += "; failed: " + strings.Join(failed, ", ")
		}
	}
	c.metrics.e2e.WithLabelValues(cl.ID, result).Inc()
	c.recordEvents(ctx, conn.Kube, []event{ev})
	return ev.message
}

// work does the steps of a pass and fills status; an error fails the pass.
func (c *Controller) work(ctx context.Context, conn *Conn, cl *fleet.Cluster, t target, live Live, status *Status, p *pass) error {
	if t.renderErr != nil {
		return fmt.Errorf("rendering, %w", t.renderErr)
	}
	res := t.res
	d := Decide(Observed{LintErrors: t.lintErrs, FileBlock: cl.UpdateBlock, LiveBlock: live.Block, Desired: res.Version, Last: live.Status, Hold: t.hold})
	if d.Stop {
		status.Phase, status.BlockedReason = d.Phase, d.Reason
		if live.Status.Phase != d.Phase || live.Status.BlockedReason != d.Reason {
			p.events = append(p.events, event{corev1.EventTypeWarning, string(d.Phase), d.Reason})
		}
		return nil
	}
	if !c.opts.DryRun {
		status.ChannelRevision = t.revision
	}
	spec, err := provider.SpecFor(res.Cluster)
	if err != nil {
		return err
	}
	// 0. Before an upgrade, nothing may be served only by APIs the target
	// release removes (L30). Checked only when something is to change.
	if live.Status.AppliedVersion != res.Version {
		if err := upgradeGate(ctx, conn, res, spec.KubernetesVersion); err != nil {
			return err
		}
	}
	// 1. Infrastructure: control plane and node groups.
	if conn.Infra != nil {
		var changes []provider.Change
		if c.opts.DryRun {
			changes, err = conn.Infra.Plan(ctx, spec)
		} else {
			changes, err = conn.Infra.Apply(ctx, spec)
		}
		if err != nil {
			return fmt.Errorf("infrastructure, %w", err)
		}
		for _, ch := range changes {
			p.change("Infrastructure", ch.String())
		}
	}
	// 2. Manifests, then wait until what they run is healthy.
	if d.ApplyManifests {
		status.Phase = PhaseApplying
		r, err := conn.Apply.Apply(ctx, res, apply.Options{DryRun: c.opts.DryRun})
		if err != nil {
			return fmt.Errorf("applying manifests, %w", err)
		}
		if err := r.Err(); err != nil {
			return fmt.Errorf("applying manifests, %w", err)
		}
		changed := r.Created+r.Configured+len(r.Pruned)+len(r.Deleted) > 0
		if changed {
			p.change("Applied", fmt.Sprintf("manifests of version %s: %d created, %d configured, %d unchanged, %d pruned, %d deleted",
				res.Version, r.Created, r.Configured, r.Unchanged, len(r.Pruned), len(r.Deleted)))
		}
		// Wait until what changed is healthy. When the apply changed no
		// object (only the spec changed, or a pass was cut short after
		// applying) there is nothing to wait for, and a roll in progress
		// is not held up by pods it is moving.
		if !c.opts.DryRun && !changed {
			status.ManifestsVersion = res.Version
		} else if !c.opts.DryRun {
			if c.opts.AfterApply != nil {
				c.opts.AfterApply(cl.ID)
			}
			if err := waitHealthy(ctx, c.opts.Clock, conn.Kube, workloads(res), c.opts.HealthTimeout, c.opts.PollEvery); err != nil {
				return err
			}
			status.ManifestsVersion = res.Version
		}
	}
	// 3. Node pool rolls, one pool at a time.
	status.Roll = nil
	if conn.Cloud != nil {
		prog, err := c.roll(ctx, conn, cl, spec, p)
		if err != nil {
			return fmt.Errorf("rolling node pools, %w", err)
		}
		status.Roll = prog
	}
	switch {
	case status.Roll != nil:
		status.Phase = PhaseRolling
	case c.opts.DryRun && d.ApplyManifests:
		status.Phase = PhaseApplying
	default:
		status.Phase = PhaseReconciled
		status.AppliedVersion = res.Version
	}
	return nil
}

// recordEvents records the pass's events on the status ConfigMap; failing
// to is only logged (the status already says it).
func (c *Controller) recordEvents(ctx context.Context, cs kubernetes.Interface, events []event) {
	now := metav1.NewTime(c.opts.Clock.Now())
	for _, e := range events {
		msg := e.message
		if len(msg) > 1000 {
			msg = msg[:1000] + "..."
		}
		ev := &corev1.Event{
			ObjectMeta: metav1.ObjectMeta{GenerateName: StatusName + ".", Namespace: StatusNamespace},
			InvolvedObject: corev1.ObjectReference{
				Kind: "ConfigMap", APIVersion: "v1", Namespace: StatusNamespace, Name: StatusName,
			},
			Type: e.kind, Reason: e.reason, Message: msg,
			Source:         corev1.EventSource{Component: FieldManager},
			FirstTimestamp: now, LastTimestamp: now, Count: 1,
		}
		if _, err := cs.CoreV1().Events(StatusNamespace).Create(ctx, ev, metav1.CreateOptions{}); err != nil {
			c.opts.Log.Warn("recording event", "reason", e.reason, "error", err)
		}
	}
}
