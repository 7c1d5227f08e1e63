//! `sign::check_payload` (simple-signing JSON against a fixed manifest
//! digest) must never panic on any bytes, nor `PublicKey::from_pem` on the
//! same bytes as lossy text; a key that parses is printed and fingerprinted.
#![no_main]

use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;
use wasmtel_registry::{Digest, PublicKey, sign};

const MANIFEST: &str = "sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";

fn manifest() -> &'static Digest {
    static DIGEST: OnceLock<Digest> = OnceLock::new();
    DIGEST.get_or_init(|| Digest::parse(MANIFEST).expect("fixed digest"))
}

fuzz_target!(|data: &[u8]| {
    let _ = sign::check_payload(data, manifest());
    if let Ok(key) = PublicKey::from_pem(&String::from_utf8_lossy(data), "fuzz") {
        let _ = (key.to_pem(), key.fingerprint());
    }
});
