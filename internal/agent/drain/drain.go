// Package drain empties a node through the Eviction API, so
// PodDisruptionBudgets are respected: the scale-down, the reaper and the
// interruption handler drain with it after they cordoned the node.
//
// It does what `kubectl drain --ignore-daemonsets --delete-emptydir-data`
// does for those controllers, and only that: DaemonSet and mirror (static)
// pods stay, every other pod is evicted (all at once), an eviction a PDB
// refuses (429) is retried every few seconds, and the drain ends when every
// evicted pod is gone, or fails at the timeout. Bosun drained with
// k8s.io/kubectl/pkg/drain before; that package brings kubectl's command
// line stack with it (cli-runtime, kustomize, and Go's plugin package).
// Built with cgo, as `go build` does where a C compiler is found, the
// plugin package makes the linker export every symbol: the bosun binary
// was 119 MB instead of 88 MB, and an agent held 71 MB of its pages
// instead of 40 MB. The static image build (CGO_ENABLED=0) was barely
// touched: 64 MB instead of 61 MB.
package drain

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	policyv1 "k8s.io/api/policy/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/client-go/kubernetes"
)

// Options tune a drain.
type Options struct {
	// Timeout bounds the whole drain: evictions a PDB keeps refusing and
	// pods slow to terminate fail it then (0: only ctx bounds it).
	Timeout time.Duration
	// EvictBarePods evicts pods no controller recreates too (the
	// interruption handler: the machine goes away regardless); without it
	// such a pod fails the drain before anything is evicted.
	EvictBarePods bool
	// RetryEvery is the wait before asking again for an eviction a PDB
	// refused (default 5s, as kubectl).
	RetryEvery time.Duration
	// PollEvery is how often an evicted pod is checked for being gone
	// (default 1s).
	PollEvery time.Duration
}

func (o Options) retryEvery() time.Duration {
	if o.RetryEvery <= 0 {
		return 5 * time.Second
	}
	return o.RetryEvery
}

func (o Options) pollEvery() time.Duration {
	if o.PollEvery <= 0 {
		return time.Second
	}
	return o.PollEvery
}

// Node evicts the pods of the node and waits until they are gone.
func Node(ctx context.Context, client kubernetes.Interface, node string, o Options) error {
	if o.Timeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, o.Timeout)
		defer cancel()
	}
	list, err := client.CoreV1().Pods(metav1.NamespaceAll).List(ctx, metav1.ListOptions{
		FieldSelector: fields.OneTermEqualSelector("spec.nodeName", node).String(),
	})
	if err != nil {
		return fmt.Errorf("listing the pods of %s, %w", node, err)
	}
	pods, err := evictable(list.Items, o.EvictBarePods)
	if err != nil {
		return fmt.Errorf("draining %s, %w", node, err)
	}
	var wg sync.WaitGroup
	errs := make([]error, len(pods))
	for i := range pods {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs[i] = evict(ctx, client, &pods[i], o)
		}()
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("draining %s, %w", node, err)
	}
	return nil
}

// evictable returns the pods a drain evicts: every pod but DaemonSet and
// mirror pods. A pod no controller recreates is an error unless
// evictBare (or it has finished): evicting it would lose it.
func evictable(pods []corev1.Pod, evictBare bool) ([]corev1.Pod, error) {
	var out []corev1.Pod
	var bare []string
	for _, p := range pods {
		if _, mirror := p.Annotations[corev1.MirrorPodAnnotationKey]; mirror {
			continue
		}
		ref := metav1.GetControllerOf(&p)
		if ref != nil && ref.Kind == "DaemonSet" {
			continue
		}
		finished := p.Status.Phase == corev1.PodSucceeded || p.Status.Phase == corev1.PodFailed
		if ref == nil && !evictBare && !finished {
			bare = append(bare, p.Namespace+"/"+p.Name)
			continue
		}
		out = append(out, p)
	}
	if len(bare) > 0 {
		return nil, fmt.Errorf("pods without a controller would not come back: %s", strings.Join(bare, ", "))
	}
	return out, nil
}

// evict asks for the pod's eviction until the API takes it (a PDB may
// refuse it for a while), then waits for the pod to be gone.
func evict(ctx context.Context, client kubernetes.Interface, p *corev1.Pod, o Options) error {
	name := p.Namespace + "/" + p.Name
	eviction := &policyv1.Eviction{ObjectMeta: metav1.ObjectMeta{Name: p.Name, Namespace: p.Namespace}}
	for {
		err := client.CoreV1().Pods(p.Namespace).EvictV1(ctx, eviction)
		switch {
		case err == nil:
		case apierrors.IsNotFound(err):
			return nil
		case apierrors.IsForbidden(err) && apierrors.HasStatusCause(err, corev1.NamespaceTerminatingCause):
			// Its namespace is going away, and the pod with it.
		case apierrors.IsTooManyRequests(err):
			// A PodDisruptionBudget allows no disruption now.
			if !sleep(ctx, o.retryEvery()) {
				return fmt.Errorf("evicting %s: a PodDisruptionBudget still refuses it, %w", name, context.Cause(ctx))
			}
			continue
		default:
			return fmt.Errorf("evicting %s, %w", name, err)
		}
		break
	}
	for {
		cur, err := client.CoreV1().Pods(p.Namespace).Get(ctx, p.Name, metav1.GetOptions{})
		if apierrors.IsNotFound(err) || (err == nil && cur.UID != p.UID) {
			return nil
		}
		if err != nil && ctx.Err() == nil {
			return fmt.Errorf("waiting for %s to go, %w", name, err)
		}
		if !sleep(ctx, o.pollEvery()) {
			return fmt.Errorf("waiting for %s to go, %w", name, context.Cause(ctx))
		}
	}
}

// sleep waits d; false when ctx ended first.
func sleep(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}
