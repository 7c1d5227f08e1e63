package wasmprocessor

import (
	"encoding/json"
	"errors"
	"fmt"
	"path/filepath"
	"time"
)

// Config of a `wasm` processor: which component runs, its own config, and
// the sandbox's limits, error policy and grants.
type Config struct {
	// Component is the path of the wasm component.
	Component string `mapstructure:"component"`
	// Config is handed to the component's init as JSON.
	Config map[string]any `mapstructure:"config"`
	Limits LimitsConfig   `mapstructure:"limits"`
	// OnError decides the fate of a batch the sandbox fails on: pass, drop or fail.
	OnError string       `mapstructure:"on_error"`
	Grants  GrantsConfig `mapstructure:"grants"`
	// QuarantineDir, when set, keeps batches that failed in the sandbox.
	QuarantineDir string `mapstructure:"quarantine_dir"`

	_ struct{}
}

// LimitsConfig caps one plugin; zero values take the runtime's defaults
// (128MiB memory, 1s per batch, 32MiB output, one instance per CPU).
type LimitsConfig struct {
	MaxMemory      string        `mapstructure:"max_memory"`
	Timeout        time.Duration `mapstructure:"timeout"`
	MaxOutputBytes string        `mapstructure:"max_output_bytes"`
	MaxInstances   int           `mapstructure:"max_instances"`
}

// GrantsConfig lists capabilities beyond the hermetic default.
type GrantsConfig struct {
	Clocks bool              `mapstructure:"clocks"`
	Random bool              `mapstructure:"random"`
	Env    map[string]string `mapstructure:"env"`
}

// Validate checks the settings and loads the component once, so a missing or
// invalid component, or a config its init rejects, stops the collector at
// start-up with the reason.
func (cfg *Config) Validate() error {
	if cfg.Component == "" {
		return errors.New("component: a path to a wasm component is required")
	}
	pluginJSON, err := cfg.pluginConfigJSON()
	if err != nil {
		return err
	}
	p, err := loadPlugin(filepath.Base(cfg.Component), cfg.Component, pluginJSON)
	if err != nil {
		return err
	}
	p.free()
	return nil
}

// pluginConfigJSON renders the runtime's PluginConfig; unset fields are left
// out so the runtime's defaults apply.
func (cfg *Config) pluginConfigJSON() ([]byte, error) {
	switch cfg.OnError {
	case "", "pass", "drop", "fail":
	default:
		return nil, fmt.Errorf("on_error: %q is not one of pass, drop, fail", cfg.OnError)
	}
	if cfg.Limits.Timeout < 0 || cfg.Limits.MaxInstances < 0 {
		return nil, errors.New("limits: timeout and max_instances must not be negative")
	}
	limits := map[string]any{}
	if cfg.Limits.MaxMemory != "" {
		limits["max_memory"] = cfg.Limits.MaxMemory
	}
	if cfg.Limits.Timeout > 0 {
		// Whole microseconds: a unit the runtime's duration parser reads.
		limits["timeout"] = fmt.Sprintf("%dus", cfg.Limits.Timeout.Microseconds())
	}
	if cfg.Limits.MaxOutputBytes != "" {
		limits["max_output_bytes"] = cfg.Limits.MaxOutputBytes
	}
	if cfg.Limits.MaxInstances > 0 {
		limits["max_instances"] = cfg.Limits.MaxInstances
	}
	plugin := map[string]any{"limits": limits}
	if cfg.Config != nil {
		plugin["config"] = cfg.Config
	}
	if cfg.OnError != "" {
		plugin["on_error"] = cfg.OnError
	}
	plugin["grants"] = map[string]any{"clocks": cfg.Grants.Clocks, "random": cfg.Grants.Random, "env": nonNil(cfg.Grants.Env)}
	if cfg.QuarantineDir != "" {
		plugin["quarantine_dir"] = cfg.QuarantineDir
	}
	data, err := json.Marshal(plugin)
	if err != nil {
		return nil, fmt.Errorf("config: not representable as JSON: %w", err)
	}
	return data, nil
}

func nonNil(m map[string]string) map[string]string {
	if m == nil {
		return map[string]string{}
	}
	return m
}
