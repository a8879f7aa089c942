{{- /*
Hand-written helpers of the bosun-agent chart. The other templates are
generated from deploy/agent by `make chart`.
*/}}

{{- /* bosun-agent.controllers: the enabled controllers, comma-separated, in
the agent's names (deploy.ChartControllers). */}}
{{- define "bosun-agent.controllers" -}}
{{- $c := .Values.controllers -}}
{{- $names := list -}}
{{- if $c.downscaler.enabled }}{{ $names = append $names "downscaler" }}{{ end -}}
{{- if $c.janitor.enabled }}{{ $names = append $names "janitor" }}{{ end -}}
{{- if $c.overprovisioner.enabled }}{{ $names = append $names "overprovisioner" }}{{ end -}}
{{- if $c.provisioner.enabled }}{{ $names = append $names "provisioner" }}{{ end -}}
{{- if $c.interruption.enabled }}{{ $names = append $names "interruption" }}{{ end -}}
{{- if $c.scaleDown.enabled }}{{ $names = append $names "scale-down" }}{{ end -}}
{{- if $c.reaper.enabled }}{{ $names = append $names "reaper" }}{{ end -}}
{{- if $c.certwatch.enabled }}{{ $names = append $names "certwatch" }}{{ end -}}
{{- if $c.access.enabled }}{{ $names = append $names "access" }}{{ end -}}
{{- if $c.backupschedule.enabled }}{{ $names = append $names "backupschedule" }}{{ end -}}
{{- join "," $names -}}
{{- end -}}

{{- /* bosun-agent.args: the agent container's arguments. */}}
{{- define "bosun-agent.args" -}}
{{- $controllers := include "bosun-agent.controllers" . -}}
{{- if not $controllers -}}
{{- fail "bosun-agent: values controllers: no controller enabled; expected at least one of controllers.NAME.enabled: true (downscaler, janitor, overprovisioner, provisioner, interruption, scaleDown, reaper, certwatch, access, backupschedule)" -}}
{{- end -}}
{{- $c := .Values.controllers -}}
{{- $p := .Values.provider -}}
{{- $capacity := or $c.provisioner.enabled $c.interruption.enabled $c.scaleDown.enabled $c.reaper.enabled -}}
{{- if and $capacity (ne $p.name "aws") -}}
{{- if eq $p.name "local" -}}
{{- fail "bosun-agent: values provider.name: \"local\" cannot run in a pod (the local cloud of bosun up is reached on the machine that runs it: run the capacity controllers there with bosun agent --provider local); expected \"aws\"" -}}
{{- end -}}
{{- fail (printf "bosun-agent: values provider.name: %q; the capacity controllers (provisioner, interruption, scaleDown, reaper) need \"aws\"" $p.name) -}}
{{- end -}}
{{- if and (not $capacity) $p.name -}}
{{- fail (printf "bosun-agent: values provider.name: %q set, but no capacity controller (provisioner, interruption, scaleDown, reaper) is enabled; expected \"\" or one of them enabled" $p.name) -}}
{{- end -}}
- agent
- --controllers={{ $controllers }}
{{- if $capacity }}
- --provider=aws
- {{ printf "--cluster=%s" (required "bosun-agent: values provider.cluster: empty; expected the fleet's cluster ID for the capacity controllers" $p.cluster) | quote }}
- {{ printf "--region=%s" (required "bosun-agent: values provider.region: empty; expected the cluster's AWS region for the capacity controllers" $p.region) | quote }}
{{- if $c.interruption.enabled }}
- {{ printf "--aws-queue-url=%s" (required "bosun-agent: values provider.awsQueueURL: empty; expected the SQS queue URL of the cluster's interruption events (bosun apply --infra creates it) for the interruption controller" $p.awsQueueURL) | quote }}
{{- end }}
{{- end }}
- {{ printf "--default-uptime=%s" (required "bosun-agent: values schedules.defaultUptime: empty; expected a schedule such as \"always\" or \"Mon-Fri 07:30-20:30 Europe/Berlin\"" .Values.schedules.defaultUptime) | quote }}
{{- with .Values.schedules.defaultDowntime }}
- {{ printf "--default-downtime=%s" . | quote }}
{{- end }}
{{- with .Values.schedules.upscalePeriod }}
- {{ printf "--upscale-period=%s" . | quote }}
{{- end }}
{{- with .Values.schedules.downscalePeriod }}
- {{ printf "--downscale-period=%s" . | quote }}
{{- end }}
{{- with $c.backupschedule }}{{ if .enabled }}
{{- if not $capacity }}
- {{ printf "--cluster=%s" (required "bosun-agent: values provider.cluster: empty; expected the fleet's cluster ID for controllers.backupschedule (its backups' folder)" $p.cluster) | quote }}
{{- end }}
- {{ printf "--backup-every=%s" .every | quote }}
- {{ printf "--backup-to=%s" (required "bosun-agent: values controllers.backupschedule.to: empty; expected a directory or s3://bucket/prefix" .to) | quote }}
{{- if not .recipients }}
{{- fail "bosun-agent: values controllers.backupschedule.recipients: empty; expected the fleet's backup.recipients (age public keys, age1...)" }}
{{- end }}
- {{ printf "--backup-recipients=%s" (join "," .recipients) | quote }}
- {{ printf "--backup-keep=%d" (int .keep) | quote }}
{{- end }}{{ end }}
{{- if and $c.access.enabled $c.access.production }}
- --access-production
{{- end }}
- --log-format=json
{{- range .Values.extraArgs }}
- {{ . | quote }}
{{- end }}
{{- end -}}
