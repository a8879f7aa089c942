package aws

import "github.com/prometheus/client_golang/prometheus"

const subsystem = "aws"

var requests = prometheus.NewCounterVec(prometheus.CounterOpts{
	Namespace: "bosun", Subsystem: subsystem, Name: "api_requests_total", Help: "AWS API requests.",
}, []string{"operation", "code"})

var descUp = prometheus.NewDesc("bosun_aws_up", "1 when AWS answers.", nil, nil)

func collect(ch chan<- prometheus.Metric) {
	ch <- prometheus.MustNewConstMetric(descUp, prometheus.GaugeValue, 1)
}
