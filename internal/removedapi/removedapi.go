// Package removedapi finds what stops a Kubernetes upgrade (L30): objects
// in a live cluster, or in a fleet's rendered manifests, that are served
// only by API versions removed in the target release. The table of
// removals is not kept by hand: it is the APILifecycleRemoved() data that
// k8s.io/api generates for its types (zz_generated.prerelease-lifecycle.go),
// read from client-go's scheme.
package removedapi

import (
	"context"
	"fmt"
	"reflect"
	"sort"
	"strconv"
	"strings"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/discovery"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/kubernetes/scheme"
)

// Version is a Kubernetes minor release, e.g. {1, 33}.
type Version struct{ Major, Minor int }

func (v Version) String() string { return fmt.Sprintf("%d.%d", v.Major, v.Minor) }

// Less orders versions.
func (v Version) Less(o Version) bool {
	return v.Major < o.Major || (v.Major == o.Major && v.Minor < o.Minor)
}

// ParseVersion reads "1.33", "v1.33.4" or an API server's Minor such as
// "33+" with a major.
func ParseVersion(s string) (Version, error) {
	t := strings.TrimPrefix(strings.TrimSpace(s), "v")
	parts := strings.SplitN(t, ".", 3)
	if len(parts) < 2 {
		return Version{}, fmt.Errorf("kubernetes version %q: expected major.minor, e.g. 1.33", s)
	}
	major, err1 := strconv.Atoi(parts[0])
	minor, err2 := strconv.Atoi(strings.TrimRight(parts[1], "+"))
	if err1 != nil || err2 != nil {
		return Version{}, fmt.Errorf("kubernetes version %q: expected major.minor, e.g. 1.33", s)
	}
	return Version{major, minor}, nil
}

// Removal is one API version of a kind and the release that removed it.
type Removal struct {
	GVK     schema.GroupVersionKind
	Removed Version
	// Replacement is the kind's replacement API, when k8s.io/api names one.
	Replacement schema.GroupVersionKind
}

type removedLifecycle interface{ APILifecycleRemoved() (int, int) }
type replacedLifecycle interface {
	APILifecycleReplacement() schema.GroupVersionKind
}

// Table returns every removal k8s.io/api knows, sorted by group, version
// and kind (list kinds left out).
func Table() []Removal {
	var out []Removal
	for gvk, typ := range scheme.Scheme.AllKnownTypes() {
		if strings.HasSuffix(gvk.Kind, "List") {
			continue
		}
		obj := reflect.New(typ).Interface()
		r, ok := obj.(removedLifecycle)
		if !ok {
			continue
		}
		major, minor := r.APILifecycleRemoved()
		rm := Removal{GVK: gvk, Removed: Version{major, minor}}
		if rp, ok := obj.(replacedLifecycle); ok {
			rm.Replacement = rp.APILifecycleReplacement()
		}
		out = append(out, rm)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].GVK.String() < out[j].GVK.String() })
	return out
}

// RemovedBy returns the removals at or before target.
func RemovedBy(target Version) map[schema.GroupVersionKind]Removal {
	out := map[schema.GroupVersionKind]Removal{}
	for _, r := range Table() {
		if !target.Less(r.Removed) {
			out[r.GVK] = r
		}
	}
	return out
}

// Finding is a kind whose objects would be lost to an upgrade.
type Finding struct {
	Removal
	// Resource is the plural resource name the cluster serves it as.
	Resource string
	// Objects counts the live objects; Examples names a few
	// (namespace/name).
	Objects  int
	Examples []string
	// Where says where the objects are: "live" or a rendered object.
	Where string
}

func (f Finding) String() string {
	s := fmt.Sprintf("%s %s (removed in %s): %d %s object(s)", f.GVK.GroupVersion(), f.GVK.Kind, f.Removed, f.Objects, f.Where)
	if len(f.Examples) > 0 {
		s += " such as " + strings.Join(f.Examples, ", ")
	}
	if !f.Replacement.Empty() {
		s += "; use " + f.Replacement.GroupVersion().String() + " " + f.Replacement.Kind
	}
	return s
}

// Scan lists, in a live cluster, the objects of every kind served only by
// API versions that target removes: for each removed group version the
// cluster serves, a resource that no surviving version of its group also
// serves is listed, and any object of it is a finding. A resource still
// served by a surviving version is not: its stored objects are read
// through that version after the upgrade.
func Scan(ctx context.Context, disc discovery.DiscoveryInterface, dyn dynamic.Interface, target Version) ([]Finding, error) {
	removed := RemovedBy(target)
	byGV := map[schema.GroupVersion][]Removal{}
	for _, r := range removed {
		byGV[r.GVK.GroupVersion()] = append(byGV[r.GVK.GroupVersion()], r)
	}
	gvs := make([]schema.GroupVersion, 0, len(byGV))
	for gv := range byGV {
		gvs = append(gvs, gv)
	}
	sort.Slice(gvs, func(i, j int) bool { return gvs[i].String() < gvs[j].String() })
	survivors := map[string]map[string]bool{} // group -> resources served by a surviving version
	var out []Finding
	for _, gv := range gvs {
		list, err := disc.ServerResourcesForGroupVersion(gv.String())
		if apierrors.IsNotFound(err) {
			continue // not served: nothing can be stored through it
		}
		if err != nil {
			return nil, fmt.Errorf("discovering %s, %w", gv, err)
		}
		for _, rm := range byGV[gv] {
			for _, res := range list.APIResources {
				if res.Kind != rm.GVK.Kind || strings.Contains(res.Name, "/") {
					continue
				}
				surv, err := survivingResources(disc, gv.Group, removed, survivors)
				if err != nil {
					return nil, err
				}
				if surv[res.Name] {
					continue
				}
				objs, err := dyn.Resource(gv.WithResource(res.Name)).List(ctx, metav1.ListOptions{Limit: 500})
				if err != nil {
					return nil, fmt.Errorf("listing %s %s, %w", gv, res.Name, err)
				}
				n := len(objs.Items)
				if rem := objs.GetRemainingItemCount(); rem != nil {
					n += int(*rem)
				}
				if n == 0 {
					continue
				}
				f := Finding{Removal: rm, Resource: res.Name, Objects: n, Where: "live"}
				for i := 0; i < len(objs.Items) && i < 3; i++ {
					o := objs.Items[i]
					name := o.GetName()
					if o.GetNamespace() != "" {
						name = o.GetNamespace() + "/" + name
					}
					f.Examples = append(f.Examples, name)
				}
				out = append(out, f)
			}
		}
	}
	return out, nil
}

// survivingResources returns the resources of group served by a version
// that target does not remove (cached per group).
func survivingResources(disc discovery.DiscoveryInterface, group string, removed map[schema.GroupVersionKind]Removal, cache map[string]map[string]bool) (map[string]bool, error) {
	if s, ok := cache[group]; ok {
		return s, nil
	}
	s := map[string]bool{}
	groups, err := disc.ServerGroups()
	if err != nil {
		return nil, fmt.Errorf("discovering API groups, %w", err)
	}
	for _, g := range groups.Groups {
		if g.Name != group {
			continue
		}
		for _, v := range g.Versions {
			list, err := disc.ServerResourcesForGroupVersion(v.GroupVersion)
			if apierrors.IsNotFound(err) {
				continue
			}
			if err != nil {
				return nil, fmt.Errorf("discovering %s, %w", v.GroupVersion, err)
			}
			gv := schema.GroupVersion{Group: group, Version: v.Version}
			for _, res := range list.APIResources {
				if strings.Contains(res.Name, "/") {
					continue
				}
				if _, gone := removed[gv.WithKind(res.Kind)]; !gone {
					s[res.Name] = true
				}
			}
		}
	}
	cache[group] = s
	return s, nil
}

// Object is what CheckObjects needs of a manifest.
type Object interface {
	GetAPIVersion() string
	GetKind() string
	GetNamespace() string
	GetName() string
}

// CheckObjects returns a finding per rendered object whose apiVersion and
// kind target removes: applying it after the upgrade would fail.
func CheckObjects[O Object](objs []O, target Version) []Finding {
	removed := RemovedBy(target)
	var out []Finding
	for _, o := range objs {
		gvk := schema.FromAPIVersionAndKind(o.GetAPIVersion(), o.GetKind())
		rm, ok := removed[gvk]
		if !ok {
			continue
		}
		name := o.GetName()
		if o.GetNamespace() != "" {
			name = o.GetNamespace() + "/" + name
		}
		out = append(out, Finding{Removal: rm, Objects: 1, Examples: []string{name}, Where: "rendered"})
	}
	return out
}
