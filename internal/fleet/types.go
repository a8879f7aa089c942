// Package fleet loads a fleet directory: the clusters, environment defaults,
// templated manifests, snippets, per-cluster vars and deletions that describe
// every cluster as code (L01, L41). Loading checks structure only; rendering
// lives in package render and the lessons are checked by package lint.
package fleet

// Fleet is a loaded fleet directory.
type Fleet struct {
	// Dir is the directory the fleet was loaded from.
	Dir string
	// Settings come from fleet.yaml (optional).
	Settings Settings
	// Clusters are sorted by ID.
	Clusters []*Cluster
	// Defaults is defaults.yaml (optional): a template over the cluster that
	// yields config item defaults.
	Defaults *File
	// Manifests are the templates under manifests/<component>/, sorted by path.
	Manifests []*File
	// Snippets are the files under snippets/: named templates for include.
	Snippets []*File
	// Deletions is manifests/deletions.yaml (optional), a template yielding
	// the objects to delete before or after apply.
	Deletions *File
	// Vars holds vars/<cluster-id>.yaml per cluster ID, already merged.
	Vars map[string]map[string]any
}

// File is one template file of the fleet.
type File struct {
	// Path is relative to the fleet directory, with forward slashes.
	Path string
	// Component is the directory under manifests/ (empty for other files).
	Component string
	// Content is the file's text.
	Content string
}

// Settings are fleet-wide options from fleet.yaml.
type Settings struct {
	// Name names the fleet (informational).
	Name string `yaml:"name"`
	// Lint tunes the lint rules.
	Lint LintSettings `yaml:"lint"`
	// Backup says who can read the fleet's secret backups (L29).
	Backup BackupSettings `yaml:"backup"`
}

// BackupSettings configure `bosun backup` for the whole fleet (L29).
type BackupSettings struct {
	// Recipients are age public keys (age1...): every backup is encrypted
	// to all of them, and any one of their identities restores it. Only
	// public keys belong in the fleet.
	Recipients []string `yaml:"recipients"`
	// Kinds are the resources backed up besides Secrets, as
	// resource[.group] (configmaps, deployments.apps).
	Kinds []string `yaml:"kinds"`
	// Keep is how many backups per cluster are kept by retention
	// (default 14).
	Keep int `yaml:"keep"`
}

// LintSettings tune bosun lint for the whole fleet.
type LintSettings struct {
	// MinSpotInstanceTypes is the number of distinct instance types the spot
	// pools of one application group must span (L23, default 10).
	MinSpotInstanceTypes int `yaml:"minSpotInstanceTypes"`
	// AllowedToDiffer lists config items that may differ between clusters of
	// one environment (L49). Everything else must be equal.
	AllowedToDiffer []string `yaml:"allowedToDiffer"`
}

// Cluster is one registry entry: clusters/<id>.yaml (L40).
type Cluster struct {
	// ID is unique in the fleet and equals the file name without .yaml.
	ID string `yaml:"id"`
	// Alias is a short human name.
	Alias string `yaml:"alias"`
	// Environment is e.g. production, staging or test.
	Environment string `yaml:"environment"`
	// Provider is aws or local.
	Provider string `yaml:"provider"`
	// Account is the cloud account (AWS account ID).
	Account string `yaml:"account"`
	// Region is the cloud region, e.g. eu-central-1.
	Region string `yaml:"region"`
	// Channel is the release channel: dev, alpha, beta or stable (L43).
	Channel string `yaml:"channel"`
	// KubernetesVersion is major.minor, e.g. "1.33".
	KubernetesVersion string `yaml:"kubernetesVersion"`
	// TestTwin names the non-production cluster paired with a production
	// cluster (L46). When empty, lint looks for one in the same region.
	TestTwin string `yaml:"testTwin"`
	// ConfigItems are the cluster's own config items; they override the
	// defaults. After render.Config they hold the merged items.
	ConfigItems map[string]string `yaml:"configItems"`
	// NodePools are the cluster's node pools.
	NodePools []NodePool `yaml:"nodePools"`
	// Lint holds cluster-wide lint suppressions.
	Lint ClusterLint `yaml:"lint"`
	// UpdateBlock, when set, is why the lifecycle manager must not change
	// this cluster (no infrastructure change, no apply, no node roll): it
	// still reports the cluster's status with this reason.
	UpdateBlock string `yaml:"updateBlock" json:"updateBlock,omitempty"`

	// File is the path of the cluster file relative to the fleet directory.
	File string `yaml:"-"`
	// Line is where the cluster's id is declared.
	Line int `yaml:"-"`
	// ConfigItemLines maps each of the cluster's own config items to its line.
	ConfigItemLines map[string]int `yaml:"-"`
}

// ClusterLint holds a cluster's lint suppressions.
type ClusterLint struct {
	// Suppress silences rules for this whole cluster.
	Suppress []Suppression `yaml:"suppress"`
}

// Suppression silences one lint rule, always with a written reason.
type Suppression struct {
	// Rule is the rule's name (L08-daemonset-guaranteed) or lesson ID (L08).
	Rule string `yaml:"rule"`
	// Reason says why; a suppression without a reason does not count.
	Reason string `yaml:"reason"`
	// Line is where the suppression is declared.
	Line int `yaml:"-"`
}

// Roles of node pools.
const (
	RoleSystem    = "system"
	RoleWorker    = "worker"
	RoleDedicated = "dedicated"
)

// Lifecycles of node pools.
const (
	LifecycleSpot     = "spot"
	LifecycleOnDemand = "on-demand"
)

// NodePool is a group of nodes of one lifecycle.
type NodePool struct {
	// Name is unique within the cluster.
	Name string `yaml:"name"`
	// Role is system, worker or dedicated (to one application, tainted).
	Role string `yaml:"role"`
	// ApplicationGroup groups the pools that serve the same pods: spot pools
	// and their on-demand fallbacks (L05).
	ApplicationGroup string `yaml:"applicationGroup"`
	// Lifecycle is spot or on-demand.
	Lifecycle string `yaml:"lifecycle"`
	// InstanceTypes are EC2 instance types, all of one size (L04).
	InstanceTypes []string `yaml:"instanceTypes"`
	// Zones are availability zones, e.g. eu-central-1a.
	Zones []string `yaml:"zones"`
	// MinSize is the minimum number of nodes.
	MinSize int `yaml:"minSize"`
	// MaxSize is the maximum number of nodes.
	MaxSize int `yaml:"maxSize"`
	// Priority orders fallback: higher is tried first (L10, L21, L57).
	Priority int `yaml:"priority"`
	// Labels are set on every node.
	Labels map[string]string `yaml:"labels"`
	// Taints are set on every node.
	Taints []Taint `yaml:"taints"`

	// Line is where the pool is declared in the cluster file.
	Line int `yaml:"-"`
}

// Taint is a node taint.
type Taint struct {
	// Key of the taint.
	Key string `yaml:"key"`
	// Value of the taint.
	Value string `yaml:"value"`
	// Effect is NoSchedule, PreferNoSchedule or NoExecute.
	Effect string `yaml:"effect"`
}

// Cluster returns the cluster with id, or nil.
func (f *Fleet) Cluster(id string) *Cluster {
	for _, c := range f.Clusters {
		if c.ID == id {
			return c
		}
	}
	return nil
}

// Node labels Bosun sets on every node of a pool, besides the pool's own
// labels. Workloads select pools through them (L26).
const (
	LabelPool             = "node.bosun.dev/pool"
	LabelRole             = "node.bosun.dev/role"
	LabelLifecycle        = "node.bosun.dev/lifecycle"
	LabelApplicationGroup = "node.bosun.dev/application-group"
)

// NodeLabels returns every label a node of the pool carries: the pool's
// own labels plus pool, role, lifecycle and application group.
func (p NodePool) NodeLabels() map[string]string {
	out := make(map[string]string, len(p.Labels)+4)
	for k, v := range p.Labels {
		out[k] = v
	}
	out[LabelPool] = p.Name
	out[LabelRole] = p.Role
	out[LabelLifecycle] = p.Lifecycle
	if p.ApplicationGroup != "" {
		out[LabelApplicationGroup] = p.ApplicationGroup
	}
	return out
}
