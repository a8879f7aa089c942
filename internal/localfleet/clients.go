package localfleet

import (
	"fmt"
	"sort"
	"strings"

	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
)

// RESTConfigs returns an admin client config per cluster of the running
// fleet, keyed by cluster ID, from the fleet kubeconfig (contexts
// bosun-<id>), and the IDs in order. The error says to run `bosun up` when
// nothing runs.
func RESTConfigs(stateDir string) (map[string]*rest.Config, []string, error) {
	path := KubeconfigPath(stateDir)
	cfg, err := clientcmd.LoadFromFile(path)
	if err != nil {
		return nil, nil, fmt.Errorf("no local fleet is running (%s: %v); start one with `bosun up`", path, err)
	}
	out := map[string]*rest.Config{}
	var ids []string
	for name := range cfg.Contexts {
		rc, err := clientcmd.NewNonInteractiveClientConfig(*cfg, name, &clientcmd.ConfigOverrides{}, nil).ClientConfig()
		if err != nil {
			return nil, nil, fmt.Errorf("context %s in %s, %w", name, path, err)
		}
		id := strings.TrimPrefix(name, "bosun-")
		out[id] = rc
		ids = append(ids, id)
	}
	sort.Strings(ids)
	return out, ids, nil
}

// Clients returns an admin client per cluster of the running fleet, keyed
// by cluster ID, and the IDs in order (see RESTConfigs).
func Clients(stateDir string) (map[string]kubernetes.Interface, []string, error) {
	configs, ids, err := RESTConfigs(stateDir)
	if err != nil {
		return nil, nil, err
	}
	out := make(map[string]kubernetes.Interface, len(configs))
	for _, id := range ids {
		cs, err := kubernetes.NewForConfig(configs[id])
		if err != nil {
			return nil, nil, fmt.Errorf("cluster %s, %w", id, err)
		}
		out[id] = cs
	}
	return out, ids, nil
}
