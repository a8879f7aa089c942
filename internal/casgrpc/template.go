package casgrpc

import (
	"context"
	"fmt"
	"strings"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	corev1 "k8s.io/api/core/v1"

	pb "github.com/bosun-platform/bosun/internal/casgrpc/externalgrpcpb"
	"github.com/bosun-platform/bosun/internal/localcloud"
	"github.com/bosun-platform/bosun/internal/provider"
)

// TemplateNode returns the Node cluster-autoscaler should expect from a
// scale-up of g: one of the group's first instance type in its first zone,
// with the labels, taints, capacity and allocatable a local node of the
// group gets, and a Ready condition. region is the region label; empty
// derives it from the zone.
func TemplateNode(g provider.NodeGroup, region string) (*corev1.Node, error) {
	if len(g.InstanceTypes) == 0 || len(g.Zones) == 0 {
		return nil, fmt.Errorf("node group %s has no instance type or no zone", g.ID)
	}
	zone := g.Zones[0]
	if region == "" {
		region = RegionOf(zone)
	}
	name := "template-" + strings.ReplaceAll(g.ID, "/", "-")
	node, err := localcloud.TemplateNode(g, name, g.InstanceTypes[0], zone, region)
	if err != nil {
		return nil, fmt.Errorf("template node of group %s, %w", g.ID, err)
	}
	node.Status.Conditions = []corev1.NodeCondition{{
		Type: corev1.NodeReady, Status: corev1.ConditionTrue,
		Reason: "KubeletReady", Message: "template node of " + g.ID,
	}}
	node.Status.Phase = corev1.NodeRunning
	return node, nil
}

// RegionOf derives a region from an availability zone name: an AWS zone
// loses its zone letter (eu-central-1a gives eu-central-1), a zone named
// like the local cloud's its last dash-separated part (local-a gives
// local). Pass the cluster's region in Options.Region instead where it is
// known.
func RegionOf(zone string) string {
	trimmed := strings.TrimRight(zone, "abcdefghijklmnopqrstuvwxyz")
	if trimmed != zone && trimmed != "" && trimmed[len(trimmed)-1] >= '0' && trimmed[len(trimmed)-1] <= '9' {
		return trimmed
	}
	if i := strings.LastIndex(zone, "-"); i > 0 {
		return zone[:i]
	}
	return zone
}

// NodeGroupTemplateNodeInfo implements the CloudProvider service. The Node
// goes both as a message (older cluster-autoscalers) and as bytes (newer
// ones).
func (s *Server) NodeGroupTemplateNodeInfo(ctx context.Context, req *pb.NodeGroupTemplateNodeInfoRequest) (*pb.NodeGroupTemplateNodeInfoResponse, error) {
	g, err := s.group(ctx, req.GetId())
	if err != nil {
		return nil, err
	}
	node, err := TemplateNode(g, s.opts.Region)
	if err != nil {
		return nil, status.Error(codes.FailedPrecondition, err.Error())
	}
	raw, err := node.Marshal()
	if err != nil {
		return nil, status.Errorf(codes.Internal, "encoding the template node of group %s: %v", g.ID, err)
	}
	return &pb.NodeGroupTemplateNodeInfoResponse{NodeInfo: node, NodeBytes: raw}, nil
}
