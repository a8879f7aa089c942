package lifecycle

import (
	"context"
	"fmt"
	"io"
	"time"

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
	// (nil when the controller does not manage them).
	Infra func(cl *fleet.Cluster) provider.Infra
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
	a, err := apply.New(cfg, io.Discard)
	if err != nil {
		return nil, err
	}
	conn := &Conn{Kube: cs, Apply: a}
	if r.Infra != nil {
		conn.Infra = r.Infra(cl)
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
		for _, name := range []string{"bosun-" + cl.ID, cl.ID} {
			if _, ok := raw.Contexts[name]; ok {
				return clientcmd.NewNonInteractiveClientConfig(*raw, name, &clientcmd.ConfigOverrides{}, rules).ClientConfig()
			}
		}
		return nil, fmt.Errorf("no kubeconfig context %q or %q for cluster %s", "bosun-"+cl.ID, cl.ID, cl.ID)
	}
}
