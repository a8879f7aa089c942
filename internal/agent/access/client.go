package access

import (
	"context"
	"fmt"
	"sort"
	"time"

	authv1 "k8s.io/api/authentication/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
)

// Whoami returns the user the API server authenticates the client as
// (SelfSubjectReview, authentication.k8s.io/v1): never a flag, so nobody
// can request or approve in another's name.
func Whoami(ctx context.Context, client kubernetes.Interface) (string, error) {
	review, err := client.AuthenticationV1().SelfSubjectReviews().Create(ctx, &authv1.SelfSubjectReview{}, metav1.CreateOptions{})
	if err != nil {
		return "", fmt.Errorf("asking the API server who we are (SelfSubjectReview): %w", err)
	}
	if review.Status.UserInfo.Username == "" {
		return "", fmt.Errorf("the API server's SelfSubjectReview names no user")
	}
	return review.Status.UserInfo.Username, nil
}

// Submit records r as a pending request of the calling user in ns, after
// validating it; it returns the stored request.
func Submit(ctx context.Context, client kubernetes.Interface, ns string, r Request, now time.Time) (*Request, error) {
	who, err := Whoami(ctx, client)
	if err != nil {
		return nil, err
	}
	r.Requester, r.RequestedAt, r.State = who, now, StatePending
	if err := r.Validate(); err != nil {
		return nil, fmt.Errorf("access request: %w", err)
	}
	cm, err := client.CoreV1().ConfigMaps(ns).Create(ctx, r.ConfigMap(ns), metav1.CreateOptions{})
	if err != nil {
		return nil, fmt.Errorf("recording the access request in %s: %w", ns, err)
	}
	return FromConfigMap(cm)
}

// Approve records the calling user as the approver of the pending request
// name. Whether the approval grants anything is the controller's decision
// (and, in production, the admission policy's: no self-approval).
func Approve(ctx context.Context, client kubernetes.Interface, ns, name string, now time.Time) (*Request, error) {
	who, err := Whoami(ctx, client)
	if err != nil {
		return nil, err
	}
	cm, err := client.CoreV1().ConfigMaps(ns).Get(ctx, name, metav1.GetOptions{})
	if err != nil {
		return nil, fmt.Errorf("access request %s/%s: %w", ns, name, err)
	}
	if cm.Labels[RequestLabel] != "true" {
		return nil, fmt.Errorf("ConfigMap %s/%s: not an access request (label %s)", ns, name, RequestLabel)
	}
	r, err := FromConfigMap(cm)
	if err != nil {
		return nil, err
	}
	if r.State != StatePending || r.Approver != "" {
		return nil, fmt.Errorf("access request %s: %s, approved by %q; expected a pending request", name, r.State, r.Approver)
	}
	cm.Data[keyApprover] = who
	cm.Data[keyApprovedAt] = now.UTC().Format(time.RFC3339)
	cm, err = client.CoreV1().ConfigMaps(ns).Update(ctx, cm, metav1.UpdateOptions{})
	if err != nil {
		return nil, fmt.Errorf("approving access request %s as %s: %w", name, who, err)
	}
	return FromConfigMap(cm)
}

// List returns the requests in ns, newest first. A request that does not
// parse is returned with what did, and its error in Message.
func List(ctx context.Context, client kubernetes.Interface, ns string) ([]*Request, error) {
	cms, err := client.CoreV1().ConfigMaps(ns).List(ctx, metav1.ListOptions{LabelSelector: RequestLabel + "=true"})
	if err != nil {
		return nil, fmt.Errorf("listing access requests in %s: %w", ns, err)
	}
	out := make([]*Request, 0, len(cms.Items))
	for i := range cms.Items {
		r, err := FromConfigMap(&cms.Items[i])
		if err != nil {
			r.Message = err.Error()
		}
		out = append(out, r)
	}
	sort.Slice(out, func(i, j int) bool {
		if !out[i].RequestedAt.Equal(out[j].RequestedAt) {
			return out[i].RequestedAt.After(out[j].RequestedAt)
		}
		return out[i].Name < out[j].Name
	})
	return out, nil
}
