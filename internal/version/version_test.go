package version

import (
	"os"
	"regexp"
	"strings"
	"testing"
)

// The Go constant and the tools module must pin the same release, or bosun
// would look for binaries that `make tools` never builds.
func TestKubernetesMatchesToolsModule(t *testing.T) {
	data, err := os.ReadFile("../../hack/tools/kube/go.mod")
	if err != nil {
		t.Fatalf("reading tools module: %v", err)
	}
	m := regexp.MustCompile(`(?m)^\s*(?:require )?k8s\.io/kubernetes (v\S+)`).FindSubmatch(data)
	if m == nil {
		t.Fatal("tools go.mod does not require k8s.io/kubernetes")
	}
	if got := string(m[1]); got != Kubernetes {
		t.Errorf("tools module pins %s, version.Kubernetes is %s", got, Kubernetes)
	}
	staging := "v0" + strings.TrimPrefix(Kubernetes, "v1")
	for _, line := range strings.Split(string(data), "\n") {
		if strings.Contains(line, "=> k8s.io/") && !strings.HasSuffix(strings.TrimSpace(line), staging) {
			t.Errorf("staging replace not at %s: %q", staging, strings.TrimSpace(line))
		}
	}
}

func TestKwokMatchesBuildScript(t *testing.T) {
	data, err := os.ReadFile("../../hack/tools/build.sh")
	if err != nil {
		t.Fatalf("reading build script: %v", err)
	}
	if !strings.Contains(string(data), "KWOK_VERSION:-"+Kwok+"}") {
		t.Errorf("hack/tools/build.sh does not default KWOK_VERSION to %s", Kwok)
	}
}

func TestInfoString(t *testing.T) {
	s := Info{Version: "1.2.3", Commit: "abc", GoVersion: "go1", Kubernetes: "v1", Kwok: "v0", Platform: "linux/amd64"}.String()
	for _, want := range []string{"bosun 1.2.3", "commit:     abc", "kubernetes: v1", "kwok:       v0"} {
		if !strings.Contains(s, want) {
			t.Errorf("String() = %q, missing %q", s, want)
		}
	}
}
