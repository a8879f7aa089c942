package casgrpc

import (
	"context"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	pb "github.com/bosun-platform/bosun/internal/casgrpc/externalgrpcpb"
	"github.com/bosun-platform/bosun/internal/localcloud"
	"github.com/bosun-platform/bosun/internal/provider"
)

// PricingNodePrice implements the CloudProvider service: the hourly price
// of the node's offering (instance type, zone and lifecycle, from its labels
// or else from its instance) times the length of the period. A node that
// is not Bosun's, or whose offering the provider does not sell, is
// NotFound.
func (s *Server) PricingNodePrice(ctx context.Context, req *pb.PricingNodePriceRequest) (*pb.PricingNodePriceResponse, error) {
	node := req.GetNode()
	key, err := s.offeringOf(ctx, node)
	if err != nil {
		return nil, err
	}
	offs, err := s.p.Offerings(ctx)
	if err != nil {
		return nil, grpcError(err, "listing offerings")
	}
	for _, o := range offs {
		if o.InstanceType == key.InstanceType && o.Zone == key.Zone && o.Lifecycle == key.Lifecycle {
			start, end := period(req)
			hours := max(end.Sub(start).Hours(), 0)
			return &pb.PricingNodePriceResponse{Price: o.PricePerHour * hours}, nil
		}
	}
	return nil, status.Errorf(codes.NotFound, "node %s: no price for %s %s in %s", node.GetName(), key.Lifecycle, key.InstanceType, key.Zone)
}

// period returns the priced period from the current or, failing that, the
// legacy fields.
func period(req *pb.PricingNodePriceRequest) (time.Time, time.Time) {
	if req.GetStartTimestamp() != nil || req.GetEndTimestamp() != nil {
		return req.GetStartTimestamp().AsTime(), req.GetEndTimestamp().AsTime()
	}
	var start, end time.Time
	if t := req.GetStartTime(); t != nil {
		start = t.Time
	}
	if t := req.GetEndTime(); t != nil {
		end = t.Time
	}
	return start, end
}

// offeringOf finds what a node runs on: from the labels every Bosun node
// (and template node) carries, or from its instance.
func (s *Server) offeringOf(ctx context.Context, node *pb.ExternalGrpcNode) (localcloud.OfferingKey, error) {
	l := node.GetLabels()
	if t, z := l[localcloud.LabelInstanceType], l[localcloud.LabelZone]; t != "" && z != "" {
		lc := provider.OnDemand
		if l[localcloud.LabelCapacityType] == string(provider.Spot) || l[localcloud.LabelEKSCapacityType] == "SPOT" {
			lc = provider.Spot
		}
		return localcloud.OfferingKey{InstanceType: t, Zone: z, Lifecycle: lc}, nil
	}
	if pid := node.GetProviderID(); pid != "" {
		gid, err := s.groupOf(ctx, pid)
		if err != nil {
			return localcloud.OfferingKey{}, err
		}
		if gid != "" {
			ins, err := s.p.Instances(ctx, gid)
			if err != nil {
				return localcloud.OfferingKey{}, grpcError(err, "listing instances of node group %s", gid)
			}
			for _, in := range ins {
				if in.ProviderID == pid {
					return localcloud.OfferingKey{InstanceType: in.InstanceType, Zone: in.Zone, Lifecycle: in.Lifecycle}, nil
				}
			}
		}
	}
	return localcloud.OfferingKey{}, status.Errorf(codes.NotFound, "node %s (provider ID %q): not a node of this cloud", node.GetName(), node.GetProviderID())
}
