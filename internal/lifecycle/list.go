package lifecycle

import (
	"context"
	"fmt"
	"sync"

	"k8s.io/client-go/kubernetes"

	"github.com/bosun-platform/bosun/internal/fleet"
	"github.com/bosun-platform/bosun/internal/render"
)

// Listed is one cluster of the registry (the fleet directory, L40) with
// its live status, as `bosun clusters` shows it.
type Listed struct {
	ID          string `json:"id"`
	Environment string `json:"environment"`
	Provider    string `json:"provider"`
	Channel     string `json:"channel"`
	// Rendered is the version the fleet renders for the cluster now
	// (empty with RenderError).
	Rendered    string `json:"rendered,omitempty"`
	RenderError string `json:"renderError,omitempty"`
	// FileBlock is the cluster file's updateBlock.
	FileBlock string `json:"fileBlock,omitempty"`
	// Reachable is false when the cluster's API could not be read; Error
	// says why.
	Reachable bool   `json:"reachable"`
	Error     string `json:"error,omitempty"`
	// Recorded is false when the controller wrote no status yet.
	Recorded bool `json:"recorded"`
	// Status is the controller's last status; LiveBlock the reason of a
	// `bosun block`.
	Status    Status `json:"status"`
	LiveBlock string `json:"liveBlock,omitempty"`
}

// Phase is the phase to show: Unreachable when the API could not be read.
func (l Listed) Phase() Phase {
	switch {
	case !l.Reachable:
		return PhaseUnreachable
	case !l.Recorded:
		return "Unknown"
	}
	return l.Status.Phase
}

// List renders every cluster of the fleet and reads its live status, at
// most 8 clusters at once; a cluster that cannot be reached is listed as
// such.
func List(ctx context.Context, f *fleet.Fleet, connect func(cl *fleet.Cluster) (kubernetes.Interface, error)) []Listed {
	out := make([]Listed, len(f.Clusters))
	r, rerr := render.New(f)
	sem := make(chan struct{}, 8)
	var wg sync.WaitGroup
	for i, cl := range f.Clusters {
		l := Listed{ID: cl.ID, Environment: cl.Environment, Provider: cl.Provider, Channel: cl.Channel, FileBlock: cl.UpdateBlock}
		if rerr != nil {
			l.RenderError = rerr.Error()
		} else if res, err := r.Cluster(ctx, cl.ID); err != nil {
			l.RenderError = err.Error()
		} else {
			l.Rendered = res.Version
		}
		out[i] = l
		wg.Add(1)
		sem <- struct{}{}
		go func(l *Listed, cl *fleet.Cluster) {
			defer wg.Done()
			defer func() { <-sem }()
			cs, err := connect(cl)
			if err != nil {
				l.Error = err.Error()
				return
			}
			live, err := ReadStatus(ctx, cs)
			if err != nil {
				l.Error = err.Error()
				return
			}
			l.Reachable, l.Recorded, l.Status, l.LiveBlock = true, live.Found && live.Status.Cluster != "", live.Status, live.Block
			if live.Invalid != "" {
				l.Error = live.Invalid
			}
			if l.Recorded && live.Status.Cluster != cl.ID {
				l.Error = fmt.Sprintf("the status in this cluster belongs to cluster %q: wrong kubeconfig context?", live.Status.Cluster)
			}
		}(&out[i], cl)
	}
	wg.Wait()
	return out
}
