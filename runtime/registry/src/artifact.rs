//! The CNCF TAG Runtime wasm OCI artifact layout: an OCI image manifest whose
//! config is `application/vnd.wasm.config.v0+json` (with the component's WIT
//! imports and exports) and whose single layer is the `application/wasm`
//! component. Our plugin manifest rides along as manifest annotations, so a
//! registry client can describe a plugin from the manifest alone.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::Manifest;
use crate::reference::{Digest, ReferenceError};

/// Media type of an OCI image manifest (what push writes).
pub const OCI_MANIFEST_MEDIA_TYPE: &str = "application/vnd.oci.image.manifest.v1+json";
/// Media type of a Docker v2 image manifest (accepted on pull).
pub const DOCKER_MANIFEST_MEDIA_TYPE: &str = "application/vnd.docker.distribution.manifest.v2+json";
/// Media type of an OCI image index; accepted only when checking what a tag holds, never as a plugin.
pub const OCI_INDEX_MEDIA_TYPE: &str = "application/vnd.oci.image.index.v1+json";
/// Media type of a Docker manifest list; treated like [`OCI_INDEX_MEDIA_TYPE`].
pub const DOCKER_LIST_MEDIA_TYPE: &str = "application/vnd.docker.distribution.manifest.list.v2+json";
/// Media type of the wasm artifact's config blob ([`WasmConfig`]).
pub const WASM_CONFIG_MEDIA_TYPE: &str = "application/vnd.wasm.config.v0+json";
/// Media type of the layer holding the component bytes.
pub const WASM_LAYER_MEDIA_TYPE: &str = "application/wasm";

/// The full plugin manifest as JSON (name, version, signals, config_schema, wit, sdk).
pub const ANNOTATION_MANIFEST: &str = "dev.wasmtel.manifest";
/// Manifest annotation: the plugin's signals, comma-separated (`traces,logs`; empty for all).
pub const ANNOTATION_SIGNALS: &str = "dev.wasmtel.signals";
/// Manifest annotation: the WIT package the plugin targets, e.g. `wasmtel:plugin@0.1.0`.
pub const ANNOTATION_WIT: &str = "dev.wasmtel.wit";
const ANNOTATION_CREATED: &str = "org.opencontainers.image.created";
const ANNOTATION_TITLE: &str = "org.opencontainers.image.title";
const ANNOTATION_VERSION: &str = "org.opencontainers.image.version";

/// An OCI content descriptor: a reference to a blob by digest.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Descriptor {
    /// The blob's media type.
    pub media_type: String,
    /// The blob's digest, `sha256:<hex>`.
    pub digest: String,
    /// The blob's size in bytes.
    pub size: u64,
    /// Annotations on the blob (e.g. `org.opencontainers.image.title` on the layer).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub annotations: Option<BTreeMap<String, String>>,
}

/// An OCI image manifest (the Docker v2 manifest has the same shape).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ImageManifest {
    /// Always 2; other values are refused.
    pub schema_version: u32,
    /// The manifest's own media type, when it states one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub media_type: Option<String>,
    /// The artifact type (OCI 1.1); push leaves it out.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub artifact_type: Option<String>,
    /// The config blob; for a wasm artifact a [`WasmConfig`].
    pub config: Descriptor,
    /// The layers; a wasm artifact has exactly one, the component.
    #[serde(default)]
    pub layers: Vec<Descriptor>,
    /// Manifest annotations; push records the plugin manifest here (`dev.wasmtel.*`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub annotations: Option<BTreeMap<String, String>>,
}

/// `application/vnd.wasm.config.v0+json`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct WasmConfig {
    /// When the artifact was built (RFC 3339).
    #[serde(default)]
    pub created: Option<String>,
    /// Who built it; push leaves it unset.
    #[serde(default)]
    pub author: Option<String>,
    /// Always `wasm` for wasm artifacts.
    pub architecture: String,
    /// The target, `wasip2` for wasmtel plugins.
    pub os: String,
    /// Digests of the layers, in order (the component's).
    #[serde(default)]
    pub layer_digests: Vec<String>,
    /// The component's imports and exports.
    #[serde(default)]
    pub component: Option<ComponentWorld>,
}

/// The component's top-level imports and exports, as the spec asks.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct ComponentWorld {
    /// Top-level exports, as named in the component.
    pub exports: Vec<String>,
    /// Top-level imports, as named in the component (`wasi:io/streams@0.2.6`).
    pub imports: Vec<String>,
    /// The world it targets, `wasmtel:plugin/processor-plugin@<version>` when it exports a versioned processor.
    #[serde(default)]
    pub target: Option<String>,
}

/// What push learns from the component bytes, without compiling them.
#[derive(Clone, Debug)]
pub struct ComponentInfo {
    /// The plugin manifest; `None` for a component built without the SDK.
    pub manifest: Option<Manifest>,
    /// The component's imports and exports.
    pub world: ComponentWorld,
}

/// Why bytes or a manifest are not a wasm component artifact.
#[derive(Debug, thiserror::Error)]
pub enum ArtifactError {
    /// The bytes are not a component (or not one that can be read).
    #[error("not a WebAssembly component: {0}")]
    NotAComponent(#[from] wasmtel_component::DescribeError),
    /// The bytes do not start like a component.
    #[error("not a WebAssembly component: {0}")]
    Header(#[from] wasmtel_component::HeaderError),
    /// The file could not be read to check it.
    #[error("cannot read {path}: {source}")]
    Read {
        /// The file.
        path: std::path::PathBuf,
        /// The operating system's reason.
        source: std::io::Error,
    },
    /// A layer that was fetched and verified is not a component.
    #[error("layer {digest}: {source}")]
    Layer {
        /// The layer's digest.
        digest: Digest,
        /// Why it is not a component.
        source: Box<ArtifactError>,
    },
    /// The manifest is not OCI image manifest JSON.
    #[error("the manifest is not an OCI image manifest: {0}")]
    NotImageManifest(#[source] serde_json::Error),
    /// The manifest's `schemaVersion` is not 2.
    #[error("unsupported manifest schemaVersion {0}")]
    SchemaVersion(u32),
    /// The one layer is not `application/wasm`.
    #[error("its layer has media type {found:?}, not {WASM_LAYER_MEDIA_TYPE:?} (config {config:?})")]
    LayerMediaType {
        /// The layer's media type.
        found: String,
        /// The config's media type, which often says what the artifact is.
        config: String,
    },
    /// Not exactly one layer.
    #[error("expected exactly one {WASM_LAYER_MEDIA_TYPE:?} layer, found {} ({media_types:?})", media_types.len())]
    LayerCount {
        /// The layers' media types.
        media_types: Vec<String>,
    },
    /// A descriptor's digest is malformed.
    #[error("{what} digest: {source}")]
    Digest {
        /// Which descriptor (`layer`, `config`).
        what: &'static str,
        /// What is wrong with it.
        source: ReferenceError,
    },
    /// JSON encoding failed (not expected for these types).
    #[error("encoding the artifact: {0}")]
    Encode(#[source] serde_json::Error),
}

/// Checks the bytes are a wasm component and reads its manifest and world.
pub fn describe(bytes: &[u8]) -> Result<ComponentInfo, ArtifactError> {
    let description = wasmtel_component::describe(bytes)?;
    let target = description.processor_version().map(|version| format!("wasmtel:plugin/processor-plugin@{version}"));
    let world = ComponentWorld { imports: description.imports, exports: description.exports, target };
    Ok(ComponentInfo { manifest: description.manifest, world })
}

/// The config, manifest and digests of an artifact ready to push.
pub struct Artifact {
    /// The config blob ([`WasmConfig`] JSON).
    pub config: Vec<u8>,
    /// Digest of `config`.
    pub config_digest: Digest,
    /// Digest of the component bytes (the layer).
    pub layer_digest: Digest,
    /// Size of the component in bytes.
    pub layer_size: u64,
    /// The image manifest JSON.
    pub manifest: Vec<u8>,
    /// Digest of `manifest`: what a pushed tag points at.
    pub manifest_digest: Digest,
    /// The plugin manifest read from the component, if it has one.
    pub plugin: Option<Manifest>,
}

/// `file_name` becomes the layer's `org.opencontainers.image.title`, which `oras pull` uses to name the file.
pub fn build(component: &[u8], file_name: Option<&str>) -> Result<Artifact, ArtifactError> {
    let info = describe(component)?;
    let created = crate::store::now_rfc3339();
    let layer_digest = Digest::of(component);
    let config = WasmConfig {
        created: Some(created.clone()),
        author: None,
        architecture: "wasm".to_string(),
        os: "wasip2".to_string(),
        layer_digests: vec![layer_digest.to_string()],
        component: Some(info.world),
    };
    let config = serde_json::to_vec(&config).map_err(ArtifactError::Encode)?;
    let config_digest = Digest::of(&config);
    let mut annotations = BTreeMap::from([(ANNOTATION_CREATED.to_string(), created)]);
    if let Some(plugin) = &info.manifest {
        annotations.insert(ANNOTATION_TITLE.to_string(), plugin.name.clone());
        annotations.insert(ANNOTATION_VERSION.to_string(), plugin.version.clone());
        let signals: Vec<&str> = plugin.signals.iter().map(|s| s.as_str()).collect();
        annotations.insert(ANNOTATION_SIGNALS.to_string(), signals.join(","));
        if let Some(wit) = &plugin.wit {
            annotations.insert(ANNOTATION_WIT.to_string(), format!("wasmtel:plugin@{wit}"));
        }
        annotations
            .insert(ANNOTATION_MANIFEST.to_string(), serde_json::to_string(plugin).map_err(ArtifactError::Encode)?);
    }
    let manifest = ImageManifest {
        schema_version: 2,
        media_type: Some(OCI_MANIFEST_MEDIA_TYPE.to_string()),
        artifact_type: None,
        config: Descriptor {
            media_type: WASM_CONFIG_MEDIA_TYPE.to_string(),
            digest: config_digest.to_string(),
            size: config.len() as u64,
            annotations: None,
        },
        layers: vec![Descriptor {
            media_type: WASM_LAYER_MEDIA_TYPE.to_string(),
            digest: layer_digest.to_string(),
            size: component.len() as u64,
            annotations: file_name.map(|name| [(ANNOTATION_TITLE.to_string(), name.to_string())].into()),
        }],
        annotations: Some(annotations),
    };
    let manifest = serde_json::to_vec(&manifest).map_err(ArtifactError::Encode)?;
    Ok(Artifact {
        manifest_digest: Digest::of(&manifest),
        manifest,
        config,
        config_digest,
        layer_digest,
        layer_size: component.len() as u64,
        plugin: info.manifest,
    })
}

/// Parses a manifest and finds its one `application/wasm` layer.
pub fn parse_wasm_manifest(bytes: &[u8]) -> Result<(ImageManifest, Descriptor), ArtifactError> {
    let manifest: ImageManifest = serde_json::from_slice(bytes).map_err(ArtifactError::NotImageManifest)?;
    if manifest.schema_version != 2 {
        return Err(ArtifactError::SchemaVersion(manifest.schema_version));
    }
    let layer = wasm_layer(&manifest)?.clone();
    Ok((manifest, layer))
}

/// The manifest's single `application/wasm` layer; an error when there is not exactly one
/// layer, it has another media type, or its digest is malformed.
pub fn wasm_layer(manifest: &ImageManifest) -> Result<&Descriptor, ArtifactError> {
    match manifest.layers.as_slice() {
        [layer] if layer.media_type == WASM_LAYER_MEDIA_TYPE => {
            Digest::parse(&layer.digest).map_err(|source| ArtifactError::Digest { what: "layer", source })?;
            Ok(layer)
        }
        [layer] => Err(ArtifactError::LayerMediaType {
            found: layer.media_type.clone(),
            config: manifest.config.media_type.clone(),
        }),
        layers => Err(ArtifactError::LayerCount { media_types: layers.iter().map(|l| l.media_type.clone()).collect() }),
    }
}

/// The plugin manifest carried in annotations (absent for components built without the SDK).
pub fn plugin_manifest(manifest: &ImageManifest) -> Option<Manifest> {
    let json = manifest.annotations.as_ref()?.get(ANNOTATION_MANIFEST)?;
    serde_json::from_str(json).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn non_components_are_refused_saying_what_they_are() {
        assert!(describe(b"hello world, not wasm").unwrap_err().to_string().contains("not a WebAssembly component"));
        assert!(describe(b"\0asm\x01\0\0\0").unwrap_err().to_string().contains("core WebAssembly module"));
        assert!(describe(b"\0asm\x0d\0\x01\0").is_ok());
    }

    #[test]
    fn non_wasm_layers_are_refused() {
        let layer = |media_type: &str| Descriptor {
            media_type: media_type.to_string(),
            digest: Digest::of(b"x").to_string(),
            size: 1,
            annotations: None,
        };
        let mut manifest = ImageManifest {
            schema_version: 2,
            media_type: Some(OCI_MANIFEST_MEDIA_TYPE.into()),
            artifact_type: None,
            config: layer(WASM_CONFIG_MEDIA_TYPE),
            layers: vec![layer("application/vnd.oci.image.layer.v1.tar+gzip")],
            annotations: None,
        };
        assert!(wasm_layer(&manifest).unwrap_err().to_string().contains("tar+gzip"));
        manifest.layers = vec![layer(WASM_LAYER_MEDIA_TYPE), layer(WASM_LAYER_MEDIA_TYPE)];
        assert!(wasm_layer(&manifest).unwrap_err().to_string().contains("exactly one"));
        manifest.layers.pop();
        assert!(wasm_layer(&manifest).is_ok());
    }
}
