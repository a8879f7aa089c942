package agent

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/bosun-platform/bosun/internal/agent/interruption"
	"github.com/bosun-platform/bosun/internal/agent/provisioner"
	"github.com/bosun-platform/bosun/internal/provider"
	bosunaws "github.com/bosun-platform/bosun/internal/provider/aws"
	"github.com/bosun-platform/bosun/internal/provider/local"
	"github.com/bosun-platform/bosun/internal/provider/nodeshape"
)

// Capacity controller names for --controllers. They act on the cloud
// through the provider seam and run on their own, faster loop
// (Capacity.Interval), because a pod waiting for a node or a spot
// interruption notice cannot wait for the cost controllers' interval.
const (
	ControllerProvisioner  = "provisioner"
	ControllerInterruption = "interruption"
	ControllerScaleDown    = "scale-down"
	ControllerReaper       = "reaper"
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
	// ScaleDown and Reaper tune those controllers; the agent fills in
	// the provider, cluster, dry-run, events, metrics and logger.
	ScaleDown provisioner.ScaleDownOptions
	Reaper    provisioner.ReaperOptions
}

// interval is the loop interval of a capacity controller.
func (c Capacity) interval(controller string) time.Duration {
	if controller == ControllerScaleDown || controller == ControllerReaper {
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

// capacityController reports whether the controller runs on a capacity
// loop and needs a provider.
func capacityController(name string) bool {
	switch name {
	case ControllerProvisioner, ControllerInterruption, ControllerScaleDown, ControllerReaper:
		return true
	}
	return false
}

// cachesEveryPod reports whether another controller keeps every pod in
// the agent's shared cache; the provisioner then reads the pods waiting
// for a node from there (indexed) instead of watching them apart, so no
// pod is decoded and kept twice.
func cachesEveryPod(o *Options) bool {
	for _, c := range o.Controllers {
		switch c {
		case ControllerScaleDown, ControllerReaper, ControllerOverprovisioner:
			return true
		case ControllerJanitor:
			if o.Janitor.WatchesPods() {
				return true
			}
		}
	}
	return false
}

// validate checks the capacity options when a capacity controller is on.
func (c Capacity) validate(o *Options) error {
	if c.Cluster == "" {
		return errors.New("--cluster: the capacity controllers need the cluster's fleet ID to find its node groups")
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

// buildCapacity creates a capacity controller.
func buildCapacity(name string, o *Options, d deps) (passer, starter, error) {
	cloud, err := o.Capacity.provider(d.logger, d.registry)
	if err != nil {
		return nil, nil, err
	}
	region := o.Capacity.Region
	if region == "" {
		region = "local"
	}
	log := d.logger.With("controller", name, "cluster", o.Capacity.Cluster)
	switch name {
	case ControllerProvisioner:
		p, err := provisioner.New(provisioner.Options{
			Provider: cloud, Cluster: o.Capacity.Cluster, Templates: nodeshape.ZoneTemplates(region),
			Clock: d.clock, Logger: log, DryRun: o.DryRun, Recorder: d.recorder,
		})
		if err != nil {
			return nil, nil, err
		}
		if err := p.Metrics.Register(d.registry); err != nil {
			return nil, nil, fmt.Errorf("provisioner metrics, %w", err)
		}
		c, err := provisioner.NewController(p, d.client, d.factory, cachesEveryPod(o))
		if err != nil {
			return nil, nil, err
		}
		return c, c.Start, nil
	case ControllerScaleDown:
		so := o.Capacity.ScaleDown
		so.Provider, so.Cluster, so.DryRun, so.Recorder, so.Logger, so.Metrics = cloud, o.Capacity.Cluster, o.DryRun, d.recorder, log, d.capMetrics
		c, err := provisioner.NewScaleDown(d.clock, d.client, d.factory, so)
		return c, nil, err
	case ControllerReaper:
		ro := o.Capacity.Reaper
		ro.Provider, ro.Cluster, ro.DryRun, ro.Recorder, ro.Logger, ro.Metrics = cloud, o.Capacity.Cluster, o.DryRun, d.recorder, log, d.capMetrics
		ro.Templates = nodeshape.ZoneTemplates(region)
		c, err := provisioner.NewReaper(d.clock, d.client, d.factory, ro)
		return c, nil, err
	case ControllerInterruption:
		h := &interruption.Handler{Provider: cloud, Client: d.client, Cluster: o.Capacity.Cluster, Clock: d.clock, Logger: log, DryRun: o.DryRun}
		return interruptionPasser{h}, nil, nil
	}
	return nil, nil, fmt.Errorf("unknown capacity controller %q", name)
}

// interruptionPasser runs the interruption handler's poll as a pass.
type interruptionPasser struct{ h *interruption.Handler }

func (p interruptionPasser) Name() string { return ControllerInterruption }

func (p interruptionPasser) Pass(ctx context.Context) ([]string, error) {
	return nil, p.h.Poll(ctx)
}

// interruptionPasser's Wait lets --once finish the drains it started.
func (p interruptionPasser) Wait() { p.h.Wait() }
