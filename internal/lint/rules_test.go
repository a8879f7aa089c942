package lint

import (
	"context"
	"io/fs"
	"os"
	"strings"
	"testing"
	"testing/fstest"

	"github.com/bosun-platform/bosun/internal/fleet"
)

const exampleFleet = "../../examples/fleet"

// exampleFS returns the example fleet as an in-memory file system that
// tests can change.
func exampleFS(t *testing.T) fstest.MapFS {
	t.Helper()
	fsys := fstest.MapFS{}
	root := os.DirFS(exampleFleet)
	err := fs.WalkDir(root, ".", func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		data, err := fs.ReadFile(root, p)
		fsys[p] = &fstest.MapFile{Data: data}
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return fsys
}

func lintFS(t *testing.T, fsys fstest.MapFS) *Report {
	t.Helper()
	f, err := fleet.LoadFS(fsys, "test")
	if err != nil {
		t.Fatal(err)
	}
	rep, err := Run(context.Background(), f, Options{})
	if err != nil {
		t.Fatal(err)
	}
	return rep
}

// edit replaces old with new in file, failing when old is absent.
func edit(t *testing.T, fsys fstest.MapFS, file, old, new string) {
	t.Helper()
	f, ok := fsys[file]
	if !ok {
		t.Fatalf("%s: no such file", file)
	}
	s := string(f.Data)
	if !strings.Contains(s, old) {
		t.Fatalf("%s: %q not found", file, old)
	}
	fsys[file] = &fstest.MapFile{Data: []byte(strings.Replace(s, old, new, 1))}
}

func add(fsys fstest.MapFS, file, content string) {
	fsys[file] = &fstest.MapFile{Data: []byte(content)}
}

// byRule returns the unsuppressed findings of rule.
func byRule(rep *Report, rule string) []Finding {
	var out []Finding
	for _, f := range rep.Findings {
		if f.Rule == rule && !f.Suppressed {
			out = append(out, f)
		}
	}
	return out
}

const (
	prod      = "clusters/aws-prod-eu1.yaml"
	agentFile = "manifests/agent/agent.yaml"
	opFile    = "manifests/overprovisioning/overprovisioning.yaml"
)

// withoutOverprovisioner takes the overprovisioner out of the example's
// agent, leaving the downscaler where it runs.
func withoutOverprovisioner(t *testing.T, fsys fstest.MapFS) {
	t.Helper()
	edit(t, fsys, agentFile, `{{- $controllers := list "overprovisioner" }}`, `{{- $controllers := list "janitor" }}`)
}

// staticPause is the example fleet's former headroom: static pause
// Deployments per application group (L12), the form lint still checks.
const staticPause = `{{- $groups := list }}
{{- range .NodePools }}{{ if .ApplicationGroup }}{{ $groups = append $groups .ApplicationGroup }}{{ end }}{{ end }}
{{- range $groups | uniq | sortAlpha }}
---
apiVersion: apps/v1
kind: Deployment
metadata:
  name: overprovisioning-{{ . }}
  namespace: overprovisioning
spec:
  replicas: 2
  selector:
    matchLabels:
      application: overprovisioning-{{ . }}
  template:
    metadata:
      labels:
        {{- include "bosun.labels" (list (printf "overprovisioning-%s" .) $.Vars.team) | nindent 8 }}
        bosun.dev/overprovisioning: "true"
    spec:
      priorityClassName: overprovisioning
      terminationGracePeriodSeconds: 0
      {{- include "bosun.groupPlacement" (list $ .) | nindent 6 }}
      {{- include "bosun.podSecurity" . | nindent 6 }}
      {{- include "bosun.dnsConfig" $ | nindent 6 }}
      containers:
        - name: pause
          image: registry.k8s.io/pause:3.10
          resources:
            requests: {cpu: 1500m, memory: 3Gi}
            limits: {memory: 3Gi}
          {{- include "bosun.containerSecurity" . | nindent 10 }}
{{- end }}
`

// gpuPool is a tainted worker pool: the overprovisioner gives it no target.
const gpuPool = `  - name: gpu
    role: worker
    applicationGroup: gpu
    lifecycle: on-demand
    instanceTypes: [m6i.2xlarge]
    zones: [eu-central-1a, eu-central-1b]
    minSize: 0
    maxSize: 4
    priority: 10
    taints:
      - {key: gpu, value: "true", effect: NoSchedule}
`

// gpuPod runs on gpuPool.
const gpuPod = `apiVersion: v1
kind: Pod
metadata:
  name: good
  namespace: shop
  labels: {application: good, team: t}
spec:
  automountServiceAccountToken: false
  nodeSelector: {node.bosun.dev/application-group: gpu}
  tolerations: [{key: gpu, operator: Exists}]
  securityContext: {runAsNonRoot: true, seccompProfile: {type: RuntimeDefault}}
  containers:
    - name: app
      image: app:1
      resources: {requests: {cpu: 100m, memory: 64Mi}, limits: {memory: 64Mi}}
      readinessProbe: {httpGet: {path: /, port: 80}}
      securityContext: {allowPrivilegeEscalation: false, readOnlyRootFilesystem: true, capabilities: {drop: [ALL]}}
`

func TestExampleFleetPassesLint(t *testing.T) {
	rep := lintFS(t, exampleFS(t))
	for _, f := range rep.Findings {
		if !f.Suppressed {
			t.Errorf("%s: %s %s: %s", f.Location(), f.Severity, f.Rule, f.Message)
		}
	}
}

const badPod = `apiVersion: v1
kind: Pod
metadata:
  name: bad
  namespace: shop
spec:
  containers:
    - name: app
      image: app:1
`

// Each rule has a case that trips it (the change) and passes on the
// unchanged example fleet, which TestExampleFleetPassesLint proves.
func TestRulesFail(t *testing.T) {
	cases := []struct {
		rule    string
		change  func(t *testing.T, fsys fstest.MapFS)
		want    string // part of the message
		file    string // file:line of the first finding, when checked
		warning bool
	}{
		{rule: "L03-dns-ndots", want: "pod sets ndots 5; at most 2", change: func(t *testing.T, fsys fstest.MapFS) {
			edit(t, fsys, "snippets/pod.tpl", "value: {{ .Config.dns_ndots | quote }}", `value: "5"`)
		}, warning: true},
		{rule: "L03-dns-ndots", want: "sets no ndots", change: func(t *testing.T, fsys fstest.MapFS) {
			edit(t, fsys, "defaults.yaml", `dns_ndots: "2"`, `dns_ndots: "5"`)
			add(fsys, "manifests/test/pod.yaml", badPod)
		}, warning: true},
		{rule: "L04-equal-instance-sizes", want: "m6i.xlarge has 4 vCPU, 16 GiB, x86_64 but m6i.2xlarge has 8 vCPU, 32 GiB, x86_64", file: prod + ":16", change: func(t *testing.T, fsys fstest.MapFS) {
			edit(t, fsys, prod, "instanceTypes: [m6i.xlarge]", "instanceTypes: [m6i.xlarge, m6i.2xlarge]")
		}},
		{rule: "L04-single-architecture", want: "mixes architectures: m6i.xlarge is x86_64 but m6g.xlarge is arm64", file: prod + ":16", change: func(t *testing.T, fsys fstest.MapFS) {
			edit(t, fsys, prod, "instanceTypes: [m6i.xlarge]", "instanceTypes: [m6i.xlarge, m6g.xlarge]")
		}},
		{rule: "L04-equal-instance-sizes", want: "instance type m9z.xlarge is not in the catalogue: size not checked; `bosun catalogue` lists what is known", change: func(t *testing.T, fsys fstest.MapFS) {
			edit(t, fsys, prod, "instanceTypes: [m6i.xlarge]", "instanceTypes: [m6i.xlarge, m9z.xlarge]")
		}, warning: true},
		{rule: "L05-max-pools-per-group", want: `application group "default" has 5 pools`, change: func(t *testing.T, fsys fstest.MapFS) {
			edit(t, fsys, prod, "  - name: default-on-demand-xlarge\n", "  - name: default-on-demand-extra\n    role: worker\n    applicationGroup: default\n    lifecycle: on-demand\n    instanceTypes: [m6i.4xlarge]\n    zones: [eu-central-1a, eu-central-1b]\n    minSize: 0\n    maxSize: 3\n    priority: 5\n  - name: default-on-demand-xlarge\n")
		}},
		{rule: "L19-aws-agent", want: "config item aws_agent_role_arn is empty", file: prod + ":1", change: func(t *testing.T, fsys fstest.MapFS) {
			edit(t, fsys, prod, "  aws_agent_role_arn: arn:aws:iam::111111111111:role/bosun-agent-aws-prod-eu1", "")
		}},
		{rule: "L19-aws-agent", want: "provisioner, scale-down, reaper scale the Auto Scaling groups, and so does cluster-autoscaler (Deployment/kube-system/cluster-autoscaler): the two would fight over them", change: func(t *testing.T, fsys fstest.MapFS) {
			edit(t, fsys, "manifests/cluster-autoscaler/cluster-autoscaler.yaml", `(ne (index .Config "aws_capacity") "bosun")`, "true")
		}},
		{rule: "L19-aws-agent", want: "--region=eu-west-1; expected eu-central-1", change: func(t *testing.T, fsys fstest.MapFS) {
			edit(t, fsys, agentFile, "--region={{ .Cluster.Region }}", "--region=eu-west-1")
		}},
		{rule: "L19-aws-agent", want: "--provider is missing; expected aws", change: func(t *testing.T, fsys fstest.MapFS) {
			edit(t, fsys, agentFile, "- --provider=aws\n", "")
		}},
		{rule: "L19-aws-agent", want: "--aws-queue-url is missing", change: func(t *testing.T, fsys fstest.MapFS) {
			edit(t, fsys, agentFile, "- --aws-queue-url=", "- --other=")
		}},
		{rule: "L19-aws-agent", want: "service account kube-system/bosun-agent has eks.amazonaws.com/role-arn=\"\"; expected annotation eks.amazonaws.com/role-arn: arn:aws:iam::111111111111:role/bosun-agent-aws-prod-eu1", change: func(t *testing.T, fsys fstest.MapFS) {
			edit(t, fsys, agentFile, "eks.amazonaws.com/role-arn: {{ $role }}", "example.com/other: {{ $role }}")
		}},
		{rule: "L19-aws-agent", want: `config item aws_agent_identity is "kiam"; expected irsa or pod-identity`, change: func(t *testing.T, fsys fstest.MapFS) {
			edit(t, fsys, prod, "configItems:\n", "configItems:\n  aws_agent_identity: kiam\n")
		}},
		{rule: "L06-dedicated-pool", want: "without a NoSchedule or NoExecute taint", change: func(t *testing.T, fsys fstest.MapFS) {
			edit(t, fsys, prod, "      - {key: node.bosun.dev/dedicated, value: checkout-api, effect: NoSchedule}", "      - {key: node.bosun.dev/dedicated, value: checkout-api, effect: PreferNoSchedule}")
		}},
		{rule: "L06-dedicated-pool", want: "without its own overprovisioning", change: func(t *testing.T, fsys fstest.MapFS) {
			withoutOverprovisioner(t, fsys)
		}},
		{rule: "L06-dedicated-pool", want: "without its own overprovisioning", change: func(t *testing.T, fsys fstest.MapFS) {
			withoutOverprovisioner(t, fsys)
			add(fsys, "manifests/test/pause.yaml", strings.Replace(staticPause, "{{ if .ApplicationGroup }}", `{{ if eq .ApplicationGroup "default" }}`, 1))
		}},
		{rule: "L07-system-pool", want: "system pool is spot", change: func(t *testing.T, fsys fstest.MapFS) {
			edit(t, fsys, prod, "    role: system\n    lifecycle: on-demand", "    role: system\n    lifecycle: spot")
		}},
		{rule: "L07-system-pool", want: "has no node pool with role system", change: func(t *testing.T, fsys fstest.MapFS) {
			edit(t, fsys, prod, "    role: system\n", "    role: worker\n    applicationGroup: sys\n")
		}},
		{rule: "L08-daemonset-guaranteed", want: "container node-cache: cpu request 50m and limit (unset) must be set and equal", change: func(t *testing.T, fsys fstest.MapFS) {
			edit(t, fsys, "manifests/node-local-dns/daemonset.yaml", "limits: {cpu: 50m, memory: 64Mi}", "limits: {memory: 64Mi}")
		}},
		{rule: "L11-fast-fallback", want: "--max-node-provision-time 15m0s delays fallback; at most 5m0s", change: func(t *testing.T, fsys fstest.MapFS) {
			edit(t, fsys, "manifests/cluster-autoscaler/cluster-autoscaler.yaml", "--max-node-provision-time=5m", "--max-node-provision-time=15m")
		}},
		{rule: "L11-fast-fallback", want: "without --max-node-provision-time waits the default 15m", change: func(t *testing.T, fsys fstest.MapFS) {
			edit(t, fsys, "manifests/cluster-autoscaler/cluster-autoscaler.yaml", "- --max-node-provision-time=5m", "- --v=2")
		}},
		// L12, static pause Deployments.
		{rule: "L12-overprovisioning", want: "expected a class of value -10", change: func(t *testing.T, fsys fstest.MapFS) {
			withoutOverprovisioner(t, fsys)
			add(fsys, "manifests/test/pause.yaml", strings.Replace(staticPause, "priorityClassName: overprovisioning", "priorityClassName: low", 1))
		}},
		{rule: "L12-overprovisioning", want: "not more than Deployment/shop/shop-web", change: func(t *testing.T, fsys fstest.MapFS) {
			withoutOverprovisioner(t, fsys)
			add(fsys, "manifests/test/pause.yaml", strings.Replace(staticPause, "requests: {cpu: 1500m, memory: 3Gi}", "requests: {cpu: 250m, memory: 3Gi}", 1))
		}},
		{rule: "L12-overprovisioning", want: "static overprovisioning pods next to the overprovisioner (run by Deployment/kube-system/bosun-agent, container agent): both reserve headroom", warning: true, change: func(t *testing.T, fsys fstest.MapFS) {
			add(fsys, "manifests/test/pause.yaml", staticPause)
		}},
		// L12, the overprovisioner and its ConfigMap.
		{rule: "L12-overprovisioning", want: "reads its rules from ConfigMap overprovisioning/headroom (--overprovisioner-configmap), but no such ConfigMap is rendered", change: func(t *testing.T, fsys fstest.MapFS) {
			edit(t, fsys, agentFile, "--overprovisioner-configmap=overprovisioning/overprovisioning", "--overprovisioner-configmap=overprovisioning/headroom")
		}},
		{rule: "L12-overprovisioning", want: "reads its rules from ConfigMap kube-system/overprovisioning (the default of --overprovisioner-configmap", change: func(t *testing.T, fsys fstest.MapFS) {
			edit(t, fsys, agentFile, "            - --overprovisioner-configmap=overprovisioning/overprovisioning\n", "")
		}},
		{rule: "L12-overprovisioning", want: `--overprovisioner-configmap "overprovisioning": expected namespace/name`, change: func(t *testing.T, fsys fstest.MapFS) {
			edit(t, fsys, agentFile, "--overprovisioner-configmap=overprovisioning/overprovisioning", "--overprovisioner-configmap=overprovisioning")
		}},
		{rule: "L12-overprovisioning", want: `the overprovisioner's rules (read by Deployment/kube-system/bosun-agent, container agent) do not parse: data: linear: invalid JSON: json: unknown field "cores"`,
			file: opFile + ":9 (rendered)", change: func(t *testing.T, fsys fstest.MapFS) {
				edit(t, fsys, opFile, `"coresPerReplica": 32,`, `"cores": 32,`)
			}},
		{rule: "L12-overprovisioning", want: "data: expected exactly one of the keys linear and ladder", change: func(t *testing.T, fsys fstest.MapFS) {
			edit(t, fsys, opFile, "  linear: '", "  linar: '")
		}},
		{rule: "L12-overprovisioning", want: "data.linear: expected a string holding a JSON document (quote it: linear: '{...}'), got a map", change: func(t *testing.T, fsys fstest.MapFS) {
			edit(t, fsys, opFile, "  linear: '{", "  linear: {")
			edit(t, fsys, opFile, "}}'", "}}")
		}},
		{rule: "L12-overprovisioning", want: "data: linear: min 2 / max 1: expected 0 <= min <= max", change: func(t *testing.T, fsys fstest.MapFS) {
			edit(t, fsys, "defaults.yaml", `overprovisioning_max_replicas: "20"`, `overprovisioning_max_replicas: "1"`)
		}},
		{rule: "L12-overprovisioning", want: "value -9: the overprovisioner's pause pods use this class (it creates it only when missing); expected -10", change: func(t *testing.T, fsys fstest.MapFS) {
			edit(t, fsys, "manifests/priority-classes/priority-classes.yaml", `"overprovisioning" -10`, `"overprovisioning" -9`)
		}},
		{rule: "L12-overprovisioning", want: `node pool "gpu": tainted gpu=true:NoSchedule, so the overprovisioner (Deployment/kube-system/bosun-agent, container agent) gives it no headroom, yet Pod/shop/good run(s) on it; expected role: dedicated`,
			change: func(t *testing.T, fsys fstest.MapFS) {
				edit(t, fsys, prod, "nodePools:\n", "nodePools:\n"+gpuPool)
				add(fsys, "manifests/test/pod.yaml", gpuPod)
			}},
		{rule: "L12-overprovisioning", want: `runs the downscaler over namespace overprovisioning, where the overprovisioner (Deployment/kube-system/bosun-agent, container agent) keeps its pause Deployments`,
			change: func(t *testing.T, fsys fstest.MapFS) {
				edit(t, fsys, "manifests/namespaces/namespaces.yaml", `downscaler/exclude: "true"`, `downscaler/exclude: "false"`)
			}},
		{rule: "L13-priority-classes", want: "no PriorityClass rendered for low (-5)", change: func(t *testing.T, fsys fstest.MapFS) {
			edit(t, fsys, "manifests/priority-classes/priority-classes.yaml", `"low" -5`, `"low" -4`)
		}},
		{rule: "L13-priority-classes", want: `priority class "urgent" is not rendered`, change: func(t *testing.T, fsys fstest.MapFS) {
			edit(t, fsys, "manifests/shop/apps.yaml", `"checkout-api" "high"`, `"checkout-api" "urgent"`)
		}},
		{rule: "L14-hpa-cpu-target", want: "CPU target is 90%; expected 60-80%", change: func(t *testing.T, fsys fstest.MapFS) {
			edit(t, fsys, "manifests/shop/apps.yaml", "averageUtilization: 70", "averageUtilization: 90")
		}},
		{rule: "L14-hpa-cpu-target", want: "CPU target is 59%", change: func(t *testing.T, fsys fstest.MapFS) {
			edit(t, fsys, "manifests/shop/apps.yaml", "averageUtilization: 70", "averageUtilization: 59")
		}},
		{rule: "L15-hpa-scale-down", want: "scale-down stabilization is 300s; at least 600s", change: func(t *testing.T, fsys fstest.MapFS) {
			edit(t, fsys, "defaults.yaml", `hpa_scale_down_stabilization_seconds: "1800"`, `hpa_scale_down_stabilization_seconds: "300"`)
		}},
		{rule: "L15-hpa-scale-down", want: "scale-down stabilization is 900s; 1800s is expected", warning: true, change: func(t *testing.T, fsys fstest.MapFS) {
			edit(t, fsys, "defaults.yaml", `hpa_scale_down_stabilization_seconds: "1800"`, `hpa_scale_down_stabilization_seconds: "900"`)
		}},
		{rule: "L21-spot-fallback", want: `spot pool (priority 40) has no on-demand pool of lower priority`, change: func(t *testing.T, fsys fstest.MapFS) {
			edit(t, fsys, prod, "    priority: 20\n", "    priority: 45\n")
			edit(t, fsys, prod, "    priority: 10\n", "    priority: 44\n")
		}},
		{rule: "L23-spot-diversity", want: `span 9 instance types; at least 10`, change: func(t *testing.T, fsys fstest.MapFS) {
			edit(t, fsys, prod, "[m5.2xlarge, m5a.2xlarge, m5n.2xlarge, m6i.2xlarge, m6a.2xlarge, m6in.2xlarge, m7i.2xlarge, m7a.2xlarge]", "[m5.2xlarge]")
		}},
		{rule: "L23-spot-diversity", want: "spot pool spans 1 zone(s); at least 2", change: func(t *testing.T, fsys fstest.MapFS) {
			edit(t, fsys, prod, "    zones: [eu-central-1a, eu-central-1b, eu-central-1c]\n    minSize: 0\n    maxSize: 100\n    priority: 40", "    zones: [eu-central-1a]\n    minSize: 0\n    maxSize: 100\n    priority: 40")
		}},
		{rule: "L26-system-placement", want: "system component also fits non-system pools", change: func(t *testing.T, fsys fstest.MapFS) {
			edit(t, fsys, "snippets/pod.tpl", "  node.bosun.dev/role: system\n", "  {}\n")
			edit(t, fsys, "snippets/pod.tpl", "nodeSelector:\n  {}", "nodeSelector: {}")
		}},
		{rule: "L26-system-placement", want: "pod outside kube-system fits system pools system", change: func(t *testing.T, fsys fstest.MapFS) {
			edit(t, fsys, prod, "    taints:\n      - {key: node.bosun.dev/role, value: system, effect: NoSchedule}\n", "")
			add(fsys, "manifests/test/pod.yaml", badPod)
		}},
		{rule: "L30-deprecated-api", want: "policy/v1beta1 PodDisruptionBudget was removed in Kubernetes 1.25", change: func(t *testing.T, fsys fstest.MapFS) {
			edit(t, fsys, "manifests/coredns/coredns.yaml", "apiVersion: policy/v1\n", "apiVersion: policy/v1beta1\n")
		}},
		{rule: "L30-deprecated-api", want: "removed in Kubernetes 1.32, the next minor", warning: true, change: func(t *testing.T, fsys fstest.MapFS) {
			edit(t, fsys, prod, `kubernetesVersion: "1.33"`, `kubernetesVersion: "1.31"`)
			add(fsys, "manifests/test/fs.yaml", "apiVersion: flowcontrol.apiserver.k8s.io/v1beta3\nkind: FlowSchema\nmetadata:\n  name: x\n")
		}},
		{rule: "L35-node-overhead", want: "of a m6i.xlarge; keep it under 30%", warning: true, change: func(t *testing.T, fsys fstest.MapFS) {
			edit(t, fsys, "manifests/node-local-dns/daemonset.yaml", "{cpu: 50m, memory: 64Mi}\n          readiness", "{cpu: 1500m, memory: 64Mi}\n          readiness")
			edit(t, fsys, "manifests/node-local-dns/daemonset.yaml", "{cpu: 50m, memory: 64Mi}", "{cpu: 1500m, memory: 64Mi}")
		}},
		{rule: "L37-pod-security", want: "container app: allowPrivilegeEscalation is not false, does not drop ALL capabilities, root file system is writable", change: func(t *testing.T, fsys fstest.MapFS) {
			edit(t, fsys, "snippets/pod.tpl", "  allowPrivilegeEscalation: false\n  readOnlyRootFilesystem: true\n  capabilities:\n    drop: [ALL]", "  privileged: false")
		}},
		{rule: "L37-pod-security", want: "mounts the default service account's token (set automountServiceAccountToken: false); container app: runAsNonRoot is not true", change: func(t *testing.T, fsys fstest.MapFS) {
			add(fsys, "manifests/test/pod.yaml", badPod)
		}},
		{rule: "L46-test-twin", want: "production cluster has no non-production twin", change: func(t *testing.T, fsys fstest.MapFS) {
			edit(t, fsys, prod, "testTwin: aws-staging-eu1\n", "")
			edit(t, fsys, "clusters/aws-staging-eu1.yaml", "region: eu-central-1", "region: eu-west-1")
		}},
		{rule: "L46-test-twin", want: "is in the same account 111111111111", change: func(t *testing.T, fsys fstest.MapFS) {
			edit(t, fsys, "clusters/aws-staging-eu1.yaml", `account: "222222222222"`, `account: "111111111111"`)
		}},
		{rule: "L49-environment-drift", want: `config item coredns_replicas is "5" here but "3" on aws-prod-eu1`, file: "clusters/local-prod.yaml:11", change: func(t *testing.T, fsys fstest.MapFS) {
			edit(t, fsys, "clusters/local-prod.yaml", "configItems:\n", "configItems:\n  coredns_replicas: \"5\"\n")
		}},
		{rule: "L54-memory-limit", want: "container app: memory request 1Gi and limit 2Gi must be set and equal in production", change: func(t *testing.T, fsys fstest.MapFS) {
			edit(t, fsys, "manifests/shop/apps.yaml", "limits: {memory: 1Gi}", "limits: {memory: 2Gi}")
		}},
		{rule: "L55-ownership-labels", want: "pod template lacks label(s) team", change: func(t *testing.T, fsys fstest.MapFS) {
			edit(t, fsys, "snippets/pod.tpl", "team: {{ index . 1 }}", "")
		}},
		{rule: "L16-redundant-scrapers", want: "metrics scraper with 1 replica(s); production runs at least 2", change: func(t *testing.T, fsys fstest.MapFS) {
			edit(t, fsys, promFile, "{{ $replicas = 2 }}", "{{ $replicas = 1 }}")
		}},
		{rule: "L16-redundant-scrapers", want: "metrics scraper without required pod anti-affinity against its own pods", change: func(t *testing.T, fsys fstest.MapFS) {
			// A required term that selects other pods keeps nothing apart.
			edit(t, fsys, promFile, "                matchLabels:\n                  application: prometheus\n      containers:", "                matchLabels:\n                  application: grafana\n      containers:")
		}},
		{rule: "L16-redundant-scrapers", want: "Prometheus with 1 replica(s)", change: func(t *testing.T, fsys fstest.MapFS) {
			add(fsys, "manifests/test/prometheus.yaml", strings.Replace(promCR, "replicas: 2", "replicas: 1", 1))
		}},
		{rule: "L16-redundant-scrapers", want: "metrics scraper with 1 replica(s)", change: func(t *testing.T, fsys fstest.MapFS) {
			edit(t, fsys, promFile, "image: quay.io/prometheus/prometheus:v3.5.0", "image: victoriametrics/vmagent:v1.110.0")
			edit(t, fsys, promFile, "{{ $replicas = 2 }}", "{{ $replicas = 1 }}")
		}},
		{rule: "L50-platform-right-sized", want: "platform container prometheus has no cpu or memory request and no VerticalPodAutoscaler", change: func(t *testing.T, fsys fstest.MapFS) {
			edit(t, fsys, promFile, "            requests: {cpu: 250m, memory: 1Gi}\n", "")
		}},
		{rule: "L50-platform-right-sized", want: "platform container prometheus has no cpu or memory request", change: func(t *testing.T, fsys fstest.MapFS) {
			edit(t, fsys, promFile, "            requests: {cpu: 250m, memory: 1Gi}\n", "")
			add(fsys, "manifests/test/vpa.yaml", strings.Replace(promVPA, "Auto", "Off", 1))
		}},
		{rule: "L50-platform-right-sized", want: "targets StatefulSet monitoring/prometheus-0, which is not rendered for this cluster: it sizes nothing", change: func(t *testing.T, fsys fstest.MapFS) {
			add(fsys, "manifests/test/vpa.yaml", strings.Replace(promVPA, "name: prometheus}", "name: prometheus-0}", 1))
		}},
		{rule: "L58-requests-and-probes", want: "container app has no cpu request, memory request, readinessProbe", change: func(t *testing.T, fsys fstest.MapFS) {
			add(fsys, "manifests/test/pod.yaml", badPod)
		}},
		{rule: "suppression-needs-reason", want: "suppresses L37-pod-security without a reason", change: func(t *testing.T, fsys fstest.MapFS) {
			edit(t, fsys, "manifests/node-local-dns/daemonset.yaml", "lint.bosun.dev/L37-pod-security: >-", "lint.bosun.dev/L37-pod-security: \"\"\n    x: >-")
		}},
	}
	for _, c := range cases {
		t.Run(c.rule+"/"+c.want, func(t *testing.T) {
			fsys := exampleFS(t)
			c.change(t, fsys)
			rep := lintFS(t, fsys)
			got := byRule(rep, c.rule)
			var match *Finding
			for i := range got {
				if strings.Contains(got[i].Message, c.want) {
					match = &got[i]
					break
				}
			}
			if match == nil {
				t.Fatalf("no %s finding containing %q; got %+v", c.rule, c.want, got)
			}
			wantSev := SeverityError
			if c.warning {
				wantSev = SeverityWarning
			}
			if match.Severity != wantSev {
				t.Errorf("severity %s, want %s", match.Severity, wantSev)
			}
			if c.file != "" && match.Location() != c.file {
				t.Errorf("location %s, want %s", match.Location(), c.file)
			}
			if match.Hint == "" || match.File == "" {
				t.Errorf("finding without hint or file: %+v", match)
			}
		})
	}
}
