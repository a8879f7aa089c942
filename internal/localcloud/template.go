package localcloud

import (
	corev1 "k8s.io/api/core/v1"

	"github.com/bosun-platform/bosun/internal/provider"
	"github.com/bosun-platform/bosun/internal/provider/nodeshape"
)

// TemplateNode is nodeshape.TemplateNode (the node shape is the
// provider's, not the simulator's; kept here for existing callers).
func TemplateNode(g provider.NodeGroup, name, instanceType, zone, region string) (*corev1.Node, error) {
	return nodeshape.TemplateNode(g, name, instanceType, zone, region)
}

// ZoneTemplates is nodeshape.ZoneTemplates.
func ZoneTemplates(region string) func(g provider.NodeGroup) ([]*corev1.Node, error) {
	return nodeshape.ZoneTemplates(region)
}
