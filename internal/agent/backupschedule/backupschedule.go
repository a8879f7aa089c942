// Package backupschedule is the agent controller that backs up its own
// cluster on a schedule (L29): the Secrets (and chosen kinds), encrypted
// with age to the fleet's recipients (public keys only), to a directory or
// s3://bucket/prefix (internal/backup), keeping the newest --backup-keep.
//
// Its schedule is kept in the API, in a status ConfigMap (default
// kube-system/bosun-backup-status: the last backup's ID and time, the last
// attempt and its error, when the next is due), so a restarted agent
// neither backs up again early nor skips a backup that is due. A backup
// killed half-way leaves no manifest: backup.Create writes the encrypted
// archive first and the manifest last, and only a manifest makes a backup
// complete; the next Prune deletes the orphaned archive.
package backupschedule

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"filippo.io/age"
	"github.com/prometheus/client_golang/prometheus"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/discovery/cached/memory"
	"k8s.io/client-go/restmapper"

	"github.com/bosun-platform/bosun/internal/agent/controller"
	"github.com/bosun-platform/bosun/internal/agentcmd"
	"github.com/bosun-platform/bosun/internal/backup"
)

// Name is the controller's name in --controllers, logs and metrics.
const Name = agentcmd.ControllerBackupSchedule

// Defaults of the status ConfigMap and the retention.
const (
	DefaultStatusNamespace = "kube-system"
	DefaultStatusConfigMap = "bosun-backup-status"
	DefaultKeep            = 7
)

// Event reasons.
const (
	ReasonSucceeded = "BackupSucceeded"
	ReasonFailed    = "BackupFailed"
)

// Options configure the scheduled backups.
type Options struct {
	// Every is the time between backups (> 0).
	Every time.Duration
	// To is where backups go: a directory or s3://bucket/prefix (S3
	// credentials from the standard AWS chain).
	To string
	// Recipients are the age public keys (age1...) the backups are
	// encrypted to; at least one. Never a private key.
	Recipients []string
	// Resources are kinds to back up besides Secrets, as resource[.group]
	// (the agent needs list on them: add RBAC for each).
	Resources []string
	// Keep is how many backups of the cluster to keep (>= 1).
	Keep int
	// StatusNamespace and StatusConfigMap locate the status ConfigMap.
	StatusNamespace, StatusConfigMap string
	// OpenStore opens To (nil: backup.OpenStore).
	OpenStore func(ctx context.Context, location string) (backup.Store, error)
}

// Validate checks the options; errors name the flag and what was
// expected.
func (o Options) Validate() error {
	var errs []error
	if o.Every <= 0 {
		errs = append(errs, fmt.Errorf("%s: --backup-every %s: expected a positive duration such as 24h", Name, o.Every))
	}
	if o.To == "" || (strings.Contains(o.To, "://") && !strings.HasPrefix(o.To, "s3://")) || o.To == "s3://" {
		errs = append(errs, fmt.Errorf("%s: --backup-to %q: expected a directory or s3://bucket/prefix", Name, o.To))
	}
	if len(o.Recipients) == 0 {
		errs = append(errs, fmt.Errorf("%s: --backup-recipients: expected at least one age public key (age1...; the fleet's backup.recipients)", Name))
	}
	for i, r := range o.Recipients {
		if _, err := age.ParseX25519Recipient(r); err != nil {
			what := r
			if strings.HasPrefix(strings.ToUpper(r), "AGE-SECRET-KEY-") {
				what = "AGE-SECRET-KEY-… (a private key: never give the agent one)"
			}
			errs = append(errs, fmt.Errorf("%s: --backup-recipients[%d] %q: expected an age public key (age1...)", Name, i, what))
		}
	}
	if o.Keep < 1 {
		errs = append(errs, fmt.Errorf("%s: --backup-keep %d: expected at least 1", Name, o.Keep))
	}
	if o.StatusNamespace == "" || o.StatusConfigMap == "" {
		errs = append(errs, fmt.Errorf("%s: --backup-status-configmap %q/%q: expected namespace/name", Name, o.StatusNamespace, o.StatusConfigMap))
	}
	return errors.Join(errs...)
}

// Controller takes the scheduled backups.
type Controller struct {
	deps    controller.Deps
	opts    Options
	cluster backup.Cluster

	lastSuccess *prometheus.GaugeVec
	duration    *prometheus.HistogramVec
	failures    *prometheus.CounterVec
}

// New returns the scheduled backups. Deps.Client, Deps.Dynamic and
// Deps.Cluster (the fleet's cluster ID, the backups' folder) are required.
//
// RBAC (deploy/agent/96-rbac-backupschedule.yaml): list Secrets
// cluster-wide; create, and get and update on its status ConfigMap only.
func New(deps controller.Deps, opts Options) (*Controller, error) {
	if err := deps.Require(Name, controller.FieldClient, controller.FieldDynamic); err != nil {
		return nil, err
	}
	if deps.Cluster == "" {
		return nil, fmt.Errorf("%s: --cluster: expected the fleet's cluster ID (backups are stored under it)", Name)
	}
	if err := opts.Validate(); err != nil {
		return nil, err
	}
	if opts.OpenStore == nil {
		opts.OpenStore = backup.OpenStore
	}
	deps = deps.WithDefaults()
	c := &Controller{deps: deps, opts: opts, cluster: backup.Cluster{
		ID: deps.Cluster, Client: deps.Dynamic,
		Mapper: restmapper.NewDeferredDiscoveryRESTMapper(memory.NewMemCacheClient(deps.Client.Discovery())),
	}}
	var err error
	if c.lastSuccess, err = controller.Register(deps.Registry, prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Name: "bosun_backup_last_success_timestamp_seconds",
		Help: "Unix time of the cluster's last successful scheduled backup (from the status ConfigMap, so it survives restarts).",
	}, []string{"cluster"})); err != nil {
		return nil, fmt.Errorf("%s: %w", Name, err)
	}
	if c.duration, err = controller.Register(deps.Registry, prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name:    "bosun_backup_duration_seconds",
		Help:    "Time a scheduled backup took (export, encryption, upload and pruning), by result.",
		Buckets: []float64{1, 5, 15, 60, 300, 900, 3600},
	}, []string{"cluster", "result"})); err != nil {
		return nil, fmt.Errorf("%s: %w", Name, err)
	}
	if c.failures, err = controller.Register(deps.Registry, prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "bosun_backup_failures_total",
		Help: "Scheduled backups that failed.",
	}, []string{"cluster"})); err != nil {
		return nil, fmt.Errorf("%s: %w", Name, err)
	}
	return c, nil
}

// Name identifies the controller.
func (c *Controller) Name() string { return Name }

// Pass backs up the cluster when a backup is due (Due, from the status
// ConfigMap), prunes to Keep and records the outcome in the status
// ConfigMap, an Event on it and the metrics. In dry-run it reports the
// backup it would take.
func (c *Controller) Pass(ctx context.Context) ([]string, error) {
	cm, err := c.deps.Client.CoreV1().ConfigMaps(c.opts.StatusNamespace).Get(ctx, c.opts.StatusConfigMap, metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		cm, err = nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("%s: reading status ConfigMap %s/%s: %w", Name, c.opts.StatusNamespace, c.opts.StatusConfigMap, err)
	}
	s, err := statusFrom(cm)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", Name, err)
	}
	if !s.LastSuccessTime.IsZero() {
		c.lastSuccess.WithLabelValues(c.deps.Cluster).Set(float64(s.LastSuccessTime.Unix()))
	}
	now := c.deps.Clock.Now()
	due, _ := Due(s, now, c.opts.Every)
	if !due {
		return nil, nil
	}
	what := fmt.Sprintf("back up cluster %s to %s", c.deps.Cluster, c.opts.To)
	if c.deps.DryRun {
		return []string{what}, nil
	}
	store, err := c.opts.OpenStore(ctx, c.opts.To)
	if err == nil {
		// A backup completed by an agent killed before it wrote the
		// status counts: do not take another one early.
		if latest, lerr := backup.Latest(ctx, store, c.deps.Cluster); lerr == nil && latest.Created.After(s.LastSuccessTime) {
			recovered := s
			recovered.LastSuccessID, recovered.LastSuccessTime, recovered.LastAttemptTime, recovered.LastError, recovered.Failures = latest.ID, latest.Created, latest.Created, "", 0
			if again, next := Due(recovered, now, c.opts.Every); !again {
				recovered.NextDue = next
				c.lastSuccess.WithLabelValues(c.deps.Cluster).Set(float64(latest.Created.Unix()))
				_, serr := c.saveStatus(ctx, cm, recovered)
				return []string{fmt.Sprintf("recorded backup %s of cluster %s, found in %s but not in the status", latest.ID, c.deps.Cluster, c.opts.To)}, serr
			}
		}
	}
	s.LastAttemptTime = now.UTC().Truncate(time.Second)
	var m backup.Manifest
	var pruned []string
	if err == nil {
		m, err = backup.Create(ctx, c.cluster, store, backup.CreateOptions{Resources: c.opts.Resources, Recipients: c.opts.Recipients, Clock: c.deps.Clock})
	}
	if err == nil {
		pruned, err = backup.Prune(ctx, store, c.deps.Cluster, c.opts.Keep)
		if err != nil {
			err = fmt.Errorf("backup %s written, pruning to %d failed: %w", m.ID, c.opts.Keep, err)
		}
	}
	took := c.deps.Clock.Since(now).Seconds()
	if m.ID != "" {
		s.LastSuccessID, s.LastSuccessTime = m.ID, m.Created
		c.lastSuccess.WithLabelValues(c.deps.Cluster).Set(float64(m.Created.Unix()))
	}
	if err != nil {
		s.Failures++
		s.LastError = err.Error()
		c.failures.WithLabelValues(c.deps.Cluster).Inc()
		c.duration.WithLabelValues(c.deps.Cluster, "failure").Observe(took)
	} else {
		s.Failures, s.LastError = 0, ""
		c.duration.WithLabelValues(c.deps.Cluster, "success").Observe(took)
	}
	_, s.NextDue = Due(s, s.LastAttemptTime.Add(time.Nanosecond), c.opts.Every)
	saved, serr := c.saveStatus(ctx, cm, s)
	if err != nil {
		if saved != nil {
			c.deps.Recorder.Eventf(saved, corev1.EventTypeWarning, ReasonFailed, "backup of cluster %s to %s failed (%d in a row), retry at %s: %v",
				c.deps.Cluster, c.opts.To, s.Failures, s.NextDue.Format(time.RFC3339), err)
		}
		return nil, errors.Join(fmt.Errorf("%s: %s: %w", Name, what, err), serr)
	}
	if saved != nil {
		c.deps.Recorder.Eventf(saved, corev1.EventTypeNormal, ReasonSucceeded, "backed up %d objects of cluster %s to %s as %s (encrypted to %d recipients); pruned %d; next at %s",
			len(m.Objects), c.deps.Cluster, c.opts.To, m.ID, len(c.opts.Recipients), len(pruned), s.NextDue.Format(time.RFC3339))
	}
	changes := []string{fmt.Sprintf("backed up %d objects of cluster %s to %s as %s", len(m.Objects), c.deps.Cluster, c.opts.To, m.ID)}
	for _, id := range pruned {
		changes = append(changes, fmt.Sprintf("pruned backup %s of cluster %s (keep %d)", id, c.deps.Cluster, c.opts.Keep))
	}
	return changes, serr
}

// saveStatus writes s to the status ConfigMap, creating it the first
// time, and returns it (nil if it could not be written).
func (c *Controller) saveStatus(ctx context.Context, cm *corev1.ConfigMap, s Status) (*corev1.ConfigMap, error) {
	cms := c.deps.Client.CoreV1().ConfigMaps(c.opts.StatusNamespace)
	var out *corev1.ConfigMap
	var err error
	if cm == nil {
		out, err = cms.Create(ctx, &corev1.ConfigMap{
			ObjectMeta: metav1.ObjectMeta{Name: c.opts.StatusConfigMap, Namespace: c.opts.StatusNamespace,
				Labels: map[string]string{"app.kubernetes.io/managed-by": "bosun-agent"}},
			Data: s.data(),
		}, metav1.CreateOptions{})
	} else {
		cm = cm.DeepCopy()
		cm.Data = s.data()
		out, err = cms.Update(ctx, cm, metav1.UpdateOptions{})
	}
	if err != nil {
		return nil, fmt.Errorf("%s: writing status ConfigMap %s/%s: %w", Name, c.opts.StatusNamespace, c.opts.StatusConfigMap, err)
	}
	return out, nil
}
