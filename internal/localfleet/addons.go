package localfleet

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"path/filepath"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"

	"github.com/bosun-platform/bosun/internal/agent"
	"github.com/bosun-platform/bosun/internal/apply"
	"github.com/bosun-platform/bosun/internal/atomicfile"
	"github.com/bosun-platform/bosun/internal/casgrpc"
	"github.com/bosun-platform/bosun/internal/controlplane"
	"github.com/bosun-platform/bosun/internal/fleet"
	"github.com/bosun-platform/bosun/internal/provider"
	"github.com/bosun-platform/bosun/internal/render"
)

// agentControllers are the agent controllers `bosun up` runs against a
// local cluster (the in-cluster agent's, run in this process). With
// cluster-autoscaler in charge of the node groups, Bosun's provisioner
// stays off: the two would fight over the groups' sizes. The
// overprovisioner runs when the cluster's rendered agent runs it
// (overprovisioner is its ConfigMap, "" when it does not).
func agentControllers(clusterAutoscaler bool, overprovisioner string) []string {
	out := []string{agent.ControllerDownscaler, agent.ControllerJanitor, agent.ControllerInterruption}
	if !clusterAutoscaler {
		out = append(out, agent.ControllerProvisioner, agent.ControllerScaleDown, agent.ControllerReaper)
	}
	if overprovisioner != "" {
		out = append(out, agent.ControllerOverprovisioner)
	}
	return out
}

// renderedOverprovisioner returns the rules ConfigMap ("namespace/name")
// of the overprovisioner when a container in the cluster's rendered
// manifests runs it in `bosun agent` (the first such container, read from
// its command line as lint reads it), or "" when none does. The agent
// pod itself runs nothing on kwok nodes, so `bosun up` runs the
// controller in its stead.
func renderedOverprovisioner(res *render.Result) (string, error) {
	for _, o := range res.Objects {
		pod, ok := o.PodTemplate()
		if !ok {
			continue
		}
		ns := o.Object.GetNamespace()
		if ns == "" {
			ns = metav1.NamespaceDefault
		}
		for i := range pod.Spec.Containers {
			l, ok := agent.ParseCommandLine(&pod.Spec.Containers[i], ns)
			if !ok || !l.Runs(agent.ControllerOverprovisioner) {
				continue
			}
			cm, _ := l.OverprovisionerConfigMap()
			if _, _, ok := agent.SplitConfigMap(cm); !ok {
				return "", fmt.Errorf("%s %s/%s runs the overprovisioner with --%s %q; expected namespace/name (bosun lint reports it too)",
					o.Object.GetKind(), ns, o.Object.GetName(), agent.FlagOverprovisionerConfigMap, cm)
			}
			return cm, nil
		}
	}
	return "", nil
}

// renderClusters renders every cluster before anything starts, so a fleet
// that does not render stops `bosun up` with nothing changed.
func renderClusters(ctx context.Context, f *fleet.Fleet, clusters []*fleet.Cluster) (map[string]*render.Result, error) {
	r, err := render.New(f)
	if err != nil {
		return nil, fmt.Errorf("preparing the fleet's templates, %w", err)
	}
	out := map[string]*render.Result{}
	for _, cl := range clusters {
		res, err := r.Cluster(ctx, cl.ID)
		if err != nil {
			return nil, fmt.Errorf("rendering cluster %s, %w", cl.ID, err)
		}
		out[cl.ID] = res
	}
	return out, nil
}

// applyManifests applies a cluster's rendered manifests with server-side
// apply (L01: the cluster is what the fleet says). Objects that fail are
// reported and the rest still applied; only a failure to apply at all is an
// error.
func applyManifests(ctx context.Context, out io.Writer, res *render.Result, cp *controlplane.ControlPlane) error {
	cl := res.Cluster
	a, err := apply.New(cp.RESTConfig(), io.Discard)
	if err != nil {
		return fmt.Errorf("applying to %s, %w", cl.ID, err)
	}
	result, err := a.Apply(ctx, res, apply.Options{})
	if err != nil {
		return fmt.Errorf("applying to %s, %w", cl.ID, err)
	}
	fmt.Fprintf(out, "  [%s] applied fleet version %s: %d created, %d configured, %d unchanged, %d failed\n",
		cl.ID, res.Version, result.Created, result.Configured, result.Unchanged, len(result.Failed))
	for _, f := range result.Failed {
		fmt.Fprintf(out, "  [%s]   failed: %s: %v\n", cl.ID, f.Object, f.Err)
	}
	return nil
}

// serveClusterAutoscaler serves the cluster-autoscaler externalgrpc API
// for the cluster's node groups instead of running Bosun's provisioner (the
// two would fight over the groups). It writes cluster-autoscaler's
// --cloud-config file next to the cluster's kubeconfig and applies the
// priority expander's ConfigMap built from the pools' priorities.
func serveClusterAutoscaler(ctx context.Context, out io.Writer, log *slog.Logger, cl *fleet.Cluster, cp *controlplane.ControlPlane, cs kubernetes.Interface, cloud provider.Provider) error {
	addr, _, err := casgrpc.Serve(ctx, cloud, "127.0.0.1:0", casgrpc.Options{Cluster: cl.ID, Region: cl.Region, Log: log.With("cluster", cl.ID)})
	if err != nil {
		return err
	}
	cfg, err := casgrpc.CloudConfig{Address: addr}.YAML()
	if err != nil {
		return err
	}
	path := filepath.Join(cp.Dir, "cluster-autoscaler.yaml")
	if err := atomicfile.Write(path, cfg, 0o600); err != nil {
		return err
	}
	all, err := cloud.NodeGroups(ctx)
	if err != nil {
		return err
	}
	var groups []provider.NodeGroup
	for _, g := range all {
		if g.Cluster == cl.ID {
			groups = append(groups, g)
		}
	}
	cm := casgrpc.PriorityExpanderConfigMap("kube-system", groups)
	if _, err := cs.CoreV1().ConfigMaps(cm.Namespace).Create(ctx, cm, metav1.CreateOptions{}); err != nil && !apierrors.IsAlreadyExists(err) {
		return fmt.Errorf("creating the priority expander ConfigMap in %s, %w", cl.ID, err)
	}
	fmt.Fprintf(out, "  [%s] cluster-autoscaler externalgrpc on %s; run it with:\n"+
		"      cluster-autoscaler --kubeconfig %s --cloud-provider externalgrpc --cloud-config %s --expander priority\n",
		cl.ID, addr, cp.KubeconfigPath, path)
	return nil
}

// runAgent runs the agent controllers against the cluster, with the local
// cloud as the capacity controllers' provider and overprovisioner as the
// overprovisioner's ConfigMap, until ctx ends; their problems go to the
// log, never stop the fleet.
func runAgent(ctx context.Context, log *slog.Logger, cl *fleet.Cluster, cp *controlplane.ControlPlane, cloud provider.Provider, controllers []string, overprovisioner string) {
	err := agent.Run(ctx, agent.Options{
		RESTConfig:      cp.RESTConfig(),
		Controllers:     controllers,
		Interval:        agentInterval,
		Capacity:        agent.Capacity{Provider: cloud, Cluster: cl.ID, Region: cl.Region},
		Overprovisioner: overprovisioner,
		Logger:          log.With("cluster", cl.ID),
		Out:             io.Discard,
	})
	if err != nil && ctx.Err() == nil {
		log.Warn("agent stopped", "cluster", cl.ID, "error", err)
	}
}
