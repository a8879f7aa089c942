package console

import (
	"context"
	"fmt"
	"net/http"
	"sort"
	"strings"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/validation/path"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/util/validation"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/rest"
)

// CRDs are not watched: there may be hundreds, most never looked at. They
// are discovered and listed on demand, live from the API server.

var crdGVR = schema.GroupVersionResource{Group: "apiextensions.k8s.io", Version: "v1", Resource: "customresourcedefinitions"}

// CRD is one custom resource definition of a cluster.
type CRD struct {
	Name       string `json:"name"`
	Group      string `json:"group"`
	Version    string `json:"version"`
	Kind       string `json:"kind"`
	Plural     string `json:"plural"`
	Namespaced bool   `json:"namespaced"`
	// Path is the URL of its instance list.
	Path string `json:"path"`
}

// CustomObject is one instance of a custom resource.
type CustomObject struct {
	Namespace string    `json:"namespace,omitempty"`
	Name      string    `json:"name"`
	Created   time.Time `json:"created"`
	Path      string    `json:"path"`
}

// liveClient returns the client for live reads of a cluster, acting as the
// request's user when impersonation is on.
func (c *Console) liveClient(ctx context.Context, name string) (dynamic.Interface, error) {
	cl, ok := c.cluster(name)
	if !ok {
		return nil, fmt.Errorf("cluster %q: %w", name, ErrNotFound)
	}
	return cl.live(ctx)
}

// live returns the dynamic client for live reads. With impersonation on,
// it acts as the request's user, so the cluster's RBAC decides what that
// user may read; a request without a user is refused rather than served
// with the console's own rights.
func (c *cluster) live(ctx context.Context) (dynamic.Interface, error) {
	if c.liveDyn == nil {
		return nil, fmt.Errorf("cluster %s has no client for live reads", c.src.Name)
	}
	if !c.impersonate {
		return c.liveDyn, nil
	}
	user := UserFrom(ctx)
	if user.Name == "" || c.liveConfig == nil {
		return nil, fmt.Errorf("impersonation is on but the request has no user: %w", errForbidden)
	}
	d, err := dynamic.NewForConfig(impersonating(c.liveConfig, user))
	if err != nil {
		return nil, fmt.Errorf("building client for %s, %w", user.Name, err)
	}
	return d, nil
}

// impersonating returns a copy of cfg that acts as user, with the user's
// groups (Impersonate-Group), so RBAC bound to a group applies.
func impersonating(cfg *rest.Config, user User) *rest.Config {
	out := rest.CopyConfig(cfg)
	out.Timeout = 10 * time.Second
	out.Impersonate = rest.ImpersonationConfig{UserName: user.Name, Groups: user.Groups}
	return out
}

// CRDs lists a cluster's custom resource definitions, live, with the
// storage version of each.
func (c *Console) CRDs(ctx context.Context, clusterName string) ([]CRD, error) {
	dyn, err := c.liveClient(ctx, clusterName)
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	list, err := dyn.Resource(crdGVR).List(ctx, metav1.ListOptions{})
	if err != nil {
		return nil, fmt.Errorf("listing CRDs of %s, %w", clusterName, err)
	}
	var out []CRD
	for _, u := range list.Items {
		crd := CRD{Name: u.GetName()}
		crd.Group, _, _ = unstructured.NestedString(u.Object, "spec", "group")
		crd.Kind, _, _ = unstructured.NestedString(u.Object, "spec", "names", "kind")
		crd.Plural, _, _ = unstructured.NestedString(u.Object, "spec", "names", "plural")
		scope, _, _ := unstructured.NestedString(u.Object, "spec", "scope")
		crd.Namespaced = scope == "Namespaced"
		versions, _, _ := unstructured.NestedSlice(u.Object, "spec", "versions")
		for _, v := range versions {
			vm, ok := v.(map[string]any)
			if !ok {
				continue
			}
			if crd.Version == "" || vm["storage"] == true {
				crd.Version, _ = vm["name"].(string)
			}
		}
		crd.Path = fmt.Sprintf("/clusters/%s/custom/%s/%s/%s", clusterName, crd.Group, crd.Version, crd.Plural)
		out = append(out, crd)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out, nil
}

// validCustomGVR checks a group, version and plural taken from a URL
// before they reach a client: each must be a DNS name (no "/", no "." or
// ".." segment, nothing percent-encoded), and the group must not be the
// core group, so a route for custom resources cannot be bent into a read
// of Secrets or ConfigMaps.
func validCustomGVR(gvr schema.GroupVersionResource) error {
	if gvr.Group == "" {
		return fmt.Errorf("custom resource group is empty: custom resources always have a group (example.com): %w", errBadRequest)
	}
	if errs := validation.IsDNS1123Subdomain(gvr.Group); len(errs) > 0 {
		return fmt.Errorf("custom resource group %q: %s: %w", gvr.Group, strings.Join(errs, "; "), errBadRequest)
	}
	if errs := validation.IsDNS1123Label(gvr.Version); len(errs) > 0 {
		return fmt.Errorf("custom resource version %q: %s: %w", gvr.Version, strings.Join(errs, "; "), errBadRequest)
	}
	if errs := validation.IsDNS1123Label(gvr.Resource); len(errs) > 0 {
		return fmt.Errorf("custom resource plural %q: %s: %w", gvr.Resource, strings.Join(errs, "; "), errBadRequest)
	}
	return nil
}

// validObjectRef checks a namespace and name taken from a URL: the
// namespace a DNS label (or empty), the name a valid path segment.
func validObjectRef(namespace, name string) error {
	if namespace != "" {
		if errs := validation.IsDNS1123Label(namespace); len(errs) > 0 {
			return fmt.Errorf("namespace %q: %s: %w", namespace, strings.Join(errs, "; "), errBadRequest)
		}
	}
	if name == "" {
		return fmt.Errorf("object name is empty: %w", errBadRequest)
	}
	if errs := path.IsValidPathSegmentName(name); len(errs) > 0 {
		return fmt.Errorf("object name %q: %s: %w", name, strings.Join(errs, "; "), errBadRequest)
	}
	return nil
}

// customResource returns the client for gvr after checking that gvr is
// well formed and that the cluster serves it as a custom resource: a
// CustomResourceDefinition named <plural>.<group> exists, declares that
// group and plural, and serves that version. Anything else is not found,
// whatever the API server would have answered for the path.
func (c *Console) customResource(ctx context.Context, clusterName string, gvr schema.GroupVersionResource) (dynamic.NamespaceableResourceInterface, error) {
	if err := validCustomGVR(gvr); err != nil {
		return nil, err
	}
	dyn, err := c.liveClient(ctx, clusterName)
	if err != nil {
		return nil, err
	}
	crd, err := dyn.Resource(crdGVR).Get(ctx, gvr.Resource+"."+gvr.Group, metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		return nil, fmt.Errorf("custom resource %s.%s/%s in %s: no such CustomResourceDefinition: %w", gvr.Resource, gvr.Group, gvr.Version, clusterName, ErrNotFound)
	}
	if err != nil {
		return nil, fmt.Errorf("reading the CustomResourceDefinition %s.%s in %s, %w", gvr.Resource, gvr.Group, clusterName, err)
	}
	group, _, _ := unstructured.NestedString(crd.Object, "spec", "group")
	plural, _, _ := unstructured.NestedString(crd.Object, "spec", "names", "plural")
	if group != gvr.Group || plural != gvr.Resource || !servesVersion(crd, gvr.Version) {
		return nil, fmt.Errorf("custom resource %s.%s/%s is not served by %s: %w", gvr.Resource, gvr.Group, gvr.Version, clusterName, ErrNotFound)
	}
	return dyn.Resource(gvr), nil
}

// servesVersion reports whether a CRD serves version.
func servesVersion(crd *unstructured.Unstructured, version string) bool {
	versions, _, _ := unstructured.NestedSlice(crd.Object, "spec", "versions")
	for _, v := range versions {
		if vm, ok := v.(map[string]any); ok && vm["name"] == version && vm["served"] == true {
			return true
		}
	}
	return false
}

// CustomObjects lists the instances of one custom resource, live.
func (c *Console) CustomObjects(ctx context.Context, clusterName string, gvr schema.GroupVersionResource) ([]CustomObject, error) {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	res, err := c.customResource(ctx, clusterName, gvr)
	if err != nil {
		return nil, err
	}
	list, err := res.List(ctx, metav1.ListOptions{})
	if err != nil {
		return nil, fmt.Errorf("listing %s in %s, %w", gvr.Resource, clusterName, err)
	}
	out := make([]CustomObject, 0, len(list.Items))
	for _, u := range list.Items {
		o := CustomObject{Namespace: u.GetNamespace(), Name: u.GetName(), Created: u.GetCreationTimestamp().Time,
			Path: fmt.Sprintf("/clusters/%s/custom/%s/%s/%s/%s", clusterName, gvr.Group, gvr.Version, gvr.Resource, u.GetName())}
		if o.Namespace != "" {
			o.Path += "?namespace=" + o.Namespace
		}
		out = append(out, o)
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].Namespace != out[j].Namespace {
			return out[i].Namespace < out[j].Namespace
		}
		return out[i].Name < out[j].Name
	})
	return out, nil
}

// CustomObjectYAML reads one custom object live and renders it trimmed.
func (c *Console) CustomObjectYAML(ctx context.Context, clusterName string, gvr schema.GroupVersionResource, namespace, name string) (string, error) {
	if err := validObjectRef(namespace, name); err != nil {
		return "", err
	}
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	res, err := c.customResource(ctx, clusterName, gvr)
	if err != nil {
		return "", err
	}
	u, err := res.Namespace(namespace).Get(ctx, name, metav1.GetOptions{})
	if err != nil {
		return "", fmt.Errorf("reading %s %s/%s in %s, %w", gvr.Resource, namespace, name, clusterName, err)
	}
	return renderYAML(Kind{Name: u.GetKind(), GVR: gvr}, u.UnstructuredContent())
}

func gvrFrom(r *http.Request) schema.GroupVersionResource {
	return schema.GroupVersionResource{Group: r.PathValue("group"), Version: r.PathValue("version"), Resource: r.PathValue("plural")}
}

// crdPage is the data of the CRD list, instance list and instance pages.
type crdPage struct {
	Title, Q string
	CRDs     []CRD
	Objects  []CustomObject
	YAML     string
}

func (s *server) crds(api bool) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		cl := r.PathValue("cluster")
		crds, err := s.c.CRDs(r.Context(), cl)
		if err != nil {
			s.fail(w, r, api, err)
			return
		}
		if api {
			writeJSON(w, crds)
			return
		}
		s.render(w, http.StatusOK, "crds", crdPage{Title: "Custom resources in " + cl, CRDs: crds})
	}
}

func (s *server) customList(api bool) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		gvr := gvrFrom(r)
		objs, err := s.c.CustomObjects(r.Context(), r.PathValue("cluster"), gvr)
		if err != nil {
			s.fail(w, r, api, err)
			return
		}
		if api {
			writeJSON(w, objs)
			return
		}
		s.render(w, http.StatusOK, "crds", crdPage{Title: fmt.Sprintf("%s.%s in %s", gvr.Resource, gvr.Group, r.PathValue("cluster")), Objects: objs})
	}
}

func (s *server) customDetail(api bool) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		y, err := s.c.CustomObjectYAML(r.Context(), r.PathValue("cluster"), gvrFrom(r), r.FormValue("namespace"), r.PathValue("name"))
		if err != nil {
			s.fail(w, r, api, err)
			return
		}
		if api {
			writeJSON(w, map[string]string{"yaml": y})
			return
		}
		s.render(w, http.StatusOK, "crds", crdPage{Title: r.PathValue("plural") + " " + r.PathValue("name"), YAML: y})
	}
}
