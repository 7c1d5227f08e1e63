//! What `wasmtel inspect` shows about a component, without running guest code.

use serde::Serialize;

use crate::{Grants, LoadedComponent, Manifest};

/// What `wasmtel inspect` reports (also as JSON).
#[derive(Debug, Serialize)]
pub struct Inspection {
    /// The plugin name (file stem or reference).
    pub name: String,
    /// `sha256:` digest of the component bytes.
    pub digest: String,
    /// The `wasmtel:plugin` version the component targets.
    pub wit_version: String,
    /// The manifest the SDK embedded, if any.
    pub manifest: Option<Manifest>,
    /// Imported interfaces, versioned.
    pub imports: Vec<String>,
    /// Exported interfaces, versioned.
    pub exports: Vec<String>,
    /// Capabilities the plugin would run with under the given grants.
    pub grants: Grants,
    /// Imports answered by the hermetic sandbox rather than the real host.
    pub hermetic_imports: Vec<String>,
}

impl Inspection {
    /// The report for a loaded component under `grants`.
    pub fn new(component: &LoadedComponent, grants: &Grants) -> Self {
        let hermetic_imports =
            component.imports.iter().filter(|name| wasmtel_component::interfaces::is_hermetic(name)).cloned().collect();
        Inspection {
            name: component.name.clone(),
            digest: component.digest.clone(),
            wit_version: component.wit_version.clone(),
            manifest: component.manifest.clone(),
            imports: component.imports.clone(),
            exports: component.exports.clone(),
            grants: grants.clone(),
            hermetic_imports,
        }
    }
}
