package downscaler

import (
	"fmt"
	"regexp"
	"strconv"
	"strings"
	"time"

	"k8s.io/apimachinery/pkg/labels"

	"github.com/bosun-platform/bosun/internal/agentapi"
	"github.com/bosun-platform/bosun/internal/schedule"
)

// Annotation keys, defined in agentapi (the leaf that lint reads too).
const (
	AnnotationUptime              = agentapi.DownscalerUptime
	AnnotationDowntime            = agentapi.DownscalerDowntime
	AnnotationUpscalePeriod       = agentapi.DownscalerUpscalePeriod
	AnnotationDownscalePeriod     = agentapi.DownscalerDownscalePeriod
	AnnotationExclude             = agentapi.DownscalerExclude
	AnnotationExcludeUntil        = agentapi.DownscalerExcludeUntil
	AnnotationForceUptime         = agentapi.DownscalerForceUptime
	AnnotationForceDowntime       = agentapi.DownscalerForceDowntime
	AnnotationDowntimeReplicas    = agentapi.DownscalerDowntimeReplicas
	AnnotationGracePeriod         = agentapi.DownscalerGracePeriod
	AnnotationOriginalReplicas    = agentapi.DownscalerOriginalReplicas
	AnnotationOriginalMaxReplicas = agentapi.DownscalerOriginalMaxReplicas
)

// Defaults are the cluster-wide settings from flags; annotations on
// namespaces and workloads override them (workload > namespace > flags).
type Defaults struct {
	// Uptime and Downtime are the default windows ("always" and "never"
	// when unset; env DEFAULT_UPTIME and DEFAULT_DOWNTIME).
	Uptime, Downtime string
	// UpscalePeriod and DownscalePeriod, when set, select period mode.
	UpscalePeriod, DownscalePeriod string
	// DowntimeReplicas is the replica count during downtime (default 0).
	DowntimeReplicas int32
	// GracePeriod protects workloads younger than this from downscaling.
	GracePeriod time.Duration
	// ExcludeNamespaces are never touched (except to restore).
	ExcludeNamespaces []string
	// ExcludeNames excludes workloads whose name matches, when set.
	ExcludeNames *regexp.Regexp
	// IncludeSelector, when set, limits the downscaler to workloads whose
	// labels match.
	IncludeSelector labels.Selector
}

// Intent is what a workload should be now.
type Intent int

const (
	// Leave means: do not touch the workload.
	Leave Intent = iota
	// Down means: scale to the downtime replicas, remembering the original.
	Down
	// Up means: restore the original replicas if the downscaler took them.
	Up
)

func (i Intent) String() string {
	return [...]string{"leave", "down", "up"}[i]
}

// Decision is the verdict for one workload.
type Decision struct {
	Intent Intent
	// Reason explains the verdict in a phrase for logs and events.
	Reason string
	// DowntimeReplicas is the replica count to use when scaling down.
	DowntimeReplicas int32
	// Excluded means the workload is out of scope; Up then only restores.
	Excluded bool
}

// Input is what Decide looks at.
type Input struct {
	// Now is the injected clock's time.
	Now time.Time
	// Created is the workload's creation time.
	Created time.Time
	// Name, Namespace and Labels identify the workload.
	Name, Namespace string
	Labels          map[string]string
	// Layers are the annotation maps, most specific first (workload, then
	// for an HPA its target, then namespace).
	Layers []map[string]string
}

// Decide computes the intent for a workload. An error means a value could
// not be parsed; the caller must then do nothing and report a warning
// (a controller never acts on what it cannot parse).
func Decide(d Defaults, in Input) (Decision, error) {
	return newDecider(d).decide(in, in.Layers)
}

// schedulesCached bounds the parsed schedules a decider keeps: far more
// than the distinct values a cluster has, few enough to be small.
const schedulesCached = 4096

// decider is Decide for many workloads with the same defaults: the flag
// layer is built once and each distinct schedule parsed once, so that a
// pass over an unchanged cluster allocates nothing per workload.
type decider struct {
	d Defaults
	// flags are the defaults as the least specific annotation layer.
	flags     map[string]string
	schedules *schedule.Cache
}

func newDecider(d Defaults) *decider {
	return &decider{d: d, flags: d.asAnnotations(), schedules: schedule.NewCache(schedulesCached)}
}

// maxLayers is the layers a decision takes without allocating: workload,
// target, namespace and flags, and room to spare.
const maxLayers = 6

// decide is Decide with the decider's defaults, for the given layers (in's
// are not read). They are passed apart from in, so that a caller's layers
// on its stack stay there: escape analysis follows in as a whole, and its
// name escapes into the exclude pattern's matcher.
func (p *decider) decide(in Input, wl []map[string]string) (Decision, error) {
	var buf [maxLayers]map[string]string
	layers := append(append(buf[:0], wl...), p.flags)

	dr, err := lookupInt(layers, AnnotationDowntimeReplicas)
	if err != nil {
		return Decision{}, err
	}
	out := Decision{DowntimeReplicas: dr}

	if reason, excluded, err := exclusion(p.d, in.Name, in.Namespace, in.Labels, in.Now, layers); err != nil {
		return Decision{}, err
	} else if excluded {
		out.Intent, out.Reason, out.Excluded = Up, reason, true
		return out, nil
	}

	if intent, reason, ok, err := p.forced(layers, in.Now); err != nil {
		return Decision{}, err
	} else if ok {
		out.Intent, out.Reason = intent, reason
		return out, nil
	}

	intent, reason, err := p.scheduled(layers, in.Now)
	if err != nil {
		return Decision{}, err
	}
	out.Intent, out.Reason = intent, reason
	if intent == Down {
		grace, err := lookupDuration(layers, AnnotationGracePeriod)
		if err != nil {
			return Decision{}, err
		}
		if grace > 0 && in.Now.Sub(in.Created) < grace {
			out.Intent, out.Reason = Leave, fmt.Sprintf("created %s ago, within the grace period of %s", in.Now.Sub(in.Created).Round(time.Second), grace)
		}
	}
	return out, nil
}

func (d Defaults) asAnnotations() map[string]string {
	m := map[string]string{
		AnnotationUptime:           orDefault(d.Uptime, "always"),
		AnnotationDowntime:         orDefault(d.Downtime, "never"),
		AnnotationDowntimeReplicas: strconv.Itoa(int(d.DowntimeReplicas)),
		AnnotationGracePeriod:      d.GracePeriod.String(),
	}
	if d.UpscalePeriod != "" || d.DownscalePeriod != "" {
		// Period mode at flag level replaces the default windows.
		delete(m, AnnotationUptime)
		delete(m, AnnotationDowntime)
		m[AnnotationUpscalePeriod] = orDefault(d.UpscalePeriod, "never")
		m[AnnotationDownscalePeriod] = orDefault(d.DownscalePeriod, "never")
	}
	return m
}

func orDefault(s, def string) string {
	if strings.TrimSpace(s) == "" {
		return def
	}
	return s
}

// exclusion reports whether the workload is out of scope and why.
// It takes the fields it needs rather than the Input, whose layers would
// otherwise escape to the heap with the labels (a selector is an
// interface).
func exclusion(d Defaults, name, namespace string, lbls map[string]string, now time.Time, layers []map[string]string) (string, bool, error) {
	for _, ns := range d.ExcludeNamespaces {
		if ns == namespace {
			return "namespace " + ns + " is excluded by flag", true, nil
		}
	}
	if d.ExcludeNames != nil && d.ExcludeNames.MatchString(name) {
		return "name matches the exclude pattern", true, nil
	}
	if d.IncludeSelector != nil && !d.IncludeSelector.Matches(labels.Set(lbls)) {
		return "labels do not match the include selector", true, nil
	}
	for _, l := range layers {
		if v, ok := l[AnnotationExclude]; ok {
			b, err := strconv.ParseBool(strings.TrimSpace(v))
			if err != nil {
				return "", false, fmt.Errorf("%s %q: expected true or false", AnnotationExclude, v)
			}
			if b {
				return AnnotationExclude + " is true", true, nil
			}
			break
		}
	}
	for _, l := range layers {
		if v, ok := l[AnnotationExcludeUntil]; ok {
			until, err := schedule.ParseInstant(v)
			if err != nil {
				return "", false, fmt.Errorf("%s: %w", AnnotationExcludeUntil, err)
			}
			if now.Before(until) {
				return "excluded until " + until.Format(time.RFC3339), true, nil
			}
			break
		}
	}
	return "", false, nil
}

// forced looks for force-downtime/force-uptime at the most specific layer
// that sets either; both at once is a contradiction and an error. Values
// are true/false or a schedule during which the force applies.
func (p *decider) forced(layers []map[string]string, now time.Time) (Intent, string, bool, error) {
	for _, l := range layers {
		down, hasDown := l[AnnotationForceDowntime]
		up, hasUp := l[AnnotationForceUptime]
		if !hasDown && !hasUp {
			continue
		}
		isDown, err := p.boolOrSchedule(AnnotationForceDowntime, down, hasDown, now)
		if err != nil {
			return Leave, "", false, err
		}
		isUp, err := p.boolOrSchedule(AnnotationForceUptime, up, hasUp, now)
		if err != nil {
			return Leave, "", false, err
		}
		switch {
		case isDown && isUp:
			return Leave, "", false, fmt.Errorf("%s and %s both apply now", AnnotationForceDowntime, AnnotationForceUptime)
		case isDown:
			return Down, AnnotationForceDowntime, true, nil
		case isUp:
			return Up, AnnotationForceUptime, true, nil
		}
		return Leave, "", false, nil
	}
	return Leave, "", false, nil
}

func (p *decider) boolOrSchedule(key, v string, set bool, now time.Time) (bool, error) {
	if !set {
		return false, nil
	}
	if b, err := strconv.ParseBool(strings.TrimSpace(v)); err == nil {
		return b, nil
	}
	s, err := p.schedules.Parse(v)
	if err != nil {
		return false, fmt.Errorf("%s: expected true, false or a schedule: %w", key, err)
	}
	return s.Matches(now), nil
}

// scheduled applies the windows of the most specific layer that sets any of
// uptime, downtime, upscale-period or downscale-period; the pair is taken
// from one layer so that a workload's "uptime: always" is not combined with
// its namespace's downtime.
//
// Uptime mode: the workload is up when uptime matches and downtime does not;
// where both match, downtime wins (an explicit request to be down).
// Period mode: down during downscale-period, up during upscale-period, left
// alone outside both; overlapping periods are left alone.
func (p *decider) scheduled(layers []map[string]string, now time.Time) (Intent, string, error) {
	for _, l := range layers {
		uptime, hasUp := l[AnnotationUptime]
		downtime, hasDown := l[AnnotationDowntime]
		upP, hasUpP := l[AnnotationUpscalePeriod]
		downP, hasDownP := l[AnnotationDownscalePeriod]
		if !hasUp && !hasDown && !hasUpP && !hasDownP {
			continue
		}
		if (hasUp || hasDown) && (hasUpP || hasDownP) {
			return Leave, "", fmt.Errorf("uptime/downtime and upscale/downscale periods set together on the same object")
		}
		if hasUpP || hasDownP {
			inUp, err := p.matches(AnnotationUpscalePeriod, upP, hasUpP, now)
			if err != nil {
				return Leave, "", err
			}
			inDown, err := p.matches(AnnotationDownscalePeriod, downP, hasDownP, now)
			if err != nil {
				return Leave, "", err
			}
			switch {
			case inDown && !inUp:
				return Down, "in downscale period", nil
			case inUp && !inDown:
				return Up, "in upscale period", nil
			}
			return Leave, "outside the periods", nil
		}
		inDown, err := p.matches(AnnotationDowntime, downtime, hasDown, now)
		if err != nil {
			return Leave, "", err
		}
		inUp := true
		if hasUp {
			if inUp, err = p.matches(AnnotationUptime, uptime, true, now); err != nil {
				return Leave, "", err
			}
		}
		switch {
		case inDown:
			return Down, "in downtime " + downtime, nil
		case !inUp:
			return Down, "outside uptime " + uptime, nil
		}
		return Up, "in uptime", nil
	}
	return Up, "no schedule", nil
}

func (p *decider) matches(key, expr string, set bool, now time.Time) (bool, error) {
	if !set {
		return false, nil
	}
	s, err := p.schedules.Parse(expr)
	if err != nil {
		return false, fmt.Errorf("%s: %w", key, err)
	}
	return s.Matches(now), nil
}

func lookupInt(layers []map[string]string, key string) (int32, error) {
	for _, l := range layers {
		if v, ok := l[key]; ok {
			n, err := strconv.ParseInt(strings.TrimSpace(v), 10, 32)
			if err != nil || n < 0 {
				return 0, fmt.Errorf("%s %q: expected a non-negative integer", key, v)
			}
			return int32(n), nil
		}
	}
	return 0, nil
}

func lookupDuration(layers []map[string]string, key string) (time.Duration, error) {
	for _, l := range layers {
		if v, ok := l[key]; ok {
			dur, err := time.ParseDuration(strings.TrimSpace(v))
			if err != nil || dur < 0 {
				return 0, fmt.Errorf("%s %q: expected a duration such as 15m", key, v)
			}
			return dur, nil
		}
	}
	return 0, nil
}
