package localfleet

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"path/filepath"
	"slices"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"

	"github.com/bosun-platform/bosun/internal/agent"
	"github.com/bosun-platform/bosun/internal/agentcmd"
	"github.com/bosun-platform/bosun/internal/atomicfile"
	"github.com/bosun-platform/bosun/internal/casgrpc"
	"github.com/bosun-platform/bosun/internal/controlplane"
	"github.com/bosun-platform/bosun/internal/fleet"
	"github.com/bosun-platform/bosun/internal/provider"
	"github.com/bosun-platform/bosun/internal/render"
)

// AgentParser turns the arguments and environment of a rendered `bosun
// agent` container into agent.Options as that agent would
// (internal/cli/agent.ParseOptions; injected, since the command line
// package depends on this one).
type AgentParser func(args []string, env map[string]string) (agent.Options, error)

// capacityControllers are run by `bosun up` against the local cloud, which
// stands in for the cloud's capacity management (cluster-autoscaler or
// Bosun's provisioner on AWS): interruption handling always, the others
// unless cluster-autoscaler drives the node groups (the two would fight
// over their sizes).
func capacityControllers(clusterAutoscaler bool) []string {
	if clusterAutoscaler {
		return []string{agentcmd.ControllerInterruption}
	}
	return []string{agentcmd.ControllerInterruption, agentcmd.ControllerProvisioner, agentcmd.ControllerScaleDown, agentcmd.ControllerReaper}
}

// agentFor returns what `bosun up` runs against a cluster in place of its
// rendered agent, whose pod runs nothing on kwok nodes: exactly the
// controllers and flags the first container running `bosun agent` in the
// cluster's rendered manifests declares (read as lint reads it, parsed as
// the agent parses it), plus the capacity controllers against the local
// cloud. A cluster without an agent gets the capacity controllers only.
// The connection, leader election, listen addresses and provider are set
// by runAgent. Any error names the object and is reported before anything
// starts.
func agentFor(res *render.Result, parse AgentParser, clusterAutoscaler bool) (agent.Options, error) {
	line, owner := renderedAgent(res)
	opts := agent.Options{Interval: agentInterval, Capacity: agent.DefaultCapacity()}
	if line != nil {
		if parse == nil {
			return opts, fmt.Errorf("%s %s/%s runs the agent, but no parser for its arguments was given", owner.Object.GetKind(), owner.Object.GetNamespace(), owner.Object.GetName())
		}
		parsed, err := parse(line.Args, line.Env)
		if err != nil {
			return opts, fmt.Errorf("%s %s/%s runs the agent with arguments bosun up cannot run: %w (bosun lint checks them too)",
				owner.Object.GetKind(), owner.Object.GetNamespace(), owner.Object.GetName(), err)
		}
		opts = parsed
		opts.Controllers = slices.DeleteFunc(slices.Clone(parsed.Controllers), func(c string) bool {
			return slices.Contains(capacityControllers(false), c)
		})
	}
	opts.Controllers = append(opts.Controllers, capacityControllers(clusterAutoscaler)...)
	return opts, nil
}

// renderedAgent returns the command line of the first container that runs
// `bosun agent` in a cluster's rendered manifests and the object holding
// it; nil when none does.
func renderedAgent(res *render.Result) (*agentcmd.CommandLine, *render.Object) {
	for _, obj := range res.Objects {
		pod, ok := obj.PodTemplate()
		if !ok {
			continue
		}
		ns := obj.Object.GetNamespace()
		if ns == "" {
			ns = metav1.NamespaceDefault
		}
		for i := range pod.Spec.Containers {
			if l, ok := agentcmd.ParseCommandLine(&pod.Spec.Containers[i], ns); ok {
				return l, obj
			}
		}
	}
	return nil, nil
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

// runAgent runs opts (from agentFor) against the cluster, with the local
// cloud as the capacity controllers' provider, until ctx ends; their
// problems go to the log, never stop the fleet. Leader election and the
// metrics and profile listeners are off (this process is the only agent
// of the local cluster, and several clusters share one machine), and
// --once is ignored; --dry-run is kept.
func runAgent(ctx context.Context, log *slog.Logger, cl *fleet.Cluster, cp *controlplane.ControlPlane, cloud provider.Provider, opts agent.Options) {
	opts.Kubeconfig, opts.RESTConfig = "", cp.RESTConfig()
	opts.LeaderElect, opts.ListenAddress, opts.PprofAddress = false, "", ""
	opts.ListenReason = "bosun up runs the agent in its own process for every cluster"
	opts.Once = false // a Deployment's agent that exits is restarted; here it would just stop
	opts.Capacity.Provider, opts.Capacity.Name, opts.Capacity.LocalCloud = cloud, "", ""
	opts.Capacity.Cluster, opts.Capacity.Region = cl.ID, cl.Region
	opts.Logger, opts.Out = log.With("cluster", cl.ID), io.Discard
	if err := agent.Run(ctx, opts); err != nil && ctx.Err() == nil {
		log.Warn("agent stopped", "cluster", cl.ID, "error", err)
	}
}
