//go:build integration

package console_test

import (
	"bytes"
	"context"
	"net/http/httptest"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"

	"github.com/bosun-platform/bosun/internal/console"
	"github.com/bosun-platform/bosun/internal/controlplane"
	"github.com/bosun-platform/bosun/internal/testenv"
)

// artifactsDir is where browser screenshots go: $BOSUN_ARTIFACTS_DIR, or
// bin/artifacts in the checkout (ignored by git).
func artifactsDir(t *testing.T) string {
	t.Helper()
	dir := os.Getenv("BOSUN_ARTIFACTS_DIR")
	if dir == "" {
		abs, err := filepath.Abs(filepath.Join("..", "..", "bin", "artifacts"))
		if err != nil {
			t.Fatal(err)
		}
		dir = abs
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatalf("creating artifacts dir: %v", err)
	}
	return dir
}

// browser runs headless Chromium (Debian's chromium package; `make
// test-integration` installs it with apt-get when it can).
type browser struct {
	bin, profile string
}

func newBrowser(t *testing.T) browser {
	t.Helper()
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome"} {
		if p, err := exec.LookPath(name); err == nil {
			return browser{bin: p, profile: t.TempDir()}
		}
	}
	t.Skip("chromium not installed: run `make test-integration` (installs it with apt-get) or `apt-get install chromium`")
	return browser{}
}

func (b browser) run(t *testing.T, args ...string) string {
	t.Helper()
	base := []string{"--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
		"--disable-sync", "--no-first-run", "--disable-dev-shm-usage", "--user-data-dir=" + b.profile, "--window-size=1400,1000"}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, b.bin, append(base, args...)...)
	var out, errOut bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errOut
	if err := cmd.Run(); err != nil {
		t.Fatalf("chromium %v: %v\n%s", args, err, errOut.String())
	}
	return out.String()
}

// dom loads u and returns the DOM after the page has rendered.
func (b browser) dom(t *testing.T, u string) string {
	t.Helper()
	return b.run(t, "--dump-dom", u)
}

func (b browser) screenshot(t *testing.T, u, file string) {
	t.Helper()
	b.run(t, "--screenshot="+file, "--hide-scrollbars", u)
	st, err := os.Stat(file)
	if err != nil || st.Size() == 0 {
		t.Fatalf("screenshot %s not written: %v", file, err)
	}
	t.Logf("screenshot: %s", file)
}

var detailLink = regexp.MustCompile(`href="(/clusters/beta/namespaces/[^"]+/pods/web-b)"`)

// The console in a real browser: the fleet page, a search whose results
// come from both clusters (the search box is a GET form, so the URL below
// is exactly what submitting it loads), a detail page reached through the
// result's link, and screenshots saved as test artifacts.
func TestIntegrationBrowser(t *testing.T) {
	br := newBrowser(t)
	env := testenv.Get(t)
	second := startSecond(t, "console-browser-b")
	clientB, err := kubernetes.NewForConfig(second.RESTConfig())
	if err != nil {
		t.Fatal(err)
	}
	a := fixture{client: env.Client, ns: env.Namespace(t)}
	b := fixture{client: clientB, ns: a.ns}
	ensureNamespace(t, env.Client, a.ns, false)
	ensureNamespace(t, clientB, b.ns, true)
	node, err := controlplane.NewNode(controlplane.NodeSpec{Name: "browser-a-node", CPU: "4", Memory: "16Gi", Labels: map[string]string{
		corev1.LabelInstanceTypeStable: "m5.xlarge", "karpenter.sh/capacity-type": "spot"}})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := env.Client.CoreV1().Nodes().Create(context.Background(), node, metav1.CreateOptions{}); err != nil {
		t.Fatalf("creating node: %v", err)
	}
	t.Cleanup(func() {
		_ = env.Client.CoreV1().Nodes().Delete(context.Background(), node.Name, metav1.DeleteOptions{})
	})
	a.pod(t, "web-a", node.Name, map[string]string{"app": "web", "team": "shop"})
	b.pod(t, "web-b", "", map[string]string{"app": "web", "team": "shop"})

	kubeconfig := writeKubeconfig(t, map[string]*rest.Config{"alpha": env.RESTConfig(), "beta": second.RESTConfig()})
	srcs, err := console.ClustersFromKubeconfig(kubeconfig, nil)
	if err != nil {
		t.Fatal(err)
	}
	c, err := console.New(console.Options{Clusters: srcs, ProbeInterval: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	c.Start(ctx)
	h, err := c.Handler(console.Auth{})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	q := "app=web ns:" + a.ns
	testenv.Eventually(t, time.Minute, func(context.Context) (bool, error) {
		pq, _ := console.ParseQuery(q)
		return len(c.Search(pq, 0, "").Items()) == 2, nil
	}, "both pods in the console's cache")

	fleet := br.dom(t, srv.URL+"/")
	if !strings.Contains(fleet, ">alpha<") || !strings.Contains(fleet, ">beta<") {
		t.Fatalf("fleet page in the browser lacks the clusters:\n%s", fleet)
	}
	searchURL := srv.URL + "/search?q=" + url.QueryEscape(q) + "&labelcols=team"
	results := br.dom(t, searchURL)
	for _, want := range []string{"/clusters/alpha/namespaces/" + a.ns + "/pods/web-a", "/clusters/beta/namespaces/" + b.ns + "/pods/web-b", "2 matches"} {
		if !strings.Contains(results, want) {
			t.Errorf("search results in the browser lack %q", want)
		}
	}
	m := detailLink.FindStringSubmatch(results)
	if m == nil {
		t.Fatalf("no link to web-b's detail page in:\n%s", results)
	}
	detail := br.dom(t, srv.URL+m[1])
	if !strings.Contains(detail, "ghcr.io/acme/web-b:1.0") || !strings.Contains(detail, "Pod web-b") {
		t.Errorf("detail page in the browser lacks the pod's YAML:\n%s", detail)
	}
	dir := artifactsDir(t)
	br.screenshot(t, searchURL, filepath.Join(dir, "console-search.png"))
	br.screenshot(t, srv.URL+m[1], filepath.Join(dir, "console-detail.png"))
	br.screenshot(t, srv.URL+"/fleet", filepath.Join(dir, "console-fleet.png"))
	br.screenshot(t, srv.URL+"/cost", filepath.Join(dir, "console-cost.png"))
}
