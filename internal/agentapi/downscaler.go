package agentapi

// Annotation keys the downscaler reads on namespaces and workloads. They
// keep kube-downscaler's names so that clusters can switch without
// re-annotating (L24).
const (
	DownscalerUptime           = "downscaler/uptime"
	DownscalerDowntime         = "downscaler/downtime"
	DownscalerUpscalePeriod    = "downscaler/upscale-period"
	DownscalerDownscalePeriod  = "downscaler/downscale-period"
	DownscalerExclude          = "downscaler/exclude"
	DownscalerExcludeUntil     = "downscaler/exclude-until"
	DownscalerForceUptime      = "downscaler/force-uptime"
	DownscalerForceDowntime    = "downscaler/force-downtime"
	DownscalerDowntimeReplicas = "downscaler/downtime-replicas"
	DownscalerGracePeriod      = "downscaler/grace-period"
	// DownscalerOriginalReplicas holds the replicas (HPA: minReplicas;
	// CronJob: 1 if it was running) from before the downscale. It is the
	// only state the downscaler keeps, and it lives on the object.
	DownscalerOriginalReplicas = "downscaler/original-replicas"
	// DownscalerOriginalMaxReplicas holds an HPA's maxReplicas from before
	// it was pinned during downtime.
	DownscalerOriginalMaxReplicas = "downscaler/original-max-replicas"
)
