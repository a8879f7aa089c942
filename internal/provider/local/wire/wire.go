// Package wire holds the types of the local cloud's HTTP API: what
// internal/localcloud serves and provider/local sends and receives. Neither
// side's internals leak into the other through it.
package wire

import "github.com/bosun-platform/bosun/internal/provider"

// The HTTP API of the local cloud, served on loopback with a bearer token.
// provider/local is its client; docs/local-cloud.md documents it.
const (
	PathGroups        = "/v1/groups"
	PathGroup         = "/v1/group"
	PathTarget        = "/v1/group/target"
	PathInstances     = "/v1/group/instances"
	PathDelete        = "/v1/group/delete"
	PathOfferings     = "/v1/offerings"
	PathInterruptions = "/v1/interruptions"
	PathCapacity      = "/v1/sim/capacity"
	PathInterrupt     = "/v1/sim/interrupt"
	PathStatus        = "/v1/sim/status"
	// The infrastructure seam (provider.Infra): plan and apply a cluster's
	// node groups (body: provider.ClusterSpec; answer: []provider.Change),
	// and its control plane (?cluster=ID; answer:
	// provider.ControlPlaneInfo). Served when the local cloud runs with
	// its clusters' infrastructure (bosun up).
	PathInfraPlan         = "/v1/infra/plan"
	PathInfraApply        = "/v1/infra/apply"
	PathInfraControlPlane = "/v1/infra/controlplane"
)

// Error codes of API error bodies; clients map them back to the provider's
// sentinel errors.
const (
	CodeNotFound   = "NotFound"
	CodeOutOfRange = "OutOfRange"
	CodeBadRequest = "BadRequest"
	CodeInternal   = "Internal"
	// CodeUnsupported: a change the local cloud cannot make (another
	// Kubernetes version than the one built, say); provider.ErrUnsupported.
	CodeUnsupported = "Unsupported"
	// CodeNotServed: this local cloud serves no infrastructure API.
	CodeNotServed = "NotServed"
)

// APIError is the body of every non-2xx answer.
type APIError struct {
	Code    string `json:"code"`
	Message string `json:"message"`
}

// TargetRequest is the body of PUT /v1/group/target.
type TargetRequest struct {
	Size int `json:"size"`
}

// DeleteRequest is the body of POST /v1/group/delete.
type DeleteRequest struct {
	InstanceIDs []string `json:"instanceIDs"`
}

// CapacityRequest is the body of POST /v1/sim/capacity.
type CapacityRequest struct {
	OfferingKey
	Limit int  `json:"limit"`
	Clear bool `json:"clear"`
}

// InterruptRequest is the body of POST /v1/sim/interrupt.
type InterruptRequest struct {
	// Node is a node name or instance ID.
	Node string `json:"node"`
}

// OfferingKey identifies what the market sells: an instance type in a zone
// with a lifecycle. An empty InstanceType or Zone in a capacity rule means
// "any" (e.g. all spot in every zone).
type OfferingKey struct {
	InstanceType string             `json:"instanceType,omitempty"`
	Zone         string             `json:"zone,omitempty"`
	Lifecycle    provider.Lifecycle `json:"lifecycle,omitempty"`
}

func (k OfferingKey) String() string {
	any := func(s string) string {
		if s == "" {
			return "*"
		}
		return s
	}
	return any(k.InstanceType) + "/" + any(k.Zone) + "/" + any(string(k.Lifecycle))
}

// Matches reports whether a rule key (with wildcards) covers an offering.
func (k OfferingKey) Matches(o OfferingKey) bool {
	return (k.InstanceType == "" || k.InstanceType == o.InstanceType) &&
		(k.Zone == "" || k.Zone == o.Zone) &&
		(k.Lifecycle == "" || k.Lifecycle == o.Lifecycle)
}

// CapacityLimit caps how many instances the market has for the offerings a
// key covers. Limit 0 means none at all: every launch there fails with
// InsufficientInstanceCapacity. When a limit drops below what runs, spot
// instances beyond it are reclaimed with an interruption notice (L20).
type CapacityLimit struct {
	OfferingKey
	Limit int `json:"limit"`
}

// GroupStatus summarises one node group for `bosun sim status`.
type GroupStatus struct {
	ID         string `json:"id"`
	Lifecycle  string `json:"lifecycle"`
	Priority   int    `json:"priority"`
	MinSize    int    `json:"minSize"`
	MaxSize    int    `json:"maxSize"`
	TargetSize int    `json:"targetSize"`
	Running    int    `json:"running"`
	Pending    int    `json:"pending"`
	// Interrupted counts instances under an interruption notice.
	Interrupted int `json:"interrupted"`
	Terminating int `json:"terminating"`
	// LastError is the error class and message of the current failed
	// launch, if any.
	LastError string `json:"lastError,omitempty"`
	// Failures counts failed launches since the cloud started.
	Failures int `json:"failures"`
}

// Status is the whole cloud at a glance.
type Status struct {
	Groups []GroupStatus   `json:"groups"`
	Limits []CapacityLimit `json:"limits"`
	Usage  []OfferingUsage `json:"usage"`
}

// OfferingUsage is how many instances hold an offering.
type OfferingUsage struct {
	OfferingKey
	Instances int `json:"instances"`
}
