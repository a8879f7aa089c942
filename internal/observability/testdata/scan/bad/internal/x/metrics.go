package x

import "github.com/prometheus/client_golang/prometheus"

func name() string { return "bosun_x_total" }

var c = prometheus.NewCounter(prometheus.CounterOpts{Name: name(), Help: "computed name"})

var d = prometheus.NewDesc("bosun_x_unused", "never collected", nil, nil)
