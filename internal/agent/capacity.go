package agent

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/bosun-platform/bosun/internal/agent/reaper"
	"github.com/bosun-platform/bosun/internal/agent/scaledown"
	"github.com/bosun-platform/bosun/internal/provider"
	bosunaws "github.com/bosun-platform/bosun/internal/provider/aws"
	"github.com/bosun-platform/bosun/internal/provider/local"
)

// Providers for --provider: the local cloud of `bosun up`, and AWS.
const (
	ProviderLocal = "local"
	ProviderAWS   = "aws"
)

// Capacity configures the controllers that talk to the cloud.
type Capacity struct {
	// Provider is the cloud. When nil, it is built from Name and
	// LocalCloud.
	Provider provider.Provider
	// Name is the provider to build: "local" or "aws".
	Name string
	// LocalCloud is the state directory of `bosun up`, which holds the
	// local cloud's endpoint file (cloud.json): --local-cloud, as in
	// `bosun console`.
	LocalCloud string
	// Cluster is this cluster's ID in the fleet: it selects the
	// provider's node groups that belong to it.
	Cluster string
	// Region is the cluster's region, for node templates (default
	// "local"); with the AWS provider, the AWS region of its groups.
	Region string
	// AWSQueueURL is the SQS queue of interruption events of the cluster
	// (AWS provider; empty: no interruption notices).
	AWSQueueURL string
	// Interval is the time between passes of the provisioner and the
	// interruption handler (default 1s).
	Interval time.Duration
	// ScaleDownInterval is the time between passes of the scale-down and
	// the reaper, which act on minutes, not seconds (default 10s).
	ScaleDownInterval time.Duration
	// ScaleDown and Reaper tune those controllers (validated with
	// Options.Validate); the agent gives them the provider, cluster,
	// dry-run, events, metrics and logger through controller.Deps.
	ScaleDown scaledown.Options
	Reaper    reaper.Options
}

// DefaultCapacity returns the capacity options `bosun agent` has without
// flags: the scale-down's and the reaper's defaults, the default
// intervals, region "local"; no provider or cluster.
func DefaultCapacity() Capacity {
	return Capacity{
		Region: "local", Interval: time.Second, ScaleDownInterval: 10 * time.Second,
		ScaleDown: scaledown.DefaultOptions(), Reaper: reaper.DefaultOptions(),
	}
}

// interval is the interval of a capacity loop.
func (c Capacity) interval(l Loop) time.Duration {
	if l == LoopNodeRemoval {
		if c.ScaleDownInterval <= 0 {
			return 10 * time.Second
		}
		return c.ScaleDownInterval
	}
	if c.Interval <= 0 {
		return time.Second
	}
	return c.Interval
}

// cachesEveryPod reports whether an enabled controller keeps every pod in
// the agent's shared cache; the provisioner then reads the pods waiting
// for a node from there (indexed) instead of watching them apart, so no
// pod is decoded and kept twice.
func cachesEveryPod(o *Options) bool {
	for _, name := range o.Controllers {
		if r, ok := Lookup(name); ok && r.CachesEveryPod != nil && r.CachesEveryPod(o) {
			return true
		}
	}
	return false
}

// validate checks the capacity options when a capacity controller is on.
func (c Capacity) validate(o *Options) error {
	if c.Cluster == "" {
		return errors.New("--cluster: the capacity controllers need the cluster's fleet ID to find its node groups")
	}
	if c.Interval < 0 {
		return fmt.Errorf("--capacity-interval %s: expected a positive duration (0: the default, 1s)", c.Interval)
	}
	if c.ScaleDownInterval < 0 {
		return fmt.Errorf("--scale-down-interval %s: expected a positive duration (0: the default, 10s)", c.ScaleDownInterval)
	}
	if o.Namespace != "" {
		return errors.New("--namespace: the capacity controllers (provisioner, interruption) watch the whole cluster; run them in an agent without --namespace")
	}
	if c.Provider != nil {
		return nil
	}
	switch c.Name {
	case ProviderLocal:
		if c.LocalCloud == "" {
			return errors.New("--local-cloud: name the state directory of `bosun up` (it holds the local cloud's cloud.json)")
		}
	case ProviderAWS:
		if c.Region == "" || c.Region == "local" {
			return errors.New("--region: the AWS provider needs the cluster's AWS region (e.g. eu-central-1)")
		}
	case "":
		return errors.New("--provider: the capacity controllers need a cloud (known: local, aws)")
	default:
		return fmt.Errorf("--provider %q: unknown provider (known: local, aws)", c.Name)
	}
	return nil
}

// provider returns the configured cloud, building it on first use.
func (c *Capacity) provider(logger *slog.Logger, reg prometheus.Registerer) (provider.Provider, error) {
	if c.Provider != nil {
		return c.Provider, nil
	}
	if c.Name == ProviderAWS {
		p, err := bosunaws.New(context.Background(), bosunaws.Options{
			Cluster: c.Cluster, Region: c.Region, QueueURL: c.AWSQueueURL,
			Logger: logger.With("provider", ProviderAWS), Registerer: reg,
		})
		if err != nil {
			return nil, fmt.Errorf("--provider aws: %w", err)
		}
		c.Provider = p
		return p, nil
	}
	e, err := local.ReadEndpoint(c.LocalCloud)
	if err != nil {
		return nil, fmt.Errorf("--local-cloud: %w", err)
	}
	c.Provider = local.New(e)
	return c.Provider, nil
}
