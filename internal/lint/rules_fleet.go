package lint

import (
	"fmt"
	"sort"
	"strings"

	"github.com/bosun-platform/bosun/internal/fleet"
)

// L46: every production cluster has a test twin in its own account, where
// changes are tried first.
func checkTestTwin(ctx *fleetContext, r *Rule) {
	for _, c := range ctx.fleet.Clusters {
		if !strings.EqualFold(c.Environment, "production") {
			continue
		}
		twin := findTwin(ctx.fleet, c)
		switch {
		case c.TestTwin != "" && ctx.fleet.Cluster(c.TestTwin) == nil:
			ctx.cluster(r, c, 0, "testTwin %q is not a cluster of this fleet", c.TestTwin)
		case twin == nil:
			ctx.cluster(r, c, 0, "production cluster has no non-production twin (testTwin, or a cluster with provider %s and region %s)", c.Provider, c.Region)
		case strings.EqualFold(twin.Environment, "production"):
			ctx.cluster(r, c, 0, "testTwin %s is itself a production cluster", twin.ID)
		case twin.Account == c.Account:
			ctx.cluster(r, c, 0, "test twin %s is in the same account %s; each of the pair needs its own account", twin.ID, c.Account)
		}
	}
}

func findTwin(f *fleet.Fleet, c *fleet.Cluster) *fleet.Cluster {
	if c.TestTwin != "" {
		return f.Cluster(c.TestTwin)
	}
	for _, o := range f.Clusters {
		if !strings.EqualFold(o.Environment, "production") && o.Provider == c.Provider && o.Region == c.Region {
			return o
		}
	}
	return nil
}

// L49: clusters of one environment differ only in what the fleet allows,
// so what works on one works on all of them.
func checkEnvironmentDrift(ctx *fleetContext, r *Rule) {
	allowed := map[string]bool{}
	for _, k := range ctx.fleet.Settings.Lint.AllowedToDiffer {
		allowed[k] = true
	}
	byEnv := map[string][]*fleet.Cluster{}
	for _, c := range ctx.fleet.Clusters {
		byEnv[c.Environment] = append(byEnv[c.Environment], c)
	}
	envs := make([]string, 0, len(byEnv))
	for e := range byEnv {
		envs = append(envs, e)
	}
	sort.Strings(envs)
	for _, env := range envs {
		clusters := byEnv[env]
		if len(clusters) < 2 {
			continue
		}
		keys := map[string]bool{}
		for _, c := range clusters {
			for k := range ctx.items(c) {
				keys[k] = true
			}
		}
		sorted := make([]string, 0, len(keys))
		for k := range keys {
			if !allowed[k] {
				sorted = append(sorted, k)
			}
		}
		sort.Strings(sorted)
		for _, k := range sorted {
			reportDrift(ctx, r, clusters, k)
		}
		if !allowed["kubernetesVersion"] {
			reportVersionDrift(ctx, r, clusters)
		}
	}
}

// reportDrift reports config item k on every cluster whose own value
// differs from the first cluster's.
func reportDrift(ctx *fleetContext, r *Rule, clusters []*fleet.Cluster, k string) {
	ref := clusters[0]
	want, wantSet := ctx.items(ref)[k]
	for _, c := range clusters[1:] {
		got, set := ctx.items(c)[k]
		if got == want && set == wantSet {
			continue
		}
		line := c.ConfigItemLines[k]
		if line == 0 {
			line = c.Line
		}
		ctx.cluster(r, c, line, "config item %s is %s here but %s on %s (environment %s)", k, show(got, set), show(want, wantSet), ref.ID, c.Environment)
	}
}

func reportVersionDrift(ctx *fleetContext, r *Rule, clusters []*fleet.Cluster) {
	ref := clusters[0]
	for _, c := range clusters[1:] {
		if c.KubernetesVersion != ref.KubernetesVersion {
			ctx.findings = append(ctx.findings, Finding{Rule: r.Name, Lesson: r.Lesson(), Severity: SeverityWarning, Cluster: c.ID, File: c.File, Line: c.Line,
				Message: fmt.Sprintf("kubernetesVersion %s differs from %s on %s (environment %s)", c.KubernetesVersion, ref.KubernetesVersion, ref.ID, c.Environment),
				Hint:    "finish the upgrade across the environment"})
		}
	}
}

func show(v string, set bool) string {
	if !set {
		return "unset"
	}
	return fmt.Sprintf("%q", v)
}
