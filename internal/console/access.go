package console

import (
	"context"
	"strings"
	"sync"
	"time"

	authorizationv1 "k8s.io/api/authorization/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// accessTTL is how long an access decision is reused.
const accessTTL = time.Minute

// accessKey identifies one decision; groups is the user's groups joined
// by newlines, since the same name with other groups may see other things.
type accessKey struct{ user, groups, cluster, namespace, kind string }

type accessDecision struct {
	allowed bool
	at      time.Time
}

// accessCache remembers SubjectAccessReview answers per user, cluster,
// namespace and kind, so filtering a result costs a few reviews at most.
type accessCache struct {
	mu sync.Mutex
	m  map[accessKey]accessDecision
}

// mayList reports whether user (with their groups) may list kind in
// namespace of the cluster, asking the cluster (SubjectAccessReview) and
// caching the answer for accessTTL. Any error denies: with impersonation
// on, the console fails closed.
func (c *Console) mayList(ctx context.Context, user User, cl *cluster, namespace, kind string) bool {
	key := accessKey{user.Name, strings.Join(user.Groups, "\n"), cl.src.Name, namespace, kind}
	now := c.clock.Now()
	c.access.mu.Lock()
	if d, ok := c.access.m[key]; ok && now.Sub(d.at) < accessTTL {
		c.access.mu.Unlock()
		return d.allowed
	}
	c.access.mu.Unlock()
	allowed := false
	if k, ok := LookupKind(kind); ok && cl.sar != nil {
		ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		defer cancel()
		review := &authorizationv1.SubjectAccessReview{Spec: authorizationv1.SubjectAccessReviewSpec{
			User: user.Name, Groups: user.Groups,
			ResourceAttributes: &authorizationv1.ResourceAttributes{
				Namespace: namespace, Verb: "list", Group: k.GVR.Group, Version: k.GVR.Version, Resource: k.GVR.Resource,
			},
		}}
		if res, err := cl.sar.Create(ctx, review, metav1.CreateOptions{}); err == nil {
			allowed = res.Status.Allowed
		}
	}
	c.access.mu.Lock()
	if c.access.m == nil {
		c.access.m = map[accessKey]accessDecision{}
	}
	c.access.m[key] = accessDecision{allowed: allowed, at: now}
	c.access.mu.Unlock()
	return allowed
}

// visible drops the items the request's user may not list, when
// impersonation is on; otherwise it returns items unchanged.
func (c *Console) visible(ctx context.Context, cl *cluster, items []*Item) []*Item {
	if !cl.impersonate {
		return items
	}
	user := UserFrom(ctx)
	out := items[:0]
	for _, it := range items {
		if user.Name != "" && c.mayList(ctx, user, cl, it.Namespace, it.Kind) {
			out = append(out, it)
		}
	}
	return out
}
