package console

import (
	"context"
	"fmt"
	"runtime"
	"sort"
	"sync"
	"sync/atomic"
	"time"

	"k8s.io/utils/clock"

	"github.com/bosun-platform/bosun/internal/provider"
)

// Default limit of each cluster's live reads: a detail page is one GET, so
// 200 a second is far beyond what people clicking produce, and a script
// hammering the API still cannot push more than that at an API server.
const (
	DefaultLiveQPS   = 200
	DefaultLiveBurst = 400
)

// Options configure a Console.
type Options struct {
	// Clusters are the clusters to watch; names must be unique.
	Clusters []ClusterSource
	// Clock is injected for tests (default: the real clock).
	Clock clock.WithTicker
	// ProbeInterval is how often each API server is probed (default 5s).
	ProbeInterval time.Duration
	// UsageInterval is how often the metrics API is read for usage
	// (default 60s; negative: never).
	UsageInterval time.Duration
	// UsageWindow is how much usage history is kept per container for
	// right-sizing (default 24h; negative: none). It holds
	// UsageWindow/UsageInterval samples of 8 bytes per container (L38).
	UsageWindow time.Duration
	// Impersonate makes live reads (detail YAML, CRDs) act as the
	// signed-in user and limits search and lists to what that user may
	// list. The fleet page and cost are aggregates and are not filtered.
	Impersonate bool
	// Cost configures prices and aggregation labels.
	Cost CostOptions
	// KindRetry is how long the console waits before asking a cluster
	// again for a kind it refused (forbidden or not served); the wait
	// doubles up to KindRetryMax (defaults DefaultKindRetry and
	// DefaultKindRetryMax).
	KindRetry, KindRetryMax time.Duration
	// LiveQPS and LiveBurst limit each cluster's live reads (detail
	// pages, CRDs, custom objects), with a limiter of their own apart from
	// the watch's (defaults DefaultLiveQPS and DefaultLiveBurst).
	LiveQPS   float32
	LiveBurst int
	// Prices, when set, supplies the provider's current prices, read every
	// PriceInterval (default 5 min).
	Prices        PriceSource
	PriceInterval time.Duration
}

// Console watches every cluster and answers searches from memory.
type Console struct {
	clusters []*cluster
	byName   map[string]*cluster
	clock    clock.WithTicker
	probe    time.Duration
	usage    time.Duration
	window   time.Duration
	cost     CostOptions

	access accessCache

	prices        PriceSource
	priceInterval time.Duration
	priceMu       sync.RWMutex
	offerings     []provider.Offering
	priceErr      string
}

// New builds a Console; it does not contact any cluster until Start.
func New(opts Options) (*Console, error) {
	if opts.Clock == nil {
		opts.Clock = clock.RealClock{}
	}
	if opts.ProbeInterval <= 0 {
		opts.ProbeInterval = 5 * time.Second
	}
	if opts.PriceInterval <= 0 {
		opts.PriceInterval = 5 * time.Minute
	}
	if opts.KindRetry <= 0 {
		opts.KindRetry = DefaultKindRetry
	}
	if opts.KindRetryMax < opts.KindRetry {
		opts.KindRetryMax = max(DefaultKindRetryMax, opts.KindRetry)
	}
	if opts.LiveQPS <= 0 {
		opts.LiveQPS = DefaultLiveQPS
	}
	if opts.LiveBurst <= 0 {
		opts.LiveBurst = DefaultLiveBurst
	}
	if opts.UsageInterval == 0 {
		opts.UsageInterval = time.Minute
	}
	if opts.UsageWindow == 0 {
		opts.UsageWindow = DefaultUsageWindow
	}
	c := &Console{byName: map[string]*cluster{}, clock: opts.Clock, probe: opts.ProbeInterval, usage: opts.UsageInterval, window: opts.UsageWindow, cost: opts.Cost.withDefaults(),
		prices: opts.Prices, priceInterval: opts.PriceInterval}
	for _, src := range opts.Clusters {
		if _, dup := c.byName[src.Name]; dup {
			return nil, fmt.Errorf("cluster %q is listed twice", src.Name)
		}
		cl, err := newCluster(src, opts.Clock, opts.KindRetry, opts.KindRetryMax, liveLimit{opts.LiveQPS, opts.LiveBurst})
		if err != nil {
			return nil, err
		}
		cl.impersonate = opts.Impersonate
		if opts.UsageWindow > 0 && opts.UsageInterval > 0 {
			cl.history = newHistory(int(opts.UsageWindow / opts.UsageInterval))
		}
		c.clusters = append(c.clusters, cl)
		c.byName[src.Name] = cl
	}
	sort.Slice(c.clusters, func(i, j int) bool { return c.clusters[i].src.Name < c.clusters[j].src.Name })
	return c, nil
}

// Start begins watching every cluster and returns at once; the caches
// fill in the background and stop when ctx ends.
func (c *Console) Start(ctx context.Context) {
	for _, cl := range c.clusters {
		cl.run(ctx, c.probe, c.usage)
	}
	if c.prices != nil {
		go c.pollPrices(ctx, c.priceInterval)
	}
}

// Clusters returns the status of every cluster, sorted by name.
func (c *Console) Clusters() []ClusterStatus {
	out := make([]ClusterStatus, 0, len(c.clusters))
	for _, cl := range c.clusters {
		out = append(out, cl.status())
	}
	return out
}

// ClusterGroup is the part of a result from one cluster.
type ClusterGroup struct {
	Cluster ClusterStatus `json:"cluster"`
	// Stale is true when the cluster is down: its items are the last known.
	Stale bool    `json:"stale,omitempty"`
	Items []*Item `json:"items"`
	Total int     `json:"total"`
}

// Result is the answer to a search or list.
type Result struct {
	Query  string         `json:"query"`
	Total  int            `json:"total"`
	Shown  int            `json:"shown"`
	Groups []ClusterGroup `json:"groups"`
	TookMS float64        `json:"tookMs"`
}

// Items returns every shown item in group order.
func (r Result) Items() []*Item {
	var out []*Item
	for _, g := range r.Groups {
		out = append(out, g.Items...)
	}
	return out
}

// Search answers q from the caches (L48). At most limit items are returned
// per cluster (0: no limit); Total counts every match. Only clusters with
// matches, or that are not ready, appear as groups, so a down cluster is
// always visible in a result.
func (c *Console) Search(q Query, limit int, order string) Result {
	return c.SearchFor(context.Background(), q, limit, order)
}

// SearchFor is Search on behalf of a request: with impersonation on, only
// the items the request's user may list (SubjectAccessReview, cached for a
// minute) are returned and counted. Clusters are searched in parallel,
// up to one per CPU.
func (c *Console) SearchFor(ctx context.Context, q Query, limit int, order string) Result {
	start := time.Now() // wall time of the query itself, for display only
	res := Result{Query: q.Raw}
	var wanted []*cluster
	for _, cl := range c.clusters {
		if anyEqual(q.Clusters, cl.src.Name, false) {
			wanted = append(wanted, cl)
		}
	}
	less := orderLess(order)
	groups := make([]*ClusterGroup, len(wanted))
	parallel(len(wanted), func(i int) {
		cl := wanted[i]
		st := cl.status()
		// match returns the matches in the default order, so only a
		// non-default order needs a sort, and only of the items shown.
		items := c.visible(ctx, cl, cl.match(q, nil))
		if len(items) == 0 && st.State == StateReady {
			return
		}
		groups[i] = &ClusterGroup{Cluster: st, Stale: st.State == StateDown, Total: len(items), Items: firstItems(items, less, limit)}
	})
	for _, g := range groups {
		if g == nil {
			continue
		}
		res.Total += g.Total
		res.Shown += len(g.Items)
		res.Groups = append(res.Groups, *g)
	}
	res.TookMS = float64(time.Since(start).Microseconds()) / 1000
	return res
}

// parallel runs f(0) .. f(n-1) on up to GOMAXPROCS goroutines and returns
// when all are done.
func parallel(n int, f func(i int)) {
	workers := min(n, runtime.GOMAXPROCS(0))
	if workers <= 1 {
		for i := 0; i < n; i++ {
			f(i)
		}
		return
	}
	var next atomic.Int64
	var wg sync.WaitGroup
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := int(next.Add(1)) - 1; i < n; i = int(next.Add(1)) - 1 {
				f(i)
			}
		}()
	}
	wg.Wait()
}

// SortItems orders items by one of: name, namespace, kind, status, node,
// restarts, age (oldest first), -age (newest first), ties in the default
// order. The default (empty or unknown) is cluster, kind, namespace, name.
func SortItems(items []*Item, order string, now time.Time) {
	before := thenDefault(orderLess(order))
	sort.Slice(items, func(i, j int) bool { return before(items[i], items[j]) })
}

// cluster returns the named cluster.
func (c *Console) cluster(name string) (*cluster, bool) {
	cl, ok := c.byName[name]
	return cl, ok
}

// WaitSynced blocks until every cluster is ready or down, or ctx ends. It
// is for tests and benchmarks; the server never waits.
func (c *Console) WaitSynced(ctx context.Context) error {
	for {
		pending := 0
		for _, st := range c.Clusters() {
			if st.State == StateSyncing {
				pending++
			}
		}
		if pending == 0 {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("waiting for %d clusters to sync, %w", pending, ctx.Err())
		case <-time.After(20 * time.Millisecond):
		}
	}
}
