{{/*
bosun.alertRuleGroups: the fleet's alert rules (L09, L16, L18, L27, L50), the
one source of both the plain rules file (ConfigMap bosun-alert-rules) and
the PrometheusRule (manifests/monitoring/alert-rules.yaml), so the two never
disagree. Argument: the root context. Every rule is proven by promtool in
internal/observability/testdata/rules/*.test.yaml: one case where it fires,
one where it stays silent. Metric names are Bosun's (docs/metrics.md) or
kube-state-metrics', cAdvisor's and Prometheus' own (docs/observability.md).

Labels: every rule carries severity and team. Rules about a workload take
team from the pod's team label (kube_pod_labels' label_team), falling back
to the cluster's platform team (.Vars.team); the rest belong to the platform
team. Rules whose metric names a cluster itself (the console's, the
certificates') keep that cluster label; the others get the rendering
cluster's ID.
*/}}
{{- define "bosun.alertRuleGroups" -}}
{{- $root := . -}}
{{- $cluster := .Cluster.ID -}}
{{- $platform := .Vars.team -}}
{{- /* L18: the workload's team, or the platform team. */ -}}
{{- $team := printf "{{ with $labels.team }}{{ . }}{{ else }}%s{{ end }}" $platform -}}
{{- /* Application groups with a spot pool, and their on-demand pools: the fallback pools (L21). */ -}}
{{- $spotGroups := list -}}
{{- range .NodePools }}{{ if and .ApplicationGroup (eq .Lifecycle "spot") }}{{ $spotGroups = append $spotGroups .ApplicationGroup }}{{ end }}{{ end -}}
{{- $spotGroups = $spotGroups | uniq | sortAlpha -}}
{{- $fallbackPools := list -}}
{{- range .NodePools }}{{ if and (has .ApplicationGroup $spotGroups) (eq .Lifecycle "on-demand") }}{{ $fallbackPools = append $fallbackPools .Name }}{{ end }}{{ end -}}
groups:
  - name: bosun-workloads
    rules:
      # L09: a container near its CPU limit is throttled next.
      - alert: ContainerCPUNearLimit
        expr: |
          max without (label_team) (label_replace(
            (
              sum by (namespace, pod, container) (rate(container_cpu_usage_seconds_total{container!="", container!="POD"}[5m]))
                / sum by (namespace, pod, container) (kube_pod_container_resource_limits{resource="cpu"})
              > 0.9
            )
            * on (namespace, pod) group_left (label_team) max by (namespace, pod, label_team) (kube_pod_labels),
            "team", "$1", "label_team", "(.+)"))
        for: 15m
        labels:
          severity: warning
          team: {{ $team | quote }}
          cluster: {{ $cluster }}
        annotations:
          summary: {{ `"{{ $labels.namespace }}/{{ $labels.pod }} container {{ $labels.container }} uses {{ $value | humanizePercentage }} of its CPU limit"` }}
      # L09: throttled periods show a limit that is too low even when the
      # average use looks fine.
      - alert: ContainerCPUThrottled
        expr: |
          max without (label_team) (label_replace(
            (
              sum by (namespace, pod, container) (rate(container_cpu_cfs_throttled_periods_total{container!="", container!="POD"}[5m]))
                / sum by (namespace, pod, container) (rate(container_cpu_cfs_periods_total{container!="", container!="POD"}[5m]))
              > 0.25
            )
            * on (namespace, pod) group_left (label_team) max by (namespace, pod, label_team) (kube_pod_labels),
            "team", "$1", "label_team", "(.+)"))
        for: 15m
        labels:
          severity: warning
          team: {{ $team | quote }}
          cluster: {{ $cluster }}
        annotations:
          summary: {{ `"{{ $labels.namespace }}/{{ $labels.pod }} container {{ $labels.container }} is throttled in {{ $value | humanizePercentage }} of its CPU periods"` }}
      - alert: PodPendingTooLong
        expr: |
          max without (label_team) (label_replace(
            (max by (namespace, pod) (kube_pod_status_phase{phase="Pending"}) > 0)
            * on (namespace, pod) group_left (label_team) max by (namespace, pod, label_team) (kube_pod_labels),
            "team", "$1", "label_team", "(.+)"))
        for: 5m
        labels:
          severity: warning
          team: {{ $team | quote }}
          cluster: {{ $cluster }}
        annotations:
          summary: {{ `"{{ $labels.namespace }}/{{ $labels.pod }} has been Pending for more than 5 minutes"` }}
  - name: bosun-nodes
    rules:
      - alert: NodeNotReady
        expr: kube_node_status_condition{condition="Ready", status="true"} == 0
        for: 5m
        labels:
          severity: warning
          team: {{ $platform }}
          cluster: {{ $cluster }}
        annotations:
          summary: {{ `"node {{ $labels.node }} has not been Ready for 5 minutes"` }}
  - name: bosun-capacity
    rules:
{{- if $fallbackPools }}
      # L21, L22: on-demand fallback nodes run in a group that has spot
      # pools; the reaper should move them back once spot returns.
      - alert: OnDemandFallbackActive
        expr: |
          count by (label_node_bosun_dev_application_group) (
            kube_node_labels{label_node_bosun_dev_pool=~"{{ join "|" $fallbackPools }}"}
          ) > 0
        for: 30m
        labels:
          severity: info
          team: {{ $platform }}
          cluster: {{ $cluster }}
        annotations:
          summary: {{ `"{{ $value }} on-demand fallback node(s) in application group {{ $labels.label_node_bosun_dev_application_group }} for 30 minutes"` }}
      - alert: OnDemandShareHigh
        expr: |
          count by (label_node_bosun_dev_application_group) (
            kube_node_labels{label_node_bosun_dev_pool=~"{{ join "|" $fallbackPools }}"}
          )
          / count by (label_node_bosun_dev_application_group) (
            kube_node_labels{label_node_bosun_dev_application_group=~"{{ join "|" $spotGroups }}"}
          )
          > {{ .Config.alert_on_demand_share_max }}
        for: 1h
        labels:
          severity: warning
          team: {{ $platform }}
          cluster: {{ $cluster }}
        annotations:
          summary: {{ `"{{ $value | humanizePercentage }} of application group {{ $labels.label_node_bosun_dev_application_group }}'s nodes are on-demand fallback (over ` }}{{ .Config.alert_on_demand_share_max }}{{ ` for an hour)"` }}
{{- end }}
      # L11: capacity errors per node group; each one sent pods to the next
      # option.
      - alert: CapacityErrors
        expr: sum by (group, reason) (increase(bosun_provisioner_fallbacks_total[15m])) > 0
        labels:
          severity: info
          team: {{ $platform }}
          cluster: {{ $cluster }}
        annotations:
          summary: {{ `"capacity errors ({{ $labels.reason }}) in node group {{ $labels.group }} in the last 15 minutes"` }}
      - alert: ProvisionerDecisionSlow
        expr: |
          histogram_quantile(0.99, sum by (le) (rate(bosun_provisioner_pending_to_requested_seconds_bucket[10m]))) > 5
        for: 10m
        labels:
          severity: warning
          team: {{ $platform }}
          cluster: {{ $cluster }}
        annotations:
          summary: {{ `"the provisioner's p99 from pending pod to decision is {{ $value | humanizeDuration }} (over 5s)"` }}
      - alert: DrainFailures
        expr: sum by (controller) (increase(bosun_provisioner_drain_failures_total[30m])) > 0
        labels:
          severity: info
          team: {{ $platform }}
          cluster: {{ $cluster }}
        annotations:
          summary: {{ `"{{ $labels.controller }}: drain(s) failed in the last 30 minutes (PodDisruptionBudgets or API errors)"` }}
  - name: bosun-agent
    rules:
      - alert: BosunAgentDown
        expr: absent(up{job="bosun-agent"} == 1)
        for: 5m
        labels:
          severity: critical
          team: {{ $platform }}
          cluster: {{ $cluster }}
        annotations:
          summary: no bosun agent has been scraped successfully for 5 minutes
      - alert: BosunAgentNotReconciling
        expr: time() - max by (controller) (bosun_agent_last_success_timestamp_seconds) > 900
        for: 5m
        labels:
          severity: critical
          team: {{ $platform }}
          cluster: {{ $cluster }}
        annotations:
          summary: {{ `"agent controller {{ $labels.controller }} has not completed a pass for {{ $value | humanizeDuration }}"` }}
      - alert: BosunAgentReconcileFailures
        expr: sum by (controller) (increase(bosun_agent_pass_failures_total{controller!~"downscaler|janitor"}[15m])) > 0
        for: 15m
        labels:
          severity: warning
          team: {{ $platform }}
          cluster: {{ $cluster }}
        annotations:
          summary: {{ `"agent controller {{ $labels.controller }} keeps failing passes"` }}
      # L24: a failing downscaler may leave workloads down in the morning.
      - alert: DownscalerFailing
        expr: increase(bosun_agent_pass_failures_total{controller="downscaler"}[10m]) > 0
        for: 10m
        labels:
          severity: warning
          team: {{ $platform }}
          cluster: {{ $cluster }}
        annotations:
          summary: the downscaler's passes keep failing; workloads may stay scaled down
      - alert: DownscalerInvalidAnnotations
        expr: sum by (kind) (increase(bosun_downscaler_invalid_objects_total[30m])) > 0
        labels:
          severity: info
          team: {{ $platform }}
          cluster: {{ $cluster }}
        annotations:
          summary: {{ `"the downscaler leaves {{ $labels.kind }} objects alone: an annotation does not parse (see their Events)"` }}
      # L52: a failing janitor leaves temporary resources running.
      - alert: JanitorFailing
        expr: increase(bosun_agent_pass_failures_total{controller="janitor"}[10m]) > 0
        for: 10m
        labels:
          severity: warning
          team: {{ $platform }}
          cluster: {{ $cluster }}
        annotations:
          summary: the janitor's passes keep failing; expired resources are not deleted
      - alert: JanitorInvalidObjects
        expr: increase(bosun_janitor_invalid_objects_total[30m]) > 0
        labels:
          severity: info
          team: {{ $platform }}
          cluster: {{ $cluster }}
        annotations:
          summary: the janitor leaves objects alone whose TTL or expiry does not parse (see their Events)
  - name: bosun-console-and-controller
    rules:
      - alert: BosunConsoleDown
        expr: up{job="bosun-console"} == 0
        for: 5m
        labels:
          severity: warning
          team: {{ $platform }}
          cluster: {{ $cluster }}
        annotations:
          summary: {{ `"the bosun console at {{ $labels.instance }} cannot be scraped"` }}
      # The console's own cluster label names the cluster it cannot reach.
      - alert: BosunConsoleClusterUnreachable
        expr: bosun_console_cluster_up == 0
        for: 10m
        labels:
          severity: warning
          team: {{ $platform }}
        annotations:
          summary: {{ `"the console cannot reach cluster {{ $labels.cluster }}'s API server"` }}
      - alert: BosunControllerDown
        expr: up{job="bosun-controller"} == 0
        for: 5m
        labels:
          severity: critical
          team: {{ $platform }}
          cluster: {{ $cluster }}
        annotations:
          summary: {{ `"the bosun controller at {{ $labels.instance }} cannot be scraped"` }}
  # L27: certificate expiry, watched well ahead. The certificate's own
  # cluster label is kept.
  - name: bosun-certificates
    rules:
      - alert: CertificateExpiresIn14Days
        expr: bosun_certificate_expiry_seconds < 14 * 86400
        for: 1h
        labels:
          severity: warning
          team: {{ $platform }}
        annotations:
          summary: {{ `"certificate {{ $labels.namespace }}/{{ $labels.name }} ({{ $labels.source }}) of cluster {{ $labels.cluster }} expires in {{ $value | humanizeDuration }}"` }}
      - alert: CertificateExpiresIn3Days
        expr: bosun_certificate_expiry_seconds < 3 * 86400
        for: 10m
        labels:
          severity: critical
          team: {{ $platform }}
        annotations:
          summary: {{ `"certificate {{ $labels.namespace }}/{{ $labels.name }} ({{ $labels.source }}) of cluster {{ $labels.cluster }} expires in {{ $value | humanizeDuration }}"` }}
{{- end }}
