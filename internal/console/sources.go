package console

import (
	"fmt"
	"sort"

	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"

	"github.com/bosun-platform/bosun/internal/fleet"
)

// ClustersFromKubeconfig returns one ClusterSource per kubeconfig context:
// the contexts named, or every context when names is empty. An empty path
// uses the usual rules ($KUBECONFIG, then ~/.kube/config).
func ClustersFromKubeconfig(path string, names []string) ([]ClusterSource, error) {
	rules := clientcmd.NewDefaultClientConfigLoadingRules()
	if path != "" {
		rules.ExplicitPath = path
	}
	raw, err := rules.Load()
	if err != nil {
		return nil, fmt.Errorf("loading kubeconfig, %w", err)
	}
	if len(names) == 0 {
		names = kubeconfigContexts(raw)
	}
	if len(names) == 0 {
		return nil, fmt.Errorf("kubeconfig has no contexts")
	}
	out := make([]ClusterSource, 0, len(names))
	for _, name := range names {
		if _, ok := raw.Contexts[name]; !ok {
			return nil, fmt.Errorf("kubeconfig has no context %q", name)
		}
		cfg, err := clientcmd.NewNonInteractiveClientConfig(*raw, name, &clientcmd.ConfigOverrides{}, rules).ClientConfig()
		if err != nil {
			return nil, fmt.Errorf("context %s, %w", name, err)
		}
		cfg.QPS, cfg.Burst = 50, 100
		out = append(out, ClusterSource{Name: name, Config: cfg})
	}
	return out, nil
}

// LocalContextPrefix is how `bosun up` names a cluster's kubeconfig
// context: bosun-<id>.
const LocalContextPrefix = "bosun-"

// ApplyFleet fills environment, provider, region and channel from the
// fleet registry, matching a source to a cluster by id, alias, or the
// local fleet's context name (bosun-<id>).
func ApplyFleet(srcs []ClusterSource, f *fleet.Fleet) {
	byName := map[string]*fleet.Cluster{}
	for _, c := range f.Clusters {
		byName[LocalContextPrefix+c.ID] = c
		if c.Alias != "" {
			byName[c.Alias] = c
		}
		byName[c.ID] = c
	}
	for i := range srcs {
		if c, ok := byName[srcs[i].Name]; ok {
			srcs[i].Environment, srcs[i].Provider, srcs[i].Region, srcs[i].Channel = c.Environment, c.Provider, c.Region, c.Channel
		}
	}
}

// kubeconfigContexts lists a kubeconfig's context names, sorted.
func kubeconfigContexts(cfg *clientcmdapi.Config) []string {
	var out []string
	for name := range cfg.Contexts {
		out = append(out, name)
	}
	sort.Strings(out)
	return out
}
