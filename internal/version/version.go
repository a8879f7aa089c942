// Package version holds the build identity of Bosun and the versions of the
// Kubernetes components it pins.
package version

import (
	"fmt"
	"runtime"
)

// Version and Commit are set at build time with -ldflags -X; a plain
// `go build` leaves the defaults.
var (
	Version = "dev"
	Commit  = "unknown"
)

// Kubernetes is the pinned Kubernetes release whose control-plane binaries
// `make tools` builds (hack/tools/kube/go.mod; a unit test keeps them equal).
const Kubernetes = "v1.33.4"

// Kwok is the pinned kwok release that simulates nodes and pods.
const Kwok = "v0.8.0"

// Info is the identity printed by `bosun version`.
type Info struct {
	Version    string `json:"version"`
	Commit     string `json:"commit"`
	GoVersion  string `json:"goVersion"`
	Kubernetes string `json:"kubernetes"`
	Kwok       string `json:"kwok"`
	Platform   string `json:"platform"`
}

// Get returns the identity of this binary.
func Get() Info {
	return Info{
		Version:    Version,
		Commit:     Commit,
		GoVersion:  runtime.Version(),
		Kubernetes: Kubernetes,
		Kwok:       Kwok,
		Platform:   runtime.GOOS + "/" + runtime.GOARCH,
	}
}

// String renders the identity on one line per field.
func (i Info) String() string {
	return fmt.Sprintf("bosun %s\n  commit:     %s\n  go:         %s\n  kubernetes: %s\n  kwok:       %s\n  platform:   %s\n",
		i.Version, i.Commit, i.GoVersion, i.Kubernetes, i.Kwok, i.Platform)
}
