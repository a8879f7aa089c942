package scaleup

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/bosun-platform/bosun/internal/casgrpc"
	"github.com/bosun-platform/bosun/internal/provider"
)

// ClusterAutoscalerArgs is the command line the benchmark runs
// cluster-autoscaler with: the externalgrpc provider pointing at Bosun's
// casgrpc server over the local cloud, the priority expander (its
// ConfigMap built from the pools' priorities), the cluster's kubeconfig.
// Scale-down is off (the scenarios measure scale-up); everything else is
// cluster-autoscaler's default, including the 10 s scan interval and the
// 15 min max node provision time, so the comparison is with the tool as
// teams run it.
func ClusterAutoscalerArgs(kubeconfig, cloudConfig string) []string {
	return []string{
		"--cloud-provider=externalgrpc",
		"--cloud-config=" + cloudConfig,
		"--expander=priority",
		"--kubeconfig=" + kubeconfig,
		"--namespace=kube-system",
		"--leader-elect=false",
		"--scale-down-enabled=false",
		"--v=2",
	}
}

// writeClusterAutoscalerConfig writes the --cloud-config file for a
// casgrpc server at addr into dir and returns its path.
func writeClusterAutoscalerConfig(dir, addr string) (string, error) {
	cfg, err := casgrpc.CloudConfig{Address: addr}.YAML()
	if err != nil {
		return "", err
	}
	path := filepath.Join(dir, "cluster-autoscaler.yaml")
	if err := os.WriteFile(path, cfg, 0o600); err != nil {
		return "", fmt.Errorf("writing cluster-autoscaler's cloud config, %w", err)
	}
	return path, nil
}

// startClusterAutoscaler serves the externalgrpc API over the trial's
// cloud (through the recorder, so its requests are timed like Bosun's),
// creates the priority expander's ConfigMap and starts the binary. The
// returned function stops it.
func startClusterAutoscaler(ctx context.Context, path string, t *trial) (func(), error) {
	addr, _, err := casgrpc.Serve(ctx, t.rec, "127.0.0.1:0", casgrpc.Options{Cluster: clusterID, Region: "local", Log: quietLogger()})
	if err != nil {
		return nil, fmt.Errorf("serving externalgrpc for cluster-autoscaler, %w", err)
	}
	cloudConfig, err := writeClusterAutoscalerConfig(t.cp.Dir, addr)
	if err != nil {
		return nil, err
	}
	all, err := t.cloud.NodeGroups(ctx)
	if err != nil {
		return nil, fmt.Errorf("listing node groups, %w", err)
	}
	var groups []provider.NodeGroup
	for _, g := range all {
		if g.Cluster == clusterID {
			groups = append(groups, g)
		}
	}
	cm := casgrpc.PriorityExpanderConfigMap("kube-system", groups)
	if _, err := t.cs.CoreV1().ConfigMaps(cm.Namespace).Create(ctx, cm, metav1.CreateOptions{}); err != nil {
		return nil, fmt.Errorf("creating the priority expander ConfigMap, %w", err)
	}
	logPath := filepath.Join(t.cp.Dir, "logs", "cluster-autoscaler.log")
	t.progress("starting %s (log %s)", path, logPath)
	stop, _, err := launch(path, ClusterAutoscalerArgs(t.cp.KubeconfigPath, cloudConfig), logPath)
	return stop, err
}

// launch starts a program with its output in logPath and returns a
// function that stops it (SIGTERM, then SIGKILL after 10 s, by its PID)
// and its PID.
func launch(path string, args []string, logPath string) (func(), int, error) {
	log, err := os.Create(logPath)
	if err != nil {
		return nil, 0, fmt.Errorf("creating %s, %w", logPath, err)
	}
	cmd := exec.Command(path, args...)
	cmd.Stdout, cmd.Stderr = log, log
	if err := cmd.Start(); err != nil {
		_ = log.Close() // the start failed; the log has nothing to flush
		return nil, 0, fmt.Errorf("starting %s, %w", path, err)
	}
	done := make(chan struct{})
	go func() {
		_ = cmd.Wait() // stopped by us: its exit status says nothing
		close(done)
	}()
	return func() {
		defer func() { _ = log.Close() }() // the process is gone; a close error changes nothing
		if err := cmd.Process.Signal(syscall.SIGTERM); err != nil && !errors.Is(err, os.ErrProcessDone) {
			_ = cmd.Process.Kill()
		}
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			_ = cmd.Process.Kill()
			<-done
		}
	}, cmd.Process.Pid, nil
}
