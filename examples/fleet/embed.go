// Package examplefleet embeds the example fleet, which is also the default
// fleet `bosun up` starts when no --fleet is given.
package examplefleet

import "embed"

// FS holds the fleet directory: clusters, defaults, manifests, snippets,
// vars and fleet.yaml.
//
//go:embed fleet.yaml defaults.yaml clusters manifests snippets vars
var FS embed.FS
