//go:build integration

package observability

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"sigs.k8s.io/yaml"

	"github.com/bosun-platform/bosun/internal/controlplane"
	"github.com/bosun-platform/bosun/internal/testenv"
)

// prometheusEnv is the path of the Prometheus server `make tools` builds;
// set (the Makefile exports it), a missing binary fails the test.
const prometheusEnv = "BOSUN_PROMETHEUS"

// prometheusBinary finds $BOSUN_PROMETHEUS, else
// <cache>/tools/prometheus-<version pinned in hack/tools/prometheus/go.mod>;
// outside make a missing binary skips, saying how to build it.
func prometheusBinary(t *testing.T) string {
	t.Helper()
	if p := os.Getenv(prometheusEnv); p != "" {
		if _, err := os.Stat(p); err != nil {
			t.Fatalf("%s=%s: %v (make tools builds it)", prometheusEnv, p, err)
		}
		return p
	}
	version, err := pinnedVersion(repoRoot+"/hack/tools/prometheus/go.mod", "github.com/prometheus/prometheus")
	if err != nil {
		t.Fatal(err)
	}
	cache, err := controlplane.CacheDir()
	if err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(cache, "tools", "prometheus-"+version)
	if _, err := os.Stat(p); errors.Is(err, fs.ErrNotExist) {
		t.Skipf("prometheus %s not built: run `make tools` (or set %s)", p, prometheusEnv)
	}
	return p
}

// The CPU alert on real numbers (L09, L18): a local control plane whose
// kwok simulates two containers with a 1-core CPU limit, one using 95% of
// it and one 30%; a real Prometheus scrapes kwok's kubelet resource
// endpoint (container_cpu_usage_seconds_total, as metrics-server reads it)
// and its kube-state stand-in (limits and team labels), evaluates the
// rendered rules of local-prod with the alert's `for` cut from 15m to
// 20s and its rate window from 5m to 30s, and ContainerCPUNearLimit goes pending, then firing, for the hot
// container only, with its team. Throttling cannot be simulated (kwok has
// no CPU scheduler, so no CFS periods): ContainerCPUThrottled stays proven
// by promtool only (docs/observability.md).
func TestIntegrationCPUAlertOnLiveCluster(t *testing.T) {
	prom := prometheusBinary(t)
	bins, err := controlplane.FindBinaries("")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(bins.MetricsServer); err != nil {
		t.Fatalf("metrics-server: %v (make tools builds it)", err)
	}
	ctx := context.Background()
	cp, err := controlplane.Start(ctx, controlplane.Options{
		Name: "alerts", Binaries: bins, Scheduler: true, ControllerManager: true, Kwok: true, MetricsServer: true,
		UnsafeNoFsync: true, Logf: t.Logf,
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cp.Stop() })
	cs, err := kubernetes.NewForConfig(cp.RESTConfig())
	if err != nil {
		t.Fatal(err)
	}
	node, err := controlplane.NewNode(controlplane.NodeSpec{Name: "alerts-a"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := cs.CoreV1().Nodes().Create(ctx, node, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	for _, p := range []struct{ name, team, fraction string }{{"hot", "payments", "0.95"}, {"cool", "storefront", "0.3"}} {
		one := corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("1"), corev1.ResourceMemory: resource.MustParse("256Mi")}
		pod := &corev1.Pod{
			ObjectMeta: metav1.ObjectMeta{Name: p.name, Namespace: "default", Labels: map[string]string{"team": p.team},
				Annotations: map[string]string{"bosun.dev/usage-fraction": p.fraction}},
			Spec: corev1.PodSpec{NodeName: node.Name, Containers: []corev1.Container{{Name: "app", Image: "registry.example/app:1",
				Resources: corev1.ResourceRequirements{Requests: one, Limits: one}}}},
		}
		if _, err := cs.CoreV1().Pods("default").Create(ctx, pod, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
	}

	// The rendered rules of local-prod, the CPU alert's `for` and rate
	// window shortened: rate over 5m of a series a minute old divides a
	// minute's increase by five, so the ratio would cross 0.9 only after
	// 5 minutes. Nothing else of the expression changes.
	var rules RuleFile
	for _, res := range renderFleet(t) {
		if res.Cluster.ID == testedCluster {
			rules = rulesOf(t, res)[0].File
		}
	}
	found := false
	for gi := range rules.Groups {
		for ri := range rules.Groups[gi].Rules {
			if r := &rules.Groups[gi].Rules[ri]; r.Alert == "ContainerCPUNearLimit" {
				if strings.Count(r.Expr, "[5m]") != 1 {
					t.Fatalf("ContainerCPUNearLimit expression %q: want one [5m] rate window to shorten", r.Expr)
				}
				r.Expr = strings.Replace(r.Expr, "[5m]", "[30s]", 1)
				r.For, found = "20s", true
			}
		}
	}
	if !found {
		t.Fatal("rendered rules have no ContainerCPUNearLimit")
	}
	dir := t.TempDir()
	rb, err := yaml.Marshal(rules)
	if err != nil {
		t.Fatal(err)
	}
	kwok, err := url.Parse(cp.KwokURL())
	if err != nil || cp.KwokURL() == "" {
		t.Fatalf("kwok URL %q: %v", cp.KwokURL(), err)
	}
	config := fmt.Sprintf(`global: {scrape_interval: 2s, evaluation_interval: 2s}
rule_files: [bosun.rules.yaml]
scrape_configs:
- job_name: kubelet-resource
  metrics_path: /metrics/nodes/%s/metrics/resource
  static_configs: [{targets: [%q]}]
- job_name: kube-state-metrics
  metrics_path: /metrics/nodes/%s/metrics/kube-state
  honor_labels: true
  static_configs: [{targets: [%q]}]
`, node.Name, kwok.Host, node.Name, kwok.Host)
	for name, body := range map[string][]byte{"bosun.rules.yaml": rb, "prometheus.yml": []byte(config)} {
		if err := os.WriteFile(filepath.Join(dir, name), body, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	_ = ln.Close()
	logf, err := os.Create(filepath.Join(dir, "prometheus.log"))
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(prom, "--config.file="+filepath.Join(dir, "prometheus.yml"), "--storage.tsdb.path="+filepath.Join(dir, "data"),
		"--web.listen-address="+addr, "--log.level=warn")
	cmd.Stdout, cmd.Stderr = logf, logf
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = cmd.Process.Kill() // by its PID
		_ = cmd.Wait()
		_ = logf.Close()
		if t.Failed() {
			if b, err := os.ReadFile(logf.Name()); err == nil {
				t.Logf("prometheus log:\n%s", b)
			}
		}
	})

	type alert struct {
		Labels map[string]string `json:"labels"`
		State  string            `json:"state"`
		Value  string            `json:"value"`
	}
	alerts := func(ctx context.Context) ([]alert, error) {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+addr+"/api/v1/alerts", nil)
		if err != nil {
			return nil, err
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			return nil, err
		}
		defer resp.Body.Close()
		var body struct {
			Status string `json:"status"`
			Data   struct {
				Alerts []alert `json:"alerts"`
			} `json:"data"`
		}
		if err := json.NewDecoder(resp.Body).Decode(&body); err != nil {
			return nil, err
		}
		return body.Data.Alerts, nil
	}
	var sawPending bool
	var firing alert
	testenv.Eventually(t, 3*time.Minute, func(ctx context.Context) (bool, error) {
		as, err := alerts(ctx)
		if err != nil {
			return false, nil // Prometheus is starting
		}
		for _, a := range as {
			if a.Labels["alertname"] != "ContainerCPUNearLimit" {
				continue
			}
			if a.Labels["pod"] != "hot" {
				t.Fatalf("ContainerCPUNearLimit %s for %s/%s at %s: only the container at 95%% of its limit should alert", a.State, a.Labels["namespace"], a.Labels["pod"], a.Value)
			}
			switch a.State {
			case "pending":
				sawPending = true
			case "firing":
				firing = a
				return true, nil
			}
		}
		return false, nil
	}, "ContainerCPUNearLimit to fire for default/hot")
	if !sawPending {
		t.Errorf("ContainerCPUNearLimit fired without being seen pending first (for: 20s, polled every few hundred ms)")
	}
	want := map[string]string{"namespace": "default", "pod": "hot", "container": "app", "team": "payments", "cluster": testedCluster, "severity": "warning"}
	for k, v := range want {
		if firing.Labels[k] != v {
			t.Errorf("firing alert label %s=%q, want %q (labels %v)", k, firing.Labels[k], v, firing.Labels)
		}
	}
	var value float64
	if _, err := fmt.Sscan(firing.Value, &value); err != nil || value < 0.9 || value > 1.0 {
		t.Errorf("firing alert value %q, want about 0.95 of the CPU limit", firing.Value)
	}
	// The cool container's ratio is evaluated from the same series: it is
	// present and about 0.3, so its silence is not for want of data.
	q := url.Values{"query": {`sum by (pod) (rate(container_cpu_usage_seconds_total{namespace="default", pod="cool"}[30s])) / sum by (pod) (kube_pod_container_resource_limits{namespace="default", pod="cool", resource="cpu"})`}}
	resp, err := http.Get("http://" + addr + "/api/v1/query?" + q.Encode())
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var qr struct {
		Data struct {
			Result []struct {
				Value [2]any `json:"value"`
			} `json:"result"`
		} `json:"data"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&qr); err != nil || len(qr.Data.Result) != 1 {
		t.Fatalf("ratio of default/cool: %v, %+v", err, qr)
	}
	s, _ := qr.Data.Result[0].Value[1].(string)
	if _, err := fmt.Sscan(s, &value); err != nil || value < 0.25 || value > 0.35 {
		t.Errorf("default/cool uses %q of its CPU limit, want about 0.3", s)
	}
	as, err := alerts(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for _, a := range as {
		if a.Labels["alertname"] == "ContainerCPUNearLimit" && a.Labels["pod"] != "hot" {
			t.Errorf("ContainerCPUNearLimit %s for %s", a.State, a.Labels["pod"])
		}
	}
}
