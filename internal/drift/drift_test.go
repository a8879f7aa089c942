package drift

import (
	"reflect"
	"testing"
)

func TestCompare(t *testing.T) {
	clusters := []Cluster{
		{Cluster: "prod-a", Environment: "production", ServerVersion: "v1.33.4", Revision: "r1",
			Images: map[string]string{"Deployment kube-system/dns": "dns=coredns:1.12", "Deployment apps/web": "web=web:2"}},
		{Cluster: "prod-b", Environment: "production", ServerVersion: "v1.33.4", Revision: "r1",
			Images: map[string]string{"Deployment kube-system/dns": "dns=coredns:1.11"}},
		{Cluster: "prod-c", Environment: "production", Error: "unreachable"},
		{Cluster: "stage-a", Environment: "staging", ServerVersion: "v1.33.4", Revision: "r2",
			Images: map[string]string{"Deployment kube-system/dns": "dns=coredns:1.12"}},
		{Cluster: "test-a", Environment: "test", ServerVersion: "v1.33.4", Revision: "r1"},
		{Cluster: "test-b", Environment: "test", ServerVersion: "v1.34.1", Revision: "r2"},
	}
	got := Compare(clusters)
	want := []Difference{
		{Environment: "production", What: "images of Deployment kube-system/dns", Values: map[string]string{"prod-a": "dns=coredns:1.12", "prod-b": "dns=coredns:1.11"}},
		{Environment: "test", What: "server version", Values: map[string]string{"test-a": "v1.33.4", "test-b": "v1.34.1"}},
		{Environment: "test", What: "revision", Values: map[string]string{"test-a": "r1", "test-b": "r2"}},
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("Compare:\n got %+v\nwant %+v", got, want)
	}
	// A workload rendered for one cluster only, the unreachable cluster
	// and a lone staging cluster are no difference.
	rep := Report{Clusters: clusters[3:4]}
	if rep.Drifted() {
		t.Error("a lone clean cluster drifted")
	}
	if !(Report{Clusters: clusters[2:3]}).Drifted() {
		t.Error("an unreachable cluster is not reported as drift")
	}
}
