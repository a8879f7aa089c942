//go:build integration

package aws_test

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/autoscaling"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	ec2types "github.com/aws/aws-sdk-go-v2/service/ec2/types"

	"github.com/bosun-platform/bosun/internal/fleet"
	"github.com/bosun-platform/bosun/internal/provider"
	bosunaws "github.com/bosun-platform/bosun/internal/provider/aws"
	"github.com/bosun-platform/bosun/internal/provider/aws/awstest"
)

func fleetCluster(t *testing.T, moto *awstest.Moto) *fleet.Cluster {
	t.Helper()
	ec := ec2.NewFromConfig(awstest.Config(), func(o *ec2.Options) { o.BaseEndpoint = aws.String(moto.URL) })
	out, err := ec.DescribeSubnets(context.Background(), &ec2.DescribeSubnetsInput{Filters: []ec2types.Filter{{Name: aws.String("default-for-az"), Values: []string{"true"}}}})
	if err != nil {
		t.Fatal(err)
	}
	var subnets []string
	for _, s := range out.Subnets {
		if z := aws.ToString(s.AvailabilityZone); z == "us-east-1a" || z == "us-east-1b" {
			subnets = append(subnets, aws.ToString(s.SubnetId))
		}
	}
	if len(subnets) != 2 {
		t.Fatalf("moto's default subnets in us-east-1a/b: %v", subnets)
	}
	return &fleet.Cluster{
		ID: "prod", Provider: "aws", Region: awstest.Region, Account: "123456789012", KubernetesVersion: "1.32",
		ConfigItems: map[string]string{
			bosunaws.ConfigSubnets: strings.Join(subnets, ","), bosunaws.ConfigClusterRole: "arn:aws:iam::123456789012:role/eks-cluster",
			bosunaws.ConfigNodeInstanceProfile: "arn:aws:iam::123456789012:instance-profile/bosun-nodes", provider.ConfigNodeImage: "ami-12c6146b",
		},
		NodePools: []fleet.NodePool{
			{Name: "spot", Role: "worker", ApplicationGroup: "default", Lifecycle: "spot", InstanceTypes: []string{"m5.xlarge", "m5a.xlarge"}, Zones: []string{"us-east-1a", "us-east-1b"}, MaxSize: 10, Priority: 40},
			{Name: "od", Role: "worker", ApplicationGroup: "default", Lifecycle: "on-demand", InstanceTypes: []string{"m6i.xlarge"}, Zones: []string{"us-east-1a"}, MinSize: 1, MaxSize: 5, Priority: 20},
		},
	}
}

func count(changes []provider.Change, action provider.Action, resource string) int {
	n := 0
	for _, c := range changes {
		if c.Action == action && c.Resource == resource {
			n++
		}
	}
	return n
}

func TestIntegrationMotoInfra(t *testing.T) {
	moto := awstest.Get(t)
	moto.Reset(t)
	ctx := context.Background()
	infra := bosunaws.NewInfra(awstest.Config(), moto.URL)
	cl := fleetCluster(t, moto)
	spec, err := provider.SpecFor(cl)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := infra.ControlPlane(ctx, "prod"); !errors.Is(err, provider.ErrNotFound) {
		t.Errorf("ControlPlane before Apply: %v, want ErrNotFound", err)
	}

	// Plan (dry-run) changes nothing.
	plan, err := infra.Plan(ctx, spec)
	if err != nil {
		t.Fatal(err)
	}
	if count(plan, provider.Create, "control-plane") != 1 || count(plan, provider.Create, "queue") != 1 || count(plan, provider.Create, "rule") != 4 ||
		count(plan, provider.Create, "launch-template") != 2 || count(plan, provider.Create, "node-group") != 2 || len(plan) != 10 {
		t.Fatalf("plan = %v", plan)
	}
	as := autoscaling.NewFromConfig(awstest.Config(), func(o *autoscaling.Options) { o.BaseEndpoint = aws.String(moto.URL) })
	if out, _ := as.DescribeAutoScalingGroups(ctx, &autoscaling.DescribeAutoScalingGroupsInput{}); len(out.AutoScalingGroups) != 0 {
		t.Fatalf("Plan created groups: %d", len(out.AutoScalingGroups))
	}

	applied, err := infra.Apply(ctx, spec)
	if err != nil {
		t.Fatal(err)
	}
	if len(applied) != len(plan) {
		t.Errorf("applied %v, planned %v", applied, plan)
	}
	for i := range 2 {
		again, err := infra.Plan(ctx, spec)
		if err != nil || len(again) != 0 {
			t.Fatalf("plan %d after apply: %v, %v; want nothing", i, again, err)
		}
		if ch, err := infra.Apply(ctx, spec); err != nil || len(ch) != 0 {
			t.Fatalf("apply %d again: %v, %v; want nothing (idempotent)", i, ch, err)
		}
	}
	cp, err := infra.ControlPlane(ctx, "prod")
	if err != nil || cp.Version != "1.32" || !cp.Ready {
		t.Errorf("ControlPlane = %+v, %v", cp, err)
	}

	// The provider reads back what the infra step built.
	p := motoProvider(t, moto, "prod", "")
	groups, err := p.NodeGroups(ctx)
	if err != nil || len(groups) != 2 {
		t.Fatalf("groups = %+v, %v", groups, err)
	}
	for i, g := range groups {
		want := spec.Groups[1-i] // od sorts before spot
		if g.ID != want.ID || g.Lifecycle != want.Lifecycle || g.MinSize != want.MinSize || g.MaxSize != want.MaxSize || g.Priority != want.Priority ||
			strings.Join(g.InstanceTypes, ",") != strings.Join(want.InstanceTypes, ",") || g.Labels[provider.LabelTemplateHash] != want.TemplateHash {
			t.Errorf("group %+v, want %+v", g, want.NodeGroup)
		}
	}
	// L44: the launch template registers nodes with the template hash.
	ec := ec2.NewFromConfig(awstest.Config(), func(o *ec2.Options) { o.BaseEndpoint = aws.String(moto.URL) })
	ver, err := ec.DescribeLaunchTemplateVersions(ctx, &ec2.DescribeLaunchTemplateVersionsInput{LaunchTemplateName: aws.String("bosun-prod-spot"), Versions: []string{"$Default"}})
	if err != nil || len(ver.LaunchTemplateVersions) != 1 {
		t.Fatalf("launch template versions: %v, %v", ver, err)
	}
	ud, _ := base64.StdEncoding.DecodeString(aws.ToString(ver.LaunchTemplateVersions[0].LaunchTemplateData.UserData))
	if !strings.Contains(string(ud), provider.LabelTemplateHash+"="+spec.Groups[0].TemplateHash) {
		t.Errorf("user data lacks the template hash label:\n%s", ud)
	}

	// A group of the cluster that Bosun did not create is never touched.
	moto.CreateGroup(t, awstest.Group{Cluster: "prod", Pool: "handmade", Types: []string{"m5.large"}, Zones: []string{"us-east-1a"}, Max: 1})

	// Change the fleet: more spot capacity, a label (new template), the
	// on-demand pool gone.
	cl.NodePools[0].MaxSize = 20
	cl.NodePools[0].Labels = map[string]string{"team": "shop"}
	cl.NodePools = cl.NodePools[:1]
	spec2, err := provider.SpecFor(cl)
	if err != nil {
		t.Fatal(err)
	}
	plan, err = infra.Plan(ctx, spec2)
	if err != nil {
		t.Fatal(err)
	}
	if count(plan, provider.Update, "node-group") != 1 || count(plan, provider.Update, "launch-template") != 1 || count(plan, provider.Delete, "node-group") != 1 || len(plan) != 3 {
		t.Fatalf("plan after the fleet change = %v", plan)
	}
	for _, c := range plan {
		if strings.Contains(c.Name, "handmade") || strings.Contains(c.Detail, "handmade") {
			t.Errorf("plan touches a group Bosun did not create: %v", c)
		}
	}
	if _, err := infra.Apply(ctx, spec2); err != nil {
		t.Fatal(err)
	}
	if again, err := infra.Plan(ctx, spec2); err != nil || len(again) != 0 {
		t.Fatalf("plan after the second apply: %v, %v", again, err)
	}
	out, err := as.DescribeAutoScalingGroups(ctx, &autoscaling.DescribeAutoScalingGroupsInput{})
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, a := range out.AutoScalingGroups {
		names = append(names, aws.ToString(a.AutoScalingGroupName))
	}
	if strings.Join(names, ",") != "bosun-prod-handmade,bosun-prod-spot" && strings.Join(names, ",") != "bosun-prod-spot,bosun-prod-handmade" {
		t.Errorf("groups after apply = %v, want the spot group and the handmade one", names)
	}

	// Control plane version: one minor up is planned, two is refused.
	cl.KubernetesVersion = "1.33"
	spec3, _ := provider.SpecFor(cl)
	plan, err = infra.Plan(ctx, spec3)
	if err != nil || count(plan, provider.Update, "control-plane") != 1 {
		t.Errorf("plan for 1.33: %v, %v", plan, err)
	}
	cl.KubernetesVersion = "1.34"
	spec4, _ := provider.SpecFor(cl)
	if _, err := infra.Plan(ctx, spec4); !errors.Is(err, provider.ErrUnsupported) {
		t.Errorf("plan for 1.32 -> 1.34: %v, want ErrUnsupported", err)
	}

	// Missing config items are named, and nothing is read or changed.
	delete(cl.ConfigItems, bosunaws.ConfigClusterRole)
	spec5, _ := provider.SpecFor(cl)
	if _, err := infra.Plan(ctx, spec5); err == nil || !strings.Contains(err.Error(), bosunaws.ConfigClusterRole) {
		t.Errorf("plan without a cluster role: %v", err)
	}
}

// An EKS version update (L30): moto keeps clusters but does not implement
// UpdateClusterVersion, so the infra step talks to moto through a proxy
// that answers that one call the way the EKS API documents it (POST
// /clusters/{name}/updates, an Update of type VersionUpdate) and records
// what it was asked. A one-minor upgrade is planned, then applied with the
// target version; two minors at once, or a downgrade, are refused before
// any call.
func TestIntegrationMotoInfraVersionUpdate(t *testing.T) {
	moto := awstest.Get(t)
	moto.Reset(t)
	ctx := context.Background()
	target, err := url.Parse(moto.URL)
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	var updates []map[string]any
	proxy := httputil.NewSingleHostReverseProxy(target)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodPost && r.URL.Path == "/clusters/prod/updates" {
			var body map[string]any
			if err := json.NewDecoder(r.Body).Decode(&body); err != nil {
				http.Error(w, err.Error(), http.StatusBadRequest)
				return
			}
			mu.Lock()
			updates = append(updates, body)
			mu.Unlock()
			w.Header().Set("Content-Type", "application/json")
			fmt.Fprintf(w, `{"update":{"id":"b5f0ba18-9a87-4450-b5a0-825e6e84496f","status":"InProgress","type":"VersionUpdate",`+
				`"params":[{"type":"Version","value":%q},{"type":"PlatformVersion","value":"eks.1"}],"createdAt":%d,"errors":[]}}`,
				body["version"], time.Now().Unix())
			return
		}
		proxy.ServeHTTP(w, r)
	}))
	t.Cleanup(srv.Close)
	infra := bosunaws.NewInfra(awstest.Config(), srv.URL)
	cl := fleetCluster(t, moto)
	spec, err := provider.SpecFor(cl)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := infra.Apply(ctx, spec); err != nil {
		t.Fatal(err)
	}

	cl.KubernetesVersion = "1.33"
	if spec, err = provider.SpecFor(cl); err != nil {
		t.Fatal(err)
	}
	plan, err := infra.Plan(ctx, spec)
	if err != nil {
		t.Fatal(err)
	}
	if count(plan, provider.Update, "control-plane") != 1 {
		t.Fatalf("plan for 1.32 -> 1.33 = %v, want a control-plane update", plan)
	}
	if len(updates) != 0 {
		t.Fatalf("Plan called UpdateClusterVersion: %v", updates)
	}
	if _, err := infra.Apply(ctx, spec); err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	got := append([]map[string]any(nil), updates...)
	mu.Unlock()
	if len(got) != 1 || got[0]["version"] != "1.33" {
		t.Fatalf("UpdateClusterVersion calls = %v, want one for version 1.33", got)
	}

	for _, v := range []string{"1.34", "1.31"} {
		cl.KubernetesVersion = v
		if spec, err = provider.SpecFor(cl); err != nil {
			t.Fatal(err)
		}
		if _, err := infra.Apply(ctx, spec); !errors.Is(err, provider.ErrUnsupported) {
			t.Errorf("1.32 -> %s: err = %v, want ErrUnsupported (one minor up at a time)", v, err)
		}
	}
	if len(updates) != 1 {
		t.Errorf("refused upgrades still called UpdateClusterVersion: %v", updates)
	}
}
