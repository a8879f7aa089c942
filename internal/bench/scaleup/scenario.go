// Package scaleup is `bosun bench scaleup`: it starts a throwaway control
// plane (scheduler, controller-manager, kwok) with the local cloud over it,
// runs Bosun's provisioner (the code `bosun up` runs) or a real
// cluster-autoscaler against it, plays one of issue 7's scenarios and
// measures the figures the seeds cared about: how fast pods get capacity
// when spot runs out (L10, L11, L21, L57), how much overprovisioning buys at
// a peak (L12), how fast on-demand fallback is given back (L22), and what
// the provisioner costs at 1,000 nodes.
//
// Every scenario runs its baseline in the same process (or states it as
// arithmetic where the issue says so), because the machines it runs on are
// shared and only ratios taken in one run compare.
package scaleup

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"time"

	"k8s.io/apimachinery/pkg/api/resource"
	"sigs.k8s.io/yaml"

	"github.com/bosun-platform/bosun/internal/agentapi"
	"github.com/bosun-platform/bosun/internal/ec2catalog"
	"github.com/bosun-platform/bosun/internal/fleet"
	"github.com/bosun-platform/bosun/internal/provider"
)

// Measures a scenario can take.
const (
	// MeasureFallback: pods created → capacity requested (on-demand under
	// ICE) → pods Running (scenarios ice and normal).
	MeasureFallback = "fallback"
	// MeasurePeak: a burst of high-priority pods, without and with
	// overprovisioning (scenario peak).
	MeasurePeak = "peak"
	// MeasureReaper: on-demand share back to 0 after spot returns
	// (scenario reaper).
	MeasureReaper = "reaper"
	// MeasureScale: decision latency and memory at 1,000 nodes (scenario
	// scale).
	MeasureScale = "scale"
)

// Scenario is a benchmark scenario file (examples/bench/*.yaml).
type Scenario struct {
	// Name identifies the scenario in the report.
	Name string `json:"name"`
	// Description says what is measured, for the report.
	Description string `json:"description,omitempty"`
	// Measure is fallback, peak, reaper or scale.
	Measure string `json:"measure"`
	// Cloud tunes the local cloud.
	Cloud CloudSpec `json:"cloud"`
	// Provisioner tunes Bosun's provisioner.
	Provisioner ProvisionerSpec `json:"provisioner"`
	// NodePools become the cluster's node groups.
	NodePools []PoolSpec `json:"nodePools"`
	// Workload is the application whose pods need capacity.
	Workload WorkloadSpec `json:"workload"`
	// Overprovisioning configures the peak scenario's headroom.
	Overprovisioning *OverprovisioningSpec `json:"overprovisioning,omitempty"`
	// Scale configures the scale scenario.
	Scale *ScaleSpec `json:"scale,omitempty"`
	// Timeout bounds each run of the scenario (default 5m).
	Timeout Duration `json:"timeout,omitempty"`
}

// CloudSpec tunes the local cloud.
type CloudSpec struct {
	// BootDelay is how long a launched instance boots (default 45s, as
	// `bosun up`).
	BootDelay Duration `json:"bootDelay,omitempty"`
	// Interval is the cloud's reconcile period (default 250ms, as `bosun up`).
	Interval Duration `json:"interval,omitempty"`
	// SpotCapacity, if set, limits every spot offering to this many
	// instances from the start (0: all spot out of capacity, ICE).
	SpotCapacity *int `json:"spotCapacity,omitempty"`
}

// ProvisionerSpec tunes Bosun's provisioner.
type ProvisionerSpec struct {
	// Interval is the time between passes (default 1s, as `bosun up`).
	Interval Duration `json:"interval,omitempty"`
	// ProvisionTimeout catches silent launch failures (default 5m).
	ProvisionTimeout Duration `json:"provisionTimeout,omitempty"`
}

// PoolSpec is a node pool of the benchmark cluster.
type PoolSpec struct {
	Name          string   `json:"name"`
	Lifecycle     string   `json:"lifecycle"`
	InstanceTypes []string `json:"instanceTypes"`
	Zones         []string `json:"zones"`
	MinSize       int      `json:"minSize,omitempty"`
	MaxSize       int      `json:"maxSize"`
	Priority      int      `json:"priority,omitempty"`
	// Labels are set on the pool's nodes (pods select pools with them).
	Labels map[string]string `json:"labels,omitempty"`
}

// WorkloadSpec is the pods a scenario creates.
type WorkloadSpec struct {
	// Pods is how many pods arrive at once (peak: the burst).
	Pods int `json:"pods"`
	// Initial, for peak, is how many replicas run before the burst.
	Initial int `json:"initial,omitempty"`
	// CPU and Memory are each pod's requests.
	CPU    string `json:"cpu"`
	Memory string `json:"memory"`
	// Priority, if not 0, is the value of a PriorityClass the pods use.
	Priority int32 `json:"priority,omitempty"`
	// NodeSelector selects pools by their labels.
	NodeSelector map[string]string `json:"nodeSelector,omitempty"`
}

// OverprovisioningSpec is the overprovisioner's ConfigMap data: exactly
// one of linear or ladder, in cluster-proportional-autoscaler's format.
type OverprovisioningSpec struct {
	Linear string `json:"linear,omitempty"`
	Ladder string `json:"ladder,omitempty"`
}

// ScaleSpec configures the scale scenario: Nodes base nodes spread over
// BasePools, then Pods pods created as fast as Clients allow, one in
// GrowthEvery of them the growth workload that only new nodes fit.
type ScaleSpec struct {
	Nodes       int          `json:"nodes"`
	BasePools   []string     `json:"basePools"`
	Pods        int          `json:"pods"`
	Clients     int          `json:"clients,omitempty"`
	GrowthEvery int          `json:"growthEvery"`
	Growth      WorkloadSpec `json:"growth"`
}

// Duration is a Go duration in YAML ("250ms", "45s").
type Duration time.Duration

// UnmarshalJSON reads a Go duration string.
func (d *Duration) UnmarshalJSON(b []byte) error {
	s := strings.Trim(string(b), `"`)
	v, err := time.ParseDuration(s)
	if err != nil || v < 0 {
		return fmt.Errorf("%q: expected a Go duration such as 250ms or 45s", s)
	}
	*d = Duration(v)
	return nil
}

// Std returns the duration, or def when unset.
func (d Duration) Std(def time.Duration) time.Duration {
	if d == 0 {
		return def
	}
	return time.Duration(d)
}

// Builtin names the scenarios shipped in examples/bench.
var Builtin = []string{"ice", "normal", "peak", "reaper", "scale"}

// Load reads a scenario by path, or by built-in name from builtins (the
// embedded examples/bench). Errors start with the file name.
func Load(nameOrPath string, builtins fs.FS) (*Scenario, error) {
	var (
		data []byte
		err  error
		file = nameOrPath
	)
	if !strings.ContainsAny(nameOrPath, `/\`) && !strings.HasSuffix(nameOrPath, ".yaml") && builtins != nil {
		file = nameOrPath + ".yaml"
		data, err = fs.ReadFile(builtins, file)
		if errors.Is(err, fs.ErrNotExist) {
			return nil, fmt.Errorf("scenario %q: not a file and not a built-in scenario (built-in: %s)", nameOrPath, strings.Join(Builtin, ", "))
		}
		file = filepath.Join("examples/bench", file)
	} else {
		data, err = os.ReadFile(nameOrPath)
	}
	if err != nil {
		return nil, fmt.Errorf("reading scenario, %w", err)
	}
	s, err := Parse(data)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", file, err)
	}
	return s, nil
}

// Parse decodes a scenario strictly (unknown fields are errors) and checks
// it; errors name the field ("nodePools[2].instanceTypes[0]: ...").
func Parse(data []byte) (*Scenario, error) {
	var s Scenario
	if err := yaml.UnmarshalStrict(data, &s); err != nil {
		return nil, fmt.Errorf("parsing scenario, %w", err)
	}
	if err := s.validate(); err != nil {
		return nil, err
	}
	return &s, nil
}

func (s *Scenario) validate() error {
	if s.Name == "" {
		return errors.New("name: required")
	}
	switch s.Measure {
	case MeasureFallback, MeasurePeak, MeasureReaper, MeasureScale:
	default:
		return fmt.Errorf("measure %q: expected fallback, peak, reaper or scale", s.Measure)
	}
	if s.Cloud.SpotCapacity != nil && *s.Cloud.SpotCapacity < 0 {
		return fmt.Errorf("cloud.spotCapacity %d: expected 0 or more", *s.Cloud.SpotCapacity)
	}
	if len(s.NodePools) == 0 {
		return errors.New("nodePools: at least one node pool is required")
	}
	names := map[string]bool{}
	for i, p := range s.NodePools {
		if err := p.validate(); err != nil {
			return fmt.Errorf("nodePools[%d].%w", i, err)
		}
		if names[p.Name] {
			return fmt.Errorf("nodePools[%d].name %q: declared twice", i, p.Name)
		}
		names[p.Name] = true
	}
	if err := s.Workload.validate("workload", s.Measure != MeasureScale); err != nil {
		return err
	}
	if (s.Overprovisioning != nil) != (s.Measure == MeasurePeak) {
		return errors.New("overprovisioning: required for measure peak, and only there")
	}
	if s.Overprovisioning != nil {
		o := s.Overprovisioning
		data := map[string]string{}
		if o.Linear != "" {
			data["linear"] = o.Linear
		}
		if o.Ladder != "" {
			data["ladder"] = o.Ladder
		}
		if _, err := agentapi.ParseParams("overprovisioning", data); err != nil {
			return err
		}
	}
	if (s.Scale != nil) != (s.Measure == MeasureScale) {
		return errors.New("scale: required for measure scale, and only there")
	}
	if s.Scale != nil {
		return s.Scale.validate(names)
	}
	return nil
}

func (p PoolSpec) validate() error {
	if p.Name == "" {
		return errors.New("name: required")
	}
	if _, err := provider.ParseLifecycle(p.Lifecycle); err != nil {
		return fmt.Errorf("lifecycle: %w", err)
	}
	if len(p.InstanceTypes) == 0 {
		return errors.New("instanceTypes: at least one instance type is required")
	}
	for i, t := range p.InstanceTypes {
		if _, ok := ec2catalog.Lookup(t); !ok {
			return fmt.Errorf("instanceTypes[%d] %q: not in the EC2 catalogue", i, t)
		}
	}
	if len(p.Zones) == 0 {
		return errors.New("zones: at least one zone is required")
	}
	if p.MinSize < 0 || p.MaxSize < p.MinSize || p.MaxSize == 0 {
		return fmt.Errorf("maxSize %d: expected 0 <= minSize (%d) <= maxSize, maxSize > 0", p.MaxSize, p.MinSize)
	}
	return nil
}

func (w WorkloadSpec) validate(where string, needPods bool) error {
	if needPods && w.Pods < 1 {
		return fmt.Errorf("%s.pods %d: expected 1 or more", where, w.Pods)
	}
	if w.Initial < 0 {
		return fmt.Errorf("%s.initial %d: expected 0 or more", where, w.Initial)
	}
	for field, q := range map[string]string{"cpu": w.CPU, "memory": w.Memory} {
		if _, err := resource.ParseQuantity(q); err != nil {
			return fmt.Errorf("%s.%s %q: expected a Kubernetes quantity such as 500m or 1Gi", where, field, q)
		}
	}
	return nil
}

func (sc *ScaleSpec) validate(pools map[string]bool) error {
	if sc.Nodes < 1 || sc.Pods < 1 {
		return fmt.Errorf("scale: nodes (%d) and pods (%d) must be 1 or more", sc.Nodes, sc.Pods)
	}
	if len(sc.BasePools) == 0 {
		return errors.New("scale.basePools: name the pools the base nodes are spread over")
	}
	for i, p := range sc.BasePools {
		if !pools[p] {
			return fmt.Errorf("scale.basePools[%d] %q: no such node pool", i, p)
		}
	}
	if sc.GrowthEvery < 1 {
		return fmt.Errorf("scale.growthEvery %d: expected 1 or more", sc.GrowthEvery)
	}
	if sc.Clients < 0 {
		return fmt.Errorf("scale.clients %d: expected 0 or more", sc.Clients)
	}
	return sc.Growth.validate("scale.growth", false)
}

// Override changes the sizes from the command line (--nodes, --pods),
// for a quick run of a big scenario.
func (s *Scenario) Override(nodes, pods int) error {
	if nodes > 0 {
		if s.Scale == nil {
			return fmt.Errorf("--nodes: scenario %s has no base nodes to resize (only measure scale has)", s.Name)
		}
		s.Scale.Nodes = nodes
	}
	if pods > 0 {
		if s.Scale != nil {
			s.Scale.Pods = pods
		} else {
			s.Workload.Pods = pods
		}
	}
	return nil
}

// cluster is the scenario's fleet cluster for the local cloud; for the
// scale scenario the base pools hold Scale.Nodes nodes from the start.
func (s *Scenario) cluster(id string) *fleet.Cluster {
	cl := &fleet.Cluster{ID: id, Region: "local"}
	base := map[string]int{}
	if s.Scale != nil {
		per, extra := s.Scale.Nodes/len(s.Scale.BasePools), s.Scale.Nodes%len(s.Scale.BasePools)
		for i, p := range s.Scale.BasePools {
			base[p] = per
			if i < extra {
				base[p]++
			}
		}
	}
	for _, p := range s.NodePools {
		np := fleet.NodePool{
			Name: p.Name, Role: fleet.RoleWorker, ApplicationGroup: s.Name, Lifecycle: p.Lifecycle,
			InstanceTypes: p.InstanceTypes, Zones: p.Zones, MinSize: p.MinSize, MaxSize: p.MaxSize,
			Priority: p.Priority, Labels: p.Labels,
		}
		if n, ok := base[p.Name]; ok {
			np.MinSize, np.MaxSize = n, max(n, p.MaxSize)
		}
		cl.NodePools = append(cl.NodePools, np)
	}
	return cl
}

// spotGroups counts the scenario's spot pools.
func (s *Scenario) spotGroups() int {
	n := 0
	for _, p := range s.NodePools {
		if p.Lifecycle == string(provider.Spot) {
			n++
		}
	}
	return n
}
