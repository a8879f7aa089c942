package localfleet

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"

	"github.com/bosun-platform/bosun/internal/controlplane"
	"github.com/bosun-platform/bosun/internal/version"
)

// Options configure `bosun up`.
type Options struct {
	// StateDir holds the fleet's state (default DefaultStateDir).
	StateDir string
	// BinDir holds the control-plane binaries ("" = default cache).
	BinDir string
	// Nodes is how many kwok nodes the local cluster gets.
	Nodes int
	// NodeCPU and NodeMemory are each node's capacity.
	NodeCPU, NodeMemory string
	// NodeBootDelay is how long a new node takes to turn Ready.
	NodeBootDelay time.Duration
	// Out receives progress and the how-to-use message.
	Out io.Writer
	// Ready, if set, is called once the fleet is up (tests use it).
	Ready func(kubeconfig string)
}

// Up starts the local fleet (today: one cluster, "local", with opts.Nodes
// kwok nodes), writes its kubeconfig to the state directory, and runs until
// ctx ends (Ctrl-C, or SIGTERM from `bosun down`); then it stops every
// process it started. A second Up on the same state directory fails with
// ErrAlreadyRunning. Every start is clean: the previous cluster's data is
// removed.
func Up(ctx context.Context, opts Options) error {
	if opts.Nodes < 0 {
		return fmt.Errorf("--nodes %d: expected 0 or more", opts.Nodes)
	}
	bins, err := controlplane.FindBinaries(opts.BinDir)
	if err != nil {
		return err
	}
	// Validate node sizes before anything starts.
	if _, err := controlplane.NewNode(nodeSpec(opts, 0)); err != nil {
		return err
	}
	lk, err := acquireLock(opts.StateDir)
	if err != nil {
		return err
	}
	defer lk.release(opts.StateDir)

	// Leftovers of a previous run that was killed hard: stop them first.
	dir := ClusterDir(opts.StateDir, localCluster)
	if stopped, err := controlplane.StopRecorded(dir, 10*time.Second); err != nil {
		return fmt.Errorf("stopping leftovers of a previous run, %w", err)
	} else if len(stopped) > 0 {
		fmt.Fprintf(opts.Out, "stopped %d processes left by a previous run\n", len(stopped))
	}
	if err := os.RemoveAll(dir); err != nil {
		return fmt.Errorf("cleaning %s, %w", dir, err)
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("creating %s, %w", dir, err)
	}

	fmt.Fprintf(opts.Out, "Starting local cluster %q (Kubernetes %s, kwok %s) in %s\n", localCluster, version.Kubernetes, version.Kwok, dir)
	start := time.Now()
	cp, err := controlplane.Start(ctx, controlplane.Options{
		Name: localCluster, Dir: dir, Binaries: bins,
		Scheduler: true, ControllerManager: true, Kwok: true,
		NodeBootDelay: opts.NodeBootDelay,
		Logf:          func(f string, a ...any) { fmt.Fprintf(opts.Out, "  "+f+"\n", a...) },
	})
	if err != nil {
		return fmt.Errorf("starting the local cluster, %w", err)
	}
	defer func() {
		fmt.Fprintf(opts.Out, "Stopping local cluster %q\n", localCluster)
		if err := cp.Stop(); err != nil {
			fmt.Fprintf(opts.Out, "warning: %v\n", err)
		}
		_ = os.Remove(KubeconfigPath(opts.StateDir))
		fmt.Fprintln(opts.Out, "Stopped.")
	}()

	if err := createNodes(ctx, cp, opts); err != nil {
		return err
	}
	if err := copyFile(cp.KubeconfigPath, KubeconfigPath(opts.StateDir)); err != nil {
		return err
	}
	printUsage(opts, time.Since(start))
	if opts.Ready != nil {
		opts.Ready(KubeconfigPath(opts.StateDir))
	}
	<-ctx.Done()
	return nil
}

func nodeSpec(opts Options, i int) controlplane.NodeSpec {
	return controlplane.NodeSpec{
		Name:   fmt.Sprintf("local-worker-%d", i+1),
		CPU:    opts.NodeCPU,
		Memory: opts.NodeMemory,
		Labels: map[string]string{"node.kubernetes.io/role": "worker", "topology.kubernetes.io/zone": "local-1a"},
	}
}

// createNodes creates the kwok nodes and waits until they are Ready.
func createNodes(ctx context.Context, cp *controlplane.ControlPlane, opts Options) error {
	cs, err := kubernetes.NewForConfig(cp.RESTConfig())
	if err != nil {
		return fmt.Errorf("building client, %w", err)
	}
	for i := 0; i < opts.Nodes; i++ {
		node, err := controlplane.NewNode(nodeSpec(opts, i))
		if err != nil {
			return err
		}
		if _, err := cs.CoreV1().Nodes().Create(ctx, node, metav1.CreateOptions{}); err != nil {
			return fmt.Errorf("creating node %s, %w", node.Name, err)
		}
	}
	if opts.Nodes == 0 {
		return nil
	}
	fmt.Fprintf(opts.Out, "  waiting for %d kwok nodes to boot (boot delay %s)\n", opts.Nodes, opts.NodeBootDelay)
	deadline := time.Now().Add(opts.NodeBootDelay + 2*time.Minute)
	for {
		list, err := cs.CoreV1().Nodes().List(ctx, metav1.ListOptions{})
		if err == nil {
			ready := 0
			for i := range list.Items {
				for _, c := range list.Items[i].Status.Conditions {
					if c.Type == "Ready" && c.Status == "True" {
						ready++
					}
				}
			}
			if ready >= opts.Nodes {
				return nil
			}
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("kwok nodes not Ready in time; see %s", filepath.Join(cp.Dir, "logs", "kwok.log"))
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(200 * time.Millisecond):
		}
	}
}

func printUsage(opts Options, took time.Duration) {
	kc := KubeconfigPath(opts.StateDir)
	kubectl := "kubectl"
	if _, err := exec.LookPath("kubectl"); err != nil {
		if bins, err := controlplane.DefaultBinDir(); err == nil && opts.BinDir == "" {
			kubectl = filepath.Join(bins, "kubectl")
		} else if opts.BinDir != "" {
			kubectl = filepath.Join(opts.BinDir, "kubectl")
		}
	}
	fmt.Fprintf(opts.Out, `
Local cluster %q is ready in %s with %d kwok nodes.

Use it:
  export KUBECONFIG=%s
  %s get nodes
  %s create deployment web --image=nginx --replicas=3

Logs:  %s
Stop:  Ctrl-C here, or "bosun down" from another shell.
`, localCluster, took.Round(100*time.Millisecond), opts.Nodes, kc, kubectl, kubectl,
		filepath.Join(ClusterDir(opts.StateDir, localCluster), "logs"))
}

func copyFile(src, dst string) error {
	data, err := os.ReadFile(src)
	if err != nil {
		return fmt.Errorf("reading %s, %w", src, err)
	}
	tmp := dst + ".tmp"
	if err := os.WriteFile(tmp, data, 0o600); err != nil {
		return fmt.Errorf("writing %s, %w", dst, err)
	}
	return os.Rename(tmp, dst)
}
