package render

import (
	"encoding/json"
	"fmt"
	"io"

	"github.com/bosun-platform/bosun/internal/fleet"
)

// hashSpec writes the cluster's spec to the version hash: everything a
// cluster file declares that is applied to the cluster or its cloud (node
// pools and their sizes, Kubernetes version, channel, region, account,
// merged config items), so that changing a pool's maxSize or the
// kubernetesVersion changes the version even when no manifest uses it.
// Where things are declared (lines, file), lint suppressions and an update
// block, which change nothing in the cluster, are left out.
func hashSpec(w io.Writer, c *fleet.Cluster) {
	if c == nil {
		return
	}
	spec := *c
	spec.File, spec.Line, spec.ConfigItemLines = "", 0, nil
	spec.Lint = fleet.ClusterLint{}
	// An update block stops the lifecycle manager; it is not part of what
	// the cluster should be.
	spec.UpdateBlock = ""
	spec.NodePools = make([]fleet.NodePool, len(c.NodePools))
	for i, p := range c.NodePools {
		p.Line = 0
		spec.NodePools[i] = p
	}
	// encoding/json sorts map keys, so equal specs encode equally.
	data, err := json.Marshal(spec)
	if err != nil {
		// Strings, ints and maps of strings always encode; should that
		// ever change, the %+v form still separates different specs.
		data = []byte(fmt.Sprintf("%+v", spec))
	}
	fmt.Fprintf(w, "cluster %d\n%s\n", len(data), data)
}
