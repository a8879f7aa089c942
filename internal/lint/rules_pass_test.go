package lint

import (
	"strings"
	"testing"
	"testing/fstest"
)

// goodPod is a pod that passes every rule on every cluster of the example
// fleet; cases change one thing that a rule must still accept.
const goodPod = `apiVersion: v1
kind: Pod
metadata:
  name: good
  namespace: shop
  labels: {application: good, team: t}
spec:
  automountServiceAccountToken: false
  nodeSelector: {node.bosun.dev/application-group: default}
  securityContext: {runAsNonRoot: true, seccompProfile: {type: RuntimeDefault}}
  containers:
    - name: app
      image: app:1
      resources: {requests: {cpu: 100m, memory: 64Mi}, limits: {memory: 64Mi}}
      readinessProbe: {httpGet: {path: /, port: 80}}
      securityContext: {allowPrivilegeEscalation: false, readOnlyRootFilesystem: true, capabilities: {drop: [ALL]}}
`

const promFile = "manifests/monitoring/prometheus.yaml"

// promCR is a prometheus-operator Prometheus with two replicas apart by
// hostname.
const promCR = `apiVersion: monitoring.coreos.com/v1
kind: Prometheus
metadata:
  name: k8s
  namespace: monitoring
spec:
  replicas: 2
  affinity:
    podAntiAffinity:
      requiredDuringSchedulingIgnoredDuringExecution:
        - topologyKey: kubernetes.io/hostname
          labelSelector: {matchLabels: {prometheus: k8s}}
`

// promVPA sizes the example's Prometheus.
const promVPA = `apiVersion: autoscaling.k8s.io/v1
kind: VerticalPodAutoscaler
metadata:
  name: prometheus
  namespace: monitoring
spec:
  targetRef: {apiVersion: apps/v1, kind: StatefulSet, name: prometheus}
  updatePolicy: {updateMode: Auto}
`

func staging(s string) string {
	return `{{ if ne .Cluster.Environment "production" }}` + s + `{{ end }}`
}

// Each rule has at least one case at the edge of what it accepts, which
// must produce no finding of that rule.
func TestRulesPass(t *testing.T) {
	cases := []struct {
		rule, name string
		change     func(t *testing.T, fsys fstest.MapFS)
	}{
		{"L03-dns-ndots", "ndots 1 in the pod", func(t *testing.T, fsys fstest.MapFS) {
			add(fsys, "manifests/test/pod.yaml", strings.Replace(goodPod, "spec:\n", "spec:\n  dnsConfig: {options: [{name: ndots, value: \"1\"}]}\n", 1))
		}},
		{"L03-dns-ndots", "no dnsConfig but the cluster default is 2", func(t *testing.T, fsys fstest.MapFS) {
			add(fsys, "manifests/test/pod.yaml", goodPod)
		}},
		{"L04-equal-instance-sizes", "same size from different families", func(t *testing.T, fsys fstest.MapFS) {
			edit(t, fsys, prod, "instanceTypes: [m6i.xlarge]", "instanceTypes: [m6i.xlarge, m5a.xlarge, m7i.xlarge]")
		}},
		{"L04-single-architecture", "arm64 types of one size from several families", func(t *testing.T, fsys fstest.MapFS) {
			edit(t, fsys, prod, "instanceTypes: [m6i.xlarge]", "instanceTypes: [m6g.xlarge, m7g.xlarge, m8g.xlarge, t4g.xlarge]")
		}},
		{"L05-max-pools-per-group", "exactly four pools in a group (the example)", func(*testing.T, fstest.MapFS) {}},
		{"L06-dedicated-pool", "a NoExecute taint", func(t *testing.T, fsys fstest.MapFS) {
			edit(t, fsys, prod, "value: checkout-api, effect: NoSchedule}", "value: checkout-api, effect: NoExecute}")
		}},
		{"L07-system-pool", "two on-demand system pools", func(t *testing.T, fsys fstest.MapFS) {
			edit(t, fsys, prod, "  - name: default-spot-xlarge\n", "  - name: system-2\n    role: system\n    lifecycle: on-demand\n    instanceTypes: [m6i.xlarge]\n    zones: [eu-central-1a, eu-central-1b]\n    minSize: 0\n    maxSize: 3\n    taints:\n      - {key: node.bosun.dev/role, value: system, effect: NoSchedule}\n  - name: default-spot-xlarge\n")
		}},
		{"L08-daemonset-guaranteed", "equal quantities in different units", func(t *testing.T, fsys fstest.MapFS) {
			edit(t, fsys, "manifests/node-local-dns/daemonset.yaml", "limits: {cpu: 50m, memory: 64Mi}", "limits: {cpu: 0.05, memory: 67108864}")
		}},
		{"L11-fast-fallback", "a shorter timeout as a separate argument", func(t *testing.T, fsys fstest.MapFS) {
			edit(t, fsys, "manifests/cluster-autoscaler/cluster-autoscaler.yaml", "- --max-node-provision-time=5m", "- --max-node-provision-time\n            - 2m30s")
		}},
		{"L12-overprovisioning", "a pod of a pool without overprovisioning may be larger", func(t *testing.T, fsys fstest.MapFS) {
			big := strings.Replace(goodPod, "requests: {cpu: 100m, memory: 64Mi}, limits: {memory: 64Mi}", "requests: {cpu: 8, memory: 8Gi}, limits: {memory: 8Gi}", 1)
			big = strings.Replace(big, "nodeSelector: {node.bosun.dev/application-group: default}", "nodeSelector: {node.bosun.dev/role: system}\n  tolerations: [{key: node.bosun.dev/role, operator: Exists}]", 1)
			add(fsys, "manifests/test/pod.yaml", strings.Replace(big, "namespace: shop", "namespace: kube-system", 1))
		}},
		{"L12-overprovisioning", "static pause Deployments instead of the overprovisioner (the former example)", func(t *testing.T, fsys fstest.MapFS) {
			withoutOverprovisioner(t, fsys)
			add(fsys, "manifests/test/pause.yaml", staticPause)
		}},
		{"L12-overprovisioning", "ladder rules instead of linear", func(t *testing.T, fsys fstest.MapFS) {
			edit(t, fsys, opFile, "  linear: '", "  ladder: '{\"coresToReplicas\": [[1, 1], [64, 3], [512, 5]], \"nodesToReplicas\": [[1, 1], [2, 2]]}'\n  unused: '")
		}},
		{"L12-overprovisioning", "the rules ConfigMap at the agent's default place", func(t *testing.T, fsys fstest.MapFS) {
			edit(t, fsys, agentFile, "            - --overprovisioner-configmap=overprovisioning/overprovisioning\n", "")
			edit(t, fsys, opFile, "  namespace: overprovisioning\n", "  namespace: kube-system\n")
		}},
		{"L12-overprovisioning", "a tainted worker pool nothing runs on needs no target", func(t *testing.T, fsys fstest.MapFS) {
			edit(t, fsys, prod, "nodePools:\n", "nodePools:\n"+gpuPool)
		}},
		{"L12-overprovisioning", "a tainted pool that runs only Jobs needs no target", func(t *testing.T, fsys fstest.MapFS) {
			edit(t, fsys, prod, "nodePools:\n", "nodePools:\n"+gpuPool)
			job := strings.Replace(strings.Replace(gpuPod, "apiVersion: v1\nkind: Pod", "apiVersion: batch/v1\nkind: Job", 1), "      readinessProbe: {httpGet: {path: /, port: 80}}\n", "", 1)
			head, body, _ := strings.Cut(job, "spec:\n")
			add(fsys, "manifests/test/job.yaml", head+"spec:\n  template:\n    metadata: {labels: {application: good, team: t}}\n    spec:\n      restartPolicy: Never\n"+indent(body, "    "))
		}},
		{"L12-overprovisioning", "the downscaler excludes the namespace by flag", func(t *testing.T, fsys fstest.MapFS) {
			edit(t, fsys, "manifests/namespaces/namespaces.yaml", `downscaler/exclude: "true"`, `downscaler/exclude: "false"`)
			edit(t, fsys, agentFile, "            - --overprovisioner-configmap=overprovisioning/overprovisioning\n", "            - --overprovisioner-configmap=overprovisioning/overprovisioning\n            - --exclude-namespaces\n            - kube-system,overprovisioning\n")
		}},
		{"L13-priority-classes", "system priority classes need not be rendered", func(t *testing.T, fsys fstest.MapFS) {
			add(fsys, "manifests/test/pod.yaml", strings.Replace(goodPod, "spec:\n", "spec:\n  priorityClassName: system-node-critical\n", 1))
		}},
		{"L14-hpa-cpu-target", "60% (the lower bound)", func(t *testing.T, fsys fstest.MapFS) {
			edit(t, fsys, "manifests/shop/apps.yaml", "averageUtilization: 70", "averageUtilization: 60")
		}},
		{"L14-hpa-cpu-target", "80% (the upper bound)", func(t *testing.T, fsys fstest.MapFS) {
			edit(t, fsys, "manifests/shop/apps.yaml", "averageUtilization: 70", "averageUtilization: 80")
		}},
		{"L15-hpa-scale-down", "an hour", func(t *testing.T, fsys fstest.MapFS) {
			edit(t, fsys, "defaults.yaml", `hpa_scale_down_stabilization_seconds: "1800"`, `hpa_scale_down_stabilization_seconds: "3600"`)
		}},
		{"L21-spot-fallback", "one on-demand pool below both spot pools", func(t *testing.T, fsys fstest.MapFS) {
			edit(t, fsys, prod, "    priority: 20\n", "    priority: 45\n")
		}},
		{"L23-spot-diversity", "exactly the configured minimum", func(t *testing.T, fsys fstest.MapFS) {
			edit(t, fsys, "fleet.yaml", "minSpotInstanceTypes: 10", "minSpotInstanceTypes: 16")
		}},
		{"L26-system-placement", "a DaemonSet in kube-system runs everywhere", func(*testing.T, fstest.MapFS) {}},
		{"L30-deprecated-api", "a beta API before its deprecation", func(t *testing.T, fsys fstest.MapFS) {
			edit(t, fsys, prod, `kubernetesVersion: "1.33"`, `kubernetesVersion: "1.20"`)
			edit(t, fsys, "clusters/local-prod.yaml", `kubernetesVersion: "1.33"`, `kubernetesVersion: "1.20"`)
			edit(t, fsys, "clusters/aws-staging-eu1.yaml", `kubernetesVersion: "1.33"`, `kubernetesVersion: "1.20"`)
			edit(t, fsys, "clusters/local-staging.yaml", `kubernetesVersion: "1.33"`, `kubernetesVersion: "1.20"`)
			edit(t, fsys, "manifests/coredns/coredns.yaml", "apiVersion: policy/v1\n", "apiVersion: policy/v1beta1\n")
		}},
		{"L35-node-overhead", "DaemonSets at 25% of a node", func(t *testing.T, fsys fstest.MapFS) {
			edit(t, fsys, "manifests/node-local-dns/daemonset.yaml", "{cpu: 50m, memory: 64Mi}\n          readiness", "{cpu: 1, memory: 64Mi}\n          readiness")
			edit(t, fsys, "manifests/node-local-dns/daemonset.yaml", "{cpu: 50m, memory: 64Mi}", "{cpu: 1, memory: 64Mi}")
		}},
		{"L37-pod-security", "a pod with its own service account may mount its token", func(t *testing.T, fsys fstest.MapFS) {
			add(fsys, "manifests/test/pod.yaml", strings.Replace(goodPod, "  automountServiceAccountToken: false\n", "  serviceAccountName: good\n", 1))
		}},
		{"L37-pod-security", "NET_BIND_SERVICE may be added", func(t *testing.T, fsys fstest.MapFS) {
			add(fsys, "manifests/test/pod.yaml", strings.Replace(goodPod, "drop: [ALL]", "drop: [ALL], add: [NET_BIND_SERVICE]", 1))
		}},
		{"L19-aws-agent", "the example's aws clusters: role, flags and IRSA annotation", func(*testing.T, fstest.MapFS) {}},
		{"L19-aws-agent", "EKS Pod Identity: no annotation needed", func(t *testing.T, fsys fstest.MapFS) {
			edit(t, fsys, prod, "configItems:\n", "configItems:\n  aws_agent_identity: pod-identity\n")
			edit(t, fsys, "clusters/aws-staging-eu1.yaml", "configItems:\n", "configItems:\n  aws_agent_identity: pod-identity\n")
			edit(t, fsys, "fleet.yaml", "    - aws_queue_url\n", "    - aws_queue_url\n    - aws_agent_identity\n")
		}},
		{"L37-exemption-reason", "an exempt namespace with a reason", func(t *testing.T, fsys fstest.MapFS) {
			add(fsys, "manifests/test/ns.yaml", "apiVersion: v1\nkind: Namespace\nmetadata:\n  name: legacy\n  labels: {admission.bosun.dev/exempt: \"true\"}\n  annotations: {admission.bosun.dev/exempt-reason: \"vendor chart, INC-7\"}\n")
		}},
		{"L56-human-write-access", "people view, service accounts write, and system groups are not people (the example's bindings)", func(t *testing.T, fsys fstest.MapFS) {
			add(fsys, "manifests/test/rbac.yaml", "apiVersion: rbac.authorization.k8s.io/v1\nkind: ClusterRoleBinding\nmetadata: {name: ci}\nroleRef: {apiGroup: rbac.authorization.k8s.io, kind: ClusterRole, name: cluster-admin}\nsubjects:\n  - {kind: ServiceAccount, name: deployer, namespace: ci}\n  - {kind: Group, name: \"system:masters\"}\n")
		}},
		{"L56-human-write-access", "write access for people outside production", func(t *testing.T, fsys fstest.MapFS) {
			add(fsys, "manifests/test/rbac.yaml", staging("apiVersion: rbac.authorization.k8s.io/v1\nkind: ClusterRoleBinding\nmetadata: {name: devs-edit}\nroleRef: {apiGroup: rbac.authorization.k8s.io, kind: ClusterRole, name: edit}\nsubjects:\n  - {kind: Group, name: developers}\n"))
		}},
		{"L46-test-twin", "a twin found by provider and region", func(t *testing.T, fsys fstest.MapFS) {
			edit(t, fsys, prod, "testTwin: aws-staging-eu1\n", "")
		}},
		{"L49-environment-drift", "an allowed item differs (dns_zone, the example)", func(*testing.T, fstest.MapFS) {}},
		{"L54-memory-limit", "overcommit outside production", func(t *testing.T, fsys fstest.MapFS) {
			add(fsys, "manifests/test/pod.yaml", staging(strings.Replace(goodPod, "limits: {memory: 64Mi}", "limits: {memory: 128Mi}", 1)))
		}},
		{"L55-ownership-labels", "unlabelled pods outside production", func(t *testing.T, fsys fstest.MapFS) {
			add(fsys, "manifests/test/pod.yaml", staging(strings.Replace(goodPod, "  labels: {application: good, team: t}\n", "", 1)))
		}},
		{"L16-redundant-scrapers", "the example's two Prometheus replicas apart by hostname", func(*testing.T, fstest.MapFS) {}},
		{"L16-redundant-scrapers", "apart by zone, as a Prometheus object", func(t *testing.T, fsys fstest.MapFS) {
			edit(t, fsys, promFile, "topologyKey: kubernetes.io/hostname", "topologyKey: topology.kubernetes.io/zone")
			add(fsys, "manifests/test/prometheus.yaml", promCR)
		}},
		{"L16-redundant-scrapers", "a single scraper outside production (the example's staging clusters)", func(*testing.T, fstest.MapFS) {}},
		{"L50-platform-right-sized", "a platform container without requests but a VPA in Auto mode", func(t *testing.T, fsys fstest.MapFS) {
			edit(t, fsys, promFile, "            requests: {cpu: 250m, memory: 1Gi}\n", "")
			add(fsys, "manifests/test/vpa.yaml", promVPA)
		}},
		{"L58-requests-and-probes", "a Job needs no readiness probe", func(t *testing.T, fsys fstest.MapFS) {
			job := strings.Replace(strings.Replace(goodPod, "      readinessProbe: {httpGet: {path: /, port: 80}}\n", "", 1), "kind: Pod", "kind: Job", 1)
			job = strings.Replace(job, "apiVersion: v1", "apiVersion: batch/v1", 1)
			job = strings.Replace(job, "spec:\n", "spec:\n  template:\n    metadata: {labels: {application: good, team: t}}\n    spec:\n      restartPolicy: Never\n", 1)
			// indent the pod spec under template.spec
			head, body, _ := strings.Cut(job, "      restartPolicy: Never\n")
			job = head + "      restartPolicy: Never\n" + indent(body, "    ")
			add(fsys, "manifests/test/job.yaml", job)
		}},
	}
	covered := map[string]bool{}
	for _, c := range cases {
		covered[c.rule] = true
		t.Run(c.rule+"/"+c.name, func(t *testing.T) {
			fsys := exampleFS(t)
			c.change(t, fsys)
			rep := lintFS(t, fsys)
			for _, f := range byRule(rep, c.rule) {
				t.Errorf("%s: %s %s: %s", f.Location(), f.Severity, f.Rule, f.Message)
			}
			if rep.Errors > 0 {
				for _, f := range rep.Findings {
					if f.Severity == SeverityError && !f.Suppressed {
						t.Logf("other error: %s %s: %s", f.Location(), f.Rule, f.Message)
					}
				}
			}
		})
	}
	for _, r := range Rules() {
		if !covered[r.Name] {
			t.Errorf("rule %s has no passing case", r.Name)
		}
	}
}

func indent(s, prefix string) string {
	lines := strings.SplitAfter(s, "\n")
	for i, l := range lines {
		if strings.TrimSpace(l) != "" {
			lines[i] = prefix + l
		}
	}
	return strings.Join(lines, "")
}
