//go:build integration

package apply

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/autoscaling"
	asgtypes "github.com/aws/aws-sdk-go-v2/service/autoscaling/types"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	ec2types "github.com/aws/aws-sdk-go-v2/service/ec2/types"
	"github.com/aws/aws-sdk-go-v2/service/eks"
	ekstypes "github.com/aws/aws-sdk-go-v2/service/eks/types"
	"github.com/aws/aws-sdk-go-v2/service/eventbridge"
	"github.com/aws/aws-sdk-go-v2/service/sqs"

	bosunaws "github.com/bosun-platform/bosun/internal/provider/aws"
	"github.com/bosun-platform/bosun/internal/provider/aws/awstest"
)

const infraRegion = "eu-central-1"

// motoClients are SDK clients for moto in the example fleet's region.
type motoClients struct {
	asg    *autoscaling.Client
	ec2    *ec2.Client
	eks    *eks.Client
	sqs    *sqs.Client
	events *eventbridge.Client
}

func newMotoClients(url string) motoClients {
	cfg := awstest.Config()
	cfg.Region = infraRegion
	return motoClients{
		asg:    autoscaling.NewFromConfig(cfg, func(o *autoscaling.Options) { o.BaseEndpoint = aws.String(url) }),
		ec2:    ec2.NewFromConfig(cfg, func(o *ec2.Options) { o.BaseEndpoint = aws.String(url) }),
		eks:    eks.NewFromConfig(cfg, func(o *eks.Options) { o.BaseEndpoint = aws.String(url) }),
		sqs:    sqs.NewFromConfig(cfg, func(o *sqs.Options) { o.BaseEndpoint = aws.String(url) }),
		events: eventbridge.NewFromConfig(cfg, func(o *eventbridge.Options) { o.BaseEndpoint = aws.String(url) }),
	}
}

// state is what moto holds, as sorted names (and the foreign group's
// desired capacity and tags, which must never change).
func (c motoClients) state(t *testing.T) map[string][]string {
	t.Helper()
	ctx := context.Background()
	out := map[string][]string{}
	groups, err := c.asg.DescribeAutoScalingGroups(ctx, &autoscaling.DescribeAutoScalingGroupsInput{})
	if err != nil {
		t.Fatal(err)
	}
	for _, g := range groups.AutoScalingGroups {
		out["groups"] = append(out["groups"], aws.ToString(g.AutoScalingGroupName))
		if !strings.HasPrefix(aws.ToString(g.AutoScalingGroupName), "bosun-aws-prod-eu1-") {
			var tags []string
			for _, tg := range g.Tags {
				tags = append(tags, aws.ToString(tg.Key)+"="+aws.ToString(tg.Value))
			}
			slices.Sort(tags)
			out["foreign "+aws.ToString(g.AutoScalingGroupName)] = append(tags, fmt.Sprintf("desired=%d", aws.ToInt32(g.DesiredCapacity)), fmt.Sprintf("max=%d", aws.ToInt32(g.MaxSize)))
		}
	}
	lts, err := c.ec2.DescribeLaunchTemplates(ctx, &ec2.DescribeLaunchTemplatesInput{})
	if err != nil {
		t.Fatal(err)
	}
	for _, lt := range lts.LaunchTemplates {
		out["launch templates"] = append(out["launch templates"], aws.ToString(lt.LaunchTemplateName))
	}
	clusters, err := c.eks.ListClusters(ctx, &eks.ListClustersInput{})
	if err != nil {
		t.Fatal(err)
	}
	out["eks"] = clusters.Clusters
	queues, err := c.sqs.ListQueues(ctx, &sqs.ListQueuesInput{})
	if err != nil {
		t.Fatal(err)
	}
	for _, q := range queues.QueueUrls {
		out["queues"] = append(out["queues"], q[strings.LastIndex(q, "/")+1:])
	}
	rules, err := c.events.ListRules(ctx, &eventbridge.ListRulesInput{})
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range rules.Rules {
		out["rules"] = append(out["rules"], aws.ToString(r.Name))
	}
	for _, v := range out {
		slices.Sort(v)
	}
	return out
}

// exampleFleet copies examples/fleet and gives its AWS clusters moto's
// subnets and (unchecked by moto) role ARNs and image.
func exampleFleet(t *testing.T, c motoClients) string {
	t.Helper()
	dir := t.TempDir()
	if err := os.CopyFS(dir, os.DirFS("../../../examples/fleet")); err != nil {
		t.Fatal(err)
	}
	subnets, err := c.ec2.DescribeSubnets(context.Background(), &ec2.DescribeSubnetsInput{Filters: []ec2types.Filter{{Name: aws.String("default-for-az"), Values: []string{"true"}}}})
	if err != nil {
		t.Fatal(err)
	}
	var ids []string
	for _, s := range subnets.Subnets {
		ids = append(ids, aws.ToString(s.SubnetId))
	}
	if len(ids) < 3 {
		t.Fatalf("moto's default subnets in %s: %v, want one per zone a, b, c", infraRegion, ids)
	}
	for _, id := range []string{"aws-prod-eu1", "aws-staging-eu1"} {
		path := filepath.Join(dir, "clusters", id+".yaml")
		data, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		items := "configItems:\n" +
			"  " + bosunaws.ConfigSubnets + ": " + strings.Join(ids, ",") + "\n" +
			"  " + bosunaws.ConfigClusterRole + ": arn:aws:iam::111111111111:role/eks-cluster\n" +
			"  " + bosunaws.ConfigNodeInstanceProfile + ": arn:aws:iam::111111111111:instance-profile/bosun-nodes\n" +
			"  node_image: ami-12c6146b\n"
		s := strings.Replace(string(data), "configItems:\n", items, 1)
		if s == string(data) {
			t.Fatalf("%s has no configItems block to extend", path)
		}
		if err := os.WriteFile(path, []byte(s), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

// bosun apply --infra against moto with the example fleet's aws-prod-eu1:
// --dry-run prints the plan and changes nothing; the apply creates the EKS
// control plane, a launch template and an Auto Scaling group per pool, the
// queue and its rules; a rerun changes nothing; what carries no Bosun tags
// is never touched, and a resource of Bosun's name without them stops the
// run before anything changes.
func TestIntegrationApplyInfraOnMoto(t *testing.T) {
	path, err := exec.LookPath("moto_server")
	if err != nil {
		t.Skip("moto_server is not on PATH (pip install 'moto[server]'): the infra CLI test needs it")
	}
	moto, err := awstest.Start(path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(moto.Stop)
	t.Setenv("AWS_ACCESS_KEY_ID", "testing")
	t.Setenv("AWS_SECRET_ACCESS_KEY", "testing")
	t.Setenv("AWS_EC2_METADATA_DISABLED", "true")
	t.Setenv("AWS_CONFIG_FILE", filepath.Join(t.TempDir(), "none"))
	t.Setenv("AWS_SHARED_CREDENTIALS_FILE", filepath.Join(t.TempDir(), "none"))
	ctx := context.Background()
	c := newMotoClients(moto.URL)
	dir := exampleFleet(t, c)

	// Someone else's group and queue in the same account and region, and
	// a group tagged with the cluster that Bosun did not create.
	if _, err := c.ec2.CreateLaunchTemplate(ctx, &ec2.CreateLaunchTemplateInput{LaunchTemplateName: aws.String("team-x"),
		LaunchTemplateData: &ec2types.RequestLaunchTemplateData{ImageId: aws.String("ami-12c6146b"), InstanceType: ec2types.InstanceTypeM5Large}}); err != nil {
		t.Fatal(err)
	}
	for name, tags := range map[string]map[string]string{
		"team-x-workers":              {"team": "x"},
		"bosun-aws-prod-eu1-handmade": {bosunaws.TagCluster: "aws-prod-eu1", bosunaws.TagPool: "handmade"},
	} {
		var at []asgtypes.Tag
		for k, v := range tags {
			at = append(at, asgtypes.Tag{Key: aws.String(k), Value: aws.String(v), ResourceId: aws.String(name), ResourceType: aws.String("auto-scaling-group"), PropagateAtLaunch: aws.Bool(true)})
		}
		if _, err := c.asg.CreateAutoScalingGroup(ctx, &autoscaling.CreateAutoScalingGroupInput{AutoScalingGroupName: aws.String(name),
			MinSize: aws.Int32(0), MaxSize: aws.Int32(2), DesiredCapacity: aws.Int32(1), AvailabilityZones: []string{infraRegion + "a"},
			LaunchTemplate: &asgtypes.LaunchTemplateSpecification{LaunchTemplateName: aws.String("team-x"), Version: aws.String("$Latest")}, Tags: at}); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := c.sqs.CreateQueue(ctx, &sqs.CreateQueueInput{QueueName: aws.String("team-x-events")}); err != nil {
		t.Fatal(err)
	}
	before := c.state(t)

	args := []string{"--fleet", dir, "--cluster", "aws-prod-eu1", "--infra", "--aws-endpoint", moto.URL}
	plan, err := runApply(t, append(args, "--dry-run")...)
	if err != nil {
		t.Fatalf("apply --infra --dry-run: %v\n%s", err, plan)
	}
	// 6 pools: a launch template and a group each; EKS; queue; 4 rules.
	wantPlan := map[string]int{"control-plane": 1, "queue": 1, "rule": 4, "launch-template": 6, "node-group": 6}
	for res, n := range wantPlan {
		if got := len(regexp.MustCompile(`(?m)^plan: create `+res+` `).FindAllString(plan, -1)); got != n {
			t.Errorf("plan creates %d %s, want %d:\n%s", got, res, n, plan)
		}
	}
	if strings.Contains(plan, "handmade") || strings.Contains(plan, "team-x") || strings.Contains(plan, "delete") {
		t.Errorf("the plan touches what Bosun did not create:\n%s", plan)
	}
	if after := c.state(t); !mapsEqual(after, before) {
		t.Fatalf("--dry-run changed moto:\nbefore %v\nafter  %v", before, after)
	}

	applied, err := runApply(t, args...)
	if err != nil {
		t.Fatalf("apply --infra: %v\n%s", err, applied)
	}
	if got, want := strings.Count(applied, "\napplied: ")+boolInt(strings.HasPrefix(applied, "applied: ")), strings.Count(plan, "\nplan: ")+boolInt(strings.HasPrefix(plan, "plan: ")); got != want {
		t.Errorf("applied %d changes, planned %d:\n%s\n%s", got, want, applied, plan)
	}
	st := c.state(t)
	pools := []string{"checkout-api", "default-on-demand-2xlarge", "default-on-demand-xlarge", "default-spot-2xlarge", "default-spot-xlarge", "system"}
	var wantGroups, wantLTs []string
	for _, p := range pools {
		wantGroups = append(wantGroups, "bosun-aws-prod-eu1-"+p)
		wantLTs = append(wantLTs, "bosun-aws-prod-eu1-"+p)
	}
	wantGroups = append(wantGroups, "bosun-aws-prod-eu1-handmade", "team-x-workers")
	wantLTs = append(wantLTs, "team-x")
	slices.Sort(wantGroups)
	slices.Sort(wantLTs)
	check := func(key string, want []string) {
		t.Helper()
		if !slices.Equal(st[key], want) {
			t.Errorf("%s = %v, want %v", key, st[key], want)
		}
	}
	check("groups", wantGroups)
	check("launch templates", wantLTs)
	check("eks", []string{"aws-prod-eu1"})
	check("queues", []string{"bosun-aws-prod-eu1", "team-x-events"})
	check("rules", []string{"bosun-aws-prod-eu1-asg-termination", "bosun-aws-prod-eu1-rebalance", "bosun-aws-prod-eu1-spot-interruption", "bosun-aws-prod-eu1-state-change"})
	for _, k := range []string{"foreign team-x-workers", "foreign bosun-aws-prod-eu1-handmade"} {
		if !slices.Equal(st[k], before[k]) {
			t.Errorf("%s changed: %v, was %v", k, st[k], before[k])
		}
	}
	cp, err := c.eks.DescribeCluster(ctx, &eks.DescribeClusterInput{Name: aws.String("aws-prod-eu1")})
	if err != nil || aws.ToString(cp.Cluster.Version) != "1.33" || cp.Cluster.Tags[bosunaws.TagManagedBy] != "bosun" {
		t.Errorf("EKS cluster: %+v, %v", cp, err)
	}
	spot, err := c.asg.DescribeAutoScalingGroups(ctx, &autoscaling.DescribeAutoScalingGroupsInput{AutoScalingGroupNames: []string{"bosun-aws-prod-eu1-default-spot-xlarge", "bosun-aws-prod-eu1-checkout-api"}})
	if err != nil || len(spot.AutoScalingGroups) != 2 {
		t.Fatalf("groups: %+v, %v", spot, err)
	}
	for _, g := range spot.AutoScalingGroups {
		mip := g.MixedInstancesPolicy
		switch aws.ToString(g.AutoScalingGroupName) {
		case "bosun-aws-prod-eu1-default-spot-xlarge":
			if mip == nil || len(mip.LaunchTemplate.Overrides) != 8 || aws.ToInt32(mip.InstancesDistribution.OnDemandPercentageAboveBaseCapacity) != 0 ||
				aws.ToString(mip.InstancesDistribution.SpotAllocationStrategy) != "price-capacity-optimized" || aws.ToInt32(g.MaxSize) != 100 {
				t.Errorf("spot group: %+v", g)
			}
		case "bosun-aws-prod-eu1-checkout-api":
			if aws.ToInt32(g.MinSize) != 2 || aws.ToInt32(g.MaxSize) != 30 || aws.ToInt32(g.DesiredCapacity) != 2 {
				t.Errorf("checkout-api group: min %d max %d desired %d", aws.ToInt32(g.MinSize), aws.ToInt32(g.MaxSize), aws.ToInt32(g.DesiredCapacity))
			}
		}
	}

	// A rerun changes nothing, and so does its plan.
	for _, extra := range [][]string{nil, {"--dry-run"}} {
		out, err := runApply(t, append(args, extra...)...)
		if err != nil || strings.TrimSpace(out) != "cluster aws-prod-eu1: infrastructure up to date" {
			t.Errorf("rerun %v: %v\n%s", extra, err, out)
		}
	}
	if again := c.state(t); !mapsEqual(again, st) {
		t.Errorf("the rerun changed moto:\nbefore %v\nafter  %v", st, again)
	}

	// A control plane of Bosun's name that Bosun did not create stops the
	// staging cluster's run before anything is created.
	if _, err := c.eks.CreateCluster(ctx, &eks.CreateClusterInput{Name: aws.String("aws-staging-eu1"), Version: aws.String("1.33"),
		RoleArn: aws.String("arn:aws:iam::222222222222:role/theirs"), ResourcesVpcConfig: &ekstypes.VpcConfigRequest{}}); err != nil {
		t.Fatal(err)
	}
	st = c.state(t)
	out, err := runApply(t, "--fleet", dir, "--cluster", "aws-staging-eu1", "--infra", "--aws-endpoint", moto.URL)
	if err == nil || !strings.Contains(err.Error(), "aws-staging-eu1") || !strings.Contains(err.Error(), "without tags") {
		t.Errorf("apply over a foreign control plane: %v\n%s; want an error naming it", err, out)
	}
	if after := c.state(t); !mapsEqual(after, st) {
		t.Errorf("the refused run changed moto:\nbefore %v\nafter  %v", st, after)
	}
}

func boolInt(b bool) int {
	if b {
		return 1
	}
	return 0
}

func mapsEqual(a, b map[string][]string) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if !slices.Equal(v, b[k]) {
			return false
		}
	}
	return true
}
