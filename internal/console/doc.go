// Package console is Bosun's fleet console: one read-only web UI and JSON
// API over every cluster (L48). Each cluster is watched by informers whose
// objects are trimmed on arrival (no managed fields, no
// last-applied-configuration, ConfigMaps and Secrets as metadata only), and
// a compact Item per object is kept for search, so a query never touches an
// API server: it scans memory. A cluster that cannot be reached is marked
// down and its last known objects stay searchable, flagged as stale; it
// never blocks the others.
//
// Cost and slack (L36, L38, L51, L53) follow OpenCost's allocation
// method; docs/cost.md describes it with worked examples.
package console
