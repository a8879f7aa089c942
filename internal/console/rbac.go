package console

import _ "embed"

// RBAC is the console's read-only ClusterRole (YAML): everything it shows,
// no Secrets. rbac_test.go checks it covers every watched kind.
//
//go:embed rbac.yaml
var RBAC string
