package lint

import (
	"bytes"
	"context"
	"testing"
	"testing/fstest"

	"github.com/bosun-platform/bosun/internal/fleet"
)

const fuzzCluster = `id: c1
environment: production
provider: local
region: local
kubernetesVersion: "1.33"
nodePools:
  - {name: system, role: system, lifecycle: on-demand, instanceTypes: [m6i.xlarge], zones: [a], minSize: 1, maxSize: 2, taints: [{key: k, value: v, effect: NoSchedule}]}
  - {name: spot, role: worker, applicationGroup: g, lifecycle: spot, instanceTypes: [m5.xlarge, nope.big], zones: [a], minSize: 0, maxSize: 2, priority: 5}
`

// FuzzRenderLint feeds arbitrary manifests (template actions removed, so
// the input is data, not a program) through render and every lint rule:
// they must report or reject, never panic.
func FuzzRenderLint(f *testing.F) {
	f.Add([]byte(badPod))
	f.Add([]byte("apiVersion: apps/v1\nkind: DaemonSet\nmetadata: {name: d}\nspec:\n  template:\n    spec:\n      containers: [{name: c, resources: {requests: {cpu: x}}}]\n"))
	f.Add([]byte("apiVersion: autoscaling/v2\nkind: HorizontalPodAutoscaler\nmetadata: {name: h}\nspec:\n  metrics: [{resource: {name: cpu, target: {averageUtilization: 1e9}}}]\n  behavior: {scaleDown: {stabilizationWindowSeconds: -1}}\n"))
	f.Add([]byte("apiVersion: scheduling.k8s.io/v1\nkind: PriorityClass\nmetadata: {name: p, annotations: {lint.bosun.dev/L13: ''}}\nvalue: '5'\n---\n- 1\n"))
	f.Add([]byte("apiVersion: batch/v1\nkind: CronJob\nmetadata: {name: c}\nspec: {jobTemplate: {spec: {template: {spec: {dnsConfig: {options: [{name: ndots, value: abc}]}}}}}}\n"))
	f.Fuzz(func(t *testing.T, manifest []byte) {
		manifest = bytes.ReplaceAll(manifest, []byte("{{"), []byte("{ {"))
		fsys := fstest.MapFS{
			"clusters/c1.yaml":     {Data: []byte(fuzzCluster)},
			"manifests/app/a.yaml": {Data: manifest},
		}
		fl, err := fleet.LoadFS(fsys, "fuzz")
		if err != nil {
			return
		}
		rep, err := Run(context.Background(), fl, Options{})
		if err == nil && rep == nil {
			t.Fatal("nil report without an error")
		}
	})
}
