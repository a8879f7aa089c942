package agent

import (
	"fmt"
	"strings"

	"github.com/bosun-platform/bosun/deploy"
	"github.com/bosun-platform/bosun/internal/agentcmd"
)

// DefaultManifestControllers are the controllers `bosun agent manifests`
// installs without --controllers (the shipped Deployment's).
func DefaultManifestControllers() []string {
	return []string{agentcmd.ControllerDownscaler, agentcmd.ControllerJanitor}
}

// RenderManifests returns the agent's install manifests (deploy.RenderAgent)
// for o.Controllers (default DefaultManifestControllers), with the RBAC
// files the registration table names for them and no other. It refuses
// unknown controllers, and the controllers that act on the cloud: their
// one provider that a pod could reach, AWS, runs them from `bosun apply
// --infra`'s rendering, and the local cloud of `bosun up` serves the
// machine that runs it and no pod (no cloud.json, no $HOME there), so such
// a Deployment could not start.
func RenderManifests(o deploy.AgentOptions) ([]byte, error) {
	if len(o.Controllers) == 0 {
		o.Controllers = DefaultManifestControllers()
	}
	files, err := RBACFiles(o.Controllers)
	if err != nil {
		return nil, err
	}
	if cloud := CloudControllers(o.Controllers); len(cloud) > 0 {
		return nil, fmt.Errorf("controllers %s: they act on the cloud, and no provider runs in a pod yet: the local cloud (--provider local) is reached on the machine that runs `bosun up`; run them there with `bosun agent --kubeconfig KUBECONFIG --controllers %s --provider local --cluster ID` (in-cluster capacity controllers come with the AWS provider)",
			strings.Join(cloud, ", "), strings.Join(cloud, ","))
	}
	o.RBAC = files
	return deploy.RenderAgent(o)
}
