package aws_test

import (
	"encoding/json"
	"os"
	"testing"
)

type policy struct {
	Statement []struct {
		Effect string
		Action any
	}
}

func actions(t *testing.T, path string) map[string]bool {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var p policy
	if err := json.Unmarshal(data, &p); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	out := map[string]bool{}
	for _, s := range p.Statement {
		if s.Effect != "Allow" {
			t.Errorf("%s: statement with effect %q", path, s.Effect)
		}
		switch a := s.Action.(type) {
		case string:
			out[a] = true
		case []any:
			for _, x := range a {
				out[x.(string)] = true
			}
		}
	}
	for a := range out {
		if a == "*" || a[len(a)-1] == '*' {
			t.Errorf("%s: wildcard action %q (least privilege)", path, a)
		}
	}
	return out
}

// The shipped IAM policies allow every call the provider and the infra
// step make, and nothing else.
func TestIAMPolicies(t *testing.T) {
	agent := []string{
		"autoscaling:DescribeAutoScalingGroups", "autoscaling:DescribeScalingActivities", "autoscaling:SetDesiredCapacity",
		"autoscaling:TerminateInstanceInAutoScalingGroup", "ec2:DescribeInstances", "ec2:DescribeInstanceTypeOfferings",
		// LaunchInstances launches with the caller's rights: CreateFleet
		// from the group's launch template, which passes the node role.
		"autoscaling:LaunchInstances", "ec2:CreateFleet", "ec2:DescribeLaunchTemplateVersions", "iam:PassRole",
		"ec2:DescribeSpotPriceHistory", "pricing:GetProducts", "sqs:ReceiveMessage", "sqs:DeleteMessage",
	}
	infra := []string{
		"autoscaling:DescribeAutoScalingGroups", "autoscaling:CreateAutoScalingGroup", "autoscaling:UpdateAutoScalingGroup",
		"autoscaling:DeleteAutoScalingGroup", "autoscaling:CreateOrUpdateTags", "autoscaling:DeleteTags",
		"ec2:DescribeSubnets", "ec2:DescribeLaunchTemplates", "ec2:DescribeLaunchTemplateVersions", "ec2:CreateLaunchTemplate",
		"ec2:CreateLaunchTemplateVersion", "ec2:ModifyLaunchTemplate", "ec2:DeleteLaunchTemplate", "ec2:CreateTags", "ec2:RunInstances",
		"eks:DescribeCluster", "eks:CreateCluster", "eks:UpdateClusterVersion", "eks:TagResource", "iam:PassRole",
		"sqs:GetQueueUrl", "sqs:CreateQueue", "sqs:TagQueue", "sqs:ListQueueTags", "sqs:GetQueueAttributes", "sqs:SetQueueAttributes",
		"events:DescribeRule", "events:PutRule", "events:PutTargets", "events:TagResource", "ssm:GetParameter",
	}
	for path, want := range map[string][]string{"../../../deploy/iam/agent.json": agent, "../../../deploy/iam/infra.json": infra} {
		got := actions(t, path)
		wantSet := map[string]bool{}
		for _, a := range want {
			wantSet[a] = true
			if !got[a] {
				t.Errorf("%s does not allow %s", path, a)
			}
		}
		for a := range got {
			if !wantSet[a] {
				t.Errorf("%s allows %s, which Bosun does not call", path, a)
			}
		}
	}
}
