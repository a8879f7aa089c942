// Package console implements `bosun console`.
package console

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"time"

	"github.com/spf13/cobra"

	"github.com/bosun-platform/bosun/internal/cli/iostreams"
	"github.com/bosun-platform/bosun/internal/console"
	"github.com/bosun-platform/bosun/internal/fleet"
	bosunaws "github.com/bosun-platform/bosun/internal/provider/aws"
	"github.com/bosun-platform/bosun/internal/provider/local"
)

type flagpole struct {
	kubeconfig     string
	contexts       []string
	allContexts    bool
	fleetDir       string
	listen         string
	tokenFile      string
	trustedHeader  string
	groupsHeader   string
	priceOverrides string
	region         string
	spotDiscount   float64
	capacityLabels []string
	teamLabels     []string
	appLabels      []string
	probeInterval  time.Duration
	kindRetry      time.Duration
	kindRetryMax   time.Duration
	usageInterval  time.Duration
	usageWindow    time.Duration
	impersonate    bool
	trustedProxies []string
	liveQPS        float32
	liveBurst      int
	printRBAC      bool
	localCloud     string
	awsCluster     string
}

// NewCommand returns `bosun console`.
func NewCommand(streams iostreams.IOStreams) *cobra.Command {
	flags := &flagpole{}
	cmd := &cobra.Command{
		Use:   "console",
		Short: "Serve one read-only web UI and API over every cluster",
		Long: `Serve the fleet console: search, resource lists and details, cost and slack,
and fleet status over every cluster, answered from watch caches (L48).

Clusters are kubeconfig contexts: every context by default (--all-contexts),
or those named with --contexts. A cluster that is down is shown as down and
never blocks the others. With --fleet, environment, provider, region and
channel come from the fleet registry (matched by cluster id or alias).

Listening beyond loopback needs authentication: --token-file (bearer tokens)
or --trusted-header (set by an authenticating proxy), never both. The header is
accepted only from --trusted-proxy addresses (default: loopback). See
docs/console.md and docs/security.md.`,
		Example: `  bosun console --kubeconfig ~/.bosun/kubeconfig
  bosun console --contexts prod-eu1,staging-eu1 --fleet ./fleet
  bosun console --listen 0.0.0.0:8080 --trusted-header X-Forwarded-User --trusted-proxy 10.0.3.7
  bosun console --listen 0.0.0.0:8080 --trusted-header X-Forwarded-User \
    --trusted-groups-header X-Forwarded-Groups --impersonate`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if flags.printRBAC {
				_, err := fmt.Fprint(streams.Out, console.RBAC)
				return err
			}
			return run(cmd.Context(), streams, flags)
		},
	}
	f := cmd.Flags()
	f.StringVar(&flags.kubeconfig, "kubeconfig", "", "kubeconfig file (default $KUBECONFIG or ~/.kube/config)")
	f.StringSliceVar(&flags.contexts, "contexts", nil, "kubeconfig contexts to watch (default: all)")
	f.BoolVar(&flags.allContexts, "all-contexts", false, "watch every kubeconfig context (the default when --contexts is not given)")
	f.StringVar(&flags.fleetDir, "fleet", "", "fleet directory, for each cluster's environment, provider, region and channel")
	f.StringVar(&flags.listen, "listen", "127.0.0.1:8080", "address to serve on")
	f.StringVar(&flags.tokenFile, "token-file", "", `file of "token user" lines; requests need "Authorization: Bearer <token>"`)
	f.StringVar(&flags.trustedHeader, "trusted-header", "", "header carrying the user from an authenticating proxy (e.g. X-Forwarded-User)")
	f.StringSliceVar(&flags.trustedProxies, "trusted-proxy", nil, "with --trusted-header: addresses or CIDRs of the authenticating proxy; the header is accepted from these only (default: loopback, a proxy beside the console)")
	f.StringVar(&flags.groupsHeader, "trusted-groups-header", "", "with --trusted-header: header carrying the user's groups, comma separated (e.g. X-Forwarded-Groups); passed on when impersonating")
	f.StringVar(&flags.priceOverrides, "price-overrides", "", "YAML list of negotiated or reserved prices (instanceType, lifecycle, hourlyUSD, note)")
	f.StringVar(&flags.region, "region", "us-east-1", "region for pricing nodes without a topology.kubernetes.io/region label")
	f.Float64Var(&flags.spotDiscount, "spot-discount", 0.65, "assumed spot discount against on-demand when no spot price is known")
	f.StringSliceVar(&flags.capacityLabels, "capacity-type-labels", console.DefaultCapacityTypeLabels, "node labels that say spot or on-demand, first present wins")
	f.StringSliceVar(&flags.teamLabels, "team-labels", console.DefaultTeamLabels, "pod label keys naming the team, first present wins")
	f.StringSliceVar(&flags.appLabels, "app-labels", console.DefaultAppLabels, "pod label keys naming the application, first present wins")
	f.DurationVar(&flags.probeInterval, "probe-interval", 5*time.Second, "how often each API server is probed for up/down")
	f.DurationVar(&flags.kindRetry, "kind-retry", console.DefaultKindRetry, "wait before asking a cluster again for a kind it refused (forbidden or not served); doubles each time")
	f.DurationVar(&flags.kindRetryMax, "kind-retry-max", console.DefaultKindRetryMax, "longest wait between asks for a refused kind")
	f.DurationVar(&flags.usageInterval, "usage-interval", time.Minute, "how often each cluster's metrics API is read for usage (0: never)")
	f.DurationVar(&flags.usageWindow, "usage-window", console.DefaultUsageWindow, "usage history kept per container for right-sizing (0: none); window/interval samples of 8 bytes each")
	f.StringVar(&flags.localCloud, "local-cloud", "", "price nodes from the local cloud's market: the state `directory` of bosun up (e.g. ~/.bosun), which holds the local cloud's cloud.json")
	f.StringVar(&flags.awsCluster, "aws-cluster", "", "price nodes from AWS (Pricing API, spot price history) for the instance types of this fleet cluster's Auto Scaling groups in --region; credentials from the SDK's default chain; --price-overrides still win (L36)")
	f.BoolVar(&flags.printRBAC, "print-rbac", false, "print the console's read-only ClusterRole (no Secrets) and exit")
	f.Float32Var(&flags.liveQPS, "live-qps", console.DefaultLiveQPS, "per cluster, live reads (detail pages, CRDs) a second, with a limiter of their own apart from the watch's")
	f.IntVar(&flags.liveBurst, "live-burst", console.DefaultLiveBurst, "per cluster, live reads allowed at once above --live-qps")
	f.BoolVar(&flags.impersonate, "impersonate", false, "read live objects (detail YAML, CRDs) as the signed-in user; needs --token-file or --trusted-header")
	return cmd
}

// options validates the flags and assembles the console's options.
func (f *flagpole) options() (console.Options, console.Auth, error) {
	var auth console.Auth
	if f.allContexts && len(f.contexts) > 0 {
		return console.Options{}, auth, errors.New("--contexts and --all-contexts exclude each other")
	}
	if f.tokenFile != "" {
		tokens, err := console.LoadTokens(f.tokenFile)
		if err != nil {
			return console.Options{}, auth, err
		}
		auth.Tokens = tokens
	}
	auth.TrustedHeader = f.trustedHeader
	if f.groupsHeader != "" && f.trustedHeader == "" {
		return console.Options{}, auth, errors.New("--trusted-groups-header needs --trusted-header")
	}
	if len(f.trustedProxies) > 0 && f.trustedHeader == "" {
		return console.Options{}, auth, errors.New("--trusted-proxy needs --trusted-header")
	}
	if f.tokenFile != "" && f.trustedHeader != "" {
		return console.Options{}, auth, errors.New("--token-file and --trusted-header exclude each other: a client reaching the console directly could send the header and skip the token; use tokens, or the header behind an authenticating proxy (see docs/security.md)")
	}
	auth.TrustedGroupsHeader = f.groupsHeader
	for _, p := range f.trustedProxies {
		prefix, err := parseProxy(p)
		if err != nil {
			return console.Options{}, auth, err
		}
		auth.TrustedProxies = append(auth.TrustedProxies, prefix)
	}
	if f.impersonate && !auth.Enabled() {
		return console.Options{}, auth, errors.New("--impersonate needs --token-file or --trusted-header to know the user")
	}
	if !console.IsLoopback(f.listen) && !auth.Enabled() {
		return console.Options{}, auth, fmt.Errorf("listening on %s (beyond loopback) needs --token-file or --trusted-header", f.listen)
	}
	srcs, err := console.ClustersFromKubeconfig(f.kubeconfig, f.contexts)
	if err != nil {
		return console.Options{}, auth, err
	}
	if f.fleetDir != "" {
		fl, err := fleet.Load(f.fleetDir)
		if err != nil {
			return console.Options{}, auth, fmt.Errorf("loading fleet, %w", err)
		}
		console.ApplyFleet(srcs, fl)
	}
	if f.kindRetry <= 0 || f.kindRetryMax < f.kindRetry {
		return console.Options{}, auth, fmt.Errorf("--kind-retry %s must be > 0 and at most --kind-retry-max %s", f.kindRetry, f.kindRetryMax)
	}
	if f.usageInterval < 0 || f.usageWindow < 0 || (f.usageInterval > 0 && f.usageWindow > 0 && f.usageWindow < f.usageInterval) {
		return console.Options{}, auth, fmt.Errorf("--usage-window %s must be at least --usage-interval %s (both >= 0)", f.usageWindow, f.usageInterval)
	}
	if f.liveQPS <= 0 || f.liveBurst < 1 {
		return console.Options{}, auth, fmt.Errorf("--live-qps %g must be > 0 and --live-burst %d at least 1", f.liveQPS, f.liveBurst)
	}
	opts := console.Options{Clusters: srcs, ProbeInterval: f.probeInterval, Impersonate: f.impersonate, LiveQPS: f.liveQPS, LiveBurst: f.liveBurst,
		KindRetry: f.kindRetry, KindRetryMax: f.kindRetryMax,
		UsageInterval: orNever(f.usageInterval), UsageWindow: orNever(f.usageWindow), Cost: console.CostOptions{
			CapacityTypeLabels: f.capacityLabels, TeamLabels: f.teamLabels, AppLabels: f.appLabels,
			Region: f.region, SpotDiscount: f.spotDiscount,
		}}
	if f.localCloud != "" {
		e, err := local.ReadEndpoint(f.localCloud)
		if err != nil {
			return console.Options{}, auth, fmt.Errorf("--local-cloud: %w", err)
		}
		opts.Prices = local.New(e)
	}
	if f.awsCluster != "" {
		if f.localCloud != "" {
			return console.Options{}, auth, errors.New("--aws-cluster and --local-cloud: choose one source of provider prices")
		}
		p, err := bosunaws.New(context.Background(), bosunaws.Options{Cluster: f.awsCluster, Region: f.region})
		if err != nil {
			return console.Options{}, auth, fmt.Errorf("--aws-cluster: %w", err)
		}
		opts.Prices = p
	}
	if f.priceOverrides != "" {
		o, err := console.LoadOverrides(f.priceOverrides)
		if err != nil {
			return console.Options{}, auth, err
		}
		opts.Cost.Overrides = o
	}
	return opts, auth, nil
}

// parseProxy reads one --trusted-proxy value: a CIDR or a single address.
func parseProxy(s string) (netip.Prefix, error) {
	if p, err := netip.ParsePrefix(s); err == nil {
		return p.Masked(), nil
	}
	a, err := netip.ParseAddr(s)
	if err != nil {
		return netip.Prefix{}, fmt.Errorf("--trusted-proxy %q: want an address or CIDR (10.0.0.5, 10.0.0.0/16, fd00::/8)", s)
	}
	return netip.PrefixFrom(a.Unmap(), a.Unmap().BitLen()), nil
}

// orNever maps a flag's 0 ("never"/"none") to the console's negative.
func orNever(d time.Duration) time.Duration {
	if d == 0 {
		return -1
	}
	return d
}

func run(ctx context.Context, streams iostreams.IOStreams, f *flagpole) error {
	opts, auth, err := f.options()
	if err != nil {
		return err
	}
	c, err := console.New(opts)
	if err != nil {
		return err
	}
	h, err := c.Handler(auth)
	if err != nil {
		return err
	}
	ln, err := net.Listen("tcp", f.listen)
	if err != nil {
		return fmt.Errorf("listening on %s, %w", f.listen, err)
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	c.Start(ctx)
	srv := &http.Server{Handler: h, ReadHeaderTimeout: 10 * time.Second}
	fmt.Fprintf(streams.Out, "bosun console: %d clusters, serving http://%s\n", len(opts.Clusters), ln.Addr())
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	select {
	case err := <-errc:
		return fmt.Errorf("serving, %w", err)
	case <-ctx.Done():
	}
	shutdownCtx, done := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
	defer done()
	if err := srv.Shutdown(shutdownCtx); err != nil {
		return fmt.Errorf("shutting down, %w", err)
	}
	return nil
}
