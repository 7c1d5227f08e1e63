// Command otelcol-wasmtel is an OpenTelemetry Collector distribution with the
// sandboxed `wasm` processor, the runtime's Rust exporters and processors
// (rustcomponents_gen.go), the components a pipeline around them needs, and
// nothing else (go/builder-config.yaml makes the same one with the collector
// builder).
package main

import (
	"log"

	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/confmap"
	"go.opentelemetry.io/collector/confmap/provider/envprovider"
	"go.opentelemetry.io/collector/confmap/provider/fileprovider"
	"go.opentelemetry.io/collector/confmap/provider/yamlprovider"
	"go.opentelemetry.io/collector/exporter"
	"go.opentelemetry.io/collector/exporter/debugexporter"
	"go.opentelemetry.io/collector/exporter/otlpexporter"
	"go.opentelemetry.io/collector/otelcol"
	"go.opentelemetry.io/collector/processor"
	"go.opentelemetry.io/collector/processor/batchprocessor"
	"go.opentelemetry.io/collector/processor/memorylimiterprocessor"
	"go.opentelemetry.io/collector/receiver"
	"go.opentelemetry.io/collector/receiver/otlpreceiver"
	"go.opentelemetry.io/collector/service/telemetry/otelconftelemetry"

	"github.com/wasmtel/wasmtel/go/rustexporters/segmentexporter"
	"github.com/wasmtel/wasmtel/go/rustprocessors/segmentprocessor"
	"github.com/wasmtel/wasmtel/go/wasmchainconverter"
	"github.com/wasmtel/wasmtel/go/wasmprocessor"
)

func components() (otelcol.Factories, error) {
	var factories otelcol.Factories
	var err error
	if factories.Receivers, err = otelcol.MakeFactoryMap[receiver.Factory](append(rustReceivers(), otlpreceiver.NewFactory())...); err != nil {
		return factories, err
	}
	if factories.Processors, err = otelcol.MakeFactoryMap[processor.Factory](append(rustProcessors(),
		wasmprocessor.NewFactory(),
		batchprocessor.NewFactory(),
		memorylimiterprocessor.NewFactory(),
		segmentprocessor.NewFactory(),
	)...); err != nil {
		return factories, err
	}
	if factories.Exporters, err = otelcol.MakeFactoryMap[exporter.Factory](append(rustExporters(),
		debugexporter.NewFactory(),
		otlpexporter.NewFactory(),
		segmentexporter.NewFactory(),
	)...); err != nil {
		return factories, err
	}
	factories.Telemetry = otelconftelemetry.NewFactory()
	return factories, nil
}

// collectorSettings are this distribution's: its components, the file,
// env and yaml providers, and the converter that folds the Rust parts.
func collectorSettings(factories func() (otelcol.Factories, error)) otelcol.CollectorSettings {
	return otelcol.CollectorSettings{
		BuildInfo: component.BuildInfo{
			Command:     "otelcol-wasmtel",
			Description: "OpenTelemetry Collector with sandboxed WebAssembly processors",
			Version:     "0.1.0",
		},
		Factories: factories,
		ConfigProviderSettings: otelcol.ConfigProviderSettings{
			ResolverSettings: confmap.ResolverSettings{
				ProviderFactories: []confmap.ProviderFactory{
					fileprovider.NewFactory(),
					envprovider.NewFactory(),
					yamlprovider.NewFactory(),
				},
				// Consecutive wasm processors cross into the runtime once.
				ConverterFactories: []confmap.ConverterFactory{wasmchainconverter.NewFactory()},
			},
		},
	}
}

func main() {
	settings := collectorSettings(components)
	if err := otelcol.NewCommand(settings).Execute(); err != nil {
		log.Fatal(err)
	}
}
