// Command chartgen writes the templates of charts/bosun-agent that are
// generated from deploy/agent (`make chart`, or `go generate ./deploy`).
// It removes generated templates whose manifest is gone and leaves the
// chart's hand-written files alone.
package main

import (
	"bytes"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/bosun-platform/bosun/deploy"
)

func main() {
	out := flag.String("out", "charts/bosun-agent/templates", "the chart's templates directory")
	flag.Parse()
	if err := run(*out); err != nil {
		fmt.Fprintln(os.Stderr, "chartgen:", err)
		os.Exit(1)
	}
}

func run(dir string) error {
	files, err := deploy.AgentChartTemplates()
	if err != nil {
		return err
	}
	if err := os.MkdirAll(dir, 0o755); err != nil { //nolint:gosec // G301: a source directory of the checkout, readable like the rest
		return fmt.Errorf("creating %s, %w", dir, err)
	}
	want := map[string]bool{}
	for _, f := range files {
		want[f.Name] = true
		p := filepath.Join(dir, f.Name)
		if old, err := os.ReadFile(p); err == nil && bytes.Equal(old, f.Data) {
			continue
		}
		if err := os.WriteFile(p, f.Data, 0o644); err != nil { //nolint:gosec // G306: a committed source file, readable like the rest
			return fmt.Errorf("writing %s, %w", p, err)
		}
		fmt.Println("wrote", p)
	}
	existing, err := filepath.Glob(filepath.Join(dir, "*.yaml"))
	if err != nil {
		return fmt.Errorf("listing %s, %w", dir, err)
	}
	for _, p := range existing {
		data, err := os.ReadFile(p)
		if err != nil {
			return fmt.Errorf("reading %s, %w", p, err)
		}
		if !want[filepath.Base(p)] && strings.HasPrefix(string(data), deploy.ChartGeneratedMarker) {
			if err := os.Remove(p); err != nil {
				return fmt.Errorf("removing %s, %w", p, err)
			}
			fmt.Println("removed", p)
		}
	}
	return nil
}
