package aws

import (
	"context"
	"errors"

	"github.com/aws/aws-sdk-go-v2/aws"
	awsmiddleware "github.com/aws/aws-sdk-go-v2/aws/middleware"
	"github.com/aws/smithy-go"
	"github.com/aws/smithy-go/middleware"
	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
)

// Metrics count the requests sent to AWS.
type Metrics struct {
	// Requests counts every HTTP request (each retry attempt counts) by
	// service, operation and outcome code: OK, the API error code (e.g.
	// ThrottlingException, ValidationError) or Error for a failure
	// without one (network, timeout).
	Requests *prometheus.CounterVec
}

// NewMetrics returns unregistered metrics.
func NewMetrics() *Metrics {
	return &Metrics{Requests: prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "bosun_aws_api_requests_total",
		Help: "Requests sent to AWS APIs (each retry attempt counts), by service, operation and result code (OK, the API error code, or Error).",
	}, []string{"service", "operation", "code"})}
}

// Register adds the metrics to a registry.
func (m *Metrics) Register(r prometheus.Registerer) error {
	return r.Register(m.Requests)
}

// Install adds the counting middleware to every client built from cfg.
func (m *Metrics) Install(cfg *aws.Config) {
	cfg.APIOptions = append(cfg.APIOptions, func(s *middleware.Stack) error {
		// In the deserialize step, inside the retry loop: one count per
		// attempt, with the error the response was decoded to.
		return s.Deserialize.Add(middleware.DeserializeMiddlewareFunc("bosunRequestCounter",
			func(ctx context.Context, in middleware.DeserializeInput, next middleware.DeserializeHandler) (middleware.DeserializeOutput, middleware.Metadata, error) {
				out, md, err := next.HandleDeserialize(ctx, in)
				m.Requests.WithLabelValues(awsmiddleware.GetServiceID(ctx), awsmiddleware.GetOperationName(ctx), resultCode(err)).Inc()
				return out, md, err
			}), middleware.Before)
	})
}

// resultCode is the code label of a request's outcome.
func resultCode(err error) string {
	if err == nil {
		return "OK"
	}
	var api smithy.APIError
	if errors.As(err, &api) && api.ErrorCode() != "" {
		return api.ErrorCode()
	}
	return "Error"
}

// Count returns the requests counted for service and operation, any code
// ("" matches every service or operation).
func (m *Metrics) Count(service, operation string) float64 {
	ch := make(chan prometheus.Metric, 1024)
	go func() { m.Requests.Collect(ch); close(ch) }()
	var total float64
	for mt := range ch {
		var pb dto.Metric
		if err := mt.Write(&pb); err != nil {
			continue
		}
		labels := map[string]string{}
		for _, l := range pb.GetLabel() {
			labels[l.GetName()] = l.GetValue()
		}
		if (service == "" || labels["service"] == service) && (operation == "" || labels["operation"] == operation) {
			total += pb.GetCounter().GetValue()
		}
	}
	return total
}
