package lifecycle

import (
	"context"
	"fmt"
	"strings"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/utils/clock"

	"github.com/bosun-platform/bosun/internal/render"
)

// workload is a rendered Deployment, DaemonSet or StatefulSet.
type workload struct{ kind, namespace, name string }

func (w workload) String() string { return w.kind + " " + w.namespace + "/" + w.name }

// workloads lists the rendered objects whose rollout the controller waits
// for. CRDs are waited for by apply itself (until Established).
func workloads(res *render.Result) []workload {
	var out []workload
	for _, o := range res.Objects {
		u := o.Object
		switch {
		case u.GetAPIVersion() == "apps/v1" && (u.GetKind() == "Deployment" || u.GetKind() == "DaemonSet" || u.GetKind() == "StatefulSet"):
			ns := u.GetNamespace()
			if ns == "" {
				ns = metav1.NamespaceDefault
			}
			out = append(out, workload{kind: u.GetKind(), namespace: ns, name: u.GetName()})
		}
	}
	return out
}

// deploymentRolledOut says whether a Deployment finished its rollout, and
// if not, what it waits for (the conditions `kubectl rollout status` uses).
func deploymentRolledOut(d *appsv1.Deployment) (bool, string) {
	want := int32(1)
	if d.Spec.Replicas != nil {
		want = *d.Spec.Replicas
	}
	s := d.Status
	switch {
	case s.ObservedGeneration < d.Generation:
		return false, "spec not observed yet"
	case s.UpdatedReplicas < want:
		return false, fmt.Sprintf("%d of %d replicas updated", s.UpdatedReplicas, want)
	case s.Replicas > s.UpdatedReplicas:
		return false, fmt.Sprintf("%d old replicas pending termination", s.Replicas-s.UpdatedReplicas)
	case s.AvailableReplicas < s.UpdatedReplicas:
		return false, fmt.Sprintf("%d of %d updated replicas available", s.AvailableReplicas, s.UpdatedReplicas)
	}
	return true, ""
}

func daemonSetRolledOut(d *appsv1.DaemonSet) (bool, string) {
	s := d.Status
	switch {
	case s.ObservedGeneration < d.Generation:
		return false, "spec not observed yet"
	case s.UpdatedNumberScheduled < s.DesiredNumberScheduled:
		return false, fmt.Sprintf("%d of %d pods updated", s.UpdatedNumberScheduled, s.DesiredNumberScheduled)
	case s.NumberAvailable < s.DesiredNumberScheduled:
		return false, fmt.Sprintf("%d of %d pods available", s.NumberAvailable, s.DesiredNumberScheduled)
	}
	return true, ""
}

func statefulSetRolledOut(st *appsv1.StatefulSet) (bool, string) {
	want := int32(1)
	if st.Spec.Replicas != nil {
		want = *st.Spec.Replicas
	}
	s := st.Status
	switch {
	case s.ObservedGeneration < st.Generation:
		return false, "spec not observed yet"
	case s.ReadyReplicas < want:
		return false, fmt.Sprintf("%d of %d replicas ready", s.ReadyReplicas, want)
	case st.Spec.UpdateStrategy.Type != appsv1.OnDeleteStatefulSetStrategyType && s.UpdateRevision != "" && s.CurrentRevision != s.UpdateRevision:
		return false, fmt.Sprintf("%d of %d replicas updated", s.UpdatedReplicas, want)
	}
	return true, ""
}

// unhealthy returns what of ws has not rolled out, empty when all has.
func unhealthy(ctx context.Context, cs kubernetes.Interface, ws []workload) ([]string, error) {
	var out []string
	for _, w := range ws {
		var ok bool
		var why string
		var err error
		switch w.kind {
		case "Deployment":
			var d *appsv1.Deployment
			if d, err = cs.AppsV1().Deployments(w.namespace).Get(ctx, w.name, metav1.GetOptions{}); err == nil {
				ok, why = deploymentRolledOut(d)
			}
		case "DaemonSet":
			var d *appsv1.DaemonSet
			if d, err = cs.AppsV1().DaemonSets(w.namespace).Get(ctx, w.name, metav1.GetOptions{}); err == nil {
				ok, why = daemonSetRolledOut(d)
			}
		case "StatefulSet":
			var s *appsv1.StatefulSet
			if s, err = cs.AppsV1().StatefulSets(w.namespace).Get(ctx, w.name, metav1.GetOptions{}); err == nil {
				ok, why = statefulSetRolledOut(s)
			}
		}
		switch {
		case apierrors.IsNotFound(err):
			out = append(out, w.String()+": not found")
		case err != nil:
			return nil, fmt.Errorf("reading %s, %w", w, err)
		case !ok:
			out = append(out, w.String()+": "+why)
		}
	}
	return out, nil
}

// waitHealthy polls until every workload rolled out, or fails at timeout
// naming what did not.
func waitHealthy(ctx context.Context, clk clock.Clock, cs kubernetes.Interface, ws []workload, timeout, every time.Duration) error {
	deadline := clk.Now().Add(timeout)
	for {
		bad, err := unhealthy(ctx, cs, ws)
		if err != nil {
			return err
		}
		if len(bad) == 0 {
			return nil
		}
		if !clk.Now().Before(deadline) {
			if len(bad) > 5 {
				bad = append(bad[:5], fmt.Sprintf("and %d more", len(bad)-5))
			}
			return fmt.Errorf("not healthy %s after apply: %s", timeout, strings.Join(bad, "; "))
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-clk.After(every):
		}
	}
}
