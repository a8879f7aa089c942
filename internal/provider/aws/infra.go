package aws

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"sort"
	"strconv"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/autoscaling"
	asgtypes "github.com/aws/aws-sdk-go-v2/service/autoscaling/types"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	ec2types "github.com/aws/aws-sdk-go-v2/service/ec2/types"
	"github.com/aws/aws-sdk-go-v2/service/eks"
	ekstypes "github.com/aws/aws-sdk-go-v2/service/eks/types"
	"github.com/aws/aws-sdk-go-v2/service/eventbridge"
	ebtypes "github.com/aws/aws-sdk-go-v2/service/eventbridge/types"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	sqstypes "github.com/aws/aws-sdk-go-v2/service/sqs/types"
	"github.com/aws/aws-sdk-go-v2/service/ssm"

	"github.com/bosun-platform/bosun/internal/ec2catalog"
	"github.com/bosun-platform/bosun/internal/provider"
)

// Config items the AWS infra step reads. Bosun creates no VPC, subnet,
// security group or IAM role: they are given (docs/aws.md).
const (
	// ConfigSubnets: comma-separated subnet IDs of the cluster, at least
	// one in every zone of every pool (control plane and node groups).
	ConfigSubnets = "aws_subnets"
	// ConfigSecurityGroups: comma-separated security group IDs of the
	// nodes (optional; EKS's cluster security group otherwise).
	ConfigSecurityGroups = "aws_security_groups"
	// ConfigClusterRole: the ARN of the EKS cluster's IAM role.
	ConfigClusterRole = "aws_cluster_role_arn"
	// ConfigNodeInstanceProfile: the ARN of the nodes' instance profile.
	ConfigNodeInstanceProfile = "aws_node_instance_profile_arn"
)

// managedBy is the value of TagManagedBy on what Bosun created.
const managedBy = "bosun"

// Infra implements provider.Infra on AWS: the EKS control plane, a launch
// template and an Auto Scaling group per node pool, and the interruption
// queue with its EventBridge rules. It changes or deletes only resources
// tagged bosun.dev/managed-by=bosun and bosun.dev/cluster=<id>.
type Infra struct {
	region string
	asg    *autoscaling.Client
	ec2    *ec2.Client
	eks    *eks.Client
	sqs    *sqs.Client
	events *eventbridge.Client
	ssm    *ssm.Client
}

var _ provider.Infra = (*Infra)(nil)

// NewInfra builds the infra step's clients from cfg; endpoint, when set,
// sends every request there (moto).
func NewInfra(cfg aws.Config, endpoint string) *Infra {
	ep := func() *string {
		if endpoint == "" {
			return nil
		}
		return aws.String(endpoint)
	}
	return &Infra{
		region: cfg.Region,
		asg:    autoscaling.NewFromConfig(cfg, func(o *autoscaling.Options) { o.BaseEndpoint = ep() }),
		ec2:    ec2.NewFromConfig(cfg, func(o *ec2.Options) { o.BaseEndpoint = ep() }),
		eks:    eks.NewFromConfig(cfg, func(o *eks.Options) { o.BaseEndpoint = ep() }),
		sqs:    sqs.NewFromConfig(cfg, func(o *sqs.Options) { o.BaseEndpoint = ep() }),
		events: eventbridge.NewFromConfig(cfg, func(o *eventbridge.Options) { o.BaseEndpoint = ep() }),
		ssm:    ssm.NewFromConfig(cfg, func(o *ssm.Options) { o.BaseEndpoint = ep() }),
	}
}

// GroupName is the name of a pool's Auto Scaling group and launch template.
func GroupName(cluster, pool string) string { return "bosun-" + cluster + "-" + pool }

// QueueName is the name of the cluster's interruption queue.
func QueueName(cluster string) string { return "bosun-" + cluster }

// Plan implements provider.Infra.
func (x *Infra) Plan(ctx context.Context, spec provider.ClusterSpec) ([]provider.Change, error) {
	return x.reconcile(ctx, spec, false)
}

// Apply implements provider.Infra.
func (x *Infra) Apply(ctx context.Context, spec provider.ClusterSpec) ([]provider.Change, error) {
	return x.reconcile(ctx, spec, true)
}

// ControlPlane implements provider.Infra.
func (x *Infra) ControlPlane(ctx context.Context, cluster string) (provider.ControlPlaneInfo, error) {
	c, err := x.describeCluster(ctx, cluster)
	if err != nil {
		return provider.ControlPlaneInfo{}, err
	}
	if c == nil {
		return provider.ControlPlaneInfo{}, fmt.Errorf("EKS cluster %s, %w", cluster, provider.ErrNotFound)
	}
	return provider.ControlPlaneInfo{Version: aws.ToString(c.Version), Endpoint: aws.ToString(c.Endpoint), Ready: c.Status == ekstypes.ClusterStatusActive}, nil
}

func (x *Infra) describeCluster(ctx context.Context, name string) (*ekstypes.Cluster, error) {
	out, err := x.eks.DescribeCluster(ctx, &eks.DescribeClusterInput{Name: aws.String(name)})
	var nf *ekstypes.ResourceNotFoundException
	if errors.As(err, &nf) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("describing EKS cluster %s, %w", name, err)
	}
	return out.Cluster, nil
}

func bosunTags(cluster string) map[string]string {
	return map[string]string{TagCluster: cluster, TagManagedBy: managedBy}
}

func ours(tags map[string]string, cluster string) bool {
	return tags[TagCluster] == cluster && tags[TagManagedBy] == managedBy
}

func splitList(s string) []string {
	var out []string
	for _, f := range strings.Split(s, ",") {
		if f = strings.TrimSpace(f); f != "" {
			out = append(out, f)
		}
	}
	return out
}

// reconcile plans (apply false) or makes (apply true) the changes.
func (x *Infra) reconcile(ctx context.Context, spec provider.ClusterSpec, apply bool) ([]provider.Change, error) {
	if spec.Provider != "aws" {
		return nil, fmt.Errorf("cluster %s: provider %q, %w (the AWS infra step builds provider: aws clusters)", spec.ID, spec.Provider, provider.ErrUnsupported)
	}
	var missing []string
	for _, k := range []string{ConfigSubnets, ConfigClusterRole, ConfigNodeInstanceProfile} {
		if spec.ConfigItems[k] == "" {
			missing = append(missing, k)
		}
	}
	if len(missing) > 0 {
		return nil, fmt.Errorf("cluster %s: config items %s are empty; expected the subnets, the EKS cluster role ARN and the node instance profile ARN Bosun builds on (it creates no VPC or IAM role)", spec.ID, strings.Join(missing, ", "))
	}
	zones, err := x.subnetZones(ctx, spec)
	if err != nil {
		return nil, err
	}
	var changes []provider.Change
	cp, ch, err := x.controlPlane(ctx, spec, apply)
	changes = append(changes, ch...)
	if err != nil {
		return changes, err
	}
	ch, err = x.queue(ctx, spec, apply)
	changes = append(changes, ch...)
	if err != nil {
		return changes, err
	}
	ch, err = x.groups(ctx, spec, cp, zones, apply)
	changes = append(changes, ch...)
	return changes, err
}

// subnetZones maps each configured subnet's zone to its subnets.
func (x *Infra) subnetZones(ctx context.Context, spec provider.ClusterSpec) (map[string][]string, error) {
	ids := splitList(spec.ConfigItems[ConfigSubnets])
	out, err := x.ec2.DescribeSubnets(ctx, &ec2.DescribeSubnetsInput{SubnetIds: ids})
	if err != nil {
		return nil, fmt.Errorf("cluster %s: config item %s: describing subnets %s, %w", spec.ID, ConfigSubnets, strings.Join(ids, ","), err)
	}
	zones := map[string][]string{}
	for _, s := range out.Subnets {
		z := aws.ToString(s.AvailabilityZone)
		zones[z] = append(zones[z], aws.ToString(s.SubnetId))
	}
	var errs []error
	for _, g := range spec.Groups {
		for _, z := range g.Zones {
			if len(zones[z]) == 0 {
				errs = append(errs, fmt.Errorf("cluster %s, node pool %s: zone %s has no subnet in config item %s", spec.ID, g.Pool, z, ConfigSubnets))
			}
		}
	}
	return zones, errors.Join(errs...)
}

// controlPlane creates the EKS cluster or updates its version (one minor
// at a time, never down).
func (x *Infra) controlPlane(ctx context.Context, spec provider.ClusterSpec, apply bool) (*ekstypes.Cluster, []provider.Change, error) {
	c, err := x.describeCluster(ctx, spec.ID)
	if err != nil {
		return nil, nil, err
	}
	if c == nil {
		ch := provider.Change{Action: provider.Create, Resource: "control-plane", Name: spec.ID, Detail: "EKS " + spec.KubernetesVersion}
		if !apply {
			return nil, []provider.Change{ch}, nil
		}
		out, err := x.eks.CreateCluster(ctx, &eks.CreateClusterInput{
			Name: aws.String(spec.ID), Version: aws.String(spec.KubernetesVersion), RoleArn: aws.String(spec.ConfigItems[ConfigClusterRole]),
			ResourcesVpcConfig: &ekstypes.VpcConfigRequest{SubnetIds: splitList(spec.ConfigItems[ConfigSubnets]), SecurityGroupIds: splitList(spec.ConfigItems[ConfigSecurityGroups])},
			Tags:               bosunTags(spec.ID),
		})
		if err != nil {
			return nil, nil, fmt.Errorf("creating EKS cluster %s, %w", spec.ID, err)
		}
		return out.Cluster, []provider.Change{ch}, nil
	}
	if !ours(c.Tags, spec.ID) {
		return nil, nil, fmt.Errorf("EKS cluster %s exists without tags %s=%s and %s=%s: Bosun does not change what it did not create", spec.ID, TagCluster, spec.ID, TagManagedBy, managedBy)
	}
	have, want := aws.ToString(c.Version), spec.KubernetesVersion
	if have == want {
		return c, nil, nil
	}
	if !oneMinorUp(have, want) {
		return c, nil, fmt.Errorf("EKS cluster %s: version %s -> %s, %w (EKS upgrades one minor version at a time, never down)", spec.ID, have, want, provider.ErrUnsupported)
	}
	ch := provider.Change{Action: provider.Update, Resource: "control-plane", Name: spec.ID, Detail: "version " + have + " -> " + want}
	if apply {
		if _, err := x.eks.UpdateClusterVersion(ctx, &eks.UpdateClusterVersionInput{Name: aws.String(spec.ID), Version: aws.String(want)}); err != nil {
			return c, nil, fmt.Errorf("updating EKS cluster %s to %s, %w", spec.ID, want, err)
		}
	}
	return c, []provider.Change{ch}, nil
}

func oneMinorUp(have, want string) bool {
	hm, hn, ok1 := strings.Cut(have, ".")
	wm, wn, ok2 := strings.Cut(want, ".")
	a, e1 := strconv.Atoi(hn)
	b, e2 := strconv.Atoi(wn)
	return ok1 && ok2 && e1 == nil && e2 == nil && hm == wm && b == a+1
}

// Rules are the EventBridge rules that feed the interruption queue, by
// name suffix.
var Rules = map[string]string{
	"spot-interruption": `{"source":["aws.ec2"],"detail-type":["EC2 Spot Instance Interruption Warning"]}`,
	"rebalance":         `{"source":["aws.ec2"],"detail-type":["EC2 Instance Rebalance Recommendation"]}`,
	"asg-termination":   `{"source":["aws.autoscaling"],"detail-type":["EC2 Instance-terminate Lifecycle Action"]}`,
	"state-change":      `{"source":["aws.ec2"],"detail-type":["EC2 Instance State-change Notification"]}`,
}

// queue creates the interruption queue and its rules.
func (x *Infra) queue(ctx context.Context, spec provider.ClusterSpec, apply bool) ([]provider.Change, error) {
	var changes []provider.Change
	name := QueueName(spec.ID)
	var url string
	got, err := x.sqs.GetQueueUrl(ctx, &sqs.GetQueueUrlInput{QueueName: aws.String(name)})
	var nf *sqstypes.QueueDoesNotExist
	switch {
	case errors.As(err, &nf):
		changes = append(changes, provider.Change{Action: provider.Create, Resource: "queue", Name: name})
		if apply {
			out, err := x.sqs.CreateQueue(ctx, &sqs.CreateQueueInput{QueueName: aws.String(name), Tags: bosunTags(spec.ID),
				Attributes: map[string]string{"MessageRetentionPeriod": "300", "SqsManagedSseEnabled": "true"}})
			if err != nil {
				return changes, fmt.Errorf("creating queue %s, %w", name, err)
			}
			url = aws.ToString(out.QueueUrl)
		}
	case err != nil:
		return nil, fmt.Errorf("finding queue %s, %w", name, err)
	default:
		url = aws.ToString(got.QueueUrl)
		tags, err := x.sqs.ListQueueTags(ctx, &sqs.ListQueueTagsInput{QueueUrl: aws.String(url)})
		if err != nil {
			return nil, fmt.Errorf("reading the tags of queue %s, %w", name, err)
		}
		if !ours(tags.Tags, spec.ID) {
			return nil, fmt.Errorf("queue %s exists without Bosun's tags: Bosun does not change what it did not create", name)
		}
	}
	arn := ""
	if url != "" {
		attrs, err := x.sqs.GetQueueAttributes(ctx, &sqs.GetQueueAttributesInput{QueueUrl: aws.String(url), AttributeNames: []sqstypes.QueueAttributeName{sqstypes.QueueAttributeNameQueueArn}})
		if err != nil {
			return changes, fmt.Errorf("reading the ARN of queue %s, %w", name, err)
		}
		arn = attrs.Attributes[string(sqstypes.QueueAttributeNameQueueArn)]
		policy := fmt.Sprintf(`{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"Service":["events.amazonaws.com","sqs.amazonaws.com"]},"Action":"sqs:SendMessage","Resource":%q}]}`, arn)
		if apply {
			if _, err := x.sqs.SetQueueAttributes(ctx, &sqs.SetQueueAttributesInput{QueueUrl: aws.String(url), Attributes: map[string]string{"Policy": policy}}); err != nil {
				return changes, fmt.Errorf("setting the policy of queue %s, %w", name, err)
			}
		}
	}
	suffixes := make([]string, 0, len(Rules))
	for s := range Rules {
		suffixes = append(suffixes, s)
	}
	sort.Strings(suffixes)
	for _, s := range suffixes {
		rule := name + "-" + s
		pattern := Rules[s]
		have, err := x.events.DescribeRule(ctx, &eventbridge.DescribeRuleInput{Name: aws.String(rule)})
		var rnf *ebtypes.ResourceNotFoundException
		switch {
		case errors.As(err, &rnf):
			changes = append(changes, provider.Change{Action: provider.Create, Resource: "rule", Name: rule})
		case err != nil:
			return changes, fmt.Errorf("describing rule %s, %w", rule, err)
		case aws.ToString(have.EventPattern) != pattern:
			changes = append(changes, provider.Change{Action: provider.Update, Resource: "rule", Name: rule, Detail: "event pattern"})
		default:
			continue
		}
		if !apply {
			continue
		}
		var tags []ebtypes.Tag
		for k, v := range bosunTags(spec.ID) {
			tags = append(tags, ebtypes.Tag{Key: aws.String(k), Value: aws.String(v)})
		}
		if _, err := x.events.PutRule(ctx, &eventbridge.PutRuleInput{Name: aws.String(rule), EventPattern: aws.String(pattern), State: ebtypes.RuleStateEnabled, Tags: tags,
			Description: aws.String("Bosun: interruption events for cluster " + spec.ID)}); err != nil {
			return changes, fmt.Errorf("putting rule %s, %w", rule, err)
		}
		if _, err := x.events.PutTargets(ctx, &eventbridge.PutTargetsInput{Rule: aws.String(rule), Targets: []ebtypes.Target{{Id: aws.String("bosun-queue"), Arn: aws.String(arn)}}}); err != nil {
			return changes, fmt.Errorf("targeting rule %s at queue %s, %w", rule, name, err)
		}
	}
	return changes, nil
}

// groupTags are the tags of a pool's Auto Scaling group: Bosun's (read
// back by the provider), cluster-autoscaler's discovery and node-template
// tags, and the EKS ownership tag.
func groupTags(spec provider.ClusterSpec, g provider.GroupSpec) map[string]string {
	t := bosunTags(spec.ID)
	t[TagPool] = g.Pool
	t[TagLifecycle] = string(g.Lifecycle)
	t[TagPriority] = strconv.Itoa(g.Priority)
	t[TagRole] = g.Role
	t[TagTemplateHash] = g.TemplateHash
	if g.ApplicationGroup != "" {
		t[TagApplicationGroup] = g.ApplicationGroup
	}
	t["kubernetes.io/cluster/"+spec.ID] = "owned"
	t["k8s.io/cluster-autoscaler/enabled"] = "true"
	t["k8s.io/cluster-autoscaler/"+spec.ID] = "owned"
	for k, v := range g.Labels {
		t[TagNodeTemplateLabel+k] = v
	}
	for _, taint := range g.Taints {
		t[TagNodeTemplateTaint+taint.Key] = taint.Value + ":" + string(taint.Effect)
	}
	return t
}

// groups creates, updates and deletes the pools' launch templates and
// groups.
func (x *Infra) groups(ctx context.Context, spec provider.ClusterSpec, cp *ekstypes.Cluster, zones map[string][]string, apply bool) ([]provider.Change, error) {
	existing := map[string]asgtypes.AutoScalingGroup{}
	in := &autoscaling.DescribeAutoScalingGroupsInput{Filters: []asgtypes.Filter{{Name: aws.String("tag:" + TagCluster), Values: []string{spec.ID}}}}
	for {
		out, err := x.asg.DescribeAutoScalingGroups(ctx, in)
		if err != nil {
			return nil, fmt.Errorf("describing the Auto Scaling groups of %s, %w", spec.ID, err)
		}
		for _, a := range out.AutoScalingGroups {
			existing[aws.ToString(a.AutoScalingGroupName)] = a
		}
		if aws.ToString(out.NextToken) == "" {
			break
		}
		in.NextToken = out.NextToken
	}
	var changes []provider.Change
	want := map[string]bool{}
	for _, g := range spec.Groups {
		name := GroupName(spec.ID, g.Pool)
		want[name] = true
		var subnets []string
		for _, z := range g.Zones {
			subnets = append(subnets, zones[z]...)
		}
		sort.Strings(subnets)
		a, exists := existing[name]
		if exists && !ours(tagMap(a.Tags), spec.ID) {
			return changes, fmt.Errorf("the Auto Scaling group %s exists without tag %s=%s: Bosun does not change what it did not create", name, TagManagedBy, managedBy)
		}
		ch, err := x.launchTemplate(ctx, spec, g, cp, apply)
		changes = append(changes, ch...)
		if err != nil {
			return changes, err
		}
		tags := groupTags(spec, g)
		mip := mixedPolicy(name, g)
		if !exists {
			changes = append(changes, provider.Change{Action: provider.Create, Resource: "node-group", Name: g.ID, Detail: fmt.Sprintf("%s, %s, %d-%d, %s", name, g.Lifecycle, g.MinSize, g.MaxSize, strings.Join(g.InstanceTypes, ","))})
			if apply {
				if _, err := x.asg.CreateAutoScalingGroup(ctx, &autoscaling.CreateAutoScalingGroupInput{
					AutoScalingGroupName: aws.String(name), MinSize: aws.Int32(int32(g.MinSize)), MaxSize: aws.Int32(int32(g.MaxSize)), // #nosec G115 -- pool sizes
					DesiredCapacity: aws.Int32(int32(g.MinSize)), VPCZoneIdentifier: aws.String(strings.Join(subnets, ",")), // #nosec G115
					MixedInstancesPolicy: mip, CapacityRebalance: aws.Bool(g.Lifecycle == provider.Spot), Tags: asgTagList(name, tags),
				}); err != nil {
					return changes, fmt.Errorf("creating Auto Scaling group %s, %w", name, err)
				}
			}
			continue
		}
		var diffs []string
		if int(aws.ToInt32(a.MinSize)) != g.MinSize || int(aws.ToInt32(a.MaxSize)) != g.MaxSize {
			diffs = append(diffs, fmt.Sprintf("size %d-%d -> %d-%d", aws.ToInt32(a.MinSize), aws.ToInt32(a.MaxSize), g.MinSize, g.MaxSize))
		}
		var haveTypes []string
		if a.MixedInstancesPolicy != nil && a.MixedInstancesPolicy.LaunchTemplate != nil {
			for _, o := range a.MixedInstancesPolicy.LaunchTemplate.Overrides {
				haveTypes = append(haveTypes, aws.ToString(o.InstanceType))
			}
		}
		if strings.Join(haveTypes, ",") != strings.Join(g.InstanceTypes, ",") {
			diffs = append(diffs, "instance types "+strings.Join(haveTypes, ",")+" -> "+strings.Join(g.InstanceTypes, ","))
		}
		haveSubnets := splitList(aws.ToString(a.VPCZoneIdentifier))
		sort.Strings(haveSubnets)
		if strings.Join(haveSubnets, ",") != strings.Join(subnets, ",") {
			diffs = append(diffs, "subnets")
		}
		haveTags := tagMap(a.Tags)
		var setTags, dropTags []string
		for k, v := range tags {
			if haveTags[k] != v {
				setTags = append(setTags, k)
			}
		}
		for k := range haveTags {
			if _, keep := tags[k]; !keep && (strings.HasPrefix(k, TagNodeTemplateLabel) || strings.HasPrefix(k, TagNodeTemplateTaint) || strings.HasPrefix(k, "bosun.dev/")) {
				dropTags = append(dropTags, k)
			}
		}
		sort.Strings(setTags)
		sort.Strings(dropTags)
		if len(setTags)+len(dropTags) > 0 {
			diffs = append(diffs, "tags "+strings.Join(append(setTags, dropTags...), ","))
		}
		if len(diffs) == 0 {
			continue
		}
		changes = append(changes, provider.Change{Action: provider.Update, Resource: "node-group", Name: g.ID, Detail: strings.Join(diffs, "; ")})
		if !apply {
			continue
		}
		up := &autoscaling.UpdateAutoScalingGroupInput{AutoScalingGroupName: aws.String(name), MinSize: aws.Int32(int32(g.MinSize)), MaxSize: aws.Int32(int32(g.MaxSize)), // #nosec G115
			VPCZoneIdentifier: aws.String(strings.Join(subnets, ",")), MixedInstancesPolicy: mip}
		// The agent owns the desired capacity; only keep it in range.
		if d := int(aws.ToInt32(a.DesiredCapacity)); d < g.MinSize {
			up.DesiredCapacity = aws.Int32(int32(g.MinSize)) // #nosec G115
		} else if d > g.MaxSize {
			up.DesiredCapacity = aws.Int32(int32(g.MaxSize)) // #nosec G115
		}
		if _, err := x.asg.UpdateAutoScalingGroup(ctx, up); err != nil {
			return changes, fmt.Errorf("updating Auto Scaling group %s, %w", name, err)
		}
		if len(setTags) > 0 {
			sub := map[string]string{}
			for _, k := range setTags {
				sub[k] = tags[k]
			}
			if _, err := x.asg.CreateOrUpdateTags(ctx, &autoscaling.CreateOrUpdateTagsInput{Tags: asgTagList(name, sub)}); err != nil {
				return changes, fmt.Errorf("tagging Auto Scaling group %s, %w", name, err)
			}
		}
		if len(dropTags) > 0 {
			sub := map[string]string{}
			for _, k := range dropTags {
				sub[k] = haveTags[k]
			}
			if _, err := x.asg.DeleteTags(ctx, &autoscaling.DeleteTagsInput{Tags: asgTagList(name, sub)}); err != nil {
				return changes, fmt.Errorf("untagging Auto Scaling group %s, %w", name, err)
			}
		}
	}
	names := make([]string, 0, len(existing))
	for n := range existing {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		a := existing[n]
		tags := tagMap(a.Tags)
		if want[n] || !ours(tags, spec.ID) {
			continue
		}
		changes = append(changes, provider.Change{Action: provider.Delete, Resource: "node-group", Name: spec.ID + "/" + tags[TagPool], Detail: n})
		if !apply {
			continue
		}
		if _, err := x.asg.DeleteAutoScalingGroup(ctx, &autoscaling.DeleteAutoScalingGroupInput{AutoScalingGroupName: aws.String(n), ForceDelete: aws.Bool(true)}); err != nil {
			return changes, fmt.Errorf("deleting Auto Scaling group %s, %w", n, err)
		}
		if _, err := x.ec2.DeleteLaunchTemplate(ctx, &ec2.DeleteLaunchTemplateInput{LaunchTemplateName: aws.String(n)}); err != nil {
			return changes, fmt.Errorf("deleting launch template %s, %w", n, err)
		}
	}
	return changes, nil
}

func tagMap(tags []asgtypes.TagDescription) map[string]string {
	m := map[string]string{}
	for _, t := range tags {
		m[aws.ToString(t.Key)] = aws.ToString(t.Value)
	}
	return m
}

func asgTagList(group string, tags map[string]string) []asgtypes.Tag {
	keys := make([]string, 0, len(tags))
	for k := range tags {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	out := make([]asgtypes.Tag, 0, len(keys))
	for _, k := range keys {
		// Bosun's own tags go to the instances too: the provider finds
		// them by cluster.
		propagate := strings.HasPrefix(k, "bosun.dev/") || strings.HasPrefix(k, "kubernetes.io/cluster/")
		out = append(out, asgtypes.Tag{Key: aws.String(k), Value: aws.String(tags[k]), PropagateAtLaunch: aws.Bool(propagate),
			ResourceId: aws.String(group), ResourceType: aws.String("auto-scaling-group")})
	}
	return out
}

// mixedPolicy is the group's MixedInstancesPolicy: the pool's types in
// order; spot pools all spot above a base of 0 with
// price-capacity-optimized, on-demand pools all on-demand, prioritized.
func mixedPolicy(name string, g provider.GroupSpec) *asgtypes.MixedInstancesPolicy {
	var overrides []asgtypes.LaunchTemplateOverrides
	for _, t := range g.InstanceTypes {
		overrides = append(overrides, asgtypes.LaunchTemplateOverrides{InstanceType: aws.String(t)})
	}
	dist := &asgtypes.InstancesDistribution{OnDemandBaseCapacity: aws.Int32(0), OnDemandPercentageAboveBaseCapacity: aws.Int32(100), OnDemandAllocationStrategy: aws.String("prioritized")}
	if g.Lifecycle == provider.Spot {
		dist.OnDemandPercentageAboveBaseCapacity = aws.Int32(0)
		dist.SpotAllocationStrategy = aws.String("price-capacity-optimized")
	}
	return &asgtypes.MixedInstancesPolicy{
		LaunchTemplate: &asgtypes.LaunchTemplate{
			LaunchTemplateSpecification: &asgtypes.LaunchTemplateSpecification{LaunchTemplateName: aws.String(name), Version: aws.String("$Default")},
			Overrides:                   overrides,
		},
		InstancesDistribution: dist,
	}
}

// launchTemplate creates the pool's launch template, or a new default
// version when the template hash changed (L44).
func (x *Infra) launchTemplate(ctx context.Context, spec provider.ClusterSpec, g provider.GroupSpec, cp *ekstypes.Cluster, apply bool) ([]provider.Change, error) {
	name := GroupName(spec.ID, g.Pool)
	out, err := x.ec2.DescribeLaunchTemplates(ctx, &ec2.DescribeLaunchTemplatesInput{Filters: []ec2types.Filter{{Name: aws.String("launch-template-name"), Values: []string{name}}}})
	if err != nil {
		return nil, fmt.Errorf("describing launch template %s, %w", name, err)
	}
	var lt *ec2types.LaunchTemplate
	if len(out.LaunchTemplates) > 0 {
		lt = &out.LaunchTemplates[0]
		tags := map[string]string{}
		for _, t := range lt.Tags {
			tags[aws.ToString(t.Key)] = aws.ToString(t.Value)
		}
		if !ours(tags, spec.ID) {
			return nil, fmt.Errorf("launch template %s exists without Bosun's tags: Bosun does not change what it did not create", name)
		}
		// The default version's description names its template hash.
		v, err := x.ec2.DescribeLaunchTemplateVersions(ctx, &ec2.DescribeLaunchTemplateVersionsInput{LaunchTemplateName: aws.String(name), Versions: []string{"$Default"}})
		if err != nil {
			return nil, fmt.Errorf("describing the default version of launch template %s, %w", name, err)
		}
		if len(v.LaunchTemplateVersions) == 1 && aws.ToString(v.LaunchTemplateVersions[0].VersionDescription) == templateDescription(g.TemplateHash) {
			return nil, nil
		}
	}
	action := provider.Create
	detail := "template " + g.TemplateHash
	if lt != nil {
		action, detail = provider.Update, "new version for template "+g.TemplateHash
	}
	ch := []provider.Change{{Action: action, Resource: "launch-template", Name: name, Detail: detail}}
	if !apply {
		return ch, nil
	}
	if cp == nil || cp.Status != ekstypes.ClusterStatusActive {
		return ch, fmt.Errorf("launch template %s needs the control plane's endpoint: EKS cluster %s is not ACTIVE yet; run again when it is", name, spec.ID)
	}
	data, err := x.templateData(ctx, spec, g, cp)
	if err != nil {
		return ch, err
	}
	tagSpec := []ec2types.TagSpecification{{ResourceType: ec2types.ResourceTypeLaunchTemplate, Tags: ec2Tags(map[string]string{TagCluster: spec.ID, TagManagedBy: managedBy, TagPool: g.Pool})}}
	if lt == nil {
		if _, err := x.ec2.CreateLaunchTemplate(ctx, &ec2.CreateLaunchTemplateInput{LaunchTemplateName: aws.String(name), LaunchTemplateData: data, TagSpecifications: tagSpec,
			VersionDescription: aws.String(templateDescription(g.TemplateHash))}); err != nil {
			return ch, fmt.Errorf("creating launch template %s, %w", name, err)
		}
		return ch, nil
	}
	v, err := x.ec2.CreateLaunchTemplateVersion(ctx, &ec2.CreateLaunchTemplateVersionInput{LaunchTemplateName: aws.String(name), LaunchTemplateData: data, VersionDescription: aws.String(templateDescription(g.TemplateHash))})
	if err != nil {
		return ch, fmt.Errorf("creating a version of launch template %s, %w", name, err)
	}
	if _, err := x.ec2.ModifyLaunchTemplate(ctx, &ec2.ModifyLaunchTemplateInput{LaunchTemplateName: aws.String(name), DefaultVersion: aws.String(strconv.FormatInt(aws.ToInt64(v.LaunchTemplateVersion.VersionNumber), 10))}); err != nil {
		return ch, fmt.Errorf("making the new version of launch template %s the default, %w", name, err)
	}
	return ch, nil
}

// templateDescription is the version description that names a launch
// template version's template hash.
func templateDescription(hash string) string { return "bosun template " + hash }

func ec2Tags(m map[string]string) []ec2types.Tag {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	out := make([]ec2types.Tag, 0, len(keys))
	for _, k := range keys {
		out = append(out, ec2types.Tag{Key: aws.String(k), Value: aws.String(m[k])})
	}
	return out
}

// templateData is the launch template's content: image, instance profile,
// security groups, IMDSv2, and user data that registers the node with the
// pool's labels (the template hash among them) and taints.
func (x *Infra) templateData(ctx context.Context, spec provider.ClusterSpec, g provider.GroupSpec, cp *ekstypes.Cluster) (*ec2types.RequestLaunchTemplateData, error) {
	image := g.Image
	if image == "" {
		arch := "x86_64"
		if t, ok := ec2catalog.Lookup(g.InstanceTypes[0]); ok && t.Arch == ec2catalog.ArchARM {
			arch = "arm64"
		}
		param := "/aws/service/eks/optimized-ami/" + spec.KubernetesVersion + "/amazon-linux-2023/" + arch + "/standard/recommended/image_id"
		out, err := x.ssm.GetParameter(ctx, &ssm.GetParameterInput{Name: aws.String(param)})
		if err != nil {
			return nil, fmt.Errorf("cluster %s, node pool %s: reading the EKS-optimized image from SSM parameter %s (or set config item %s), %w", spec.ID, g.Pool, param, provider.ConfigNodeImage, err)
		}
		image = aws.ToString(out.Parameter.Value)
	}
	data := &ec2types.RequestLaunchTemplateData{
		ImageId:            aws.String(image),
		IamInstanceProfile: &ec2types.LaunchTemplateIamInstanceProfileSpecificationRequest{Arn: aws.String(spec.ConfigItems[ConfigNodeInstanceProfile])},
		SecurityGroupIds:   splitList(spec.ConfigItems[ConfigSecurityGroups]),
		MetadataOptions:    &ec2types.LaunchTemplateInstanceMetadataOptionsRequest{HttpTokens: ec2types.LaunchTemplateHttpTokensStateRequired, HttpPutResponseHopLimit: aws.Int32(2)},
		UserData:           aws.String(base64.StdEncoding.EncodeToString([]byte(UserData(spec.ID, cp, g)))),
	}
	return data, nil
}

// UserData is the nodeadm (Amazon Linux 2023) configuration of a pool's
// nodes: the cluster to join and the kubelet's node labels and taints at
// registration.
func UserData(cluster string, cp *ekstypes.Cluster, g provider.GroupSpec) string {
	keys := make([]string, 0, len(g.Labels))
	for k := range g.Labels {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	labels := make([]string, 0, len(keys))
	for _, k := range keys {
		labels = append(labels, k+"="+g.Labels[k])
	}
	var taints []string
	for _, t := range g.Taints {
		taints = append(taints, t.Key+"="+t.Value+":"+string(t.Effect))
	}
	ca, cidr := "", ""
	if cp.CertificateAuthority != nil {
		ca = aws.ToString(cp.CertificateAuthority.Data)
	}
	if cp.KubernetesNetworkConfig != nil {
		cidr = aws.ToString(cp.KubernetesNetworkConfig.ServiceIpv4Cidr)
	}
	var b strings.Builder
	b.WriteString("MIME-Version: 1.0\nContent-Type: multipart/mixed; boundary=\"BOSUN\"\n\n--BOSUN\nContent-Type: application/node.eks.aws\n\n")
	b.WriteString("apiVersion: node.eks.aws/v1alpha1\nkind: NodeConfig\nspec:\n  cluster:\n")
	fmt.Fprintf(&b, "    name: %s\n    apiServerEndpoint: %s\n    certificateAuthority: %s\n    cidr: %s\n", cluster, aws.ToString(cp.Endpoint), ca, cidr)
	b.WriteString("  kubelet:\n    flags:\n")
	fmt.Fprintf(&b, "      - --node-labels=%s\n", strings.Join(labels, ","))
	if len(taints) > 0 {
		fmt.Fprintf(&b, "      - --register-with-taints=%s\n", strings.Join(taints, ","))
	}
	b.WriteString("\n--BOSUN--\n")
	return b.String()
}
