// Package provider is the seam between Bosun and a cloud. Bosun's
// controllers (provisioner, spot reaper, interruption handler, cost report)
// see a cloud only through Provider. Implementations: provider/local (the
// local cloud of `bosun up`) and provider/aws (EC2 Auto Scaling). A fake for
// unit tests lives in provider/fake; provider/providertest is the contract
// all three pass; provider/nodeshape is what their nodes look like.
package provider

import (
	"context"
	"errors"
	"time"

	corev1 "k8s.io/api/core/v1"
)

// Lifecycle says how capacity is bought.
type Lifecycle string

// Lifecycles.
const (
	Spot     Lifecycle = "spot"
	OnDemand Lifecycle = "on-demand"
)

// ParseLifecycle accepts spot and on-demand (also ondemand, on_demand).
func ParseLifecycle(s string) (Lifecycle, error) {
	switch s {
	case "spot", "SPOT":
		return Spot, nil
	case "on-demand", "ondemand", "on_demand", "ON_DEMAND":
		return OnDemand, nil
	}
	return "", errors.New(`lifecycle "` + s + `": expected spot or on-demand`)
}

// NodeGroup is a set of identical-size instances scaled together, like an
// EC2 Auto Scaling group (L10: one lifecycle per group, fallback by priority).
type NodeGroup struct {
	// ID is unique in the provider: "<cluster>/<pool>".
	ID string `json:"id"`
	// Cluster and Pool name where the group comes from in the fleet.
	Cluster string `json:"cluster"`
	Pool    string `json:"pool"`
	// Lifecycle of every instance of the group.
	Lifecycle Lifecycle `json:"lifecycle"`
	// InstanceTypes the group may launch, in order of preference.
	InstanceTypes []string `json:"instanceTypes"`
	// Zones the group launches into, balanced.
	Zones []string `json:"zones"`
	// MinSize and MaxSize bound TargetSize.
	MinSize int `json:"minSize"`
	MaxSize int `json:"maxSize"`
	// TargetSize is the desired number of instances.
	TargetSize int `json:"targetSize"`
	// Priority orders fallback between groups: higher first (L21, L57).
	Priority int `json:"priority"`
	// Labels and Taints are set on the group's nodes.
	Labels map[string]string `json:"labels,omitempty"`
	Taints []corev1.Taint    `json:"taints,omitempty"`
}

// InstanceState is where an instance is in its life.
type InstanceState string

// Instance states.
const (
	// Pending: launched, booting; no Node yet.
	Pending InstanceState = "pending"
	// Running: booted; its Node is registered.
	Running InstanceState = "running"
	// Failed: the launch failed (see ErrorClass); the group retries later.
	Failed InstanceState = "failed"
	// Terminating: going away (deleted, or reclaimed after an interruption).
	Terminating InstanceState = "terminating"
)

// ErrorClass classifies a failed launch the way AWS reports it.
type ErrorClass string

// Error classes.
const (
	// InsufficientCapacity: the offering has no capacity now
	// (InsufficientInstanceCapacity; for spot also the spot pool is empty).
	InsufficientCapacity ErrorClass = "InsufficientInstanceCapacity"
	// QuotaExceeded: an account limit (VcpuLimitExceeded).
	QuotaExceeded ErrorClass = "VcpuLimitExceeded"
	// OtherError: anything else.
	OtherError ErrorClass = "Other"
)

// Instance is one machine of a group, or one failed attempt to launch one.
type Instance struct {
	// ID is the provider's instance id (for a failed launch, an id of the
	// attempt).
	ID string `json:"id"`
	// Group is the NodeGroup ID.
	Group        string    `json:"group"`
	InstanceType string    `json:"instanceType"`
	Zone         string    `json:"zone"`
	Lifecycle    Lifecycle `json:"lifecycle"`
	// State of the instance.
	State InstanceState `json:"state"`
	// ErrorClass and ErrorMessage explain a Failed launch.
	ErrorClass   ErrorClass `json:"errorClass,omitempty"`
	ErrorMessage string     `json:"errorMessage,omitempty"`
	// NodeName and ProviderID link the instance to its Node once Running.
	NodeName   string `json:"nodeName,omitempty"`
	ProviderID string `json:"providerID,omitempty"`
	// LaunchTime is when the launch was requested.
	LaunchTime time.Time `json:"launchTime"`
	// Interruption is set once a spot interruption notice was issued.
	Interruption *InterruptionNotice `json:"interruption,omitempty"`
}

// Offering is something the cloud sells: an instance type in a zone with a
// lifecycle, at a price.
type Offering struct {
	InstanceType string    `json:"instanceType"`
	Zone         string    `json:"zone"`
	Lifecycle    Lifecycle `json:"lifecycle"`
	// PricePerHour in USD.
	PricePerHour float64 `json:"pricePerHour"`
	// Available is false while the offering has no capacity left.
	Available bool `json:"available"`
}

// InterruptionNotice announces that a spot instance will be reclaimed.
type InterruptionNotice struct {
	InstanceID string `json:"instanceID"`
	Group      string `json:"group"`
	NodeName   string `json:"nodeName"`
	// Issued is when the notice was given; TerminationTime when the
	// instance goes away (two minutes later on AWS).
	Issued          time.Time `json:"issued"`
	TerminationTime time.Time `json:"terminationTime"`
	// Reason is e.g. "capacity reclaimed" or "requested".
	Reason string `json:"reason"`
	// Handle, when set, is the provider's token for the message that
	// carried the notice (on AWS the SQS receipt handle). A provider that
	// sets it also implements InterruptionAcker and keeps redelivering the
	// notice until it is acknowledged.
	Handle string `json:"handle,omitempty"`
}

// InterruptionAcker is implemented by providers whose interruption notices
// come from a durable queue (AWS: SQS). The interruption handler calls
// AckInterruption once it has acted on a notice (node cordoned, drain
// started), and only then is the message deleted: a handler that crashes
// before acting sees the notice again after the queue's visibility timeout.
// Acknowledging is idempotent: a notice already acknowledged, or unknown
// (pruned), is not an error, and a redelivered message of an acknowledged
// notice is deleted without being returned as new work.
type InterruptionAcker interface {
	AckInterruption(ctx context.Context, n InterruptionNotice) error
}

// Errors that callers can test with errors.Is.
var (
	// ErrNotFound: the node group does not exist.
	ErrNotFound = errors.New("not found")
	// ErrOutOfRange: a target size outside [MinSize, MaxSize].
	ErrOutOfRange = errors.New("target size out of range")
)

// Provider is what Bosun needs from a cloud. Every method is safe for
// concurrent use. Errors other than the sentinels above are transient
// (network, throttling) and worth retrying.
type Provider interface {
	// NodeGroups lists every node group, sorted by ID.
	NodeGroups(ctx context.Context) ([]NodeGroup, error)

	// NodeGroup returns one group; ErrNotFound if there is none.
	NodeGroup(ctx context.Context, id string) (NodeGroup, error)

	// SetTargetSize sets the desired number of instances. It is
	// idempotent and returns at once: launches and terminations happen in
	// the background, and their outcome shows in Instances (a launch that
	// fails appears as a Failed instance with its ErrorClass, the way an
	// Auto Scaling group reports a failed activity). ErrOutOfRange if size
	// is outside [MinSize, MaxSize]; ErrNotFound for an unknown group.
	SetTargetSize(ctx context.Context, id string, size int) error

	// Instances returns the group's instances, including failed launches
	// of the current attempt, sorted by ID. ErrNotFound for an unknown
	// group.
	Instances(ctx context.Context, id string) ([]Instance, error)

	// DeleteInstances terminates the given instances of the group and
	// lowers its target size by the number actually terminated, never
	// below MinSize (ErrOutOfRange, and nothing is deleted, if it would
	// go below). Instances already gone are ignored, so a retry after a
	// partial failure is safe. ErrNotFound for an unknown group.
	DeleteInstances(ctx context.Context, id string, instanceIDs []string) error

	// Offerings lists every (instance type, zone, lifecycle) the groups
	// can use, with its price and whether it has capacity right now.
	Offerings(ctx context.Context) ([]Offering, error)

	// Interruptions returns the interruption notices issued at or after
	// since, oldest first. Pollers pass the Issued time of the last notice
	// they handled; a notice may be returned more than once, so handling
	// must be idempotent.
	Interruptions(ctx context.Context, since time.Time) ([]InterruptionNotice, error)
}
