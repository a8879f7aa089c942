package controlplane

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"io"
	"net/http"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
)

const pollInterval = 100 * time.Millisecond

// waitAPIReady polls /readyz until it answers ok. If etcd or the API server
// exits first, or ctx ends, the error carries that process's log tail.
func (cp *ControlPlane) waitAPIReady(ctx context.Context, etcd, api *process) error {
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(cp.caPEM)
	client := &http.Client{
		Timeout:   2 * time.Second,
		Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}},
	}
	defer client.CloseIdleConnections()
	var last string
	for {
		for _, p := range []*process{etcd, api} {
			if done, _ := p.exited(); done {
				return p.failure("exited before the API server was ready")
			}
		}
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, cp.URL+"/readyz", nil)
		if err != nil {
			return fmt.Errorf("building readyz request, %w", err)
		}
		req.Header.Set("Authorization", "Bearer "+cp.token)
		resp, err := client.Do(req)
		if err == nil {
			body, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
			last = fmt.Sprintf("readyz %d: %s", resp.StatusCode, body)
		} else {
			last = err.Error()
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("%w (last check: %s)", api.failure("not ready in time"), last)
		case <-time.After(pollInterval):
		}
	}
}

// waitComponents waits until the scheduler and controller-manager hold their
// leader leases, kwok answers /healthz, and (with a controller-manager) the
// default ServiceAccount exists, without which no pod can be created.
func (cp *ControlPlane) waitComponents(ctx context.Context, leases []string, kwok *process, kwokPort int) error {
	cs, err := kubernetes.NewForConfig(cp.RESTConfig())
	if err != nil {
		return fmt.Errorf("building client, %w", err)
	}
	httpc := &http.Client{Timeout: 2 * time.Second}
	defer httpc.CloseIdleConnections()
	pending := func() (string, error) {
		for _, p := range cp.procs {
			if done, _ := p.exited(); done {
				return "", p.failure("exited during start-up")
			}
		}
		for _, name := range leases {
			l, err := cs.CoordinationV1().Leases("kube-system").Get(ctx, name, metav1.GetOptions{})
			if err != nil || l.Spec.HolderIdentity == nil || *l.Spec.HolderIdentity == "" {
				return name, nil
			}
		}
		for _, name := range leases {
			if name != "kube-controller-manager" {
				continue
			}
			_, err := cs.CoreV1().ServiceAccounts("default").Get(ctx, "default", metav1.GetOptions{})
			if apierrors.IsNotFound(err) || err != nil {
				return "kube-controller-manager", nil
			}
		}
		if kwok != nil {
			req, err := http.NewRequestWithContext(ctx, http.MethodGet, fmt.Sprintf("http://127.0.0.1:%d/healthz", kwokPort), nil)
			if err != nil {
				return "", fmt.Errorf("building kwok health request, %w", err)
			}
			resp, err := httpc.Do(req)
			if err != nil {
				return "kwok", nil
			}
			resp.Body.Close()
			if resp.StatusCode != http.StatusOK {
				return "kwok", nil
			}
		}
		return "", nil
	}
	for {
		waiting, err := pending()
		if err != nil {
			return err
		}
		if waiting == "" {
			return nil
		}
		select {
		case <-ctx.Done():
			for _, p := range cp.procs {
				if p.name == waiting {
					return p.failure("not ready in time")
				}
			}
			return fmt.Errorf("%s not ready in time, %w", waiting, ctx.Err())
		case <-time.After(pollInterval):
		}
	}
}
