// Package aws is the provider.Provider of Amazon Web Services: a cluster's
// node pools are EC2 Auto Scaling groups tagged with the cluster and pool,
// capacity errors come from the groups' failed scaling activities, prices
// from the Pricing API and the spot price history, and interruption notices
// from an SQS queue fed by EventBridge rules. It uses aws-sdk-go-v2 with
// adaptive retries, a timeout on every call and a request counter
// (bosun_aws_api_requests_total). Infra (infra.go) builds the cluster's EKS
// control plane, launch templates, groups, queue and rules from the fleet.
//
// A provisioner pass costs a constant number of requests however many groups
// the cluster has: one DescribeAutoScalingGroups filtered by the cluster tag,
// one DescribeInstances for launch times, lifecycles and node names, and,
// only while a scale-up is outstanding, one account-wide
// DescribeScalingActivities bounded by start time (L10, L11).
package aws

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/aws/retry"
	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/service/autoscaling"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/aws-sdk-go-v2/service/pricing"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	"github.com/prometheus/client_golang/prometheus"
	"k8s.io/utils/clock"

	"github.com/bosun-platform/bosun/internal/provider"
)

// Tags Bosun reads and writes on Auto Scaling groups (and, propagated at
// launch, on their instances). Only resources with TagCluster are ever
// changed or deleted.
const (
	TagCluster          = "bosun.dev/cluster"
	TagPool             = "bosun.dev/pool"
	TagLifecycle        = "bosun.dev/lifecycle"
	TagPriority         = "bosun.dev/priority"
	TagApplicationGroup = "bosun.dev/application-group"
	TagRole             = "bosun.dev/role"
	TagTemplateHash     = "bosun.dev/template-hash"
	// TagManagedBy marks what Bosun created.
	TagManagedBy = "bosun.dev/managed-by"
	// Cluster-autoscaler's node template tags: labels and taints of the
	// nodes a group would launch, so that cluster-autoscaler can scale
	// groups from zero (and Bosun reads the pool's labels and taints back).
	TagNodeTemplateLabel = "k8s.io/cluster-autoscaler/node-template/label/"
	TagNodeTemplateTaint = "k8s.io/cluster-autoscaler/node-template/taint/"
)

// Defaults of Options.
const (
	DefaultCallTimeout       = 10 * time.Second
	DefaultSnapshotMaxAge    = 2 * time.Second
	DefaultPriceTTL          = 24 * time.Hour
	DefaultSpotPriceTTL      = 5 * time.Minute
	DefaultUnavailableTTL    = 3 * time.Minute
	DefaultFailureWindow     = 10 * time.Minute
	DefaultMaxAttempts       = 5
	DefaultNoticeRetention   = time.Hour
	DefaultVisibilityTimeout = 30 * time.Second
	spotInterruptionWarning  = 2 * time.Minute
)

// Options configure the provider.
type Options struct {
	// Cluster is the fleet cluster ID: only groups tagged
	// bosun.dev/cluster=<Cluster> are seen.
	Cluster string
	// Region is the cluster's region.
	Region string
	// QueueURL is the SQS queue of interruption events; empty: no
	// interruption notices (Interruptions returns none).
	QueueURL string
	// Endpoint, when set, sends every service's requests there (moto, a
	// test server); PricingEndpoint does so for the Pricing API alone.
	Endpoint        string
	PricingEndpoint string
	// PricingRegion is where the Pricing API is called (us-east-1 unless
	// set; it also answers from eu-central-1 and ap-south-1).
	PricingRegion string
	// CallTimeout bounds every API call, retries included.
	CallTimeout time.Duration
	// MaxAttempts per call (adaptive retry mode, client-side rate limit
	// on throttling so a throttled account is never hot-looped).
	MaxAttempts int
	// SnapshotMaxAge is how long one read of the groups serves NodeGroup
	// and Instances calls (a provisioner pass); writes invalidate it.
	SnapshotMaxAge time.Duration
	// PriceTTL, SpotPriceTTL and UnavailableTTL tune the caches.
	PriceTTL, SpotPriceTTL, UnavailableTTL time.Duration
	// VisibilityTimeout is how long a received interruption message stays
	// hidden from other reads; one not acknowledged by then (the handler
	// crashed or has not acted) is delivered again.
	VisibilityTimeout time.Duration
	// FailureWindow bounds how old a failed scaling activity may be to be
	// reported as a Failed instance.
	FailureWindow time.Duration
	// DisableLaunchInstances makes scale-ups use SetDesiredCapacity even
	// where Auto Scaling's LaunchInstances (synchronous, capacity errors
	// in its answer) is available (launch.go).
	DisableLaunchInstances bool
	// Clock and Logger; defaults: the real clock, a discarding logger.
	Clock  clock.PassiveClock
	Logger *slog.Logger
	// Registerer receives bosun_aws_api_requests_total (optional).
	Registerer prometheus.Registerer
}

func (o *Options) defaults() {
	def := func(d *time.Duration, v time.Duration) {
		if *d <= 0 {
			*d = v
		}
	}
	def(&o.CallTimeout, DefaultCallTimeout)
	def(&o.SnapshotMaxAge, DefaultSnapshotMaxAge)
	def(&o.PriceTTL, DefaultPriceTTL)
	def(&o.SpotPriceTTL, DefaultSpotPriceTTL)
	def(&o.UnavailableTTL, DefaultUnavailableTTL)
	def(&o.FailureWindow, DefaultFailureWindow)
	def(&o.VisibilityTimeout, DefaultVisibilityTimeout)
	if o.MaxAttempts <= 0 {
		o.MaxAttempts = DefaultMaxAttempts
	}
	if o.PricingRegion == "" {
		o.PricingRegion = "us-east-1"
	}
	if o.Clock == nil {
		o.Clock = clock.RealClock{}
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
}

// Clients are the AWS APIs the provider calls; the SDK clients satisfy
// them, tests may substitute any.
type Clients struct {
	ASG     ASGAPI
	EC2     EC2API
	Pricing PricingAPI
	SQS     SQSAPI
}

// Provider implements provider.Provider over EC2 Auto Scaling.
type Provider struct {
	opts    Options
	c       Clients
	metrics *Metrics

	mu       sync.Mutex
	snap     *snapshot
	raised   map[string]time.Time // group ID -> last scale-up request
	firstSee map[string]time.Time // instance ID -> first seen (no launch time yet)
	// launchFailed: group ID -> failed LaunchInstances attempts of its
	// current scale-up; launchUnsupported once the endpoint lacks the API.
	launchFailed      map[string][]provider.Instance
	launchUnsupported bool

	prices      *priceCache
	unavailable *unavailableCache

	noticeMu sync.Mutex
	notices  []*heldNotice
}

var (
	_ provider.Provider          = (*Provider)(nil)
	_ provider.InterruptionAcker = (*Provider)(nil)
)

// LoadConfig returns the SDK configuration from the default credential
// chain (environment, shared config, IRSA or EKS Pod Identity) for region,
// with adaptive retries and the request counter installed.
func LoadConfig(ctx context.Context, region string, maxAttempts int, m *Metrics) (aws.Config, error) {
	if region == "" {
		return aws.Config{}, errors.New("aws: no region; expected the cluster's region (fleet cluster field region)")
	}
	if maxAttempts <= 0 {
		maxAttempts = DefaultMaxAttempts
	}
	cfg, err := config.LoadDefaultConfig(ctx, config.WithRegion(region),
		config.WithRetryer(func() aws.Retryer {
			return retry.NewAdaptiveMode(func(o *retry.AdaptiveModeOptions) {
				o.StandardOptions = append(o.StandardOptions, func(so *retry.StandardOptions) {
					so.MaxAttempts = maxAttempts
					so.MaxBackoff = 20 * time.Second
				})
			})
		}))
	if err != nil {
		return aws.Config{}, fmt.Errorf("loading AWS configuration, %w", err)
	}
	if m != nil {
		m.Install(&cfg)
	}
	return cfg, nil
}

// New builds the provider with SDK clients from the default credential
// chain.
func New(ctx context.Context, o Options) (*Provider, error) {
	o.defaults()
	m := NewMetrics()
	if o.Registerer != nil {
		if err := m.Register(o.Registerer); err != nil {
			return nil, fmt.Errorf("registering AWS metrics, %w", err)
		}
	}
	cfg, err := LoadConfig(ctx, o.Region, o.MaxAttempts, m)
	if err != nil {
		return nil, err
	}
	return NewFromConfig(cfg, o, m)
}

// NewFromConfig builds the provider's SDK clients from cfg (whose metrics
// middleware, if any, m already installed).
func NewFromConfig(cfg aws.Config, o Options, m *Metrics) (*Provider, error) {
	o.defaults()
	if o.Cluster == "" {
		return nil, errors.New("aws provider: no cluster; expected the fleet cluster ID whose groups it manages")
	}
	endpoint := func(e string) *string {
		if e == "" {
			return nil
		}
		return aws.String(e)
	}
	pcfg := cfg.Copy()
	pcfg.Region = o.PricingRegion
	pe := o.PricingEndpoint
	if pe == "" {
		pe = o.Endpoint
	}
	c := Clients{
		ASG:     autoscaling.NewFromConfig(cfg, func(x *autoscaling.Options) { x.BaseEndpoint = endpoint(o.Endpoint) }),
		EC2:     ec2.NewFromConfig(cfg, func(x *ec2.Options) { x.BaseEndpoint = endpoint(o.Endpoint) }),
		Pricing: pricing.NewFromConfig(pcfg, func(x *pricing.Options) { x.BaseEndpoint = endpoint(pe) }),
		SQS:     sqs.NewFromConfig(cfg, func(x *sqs.Options) { x.BaseEndpoint = endpoint(o.Endpoint) }),
	}
	return NewWithClients(c, o, m), nil
}

// NewWithClients builds the provider over the given clients.
func NewWithClients(c Clients, o Options, m *Metrics) *Provider {
	o.defaults()
	if m == nil {
		m = NewMetrics()
	}
	return &Provider{
		opts: o, c: c, metrics: m,
		raised: map[string]time.Time{}, firstSee: map[string]time.Time{}, launchFailed: map[string][]provider.Instance{},
		prices:      newPriceCache(),
		unavailable: &unavailableCache{until: map[offeringKey]time.Time{}},
	}
}

// Metrics returns the provider's request counter.
func (p *Provider) Metrics() *Metrics { return p.metrics }

// call bounds one API call (retries included) by the call timeout.
func (p *Provider) call(ctx context.Context) (context.Context, context.CancelFunc) {
	return context.WithTimeout(ctx, p.opts.CallTimeout)
}
