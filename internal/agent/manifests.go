package agent

import (
	"github.com/bosun-platform/bosun/deploy"
	"github.com/bosun-platform/bosun/internal/agentcmd"
)

// DefaultManifestControllers are the controllers `bosun agent manifests`
// installs without --controllers (the shipped Deployment's): the
// downscaler alone, as the agent's own default.
func DefaultManifestControllers() []string { return agentcmd.DefaultControllers() }

// RenderManifests returns the agent's install manifests (deploy.RenderAgent)
// for o.Controllers (default DefaultManifestControllers), with the RBAC
// files the registration table names for them and no other. It refuses
// unknown controllers. The controllers that act on the cloud run in a pod
// against AWS only (deploy.RenderAgent checks --provider=aws and its flags
// in o.Args); the local cloud of `bosun up` serves the machine that runs
// it and no pod (no cloud.json, no $HOME there), so they are refused with
// it.
func RenderManifests(o deploy.AgentOptions) ([]byte, error) {
	if len(o.Controllers) == 0 {
		o.Controllers = DefaultManifestControllers()
	}
	files, err := RBACFiles(o.Controllers)
	if err != nil {
		return nil, err
	}
	o.RBAC = files
	o.Cloud = CloudControllers(o.Controllers)
	return deploy.RenderAgent(o)
}
