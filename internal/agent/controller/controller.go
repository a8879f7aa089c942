// Package controller is the contract every agent controller follows: it
// is built by New(deps Deps, opts Options) in its own package, from the
// Deps the agent fills once (clients, the shared informer factory, the
// clock, the event recorder, the metrics registry and the logger) and
// options of its own, and the agent runs it in passes (Controller).
// Optional interfaces say what else a controller does: start informers of
// its own (Starter), ask for an early pass (Notifier), or finish work in
// the background (Waiter).
//
// The agent's registration table (internal/agent, registry.go) is the one
// list of controllers; docs/agent.md says how to add one.
package controller

import (
	"context"
	"errors"
	"fmt"
	"log/slog"

	"github.com/prometheus/client_golang/prometheus"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/metadata"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/record"
	"k8s.io/utils/clock"

	"github.com/bosun-platform/bosun/internal/provider"
)

// Deps are what a controller is built from. The agent fills every field
// for every controller; a controller reads the ones it needs, and tests
// fill those (with fakes where it fits). Nil Clock, Recorder, Registry
// and Logger mean the real clock, no events, unregistered metrics and
// slog.Default(): WithDefaults fills them.
type Deps struct {
	// Config is the agent's client configuration (the certificate watch
	// reads the API server's serving chain and client certificate from it).
	Config *rest.Config
	// Client is the cluster (protobuf for built-in kinds).
	Client kubernetes.Interface
	// ReleaseClient is a client with the same rate and a burst of its own,
	// for the overprovisioner's burst release (default Client).
	ReleaseClient kubernetes.Interface
	// Dynamic and Metadata are the dynamic and metadata clients (for
	// kinds chosen at run time: the janitor's, the downscaler's CRDs).
	Dynamic  dynamic.Interface
	Metadata metadata.Interface
	// Factory is the agent's shared informer factory: cluster-wide unless
	// Namespace is set, objects trimmed by the cache transform. The agent
	// starts it after every controller was built.
	Factory informers.SharedInformerFactory
	// Clock is the time source (the agent's fake clock for --at).
	Clock clock.Clock
	// Recorder receives Events (it drops them in dry-run).
	Recorder record.EventRecorder
	// Registry receives the controller's metrics. Controllers that share
	// a metric register it with Register, which reuses one registered
	// before.
	Registry prometheus.Registerer
	// Logger receives structured logs; the agent gives each controller
	// one with its name.
	Logger *slog.Logger
	// DryRun: log and count what would change, change nothing.
	DryRun bool
	// Namespace limits the controller to one namespace ("" = all).
	Namespace string
	// Provider is the cloud, for the capacity controllers (nil for the
	// others).
	Provider provider.Provider
	// Cluster is this cluster's ID in the fleet ("" when not given).
	Cluster string
	// Region is the cluster's region ("local" for the local cloud).
	Region string
}

// WithDefaults returns d with the real clock, a recorder that drops
// events, slog.Default() and ReleaseClient = Client where they are unset.
func (d Deps) WithDefaults() Deps {
	if d.Clock == nil {
		d.Clock = clock.RealClock{}
	}
	if d.Recorder == nil {
		d.Recorder = &record.FakeRecorder{}
	}
	if d.Logger == nil {
		d.Logger = slog.Default()
	}
	if d.ReleaseClient == nil {
		d.ReleaseClient = d.Client
	}
	return d
}

// Require reports the fields of d that a controller needs and that are
// unset, as an error naming the controller; nil when all are there.
func (d Deps) Require(controller string, fields ...Field) error {
	var missing []error
	for _, f := range fields {
		if !f.set(d) {
			missing = append(missing, fmt.Errorf("%s: Deps.%s is required", controller, f))
		}
	}
	return errors.Join(missing...)
}

// Field names a field of Deps for Require.
type Field string

// Fields of Deps that controllers require.
const (
	FieldClient   Field = "Client"
	FieldDynamic  Field = "Dynamic"
	FieldMetadata Field = "Metadata"
	FieldFactory  Field = "Factory"
	FieldProvider Field = "Provider"
)

func (f Field) set(d Deps) bool {
	switch f {
	case FieldClient:
		return d.Client != nil
	case FieldDynamic:
		return d.Dynamic != nil
	case FieldMetadata:
		return d.Metadata != nil
	case FieldFactory:
		return d.Factory != nil
	case FieldProvider:
		return d.Provider != nil
	}
	return false
}

// Controller is what the agent runs: one idempotent pass over the
// cluster, reporting what it changed (or, in dry-run, would change).
type Controller interface {
	// Name is the controller's name in --controllers, logs and metrics.
	Name() string
	// Pass makes one pass.
	Pass(ctx context.Context) ([]string, error)
}

// Starter is a controller with informers outside the shared factory: the
// agent calls Start before the first pass; it starts them for as long as
// run lasts and reports whether they synced before sync ended.
type Starter interface {
	Start(run, sync context.Context) bool
}

// Notifier is a controller that can ask for an early pass: f is called
// when something it acts on changed.
type Notifier interface {
	OnChange(f func()) error
}

// Waiter is a controller with work in the background (drains) that a
// one-shot run waits for.
type Waiter interface {
	Wait()
}

// Register registers c with reg (nil: nothing) and returns the collector
// to use: c, or the equal collector registered before (two controllers
// sharing a metric, such as the scale-down and the reaper).
func Register[C prometheus.Collector](reg prometheus.Registerer, c C) (C, error) {
	if reg == nil {
		return c, nil
	}
	if err := reg.Register(c); err != nil {
		var are prometheus.AlreadyRegisteredError
		if errors.As(err, &are) {
			if existing, ok := are.ExistingCollector.(C); ok {
				return existing, nil
			}
		}
		return c, fmt.Errorf("registering metrics, %w", err)
	}
	return c, nil
}

// ProtobufConfig is cfg for typed clients of built-in kinds, in protobuf:
// decoding tens of thousands of pods from JSON costs several times the
// CPU and garbage, on both sides of the connection (the API server
// encodes every watch event once per format its watchers ask for). Kube's
// own components do the same; dynamic and metadata clients stay JSON.
func ProtobufConfig(cfg *rest.Config) *rest.Config {
	c := rest.CopyConfig(cfg)
	c.AcceptContentTypes = "application/vnd.kubernetes.protobuf,application/json"
	c.ContentType = "application/vnd.kubernetes.protobuf"
	return c
}
