package wasmprocessor

// The engine's own metrics of a segment's members (an exporter's requests
// and failures, a circuit breaker's state, each node's queue) as collector
// metrics: names as the engine gives them, one series per member, under the
// attribute otelcol.component.id.

import (
	"context"
	"encoding/json"
	"fmt"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"
	"go.uber.org/zap"
)

// nodeMetric is the runtime's NodeMetric.
type nodeMetric struct {
	Node        string  `json:"node"`
	Name        string  `json:"name"`
	Unit        string  `json:"unit"`
	Description string  `json:"description"`
	Kind        string  `json:"kind"`
	Value       float64 `json:"value"`
}

func nodeMetrics(handle segmentHandle) ([]nodeMetric, error) {
	raw, err := handle.metricsJSON()
	if err != nil {
		return nil, err
	}
	var metrics struct {
		Nodes []nodeMetric `json:"nodes"`
	}
	if err := json.Unmarshal(raw, &metrics); err != nil {
		return nil, err
	}
	return metrics.Nodes, nil
}

// componentIDKey names the member a node metric is about.
const componentIDKey = "otelcol.component.id"

// registerNodeMetrics makes an instrument for each metric the members have
// once started (their metric sets exist from creation on) and observes them
// at every collection.
func registerNodeMetrics(meter metric.Meter, logger *zap.Logger, handle segmentHandle) (metric.Registration, error) {
	initial, err := nodeMetrics(handle)
	if err != nil {
		return nil, err
	}
	instruments := map[string]metric.Float64Observable{}
	var observables []metric.Observable
	for _, m := range initial {
		if _, ok := instruments[m.Name]; ok {
			continue
		}
		instrument, err := nodeInstrument(meter, m)
		if err != nil {
			return nil, err
		}
		instruments[m.Name] = instrument
		observables = append(observables, instrument)
	}
	if len(observables) == 0 {
		return nil, nil
	}
	return meter.RegisterCallback(func(_ context.Context, o metric.Observer) error {
		current, err := nodeMetrics(handle)
		if err != nil {
			logger.Debug("the segment's node metrics are not readable", zap.Error(err))
			return nil
		}
		for _, m := range current {
			if instrument, ok := instruments[m.Name]; ok {
				o.ObserveFloat64(instrument, m.Value, metric.WithAttributes(attribute.String(componentIDKey, m.Node)))
			}
		}
		return nil
	}, observables...)
}

func nodeInstrument(meter metric.Meter, m nodeMetric) (metric.Float64Observable, error) {
	unit, description := metric.WithUnit(m.Unit), metric.WithDescription(m.Description)
	switch m.Kind {
	case "counter":
		return meter.Float64ObservableCounter(m.Name, unit, description)
	case "up_down_counter":
		return meter.Float64ObservableUpDownCounter(m.Name, unit, description)
	case "gauge":
		return meter.Float64ObservableGauge(m.Name, unit, description)
	}
	return nil, fmt.Errorf("%s: unknown instrument kind %q", m.Name, m.Kind)
}
