//go:build integration

package aws_test

import (
	"context"
	"fmt"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/autoscaling"

	bosunaws "github.com/bosun-platform/bosun/internal/provider/aws"
	"github.com/bosun-platform/bosun/internal/provider/aws/awstest"
)

// groupsOnMoto creates n groups of cluster c1 with one instance each.
func groupsOnMoto(t testing.TB, moto *awstest.Moto, n int) {
	for i := range n {
		moto.CreateGroup(t, awstest.Group{Cluster: "c1", Pool: fmt.Sprintf("pool-%02d", i), Spot: i%2 == 0, Types: []string{"m5.large", "m5a.large"}, Zones: []string{"us-east-1a", "us-east-1b"}, Max: 10, Desired: 1})
	}
}

// pass makes the provider calls of one provisioner pass: the groups, then
// every group's instances (internal/agent/provisioner, groups()).
func pass(ctx context.Context, p *bosunaws.Provider) error {
	groups, err := p.NodeGroups(ctx)
	if err != nil {
		return err
	}
	for _, g := range groups {
		if _, err := p.Instances(ctx, g.ID); err != nil {
			return err
		}
	}
	return nil
}

func newPassProvider(t testing.TB, moto *awstest.Moto) *bosunaws.Provider {
	cfg := awstest.Config()
	m := bosunaws.NewMetrics()
	m.Install(&cfg)
	p, err := bosunaws.NewFromConfig(cfg, bosunaws.Options{Cluster: "c1", Region: awstest.Region, Endpoint: moto.URL}, m)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// L10: the requests of a provisioner pass do not grow with the number of
// groups: at most 3 Describe calls, the same for 5 groups as for 50.
func TestIntegrationMotoRequestsPerPassConstant(t *testing.T) {
	moto := awstest.Get(t)
	ctx := context.Background()
	perPass := map[int]float64{}
	for _, n := range []int{5, 50} {
		moto.Reset(t)
		groupsOnMoto(t, moto, n)
		p := newPassProvider(t, moto)
		if err := pass(ctx, p); err != nil {
			t.Fatal(err)
		}
		perPass[n] = p.Metrics().Count("", "")
		if perPass[n] > 3 {
			t.Errorf("%d groups: %v requests in a pass, want <= 3", n, perPass[n])
		}
		// An outstanding scale-up adds the activity read: still one
		// call, whichever group waits.
		as := autoscaling.NewFromConfig(awstest.Config(), func(o *autoscaling.Options) { o.BaseEndpoint = aws.String(moto.URL) })
		if _, err := as.SuspendProcesses(ctx, &autoscaling.SuspendProcessesInput{AutoScalingGroupName: aws.String("bosun-c1-pool-00"), ScalingProcesses: []string{"Launch"}}); err != nil {
			t.Fatal(err)
		}
		before := p.Metrics().Count("", "")
		if err := p.SetTargetSize(ctx, "c1/pool-00", 3); err != nil {
			t.Fatal(err)
		}
		if err := pass(ctx, p); err != nil {
			t.Fatal(err)
		}
		// (Less the one-time LaunchInstances probe moto answers with a 500:
		// the scale-up then goes through SetDesiredCapacity for good.)
		probe := p.Metrics().Count("Auto Scaling", "LaunchInstances")
		if got := p.Metrics().Count("", "") - before - probe; got > 1+3 {
			t.Errorf("%d groups, scale-up outstanding: %v requests (SetDesiredCapacity + pass), want <= 4", n, got)
		}
	}
	if perPass[5] != perPass[50] {
		t.Errorf("requests per pass: %v with 5 groups, %v with 50; want the same", perPass[5], perPass[50])
	}
}

// BenchmarkMotoProvisionerPass reports the AWS requests of one provisioner
// pass over 50 groups (docs/benchmarks.md, "AWS provider").
func BenchmarkMotoProvisionerPass(b *testing.B) {
	moto := awstest.Get(b)
	ctx := context.Background()
	for _, n := range []int{1, 50} {
		b.Run(fmt.Sprintf("groups=%d", n), func(b *testing.B) {
			moto.Reset(b)
			groupsOnMoto(b, moto, n)
			p := newPassProvider(b, moto)
			b.ResetTimer()
			for range b.N {
				if err := pass(ctx, p); err != nil {
					b.Fatal(err)
				}
			}
			b.StopTimer()
			m := p.Metrics()
			b.ReportMetric(m.Count("", "")/float64(b.N), "requests/pass")
			b.ReportMetric((m.Count("", "DescribeAutoScalingGroups")+m.Count("", "DescribeInstances")+m.Count("", "DescribeScalingActivities"))/float64(b.N), "describes/pass")
		})
	}
}
