//! `wasmtel push | pull | sign | verify | ls | keygen`, and reference
//! resolution for `run` and `inspect` (paths, `file://`, `oci://`, store names, digests).

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use anyhow::{Context, Result, bail};
use wasmtel_registry::{ErrorKind, LockUpdate, Origin, Policy, Progress, RegistryError, Resolver, SigningKey};
use wasmtel_runtime::ComponentSource;

/// Registry settings shared by every command (flags override the settings file).
#[derive(clap::Args, Clone, Default)]
pub struct RegistryOpts {
    /// Registry settings (YAML/JSON: store, require_signature, trusted_keys, lock_file, offline,
    /// insecure_registries, timeout). Default: $WASMTEL_HOME/registry.yaml when it exists.
    #[arg(long, global = true, value_name = "FILE")]
    registry_config: Option<PathBuf>,
    /// Lock file (wasmtel.lock): locked tags must resolve to their locked digest; `pull` adds entries.
    #[arg(long, global = true, value_name = "FILE")]
    lock: Option<PathBuf>,
    /// Trust this cosign public key (PEM file); repeatable.
    #[arg(long = "trusted-key", global = true, value_name = "PEM")]
    trusted_keys: Vec<String>,
    /// Refuse components without a valid signature by a trusted key.
    #[arg(long, global = true)]
    require_signature: bool,
    /// Use only the local store; never contact a registry.
    #[arg(long, global = true)]
    offline: bool,
    /// Reach this registry (host[:port]) over plain HTTP; loopback registries always are.
    #[arg(long = "insecure-registry", global = true, value_name = "HOST")]
    insecure_registries: Vec<String>,
}

#[derive(clap::Subcommand)]
pub enum Command {
    /// Publish a component as an OCI artifact (oci://host/repo:tag), or name it in the local store (name:tag).
    Push {
        file: PathBuf,
        target: String,
        /// Sign the pushed manifest with this private key (cosign.key; password from COSIGN_PASSWORD).
        #[arg(long, value_name = "KEY")]
        sign_key: Option<PathBuf>,
        #[arg(long)]
        json: bool,
    },
    /// Fetch a reference into the local store (verifying digests, signatures and the lock).
    Pull {
        reference: String,
        /// Re-resolve a locked tag and record its current digest in --lock.
        #[arg(long)]
        update: bool,
        #[arg(long)]
        json: bool,
    },
    /// Sign what an oci:// reference points at (cosign key-pair format; password from COSIGN_PASSWORD).
    Sign {
        reference: String,
        #[arg(long, value_name = "KEY")]
        key: PathBuf,
    },
    /// Verify the cosign signatures of an oci:// reference against public keys.
    Verify {
        reference: String,
        /// Public key (cosign.pub); repeatable. Adds to --trusted-key and the settings file.
        #[arg(long = "key", value_name = "PEM")]
        keys: Vec<String>,
        #[arg(long)]
        json: bool,
    },
    /// List the components named in the local store.
    Ls {
        #[arg(long)]
        json: bool,
    },
    /// Generate a cosign-compatible key pair: <PREFIX>.key (encrypted with COSIGN_PASSWORD) and <PREFIX>.pub.
    Keygen {
        #[arg(long, default_value = "cosign")]
        output_prefix: String,
    },
}

/// Exit codes beyond main's: 4 the registry was unreachable or failed; 5 verification
/// failed (digest, moved tag, signature). Load failures keep 3, bad input 2.
pub fn exit_code(error: &RegistryError) -> u8 {
    match &error.kind {
        _ if error.is_verification_failure() => 5,
        _ if error.is_transient() => 4,
        ErrorKind::Load(_) | ErrorKind::NotWasm(_) => 3,
        _ => 2,
    }
}

impl RegistryOpts {
    /// The policy: the settings file, then flags.
    pub fn policy(&self) -> Result<Policy> {
        let default_file = wasmtel_runtime::config::default_home().join("registry.yaml");
        let file = self.registry_config.clone().or_else(|| default_file.is_file().then_some(default_file));
        let mut policy = match file {
            Some(path) => {
                let text = std::fs::read_to_string(&path)
                    .with_context(|| format!("reading registry config {}", path.display()))?;
                let value: serde_json::Value =
                    serde_yaml::from_str(&text).with_context(|| format!("registry config {}", path.display()))?;
                serde_json::from_value(value).with_context(|| format!("registry config {}", path.display()))?
            }
            None => Policy::default(),
        };
        if self.lock.is_some() {
            policy.lock_file = self.lock.clone();
        }
        policy.trusted_keys.extend(self.trusted_keys.iter().cloned());
        policy.require_signature |= self.require_signature;
        policy.offline |= self.offline;
        policy.insecure_registries.extend(self.insecure_registries.iter().cloned());
        Ok(policy)
    }

    fn resolver(&self, policy: Policy) -> Result<Resolver> {
        Ok(Resolver::new(policy)?.with_progress(Arc::new(Bar::default())))
    }
}

pub fn is_oci(reference: &str) -> bool {
    reference.trim_start().starts_with("oci://")
}

/// Resolves any reference for `run` / `inspect` (see `wasmtel_registry::component_source`).
pub fn resolve_source(opts: &RegistryOpts, reference: &str) -> Result<(String, ComponentSource)> {
    let source = wasmtel_registry::component_source(reference, &opts.policy()?, Arc::new(Bar::default()))?;
    Ok((wasmtel_registry::plugin_name(reference), source))
}

pub fn run(command: Command, opts: &RegistryOpts) -> Result<()> {
    match command {
        Command::Push { file, target, sign_key, json } => {
            let resolver = opts.resolver(opts.policy()?)?;
            let pushed = resolver.push(&file, &target)?;
            let signed = match &sign_key {
                Some(key_path) => Some(resolver.sign(&pushed.reference, &read_signing_key(key_path)?)?),
                None => None,
            };
            if json {
                println!("{}", serde_json::json!({ "pushed": pushed, "signed": signed }));
            } else {
                eprintln!("pushed {} ({} bytes)", file.display(), pushed.size);
                if let Some(signed) = &signed {
                    eprintln!("signed: {}", signed.signature_tag);
                }
                println!("{}", pushed.reference);
            }
        }
        Command::Pull { reference, update, json } => {
            let mut policy = opts.policy()?;
            if policy.lock_file.is_some() {
                policy.lock_update = if update { LockUpdate::Always } else { LockUpdate::Missing };
            } else if update {
                bail!("--update needs --lock <FILE>");
            }
            let resolved = opts.resolver(policy)?.resolve(&reference)?;
            if json {
                println!("{}", serde_json::to_string_pretty(&resolved)?);
            } else {
                let origin = match resolved.origin {
                    Origin::Registry => "downloaded",
                    Origin::Store => "already in the local store",
                    Origin::Path => "a local file",
                };
                eprintln!("{reference}: {origin}");
                if let Some(manifest) = &resolved.manifest_digest {
                    eprintln!("manifest:  {manifest}");
                }
                if !resolved.signed_by.is_empty() {
                    eprintln!("signed by: {}", resolved.signed_by.join(", "));
                }
                println!("{}", resolved.digest.as_deref().unwrap_or_default());
            }
        }
        Command::Sign { reference, key } => {
            let signed = opts.resolver(opts.policy()?)?.sign(&reference, &read_signing_key(&key)?)?;
            eprintln!("signed {} (key {})", signed.manifest_digest, signed.signed_by.join(", "));
            println!("{}", signed.signature_tag);
        }
        Command::Verify { reference, keys, json } => {
            let mut policy = opts.policy()?;
            policy.trusted_keys.extend(keys);
            let verified = opts.resolver(policy)?.verify(&reference)?;
            if json {
                println!("{}", serde_json::to_string_pretty(&verified)?);
            } else {
                println!("verified {} signed by {}", verified.manifest_digest, verified.signed_by.join(", "));
            }
        }
        Command::Ls { json } => {
            let entries = opts.resolver(opts.policy()?)?.list()?;
            if json {
                println!("{}", serde_json::to_string_pretty(&entries)?);
            } else if entries.is_empty() {
                eprintln!("the local store is empty");
            } else {
                println!("{:<56} {:<19} {:>10}  PLUGIN", "NAME", "COMPONENT", "SIZE");
                for entry in entries {
                    let plugin = entry.plugin.map(|p| format!("{} {}", p.name, p.version)).unwrap_or_default();
                    let component = entry.record.component.get(..19).unwrap_or(&entry.record.component);
                    println!("{:<56} {component:<19} {:>10}  {plugin}", entry.name, entry.record.size);
                }
            }
        }
        Command::Keygen { output_prefix } => {
            let private = PathBuf::from(format!("{output_prefix}.key"));
            let public = PathBuf::from(format!("{output_prefix}.pub"));
            for path in [&private, &public] {
                if path.exists() {
                    bail!("{} exists; refusing to overwrite a key", path.display());
                }
            }
            // cosign prompts when the variable is unset; we never prompt, and an
            // unset variable must not quietly become an empty password.
            let Some(password) = std::env::var_os("COSIGN_PASSWORD") else {
                bail!(
                    "COSIGN_PASSWORD is not set: set it to the password that encrypts {} \
                     (COSIGN_PASSWORD= for an empty password, which protects nothing)",
                    private.display()
                );
            };
            let password = password.into_string().map_err(|_| anyhow::anyhow!("COSIGN_PASSWORD is not UTF-8"))?;
            let key = SigningKey::generate();
            let pem = key.to_encrypted_pem(password.as_bytes())?;
            write_new(&private, &pem, 0o600)?;
            write_new(&public, &key.public_key().to_pem()?, 0o644)?;
            if password.is_empty() {
                eprintln!(
                    "warning: private key written to {} with an EMPTY password (COSIGN_PASSWORD is empty): \
                     anyone who can read the file can sign",
                    private.display()
                );
            } else {
                eprintln!("private key written to {} (encrypted with COSIGN_PASSWORD)", private.display());
            }
            println!("{}", public.display());
        }
    }
    Ok(())
}

/// Describes an oci:// reference from its manifest and config, without the component.
pub fn inspect_remote(opts: &RegistryOpts, reference: &str, json: bool) -> Result<()> {
    let inspection = opts.resolver(opts.policy()?)?.inspect_remote(reference)?;
    if json {
        println!("{}", serde_json::to_string_pretty(&inspection)?);
        return Ok(());
    }
    println!("reference:   {}", inspection.reference);
    println!("manifest:    {}", inspection.manifest_digest);
    println!("component:   {} ({} bytes, not downloaded)", inspection.layer_digest, inspection.layer_size);
    if let Some(wit) = inspection.plugin.as_ref().and_then(|plugin| plugin.wit.as_ref()) {
        println!("wit:         wasmtel:plugin@{wit}");
    }
    crate::print_manifest(inspection.plugin.as_ref());
    if let Some(world) = inspection.config.as_ref().and_then(|c| c.component.as_ref()) {
        println!("exports:");
        world.exports.iter().for_each(|e| println!("  {e}"));
        println!("imports:");
        world.imports.iter().for_each(|i| println!("  {i}"));
    } else {
        println!("config:      {} (not a wasm component config)", inspection.config_media_type);
    }
    Ok(())
}

/// cosign's convention: the private key password comes from COSIGN_PASSWORD (empty if unset).
fn password() -> String {
    std::env::var("COSIGN_PASSWORD").unwrap_or_default()
}

fn read_signing_key(path: &Path) -> Result<SigningKey> {
    let pem = std::fs::read_to_string(path).with_context(|| format!("reading key {}", path.display()))?;
    SigningKey::from_pem(&pem, password().as_bytes()).map_err(|e| anyhow::anyhow!("key {}: {e}", path.display()))
}

fn write_new(path: &Path, text: &str, mode: u32) -> Result<()> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(mode)
        .open(path)
        .with_context(|| format!("creating {}", path.display()))?;
    file.write_all(text.as_bytes()).with_context(|| format!("writing {}", path.display()))?;
    Ok(())
}

/// A progress bar on stderr for transfers (hidden when stderr is not a terminal).
#[derive(Default)]
struct Bar(Mutex<Option<indicatif::ProgressBar>>);

impl Progress for Bar {
    fn begin(&self, label: &str, total: Option<u64>) {
        let bar = indicatif::ProgressBar::with_draw_target(total, indicatif::ProgressDrawTarget::stderr());
        if let Ok(style) =
            indicatif::ProgressStyle::with_template("{msg} [{bar:30}] {bytes}/{total_bytes} {bytes_per_sec}")
        {
            bar.set_style(style.progress_chars("=> "));
        }
        bar.set_message(label.to_string());
        *self.0.lock().unwrap_or_else(std::sync::PoisonError::into_inner) = Some(bar);
    }

    fn advance(&self, bytes: u64) {
        if let Some(bar) = self.0.lock().unwrap_or_else(std::sync::PoisonError::into_inner).as_ref() {
            bar.inc(bytes);
        }
    }

    fn end(&self) {
        if let Some(bar) = self.0.lock().unwrap_or_else(std::sync::PoisonError::into_inner).take() {
            bar.finish_and_clear();
        }
    }
}
