package externalgrpcpb_test

import (
	"fmt"
	"sort"
	"strings"
	"testing"

	"google.golang.org/protobuf/reflect/protoreflect"

	pb "github.com/bosun-platform/bosun/internal/casgrpc/externalgrpcpb"
)

// The wire contract with cluster-autoscaler: every field's number and type
// as cluster-autoscaler's externalgrpc.proto publishes them (both
// generations, see the .proto's header). A change here breaks real
// cluster-autoscalers; this test exists so that it cannot happen by
// accident when the .proto is edited.
var wantFields = map[string]string{
	"NodeGroup.id":                                                    "1 string",
	"NodeGroup.minSize":                                               "2 int32",
	"NodeGroup.maxSize":                                               "3 int32",
	"NodeGroup.debug":                                                 "4 string",
	"ExternalGrpcNode.providerID":                                     "1 string",
	"ExternalGrpcNode.name":                                           "2 string",
	"ExternalGrpcNode.labels":                                         "3 map<string,string>",
	"ExternalGrpcNode.annotations":                                    "4 map<string,string>",
	"NodeGroupsResponse.nodeGroups":                                   "1 repeated .NodeGroup",
	"NodeGroupForNodeRequest.node":                                    "1 .ExternalGrpcNode",
	"NodeGroupForNodeResponse.nodeGroup":                              "1 .NodeGroup",
	"PricingNodePriceRequest.node":                                    "1 .ExternalGrpcNode",
	"PricingNodePriceRequest.startTime":                               "2 k8s.io.apimachinery.pkg.apis.meta.v1.Time",
	"PricingNodePriceRequest.endTime":                                 "3 k8s.io.apimachinery.pkg.apis.meta.v1.Time",
	"PricingNodePriceRequest.startTimestamp":                          "4 google.protobuf.Timestamp",
	"PricingNodePriceRequest.endTimestamp":                            "5 google.protobuf.Timestamp",
	"PricingNodePriceResponse.price":                                  "1 double",
	"PricingPodPriceRequest.pod":                                      "1 k8s.io.api.core.v1.Pod",
	"PricingPodPriceRequest.startTime":                                "2 k8s.io.apimachinery.pkg.apis.meta.v1.Time",
	"PricingPodPriceRequest.endTime":                                  "3 k8s.io.apimachinery.pkg.apis.meta.v1.Time",
	"PricingPodPriceRequest.pod_bytes":                                "4 bytes",
	"PricingPodPriceRequest.startTimestamp":                           "5 google.protobuf.Timestamp",
	"PricingPodPriceRequest.endTimestamp":                             "6 google.protobuf.Timestamp",
	"PricingPodPriceResponse.price":                                   "1 double",
	"GPULabelResponse.label":                                          "1 string",
	"GetAvailableGPUTypesResponse.gpuTypes":                           "1 map<string,google.protobuf.Any>",
	"NodeGroupTargetSizeRequest.id":                                   "1 string",
	"NodeGroupTargetSizeResponse.targetSize":                          "1 int32",
	"NodeGroupIncreaseSizeRequest.delta":                              "1 int32",
	"NodeGroupIncreaseSizeRequest.id":                                 "2 string",
	"NodeGroupDeleteNodesRequest.nodes":                               "1 repeated .ExternalGrpcNode",
	"NodeGroupDeleteNodesRequest.id":                                  "2 string",
	"NodeGroupDecreaseTargetSizeRequest.delta":                        "1 int32",
	"NodeGroupDecreaseTargetSizeRequest.id":                           "2 string",
	"NodeGroupNodesRequest.id":                                        "1 string",
	"NodeGroupNodesResponse.instances":                                "1 repeated .Instance",
	"Instance.id":                                                     "1 string",
	"Instance.status":                                                 "2 .InstanceStatus",
	"InstanceStatus.instanceState":                                    "1 .InstanceStatus.InstanceState",
	"InstanceStatus.errorInfo":                                        "2 .InstanceErrorInfo",
	"InstanceErrorInfo.errorCode":                                     "1 string",
	"InstanceErrorInfo.errorMessage":                                  "2 string",
	"InstanceErrorInfo.instanceErrorClass":                            "3 int32",
	"NodeGroupTemplateNodeInfoRequest.id":                             "1 string",
	"NodeGroupTemplateNodeInfoResponse.nodeInfo":                      "1 k8s.io.api.core.v1.Node",
	"NodeGroupTemplateNodeInfoResponse.nodeBytes":                     "2 bytes",
	"NodeGroupTemplateNodeInfoResponse.resourceSliceBytes":            "3 repeated bytes",
	"NodeGroupAutoscalingOptions.scaleDownUtilizationThreshold":       "1 double",
	"NodeGroupAutoscalingOptions.scaleDownGpuUtilizationThreshold":    "2 double",
	"NodeGroupAutoscalingOptions.scaleDownUnneededTime":               "3 k8s.io.apimachinery.pkg.apis.meta.v1.Duration",
	"NodeGroupAutoscalingOptions.scaleDownUnreadyTime":                "4 k8s.io.apimachinery.pkg.apis.meta.v1.Duration",
	"NodeGroupAutoscalingOptions.MaxNodeProvisionTime":                "5 k8s.io.apimachinery.pkg.apis.meta.v1.Duration",
	"NodeGroupAutoscalingOptions.zeroOrMaxNodeScaling":                "6 bool",
	"NodeGroupAutoscalingOptions.ignoreDaemonSetsUtilization":         "7 bool",
	"NodeGroupAutoscalingOptions.scaleDownUnneededDuration":           "8 google.protobuf.Duration",
	"NodeGroupAutoscalingOptions.scaleDownUnreadyDuration":            "9 google.protobuf.Duration",
	"NodeGroupAutoscalingOptions.MaxNodeProvisionDuration":            "10 google.protobuf.Duration",
	"NodeGroupAutoscalingOptions.maxNodeStartupDuration":              "11 google.protobuf.Duration",
	"NodeGroupAutoscalingOptions.allowNonAtomicScaleUpToMax":          "12 bool",
	"NodeGroupAutoscalingOptionsRequest.id":                           "1 string",
	"NodeGroupAutoscalingOptionsRequest.defaults":                     "2 .NodeGroupAutoscalingOptions",
	"NodeGroupAutoscalingOptionsResponse.nodeGroupAutoscalingOptions": "1 .NodeGroupAutoscalingOptions",
}

// wantMethods: every RPC with its request and response messages.
var wantMethods = map[string]string{
	"NodeGroups":                  "NodeGroupsRequest NodeGroupsResponse",
	"NodeGroupForNode":            "NodeGroupForNodeRequest NodeGroupForNodeResponse",
	"PricingNodePrice":            "PricingNodePriceRequest PricingNodePriceResponse",
	"PricingPodPrice":             "PricingPodPriceRequest PricingPodPriceResponse",
	"GPULabel":                    "GPULabelRequest GPULabelResponse",
	"GetAvailableGPUTypes":        "GetAvailableGPUTypesRequest GetAvailableGPUTypesResponse",
	"Cleanup":                     "CleanupRequest CleanupResponse",
	"Refresh":                     "RefreshRequest RefreshResponse",
	"NodeGroupTargetSize":         "NodeGroupTargetSizeRequest NodeGroupTargetSizeResponse",
	"NodeGroupIncreaseSize":       "NodeGroupIncreaseSizeRequest NodeGroupIncreaseSizeResponse",
	"NodeGroupDeleteNodes":        "NodeGroupDeleteNodesRequest NodeGroupDeleteNodesResponse",
	"NodeGroupDecreaseTargetSize": "NodeGroupDecreaseTargetSizeRequest NodeGroupDecreaseTargetSizeResponse",
	"NodeGroupNodes":              "NodeGroupNodesRequest NodeGroupNodesResponse",
	"NodeGroupTemplateNodeInfo":   "NodeGroupTemplateNodeInfoRequest NodeGroupTemplateNodeInfoResponse",
	"NodeGroupGetOptions":         "NodeGroupAutoscalingOptionsRequest NodeGroupAutoscalingOptionsResponse",
}

const pkg = "clusterautoscaler.cloudprovider.v1.externalgrpc"

func typeName(f protoreflect.FieldDescriptor) string {
	var n string
	switch f.Kind() {
	case protoreflect.MessageKind:
		n = string(f.Message().FullName())
	case protoreflect.EnumKind:
		n = string(f.Enum().FullName())
	default:
		return f.Kind().String()
	}
	// Types of this package are written ".Name".
	return strings.Replace(n, pkg+".", ".", 1)
}

func describe(f protoreflect.FieldDescriptor) string {
	s := fmt.Sprintf("%d ", f.Number())
	switch {
	case f.IsMap():
		return s + "map<" + typeName(f.MapKey()) + "," + typeName(f.MapValue()) + ">"
	case f.IsList():
		s += "repeated "
	}
	return s + typeName(f)
}

func TestWireContract(t *testing.T) {
	fd := pb.File_externalgrpc_proto
	if fd.Package() != pkg {
		t.Fatalf("package %s, want %s", fd.Package(), pkg)
	}
	got := map[string]string{}
	ms := fd.Messages()
	for i := 0; i < ms.Len(); i++ {
		m := ms.Get(i)
		for j := 0; j < m.Fields().Len(); j++ {
			f := m.Fields().Get(j)
			got[string(m.Name())+"."+string(f.Name())] = describe(f)
		}
	}
	keys := map[string]bool{}
	for k := range got {
		keys[k] = true
	}
	for k := range wantFields {
		keys[k] = true
	}
	var sorted []string
	for k := range keys {
		sorted = append(sorted, k)
	}
	sort.Strings(sorted)
	for _, k := range sorted {
		if got[k] != wantFields[k] {
			t.Errorf("%s: %q, want %q", k, got[k], wantFields[k])
		}
	}

	st := fd.Enums().Len()
	if st != 0 {
		t.Errorf("%d top-level enums, want none", st)
	}
	state := (pb.InstanceStatus_unspecified).Descriptor()
	for name, num := range map[string]protoreflect.EnumNumber{"unspecified": 0, "instanceRunning": 1, "instanceCreating": 2, "instanceDeleting": 3} {
		v := state.Values().ByName(protoreflect.Name(name))
		if v == nil || v.Number() != num {
			t.Errorf("InstanceState %s: %v, want %d", name, v, num)
		}
	}
	if state.Values().Len() != 4 {
		t.Errorf("InstanceState has %d values, want 4", state.Values().Len())
	}

	svc := fd.Services().ByName("CloudProvider")
	if svc == nil || fd.Services().Len() != 1 {
		t.Fatal("want exactly the CloudProvider service")
	}
	if svc.Methods().Len() != len(wantMethods) {
		t.Errorf("%d methods, want %d", svc.Methods().Len(), len(wantMethods))
	}
	for name, io := range wantMethods {
		m := svc.Methods().ByName(protoreflect.Name(name))
		if m == nil {
			t.Errorf("method %s missing", name)
			continue
		}
		if got := string(m.Input().Name()) + " " + string(m.Output().Name()); got != io || m.IsStreamingClient() || m.IsStreamingServer() {
			t.Errorf("method %s: %s (streaming %v/%v), want unary %s", name, got, m.IsStreamingClient(), m.IsStreamingServer(), io)
		}
	}
}
