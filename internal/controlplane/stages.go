package controlplane

import (
	"bytes"
	"embed"
	"fmt"
	"text/template"
	"time"

	"github.com/bosun-platform/bosun/internal/version"
)

// BootDelayAnnotation on a kwok Node overrides the control plane's default
// node boot delay for that node (a Go duration, e.g. "45s"). The local cloud
// uses it to model instance boot times.
const BootDelayAnnotation = "bosun.dev/boot-delay"

// KwokNodeAnnotation marks a Node as simulated by this control plane's kwok.
const KwokNodeAnnotation = "kwok.x-k8s.io/node"

//go:embed stages/*.yaml
var stageFiles embed.FS

// stageParams are the knobs of the shipped kwok stages.
type stageParams struct {
	BootDelayMillis int64
	JobRunMillis    int64
	KubeletVersion  string
}

// renderStages returns kwok's configuration and Stage documents with the given node boot
// delay and Job pod run time.
func renderStages(bootDelay, jobRun time.Duration) ([]byte, error) {
	params := stageParams{
		BootDelayMillis: bootDelay.Milliseconds(),
		JobRunMillis:    jobRun.Milliseconds(),
		KubeletVersion:  version.Kubernetes,
	}
	var out bytes.Buffer
	for i, name := range []string{"stages/node.yaml", "stages/pod.yaml", "stages/kwok.yaml"} {
		tmpl, err := template.ParseFS(stageFiles, name)
		if err != nil {
			return nil, fmt.Errorf("parsing kwok stages %s, %w", name, err)
		}
		if i > 0 {
			out.WriteString("\n---\n")
		}
		if err := tmpl.Execute(&out, params); err != nil {
			return nil, fmt.Errorf("rendering kwok stages %s, %w", name, err)
		}
	}
	return out.Bytes(), nil
}
