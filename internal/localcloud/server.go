package localcloud

import (
	"context"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"time"

	"github.com/bosun-platform/bosun/internal/provider"
	"github.com/bosun-platform/bosun/internal/provider/local/wire"
)

// The HTTP API's paths, error codes and bodies live in provider/local/wire
// (shared with the client); these names are kept for the server's code.
const (
	PathGroups        = wire.PathGroups
	PathGroup         = wire.PathGroup
	PathTarget        = wire.PathTarget
	PathInstances     = wire.PathInstances
	PathDelete        = wire.PathDelete
	PathOfferings     = wire.PathOfferings
	PathInterruptions = wire.PathInterruptions
	PathCapacity      = wire.PathCapacity
	PathInterrupt     = wire.PathInterrupt
	PathStatus        = wire.PathStatus
	CodeNotFound      = wire.CodeNotFound
	CodeOutOfRange    = wire.CodeOutOfRange
	CodeBadRequest    = wire.CodeBadRequest
	CodeInternal      = wire.CodeInternal
)

// Wire types (see provider/local/wire).
type (
	// APIError is wire.APIError.
	APIError = wire.APIError
	// TargetRequest is wire.TargetRequest.
	TargetRequest = wire.TargetRequest
	// DeleteRequest is wire.DeleteRequest.
	DeleteRequest = wire.DeleteRequest
	// CapacityRequest is wire.CapacityRequest.
	CapacityRequest = wire.CapacityRequest
	// InterruptRequest is wire.InterruptRequest.
	InterruptRequest = wire.InterruptRequest
	// OfferingKey is wire.OfferingKey.
	OfferingKey = wire.OfferingKey
	// CapacityLimit is wire.CapacityLimit.
	CapacityLimit = wire.CapacityLimit
	// GroupStatus is wire.GroupStatus.
	GroupStatus = wire.GroupStatus
	// Status is wire.Status.
	Status = wire.Status
	// OfferingUsage is wire.OfferingUsage.
	OfferingUsage = wire.OfferingUsage
)

// Handler returns the cloud's HTTP API; every request must carry
// "Authorization: Bearer <token>".
func (c *Cloud) Handler(token string) http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET "+PathGroups, func(w http.ResponseWriter, r *http.Request) {
		gs, err := c.NodeGroups(r.Context())
		reply(w, gs, err)
	})
	mux.HandleFunc("GET "+PathGroup, func(w http.ResponseWriter, r *http.Request) {
		g, err := c.NodeGroup(r.Context(), r.URL.Query().Get("id"))
		reply(w, g, err)
	})
	mux.HandleFunc("PUT "+PathTarget, func(w http.ResponseWriter, r *http.Request) {
		var req TargetRequest
		if !decode(w, r, &req) {
			return
		}
		reply(w, struct{}{}, c.SetTargetSize(r.Context(), r.URL.Query().Get("id"), req.Size))
	})
	mux.HandleFunc("GET "+PathInstances, func(w http.ResponseWriter, r *http.Request) {
		in, err := c.Instances(r.Context(), r.URL.Query().Get("id"))
		reply(w, in, err)
	})
	mux.HandleFunc("POST "+PathDelete, func(w http.ResponseWriter, r *http.Request) {
		var req DeleteRequest
		if !decode(w, r, &req) {
			return
		}
		reply(w, struct{}{}, c.DeleteInstances(r.Context(), r.URL.Query().Get("id"), req.InstanceIDs))
	})
	mux.HandleFunc("GET "+PathOfferings, func(w http.ResponseWriter, r *http.Request) {
		o, err := c.Offerings(r.Context())
		reply(w, o, err)
	})
	mux.HandleFunc("GET "+PathInterruptions, func(w http.ResponseWriter, r *http.Request) {
		var since time.Time
		if s := r.URL.Query().Get("since"); s != "" {
			var err error
			if since, err = time.Parse(time.RFC3339Nano, s); err != nil {
				writeError(w, http.StatusBadRequest, CodeBadRequest, fmt.Sprintf("since %q: expected an RFC 3339 time", s))
				return
			}
		}
		n, err := c.Interruptions(r.Context(), since)
		reply(w, n, err)
	})
	mux.HandleFunc("POST "+PathCapacity, func(w http.ResponseWriter, r *http.Request) {
		var req CapacityRequest
		if !decode(w, r, &req) {
			return
		}
		if req.Lifecycle != "" {
			if _, err := provider.ParseLifecycle(string(req.Lifecycle)); err != nil {
				writeError(w, http.StatusBadRequest, CodeBadRequest, err.Error())
				return
			}
		}
		if err := c.SetCapacity(req.OfferingKey, req.Limit, req.Clear); err != nil {
			writeError(w, http.StatusBadRequest, CodeBadRequest, err.Error())
			return
		}
		reply(w, c.Limits(), nil)
	})
	mux.HandleFunc("POST "+PathInterrupt, func(w http.ResponseWriter, r *http.Request) {
		var req InterruptRequest
		if !decode(w, r, &req) {
			return
		}
		n, err := c.Interrupt(req.Node, "requested")
		reply(w, n, err)
	})
	mux.HandleFunc("GET "+PathStatus, func(w http.ResponseWriter, r *http.Request) {
		reply(w, c.Status(r.Context()), nil)
	})
	infra := func(f func(r *http.Request, in provider.Infra) (any, error)) http.HandlerFunc {
		return func(w http.ResponseWriter, r *http.Request) {
			c.mu.Lock()
			in := c.infra
			c.mu.Unlock()
			if in == nil {
				writeError(w, http.StatusNotImplemented, wire.CodeNotServed, "this local cloud serves no infrastructure API (it runs without its clusters' control planes; bosun up serves it)")
				return
			}
			v, err := f(r, in)
			reply(w, v, err)
		}
	}
	spec := func(w http.ResponseWriter, r *http.Request) (provider.ClusterSpec, bool) {
		var s provider.ClusterSpec
		if !decode(w, r, &s) {
			return s, false
		}
		if s.ID == "" {
			writeError(w, http.StatusBadRequest, CodeBadRequest, "request body: id: expected the cluster ID")
			return s, false
		}
		return s, true
	}
	mux.HandleFunc("POST "+wire.PathInfraPlan, func(w http.ResponseWriter, r *http.Request) {
		s, ok := spec(w, r)
		if ok {
			infra(func(r *http.Request, in provider.Infra) (any, error) { return in.Plan(r.Context(), s) })(w, r)
		}
	})
	mux.HandleFunc("POST "+wire.PathInfraApply, func(w http.ResponseWriter, r *http.Request) {
		s, ok := spec(w, r)
		if ok {
			infra(func(r *http.Request, in provider.Infra) (any, error) { return in.Apply(r.Context(), s) })(w, r)
		}
	})
	mux.HandleFunc("GET "+wire.PathInfraControlPlane, infra(func(r *http.Request, in provider.Infra) (any, error) {
		return in.ControlPlane(r.Context(), r.URL.Query().Get("cluster"))
	}))
	want := []byte("Bearer " + token)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if subtle.ConstantTimeCompare([]byte(r.Header.Get("Authorization")), want) != 1 {
			writeError(w, http.StatusUnauthorized, "Unauthorized", "missing or wrong bearer token (see cloud.json in the bosun state directory)")
			return
		}
		mux.ServeHTTP(w, r)
	})
}

func decode(w http.ResponseWriter, r *http.Request, v any) bool {
	dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, 1<<20))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		writeError(w, http.StatusBadRequest, CodeBadRequest, "request body: "+err.Error())
		return false
	}
	return true
}

func reply(w http.ResponseWriter, v any, err error) {
	switch {
	case errors.Is(err, provider.ErrNotFound):
		writeError(w, http.StatusNotFound, CodeNotFound, err.Error())
	case errors.Is(err, provider.ErrOutOfRange):
		writeError(w, http.StatusConflict, CodeOutOfRange, err.Error())
	case errors.Is(err, provider.ErrUnsupported):
		writeError(w, http.StatusUnprocessableEntity, wire.CodeUnsupported, err.Error())
	case err != nil:
		writeError(w, http.StatusInternalServerError, CodeInternal, err.Error())
	default:
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(v)
	}
}

func writeError(w http.ResponseWriter, status int, code, msg string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(APIError{Code: code, Message: msg})
}

// ServeInfra makes the HTTP API serve in as the clusters' infrastructure
// (provider.Infra: plan and apply node groups, the control plane), so a
// standalone `bosun controller --local-cloud DIR` manages the node groups
// of local clusters as the controller inside `bosun up` does.
func (c *Cloud) ServeInfra(in provider.Infra) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.infra = in
}

// Serve serves the API on a free loopback port until ctx ends and returns
// the base URL once listening.
func (c *Cloud) Serve(ctx context.Context, token string) (string, <-chan error, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", nil, fmt.Errorf("listening for the local cloud API, %w", err)
	}
	srv := &http.Server{Handler: c.Handler(token), ReadHeaderTimeout: 5 * time.Second}
	done := make(chan error, 1)
	go func() {
		err := srv.Serve(l)
		if errors.Is(err, http.ErrServerClosed) {
			err = nil
		}
		done <- err
	}()
	go func() {
		<-ctx.Done()
		shut, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
		defer cancel()
		_ = srv.Shutdown(shut)
	}()
	return "http://" + l.Addr().String(), done, nil
}
