// Package agentapi is the agent's interface with the cluster as users and
// the fleet's lint see it: the annotations the downscaler reads, the
// names, labels and priority of the overprovisioner's pause pods, and the
// format of its rules ConfigMap. It is a leaf: it imports no controller,
// so `bosun lint` checks a fleet against the same definitions the agent
// acts on without linking the agent (L14, L24).
package agentapi
