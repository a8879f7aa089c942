package provisioner

import (
	"context"
	"fmt"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
)

// Run watches unscheduled pods and DaemonSets through informers and runs a
// pass every interval while pods are pending (an idle pass reads only the
// informers' caches and makes no API request). It returns when ctx ends.
func (p *Provisioner) Run(ctx context.Context, cs kubernetes.Interface, interval time.Duration) error {
	unscheduled := informers.NewSharedInformerFactoryWithOptions(cs, 0,
		informers.WithTweakListOptions(func(o *metav1.ListOptions) {
			o.FieldSelector = fields.OneTermEqualSelector("spec.nodeName", "").String()
		}))
	pods := unscheduled.Core().V1().Pods().Lister()
	all := informers.NewSharedInformerFactory(cs, 0)
	daemonSets := all.Apps().V1().DaemonSets().Lister()
	unscheduled.Start(ctx.Done())
	all.Start(ctx.Done())
	for typ, ok := range unscheduled.WaitForCacheSync(ctx.Done()) {
		if !ok {
			return fmt.Errorf("provisioner: syncing %v informer", typ)
		}
	}
	for typ, ok := range all.WaitForCacheSync(ctx.Done()) {
		if !ok {
			return fmt.Errorf("provisioner: syncing %v informer", typ)
		}
	}
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
		list, err := pods.List(labels.Everything())
		if err != nil {
			continue
		}
		pending := unschedulable(list)
		if len(pending) == 0 {
			continue
		}
		dsList, _ := daemonSets.List(labels.Everything())
		var templates []*corev1.PodTemplateSpec
		for _, ds := range dsList {
			templates = append(templates, &ds.Spec.Template)
		}
		if _, err := p.Reconcile(ctx, pending, templates); err != nil && ctx.Err() == nil {
			p.opts.Logger.Warn("provisioner pass", "error", err)
		}
	}
}

// unschedulable keeps the pods the scheduler tried and could not place.
func unschedulable(pods []*corev1.Pod) []*corev1.Pod {
	var out []*corev1.Pod
	for _, pod := range pods {
		if pod.Spec.NodeName != "" || pod.DeletionTimestamp != nil {
			continue
		}
		for _, c := range pod.Status.Conditions {
			if c.Type == corev1.PodScheduled && c.Status == corev1.ConditionFalse && c.Reason == corev1.PodReasonUnschedulable {
				out = append(out, pod)
				break
			}
		}
	}
	return out
}
