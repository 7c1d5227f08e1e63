package wasmprocessor

import (
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

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
		Component:     "oci://registry.example/plugins/redact:1.2.0@sha256:4c1f",
		Mode:          modeSubprocess,
		RuntimeBinary: "/usr/local/bin/wasmtel",
		Config:        map[string]any{"keys": []any{"user.email"}, "action": "hash"},
		Limits: LimitsConfig{MaxMemory: "64MiB", Timeout: 200 * time.Millisecond, MaxOutputBytes: "16MiB",
			MaxInstances: 4, MaxOutputElements: 100000},
		OnError:            "fail",
		Grants:             GrantsConfig{Clocks: true, Env: map[string]string{"REGION": "eu-west-1"}},
		QuarantineDir:      "/var/lib/otelcol/quarantine",
		QuarantineMaxBytes: "32MiB",
		Registry: RegistryConfig{Store: "/var/lib/otelcol/wasmtel-store", RequireSignature: true,
			TrustedKeys: []string{"/etc/otelcol/cosign.pub"}, LockFile: "/etc/otelcol/wasmtel.lock", Offline: true,
			InsecureRegistries: []string{"registry.internal:5000"}, Timeout: 10 * time.Second},
	}
	tests := []struct {
		id      component.ID
		want    *Config
		wantErr string
	}{
		{id: component.NewID(Type), want: &Config{Component: "/etc/otelcol/plugins/wasmtel_redact.wasm"}},
		{id: component.NewIDWithName(Type, "full"), want: full},
		{id: component.NewIDWithName(Type, "bad_mode"), wantErr: `mode: "remote" is not one of auto, embedded, subprocess`},
		{id: component.NewIDWithName(Type, "bad_policy"), wantErr: `on_error: "ignore" is not one of pass, drop, fail`},
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
