package wasmprocessor

import (
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/confmap"
	"go.opentelemetry.io/collector/confmap/confmaptest"
)

func TestLoadConfig(t *testing.T) {
	cm, err := confmaptest.LoadConf(filepath.Join("testdata", "config.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	full := &Config{
		Mode:          modeSubprocess,
		RuntimeBinary: "/usr/local/bin/wasmtel",
		Plugin: map[string]any{
			"component": "oci://registry.example/plugins/redact:1.2.0@sha256:4c1f",
			"config":    map[string]any{"keys": []any{"user.email"}, "action": "hash"},
			"limits": map[string]any{"max_memory": "64MiB", "timeout": "200ms", "max_output_bytes": "16MiB",
				"max_instances": 4, "max_output_elements": 100000},
			"on_error":             "fail",
			"grants":               map[string]any{"clocks": true, "random": false, "env": map[string]any{"REGION": "eu-west-1"}},
			"quarantine_dir":       "/var/lib/otelcol/quarantine",
			"quarantine_max_bytes": "32MiB",
			"registry": map[string]any{"store": "/var/lib/otelcol/wasmtel-store", "require_signature": true,
				"trusted_keys": []any{"/etc/otelcol/cosign.pub"}, "lock_file": "/etc/otelcol/wasmtel.lock", "offline": true,
				"insecure_registries": []any{"registry.internal:5000"}, "timeout": "10s"},
		},
	}
	tests := []struct {
		id      component.ID
		want    *Config
		wantErr string
	}{
		{id: component.NewID(Type), want: &Config{Plugin: map[string]any{"component": "/etc/otelcol/plugins/wasmtel_redact.wasm"}}},
		{id: component.NewIDWithName(Type, "full"), want: full},
		{id: component.NewIDWithName(Type, "bad_mode"), wantErr: `mode: "remote" is not one of auto, embedded, subprocess`},
		{id: component.NewIDWithName(Type, "bad_policy"), wantErr: "unknown variant `ignore`"},
		{id: component.NewIDWithName(Type, "unknown_key"), wantErr: "limts"},
	}
	for _, tt := range tests {
		t.Run(tt.id.String(), func(t *testing.T) {
			cfg := NewFactory().CreateDefaultConfig()
			sub, err := cm.Sub(tt.id.String())
			if err != nil {
				t.Fatal(err)
			}
			err = sub.Unmarshal(cfg)
			if err == nil {
				err = confmap.Validate(cfg)
			}
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("want an error containing %q, got %v", tt.wantErr, err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got := cfg.(*Config); !reflect.DeepEqual(got, tt.want) {
				t.Fatalf("got %+v\nwant %+v", got, tt.want)
			}
		})
	}
}
