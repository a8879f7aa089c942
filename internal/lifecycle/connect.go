package lifecycle

import (
	"context"
	"fmt"
	"io"
	"time"

	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"

	"github.com/bosun-platform/bosun/internal/apply"
	"github.com/bosun-platform/bosun/internal/fleet"
	"github.com/bosun-platform/bosun/internal/provider"
)

// RESTConnector connects to clusters through REST configs.
type RESTConnector struct {
	// Config returns the cluster's REST config.
	Config func(cl *fleet.Cluster) (*rest.Config, error)
	// Infra and Cloud return the cluster's infrastructure and node groups
	// (nil when the controller does not manage them). An Infra error (a
	// cloud that cannot be configured) fails the cluster's pass.
	Infra func(cl *fleet.Cluster) (provider.Infra, error)
	Cloud func(cl *fleet.Cluster) provider.Provider
	// Timeout bounds each API request (default 30s).
	Timeout time.Duration
}

// Connect implements Connector.
func (r RESTConnector) Connect(_ context.Context, cl *fleet.Cluster) (*Conn, error) {
	cfg, err := r.Config(cl)
	if err != nil {
		return nil, err
	}
	cfg = rest.CopyConfig(cfg)
	if cfg.Timeout == 0 {
		cfg.Timeout = r.Timeout
		if cfg.Timeout == 0 {
			cfg.Timeout = 30 * time.Second
		}
	}
	cs, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		return nil, fmt.Errorf("client for %s, %w", cl.ID, err)
	}
	dyn, err := dynamic.NewForConfig(cfg)
	if err != nil {
		return nil, fmt.Errorf("dynamic client for %s, %w", cl.ID, err)
	}
	a, err := apply.New(cfg, io.Discard)
	if err != nil {
		return nil, err
	}
	conn := &Conn{Kube: cs, Dynamic: dyn, Apply: a, Config: cfg}
	if r.Infra != nil {
		if conn.Infra, err = r.Infra(cl); err != nil {
			return nil, fmt.Errorf("infrastructure of %s: %w", cl.ID, err)
		}
	}
	if r.Cloud != nil {
		conn.Cloud = r.Cloud(cl)
	}
	return conn, nil
}

// KubeconfigContexts returns a Config function that finds each cluster in
// a kubeconfig (empty path: $KUBECONFIG or ~/.kube/config) by its context:
// "bosun-<id>" (as `bosun up` names them) or "<id>".
func KubeconfigContexts(path string) func(cl *fleet.Cluster) (*rest.Config, error) {
	return func(cl *fleet.Cluster) (*rest.Config, error) {
		rules := clientcmd.NewDefaultClientConfigLoadingRules()
		if path != "" {
			rules.ExplicitPath = path
		}
		raw, err := rules.Load()
		if err != nil {
			return nil, fmt.Errorf("reading kubeconfig, %w", err)
		}
		name, err := apply.ClusterContext(raw, cl.ID)
		if err != nil {
			return nil, fmt.Errorf("cluster %s: %w", cl.ID, err)
		}
		return clientcmd.NewNonInteractiveClientConfig(*raw, name, &clientcmd.ConfigOverrides{}, rules).ClientConfig()
	}
}
