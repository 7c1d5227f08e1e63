package wasmprocessor

import (
	"encoding/json"
	"errors"
	"fmt"

	"go.opentelemetry.io/collector/confmap"
)

// Config of a `wasm` processor. Where the plugin runs (mode,
// runtime_binary) and the converter's chain are the collector's settings;
// every other key is the plugin's — component, config, limits, on_error,
// grants, quarantine_dir, quarantine_max_bytes, registry — read and
// validated by the runtime's `wasm` node (runtime/dataflow/src/wasm_processor),
// so adding a setting is one Rust field. The plugin's settings are listed in
// the processor's README.
type Config struct {
	// Mode is where plugins run: auto (embedded when the collector was built
	// with cgo, else subprocess), embedded (linked into this process) or
	// subprocess (a `wasmtel bridge` child shared by every wasm processor).
	Mode string `mapstructure:"mode"`
	// RuntimeBinary is the wasmtel binary subprocess mode runs; default: the
	// one built into the collector (-tags wasmtel_embed_runtime; verified,
	// and run from a sealed memfd on Linux), else `wasmtel-bridge` or
	// `wasmtel` on PATH. A configured or PATH binary is the operator's
	// choice: it is run by its path, as found when the child starts.
	RuntimeBinary string `mapstructure:"runtime_binary"`
	// Chain, written by the wasmchain converter (not by hand), makes this
	// processor run consecutive wasm processors of a pipeline in one
	// crossing: each member keeps its ID (logs, metrics) and its settings.
	Chain []ChainMember `mapstructure:"chain"`
	// Plugin holds every other key: the plugin's settings as the runtime's
	// wasm node reads them.
	Plugin map[string]any `mapstructure:",remain"`
}

// component is the plugin's reference (a path, file://…, oci://…, sha256:…
// or a store name:tag), or "" when unset.
func (cfg *Config) component() string {
	reference, _ := cfg.Plugin["component"].(string)
	return reference
}

// ChainMember is one processor of a chain: its ID and its own settings (a
// wasm processor's, as a map: a Config cannot hold itself).
type ChainMember struct {
	ID       string         `mapstructure:"id"`
	Settings map[string]any `mapstructure:"settings"`
}

// memberConfig is a plugin to load: the processor's own, or a chain member's.
type memberConfig struct {
	name string
	cfg  *Config
}

// members are the plugins this processor runs, in order.
func (cfg *Config) members(name string) ([]memberConfig, error) {
	if len(cfg.Chain) == 0 {
		return []memberConfig{{name: name, cfg: cfg}}, nil
	}
	members := make([]memberConfig, len(cfg.Chain))
	for i, m := range cfg.Chain {
		if m.ID == "" {
			return nil, fmt.Errorf("chain[%d]: id is required", i)
		}
		var member Config
		if err := confmap.NewFromStringMap(m.Settings).Unmarshal(&member); err != nil {
			return nil, fmt.Errorf("chain[%d] (%s): %w", i, m.ID, err)
		}
		members[i] = memberConfig{name: m.ID, cfg: &member}
	}
	return members, nil
}

// validateChain checks a chain: members with IDs and valid settings, no
// nesting, one place to run (a chain crosses once, so its plugins share a
// mode and a child).
func (cfg *Config) validateChain() error {
	if len(cfg.Plugin) > 0 {
		return errors.New("chain: a chain's settings are its members'; no plugin setting may be set beside it")
	}
	members, err := cfg.members("")
	if err != nil {
		return err
	}
	first := members[0]
	for i, m := range members {
		if len(m.cfg.Chain) > 0 {
			return fmt.Errorf("chain[%d] (%s): a member cannot itself be a chain", i, m.name)
		}
		if err := m.cfg.Validate(); err != nil {
			return fmt.Errorf("chain[%d] (%s): %w", i, m.name, err)
		}
		if m.cfg.effectiveMode() != first.cfg.effectiveMode() || m.cfg.RuntimeBinary != first.cfg.RuntimeBinary {
			return fmt.Errorf("chain[%d] (%s): mode and runtime_binary must be %s's", i, m.name, first.name)
		}
	}
	return nil
}

const (
	modeAuto       = "auto"
	modeEmbedded   = "embedded"
	modeSubprocess = "subprocess"
)

// effectiveMode resolves auto for this build.
func (cfg *Config) effectiveMode() string {
	switch cfg.Mode {
	case modeEmbedded, modeSubprocess:
		return cfg.Mode
	}
	if cgoAvailable {
		return modeEmbedded
	}
	return modeSubprocess
}

// Validate checks the settings (the collector calls it before creating the
// processor): where the plugin runs here, the plugin's settings by the
// runtime's wasm node, without loading the component. The component is
// loaded once, when the processor is created, so a missing or invalid
// component, or a config its schema or its init rejects, stops the
// collector at start-up naming the processor.
func (cfg *Config) Validate() error {
	if len(cfg.Chain) > 0 {
		return cfg.validateChain()
	}
	if cfg.component() == "" {
		return errors.New("component: a path or oci:// reference to a wasm component is required")
	}
	switch cfg.Mode {
	case "", modeAuto, modeSubprocess:
	case modeEmbedded:
		if !cgoAvailable {
			return errors.New("mode: embedded needs a collector built with cgo (CGO_ENABLED=1, or dist.cgo_enabled: true for the builder); use subprocess or auto")
		}
	default:
		return fmt.Errorf("mode: %q is not one of auto, embedded, subprocess", cfg.Mode)
	}
	return validateNode("processor", wasmNodeURN, cfg.Plugin)
}

// loadArguments renders what the runtime's load takes: the plugin config
// (every setting but the component and the registry policy) and the
// registry policy, as JSON; empty for none.
func (cfg *Config) loadArguments() (pluginJSON, registryJSON []byte, err error) {
	plugin := make(map[string]any, len(cfg.Plugin))
	for key, value := range cfg.Plugin {
		if key != "component" && key != "registry" {
			plugin[key] = value
		}
	}
	if pluginJSON, err = json.Marshal(plugin); err != nil {
		return nil, nil, fmt.Errorf("config: not representable as JSON: %w", err)
	}
	if registry, ok := cfg.Plugin["registry"]; ok && registry != nil {
		if registryJSON, err = json.Marshal(registry); err != nil {
			return nil, nil, fmt.Errorf("registry: not representable as JSON: %w", err)
		}
	}
	return pluginJSON, registryJSON, nil
}
