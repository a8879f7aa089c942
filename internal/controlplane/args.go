package controlplane

import (
	"fmt"
	"path/filepath"
	"strconv"
)

// The command lines below are the whole configuration of each component;
// keeping them in one file makes the local cluster's shape easy to review.

// etcdArgs serve etcd's client and peer listeners on loopback over TLS
// with client certificates from the etcd CA only: any local user can
// connect to a loopback port, so without them every Secret of the cluster
// would be readable by every user of the machine.
func etcdArgs(dir string, p pki, clientPort, peerPort int, noFsync bool) []string {
	client := fmt.Sprintf("https://127.0.0.1:%d", clientPort)
	peer := fmt.Sprintf("https://127.0.0.1:%d", peerPort)
	args := []string{
		"--name=bosun",
		"--data-dir=" + filepath.Join(dir, "etcd"),
		"--listen-client-urls=" + client,
		"--advertise-client-urls=" + client,
		"--client-cert-auth=true",
		"--trusted-ca-file=" + p.EtcdCACert,
		"--cert-file=" + p.EtcdCert,
		"--key-file=" + p.EtcdKey,
		"--listen-peer-urls=" + peer,
		"--initial-advertise-peer-urls=" + peer,
		"--initial-cluster=bosun=" + peer,
		"--peer-client-cert-auth=true",
		"--peer-trusted-ca-file=" + p.EtcdCACert,
		"--peer-cert-file=" + p.EtcdCert,
		"--peer-key-file=" + p.EtcdKey,
		"--log-level=warn",
	}
	if noFsync {
		args = append(args, "--unsafe-no-fsync=true")
	}
	return args
}

func apiServerArgs(p pki, tokenFile string, etcdPort, port int) []string {
	return []string{
		"--etcd-servers=" + fmt.Sprintf("https://127.0.0.1:%d", etcdPort),
		"--etcd-cafile=" + p.EtcdCACert,
		"--etcd-certfile=" + p.EtcdClientCert,
		"--etcd-keyfile=" + p.EtcdClientKey,
		"--secure-port=" + strconv.Itoa(port),
		"--bind-address=127.0.0.1",
		"--advertise-address=127.0.0.1",
		"--tls-cert-file=" + p.ServingCert,
		"--tls-private-key-file=" + p.ServingKey,
		"--client-ca-file=" + p.CACert,
		"--token-auth-file=" + tokenFile,
		"--authorization-mode=RBAC",
		"--service-account-issuer=https://kubernetes.default.svc.cluster.local",
		"--service-account-key-file=" + p.SAPub,
		"--service-account-signing-key-file=" + p.SAKey,
		"--service-cluster-ip-range=" + serviceCIDR,
		"--allow-privileged=true",
		// The aggregation layer, for extension API servers such as
		// metrics-server (the metrics API): the API server calls them
		// with the front-proxy client certificate and names the user in
		// these headers; they trust only the front-proxy CA for that.
		"--requestheader-client-ca-file=" + p.FrontProxyCACert,
		"--requestheader-allowed-names=" + frontProxyClientName,
		"--requestheader-username-headers=X-Remote-User",
		"--requestheader-group-headers=X-Remote-Group",
		"--requestheader-extra-headers-prefix=X-Remote-Extra-",
		"--proxy-client-cert-file=" + p.FrontProxyClientCert,
		"--proxy-client-key-file=" + p.FrontProxyClientKey,
		"--profiling=false",
		"--v=1",
	}
}

// componentAuthArgs are shared by scheduler and controller-manager: they
// talk to the API server with the admin kubeconfig and serve no port.
func componentAuthArgs(kubeconfig string) []string {
	return []string{
		"--kubeconfig=" + kubeconfig,
		"--authentication-kubeconfig=" + kubeconfig,
		"--authorization-kubeconfig=" + kubeconfig,
		"--secure-port=0",
		"--leader-elect=true",
		"--v=1",
	}
}

// componentQPS is the API request rate of the local control plane's
// kube-scheduler (unless Options.SchedulerQPS says otherwise) and
// kube-controller-manager, with bursts of twice as many. Their defaults
// (50 and 20 a second) are sized for a shared production API server; on
// the local one they were the bottleneck of any burst: a Deployment
// scaled by 200 replicas had its last pod created 9 s later (the
// ReplicaSet controller at 20 creations a second) and bound 4 s after
// the scheduler could place it (issue 17, docs/benchmarks.md "peak").
// The same for `bosun up`, the benchmarks and the tests.
const componentQPS = 200

func schedulerArgs(kubeconfig string, qps int) []string {
	args := componentAuthArgs(kubeconfig)
	if qps <= 0 {
		qps = componentQPS
	}
	// Deprecated flags, but the only ones without a config file.
	return append(args, fmt.Sprintf("--kube-api-qps=%d", qps), fmt.Sprintf("--kube-api-burst=%d", 2*qps))
}

func controllerManagerArgs(kubeconfig string, p pki) []string {
	return append(componentAuthArgs(kubeconfig),
		"--service-account-private-key-file="+p.SAKey,
		"--root-ca-file="+p.CACert,
		"--cluster-name=bosun",
		"--profiling=false",
		fmt.Sprintf("--kube-api-qps=%d", componentQPS),
		fmt.Sprintf("--kube-api-burst=%d", 2*componentQPS),
	)
}

// kwokArgs run kwok; with metrics, nodes report 127.0.0.1 and kwok's port
// as their address and kubelet port, so that metrics-server scrapes kwok.
func kwokArgs(kubeconfig, stagesPath string, port int, metrics bool) []string {
	nodeIP := "10.0.0.1"
	if metrics {
		nodeIP = "127.0.0.1"
	}
	args := []string{
		"--kubeconfig=" + kubeconfig,
		"--config=" + stagesPath,
		"--manage-all-nodes=false",
		"--manage-nodes-with-annotation-selector=" + KwokNodeAnnotation + "=fake",
		"--cidr=" + podCIDR,
		"--node-ip=" + nodeIP,
		"--node-lease-duration-seconds=40",
		"--server-address=" + fmt.Sprintf("127.0.0.1:%d", port),
	}
	if metrics {
		args = append(args, fmt.Sprintf("--node-port=%d", port))
	}
	return args
}

// metricsServerArgs serve the metrics API on loopback, scraping kwok over
// plain HTTP (it is the kubelet of every simulated node, on loopback).
func metricsServerArgs(kubeconfig, certDir string, port int) []string {
	return []string{
		"--kubeconfig=" + kubeconfig,
		"--authentication-kubeconfig=" + kubeconfig,
		"--authorization-kubeconfig=" + kubeconfig,
		"--bind-address=127.0.0.1",
		fmt.Sprintf("--secure-port=%d", port),
		"--cert-dir=" + certDir,
		"--kubelet-use-node-status-port",
		"--kubelet-preferred-address-types=InternalIP",
		"--deprecated-kubelet-completely-insecure",
		"--metric-resolution=10s",
		"--kubelet-request-timeout=5s",
		"--v=1",
	}
}
