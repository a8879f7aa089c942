package apply

import (
	"fmt"

	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"
)

// RESTConfig loads a client config the way kubectl does: from kubeconfig
// when given, else $KUBECONFIG or ~/.kube/config; context overrides the
// current context when not empty.
func RESTConfig(kubeconfig, context string) (*rest.Config, error) {
	rules := clientcmd.NewDefaultClientConfigLoadingRules()
	rules.ExplicitPath = kubeconfig
	cfg, err := clientcmd.NewNonInteractiveDeferredLoadingClientConfig(rules, &clientcmd.ConfigOverrides{CurrentContext: context}).ClientConfig()
	if err != nil {
		return nil, fmt.Errorf("loading kubeconfig, %w", err)
	}
	return cfg, nil
}

// ClusterContext returns the context of raw that reaches the fleet cluster
// id: "bosun-<id>" (as `bosun up` names them), else "<id>". The error
// names both; callers add the cluster.
func ClusterContext(raw *clientcmdapi.Config, id string) (string, error) {
	for _, name := range []string{"bosun-" + id, id} {
		if _, ok := raw.Contexts[name]; ok {
			return name, nil
		}
	}
	return "", fmt.Errorf("no kubeconfig context %q or %q", id, "bosun-"+id)
}
