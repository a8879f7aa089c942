// Package certwatch watches every certificate a cluster depends on (L27):
// the API server's serving chain, the agent's client certificate,
// kubernetes.io/tls Secrets (tls.crt only; keys are never read into the
// results, kept or logged), webhook and APIService caBundles, and, on a
// local control plane, the certificates on disk (internal/certs finds
// them). Each pass exports bosun_certificate_expiry_seconds for every one
// and emits a Warning Event when a certificate reaches 30, 14, 7 and 1
// days left, once per threshold per certificate: the thresholds already
// announced are kept in a ConfigMap, so a restarted agent does not repeat
// them, and a renewed certificate (a new expiry) starts again.
package certwatch

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/bosun-platform/bosun/internal/agent/controller"
	"github.com/bosun-platform/bosun/internal/agentcmd"
	"github.com/bosun-platform/bosun/internal/certs"
)

// Name is the certificate watch's name in --controllers, logs and metrics.
const Name = agentcmd.ControllerCertWatch

// DefaultStateConfigMap is the name of the ConfigMap that keeps the
// thresholds already announced, in the agent's namespace.
const DefaultStateConfigMap = "bosun-certwatch"

// ReasonExpiring is the reason of the Events at each threshold.
const ReasonExpiring = "CertificateExpiring"

// Options configure the certificate watch.
type Options struct {
	// StateNamespace and StateConfigMap locate the ConfigMap with the
	// thresholds already announced (required: the agent's namespace and
	// DefaultStateConfigMap).
	StateNamespace, StateConfigMap string
	// PKIDir is a directory of PEM certificates to watch too (a local
	// control plane's pki directory; "" = none).
	PKIDir string
}

// Validate checks that the state ConfigMap is named.
func (o Options) Validate() error {
	if o.StateNamespace == "" || o.StateConfigMap == "" {
		return fmt.Errorf("%s: the state ConfigMap needs a namespace and a name, got %q/%q", Name, o.StateNamespace, o.StateConfigMap)
	}
	return nil
}

// Controller is the certificate watch.
type Controller struct {
	deps   controller.Deps
	opts   Options
	expiry *prometheus.GaugeVec
}

// New returns the certificate watch. Deps.Client is required; Deps.Config
// adds the serving chain and the agent's client certificate, Deps.Dynamic
// the APIService caBundles. The gauge bosun_certificate_expiry_seconds is
// registered with Deps.Registry.
//
// RBAC: secrets list (cluster-wide: TLS Secrets can be anywhere; only
// tls.crt is read), validating and mutating webhook configurations list,
// apiservices list, events create; configmaps get, create, update in
// StateNamespace.
func New(deps controller.Deps, opts Options) (*Controller, error) {
	if err := deps.Require(Name, controller.FieldClient); err != nil {
		return nil, err
	}
	if err := opts.Validate(); err != nil {
		return nil, err
	}
	expiry, err := controller.Register(deps.Registry, prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Name: "bosun_certificate_expiry_seconds",
		Help: "Seconds until a certificate the cluster depends on expires (negative once expired), by where it was found.",
	}, []string{"cluster", "source", "namespace", "name", "subject"}))
	if err != nil {
		return nil, fmt.Errorf("%s: %w", Name, err)
	}
	return &Controller{deps: deps.WithDefaults(), opts: opts, expiry: expiry}, nil
}

// Name identifies the controller.
func (c *Controller) Name() string { return Name }

// Pass scans the cluster's certificates, sets the gauge and announces the
// thresholds reached since the last announcement. A source that cannot be
// read is reported as an error after the others were handled.
func (c *Controller) Pass(ctx context.Context) ([]string, error) {
	found, scanErrs := certs.Scan(ctx, certs.Target{
		Cluster: c.deps.Cluster, Config: c.deps.Config, Client: c.deps.Client, Dynamic: c.deps.Dynamic, PKIDir: c.opts.PKIDir,
	})
	now := c.deps.Clock.Now()
	// The gauge is rebuilt each pass: a certificate gone (renewed, Secret
	// deleted) leaves no stale series behind.
	remaining := map[[5]string]float64{}
	for _, cert := range found {
		k := [5]string{c.deps.Cluster, string(cert.Source), cert.Namespace, cert.Name, cert.Subject}
		left := cert.NotAfter.Sub(now).Seconds()
		if v, ok := remaining[k]; !ok || left < v {
			remaining[k] = left
		}
	}
	c.expiry.Reset()
	for k, v := range remaining {
		c.expiry.WithLabelValues(k[:]...).Set(v)
	}

	state, err := c.readState(ctx)
	if err != nil {
		return nil, errors.Join(append(scanErrs, err)...)
	}
	next := map[string]string{}
	var actions []string
	for _, cert := range found {
		a := certs.Assess(cert, now)
		key := stateKey(cert)
		announced := parseDays(state[key])
		if a.Threshold == 0 {
			continue
		}
		days := int(a.Threshold / certs.Day)
		next[key] = strconv.Itoa(days)
		if announced != 0 && announced <= days {
			continue // this threshold (or a smaller one) was announced
		}
		msg := fmt.Sprintf("certificate %s (%s %s) expires at %s, in %s: %d-day threshold (L27)",
			cert.Subject, cert.Source, location(cert), cert.NotAfter.UTC().Format(time.RFC3339), certs.FormatDuration(a.Remaining), days)
		actions = append(actions, msg)
		if c.deps.DryRun {
			continue
		}
		c.deps.Recorder.Event(c.involved(cert), corev1.EventTypeWarning, ReasonExpiring, msg)
		c.deps.Logger.Warn("certificate expiring", "subject", cert.Subject, "source", cert.Source, "at", location(cert), "notAfter", cert.NotAfter, "threshold", days)
	}
	if !c.deps.DryRun && !sameState(state, next) {
		if err := c.writeState(ctx, next); err != nil {
			return actions, errors.Join(append(scanErrs, err)...)
		}
	}
	return actions, errors.Join(scanErrs...)
}

// stateKey names a certificate and its expiry: a renewed certificate
// (another NotAfter) is a new key and is announced afresh.
func stateKey(c certs.Cert) string {
	r := strings.NewReplacer("/", "_", ":", "_", " ", "_", "=", "_", ",", "_")
	k := fmt.Sprintf("%s.%s.%s.%d.%d", c.Source, c.Namespace, c.Name, c.Index, c.NotAfter.Unix())
	k = r.Replace(k)
	// ConfigMap keys: [-._a-zA-Z0-9]+, at most 253 characters.
	var b strings.Builder
	for _, ch := range k {
		if ch == '-' || ch == '.' || ch == '_' || (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') {
			b.WriteRune(ch)
		} else {
			b.WriteByte('_')
		}
	}
	k = b.String()
	if len(k) > 253 {
		k = k[len(k)-253:]
	}
	return k
}

func parseDays(s string) int {
	n, err := strconv.Atoi(s)
	if err != nil {
		return 0
	}
	return n
}

func location(c certs.Cert) string {
	if c.Namespace != "" {
		return c.Namespace + "/" + c.Name
	}
	return c.Name
}

func sameState(a, b map[string]string) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if b[k] != v {
			return false
		}
	}
	return true
}

// involved is the object an Event is about: the Secret for a Secret's
// certificate, else the state ConfigMap (a cluster-wide certificate has no
// object of its own in the API).
func (c *Controller) involved(cert certs.Cert) *corev1.ObjectReference {
	if cert.Source == certs.SourceSecret {
		return &corev1.ObjectReference{APIVersion: "v1", Kind: "Secret", Namespace: cert.Namespace, Name: cert.Name}
	}
	return &corev1.ObjectReference{APIVersion: "v1", Kind: "ConfigMap", Namespace: c.opts.StateNamespace, Name: c.opts.StateConfigMap}
}

func (c *Controller) readState(ctx context.Context) (map[string]string, error) {
	cm, err := c.deps.Client.CoreV1().ConfigMaps(c.opts.StateNamespace).Get(ctx, c.opts.StateConfigMap, metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		return map[string]string{}, nil
	}
	if err != nil {
		return nil, fmt.Errorf("reading ConfigMap %s/%s, %w", c.opts.StateNamespace, c.opts.StateConfigMap, err)
	}
	if cm.Data == nil {
		return map[string]string{}, nil
	}
	return cm.Data, nil
}

// writeState stores the thresholds announced, for the certificates that
// reached one (the others, and certificates gone, drop out).
func (c *Controller) writeState(ctx context.Context, data map[string]string) error {
	cms := c.deps.Client.CoreV1().ConfigMaps(c.opts.StateNamespace)
	cm, err := cms.Get(ctx, c.opts.StateConfigMap, metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		_, err = cms.Create(ctx, &corev1.ConfigMap{
			ObjectMeta: metav1.ObjectMeta{Name: c.opts.StateConfigMap, Namespace: c.opts.StateNamespace,
				Labels: map[string]string{"app.kubernetes.io/managed-by": "bosun-agent"}},
			Data: data,
		}, metav1.CreateOptions{})
		if err != nil {
			return fmt.Errorf("creating ConfigMap %s/%s, %w", c.opts.StateNamespace, c.opts.StateConfigMap, err)
		}
		return nil
	}
	if err != nil {
		return fmt.Errorf("reading ConfigMap %s/%s, %w", c.opts.StateNamespace, c.opts.StateConfigMap, err)
	}
	cm.Data = data
	if _, err := cms.Update(ctx, cm, metav1.UpdateOptions{}); err != nil {
		return fmt.Errorf("updating ConfigMap %s/%s, %w", c.opts.StateNamespace, c.opts.StateConfigMap, err)
	}
	return nil
}

// keys returns the state's keys, sorted (tests).
func keys(m map[string]string) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}
