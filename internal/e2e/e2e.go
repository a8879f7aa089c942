// Package e2e is `bosun e2e`: a built-in smoke suite run against a live
// cluster, kwok-backed or real alike (L43). It creates its own namespace,
// checks that the cluster does the basic things a fleet relies on — a
// Deployment rolls out, a Service gets endpoints, a PodDisruptionBudget
// refuses an eviction, a pending pod gets a node from the provisioner, the
// downscaler's --at preview scales what it should, the rendered add-ons
// are healthy — removes the namespace again, and records the outcome
// (revision, pass/fail per check, duration) in the cluster's status
// ConfigMap, where `bosun promote` reads it.
package e2e

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	policyv1 "k8s.io/api/policy/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/utils/clock"

	"github.com/bosun-platform/bosun/internal/agent"
	"github.com/bosun-platform/bosun/internal/agent/downscaler"
	"github.com/bosun-platform/bosun/internal/agentcmd"
	"github.com/bosun-platform/bosun/internal/fleet"
	"github.com/bosun-platform/bosun/internal/lifecycle"
	"github.com/bosun-platform/bosun/internal/render"
)

// Names of the suite's checks, in the order they run.
const (
	CheckDeployment  = "deployment-rollout"
	CheckService     = "service-endpoints"
	CheckPDB         = "pdb-blocks-eviction"
	CheckProvisioner = "provisioner"
	CheckDownscaler  = "downscaler-preview"
	CheckAddons      = "addons-healthy"
	CheckCleanup     = "cleanup"
)

// LabelSuite marks the namespaces the suite creates.
const LabelSuite = "e2e.bosun.dev/suite"

// Options configure a run of the suite.
type Options struct {
	// Cluster is the fleet cluster ID (recorded with the result).
	Cluster string
	// Kube and Config reach the cluster (Config runs the downscaler's
	// preview through the agent's own code).
	Kube   kubernetes.Interface
	Config *rest.Config
	// Rendered is what the fleet renders for the cluster; nil (no fleet
	// given) skips the add-on check.
	Rendered *render.Result
	// Provisioner, when non-empty, says why the provisioner check is
	// skipped (no agent with a provisioner on this cluster).
	SkipProvisioner string
	// PoolSelector selects the nodes of the pool the provisioner check's
	// pending pod asks for (the cluster's first worker pool); nil: any.
	PoolSelector map[string]string
	// Image of the test pods (default registry.k8s.io/pause:3.10).
	Image string
	// Timeout bounds each check (default 2m; the provisioner check gets
	// twice that: a node has to boot).
	Timeout time.Duration
	// PollEvery is how often conditions are checked (default 500ms).
	PollEvery time.Duration
	// Record writes the result to the cluster's status ConfigMap.
	Record bool
	// Clock (default the real clock).
	Clock clock.Clock
	// Out receives a line per check as it finishes (default discard).
	Out io.Writer
}

// suite is one run.
type suite struct {
	Options
	ns     string
	result lifecycle.E2EResult
}

// Run runs the suite, cleans up after itself and, with Record, writes the
// result to the cluster's status. The error is about the suite itself
// (the cluster could not be reached, the result not recorded); failed
// checks are in the result.
func Run(ctx context.Context, opts Options) (lifecycle.E2EResult, error) {
	if opts.Kube == nil || opts.Config == nil {
		return lifecycle.E2EResult{}, errors.New("e2e: Kube and Config are required")
	}
	if opts.Image == "" {
		opts.Image = "registry.k8s.io/pause:3.10"
	}
	if opts.Timeout <= 0 {
		opts.Timeout = 2 * time.Minute
	}
	if opts.PollEvery <= 0 {
		opts.PollEvery = 500 * time.Millisecond
	}
	if opts.Clock == nil {
		opts.Clock = clock.RealClock{}
	}
	if opts.Out == nil {
		opts.Out = io.Discard
	}
	live, err := lifecycle.ReadStatus(ctx, opts.Kube)
	if err != nil {
		return lifecycle.E2EResult{}, fmt.Errorf("cluster %s: %w", opts.Cluster, err)
	}
	suffix := make([]byte, 3)
	if _, err := rand.Read(suffix); err != nil {
		return lifecycle.E2EResult{}, err
	}
	s := &suite{Options: opts, ns: "bosun-e2e-" + hex.EncodeToString(suffix)}
	start := opts.Clock.Now()
	s.result = lifecycle.E2EResult{
		Cluster: opts.Cluster, Revision: live.Status.ChannelRevision, Version: live.Status.AppliedVersion,
		Started: start.UTC(),
	}
	// The checks depend on each other: a Deployment that never rolls out
	// fails the Service and PDB checks that need its pods.
	deployed := s.check(ctx, CheckDeployment, opts.Timeout, s.deployment)
	s.needs(ctx, CheckService, deployed, s.service)
	s.needs(ctx, CheckPDB, deployed, s.pdb)
	if opts.SkipProvisioner != "" {
		s.skip(CheckProvisioner, opts.SkipProvisioner)
	} else {
		s.check(ctx, CheckProvisioner, 2*opts.Timeout, s.provisioner)
	}
	s.check(ctx, CheckDownscaler, opts.Timeout, s.downscalerPreview)
	if opts.Rendered == nil {
		s.skip(CheckAddons, "no fleet given (--fleet): nothing rendered to compare with")
	} else {
		s.check(ctx, CheckAddons, opts.Timeout, s.addons)
	}
	s.check(ctx, CheckCleanup, opts.Timeout, s.cleanup)

	s.result.Passed = true
	for _, c := range s.result.Checks {
		if c.Result == lifecycle.CheckFailed {
			s.result.Passed = false
		}
	}
	s.result.Duration = opts.Clock.Since(start).Round(time.Millisecond).String()
	if opts.Record {
		if err := lifecycle.WriteE2E(ctx, opts.Kube, s.result); err != nil {
			return s.result, fmt.Errorf("cluster %s: recording the e2e result, %w", opts.Cluster, err)
		}
	}
	return s.result, nil
}

// check runs one check with its own deadline and records its outcome.
func (s *suite) check(ctx context.Context, name string, timeout time.Duration, f func(ctx context.Context) error) bool {
	start := s.Clock.Now()
	cctx, cancel := context.WithTimeout(ctx, timeout)
	err := f(cctx)
	cancel()
	var skip skipped
	switch {
	case errors.As(err, &skip):
		s.record(name, lifecycle.CheckSkipped, string(skip), start)
	case err != nil:
		s.record(name, lifecycle.CheckFailed, err.Error(), start)
	default:
		s.record(name, lifecycle.CheckPassed, "", start)
	}
	return err == nil
}

// needs runs a check that depends on an earlier one, failing it when that
// failed.
func (s *suite) needs(ctx context.Context, name string, ok bool, f func(ctx context.Context) error) {
	if !ok {
		s.record(name, lifecycle.CheckFailed, "not run: "+CheckDeployment+" failed", s.Clock.Now())
		return
	}
	s.check(ctx, name, s.Timeout, f)
}

func (s *suite) skip(name, why string) { s.record(name, lifecycle.CheckSkipped, why, s.Clock.Now()) }

func (s *suite) record(name, result, msg string, start time.Time) {
	d := s.Clock.Since(start).Round(time.Millisecond)
	s.result.Checks = append(s.result.Checks, lifecycle.CheckResult{Name: name, Result: result, Message: msg, Duration: d.String()})
	line := fmt.Sprintf("%-20s %-8s %s", name, result, d)
	if msg != "" {
		line += "  " + msg
	}
	fmt.Fprintln(s.Out, strings.TrimRight(line, " "))
}

// skipped is returned by a check that cannot run here, with the reason.
type skipped string

func (s skipped) Error() string { return string(s) }

// poll calls cond every PollEvery until it is true, fails, or ctx ends;
// then it returns an error naming what and the last state seen.
func (s *suite) poll(ctx context.Context, what string, cond func(ctx context.Context) (bool, string, error)) error {
	last := ""
	for {
		ok, state, err := cond(ctx)
		if err != nil && ctx.Err() == nil {
			return err
		}
		if ok {
			return nil
		}
		if state != "" {
			last = state
		}
		select {
		case <-ctx.Done():
			if last != "" {
				return fmt.Errorf("%s: timed out (%s)", what, last)
			}
			return fmt.Errorf("%s: timed out", what)
		case <-s.Clock.After(s.PollEvery):
		}
	}
}

var appLabels = map[string]string{"app.kubernetes.io/name": "bosun-e2e-web"}

func (s *suite) podSpec() corev1.PodSpec {
	return corev1.PodSpec{
		TerminationGracePeriodSeconds: ptr(int64(1)),
		AutomountServiceAccountToken:  ptr(false),
		// The restricted Pod Security Standard (L37): the suite's pods are
		// admitted wherever the fleet enforces it.
		SecurityContext: &corev1.PodSecurityContext{
			RunAsNonRoot:   ptr(true),
			RunAsUser:      ptr(int64(65535)),
			RunAsGroup:     ptr(int64(65535)),
			SeccompProfile: &corev1.SeccompProfile{Type: corev1.SeccompProfileTypeRuntimeDefault},
		},
		Containers: []corev1.Container{{
			Name: "pause", Image: s.Image,
			// Memory request equal to its limit (L54) and requests set (L58).
			Resources: corev1.ResourceRequirements{
				Requests: corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("10m"), corev1.ResourceMemory: resource.MustParse("16Mi")},
				Limits:   corev1.ResourceList{corev1.ResourceMemory: resource.MustParse("16Mi")},
			},
			// A readiness probe (L58): the pause binary prints its version
			// and exits 0 with -v.
			ReadinessProbe: &corev1.Probe{ProbeHandler: corev1.ProbeHandler{Exec: &corev1.ExecAction{Command: []string{"/pause", "-v"}}}},
			SecurityContext: &corev1.SecurityContext{
				AllowPrivilegeEscalation: ptr(false),
				ReadOnlyRootFilesystem:   ptr(true),
				Capabilities:             &corev1.Capabilities{Drop: []corev1.Capability{"ALL"}},
			},
		}},
	}
}

// podLabels are the labels of the suite's pods: the selector labels and
// the ownership labels production clusters require (L55).
func podLabels(selector map[string]string) map[string]string {
	out := map[string]string{"application": "bosun-e2e", "team": "platform"}
	for k, v := range selector {
		out[k] = v
	}
	return out
}

// deployment creates the suite's namespace and a Deployment of two
// replicas, and waits for its rollout.
func (s *suite) deployment(ctx context.Context) error {
	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: s.ns, Labels: map[string]string{LabelSuite: "true"}}}
	if _, err := s.Kube.CoreV1().Namespaces().Create(ctx, ns, metav1.CreateOptions{}); err != nil {
		return fmt.Errorf("creating namespace %s, %w", s.ns, err)
	}
	d := &appsv1.Deployment{
		ObjectMeta: metav1.ObjectMeta{Name: "web", Namespace: s.ns},
		Spec: appsv1.DeploymentSpec{
			Replicas: ptr(int32(2)),
			Selector: &metav1.LabelSelector{MatchLabels: appLabels},
			Template: corev1.PodTemplateSpec{ObjectMeta: metav1.ObjectMeta{Labels: podLabels(appLabels)}, Spec: s.podSpec()},
		},
	}
	if _, err := s.Kube.AppsV1().Deployments(s.ns).Create(ctx, d, metav1.CreateOptions{}); err != nil {
		return fmt.Errorf("creating Deployment %s/web, %w", s.ns, err)
	}
	return s.poll(ctx, "Deployment "+s.ns+"/web rollout", func(ctx context.Context) (bool, string, error) {
		d, err := s.Kube.AppsV1().Deployments(s.ns).Get(ctx, "web", metav1.GetOptions{})
		if err != nil {
			return false, "", err
		}
		st := d.Status
		ok := st.ObservedGeneration >= d.Generation && st.UpdatedReplicas == 2 && st.AvailableReplicas == 2
		return ok, fmt.Sprintf("%d of 2 replicas available", st.AvailableReplicas), nil
	})
}

// service creates a Service over the Deployment and waits until its
// EndpointSlices list both pods as ready.
func (s *suite) service(ctx context.Context) error {
	svc := &corev1.Service{
		ObjectMeta: metav1.ObjectMeta{Name: "web", Namespace: s.ns},
		Spec: corev1.ServiceSpec{
			Selector: appLabels,
			Ports:    []corev1.ServicePort{{Name: "http", Port: 80, TargetPort: intstr.FromInt32(8080)}},
		},
	}
	if _, err := s.Kube.CoreV1().Services(s.ns).Create(ctx, svc, metav1.CreateOptions{}); err != nil {
		return fmt.Errorf("creating Service %s/web, %w", s.ns, err)
	}
	return s.poll(ctx, "endpoints of Service "+s.ns+"/web", func(ctx context.Context) (bool, string, error) {
		slices, err := s.Kube.DiscoveryV1().EndpointSlices(s.ns).List(ctx, metav1.ListOptions{LabelSelector: discoveryv1.LabelServiceName + "=web"})
		if err != nil {
			return false, "", err
		}
		ready := 0
		for _, sl := range slices.Items {
			for _, ep := range sl.Endpoints {
				if ep.Conditions.Ready != nil && *ep.Conditions.Ready {
					ready++
				}
			}
		}
		return ready == 2, fmt.Sprintf("%d of 2 endpoints ready", ready), nil
	})
}

// pdb creates a PodDisruptionBudget keeping both pods and checks that the
// Eviction API refuses to evict one (429), then that the pod still runs.
func (s *suite) pdb(ctx context.Context) error {
	pdb := &policyv1.PodDisruptionBudget{
		ObjectMeta: metav1.ObjectMeta{Name: "web", Namespace: s.ns},
		Spec: policyv1.PodDisruptionBudgetSpec{
			MinAvailable: ptr(intstr.FromInt32(2)),
			Selector:     &metav1.LabelSelector{MatchLabels: appLabels},
		},
	}
	if _, err := s.Kube.PolicyV1().PodDisruptionBudgets(s.ns).Create(ctx, pdb, metav1.CreateOptions{}); err != nil {
		return fmt.Errorf("creating PodDisruptionBudget %s/web, %w", s.ns, err)
	}
	// Until the disruption controller has counted the pods, the API
	// refuses evictions for another reason; wait for its verdict first.
	err := s.poll(ctx, "PodDisruptionBudget "+s.ns+"/web status", func(ctx context.Context) (bool, string, error) {
		p, err := s.Kube.PolicyV1().PodDisruptionBudgets(s.ns).Get(ctx, "web", metav1.GetOptions{})
		if err != nil {
			return false, "", err
		}
		st := p.Status
		return st.ObservedGeneration >= p.Generation && st.CurrentHealthy == 2 && st.DisruptionsAllowed == 0,
			fmt.Sprintf("%d healthy, %d disruptions allowed", st.CurrentHealthy, st.DisruptionsAllowed), nil
	})
	if err != nil {
		return err
	}
	pods, err := s.Kube.CoreV1().Pods(s.ns).List(ctx, metav1.ListOptions{LabelSelector: "app.kubernetes.io/name=bosun-e2e-web"})
	if err != nil {
		return fmt.Errorf("listing pods of %s, %w", s.ns, err)
	}
	if len(pods.Items) == 0 {
		return fmt.Errorf("no pods of Deployment %s/web", s.ns)
	}
	victim := pods.Items[0].Name
	ev := &policyv1.Eviction{ObjectMeta: metav1.ObjectMeta{Name: victim, Namespace: s.ns}}
	err = s.Kube.PolicyV1().Evictions(s.ns).Evict(ctx, ev)
	switch {
	case err == nil:
		return fmt.Errorf("the eviction of pod %s/%s was allowed although PodDisruptionBudget web keeps 2 of 2 pods", s.ns, victim)
	case !apierrors.IsTooManyRequests(err):
		return fmt.Errorf("evicting pod %s/%s: expected 429 from the PodDisruptionBudget, got %w", s.ns, victim, err)
	}
	p, err := s.Kube.CoreV1().Pods(s.ns).Get(ctx, victim, metav1.GetOptions{})
	if err != nil {
		return fmt.Errorf("pod %s/%s after the refused eviction, %w", s.ns, victim, err)
	}
	if p.DeletionTimestamp != nil {
		return fmt.Errorf("pod %s/%s is being deleted although its eviction was refused", s.ns, victim)
	}
	return nil
}

// provisioner creates a pod that fits no existing node (its node affinity
// excludes every node there is now) and waits until it runs on a new node
// the provisioner brought up.
func (s *suite) provisioner(ctx context.Context) error {
	nodes, err := s.Kube.CoreV1().Nodes().List(ctx, metav1.ListOptions{})
	if err != nil {
		return fmt.Errorf("listing nodes, %w", err)
	}
	before := map[string]bool{}
	var names []string
	for _, n := range nodes.Items {
		before[n.Name] = true
		names = append(names, n.Name)
	}
	spec := s.podSpec()
	spec.NodeSelector = s.PoolSelector
	if len(names) > 0 {
		spec.Affinity = &corev1.Affinity{NodeAffinity: &corev1.NodeAffinity{
			RequiredDuringSchedulingIgnoredDuringExecution: &corev1.NodeSelector{NodeSelectorTerms: []corev1.NodeSelectorTerm{{
				MatchExpressions: []corev1.NodeSelectorRequirement{{Key: corev1.LabelHostname, Operator: corev1.NodeSelectorOpNotIn, Values: names}},
			}}},
		}}
	}
	pod := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "pending", Namespace: s.ns, Labels: podLabels(nil)}, Spec: spec}
	if _, err := s.Kube.CoreV1().Pods(s.ns).Create(ctx, pod, metav1.CreateOptions{}); err != nil {
		return fmt.Errorf("creating pod %s/pending, %w", s.ns, err)
	}
	return s.poll(ctx, "pod "+s.ns+"/pending on a new node", func(ctx context.Context) (bool, string, error) {
		p, err := s.Kube.CoreV1().Pods(s.ns).Get(ctx, "pending", metav1.GetOptions{})
		if err != nil {
			return false, "", err
		}
		if p.Spec.NodeName == "" {
			return false, "still pending", nil
		}
		if before[p.Spec.NodeName] {
			return false, "", fmt.Errorf("pod %s/pending was bound to node %s, which existed before", s.ns, p.Spec.NodeName)
		}
		for _, c := range p.Status.Conditions {
			if c.Type == corev1.PodReady && c.Status == corev1.ConditionTrue {
				return true, "", nil
			}
		}
		return false, "on new node " + p.Spec.NodeName + ", not Ready yet", nil
	})
}

// downscalerPreview annotates a Deployment with an uptime of weekday
// office hours and asks the downscaler's dry-run preview (the agent's own
// code, as `bosun agent --once --dry-run --at` runs it) what it would do
// on the next Sunday night: scale it to zero. The Deployment must be
// untouched afterwards.
func (s *suite) downscalerPreview(ctx context.Context) error {
	d := &appsv1.Deployment{
		ObjectMeta: metav1.ObjectMeta{Name: "sleepy", Namespace: s.ns, Annotations: map[string]string{
			downscaler.AnnotationUptime: "Mon-Fri 08:00-18:00 UTC",
		}},
		Spec: appsv1.DeploymentSpec{
			Replicas: ptr(int32(1)),
			Selector: &metav1.LabelSelector{MatchLabels: map[string]string{"app.kubernetes.io/name": "bosun-e2e-sleepy"}},
			Template: corev1.PodTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Labels: podLabels(map[string]string{"app.kubernetes.io/name": "bosun-e2e-sleepy"})},
				Spec:       s.podSpec(),
			},
		},
	}
	if _, err := s.Kube.AppsV1().Deployments(s.ns).Create(ctx, d, metav1.CreateOptions{}); err != nil {
		return fmt.Errorf("creating Deployment %s/sleepy, %w", s.ns, err)
	}
	at := nextSundayNight(s.Clock.Now())
	var out bytes.Buffer
	err := agent.Run(ctx, agent.Options{
		RESTConfig: s.Config, Controllers: []string{agentcmd.ControllerDownscaler}, Namespace: s.ns,
		Once: true, DryRun: true, At: at, Out: &out, SyncTimeout: s.Timeout,
		Downscaler: downscaler.Defaults{Uptime: "always", Downtime: "never", GracePeriod: 15 * time.Minute},
		Logger:     slog.New(slog.NewTextHandler(io.Discard, nil)),
	})
	if err != nil {
		return fmt.Errorf("downscaler preview at %s, %w", at.Format(time.RFC3339), err)
	}
	want := s.ns + "/sleepy 1 -> 0"
	if !strings.Contains(out.String(), "ScaledDown") || !strings.Contains(out.String(), want) {
		return fmt.Errorf("downscaler preview at %s: expected Deployment %s/sleepy scaled down 1 -> 0, got %q", at.Format(time.RFC3339), s.ns, strings.TrimSpace(out.String()))
	}
	got, err := s.Kube.AppsV1().Deployments(s.ns).Get(ctx, "sleepy", metav1.GetOptions{})
	if err != nil {
		return fmt.Errorf("reading Deployment %s/sleepy, %w", s.ns, err)
	}
	if got.Spec.Replicas == nil || *got.Spec.Replicas != 1 {
		return fmt.Errorf("the preview changed Deployment %s/sleepy (replicas %v): a dry run must change nothing", s.ns, got.Spec.Replicas)
	}
	return nil
}

// nextSundayNight is 03:00 UTC on the first Sunday at least a day after
// now: outside "Mon-Fri 08:00-18:00" and past the downscaler's grace
// period for a Deployment created now.
func nextSundayNight(now time.Time) time.Time {
	t := time.Date(now.Year(), now.Month(), now.Day(), 3, 0, 0, 0, time.UTC).AddDate(0, 0, 1)
	for t.Weekday() != time.Sunday || t.Sub(now) < 24*time.Hour {
		t = t.AddDate(0, 0, 1)
	}
	return t
}

// addons checks that every rendered Deployment, DaemonSet and StatefulSet
// of the cluster has rolled out.
func (s *suite) addons(ctx context.Context) error {
	var bad []string
	err := s.poll(ctx, "rendered add-ons", func(ctx context.Context) (bool, string, error) {
		var err error
		bad, err = lifecycle.RenderedUnhealthy(ctx, s.Kube, s.Rendered)
		if err != nil {
			return false, "", err
		}
		return len(bad) == 0, strings.Join(bad, "; "), nil
	})
	return err
}

// cleanup deletes the suite's namespace and waits until it is gone.
func (s *suite) cleanup(ctx context.Context) error {
	err := s.Kube.CoreV1().Namespaces().Delete(ctx, s.ns, metav1.DeleteOptions{PropagationPolicy: ptr(metav1.DeletePropagationForeground)})
	if apierrors.IsNotFound(err) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("deleting namespace %s, %w", s.ns, err)
	}
	return s.poll(ctx, "deletion of namespace "+s.ns, func(ctx context.Context) (bool, string, error) {
		_, err := s.Kube.CoreV1().Namespaces().Get(ctx, s.ns, metav1.GetOptions{})
		if apierrors.IsNotFound(err) {
			return true, "", nil
		}
		return false, "still terminating", err
	})
}

func ptr[T any](v T) *T { return &v }

// PoolSelector selects the nodes of the cluster's first worker pool (the
// first pool when none is a worker pool); nil without a cluster or pools.
func PoolSelector(cl *fleet.Cluster) map[string]string {
	if cl == nil || len(cl.NodePools) == 0 {
		return nil
	}
	p := cl.NodePools[0]
	for _, np := range cl.NodePools {
		if np.Role == fleet.RoleWorker {
			p = np
			break
		}
	}
	return map[string]string{fleet.LabelPool: p.Name}
}
