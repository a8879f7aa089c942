// Package drift is `bosun drift` (L49): how live clusters differ from
// what the fleet renders for them (a server-side dry-run apply of every
// rendered object, compared with the live object, as `bosun diff` does),
// and how the live clusters of one environment differ from each other:
// API server version, the fleet revision they run, and the images of the
// workloads the fleet renders for more than one of them.
package drift

import (
	"context"
	"fmt"
	"io"
	"sort"
	"strings"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"

	"github.com/bosun-platform/bosun/internal/apply"
	"github.com/bosun-platform/bosun/internal/fleet"
	"github.com/bosun-platform/bosun/internal/lifecycle"
	"github.com/bosun-platform/bosun/internal/render"
)

// Cluster is what drift found in one cluster.
type Cluster struct {
	Cluster     string `json:"cluster"`
	Environment string `json:"environment"`
	// Error is set when the cluster could not be checked (unreachable).
	Error string `json:"error,omitempty"`
	// ServerVersion is the API server's git version.
	ServerVersion string `json:"serverVersion,omitempty"`
	// Revision is the fleet revision its status says it runs.
	Revision string `json:"revision,omitempty"`
	// Changed, Pruned, Deleted: objects apply would change (or create),
	// prune or delete; Failed: objects the dry-run rejected.
	Changed []string `json:"changed,omitempty"`
	Pruned  []string `json:"pruned,omitempty"`
	Deleted []string `json:"deleted,omitempty"`
	Failed  []string `json:"failed,omitempty"`
	// Images maps each rendered workload ("Deployment ns/name") to the
	// images its live pod template runs ("container=image", sorted);
	// "(missing)" when it does not exist.
	Images map[string]string `json:"images,omitempty"`
}

// Drifted reports whether the cluster differs from its rendered state or
// could not be checked.
func (c Cluster) Drifted() bool {
	return c.Error != "" || len(c.Changed)+len(c.Pruned)+len(c.Deleted)+len(c.Failed) > 0
}

// Difference is one way the live clusters of an environment differ.
type Difference struct {
	Environment string `json:"environment"`
	// What differs: "server version", "revision" or "images of
	// Deployment ns/name".
	What string `json:"what"`
	// Values maps each cluster to its value.
	Values map[string]string `json:"values"`
}

// Report is the outcome of a drift check.
type Report struct {
	Clusters     []Cluster    `json:"clusters"`
	Environments []Difference `json:"environments"`
}

// Drifted reports whether anything differs.
func (r Report) Drifted() bool {
	for _, c := range r.Clusters {
		if c.Drifted() {
			return true
		}
	}
	return len(r.Environments) > 0
}

// Options configure Check.
type Options struct {
	// Config returns a cluster's REST config.
	Config func(cl *fleet.Cluster) (*rest.Config, error)
	// Diff, if set, receives each cluster's unified diff.
	Diff func(cluster string) io.Writer
}

// Check compares each cluster in rendered with its live state, then the
// live clusters of each environment with each other. It changes nothing.
func Check(ctx context.Context, clusters []*fleet.Cluster, rendered map[string]*render.Result, opts Options) Report {
	var rep Report
	for _, cl := range clusters {
		rep.Clusters = append(rep.Clusters, checkCluster(ctx, cl, rendered[cl.ID], opts))
	}
	rep.Environments = Compare(rep.Clusters)
	return rep
}

func checkCluster(ctx context.Context, cl *fleet.Cluster, res *render.Result, opts Options) Cluster {
	out := Cluster{Cluster: cl.ID, Environment: cl.Environment}
	fail := func(err error) Cluster {
		out.Error = err.Error()
		return out
	}
	if res == nil {
		return fail(fmt.Errorf("cluster %s did not render", cl.ID))
	}
	cfg, err := opts.Config(cl)
	if err != nil {
		return fail(err)
	}
	cs, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		return fail(err)
	}
	info, err := cs.Discovery().ServerVersion()
	if err != nil {
		return fail(fmt.Errorf("unreachable: %w", err))
	}
	out.ServerVersion = info.GitVersion
	live, err := lifecycle.ReadStatus(ctx, cs)
	if err != nil {
		return fail(err)
	}
	out.Revision = live.Status.ChannelRevision
	a, err := apply.New(cfg, io.Discard)
	if err != nil {
		return fail(err)
	}
	w := io.Discard
	if opts.Diff != nil {
		w = opts.Diff(cl.ID)
	}
	d, err := a.Diff(ctx, res, w)
	if err != nil {
		return fail(fmt.Errorf("diffing, %w", err))
	}
	out.Changed, out.Pruned, out.Deleted = d.Changed, d.Pruned, d.Deleted
	for _, f := range d.Failed {
		out.Failed = append(out.Failed, f.Object+": "+f.Err.Error())
	}
	if out.Images, err = images(ctx, cs, res); err != nil {
		return fail(err)
	}
	return out
}

// images reads the live pod templates of the rendered workloads.
func images(ctx context.Context, cs kubernetes.Interface, res *render.Result) (map[string]string, error) {
	out := map[string]string{}
	for _, o := range res.Objects {
		u := o.Object
		if u.GetAPIVersion() != "apps/v1" {
			continue
		}
		ns := u.GetNamespace()
		if ns == "" {
			ns = metav1.NamespaceDefault
		}
		var spec *corev1.PodSpec
		var err error
		switch u.GetKind() {
		case "Deployment":
			dep, e := cs.AppsV1().Deployments(ns).Get(ctx, u.GetName(), metav1.GetOptions{})
			err = e
			if e == nil {
				spec = &dep.Spec.Template.Spec
			}
		case "DaemonSet":
			ds, e := cs.AppsV1().DaemonSets(ns).Get(ctx, u.GetName(), metav1.GetOptions{})
			err = e
			if e == nil {
				spec = &ds.Spec.Template.Spec
			}
		case "StatefulSet":
			st, e := cs.AppsV1().StatefulSets(ns).Get(ctx, u.GetName(), metav1.GetOptions{})
			err = e
			if e == nil {
				spec = &st.Spec.Template.Spec
			}
		default:
			continue
		}
		key := u.GetKind() + " " + ns + "/" + u.GetName()
		switch {
		case apierrors.IsNotFound(err):
			out[key] = "(missing)"
		case err != nil:
			return nil, fmt.Errorf("reading %s, %w", key, err)
		default:
			var imgs []string
			for _, c := range append(append([]corev1.Container{}, spec.InitContainers...), spec.Containers...) {
				imgs = append(imgs, c.Name+"="+c.Image)
			}
			sort.Strings(imgs)
			out[key] = strings.Join(imgs, ",")
		}
	}
	return out, nil
}

// Compare returns how the checked clusters of each environment differ:
// server version, fleet revision, and the images of every workload found
// in two or more of them. Clusters that could not be checked are left
// out (they are reported on their own).
func Compare(clusters []Cluster) []Difference {
	byEnv := map[string][]Cluster{}
	for _, c := range clusters {
		if c.Error == "" {
			byEnv[c.Environment] = append(byEnv[c.Environment], c)
		}
	}
	envs := make([]string, 0, len(byEnv))
	for e := range byEnv {
		envs = append(envs, e)
	}
	sort.Strings(envs)
	var out []Difference
	for _, env := range envs {
		cs := byEnv[env]
		if len(cs) < 2 {
			continue
		}
		add := func(what string, value func(Cluster) (string, bool)) {
			vals := map[string]string{}
			distinct := map[string]bool{}
			for _, c := range cs {
				if v, ok := value(c); ok {
					vals[c.Cluster] = v
					distinct[v] = true
				}
			}
			if len(vals) >= 2 && len(distinct) > 1 {
				out = append(out, Difference{Environment: env, What: what, Values: vals})
			}
		}
		add("server version", func(c Cluster) (string, bool) { return c.ServerVersion, true })
		add("revision", func(c Cluster) (string, bool) { return c.Revision, true })
		keys := map[string]bool{}
		for _, c := range cs {
			for k := range c.Images {
				keys[k] = true
			}
		}
		sorted := make([]string, 0, len(keys))
		for k := range keys {
			sorted = append(sorted, k)
		}
		sort.Strings(sorted)
		for _, k := range sorted {
			add("images of "+k, func(c Cluster) (string, bool) { v, ok := c.Images[k]; return v, ok })
		}
	}
	return out
}
