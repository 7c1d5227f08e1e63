//! What describes a wasmtel plugin component without running it: whether
//! bytes are a component at all ([`check_header`]), its top-level imports and
//! exports and its manifest ([`describe`]), which imports the sandbox answers
//! ([`interfaces`]), and the OTLP [`Signal`]s. Nothing here needs wasmtime:
//! the runtime, the registry and the CLI share these definitions.

pub mod interfaces;
mod manifest;
#[cfg(all(unix, feature = "read"))]
pub mod private_dir;
mod signal;

pub use manifest::{FailureMode, MANIFEST_SECTION, Manifest, ManifestError};
pub use signal::{Signal, UnknownSignal};

/// Why bytes are not a wasm component.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum HeaderError {
    /// The input has no bytes at all.
    #[error("the file is empty")]
    Empty,
    /// The input is shorter than a wasm header or does not start with `\0asm`.
    #[error("missing the \\0asm magic number; the content starts with {head:?}")]
    NotWasm {
        /// The first 16 bytes as text, non-printable bytes shown as `.`.
        head: String,
    },
    /// The header is a core module's (layer 0), not a component's.
    #[error(
        "a core WebAssembly module, not a component (build it for wasm32-wasip2 or wrap it with `wasm-tools component new`)"
    )]
    CoreModule,
    /// The layer is neither a core module's nor a component's; carries the
    /// header's version and layer bytes (4..8).
    #[error("unknown wasm encoding version/layer {0:02x?}")]
    UnknownLayer([u8; 4]),
}

/// Tells a component apart from a core module and from non-wasm bytes by
/// its first eight bytes: `\0asm`, a 2-byte version, then the layer (1 for
/// components, 0 for core modules). The version is left to the decoder, which
/// names the one it found (components are at 0x0d today).
pub fn check_header(bytes: &[u8]) -> Result<(), HeaderError> {
    if bytes.is_empty() {
        return Err(HeaderError::Empty);
    }
    if bytes.len() < 8 || &bytes[..4] != b"\0asm" {
        let head = bytes.iter().take(16).map(|b| if b.is_ascii_graphic() { *b as char } else { '.' }).collect();
        return Err(HeaderError::NotWasm { head });
    }
    match bytes[6..8] {
        [0, 0] => Err(HeaderError::CoreModule),
        [1, 0] => Ok(()),
        _ => Err(HeaderError::UnknownLayer([bytes[4], bytes[5], bytes[6], bytes[7]])),
    }
}

/// Why a component cannot be described.
#[cfg(feature = "read")]
#[derive(Debug, thiserror::Error)]
pub enum DescribeError {
    /// The bytes are not a component ([`check_header`] failed).
    #[error(transparent)]
    Header(#[from] HeaderError),
    /// The component's binary encoding is malformed.
    #[error("invalid component: {0}")]
    Parse(#[from] wasmparser::BinaryReaderError),
    /// The component has a manifest section that cannot be read.
    #[error(transparent)]
    Manifest(#[from] ManifestError),
}

/// A component's world and manifest, read without compiling it.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Description {
    /// The manifest section the SDK writes; `None` for a component built without it.
    pub manifest: Option<Manifest>,
    /// Top-level imports, as named in the component (`wasi:io/streams@0.2.6`).
    pub imports: Vec<String>,
    /// Top-level exports.
    pub exports: Vec<String>,
}

impl Description {
    /// The version of the `wasmtel:plugin/processor` export (`None` without
    /// one, or when it is unversioned).
    pub fn processor_version(&self) -> Option<&str> {
        self.exports.iter().find_map(|export| match interfaces::split_version(export) {
            (interfaces::PROCESSOR, version) => version,
            _ => None,
        })
    }
}

#[cfg(feature = "read")]
/// Checks the header, then reads the manifest and the top-level imports and
/// exports (nested modules and components have their own; only depth 0 is
/// the component's world).
pub fn describe(bytes: &[u8]) -> Result<Description, DescribeError> {
    check_header(bytes)?;
    let mut description = Description::default();
    let mut depth = 0usize;
    for payload in wasmparser::Parser::new(0).parse_all(bytes) {
        use wasmparser::Payload;
        match payload? {
            Payload::ModuleSection { .. } | Payload::ComponentSection { .. } => depth += 1,
            Payload::End(_) if depth == 0 => break,
            Payload::End(_) => depth -= 1,
            Payload::ComponentImportSection(reader) if depth == 0 => {
                for import in reader {
                    description.imports.push(import?.name.name.to_string());
                }
            }
            Payload::ComponentExportSection(reader) if depth == 0 => {
                for export in reader {
                    description.exports.push(export?.name.name.to_string());
                }
            }
            // The SDK's section lives in the core module it compiles to.
            Payload::CustomSection(section) if section.name() == MANIFEST_SECTION && description.manifest.is_none() => {
                description.manifest = Some(Manifest::from_section(section.data())?);
            }
            _ => {}
        }
    }
    Ok(description)
}

#[cfg(all(test, feature = "read"))]
mod tests {
    use super::*;

    #[test]
    fn headers_tell_components_from_modules_and_other_files() {
        assert_eq!(check_header(b""), Err(HeaderError::Empty));
        assert!(matches!(check_header(b"hello world"), Err(HeaderError::NotWasm { head }) if head == "hello.world"));
        assert_eq!(check_header(b"\0asm\x01\0\0\0"), Err(HeaderError::CoreModule));
        assert_eq!(check_header(b"\0asm\x0d\0\x02\0"), Err(HeaderError::UnknownLayer([0x0d, 0, 2, 0])));
        assert_eq!(check_header(b"\0asm\x0d\0\x01\0"), Ok(()));
    }

    #[test]
    fn an_empty_component_has_an_empty_world() {
        let description = describe(b"\0asm\x0d\0\x01\0").unwrap();
        assert_eq!(description, Description::default());
        assert_eq!(description.processor_version(), None);
    }

    #[test]
    fn truncated_sections_are_parse_errors() {
        assert!(matches!(describe(b"\0asm\x0d\0\x01\0\x0a\x05"), Err(DescribeError::Parse(_))));
    }
}
