{{/*
Named templates shared by the manifests. Call them with include and pipe
through nindent, e.g. {{ include "bosun.labels" (list "coredns" "platform") | nindent 8 }}.
*/}}

{{/* bosun.labels: L55 ownership labels. Argument: (list application team). */}}
{{- define "bosun.labels" -}}
application: {{ index . 0 }}
team: {{ index . 1 }}
{{- end }}

{{/* bosun.podSecurity: L37 pod-level restricted profile. */}}
{{- define "bosun.podSecurity" -}}
automountServiceAccountToken: false
securityContext:
  runAsNonRoot: true
  runAsUser: 65532
  runAsGroup: 65532
  seccompProfile:
    type: RuntimeDefault
{{- end }}

{{/* bosun.containerSecurity: L37 container-level restricted profile. */}}
{{- define "bosun.containerSecurity" -}}
securityContext:
  allowPrivilegeEscalation: false
  readOnlyRootFilesystem: true
  capabilities:
    drop: [ALL]
{{- end }}

{{/* bosun.dnsConfig: L03 low ndots. Argument: the root context. */}}
{{- define "bosun.dnsConfig" -}}
dnsConfig:
  options:
    - name: ndots
      value: {{ .Config.dns_ndots | quote }}
    - name: single-request-reopen
{{- end }}

{{/*
bosun.systemPlacement: L07/L26 system components run on the system pool.
The selector and tolerations are generated from the cluster's system pool.
Argument: the root context.
*/}}
{{- define "bosun.systemPlacement" -}}
nodeSelector:
  node.bosun.dev/role: system
{{- $taints := list }}
{{- range .NodePools }}{{ if eq .Role "system" }}{{ range .Taints }}{{ $taints = append $taints . }}{{ end }}{{ end }}{{ end }}
{{- with $taints | uniq }}
tolerations:
{{- range . }}
  - key: {{ .Key }}
    operator: Equal
    value: {{ .Value | quote }}
    effect: {{ .Effect }}
{{- end }}{{ end }}
{{- end }}

{{/*
bosun.groupPlacement: place pods on one application group's pools,
tolerating the taints of its dedicated pools. Argument: (list root group).
*/}}
{{- define "bosun.groupPlacement" -}}
{{- $group := index . 1 -}}
nodeSelector:
  node.bosun.dev/application-group: {{ $group }}
{{- $taints := list }}
{{- range (index . 0).NodePools }}{{ if eq .ApplicationGroup $group }}{{ range .Taints }}{{ $taints = append $taints . }}{{ end }}{{ end }}{{ end }}
{{- with $taints | uniq }}
tolerations:
{{- range . }}
  - key: {{ .Key }}
    operator: Equal
    value: {{ .Value | quote }}
    effect: {{ .Effect }}
{{- end }}{{ end }}
{{- end }}
