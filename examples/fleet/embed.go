// Package examplefleet embeds the example fleet, which is also the default
// fleet `bosun up` starts when no --fleet is given.
package examplefleet

import "embed"

// FS holds the fleet directory: clusters, defaults, manifests, snippets,
// vars and fleet.yaml. The all: prefix keeps files such as vars/_all.yaml
// that a plain directory embed would skip.
//
//go:embed fleet.yaml defaults.yaml all:clusters all:manifests all:snippets all:vars
var FS embed.FS
