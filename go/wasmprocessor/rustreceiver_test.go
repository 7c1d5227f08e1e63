package wasmprocessor

import (
	"bytes"
	"context"
	"net"
	"testing"
	"time"

	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/component/componenttest"
	"go.opentelemetry.io/collector/confmap"
	"go.opentelemetry.io/collector/consumer/consumererror"
	"go.opentelemetry.io/collector/consumer/consumertest"
	"go.opentelemetry.io/collector/pdata/plog"
	"go.opentelemetry.io/collector/receiver/receivertest"
)

// The Rust OTAP receiver as a collector receiver, fed by the Rust OTAP
// exporter: one listening port for its traces and logs pipelines, each
// signal to its own pipeline, the sender's Ack after the pipeline took it,
// and a signal no pipeline takes refused for good.
func TestARustReceiverFeedsTheCollectorsPipelines(t *testing.T) {
	listener, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := listener.Addr().String()
	listener.Close()
	f := NewRustReceiverFactory("otap")
	cfg := f.CreateDefaultConfig()
	if err := confmap.NewFromStringMap(map[string]any{
		"listening_addr": addr, "wait_for_result": true, "response_stream_channel_size": 64,
	}).Unmarshal(cfg); err != nil {
		t.Fatal(err)
	}
	if err := cfg.(*RustConfig).Validate(); err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	set := receivertest.NewNopSettings(f.Type())
	set.ID = component.NewIDWithName(f.Type(), "in")
	spans, records := new(consumertest.TracesSink), new(consumertest.LogsSink)
	tracesReceiver, err := f.CreateTraces(ctx, set, cfg, spans)
	if err != nil {
		t.Fatal(err)
	}
	logsReceiver, err := f.CreateLogs(ctx, set, cfg, records)
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range []component.Component{tracesReceiver, logsReceiver} {
		if err := r.Start(ctx, componenttest.NewNopHost()); err != nil {
			t.Fatal(err)
		}
	}

	out := NewRustExporterFactory("otap")
	outCfg := rustConfig(t, out, map[string]any{"grpc_endpoint": "http://" + addr})
	exp, err := out.CreateTraces(ctx, exporterSettings(out.Type()), outCfg)
	if err != nil {
		t.Fatal(err)
	}
	logsExp, err := out.CreateLogs(ctx, exporterSettings(out.Type()), outCfg)
	if err != nil {
		t.Fatal(err)
	}
	metricsExp, err := out.CreateMetrics(ctx, exporterSettings(out.Type()), outCfg)
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []component.Component{exp, logsExp, metricsExp} {
		if err := c.Start(ctx, componenttest.NewNopHost()); err != nil {
			t.Fatal(err)
		}
		defer c.Shutdown(ctx)
	}
	sendCtx, cancel := context.WithTimeout(ctx, 20*time.Second)
	defer cancel()
	if err := exp.ConsumeTraces(sendCtx, traces("GET /a", "GET /b")); err != nil {
		t.Fatal(err)
	}
	// The sender's Ack came after the pipeline took the batch.
	if spans.SpanCount() != 2 {
		t.Fatalf("the traces pipeline got %d spans", spans.SpanCount())
	}
	if err := logsExp.ConsumeLogs(sendCtx, logs("one record")); err != nil {
		t.Fatal(err)
	}
	if records.LogRecordCount() != 1 || spans.SpanCount() != 2 {
		t.Fatalf("the logs pipeline got %d records (traces %d spans)", records.LogRecordCount(), spans.SpanCount())
	}
	var m plog.JSONMarshaler
	if body, _ := m.MarshalLogs(records.AllLogs()[0]); !bytes.Contains(body, []byte("one record")) {
		t.Fatalf("the record: %s", body)
	}
	// No metrics pipeline: the sender hears a refusal.
	if err := metricsExp.ConsumeMetrics(sendCtx, metrics("m")); err == nil {
		t.Fatal("metrics with no metrics pipeline: want a refusal")
	}

	// One port for both pipelines: it is free again only once the last stops.
	if err := tracesReceiver.Shutdown(ctx); err != nil {
		t.Fatal(err)
	}
	if err := logsExp.ConsumeLogs(sendCtx, logs("after one stopped")); err != nil {
		t.Fatalf("the logs pipeline still receives: %v", err)
	}
	if err := logsReceiver.Shutdown(ctx); err != nil {
		t.Fatal(err)
	}
	if err := exp.ConsumeTraces(sendCtx, traces("GET /c")); err == nil || consumererror.IsPermanent(err) {
		t.Fatalf("the receiver is gone: want a retryable error, got %v", err)
	}
}
