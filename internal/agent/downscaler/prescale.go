package downscaler

import (
	"fmt"
	"strconv"
	"strings"
	"time"

	autoscalingv2 "k8s.io/api/autoscaling/v2"

	"github.com/bosun-platform/bosun/internal/schedule"
)

// Peak pre-scaling (L33): known peaks are scaled up ahead of time and
// scaled down slowly afterwards.
//
//	downscaler/peak-schedule:      "Fri 16:00-20:00 Europe/Berlin"   when to hold the floor
//	downscaler/peak-replicas:      "12"                               the floor during the window
//	downscaler/peak-step:          "2"                                replicas removed per step afterwards (default: a quarter of the raise)
//	downscaler/peak-step-interval: "10m"                              time between steps (default 10m)
//
// The replicas from before the raise are kept in peak-original-replicas and
// the time of the last step in peak-stepped-at, on the object. An HPA
// targeting the workload inherits the annotations and has its minReplicas
// raised and stepped the same way, so the autoscaler does not undo the
// raise. Downtime wins over a peak: a workload held down is not raised.
const (
	AnnotationPeakSchedule     = "downscaler/peak-schedule"
	AnnotationPeakReplicas     = "downscaler/peak-replicas"
	AnnotationPeakStep         = "downscaler/peak-step"
	AnnotationPeakStepInterval = "downscaler/peak-step-interval"
	// AnnotationPeakOriginalReplicas is the state: replicas before the raise.
	AnnotationPeakOriginalReplicas = "downscaler/peak-original-replicas"
	// AnnotationPeakSteppedAt is the state: when the last step down happened.
	AnnotationPeakSteppedAt = "downscaler/peak-stepped-at"
)

// peakPolicy is the parsed peak configuration of one workload.
type peakPolicy struct {
	window   schedule.Schedule
	replicas int32
	step     int32 // 0: a quarter of the raise
	interval time.Duration
}

// peakFor reads the peak annotations from the most specific layer that has
// a peak-schedule; ok is false when there is none.
func peakFor(schedules *schedule.Cache, layers []map[string]string) (p peakPolicy, ok bool, err error) {
	for _, annos := range layers {
		expr, has := annos[AnnotationPeakSchedule]
		if !has {
			continue
		}
		if p.window, err = schedules.Parse(expr); err != nil {
			return p, false, fmt.Errorf("%s: %w", AnnotationPeakSchedule, err)
		}
		n, perr := strconv.ParseInt(strings.TrimSpace(annos[AnnotationPeakReplicas]), 10, 32)
		if perr != nil || n < 1 {
			return p, false, fmt.Errorf("%s %q: expected a positive integer", AnnotationPeakReplicas, annos[AnnotationPeakReplicas])
		}
		p.replicas = int32(n)
		if v, has := annos[AnnotationPeakStep]; has {
			s, perr := strconv.ParseInt(strings.TrimSpace(v), 10, 32)
			if perr != nil || s < 1 {
				return p, false, fmt.Errorf("%s %q: expected a positive integer", AnnotationPeakStep, v)
			}
			p.step = int32(s)
		}
		p.interval = 10 * time.Minute
		if v, has := annos[AnnotationPeakStepInterval]; has {
			d, perr := time.ParseDuration(strings.TrimSpace(v))
			if perr != nil || d <= 0 {
				return p, false, fmt.Errorf("%s %q: expected a positive duration such as 10m", AnnotationPeakStepInterval, v)
			}
			p.interval = d
		}
		return p, true, nil
	}
	return p, false, nil
}

// prescale raises the workload during its peak window and steps it back
// down afterwards. It runs only when the downscaler itself has nothing to
// do with the workload.
func (c *Controller) prescale(now time.Time, w *workload, layers []map[string]string) (change, bool) {
	p, ok, err := peakFor(c.decider.schedules, layers)
	if err != nil {
		c.warn(w, "InvalidAnnotation", err.Error())
		return change{}, false
	}
	annos := w.obj.GetAnnotations()
	origText, raised := annos[AnnotationPeakOriginalReplicas]
	if !ok && !raised {
		return change{}, false
	}
	if !ok {
		p.interval = 10 * time.Minute // annotations removed mid-step-down
	}
	floor := p.replicas
	if h, isHPA := w.obj.(*autoscalingv2.HorizontalPodAutoscaler); isHPA {
		floor = min(floor, h.Spec.MaxReplicas)
	}
	if ok && p.window.Matches(now) {
		if w.replicas >= floor {
			return change{}, false
		}
		set := map[string]*string{AnnotationPeakSteppedAt: nil}
		if !raised {
			set[AnnotationPeakOriginalReplicas] = ptr(strconv.Itoa(int(w.replicas)))
		}
		a := &Action{Object: w.key(), Verb: "PeakScaledUp", From: w.replicas, To: floor, Reason: "in peak window " + p.window.String()}
		return change{w: w, a: a, spec: w.spec(floor), annos: set}, true
	}
	if !raised {
		return change{}, false
	}
	orig, perr := strconv.ParseInt(origText, 10, 32)
	if perr != nil || orig < 0 {
		c.warn(w, "InvalidAnnotation", fmt.Sprintf("%s %q: expected a non-negative integer", AnnotationPeakOriginalReplicas, origText))
		return change{}, false
	}
	clear := map[string]*string{AnnotationPeakOriginalReplicas: nil, AnnotationPeakSteppedAt: nil}
	if w.replicas <= int32(orig) {
		// Back where it was (or scaled below by hand): forget the peak.
		a := &Action{Object: w.key(), Verb: "PeakDone", From: w.replicas, To: w.replicas, Reason: "at or below the pre-peak replicas"}
		return change{w: w, a: a, annos: clear}, true
	}
	if v, has := annos[AnnotationPeakSteppedAt]; has {
		if last, err := time.Parse(time.RFC3339, v); err == nil && now.Sub(last) < p.interval {
			return change{}, false
		}
	}
	step := p.step
	if step == 0 {
		step = max(1, (p.replicas-int32(orig)+3)/4)
	}
	next := max(int32(orig), w.replicas-step)
	set := map[string]*string{AnnotationPeakSteppedAt: ptr(now.UTC().Format(time.RFC3339))}
	if next == int32(orig) {
		set = clear
	}
	a := &Action{Object: w.key(), Verb: "PeakSteppedDown", From: w.replicas, To: next, Reason: fmt.Sprintf("after the peak, %d every %s", step, p.interval)}
	return change{w: w, a: a, spec: w.spec(next), annos: set}, true
}
