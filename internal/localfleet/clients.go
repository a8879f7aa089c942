package localfleet

import (
	"fmt"
	"sort"
	"strings"

	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/clientcmd"
)

// Clients returns an admin client per cluster of the running fleet, keyed
// by cluster ID, from the fleet kubeconfig (contexts bosun-<id>), and the
// IDs in order. The error says to run `bosun up` when nothing runs.
func Clients(stateDir string) (map[string]kubernetes.Interface, []string, error) {
	path := KubeconfigPath(stateDir)
	cfg, err := clientcmd.LoadFromFile(path)
	if err != nil {
		return nil, nil, fmt.Errorf("no local fleet is running (%s: %v); start one with `bosun up`", path, err)
	}
	out := map[string]kubernetes.Interface{}
	var ids []string
	for name := range cfg.Contexts {
		rc, err := clientcmd.NewNonInteractiveClientConfig(*cfg, name, &clientcmd.ConfigOverrides{}, nil).ClientConfig()
		if err != nil {
			return nil, nil, fmt.Errorf("context %s in %s, %w", name, path, err)
		}
		cs, err := kubernetes.NewForConfig(rc)
		if err != nil {
			return nil, nil, fmt.Errorf("context %s in %s, %w", name, path, err)
		}
		id := strings.TrimPrefix(name, "bosun-")
		out[id] = cs
		ids = append(ids, id)
	}
	sort.Strings(ids)
	return out, ids, nil
}
