//! The sandbox's rules for a component's imports and exports, by interface
//! name: what a plugin exports, what the host grants, what the hermetic
//! sandbox answers, and the WIT version rule between them.

/// The `wasmtel:plugin` WIT package version this build implements.
pub const WIT_VERSION: &str = "0.1.0";

/// The interface every plugin exports.
pub const PROCESSOR: &str = "wasmtel:plugin/processor";

/// The interfaces the host implements for plugins.
pub const HOST: [&str; 2] = ["wasmtel:plugin/host", "wasmtel:plugin/types"];

/// WASI interfaces Rust's std imports even when a plugin never uses them; the
/// sandbox answers them without granting anything (no preopens, no env,
/// frozen clock and fixed randomness unless granted, output into the host log).
pub const HERMETIC_WASI: &[&str] = &[
    "wasi:cli/environment",
    "wasi:cli/exit",
    "wasi:cli/stdin",
    "wasi:cli/stdout",
    "wasi:cli/stderr",
    "wasi:cli/terminal-input",
    "wasi:cli/terminal-output",
    "wasi:cli/terminal-stdin",
    "wasi:cli/terminal-stdout",
    "wasi:cli/terminal-stderr",
    "wasi:io/error",
    "wasi:io/poll",
    "wasi:io/streams",
    "wasi:clocks/wall-clock",
    "wasi:clocks/monotonic-clock",
    "wasi:random/random",
    "wasi:random/insecure",
    "wasi:random/insecure-seed",
    "wasi:filesystem/types",
    "wasi:filesystem/preopens",
];

/// `wasi:io/streams@0.2.6` → (`wasi:io/streams`, `Some("0.2.6")`).
pub fn split_version(name: &str) -> (&str, Option<&str>) {
    match name.split_once('@') {
        Some((interface, version)) => (interface, Some(version)),
        None => (name, None),
    }
}

/// Same major version as [`WIT_VERSION`] (same minor while the major is 0),
/// as Cargo's caret rule.
pub fn wit_compatible(found: &str) -> bool {
    let (Ok(found), Ok(ours)) = (semver::Version::parse(found), semver::Version::parse(WIT_VERSION)) else {
        return false;
    };
    found.major == ours.major && (ours.major != 0 || found.minor == ours.minor)
}

/// Whether the hermetic sandbox answers this import (versioned or not).
pub fn is_hermetic(import: &str) -> bool {
    HERMETIC_WASI.contains(&split_version(import).0)
}

/// Why the sandbox refuses an import.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ImportRefused {
    /// A `wasi:sockets/*` import.
    #[error("plugins get no network access")]
    Network,
    /// A `wasi:http/*` import.
    #[error("plugins get no HTTP access")]
    Http,
    /// Any other interface that is neither the host's nor answered by the hermetic sandbox.
    #[error("it is not part of the plugin sandbox")]
    NotInSandbox,
    /// A host interface of an incompatible (or no) WIT version.
    #[error("the component targets wasmtel:plugin {found}; this runtime supports {WIT_VERSION}")]
    IncompatibleWit {
        /// The version the component imports, or `unversioned`.
        found: String,
    },
}

/// Checks an imported interface against the sandbox: the host's interfaces
/// at a compatible version, or one the hermetic sandbox answers.
pub fn check_import(import: &str) -> Result<(), ImportRefused> {
    let (interface, version) = split_version(import);
    if HOST.contains(&interface) {
        return match version {
            Some(version) if wit_compatible(version) => Ok(()),
            _ => Err(ImportRefused::IncompatibleWit { found: version.unwrap_or("unversioned").to_string() }),
        };
    }
    if HERMETIC_WASI.contains(&interface) {
        Ok(())
    } else if interface.starts_with("wasi:sockets/") {
        Err(ImportRefused::Network)
    } else if interface.starts_with("wasi:http/") {
        Err(ImportRefused::Http)
    } else {
        Err(ImportRefused::NotInSandbox)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wit_versions_follow_the_caret_rule() {
        assert!(wit_compatible("0.1.0"));
        assert!(wit_compatible("0.1.7"));
        assert!(!wit_compatible("0.2.0"));
        assert!(!wit_compatible("1.0.0"));
        assert!(!wit_compatible("garbage"));
    }

    #[test]
    fn imports_are_judged_by_interface_and_version() {
        assert_eq!(check_import("wasmtel:plugin/host@0.1.0"), Ok(()));
        assert_eq!(check_import("wasmtel:plugin/host@0.1.9"), Ok(()));
        assert_eq!(
            check_import("wasmtel:plugin/host@0.2.0"),
            Err(ImportRefused::IncompatibleWit { found: "0.2.0".into() })
        );
        assert_eq!(
            check_import("wasmtel:plugin/types"),
            Err(ImportRefused::IncompatibleWit { found: "unversioned".into() })
        );
        assert_eq!(check_import("wasi:io/streams@0.2.6"), Ok(()));
        assert_eq!(check_import("wasi:sockets/tcp@0.2.6"), Err(ImportRefused::Network));
        assert_eq!(check_import("wasi:http/outgoing-handler@0.2.6"), Err(ImportRefused::Http));
        assert_eq!(check_import("acme:secrets/vault"), Err(ImportRefused::NotInSandbox));
        assert!(is_hermetic("wasi:random/random@0.2.6") && !is_hermetic("wasi:sockets/tcp@0.2.6"));
    }
}
