// Command bosun runs and manages a fleet of Kubernetes clusters. The work is
// done in internal/cli; main only hands over the process.
package main

import "github.com/bosun-platform/bosun/internal/cli"

func main() { cli.Main() }
