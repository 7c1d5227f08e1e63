package wasmprocessor

import (
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"go.opentelemetry.io/collector/confmap"
)

// Config of a `wasm` processor: which component runs, its own config, and
// the sandbox's limits, error policy and grants.
type Config struct {
	// Component is the wasm component: a path, file://…, oci://host/repo:tag
	// (optionally pinned with @sha256:…), a sha256: digest or a name:tag in
	// the local store.
	Component string `mapstructure:"component"`
	// Config is handed to the component's init as JSON.
	Config map[string]any `mapstructure:"config"`
	Limits LimitsConfig   `mapstructure:"limits"`
	// OnError decides the fate of a batch the sandbox fails on: pass, drop or fail.
	OnError string       `mapstructure:"on_error"`
	Grants  GrantsConfig `mapstructure:"grants"`
	// QuarantineDir, when set, keeps batches that failed in the sandbox.
	QuarantineDir string `mapstructure:"quarantine_dir"`
	// QuarantineMaxBytes caps what this processor keeps there (default 64MiB).
	QuarantineMaxBytes string `mapstructure:"quarantine_max_bytes"`
	// Registry decides how references other than plain paths resolve and
	// what they must prove (pin, lock, signature).
	Registry RegistryConfig `mapstructure:"registry"`
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

	_ struct{}
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
	if cfg.Component != "" {
		return errors.New("chain: a chain's settings are its members'; component must not be set beside it")
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

// RegistryConfig is the registry policy; zero values take the runtime's
// defaults (store under $WASMTEL_HOME, no signature required, 30s timeout).
type RegistryConfig struct {
	// Store is the local content-addressed store pulled components live in.
	Store string `mapstructure:"store"`
	// RequireSignature refuses components without a valid cosign signature
	// by one of TrustedKeys (plain paths are then refused too).
	RequireSignature bool `mapstructure:"require_signature"`
	// TrustedKeys are cosign public keys: PEM file paths or PEM text.
	TrustedKeys []string `mapstructure:"trusted_keys"`
	// LockFile (wasmtel.lock) pins tags: a tag that moved is refused.
	LockFile string `mapstructure:"lock_file"`
	// Offline resolves from the local store only.
	Offline bool `mapstructure:"offline"`
	// InsecureRegistries are reached over plain HTTP (loopback always is).
	InsecureRegistries []string      `mapstructure:"insecure_registries"`
	Timeout            time.Duration `mapstructure:"timeout"`
}

// LimitsConfig caps one plugin; zero values take the runtime's defaults
// (128MiB memory, 1s per batch, 32MiB output, one instance per CPU, output
// elements at most 4x the input's plus 65536).
type LimitsConfig struct {
	MaxMemory         string        `mapstructure:"max_memory"`
	Timeout           time.Duration `mapstructure:"timeout"`
	MaxOutputBytes    string        `mapstructure:"max_output_bytes"`
	MaxInstances      int           `mapstructure:"max_instances"`
	MaxOutputElements uint64        `mapstructure:"max_output_elements"`
}

// GrantsConfig lists capabilities beyond the hermetic default.
type GrantsConfig struct {
	Clocks bool              `mapstructure:"clocks"`
	Random bool              `mapstructure:"random"`
	Env    map[string]string `mapstructure:"env"`
}

// Validate checks the settings (the collector calls it before creating the
// processor). The component itself is loaded once, when the processor is
// created, so a missing or invalid component, or a config its schema or its
// init rejects, stops the collector at start-up naming the processor.
func (cfg *Config) Validate() error {
	if len(cfg.Chain) > 0 {
		return cfg.validateChain()
	}
	if cfg.Component == "" {
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
	_, _, err := cfg.loadArguments()
	return err
}

// loadArguments renders what the bridge's load takes: the plugin config and
// the registry policy as JSON.
func (cfg *Config) loadArguments() (pluginJSON, registryJSON []byte, err error) {
	if pluginJSON, err = cfg.pluginConfigJSON(); err != nil {
		return nil, nil, err
	}
	if registryJSON, err = cfg.Registry.policyJSON(); err != nil {
		return nil, nil, err
	}
	return pluginJSON, registryJSON, nil
}

// policyJSON renders the runtime's registry Policy; unset fields are left out
// so its defaults apply. Deployments never rewrite the lock file.
func (r *RegistryConfig) policyJSON() ([]byte, error) {
	if r.Timeout < 0 {
		return nil, errors.New("registry: timeout must not be negative")
	}
	policy := struct {
		Store              string   `json:"store,omitempty"`
		RequireSignature   bool     `json:"require_signature,omitempty"`
		TrustedKeys        []string `json:"trusted_keys,omitempty"`
		LockFile           string   `json:"lock_file,omitempty"`
		Offline            bool     `json:"offline,omitempty"`
		InsecureRegistries []string `json:"insecure_registries,omitempty"`
		Timeout            string   `json:"timeout,omitempty"`
	}{r.Store, r.RequireSignature, r.TrustedKeys, r.LockFile, r.Offline, r.InsecureRegistries, ""}
	if r.Timeout > 0 {
		policy.Timeout = fmt.Sprintf("%dus", r.Timeout.Microseconds())
	}
	data, err := json.Marshal(policy)
	if err != nil || string(data) == "{}" {
		return nil, err
	}
	return data, nil
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
	if cfg.Limits.MaxOutputElements > 0 {
		limits["max_output_elements"] = cfg.Limits.MaxOutputElements
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
	if cfg.QuarantineMaxBytes != "" {
		plugin["quarantine_max_bytes"] = cfg.QuarantineMaxBytes
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
