package deploy

import (
	"fmt"
	"io/fs"
	"path"
	"sort"
	"strings"
)

//go:generate go run ./chartgen -out ../charts/bosun-agent/templates

// ChartFile is one generated file of charts/bosun-agent, named relative to
// the chart's templates/ directory.
type ChartFile struct {
	Name string
	Data []byte
}

// ChartGeneratedMarker starts every template that AgentChartTemplates
// generates.
const ChartGeneratedMarker = "{{- /* Generated"

// chartHeader starts every generated template, so that nobody edits it by
// hand: the manifests in deploy/agent are the one source of truth.
const chartHeader = ChartGeneratedMarker + " from deploy/%s by `make chart` (deploy/chart.go); edit the manifest, not this file. */}}\n"

// chartConditions wraps each controller's RBAC file in the values that turn
// that controller on, so that a release carries the RBAC of its enabled
// controllers only (least privilege). Files not listed are always rendered
// (namespace, service account, base RBAC, Deployment).
var chartConditions = map[string]string{
	"agent/00-namespace.yaml":            ".Values.namespace.create",
	"agent/20-rbac-downscaler.yaml":      ".Values.controllers.downscaler.enabled",
	"agent/30-rbac-janitor.yaml":         ".Values.controllers.janitor.enabled",
	"agent/50-rbac-overprovisioner.yaml": ".Values.controllers.overprovisioner.enabled",
	"agent/60-rbac-provisioner.yaml":     ".Values.controllers.provisioner.enabled",
	"agent/70-rbac-interruption.yaml":    ".Values.controllers.interruption.enabled",
	"agent/80-rbac-node-removal.yaml":    "(or .Values.controllers.scaleDown.enabled .Values.controllers.reaper.enabled)",
	"agent/90-rbac-certwatch.yaml":       ".Values.controllers.certwatch.enabled",
	"agent/95-rbac-access.yaml":          ".Values.controllers.access.enabled",
	"agent/96-rbac-backupschedule.yaml":  ".Values.controllers.backupschedule.enabled",
}

// ChartCondition returns the values condition the chart renders file
// behind ("" for a file always rendered). internal/agent's tests check it
// against the registration table: each controller's RBAC behind its value.
func ChartCondition(file string) string { return chartConditions[file] }

// chartEdit replaces one exact piece of a shipped manifest with template
// text. A piece that is no longer in the manifest fails the generator
// (rather than leaving a chart that silently ignores a value).
type chartEdit struct {
	file, old, new string
}

// chartEdits turn the shipped Deployment and service account into
// templates: image, replicas, service account annotations, the agent's
// arguments (built from the values by the bosun-agent.args helper) and
// resources.
var chartEdits = []chartEdit{
	{"agent/01-serviceaccount.yaml", "  namespace: bosun-system\n",
		"  namespace: bosun-system\n  {{- with .Values.serviceAccount.annotations }}\n  annotations:\n    {{- toYaml . | nindent 4 }}\n  {{- end }}\n"},
	{"agent/40-deployment.yaml", "  replicas: 2\n", "  replicas: {{ .Values.replicas }}\n"},
	{"agent/40-deployment.yaml", "image: " + shippedImage + "\n", "image: {{ printf \"%s:%s\" .Values.image.repository .Values.image.tag | quote }}\n"},
	{"agent/40-deployment.yaml", shippedArgsBlock, "        {{- include \"bosun-agent.args\" . | nindent 8 }}\n"},
	{"agent/40-deployment.yaml", shippedResourcesBlock, "        resources:\n          {{- toYaml .Values.resources | nindent 10 }}\n"},
}

// shippedArgsBlock is the agent's command line in 40-deployment.yaml, from
// the subcommand to the last argument.
const shippedArgsBlock = `        - agent
        - --controllers=downscaler
        # Always up: the downscaler scales only what an annotation (or the
        # namespace's) gives a schedule. Office hours for a whole cluster are
        # opt-in: --default-uptime="Mon-Fri 07:30-20:30 Europe/Berlin" on a
        # non-production cluster (L24; the example fleet's staging does so).
        - --default-uptime=always
        - --log-format=json
`

// shippedResourcesBlock is the agent container's resources in
// 40-deployment.yaml.
const shippedResourcesBlock = `        resources:
          requests:
            cpu: 50m
            memory: 256Mi
          limits:
            cpu: 500m
            memory: 256Mi
`

// AgentChartTemplates turns deploy/agent into the templates of
// charts/bosun-agent: the same documents, with the namespace of the
// release, each controller's RBAC behind its values, and the Deployment's
// image, replicas, arguments and resources taken from the values. The
// chart's hand-written files (Chart.yaml, values.yaml, the schema and
// templates/_helpers.tpl) are not generated.
func AgentChartTemplates() ([]ChartFile, error) {
	files, err := agentFiles()
	if err != nil {
		return nil, err
	}
	used := make([]bool, len(chartEdits))
	var out []ChartFile
	for _, f := range files {
		data, err := agentFS.ReadFile(f)
		if err != nil {
			return nil, fmt.Errorf("reading %s, %w", f, err)
		}
		text := string(data)
		for i, e := range chartEdits {
			if e.file != f {
				continue
			}
			if strings.Count(text, e.old) != 1 {
				return nil, fmt.Errorf("deploy/%s: the chart generator expects exactly one %q in it; update chartEdits in deploy/chart.go together with the manifest", f, e.old)
			}
			text = strings.Replace(text, e.old, e.new, 1)
			used[i] = true
		}
		text = strings.ReplaceAll(text, "namespace: "+shippedNamespace+"\n", "namespace: {{ .Release.Namespace }}\n")
		if f == "agent/00-namespace.yaml" {
			text = strings.Replace(text, "name: "+shippedNamespace+"\n", "name: {{ .Release.Namespace }}\n", 1)
		}
		if leftNamespace(text) {
			return nil, fmt.Errorf("deploy/%s: %q left after templating the namespace; the chart generator knows only \"namespace: %s\" lines", f, shippedNamespace, shippedNamespace)
		}
		var b strings.Builder
		fmt.Fprintf(&b, chartHeader, f)
		cond, conditional := chartConditions[f]
		if conditional {
			b.WriteString("{{- if " + cond + " }}\n")
		}
		b.WriteString(strings.TrimRight(text, "\n") + "\n")
		if conditional {
			b.WriteString("{{- end }}\n")
		}
		out = append(out, ChartFile{Name: path.Base(f), Data: []byte(b.String())})
	}
	for i, ok := range used {
		if !ok {
			return nil, fmt.Errorf("deploy/%s: no such manifest for a chart edit; update chartEdits in deploy/chart.go", chartEdits[i].file)
		}
	}
	for f := range chartConditions {
		if !contains(files, f) {
			return nil, fmt.Errorf("deploy/%s: no such manifest for a chart condition; update chartConditions in deploy/chart.go", f)
		}
	}
	return out, nil
}

// ChartControllers maps the chart's controller values
// (controllers.NAME.enabled) to the agent's controller names, in the order
// the chart passes them to --controllers.
var ChartControllers = []struct{ Value, Controller string }{
	{"downscaler", "downscaler"},
	{"janitor", "janitor"},
	{"overprovisioner", "overprovisioner"},
	{"provisioner", "provisioner"},
	{"interruption", "interruption"},
	{"scaleDown", "scale-down"},
	{"reaper", "reaper"},
	{"certwatch", "certwatch"},
	{"access", "access"},
	{"backupschedule", "backupschedule"},
}

// agentFiles lists the agent's manifests in apply order.
func agentFiles() ([]string, error) {
	files, err := fs.Glob(agentFS, "agent/*.yaml")
	if err != nil {
		return nil, fmt.Errorf("listing agent manifests, %w", err)
	}
	sort.Strings(files)
	return files, nil
}

// leftNamespace tells whether a line other than a comment still names the
// shipped namespace.
func leftNamespace(text string) bool {
	for _, l := range strings.Split(text, "\n") {
		if !strings.HasPrefix(strings.TrimSpace(l), "#") && strings.Contains(l, shippedNamespace) {
			return true
		}
	}
	return false
}

func contains(list []string, s string) bool {
	for _, v := range list {
		if v == s {
			return true
		}
	}
	return false
}
