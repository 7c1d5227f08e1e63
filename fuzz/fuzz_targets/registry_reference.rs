//! `Reference::parse` and `Digest::parse` must never panic on any text
//! (lossy UTF-8); what parses is displayed and named (`plugin_name`, which
//! slices digests, and `OciRef::host` / `tag_key`) without panicking either.
#![no_main]

use libfuzzer_sys::fuzz_target;
use wasmtel_registry::{Digest, Reference};

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    if let Ok(digest) = Digest::parse(&text) {
        let _ = (digest.hex().len(), digest.to_string());
    }
    if let Ok(reference) = Reference::parse(&text) {
        let _ = reference.to_string();
        if let Reference::Oci(oci) = &reference {
            let _ = (oci.host().len(), oci.tag_key());
        }
    }
    let _ = wasmtel_registry::plugin_name(&text);
});
