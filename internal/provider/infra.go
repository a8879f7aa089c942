package provider

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"sort"
	"strings"

	corev1 "k8s.io/api/core/v1"

	"github.com/bosun-platform/bosun/internal/fleet"
)

// LabelTemplateHash is the node label that carries the template hash of the
// pool a node was created from (L44). Nodes whose label differs from the
// pool's current TemplateHash are outdated and get rolled; they are found
// with a label selector, without reading every node.
const LabelTemplateHash = "node.bosun.dev/template-hash"

// ConfigNodeImage is the config item that pins the machine image of every
// node pool of a cluster (an AMI ID on AWS). When it is empty a provider
// picks its default image for the Kubernetes version.
const ConfigNodeImage = "node_image"

// ClusterSpec is what a cloud needs to build one cluster: its control plane
// at a Kubernetes version and one node group per node pool. It is derived
// from a fleet cluster by SpecFor.
type ClusterSpec struct {
	// ID is the fleet cluster ID.
	ID string `json:"id"`
	// Provider is aws or local.
	Provider string `json:"provider"`
	// Region and Account come from the cluster file.
	Region  string `json:"region"`
	Account string `json:"account"`
	// KubernetesVersion is major.minor.
	KubernetesVersion string `json:"kubernetesVersion"`
	// ConfigItems are the merged config items (subnets, roles, image...).
	ConfigItems map[string]string `json:"configItems,omitempty"`
	// Groups are the desired node groups, one per pool, in the pools' order.
	// Each group's Labels include LabelTemplateHash; TargetSize is MinSize.
	Groups []GroupSpec `json:"groups"`
}

// GroupSpec is one desired node group with the pool details a cloud needs to
// create it beyond what NodeGroup says.
type GroupSpec struct {
	NodeGroup
	// Role and ApplicationGroup of the pool.
	Role             string `json:"role"`
	ApplicationGroup string `json:"applicationGroup,omitempty"`
	// Image is the machine image (config item node_image), empty for the
	// provider's default.
	Image string `json:"image,omitempty"`
	// TemplateHash identifies the node template: instance types, labels,
	// taints, Kubernetes version and image. A change means existing nodes
	// must be replaced; a change of sizes or priority does not.
	TemplateHash string `json:"templateHash"`
}

// SpecFor derives the cluster spec from a fleet cluster whose config items
// are already merged (render.Config). It checks what every provider needs:
// a known lifecycle, at least one instance type and one zone, and
// 0 <= minSize <= maxSize; problems name the cluster and pool.
func SpecFor(cl *fleet.Cluster) (ClusterSpec, error) {
	spec := ClusterSpec{
		ID: cl.ID, Provider: cl.Provider, Region: cl.Region, Account: cl.Account,
		KubernetesVersion: cl.KubernetesVersion, ConfigItems: cl.ConfigItems,
	}
	image := cl.ConfigItems[ConfigNodeImage]
	var errs []error
	for _, p := range cl.NodePools {
		where := fmt.Sprintf("cluster %s, node pool %s", cl.ID, p.Name)
		lc, err := ParseLifecycle(p.Lifecycle)
		if err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", where, err))
			continue
		}
		if len(p.InstanceTypes) == 0 || len(p.Zones) == 0 {
			errs = append(errs, fmt.Errorf("%s: needs at least one instance type and one zone", where))
			continue
		}
		if p.MinSize < 0 || p.MaxSize < p.MinSize {
			errs = append(errs, fmt.Errorf("%s: min %d / max %d: expected 0 <= min <= max", where, p.MinSize, p.MaxSize))
			continue
		}
		taints := make([]corev1.Taint, 0, len(p.Taints))
		for _, t := range p.Taints {
			taints = append(taints, corev1.Taint{Key: t.Key, Value: t.Value, Effect: corev1.TaintEffect(t.Effect)})
		}
		labels := p.NodeLabels()
		g := GroupSpec{
			NodeGroup: NodeGroup{
				ID: cl.ID + "/" + p.Name, Cluster: cl.ID, Pool: p.Name,
				Lifecycle: lc, InstanceTypes: append([]string(nil), p.InstanceTypes...),
				Zones: append([]string(nil), p.Zones...), MinSize: p.MinSize, MaxSize: p.MaxSize,
				TargetSize: p.MinSize, Priority: p.Priority, Labels: labels, Taints: taints,
			},
			Role: p.Role, ApplicationGroup: p.ApplicationGroup, Image: image,
		}
		g.TemplateHash = TemplateHash(g.InstanceTypes, labels, taints, cl.KubernetesVersion, image)
		g.Labels[LabelTemplateHash] = g.TemplateHash
		spec.Groups = append(spec.Groups, g)
	}
	return spec, errors.Join(errs...)
}

// TemplateHash is the 16-hex-digit hash of a node template: what a node is
// built from, so that nodes built from an older template can be told apart.
// Order of instance types counts (it is the order of preference); labels
// are taken sorted; taints in order.
func TemplateHash(instanceTypes []string, labels map[string]string, taints []corev1.Taint, kubernetesVersion, image string) string {
	h := sha256.New()
	field := func(w io.Writer, name, value string) { fmt.Fprintf(w, "%s %d %s\n", name, len(value), value) }
	field(h, "types", strings.Join(instanceTypes, ","))
	keys := make([]string, 0, len(labels))
	for k := range labels {
		if k != LabelTemplateHash {
			keys = append(keys, k)
		}
	}
	sort.Strings(keys)
	for _, k := range keys {
		field(h, "label", k+"="+labels[k])
	}
	for _, t := range taints {
		field(h, "taint", t.Key+"="+t.Value+":"+string(t.Effect))
	}
	field(h, "kubernetes", kubernetesVersion)
	field(h, "image", image)
	return hex.EncodeToString(h.Sum(nil))[:16]
}

// Action is what a Change does to a resource.
type Action string

// Actions of a Change.
const (
	Create Action = "create"
	Update Action = "update"
	Delete Action = "delete"
)

// Change is one step of bringing a cluster's infrastructure to its spec.
type Change struct {
	Action Action `json:"action"`
	// Resource is the kind of thing changed: control-plane, node-group,
	// launch-template, queue, rule, ...
	Resource string `json:"resource"`
	// Name identifies it within the provider (a group ID, a queue name).
	Name string `json:"name"`
	// Detail says what differs, e.g. "maxSize 10 -> 20".
	Detail string `json:"detail,omitempty"`
}

func (c Change) String() string {
	s := string(c.Action) + " " + c.Resource + " " + c.Name
	if c.Detail != "" {
		s += ": " + c.Detail
	}
	return s
}

// ControlPlaneInfo describes a cluster's running control plane.
type ControlPlaneInfo struct {
	// Version is the Kubernetes major.minor it serves.
	Version string `json:"version"`
	// Endpoint is the API server URL, when known.
	Endpoint string `json:"endpoint,omitempty"`
	// Ready is true when the control plane serves requests.
	Ready bool `json:"ready"`
}

// ErrUnsupported is returned (wrapped, with the reason) for a change a
// provider cannot make, e.g. a Kubernetes version the local provider has
// not built.
var ErrUnsupported = errors.New("not supported by this provider")

// Infra is the seam through which the lifecycle manager (`bosun
// controller`) and `bosun apply --infra` build a cluster's infrastructure:
// its control plane and its node groups. Implementations only ever change
// or delete resources they created (tagged with the cluster ID); node
// groups of the cluster that are no longer in the spec are deleted.
type Infra interface {
	// Plan returns the changes Apply would make, without making any.
	Plan(ctx context.Context, spec ClusterSpec) ([]Change, error)
	// Apply brings the infrastructure to spec and returns the changes it
	// made (none when everything matched). It is idempotent: after a crash
	// halfway, calling it again finishes the job. Changes the provider
	// cannot make fail with an error wrapping ErrUnsupported.
	Apply(ctx context.Context, spec ClusterSpec) ([]Change, error)
	// ControlPlane describes the cluster's control plane; ErrNotFound when
	// it does not exist.
	ControlPlane(ctx context.Context, cluster string) (ControlPlaneInfo, error)
}
