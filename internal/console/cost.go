package console

import (
	"sort"

	corev1 "k8s.io/api/core/v1"
)

// Usage is measured usage of one container: CPU in cores, memory in GiB.
type Usage struct {
	CPU    float64
	MemGiB float64
}

// UsageByContainer maps "namespace/pod/container" to usage. A nil map
// means usage is unknown and requests stand in for it (slack is then 0).
type UsageByContainer map[string]Usage

// NodeCost is one node's price, unit prices and how much of it pods use.
type NodeCost struct {
	Cluster      string  `json:"cluster"`
	Node         string  `json:"node"`
	InstanceType string  `json:"instanceType,omitempty"`
	Lifecycle    string  `json:"lifecycle"`
	Region       string  `json:"region"`
	PriceSource  string  `json:"priceSource"`
	PriceNote    string  `json:"priceNote,omitempty"`
	HourlyUSD    float64 `json:"hourlyUSD"`
	OnDemandUSD  float64 `json:"onDemandUSD"`
	CPUCores     float64 `json:"cpuCores"`
	MemGiB       float64 `json:"memGiB"`
	// CPUHourly and MemGiBHourly are the node's unit prices.
	CPUHourly    float64 `json:"cpuHourlyUSD"`
	MemGiBHourly float64 `json:"memGiBHourlyUSD"`
	AllocatedUSD float64 `json:"allocatedUSD"`
	IdleUSD      float64 `json:"idleUSD"`
}

// PodCost is one pod's allocation.
type PodCost struct {
	Cluster   string  `json:"cluster"`
	Namespace string  `json:"namespace"`
	Pod       string  `json:"pod"`
	Node      string  `json:"node"`
	Team      string  `json:"team"`
	App       string  `json:"app"`
	CPUReq    float64 `json:"cpuRequest"`
	CPUUsed   float64 `json:"cpuUsed"`
	MemReqGiB float64 `json:"memRequestGiB"`
	MemUsedGB float64 `json:"memUsedGiB"`
	// HourlyUSD is max(request, usage) priced at the node's unit prices.
	HourlyUSD float64 `json:"hourlyUSD"`
	// SlackUSD is the price of requested minus used, where positive.
	SlackUSD float64 `json:"slackUSD"`
}

// ClusterCost sums one cluster (L51) with its spot savings (L53).
type ClusterCost struct {
	Cluster       string  `json:"cluster"`
	NodeUSD       float64 `json:"nodeHourlyUSD"`
	AllocatedUSD  float64 `json:"allocatedHourlyUSD"`
	IdleUSD       float64 `json:"idleHourlyUSD"`
	SlackUSD      float64 `json:"slackHourlyUSD"`
	SpotNodes     int     `json:"spotNodes"`
	OnDemandNodes int     `json:"onDemandNodes"`
	OverrideNodes int     `json:"overrideNodes"`
	// SpotSavingsUSD is what the spot nodes would cost more on demand;
	// SpotSavingsPct is that against their on-demand price.
	SpotSavingsUSD float64 `json:"spotSavingsHourlyUSD"`
	SpotSavingsPct float64 `json:"spotSavingsPct"`
	UsageKnown     bool    `json:"usageKnown"`
}

// CostRow is one aggregate (a namespace, team or application).
type CostRow struct {
	Cluster  string  `json:"cluster,omitempty"`
	Key      string  `json:"key"`
	Pods     int     `json:"pods"`
	CostUSD  float64 `json:"hourlyUSD"`
	SlackUSD float64 `json:"slackHourlyUSD"`
}

// ClusterCostInput is what one cluster contributes to a cost report.
type ClusterCostInput struct {
	Cluster string
	Nodes   []*corev1.Node
	Pods    []*corev1.Pod
	// Usage is nil when the metrics API is not available.
	Usage UsageByContainer
}

// CostReport is the fleet's cost, all figures in USD per hour.
type CostReport struct {
	Clusters    []ClusterCost `json:"clusters"`
	Nodes       []NodeCost    `json:"nodes"`
	Pods        []PodCost     `json:"pods"`
	ByNamespace []CostRow     `json:"byNamespace"`
	ByTeam      []CostRow     `json:"byTeam"`
	ByApp       []CostRow     `json:"byApp"`
	Total       ClusterCost   `json:"total"`
	// PriceError says why the provider's prices could not be read (the
	// last good ones, or the catalogue, are in use).
	PriceError string `json:"priceError,omitempty"`
}

// ComputeCost prices every node and allocates it to pods (L51):
//
//   - a node's price is split into a price per core and per GiB in the
//     ratio of DefaultCPUHourly to DefaultMemGiBHourly over its capacity;
//   - a container costs max(request, usage) of each at those unit prices;
//   - a node's idle cost is its price minus its pods' cost (never below 0);
//   - slack is the price of requested minus used, where positive.
//
// docs/cost.md works through an example; cost_test.go checks it.
func (o CostOptions) ComputeCost(in []ClusterCostInput) CostReport {
	o = o.withDefaults()
	var r CostReport
	ns, team, app := map[[2]string]*CostRow{}, map[string]*CostRow{}, map[string]*CostRow{}
	fleetSpotOnDemand := 0.0
	for _, c := range in {
		cc := ClusterCost{Cluster: c.Cluster, UsageKnown: c.Usage != nil}
		nodes := map[string]*NodeCost{}
		var spotOnDemand float64
		for _, n := range c.Nodes {
			nc := o.nodeCost(c.Cluster, n)
			nodes[n.Name] = &nc
			cc.NodeUSD += nc.HourlyUSD
			switch nc.Lifecycle {
			case LifecycleSpot:
				cc.SpotNodes++
				spotOnDemand += nc.OnDemandUSD
				cc.SpotSavingsUSD += nc.OnDemandUSD - nc.HourlyUSD
			default:
				cc.OnDemandNodes++
			}
			if nc.PriceSource == PriceOverride {
				cc.OverrideNodes++
			}
		}
		if spotOnDemand > 0 {
			cc.SpotSavingsPct = 100 * cc.SpotSavingsUSD / spotOnDemand
		}
		for _, p := range c.Pods {
			nc, ok := nodes[p.Spec.NodeName]
			if !ok || p.Status.Phase == corev1.PodSucceeded || p.Status.Phase == corev1.PodFailed {
				continue // unscheduled or finished pods hold no capacity
			}
			pc := o.podCost(c.Cluster, p, nc, c.Usage)
			nc.AllocatedUSD += pc.HourlyUSD
			cc.AllocatedUSD += pc.HourlyUSD
			cc.SlackUSD += pc.SlackUSD
			r.Pods = append(r.Pods, pc)
			addRow(ns, [2]string{c.Cluster, p.Namespace}, pc)
			addRow(team, pc.Team, pc)
			addRow(app, pc.App, pc)
		}
		names := make([]string, 0, len(nodes))
		for name := range nodes {
			names = append(names, name)
		}
		sort.Strings(names)
		for _, name := range names {
			nc := nodes[name]
			nc.IdleUSD = max(0, nc.HourlyUSD-nc.AllocatedUSD)
			cc.IdleUSD += nc.IdleUSD
			r.Nodes = append(r.Nodes, *nc)
		}
		r.Clusters = append(r.Clusters, cc)
		r.Total = addCluster(r.Total, cc)
		fleetSpotOnDemand += spotOnDemand
	}
	r.Total.Cluster = "total"
	if fleetSpotOnDemand > 0 {
		// A ratio of sums, not an average of the clusters' percentages.
		r.Total.SpotSavingsPct = 100 * r.Total.SpotSavingsUSD / fleetSpotOnDemand
	}
	r.ByNamespace = sortedRows(ns)
	r.ByTeam = sortedRows(team)
	r.ByApp = sortedRows(app)
	return r
}

// addCluster adds cc into the fleet total (the savings percentage is set
// by the caller from the summed on-demand price).
func addCluster(t, cc ClusterCost) ClusterCost {
	t.NodeUSD += cc.NodeUSD
	t.AllocatedUSD += cc.AllocatedUSD
	t.IdleUSD += cc.IdleUSD
	t.SlackUSD += cc.SlackUSD
	t.SpotNodes += cc.SpotNodes
	t.OnDemandNodes += cc.OnDemandNodes
	t.OverrideNodes += cc.OverrideNodes
	t.SpotSavingsUSD += cc.SpotSavingsUSD
	t.UsageKnown = t.UsageKnown || cc.UsageKnown
	return t
}

func (o CostOptions) nodeCost(cluster string, n *corev1.Node) NodeCost {
	p := o.PriceNode(n)
	cpu, mem := capacity(n)
	nc := NodeCost{
		Cluster: cluster, Node: n.Name, InstanceType: p.InstanceType, Lifecycle: p.Lifecycle, Region: p.Region,
		PriceSource: p.Source, PriceNote: p.Note, HourlyUSD: p.HourlyUSD, OnDemandUSD: p.OnDemandUSD, CPUCores: cpu, MemGiB: mem,
	}
	cpuWeight, memWeight := cpu*DefaultCPUHourly, mem*DefaultMemGiBHourly
	if total := cpuWeight + memWeight; total > 0 {
		if cpu > 0 {
			nc.CPUHourly = p.HourlyUSD * cpuWeight / total / cpu
		}
		if mem > 0 {
			nc.MemGiBHourly = p.HourlyUSD * memWeight / total / mem
		}
	}
	return nc
}

func (o CostOptions) podCost(cluster string, p *corev1.Pod, nc *NodeCost, usage UsageByContainer) PodCost {
	pc := PodCost{Cluster: cluster, Namespace: p.Namespace, Pod: p.Name, Node: nc.Node,
		Team: firstLabel(p.Labels, o.TeamLabels), App: firstLabel(p.Labels, o.AppLabels)}
	for _, ctr := range p.Spec.Containers {
		reqCPU := ctr.Resources.Requests.Cpu().AsApproximateFloat64()
		reqMem := ctr.Resources.Requests.Memory().AsApproximateFloat64() / (1 << 30)
		used := Usage{CPU: reqCPU, MemGiB: reqMem}
		if u, ok := usage[p.Namespace+"/"+p.Name+"/"+ctr.Name]; ok {
			used = u // a container the metrics API has not measured yet keeps its requests
		}
		pc.CPUReq += reqCPU
		pc.MemReqGiB += reqMem
		pc.CPUUsed += used.CPU
		pc.MemUsedGB += used.MemGiB
		pc.HourlyUSD += max(reqCPU, used.CPU)*nc.CPUHourly + max(reqMem, used.MemGiB)*nc.MemGiBHourly
		pc.SlackUSD += max(0, reqCPU-used.CPU)*nc.CPUHourly + max(0, reqMem-used.MemGiB)*nc.MemGiBHourly
	}
	return pc
}

// firstLabel returns the value of the first key present, or "(none)".
func firstLabel(l map[string]string, keys []string) string {
	for _, k := range keys {
		if v, ok := l[k]; ok && v != "" {
			return v
		}
	}
	return "(none)"
}

func addRow[K comparable](m map[K]*CostRow, k K, pc PodCost) {
	row, ok := m[k]
	if !ok {
		row = &CostRow{}
		switch key := any(k).(type) {
		case [2]string:
			row.Cluster, row.Key = key[0], key[1]
		case string:
			row.Key = key
		}
		m[k] = row
	}
	row.Pods++
	row.CostUSD += pc.HourlyUSD
	row.SlackUSD += pc.SlackUSD
}

// sortedRows returns rows by cost, highest first, then by key.
func sortedRows[K comparable](m map[K]*CostRow) []CostRow {
	out := make([]CostRow, 0, len(m))
	for _, r := range m {
		out = append(out, *r)
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].CostUSD != out[j].CostUSD {
			return out[i].CostUSD > out[j].CostUSD
		}
		if out[i].Cluster != out[j].Cluster {
			return out[i].Cluster < out[j].Cluster
		}
		return out[i].Key < out[j].Key
	})
	return out
}
