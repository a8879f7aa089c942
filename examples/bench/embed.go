// Package examplebench embeds the benchmark scenarios of `bosun bench
// scaleup`, so `--scenario ice` works from any directory.
package examplebench

import "embed"

// FS holds the scenario files (ice.yaml, normal.yaml, ...).
//
//go:embed *.yaml
var FS embed.FS
