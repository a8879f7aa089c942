package console

import (
	"context"
	"errors"
	"fmt"
	"io"
	"sort"
	"sync"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/client-go/discovery"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	authzclient "k8s.io/client-go/kubernetes/typed/authorization/v1"
	"k8s.io/client-go/metadata"
	"k8s.io/client-go/metadata/metadatainformer"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/cache"
	"k8s.io/client-go/util/flowcontrol"
	"k8s.io/utils/clock"
)

// ClusterSource is one cluster the console watches.
type ClusterSource struct {
	// Name identifies the cluster in URLs and results (the kubeconfig
	// context name, or the fleet's cluster id).
	Name string
	// Config reaches the cluster's API server.
	Config *rest.Config
	// Environment, Provider, Region and Channel come from the fleet
	// registry when the console is given one (--fleet); empty otherwise.
	Environment, Provider, Region, Channel string
	// Client and Metadata, when both are set, are used instead of clients
	// built from Config (unit tests pass fakes).
	Client   kubernetes.Interface
	Metadata metadata.Interface
	// Dynamic reads live objects for detail pages; built from Config when
	// nil (with neither, detail pages show the cached summary).
	Dynamic dynamic.Interface
	// Metrics reads container usage; nil reads the metrics API through
	// the dynamic client (DynamicMetrics).
	Metrics MetricsSource
}

// State is a cluster's connection state.
type State string

// The states of a cluster. Down clusters keep their last known objects,
// which search returns marked stale.
const (
	StateSyncing State = "syncing"
	StateReady   State = "ready"
	StateDown    State = "down"
)

// ClusterStatus is what the console knows about a cluster's connection.
type ClusterStatus struct {
	Name        string    `json:"name"`
	State       State     `json:"state"`
	Error       string    `json:"error,omitempty"`
	LastSeen    time.Time `json:"lastSeen,omitempty"`
	Version     string    `json:"version,omitempty"`
	Objects     int       `json:"objects"`
	Environment string    `json:"environment,omitempty"`
	Provider    string    `json:"provider,omitempty"`
	Region      string    `json:"region,omitempty"`
	Channel     string    `json:"channel,omitempty"`
	// Lifecycle is what the lifecycle manager recorded in the cluster
	// (ConfigMap bosun-system/bosun-status); nil when it has not.
	Lifecycle *LifecycleView `json:"lifecycle,omitempty"`
	// Access are the emergency access requests pending or active in the
	// cluster (bosun access, L47); AccessError says why they could not be
	// read.
	Access      []AccessView `json:"access,omitempty"`
	AccessError string       `json:"accessError,omitempty"`
	// Unavailable lists the kinds the cluster refused to list (forbidden
	// by RBAC, or not served), sorted by kind. The console asks again with
	// backoff, so a permission granted later shows up without a restart.
	Unavailable []UnavailableKind `json:"unavailableKinds,omitempty"`
}

// The reasons a kind is unavailable.
const (
	ReasonForbidden = "forbidden"
	ReasonNotServed = "not served"
)

// UnavailableKind is a kind a cluster refused to list.
type UnavailableKind struct {
	Kind string `json:"kind"`
	// Reason is ReasonForbidden or ReasonNotServed.
	Reason string `json:"reason"`
	// Error is the API server's answer.
	Error string `json:"error"`
	// NextRetry is when the console asks again (zero for the moment a
	// retry is being scheduled).
	NextRetry time.Time `json:"nextRetry,omitzero"`
}

// cluster is one cluster's watch cache: informers over Kinds plus the Item
// index kept current by their event handlers.
type cluster struct {
	src   ClusterSource
	clock clock.WithTicker
	probe discovery.ServerVersionInterface
	// dyn reads the metrics API.
	dyn dynamic.Interface
	// liveDyn reads live objects for detail pages, CRDs and custom objects
	// (nil: summaries only). It has its own rate limiter, sized for pages,
	// never the watch's; liveConfig is its config, from which clients that
	// impersonate the user are built, so they share that limiter.
	liveDyn    dynamic.Interface
	liveConfig *rest.Config
	// impersonate makes live reads act as the signed-in user, and search
	// show only what that user may list.
	impersonate bool
	// sar asks the cluster what a user may do.
	sar authzclient.SubjectAccessReviewInterface

	mu        sync.RWMutex
	informers map[string]cache.SharedIndexInformer
	synced    bool
	// labels indexes items by label for label queries.
	labels labelIndex
	// order keeps each kind's items in display order for scans, by Kind
	// name.
	order map[string]*orderedItems
	// objects counts cached objects (kept by the index handler).
	objects int
	// usage is the last read of the metrics API (nil: unknown).
	usage UsageByContainer
	// metrics reads usage (nil: never); history keeps its readings over
	// the usage window (nil: no history).
	metrics MetricsSource
	history *history
	// meta lists kinds to learn whether the console may watch them.
	meta metadata.Interface
	// kinds is the watch state of every kind, by Kind name.
	kinds map[string]*kindState
	// retry is the first delay before asking again for a refused kind;
	// it doubles up to retryMax.
	retry, retryMax time.Duration
	// ctx is the context the cluster runs in (set by run), for informers
	// started later.
	ctx      context.Context
	healthy  bool
	err      string
	lastSeen time.Time
	version  string
	// statusClient reads the lifecycle status; lifecycle is the last
	// one read (guarded by mu).
	statusClient kubernetes.Interface
	lifecycle    *LifecycleView
	// access and accessErr are the last emergency access requests read
	// (guarded by mu).
	access    []AccessView
	accessErr string
}

// liveLimit is the rate limit of a cluster's live reads.
type liveLimit struct {
	qps   float32
	burst int
}

func newCluster(src ClusterSource, clk clock.WithTicker, retry, retryMax time.Duration, live liveLimit) (*cluster, error) {
	c := &cluster{src: src, clock: clk, retry: retry, retryMax: retryMax, informers: map[string]cache.SharedIndexInformer{}, labels: labelIndex{}, order: map[string]*orderedItems{}, kinds: map[string]*kindState{}}
	cs, mc := src.Client, src.Metadata
	if cs == nil || mc == nil {
		var err error
		if cs, err = kubernetes.NewForConfig(src.Config); err != nil {
			return nil, fmt.Errorf("cluster %s: building client, %w", src.Name, err)
		}
		if mc, err = metadata.NewForConfig(src.Config); err != nil {
			return nil, fmt.Errorf("cluster %s: building metadata client, %w", src.Name, err)
		}
	}
	c.probe = cs.Discovery()
	c.statusClient = cs
	c.meta = mc
	c.sar = cs.AuthorizationV1().SubjectAccessReviews()
	if src.Config != nil {
		// The probe gets its own client with a short timeout, so a hung API
		// server is reported down within seconds.
		cfg := rest.CopyConfig(src.Config)
		cfg.Timeout = 3 * time.Second
		pc, err := kubernetes.NewForConfig(cfg)
		if err != nil {
			return nil, fmt.Errorf("cluster %s: building probe client, %w", src.Name, err)
		}
		c.probe, c.statusClient = pc.Discovery(), pc
		if c.dyn, err = dynamic.NewForConfig(cfg); err != nil {
			return nil, fmt.Errorf("cluster %s: building dynamic client, %w", src.Name, err)
		}
		// Live reads get a limiter of their own, sized for pages. Built
		// from the source config, they had the watch's limit (50 QPS
		// from a kubeconfig, or the very RateLimiter the config carries),
		// and a detail page waited 0.6 s under 32 clients (issue 18).
		c.liveConfig = rest.CopyConfig(src.Config)
		c.liveConfig.Timeout = 10 * time.Second
		c.liveConfig.QPS, c.liveConfig.Burst = live.qps, live.burst
		c.liveConfig.RateLimiter = flowcontrol.NewTokenBucketRateLimiter(live.qps, live.burst)
		if c.liveDyn, err = dynamic.NewForConfig(c.liveConfig); err != nil {
			return nil, fmt.Errorf("cluster %s: building live client, %w", src.Name, err)
		}
	}
	if src.Dynamic != nil {
		c.dyn, c.liveDyn = src.Dynamic, src.Dynamic
	}
	c.metrics = src.Metrics
	if c.metrics == nil && c.dyn != nil {
		c.metrics = DynamicMetrics{Client: c.dyn}
	}
	typed := informers.NewSharedInformerFactory(cs, 0)
	meta := metadatainformer.NewSharedInformerFactory(mc, 0)
	for _, k := range Kinds {
		var inf cache.SharedIndexInformer
		if k.MetadataOnly {
			inf = meta.ForResource(k.GVR).Informer()
		} else {
			gi, err := typed.ForResource(k.GVR)
			if err != nil {
				return nil, fmt.Errorf("cluster %s: informer for %s, %w", src.Name, k.Plural, err)
			}
			inf = gi.Informer()
		}
		// A failing list or watch marks the cluster down at once; the
		// health probe brings it back (the reflector keeps retrying).
		if err := inf.SetWatchErrorHandler(func(_ *cache.Reflector, err error) { c.noteWatchError(k.Name, err) }); err != nil {
			return nil, fmt.Errorf("cluster %s: watch error handler, %w", src.Name, err)
		}
		if err := inf.SetTransform(c.transform(k)); err != nil {
			return nil, fmt.Errorf("cluster %s: %s transform, %w", src.Name, k.Plural, err)
		}
		if _, err := inf.AddEventHandler(c.indexHandler()); err != nil {
			return nil, fmt.Errorf("cluster %s: %s index handler, %w", src.Name, k.Plural, err)
		}
		c.informers[k.Name] = inf
		c.kinds[k.Name] = &kindState{}
		c.order[k.Name] = &orderedItems{}
	}
	return c, nil
}

// run starts watching every kind, the health probe and the usage poll and
// returns at once; all stop when ctx ends. Nothing here waits on the API
// server, so a down cluster never holds up the others.
func (c *cluster) run(ctx context.Context, probeEvery, usageEvery time.Duration) {
	c.mu.Lock()
	c.ctx = ctx
	for _, k := range Kinds {
		c.kinds[k.Name].retrying = true
	}
	c.mu.Unlock()
	for _, k := range Kinds {
		go c.watchKind(ctx, k, nil)
	}
	go c.probeLoop(ctx, probeEvery)
	go c.pollUsage(ctx, usageEvery)
}

// probeLoop asks the API server for its version every interval, with a
// short timeout, to notice a cluster going down and coming back.
func (c *cluster) probeLoop(ctx context.Context, every time.Duration) {
	t := c.clock.NewTicker(every)
	defer t.Stop()
	for {
		v, err := c.probe.ServerVersion()
		if err != nil {
			c.noteError(fmt.Errorf("probing API server, %w", err))
		} else {
			c.noteHealthy(v.GitVersion)
			c.readLifecycle(ctx)
			c.readAccess(ctx)
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C():
		}
	}
}

// noteWatchError marks the cluster down when a list or watch could not
// reach the API server. An answer from the server (forbidden, expired
// resource version, kind not served) means it is up: the reflector retries
// on its own and the other kinds carry on.
// A kind the console may no longer list (its RBAC was revoked, say) is
// marked unavailable until a retry finds it allowed again.
func (c *cluster) noteWatchError(kind string, err error) {
	var status apierrors.APIStatus
	if !errors.As(err, &status) {
		c.noteError(err)
		return
	}
	if refused(err) {
		c.refuse(kind, err)
	}
}

func (c *cluster) noteError(err error) {
	// An expired resource version or a closed stream is the normal life of
	// a watch (the reflector relists), not a sign the cluster is down.
	if errors.Is(err, context.Canceled) || errors.Is(err, io.EOF) || apierrors.IsResourceExpired(err) || apierrors.IsGone(err) {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	c.healthy = false
	c.err = err.Error()
}

func (c *cluster) noteHealthy(version string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.healthy, c.err, c.version, c.lastSeen = true, "", version, c.clock.Now()
}

// hasSynced reports whether every informer has listed once.
func (c *cluster) hasSynced() bool {
	c.mu.RLock()
	done := c.synced
	c.mu.RUnlock()
	if done {
		return true
	}
	for kind, inf := range c.informers {
		c.mu.RLock()
		ks := *c.kinds[kind]
		c.mu.RUnlock()
		if ks.reason != "" {
			continue // refused kinds do not hold up readiness
		}
		if !ks.started || !inf.HasSynced() {
			return false
		}
	}
	c.mu.Lock()
	c.synced = true
	c.mu.Unlock()
	return true
}

// status reports the cluster's state. A cluster is down when its last
// probe or watch failed, syncing until every informer has listed once, and
// ready otherwise.
func (c *cluster) status() ClusterStatus {
	synced := c.hasSynced()
	c.mu.RLock()
	defer c.mu.RUnlock()
	st := ClusterStatus{
		Name: c.src.Name, Error: c.err, LastSeen: c.lastSeen, Version: c.version, Objects: c.objects,
		Environment: c.src.Environment, Provider: c.src.Provider, Region: c.src.Region, Channel: c.src.Channel,
		Lifecycle: c.lifecycle, Access: c.access, AccessError: c.accessErr,
	}
	st.Unavailable = c.unavailableKinds()
	switch {
	case c.err != "":
		st.State = StateDown
	case !synced || !c.healthy:
		st.State = StateSyncing
	default:
		st.State = StateReady
	}
	return st
}

// match appends the cluster's items that match q to out, in the default
// order (kind in Kinds order, namespace, name). Kind filters skip whole
// kinds; a label query reads only the label index's candidates.
func (c *cluster) match(q Query, out []*Item) []*Item {
	m := q.matcher()
	if cands, ok := c.candidates(q); ok {
		n := len(out)
		for _, it := range cands {
			if m.matches(it) {
				out = append(out, it)
			}
		}
		sortItems(out[n:])
		return out
	}
	for _, k := range Kinds {
		if !anyEqual(q.Kinds, k.Name, true) || (len(q.Not["kind"]) > 0 && matchesFilter("kind", q.Not["kind"], &Item{Kind: k.Name})) {
			continue
		}
		for _, it := range c.ordered(k.Name) {
			if m.matches(it) {
				out = append(out, it)
			}
		}
	}
	return out
}

// ordered returns the items of kind in display order. The slice is never
// modified: the caller may read it without the lock.
func (c *cluster) ordered(kind string) []*Item {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.order[kind].merged()
}

// object returns the cached summary of an object of kind k.
func (c *cluster) object(k Kind, namespace, name string) (*cached, bool) {
	inf, ok := c.informers[k.Name]
	if !ok {
		return nil, false
	}
	key := name
	if namespace != "" {
		key = namespace + "/" + name
	}
	obj, exists, err := inf.GetIndexer().GetByKey(key)
	if err != nil || !exists {
		return nil, false
	}
	cd, ok := obj.(*cached)
	return cd, ok
}

// list returns the cached summaries of kind k.
func (c *cluster) list(k Kind) []*cached {
	inf, ok := c.informers[k.Name]
	if !ok {
		return nil
	}
	objs := inf.GetStore().List()
	out := make([]*cached, 0, len(objs))
	for _, o := range objs {
		if cd, ok := o.(*cached); ok {
			out = append(out, cd)
		}
	}
	return out
}

// sortItems orders items by cluster, kind (in Kinds order), namespace and
// name, which is how results are shown when no other order is asked for.
func sortItems(items []*Item) {
	sort.Slice(items, func(i, j int) bool { return defaultLess(items[i], items[j]) })
}

var kindOrder = func() map[string]int {
	m := map[string]int{}
	for i, k := range Kinds {
		m[k.Name] = i
	}
	return m
}()
