//! What `wasmtel inspect` shows about a component, without running guest code.

use serde::Serialize;

use crate::{Grants, LoadedComponent, Manifest};

#[derive(Debug, Serialize)]
pub struct Inspection {
    pub name: String,
    pub digest: String,
    pub wit_version: String,
    pub manifest: Option<Manifest>,
    pub imports: Vec<String>,
    pub exports: Vec<String>,
    /// Capabilities the plugin would run with under the given grants.
    pub grants: Grants,
    /// Imports answered by the hermetic sandbox rather than the real host.
    pub hermetic_imports: Vec<String>,
}

impl Inspection {
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
