package localfleet

// Unexported parts the external tests (which may import the agent's
// command line package; this package may not) exercise.
var (
	SelectClusters = selectClusters
	RenderClusters = renderClusters
	AgentFor       = agentFor
)
