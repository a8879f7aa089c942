// Package awstest runs moto (an AWS emulator) for tests of the AWS
// provider: one moto_server per test package on a free loopback port,
// started on first use and stopped by PID when the package's tests end.
// Where moto_server is not on PATH, tests that need it skip and say why.
package awstest

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"strconv"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/aws/retry"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/autoscaling"
	asgtypes "github.com/aws/aws-sdk-go-v2/service/autoscaling/types"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	ec2types "github.com/aws/aws-sdk-go-v2/service/ec2/types"
)

// Region every test uses.
const Region = "us-east-1"

// Moto is a running moto_server.
type Moto struct {
	// URL is its endpoint, e.g. http://127.0.0.1:41234.
	URL string
	cmd *exec.Cmd
}

var (
	mu      sync.Mutex
	running *Moto
	skip    string
)

// Main runs the package's tests and stops moto afterwards.
func Main(m *testing.M) {
	code := m.Run()
	mu.Lock()
	if running != nil {
		running.Stop()
	}
	mu.Unlock()
	os.Exit(code)
}

// Get returns the package's moto, starting it on first use; the test
// skips when moto_server is not installed.
func Get(t testing.TB) *Moto {
	t.Helper()
	mu.Lock()
	defer mu.Unlock()
	if running != nil {
		return running
	}
	if skip != "" {
		t.Skip(skip)
	}
	path, err := exec.LookPath("moto_server")
	if err != nil {
		skip = "moto_server is not on PATH (pip install 'moto[server]'): AWS provider tests need it"
		t.Skip(skip)
	}
	m, err := Start(path)
	if err != nil {
		t.Fatalf("starting moto: %v", err)
	}
	running = m
	return m
}

// Start runs moto_server at path on a free loopback port and waits until
// it answers.
func Start(path string) (*Moto, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, fmt.Errorf("finding a free port, %w", err)
	}
	port := l.Addr().(*net.TCPAddr).Port
	_ = l.Close()
	cmd := exec.Command(path, "-H", "127.0.0.1", "-p", strconv.Itoa(port)) // #nosec G204 -- test harness, path from LookPath
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	cmd.Stdout, cmd.Stderr = nil, nil
	if os.Getenv("BOSUN_MOTO_LOG") != "" {
		cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
	}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("starting %s, %w", path, err)
	}
	m := &Moto{URL: "http://127.0.0.1:" + strconv.Itoa(port), cmd: cmd}
	deadline := time.Now().Add(60 * time.Second)
	for time.Now().Before(deadline) {
		resp, err := http.Get(m.URL + "/moto-api/data.json") // #nosec G107 -- loopback test server
		if err == nil {
			_ = resp.Body.Close()
			return m, nil
		}
		time.Sleep(100 * time.Millisecond)
	}
	m.Stop()
	return nil, errors.New("moto_server did not answer within 60s")
}

// Stop ends moto_server (its process group, by PID).
func (m *Moto) Stop() {
	if m.cmd == nil || m.cmd.Process == nil {
		return
	}
	_ = syscall.Kill(-m.cmd.Process.Pid, syscall.SIGTERM)
	done := make(chan struct{})
	go func() { _ = m.cmd.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		_ = syscall.Kill(-m.cmd.Process.Pid, syscall.SIGKILL)
		<-done
	}
}

// Reset drops every resource moto holds, so a test starts from an empty
// account.
func (m *Moto) Reset(t testing.TB) {
	t.Helper()
	req, _ := http.NewRequestWithContext(context.Background(), http.MethodPost, m.URL+"/moto-api/reset", nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("resetting moto: %v", err)
	}
	_ = resp.Body.Close()
}

// Config is an SDK configuration for the region with static test
// credentials (moto accepts any) and few retries.
func Config() aws.Config {
	return aws.Config{
		Region:      Region,
		Credentials: credentials.NewStaticCredentialsProvider("testing", "testing", ""),
		Retryer:     func() aws.Retryer { return retry.NewStandard(func(o *retry.StandardOptions) { o.MaxAttempts = 2 }) },
	}
}

// Group describes an Auto Scaling group to create in moto the way Bosun's
// infra step tags it.
type Group struct {
	Cluster, Pool string
	Spot          bool
	Types, Zones  []string
	Min, Max      int32
	Desired       int32
	Priority      int
	// ExtraTags are added as they are (e.g. node template labels).
	ExtraTags map[string]string
}

// CreateGroup creates a launch template and a mixed-instances Auto Scaling
// group named bosun-<cluster>-<pool> with Bosun's tags.
func (m *Moto) CreateGroup(t testing.TB, g Group) string {
	t.Helper()
	ctx := context.Background()
	cfg := Config()
	ec := ec2.NewFromConfig(cfg, func(o *ec2.Options) { o.BaseEndpoint = aws.String(m.URL) })
	as := autoscaling.NewFromConfig(cfg, func(o *autoscaling.Options) { o.BaseEndpoint = aws.String(m.URL) })
	name := "bosun-" + g.Cluster + "-" + g.Pool
	if _, err := ec.CreateLaunchTemplate(ctx, &ec2.CreateLaunchTemplateInput{
		LaunchTemplateName: aws.String(name),
		LaunchTemplateData: &ec2types.RequestLaunchTemplateData{ImageId: aws.String("ami-12c6146b"), InstanceType: ec2types.InstanceType(g.Types[0])},
	}); err != nil {
		t.Fatalf("creating launch template %s: %v", name, err)
	}
	var overrides []asgtypes.LaunchTemplateOverrides
	for _, typ := range g.Types {
		overrides = append(overrides, asgtypes.LaunchTemplateOverrides{InstanceType: aws.String(typ)})
	}
	dist := &asgtypes.InstancesDistribution{OnDemandBaseCapacity: aws.Int32(0), OnDemandPercentageAboveBaseCapacity: aws.Int32(100)}
	lc := "on-demand"
	if g.Spot {
		dist.OnDemandPercentageAboveBaseCapacity = aws.Int32(0)
		dist.SpotAllocationStrategy = aws.String("price-capacity-optimized")
		lc = "spot"
	}
	tags := map[string]string{"bosun.dev/cluster": g.Cluster, "bosun.dev/pool": g.Pool, "bosun.dev/lifecycle": lc, "bosun.dev/priority": strconv.Itoa(g.Priority)}
	for k, v := range g.ExtraTags {
		tags[k] = v
	}
	var asgTags []asgtypes.Tag
	for k, v := range tags {
		asgTags = append(asgTags, asgtypes.Tag{Key: aws.String(k), Value: aws.String(v), PropagateAtLaunch: aws.Bool(true), ResourceId: aws.String(name), ResourceType: aws.String("auto-scaling-group")})
	}
	if _, err := as.CreateAutoScalingGroup(ctx, &autoscaling.CreateAutoScalingGroupInput{
		AutoScalingGroupName: aws.String(name), MinSize: aws.Int32(g.Min), MaxSize: aws.Int32(g.Max), DesiredCapacity: aws.Int32(g.Desired),
		AvailabilityZones: g.Zones,
		MixedInstancesPolicy: &asgtypes.MixedInstancesPolicy{
			LaunchTemplate: &asgtypes.LaunchTemplate{
				LaunchTemplateSpecification: &asgtypes.LaunchTemplateSpecification{LaunchTemplateName: aws.String(name), Version: aws.String("$Latest")},
				Overrides:                   overrides,
			},
			InstancesDistribution: dist,
		},
		Tags: asgTags,
	}); err != nil {
		t.Fatalf("creating Auto Scaling group %s: %v", name, err)
	}
	return name
}
