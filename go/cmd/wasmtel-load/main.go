// Command wasmtel-load sends OTLP/JSON files (traces, metrics, logs) to an
// OTLP gRPC endpoint, optionally repeatedly: the main job's sample client.
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"go.opentelemetry.io/collector/pdata/plog"
	"go.opentelemetry.io/collector/pdata/plog/plogotlp"
	"go.opentelemetry.io/collector/pdata/pmetric"
	"go.opentelemetry.io/collector/pdata/pmetric/pmetricotlp"
	"go.opentelemetry.io/collector/pdata/ptrace"
	"go.opentelemetry.io/collector/pdata/ptrace/ptraceotlp"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
)

func main() {
	endpoint := flag.String("endpoint", "127.0.0.1:4317", "OTLP gRPC endpoint")
	dir := flag.String("data", "examples/data", "directory with traces.json, metrics.json, logs.json")
	repeat := flag.Int("repeat", 1, "times to send each file")
	flag.Parse()
	if err := run(*endpoint, *dir, *repeat); err != nil {
		fmt.Fprintln(os.Stderr, "wasmtel-load:", err)
		os.Exit(1)
	}
}

func run(endpoint, dir string, repeat int) error {
	conn, err := grpc.NewClient(endpoint, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		return err
	}
	defer conn.Close()
	read := func(name string) ([]byte, error) { return os.ReadFile(filepath.Join(dir, name)) }

	tracesJSON, err := read("traces.json")
	if err != nil {
		return err
	}
	traces, err := (&ptrace.JSONUnmarshaler{}).UnmarshalTraces(tracesJSON)
	if err != nil {
		return fmt.Errorf("traces.json: %w", err)
	}
	metricsJSON, err := read("metrics.json")
	if err != nil {
		return err
	}
	metrics, err := (&pmetric.JSONUnmarshaler{}).UnmarshalMetrics(metricsJSON)
	if err != nil {
		return fmt.Errorf("metrics.json: %w", err)
	}
	logsJSON, err := read("logs.json")
	if err != nil {
		return err
	}
	logs, err := (&plog.JSONUnmarshaler{}).UnmarshalLogs(logsJSON)
	if err != nil {
		return fmt.Errorf("logs.json: %w", err)
	}

	for i := 0; i < repeat; i++ {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		_, errT := ptraceotlp.NewGRPCClient(conn).Export(ctx, ptraceotlp.NewExportRequestFromTraces(traces))
		_, errM := pmetricotlp.NewGRPCClient(conn).Export(ctx, pmetricotlp.NewExportRequestFromMetrics(metrics))
		_, errL := plogotlp.NewGRPCClient(conn).Export(ctx, plogotlp.NewExportRequestFromLogs(logs))
		cancel()
		for signal, err := range map[string]error{"traces": errT, "metrics": errM, "logs": errL} {
			if err != nil {
				return fmt.Errorf("sending %s: %w", signal, err)
			}
		}
	}
	fmt.Printf("wasmtel-load: sent %d x (%d spans, %d data points, %d log records) to %s\n",
		repeat, traces.SpanCount(), metrics.DataPointCount(), logs.LogRecordCount(), endpoint)
	return nil
}
