// Package casgrpc serves the cluster-autoscaler "externalgrpc" CloudProvider
// gRPC API over a provider.Provider, so that the real cluster-autoscaler
// (--cloud-provider=externalgrpc) can drive Bosun's node groups: the local
// cloud of `bosun up` today, the AWS provider later. One server serves one
// cluster, as one cluster-autoscaler manages one cluster.
//
// How the provider's view maps onto cluster-autoscaler's:
//   - A node group is a provider.NodeGroup of the cluster; its ID is the
//     provider's ("<cluster>/<pool>").
//   - An instance is reported under its provider ID (what kubelets put in
//     Node spec.providerID), which is how cluster-autoscaler matches
//     instances to Nodes. Pending instances are "creating", running ones
//     "running", terminating or interrupted ones "deleting".
//   - Capacity the group was asked for but has not launched is reported as
//     placeholder instances in state "creating", as cluster-autoscaler's own
//     AWS provider does, so that the reported instances add up to the target
//     size. When the group's latest launch failed, the failed attempt and the
//     placeholders carry its error: InsufficientInstanceCapacity and
//     VcpuLimitExceeded in the out-of-resources class, so cluster-autoscaler
//     backs the group off at once and falls back to another group, the rest
//     in the "other" class. Deleting a failed attempt or a placeholder lowers
//     the target size.
//
// docs/cluster-autoscaler.md explains how to point cluster-autoscaler at a
// server.
package casgrpc

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"net"
	"sort"
	"strings"
	"sync"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/status"

	pb "github.com/bosun-platform/bosun/internal/casgrpc/externalgrpcpb"
	"github.com/bosun-platform/bosun/internal/localcloud"
	"github.com/bosun-platform/bosun/internal/provider"
)

// Error classes of cluster-autoscaler's InstanceErrorInfo.
const (
	// ErrorClassOutOfResources: a stock-out or quota; cluster-autoscaler
	// backs the group off at once.
	ErrorClassOutOfResources = 1
	// ErrorClassOther: any other launch failure.
	ErrorClassOther = 99
)

// PlaceholderScheme prefixes the IDs of instances reported for capacity
// that has no machine: failed launch attempts and requested capacity not
// launched yet. No Node ever has such a provider ID.
const PlaceholderScheme = "bosun-unfulfilled://"

// Options configure a Server.
type Options struct {
	// Cluster limits the server to the node groups of one cluster (the
	// NodeGroup.Cluster field). Empty serves every group of the provider,
	// which is only right if the provider holds a single cluster.
	Cluster string
	// Region is the region label of template nodes: pass the cluster's
	// region (fleet.Cluster.Region), which is what the group's real nodes
	// carry. Empty derives it from the zone with RegionOf.
	Region string
	// TLS, if set, makes Serve use TLS (set ClientAuth and ClientCAs for
	// the mutual TLS cluster-autoscaler supports). Without it Serve speaks
	// plaintext, which is only safe on loopback: anyone who can connect can
	// create and delete nodes.
	TLS *tls.Config
	// Log receives a line for every scaling call (default slog.Default).
	Log *slog.Logger
}

// Server implements the CloudProvider gRPC service over a provider.
// The two methods it does not implement, PricingPodPrice and
// NodeGroupGetOptions, answer Unimplemented, as the protocol allows for
// optional methods (cluster-autoscaler then uses its flags for every
// group's options, and its price expander cannot be used).
type Server struct {
	pb.UnimplementedCloudProviderServer

	p    provider.Provider
	opts Options
	log  *slog.Logger

	// scale serialises the read-modify-write of target sizes:
	// cluster-autoscaler deletes nodes from several goroutines at once.
	scale sync.Mutex

	// index maps provider IDs to group IDs for NodeGroupForNode.
	mu      sync.Mutex
	index   map[string]string
	indexed time.Time
}

// indexMaxAge is how stale the provider-ID index may be before a lookup
// that misses rebuilds it.
const indexMaxAge = time.Second

// NewServer returns a server over p.
func NewServer(p provider.Provider, opts Options) *Server {
	log := opts.Log
	if log == nil {
		log = slog.Default()
	}
	return &Server{p: p, opts: opts, log: log.With("component", "cluster-autoscaler-grpc", "cluster", opts.Cluster)}
}

// Register adds the CloudProvider service to a gRPC server.
func (s *Server) Register(r grpc.ServiceRegistrar) {
	pb.RegisterCloudProviderServer(r, s)
}

// Serve listens on addr (host:port; port 0 picks a free one) and serves
// the CloudProvider API over p until ctx ends. It returns the address it
// listens on, to put in cluster-autoscaler's cloud config, and a channel
// that yields the server's outcome (nil after a clean stop) once it has
// stopped. When ctx ends, calls in flight get five seconds to finish.
func Serve(ctx context.Context, p provider.Provider, addr string, opts Options) (string, <-chan error, error) {
	lis, err := net.Listen("tcp", addr)
	if err != nil {
		return "", nil, fmt.Errorf("cluster-autoscaler gRPC server: listening on %s, %w", addr, err)
	}
	var sopts []grpc.ServerOption
	if opts.TLS != nil {
		sopts = append(sopts, grpc.Creds(credentials.NewTLS(opts.TLS)))
	}
	gs := grpc.NewServer(sopts...)
	NewServer(p, opts).Register(gs)
	done := make(chan error, 1)
	go func() {
		err := gs.Serve(lis)
		if err != nil {
			err = fmt.Errorf("cluster-autoscaler gRPC server, %w", err)
		}
		done <- err
	}()
	go func() {
		<-ctx.Done()
		stopped := make(chan struct{})
		go func() {
			gs.GracefulStop()
			close(stopped)
		}()
		select {
		case <-stopped:
		case <-time.After(5 * time.Second):
			gs.Stop()
		}
	}()
	return lis.Addr().String(), done, nil
}

// grpcError turns a provider error into a gRPC status.
func grpcError(err error, format string, args ...any) error {
	msg := fmt.Sprintf(format, args...) + ": " + err.Error()
	switch {
	case errors.Is(err, provider.ErrNotFound):
		return status.Error(codes.NotFound, msg)
	case errors.Is(err, provider.ErrOutOfRange):
		return status.Error(codes.OutOfRange, msg)
	case errors.Is(err, context.DeadlineExceeded):
		return status.Error(codes.DeadlineExceeded, msg)
	case errors.Is(err, context.Canceled):
		return status.Error(codes.Canceled, msg)
	}
	// The provider's contract: anything else is transient.
	return status.Error(codes.Unavailable, msg)
}

// mine reports whether the server serves group g.
func (s *Server) mine(g provider.NodeGroup) bool {
	return s.opts.Cluster == "" || g.Cluster == s.opts.Cluster
}

// groups lists the groups the server serves.
func (s *Server) groups(ctx context.Context) ([]provider.NodeGroup, error) {
	all, err := s.p.NodeGroups(ctx)
	if err != nil {
		return nil, grpcError(err, "listing node groups")
	}
	out := all[:0]
	for _, g := range all {
		if s.mine(g) {
			out = append(out, g)
		}
	}
	return out, nil
}

// group returns one group the server serves; NotFound for another
// cluster's.
func (s *Server) group(ctx context.Context, id string) (provider.NodeGroup, error) {
	if id == "" {
		return provider.NodeGroup{}, status.Error(codes.InvalidArgument, "node group id is empty")
	}
	g, err := s.p.NodeGroup(ctx, id)
	if err != nil {
		return provider.NodeGroup{}, grpcError(err, "node group %s", id)
	}
	if !s.mine(g) {
		return provider.NodeGroup{}, status.Errorf(codes.NotFound, "node group %s belongs to cluster %s, not %s", id, g.Cluster, s.opts.Cluster)
	}
	return g, nil
}

func groupMessage(g provider.NodeGroup) *pb.NodeGroup {
	return &pb.NodeGroup{
		Id:      g.ID,
		MinSize: int32(min(max(g.MinSize, 0), math.MaxInt32)),
		MaxSize: int32(min(max(g.MaxSize, 0), math.MaxInt32)),
		Debug: fmt.Sprintf("%s: %s %s in %s, size %d in [%d, %d], priority %d",
			g.ID, g.Lifecycle, strings.Join(g.InstanceTypes, ","), strings.Join(g.Zones, ","),
			g.TargetSize, g.MinSize, g.MaxSize, g.Priority),
	}
}

// NodeGroups implements the CloudProvider service.
func (s *Server) NodeGroups(ctx context.Context, _ *pb.NodeGroupsRequest) (*pb.NodeGroupsResponse, error) {
	gs, err := s.groups(ctx)
	if err != nil {
		return nil, err
	}
	resp := &pb.NodeGroupsResponse{}
	for _, g := range gs {
		resp.NodeGroups = append(resp.NodeGroups, groupMessage(g))
	}
	return resp, nil
}

// NodeGroupForNode implements the CloudProvider service: the group of the
// instance with the node's provider ID, or a group with an empty id for a
// node that no served group owns.
func (s *Server) NodeGroupForNode(ctx context.Context, req *pb.NodeGroupForNodeRequest) (*pb.NodeGroupForNodeResponse, error) {
	pid := req.GetNode().GetProviderID()
	if pid == "" {
		return &pb.NodeGroupForNodeResponse{NodeGroup: &pb.NodeGroup{}}, nil
	}
	gid, err := s.groupOf(ctx, pid)
	if err != nil {
		return nil, err
	}
	if gid == "" {
		return &pb.NodeGroupForNodeResponse{NodeGroup: &pb.NodeGroup{}}, nil
	}
	g, err := s.group(ctx, gid)
	if status.Code(err) == codes.NotFound {
		// The group went away since the index was built.
		return &pb.NodeGroupForNodeResponse{NodeGroup: &pb.NodeGroup{}}, nil
	}
	if err != nil {
		return nil, err
	}
	return &pb.NodeGroupForNodeResponse{NodeGroup: groupMessage(g)}, nil
}

// groupOf looks a provider ID up in the index, rebuilding the index on a
// miss unless it is fresh.
func (s *Server) groupOf(ctx context.Context, providerID string) (string, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if gid, ok := s.index[providerID]; ok {
		return gid, nil
	}
	if s.index != nil && time.Since(s.indexed) < indexMaxAge {
		return "", nil
	}
	gs, err := s.groups(ctx)
	if err != nil {
		return "", err
	}
	index := map[string]string{}
	for _, g := range gs {
		ins, err := s.p.Instances(ctx, g.ID)
		if errors.Is(err, provider.ErrNotFound) {
			continue
		}
		if err != nil {
			return "", grpcError(err, "listing instances of node group %s", g.ID)
		}
		for _, in := range ins {
			if in.ProviderID != "" {
				index[in.ProviderID] = g.ID
			}
		}
	}
	s.index, s.indexed = index, time.Now()
	return index[providerID], nil
}

// GPULabel implements the CloudProvider service: the local cloud's nodes
// expose no GPUs (the catalogue knows GPU counts; the nodes do not carry
// them yet), so there is no GPU label.
func (s *Server) GPULabel(context.Context, *pb.GPULabelRequest) (*pb.GPULabelResponse, error) {
	return &pb.GPULabelResponse{}, nil
}

// GetAvailableGPUTypes implements the CloudProvider service: none.
func (s *Server) GetAvailableGPUTypes(context.Context, *pb.GetAvailableGPUTypesRequest) (*pb.GetAvailableGPUTypesResponse, error) {
	return &pb.GetAvailableGPUTypesResponse{}, nil
}

// Cleanup implements the CloudProvider service; there is nothing to clean.
func (s *Server) Cleanup(context.Context, *pb.CleanupRequest) (*pb.CleanupResponse, error) {
	return &pb.CleanupResponse{}, nil
}

// Refresh implements the CloudProvider service: it drops the provider-ID
// index, so the loop that follows sees nodes launched since.
func (s *Server) Refresh(context.Context, *pb.RefreshRequest) (*pb.RefreshResponse, error) {
	s.mu.Lock()
	s.index = nil
	s.mu.Unlock()
	return &pb.RefreshResponse{}, nil
}

// NodeGroupTargetSize implements the CloudProvider service.
func (s *Server) NodeGroupTargetSize(ctx context.Context, req *pb.NodeGroupTargetSizeRequest) (*pb.NodeGroupTargetSizeResponse, error) {
	g, err := s.group(ctx, req.GetId())
	if err != nil {
		return nil, err
	}
	return &pb.NodeGroupTargetSizeResponse{TargetSize: int32(min(max(g.TargetSize, 0), math.MaxInt32))}, nil
}

// NodeGroupIncreaseSize implements the CloudProvider service: delta must
// be positive and the new target size at most the group's maximum
// (OutOfRange otherwise). It returns once the target size is set; the
// instances launch in the background.
func (s *Server) NodeGroupIncreaseSize(ctx context.Context, req *pb.NodeGroupIncreaseSizeRequest) (*pb.NodeGroupIncreaseSizeResponse, error) {
	if req.GetDelta() <= 0 {
		return nil, status.Errorf(codes.InvalidArgument, "node group %s: size increase %d: expected a positive delta", req.GetId(), req.GetDelta())
	}
	s.scale.Lock()
	defer s.scale.Unlock()
	g, err := s.group(ctx, req.GetId())
	if err != nil {
		return nil, err
	}
	size := g.TargetSize + int(req.GetDelta())
	if size > g.MaxSize {
		return nil, status.Errorf(codes.OutOfRange, "node group %s: increasing size %d by %d exceeds max size %d", g.ID, g.TargetSize, req.GetDelta(), g.MaxSize)
	}
	if err := s.p.SetTargetSize(ctx, g.ID, size); err != nil {
		return nil, grpcError(err, "node group %s: setting target size %d", g.ID, size)
	}
	s.log.Info("scale up", "group", g.ID, "from", g.TargetSize, "to", size)
	return &pb.NodeGroupIncreaseSizeResponse{}, nil
}

// NodeGroupDeleteNodes implements the CloudProvider service: launched
// instances are terminated through the provider (which lowers the target
// size); failed attempts and placeholders, also those of an earlier
// listing, lower the target size by at most what the group lacks and never
// below the minimum (the group keeps trying to reach its minimum).
// Instances already going away, and nodes annotated as the group's whose
// instance is gone (a retry), are ignored. Any other node is not in the
// group: an error, and so is terminating instances below the minimum size;
// in both cases nothing is deleted.
func (s *Server) NodeGroupDeleteNodes(ctx context.Context, req *pb.NodeGroupDeleteNodesRequest) (*pb.NodeGroupDeleteNodesResponse, error) {
	s.scale.Lock()
	defer s.scale.Unlock()
	g, v, err := s.view(ctx, req.GetId())
	if err != nil {
		return nil, err
	}
	byID := map[string]entry{}
	for _, e := range v.entries {
		byID[e.id] = e
	}
	var terminate []string
	cancelled := 0
	seen := map[string]bool{}
	for _, n := range req.GetNodes() {
		pid := n.GetProviderID()
		if seen[pid] {
			continue
		}
		seen[pid] = true
		e, ok := byID[pid]
		switch {
		case ok && e.kind == live:
			terminate = append(terminate, e.instanceID)
		case ok && e.kind == unfulfilled, !ok && strings.HasPrefix(pid, placeholderPrefix(g)):
			// A failed attempt or placeholder, maybe of an earlier
			// listing: the group's latest attempt may have replaced it.
			cancelled++
		case ok:
			// Already going away.
		case n.GetAnnotations()[localcloud.AnnotationNodeGroup] == g.ID:
			// The group's instance is gone already: a retry.
		default:
			return nil, status.Errorf(codes.InvalidArgument, "node group %s: node %q (provider ID %q) does not belong to it", g.ID, n.GetName(), pid)
		}
	}
	// Only what the group lacks can be cancelled.
	cancelled = min(cancelled, v.unfulfilled)
	if size := g.TargetSize - len(terminate); size < g.MinSize {
		return nil, status.Errorf(codes.FailedPrecondition, "node group %s: deleting %d nodes would take the target size from %d below the min size %d", g.ID, len(terminate), g.TargetSize, g.MinSize)
	}
	if len(terminate) > 0 {
		if err := s.p.DeleteInstances(ctx, g.ID, terminate); err != nil {
			return nil, grpcError(err, "node group %s: deleting instances %v", g.ID, terminate)
		}
		s.log.Info("delete nodes", "group", g.ID, "instances", terminate)
	}
	if cancelled > 0 {
		// DeleteInstances lowered the target already; read it again.
		cur, err := s.group(ctx, g.ID)
		if err != nil {
			return nil, err
		}
		size := max(cur.TargetSize-cancelled, cur.MinSize)
		if err := s.p.SetTargetSize(ctx, g.ID, size); err != nil {
			return nil, grpcError(err, "node group %s: setting target size %d", g.ID, size)
		}
		s.log.Info("cancel unfulfilled capacity", "group", g.ID, "count", cancelled, "from", cur.TargetSize, "to", size)
	}
	return &pb.NodeGroupDeleteNodesResponse{}, nil
}

// NodeGroupDecreaseTargetSize implements the CloudProvider service: delta
// must be negative, and the new target size may not go below the number of
// launched instances (pending or running): only capacity requested but not
// launched can be cancelled this way (FailedPrecondition otherwise).
func (s *Server) NodeGroupDecreaseTargetSize(ctx context.Context, req *pb.NodeGroupDecreaseTargetSizeRequest) (*pb.NodeGroupDecreaseTargetSizeResponse, error) {
	if req.GetDelta() >= 0 {
		return nil, status.Errorf(codes.InvalidArgument, "node group %s: target size decrease %d: expected a negative delta", req.GetId(), req.GetDelta())
	}
	s.scale.Lock()
	defer s.scale.Unlock()
	g, v, err := s.view(ctx, req.GetId())
	if err != nil {
		return nil, err
	}
	size := g.TargetSize + int(req.GetDelta())
	if size < v.live {
		return nil, status.Errorf(codes.FailedPrecondition, "node group %s: decreasing the target size from %d by %d would delete launched instances (%d)", g.ID, g.TargetSize, -req.GetDelta(), v.live)
	}
	if err := s.p.SetTargetSize(ctx, g.ID, size); err != nil {
		return nil, grpcError(err, "node group %s: setting target size %d", g.ID, size)
	}
	s.log.Info("decrease target size", "group", g.ID, "from", g.TargetSize, "to", size)
	return &pb.NodeGroupDecreaseTargetSizeResponse{}, nil
}

// NodeGroupNodes implements the CloudProvider service.
func (s *Server) NodeGroupNodes(ctx context.Context, req *pb.NodeGroupNodesRequest) (*pb.NodeGroupNodesResponse, error) {
	_, v, err := s.view(ctx, req.GetId())
	if err != nil {
		return nil, err
	}
	resp := &pb.NodeGroupNodesResponse{}
	for _, e := range v.entries {
		st := &pb.InstanceStatus{InstanceState: e.state}
		if e.err != nil {
			st.ErrorInfo = e.err
		}
		resp.Instances = append(resp.Instances, &pb.Instance{Id: e.id, Status: st})
	}
	return resp, nil
}

// kind says what deleting a reported instance means.
type kind int

const (
	// live: a launched instance holding a slot of the target size.
	live kind = iota
	// going: an instance already going away.
	going
	// unfulfilled: a failed launch or capacity not launched yet.
	unfulfilled
)

// entry is one instance as reported to cluster-autoscaler.
type entry struct {
	id         string
	instanceID string
	kind       kind
	state      pb.InstanceStatus_InstanceState
	err        *pb.InstanceErrorInfo
}

// groupView is a group's instances as cluster-autoscaler sees them.
type groupView struct {
	entries []entry
	// live counts the launched instances holding a slot of the target.
	live int
	// unfulfilled counts the failed attempts and placeholders listed.
	unfulfilled int
}

// view lists the group's instances the way cluster-autoscaler expects:
// launched ones, ones going away, then as many failed attempts and
// placeholders as the target size lacks.
func (s *Server) view(ctx context.Context, id string) (provider.NodeGroup, groupView, error) {
	g, err := s.group(ctx, id)
	if err != nil {
		return g, groupView{}, err
	}
	ins, err := s.p.Instances(ctx, g.ID)
	if err != nil {
		return g, groupView{}, grpcError(err, "listing instances of node group %s", g.ID)
	}
	var v groupView
	var failed []provider.Instance
	for _, in := range ins {
		switch {
		case in.State == provider.Failed:
			failed = append(failed, in)
		case in.State == provider.Terminating || in.Interruption != nil:
			v.entries = append(v.entries, entry{id: reportedID(g, in), instanceID: in.ID, kind: going, state: pb.InstanceStatus_instanceDeleting})
		case in.State == provider.Pending:
			v.live++
			v.entries = append(v.entries, entry{id: reportedID(g, in), instanceID: in.ID, kind: live, state: pb.InstanceStatus_instanceCreating})
		case in.State == provider.Running:
			v.live++
			v.entries = append(v.entries, entry{id: reportedID(g, in), instanceID: in.ID, kind: live, state: pb.InstanceStatus_instanceRunning})
		}
	}
	missing := g.TargetSize - v.live
	if missing <= 0 {
		// Failures of an attempt that is no longer wanted are history.
		return g, v, nil
	}
	v.unfulfilled = missing
	// The newest failures describe the group's current attempt.
	sort.SliceStable(failed, func(i, j int) bool { return failed[i].LaunchTime.After(failed[j].LaunchTime) })
	if len(failed) > missing {
		failed = failed[:missing]
	}
	var lastErr *pb.InstanceErrorInfo
	for i, in := range failed {
		e := errorInfo(in)
		if i == 0 {
			lastErr = e
		}
		v.entries = append(v.entries, entry{id: reportedID(g, in), instanceID: in.ID, kind: unfulfilled, state: pb.InstanceStatus_instanceCreating, err: e})
	}
	for i := 0; i < missing-len(failed); i++ {
		v.entries = append(v.entries, entry{
			id:   fmt.Sprintf("%splaceholder-%d", placeholderPrefix(g), i),
			kind: unfulfilled, state: pb.InstanceStatus_instanceCreating, err: lastErr,
		})
	}
	return g, v, nil
}

// reportedID is the instance's provider ID, or a placeholder ID for an
// instance without one (a failed launch).
func reportedID(g provider.NodeGroup, in provider.Instance) string {
	if in.ProviderID != "" {
		return in.ProviderID
	}
	return placeholderPrefix(g) + in.ID
}

// placeholderPrefix starts the IDs of the group's failed attempts and
// placeholders.
func placeholderPrefix(g provider.NodeGroup) string {
	return PlaceholderScheme + "/" + g.ID + "/"
}

// errorInfo classifies a failed launch for cluster-autoscaler.
func errorInfo(in provider.Instance) *pb.InstanceErrorInfo {
	code := string(in.ErrorClass)
	if code == "" {
		code = string(provider.OtherError)
	}
	class := int32(ErrorClassOther)
	switch in.ErrorClass {
	case provider.InsufficientCapacity, provider.QuotaExceeded:
		class = ErrorClassOutOfResources
	}
	msg := in.ErrorMessage
	if msg == "" {
		msg = "launch failed: " + code
	}
	return &pb.InstanceErrorInfo{ErrorCode: code, ErrorMessage: msg, InstanceErrorClass: class}
}
