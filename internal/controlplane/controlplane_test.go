package controlplane

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"k8s.io/client-go/tools/clientcmd"
	"sigs.k8s.io/yaml"
)

func TestFreePortsAreDistinctAndBindable(t *testing.T) {
	ports, err := freePorts(6)
	if err != nil {
		t.Fatal(err)
	}
	seen := map[int]bool{}
	for _, p := range ports {
		if seen[p] {
			t.Fatalf("port %d returned twice in %v", p, ports)
		}
		seen[p] = true
		l, err := net.Listen("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(p)))
		if err != nil {
			t.Fatalf("port %d not free after freePorts returned: %v", p, err)
		}
		l.Close()
	}
}

func TestLastLines(t *testing.T) {
	cases := map[string]struct {
		in   string
		n    int
		want string
	}{
		"fewer lines than asked": {"a\nb\n", 5, "a\nb"},
		"keeps the last n":       {"1\n2\n3\n4\n", 2, "3\n4"},
		"empty log says so":      {"", 3, "(log is empty)"},
		"no trailing newline":    {"x\ny", 1, "y"},
	}
	for name, c := range cases {
		t.Run(name, func(t *testing.T) {
			if got := lastLines([]byte(c.in), c.n); got != c.want {
				t.Errorf("lastLines(%q, %d) = %q, want %q", c.in, c.n, got, c.want)
			}
		})
	}
}

func TestLogTailOfLargeAndMissingFiles(t *testing.T) {
	dir := t.TempDir()
	big := filepath.Join(dir, "big.log")
	var b strings.Builder
	for i := 0; i < 20000; i++ {
		b.WriteString("filler line\n")
	}
	b.WriteString("the real error\n")
	if err := os.WriteFile(big, []byte(b.String()), 0o600); err != nil {
		t.Fatal(err)
	}
	if got := logTail(big, 1); got != "the real error" {
		t.Errorf("logTail = %q", got)
	}
	if got := logTail(filepath.Join(dir, "absent.log"), 3); !strings.HasPrefix(got, "(no log:") {
		t.Errorf("missing log: %q", got)
	}
}

func TestWriteKubeconfig(t *testing.T) {
	path := filepath.Join(t.TempDir(), "kubeconfig")
	if err := writeKubeconfig(path, "east", "https://127.0.0.1:6443", []byte("CA"), "tok"); err != nil {
		t.Fatal(err)
	}
	st, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if st.Mode().Perm() != 0o600 {
		t.Errorf("kubeconfig mode %v, want 0600 (it holds an admin token)", st.Mode().Perm())
	}
	cfg, err := clientcmd.LoadFromFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if cfg.CurrentContext != "bosun-east" {
		t.Errorf("current context %q", cfg.CurrentContext)
	}
	cl := cfg.Clusters["bosun-east"]
	if cl == nil || cl.Server != "https://127.0.0.1:6443" || string(cl.CertificateAuthorityData) != "CA" {
		t.Errorf("cluster entry %+v", cl)
	}
	if u := cfg.AuthInfos["bosun-east"]; u == nil || u.Token != "tok" {
		t.Errorf("user entry %+v", u)
	}
}

func TestWritePKI(t *testing.T) {
	dir := t.TempDir()
	p, err := writePKI(dir, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range []string{p.CACert, p.ServingCert, p.ServingKey, p.SAKey, p.SAPub, p.EtcdCACert, p.EtcdCert, p.EtcdKey, p.EtcdClientCert, p.EtcdClientKey, p.FrontProxyCACert, p.FrontProxyClientCert, p.FrontProxyClientKey} {
		st, err := os.Stat(f)
		if err != nil || st.Size() == 0 {
			t.Errorf("%s missing or empty: %v", f, err)
			continue
		}
		if st.Mode().Perm() != 0o600 {
			t.Errorf("%s mode %v, want 0600", f, st.Mode().Perm())
		}
	}
	if st, err := os.Stat(dir); err != nil || st.Mode().Perm() != 0o700 {
		t.Errorf("pki dir mode %v, %v: want 0700", st.Mode().Perm(), err)
	}
	if !strings.Contains(string(p.CAPEM), "BEGIN CERTIFICATE") {
		t.Error("CA PEM not returned")
	}
}

// etcd trusts only its own CA, and the API server's etcd client
// certificate is the one that CA signed for clients: a certificate signed
// by the API server's CA (which it trusts for its own clients) opens no
// etcd, and the etcd client certificate logs into no API server.
func TestEtcdPKIIsSeparateFromTheAPIServers(t *testing.T) {
	p, err := writePKI(t.TempDir(), time.Now())
	if err != nil {
		t.Fatal(err)
	}
	pool := func(path string) *x509.CertPool {
		data, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		cp := x509.NewCertPool()
		if !cp.AppendCertsFromPEM(data) {
			t.Fatalf("%s: no certificate", path)
		}
		return cp
	}
	leaf := func(path string) *x509.Certificate {
		kp, err := tls.LoadX509KeyPair(path, strings.TrimSuffix(path, ".crt")+".key")
		if err != nil {
			t.Fatal(err)
		}
		c, err := x509.ParseCertificate(kp.Certificate[0])
		if err != nil {
			t.Fatal(err)
		}
		return c
	}
	etcdCA, apiCA := pool(p.EtcdCACert), pool(p.CACert)
	client := leaf(p.EtcdClientCert)
	asClient := []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}
	if _, err := client.Verify(x509.VerifyOptions{Roots: etcdCA, KeyUsages: asClient}); err != nil {
		t.Errorf("etcd CA does not accept the API server's etcd client certificate: %v", err)
	}
	if _, err := client.Verify(x509.VerifyOptions{Roots: apiCA, KeyUsages: asClient}); err == nil {
		t.Error("the API server's client CA accepts the etcd client certificate")
	}
	if _, err := leaf(p.ServingCert).Verify(x509.VerifyOptions{Roots: etcdCA, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageAny}}); err == nil {
		t.Error("etcd CA accepts a certificate of the API server's CA")
	}
	etcdCert := leaf(p.EtcdCert)
	if _, err := etcdCert.Verify(x509.VerifyOptions{Roots: etcdCA, DNSName: "127.0.0.1"}); err != nil {
		t.Errorf("etcd serving certificate is not valid for 127.0.0.1: %v", err)
	}
	if _, err := etcdCert.Verify(x509.VerifyOptions{Roots: etcdCA, KeyUsages: asClient}); err != nil {
		t.Errorf("etcd certificate cannot act as a peer client: %v", err)
	}
}

// The aggregation layer's client certificate comes from a CA of its own:
// the API server's client CA does not accept it, and the front-proxy CA
// accepts no client certificate of the API server's CA (which could
// otherwise claim any user through the request headers). The API server
// is started with both.
func TestFrontProxyPKI(t *testing.T) {
	p, err := writePKI(t.TempDir(), time.Now())
	if err != nil {
		t.Fatal(err)
	}
	pool := func(path string) *x509.CertPool {
		data, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		cp := x509.NewCertPool()
		if !cp.AppendCertsFromPEM(data) {
			t.Fatalf("%s: no certificate", path)
		}
		return cp
	}
	kp, err := tls.LoadX509KeyPair(p.FrontProxyClientCert, p.FrontProxyClientKey)
	if err != nil {
		t.Fatal(err)
	}
	client, err := x509.ParseCertificate(kp.Certificate[0])
	if err != nil {
		t.Fatal(err)
	}
	asClient := []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}
	if client.Subject.CommonName != frontProxyClientName {
		t.Errorf("front-proxy client CN %q, want %q", client.Subject.CommonName, frontProxyClientName)
	}
	if _, err := client.Verify(x509.VerifyOptions{Roots: pool(p.FrontProxyCACert), KeyUsages: asClient}); err != nil {
		t.Errorf("the front-proxy CA does not accept its client certificate: %v", err)
	}
	if _, err := client.Verify(x509.VerifyOptions{Roots: pool(p.CACert), KeyUsages: asClient}); err == nil {
		t.Error("the API server's client CA accepts the front-proxy client certificate")
	}
	a := apiServerArgs(p, "/t", 1111, 3333)
	for _, want := range []string{
		"--requestheader-client-ca-file=" + p.FrontProxyCACert, "--requestheader-allowed-names=front-proxy-client",
		"--proxy-client-cert-file=" + p.FrontProxyClientCert, "--proxy-client-key-file=" + p.FrontProxyClientKey,
		"--requestheader-username-headers=X-Remote-User", "--requestheader-group-headers=X-Remote-Group",
	} {
		if !slices.Contains(a, want) {
			t.Errorf("apiserver args lack %q", want)
		}
	}
}

func TestArgsUseGivenPorts(t *testing.T) {
	p := pki{EtcdCACert: "/p/etcd-ca.crt", EtcdCert: "/p/etcd.crt", EtcdKey: "/p/etcd.key", EtcdClientCert: "/p/c.crt", EtcdClientKey: "/p/c.key"}
	e := strings.Join(etcdArgs("/d", p, 1111, 2222, true), " ")
	for _, want := range []string{"--listen-client-urls=https://127.0.0.1:1111", "--listen-peer-urls=https://127.0.0.1:2222", "--data-dir=/d/etcd", "--unsafe-no-fsync=true"} {
		if !strings.Contains(e, want) {
			t.Errorf("etcd args %q lack %q", e, want)
		}
	}
	if strings.Contains(strings.Join(etcdArgs("/d", p, 1, 2, false), " "), "no-fsync") {
		t.Error("fsync must stay on unless asked")
	}
	a := strings.Join(apiServerArgs(p, "/t", 1111, 3333), " ")
	for _, want := range []string{"--etcd-servers=https://127.0.0.1:1111", "--secure-port=3333", "--bind-address=127.0.0.1", "--authorization-mode=RBAC"} {
		if !strings.Contains(a, want) {
			t.Errorf("apiserver args lack %q", want)
		}
	}
	k := strings.Join(kwokArgs("/kc", "/s", 4444, false), " ")
	if !strings.Contains(k, "--server-address=127.0.0.1:4444") || !strings.Contains(k, "kwok.x-k8s.io/node=fake") {
		t.Errorf("kwok args %q", k)
	}
}

// Both etcd listeners serve TLS and require a client certificate from the
// etcd CA, and the API server presents one (issue 18 item 10).
func TestEtcdRequiresClientCertificates(t *testing.T) {
	p := pki{EtcdCACert: "/p/etcd-ca.crt", EtcdCert: "/p/etcd.crt", EtcdKey: "/p/etcd.key", EtcdClientCert: "/p/c.crt", EtcdClientKey: "/p/c.key"}
	e := etcdArgs("/d", p, 1111, 2222, false)
	for _, want := range []string{
		"--client-cert-auth=true", "--trusted-ca-file=/p/etcd-ca.crt", "--cert-file=/p/etcd.crt", "--key-file=/p/etcd.key",
		"--peer-client-cert-auth=true", "--peer-trusted-ca-file=/p/etcd-ca.crt", "--peer-cert-file=/p/etcd.crt", "--peer-key-file=/p/etcd.key",
	} {
		if !slices.Contains(e, want) {
			t.Errorf("etcd args lack %q", want)
		}
	}
	for _, arg := range e {
		if strings.Contains(arg, "http://") {
			t.Errorf("etcd serves plain HTTP: %s", arg)
		}
	}
	a := apiServerArgs(p, "/t", 1111, 3333)
	for _, want := range []string{"--etcd-cafile=/p/etcd-ca.crt", "--etcd-certfile=/p/c.crt", "--etcd-keyfile=/p/c.key"} {
		if !slices.Contains(a, want) {
			t.Errorf("apiserver args lack %q", want)
		}
	}
}

func TestRenderStagesIsValidYAMLWithBootDelay(t *testing.T) {
	out, err := renderStages(45*time.Second, 2*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	docs := strings.Split(string(out), "\n---\n")
	names := map[string]map[string]any{}
	for _, d := range docs {
		var obj map[string]any
		if err := yaml.Unmarshal([]byte(d), &obj); err != nil {
			t.Fatalf("stage is not YAML: %v\n%s", err, d)
		}
		if obj == nil {
			continue
		}
		if obj["kind"] == "KwokConfiguration" {
			// kwok plays pods with more workers than its default 4, and the
			// other parallelism settings the document would zero are set.
			opts := obj["options"].(map[string]any)
			for _, k := range []string{"podPlayStageParallelism", "nodePlayStageParallelism", "nodeLeaseParallelism", "podsOnNodeSyncParallelism"} {
				if v, _ := opts[k].(float64); v < 1 {
					t.Errorf("KwokConfiguration options.%s = %v, want >= 1", k, opts[k])
				}
			}
			if v, _ := opts["podPlayStageParallelism"].(float64); v <= 4 {
				t.Errorf("podPlayStageParallelism = %v, want more than kwok's default 4", v)
			}
			continue
		}
		if obj["kind"] != "Stage" {
			t.Errorf("kind %v", obj["kind"])
		}
		names[obj["metadata"].(map[string]any)["name"].(string)] = obj
	}
	for _, want := range []string{"bosun-node-boot", "bosun-node-heartbeat", "bosun-pod-run", "bosun-pod-job-complete", "bosun-pod-delete"} {
		if names[want] == nil {
			t.Errorf("stage %s missing; have %v", want, keys(names))
		}
	}
	delay := names["bosun-node-boot"]["spec"].(map[string]any)["delay"].(map[string]any)
	if delay["durationMilliseconds"] != float64(45000) {
		t.Errorf("boot delay %v, want 45000", delay["durationMilliseconds"])
	}
	if !strings.Contains(string(out), `.metadata.annotations["bosun.dev/boot-delay"]`) {
		t.Error("boot stage does not read the per-node annotation")
	}
	// The kwok templates must survive our own templating untouched.
	if !strings.Contains(string(out), "{{ $now := Now }}") {
		t.Error("kwok template expressions were consumed by the stage renderer")
	}
}

func keys(m map[string]map[string]any) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	return out
}

func TestFindBinariesNamesWhatIsMissing(t *testing.T) {
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "etcd"), []byte("#!/bin/sh\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	_, err := FindBinaries(dir)
	if !errors.Is(err, ErrBinaryMissing) {
		t.Fatalf("err = %v, want ErrBinaryMissing", err)
	}
	for _, want := range []string{"kube-apiserver", "kwok", "make tools", dir} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not mention %q", err, want)
		}
	}
	if strings.Contains(err.Error(), "[etcd") {
		t.Errorf("etcd is present but reported missing: %v", err)
	}
}

func TestFindBinariesHonoursEnv(t *testing.T) {
	dir := fakeBinDir(t, "#!/bin/sh\nexit 0\n")
	t.Setenv(BinDirEnv, dir)
	b, err := FindBinaries("")
	if err != nil {
		t.Fatal(err)
	}
	if b.APIServer != filepath.Join(dir, "kube-apiserver") {
		t.Errorf("APIServer = %s", b.APIServer)
	}
}

// fakeBinDir makes a directory where every control-plane binary is the
// given shell script.
func fakeBinDir(t *testing.T, script string) string {
	t.Helper()
	dir := t.TempDir()
	for _, name := range []string{"etcd", "kube-apiserver", "kube-scheduler", "kube-controller-manager", "kwok"} {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(script), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

// A process that dies at start must be reported with the end of its log,
// and nothing may be left running.
func TestStartFailureCarriesLogTail(t *testing.T) {
	dir := fakeBinDir(t, "#!/bin/sh\necho \"starting $0\"\necho 'fatal: cannot open data dir: permission denied' >&2\nexit 3\n")
	bins, err := FindBinaries(dir)
	if err != nil {
		t.Fatal(err)
	}
	stateDir := t.TempDir()
	_, err = Start(context.Background(), Options{Dir: stateDir, Binaries: bins, StartTimeout: 20 * time.Second})
	if err == nil {
		t.Fatal("Start succeeded with binaries that exit at once")
	}
	for _, want := range []string{"exited before the API server was ready", "fatal: cannot open data dir: permission denied", "exit status 3"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q lacks %q", err, want)
		}
	}
	if _, statErr := os.Stat(filepath.Join(stateDir, pidsFile)); !os.IsNotExist(statErr) {
		t.Errorf("pid record left after a failed start: %v", statErr)
	}
}

func TestStartTimeoutNamesTheStuckComponent(t *testing.T) {
	dir := fakeBinDir(t, "#!/bin/sh\necho 'waiting for godot'\nexec sleep 60\n")
	bins, err := FindBinaries(dir)
	if err != nil {
		t.Fatal(err)
	}
	_, err = Start(context.Background(), Options{Binaries: bins, StartTimeout: time.Second})
	if err == nil {
		t.Fatal("Start succeeded with binaries that never serve")
	}
	if !strings.Contains(err.Error(), "kube-apiserver not ready in time") || !strings.Contains(err.Error(), "waiting for godot") {
		t.Errorf("error %q should name kube-apiserver and carry its log", err)
	}
}

func TestStartRequiresBinaries(t *testing.T) {
	if _, err := Start(context.Background(), Options{}); err == nil || !strings.Contains(err.Error(), "FindBinaries") {
		t.Errorf("err = %v", err)
	}
}
