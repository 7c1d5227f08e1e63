//! Signatures in cosign's key-pair format, so `cosign sign --key` /
//! `cosign verify --key` and wasmtel interoperate:
//!
//! - keys: ECDSA P-256; public keys as PKIX `PUBLIC KEY` PEM; private keys as
//!   cosign writes them (`ENCRYPTED SIGSTORE PRIVATE KEY`: PKCS#8 DER sealed with
//!   nacl/secretbox under an scrypt-derived key, in a JSON envelope), or plain
//!   PKCS#8 / SEC1 PEM;
//! - payload: the "simple signing" JSON naming the manifest digest;
//! - signature: ASN.1 DER ECDSA over SHA-256 of the payload, base64, stored as the
//!   `dev.cosignproject.cosign/signature` annotation of the payload's layer in an
//!   OCI manifest tagged `sha256-<manifest hex>.sig` in the same repository.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;
use p256::ecdsa::signature::{Signer, Verifier};
use p256::ecdsa::{Signature, SigningKey as EcdsaSigningKey, VerifyingKey};
use p256::pkcs8::{DecodePrivateKey, DecodePublicKey, EncodePrivateKey, EncodePublicKey, LineEnding};
use serde::{Deserialize, Serialize};

use crate::reference::Digest;

/// Media type of the signed payload layer (cosign's "simple signing" JSON).
pub(crate) const SIMPLESIGNING_MEDIA_TYPE: &str = "application/vnd.dev.cosign.simplesigning.v1+json";
/// Layer annotation holding the base64 signature of the payload.
pub(crate) const SIGNATURE_ANNOTATION: &str = "dev.cosignproject.cosign/signature";
/// A crypto crate's error, kept as the source.
type Source = Box<dyn std::error::Error + Send + Sync>;

/// Why a key cannot be read, decrypted or written.
#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    /// The text is not PEM.
    #[error("not a PEM private key: {0}")]
    NotPem(#[source] Source),
    /// A PEM block that is no private key this reads.
    #[error("unsupported PEM block {0:?} (expected a cosign or PKCS#8 private key)")]
    UnsupportedBlock(String),
    /// The key is not an ECDSA P-256 key (`what` says which encoding).
    #[error("{what} is not ECDSA P-256: {source}")]
    NotP256 {
        /// The encoding: decrypted, PKCS#8 or SEC1 key.
        what: &'static str,
        /// The decoder's reason.
        #[source]
        source: Source,
    },
    /// The text is not a PKIX ECDSA P-256 public key PEM.
    #[error("not a PEM ECDSA P-256 public key: {0}")]
    NotPublicKey(#[source] Source),
    /// cosign's encrypted envelope does not parse.
    #[error("encrypted key envelope is malformed: {0}")]
    Envelope(#[source] serde_json::Error),
    /// A key derivation or cipher other than cosign's scrypt + secretbox.
    #[error("unsupported key encryption {kdf} + {cipher}")]
    UnsupportedEncryption {
        /// The envelope's key derivation.
        kdf: String,
        /// The envelope's cipher.
        cipher: String,
    },
    /// The secretbox nonce is not 24 bytes.
    #[error("secretbox nonce must be 24 bytes")]
    Nonce,
    /// scrypt parameters out of the supported range (N a power of two up to 2^20, r ≤ 32, p ≤ 16).
    #[error("unsupported scrypt parameters N={n} r={r} p={p}")]
    Scrypt {
        /// Cost.
        n: u64,
        /// Block size.
        r: u32,
        /// Parallelism.
        p: u32,
    },
    /// Wrong password, or a corrupted key.
    #[error("cannot decrypt the private key: wrong password (COSIGN_PASSWORD) or corrupted key")]
    Decrypt,
    /// Encoding or encrypting the key failed.
    #[error("encoding the key: {0}")]
    Encode(#[source] Source),
}

/// Why a verified signature payload does not vouch for a manifest.
#[derive(Debug, thiserror::Error)]
pub enum PayloadError {
    /// Not cosign's simple-signing JSON.
    #[error("signature payload is not simple-signing JSON: {0}")]
    NotSimpleSigning(#[source] serde_json::Error),
    /// Simple-signing of another type.
    #[error("signature payload type is {0:?}")]
    Type(String),
    /// A signature of another manifest.
    #[error("signature is for {signed}, not {manifest}")]
    OtherManifest {
        /// The manifest digest the payload names.
        signed: String,
        /// The manifest being verified.
        manifest: Digest,
    },
}

const SIGNATURE_TYPE: &str = "cosign container image signature";
const ENCRYPTED_LABEL: &str = "ENCRYPTED SIGSTORE PRIVATE KEY";
const LEGACY_ENCRYPTED_LABEL: &str = "ENCRYPTED COSIGN PRIVATE KEY";
/// scrypt cost cosign uses for new keys (N = 2^15, r = 8, p = 1).
const SCRYPT_LOG_N: u8 = 15;
/// Refuse keys that ask for absurd scrypt work (memory is 128·r·N bytes).
const SCRYPT_MAX_LOG_N: u8 = 20;

/// The tag under which cosign stores the signatures of `manifest`.
pub(crate) fn signature_tag(manifest: &Digest) -> String {
    format!("sha256-{}.sig", manifest.hex())
}

/// A private key for signing.
pub struct SigningKey(EcdsaSigningKey);

/// A public key trusted to verify signatures; `label` names it in messages.
#[derive(Clone, Debug)]
pub struct PublicKey {
    /// Names the key in messages and in `signed_by`: its path, `trusted_keys[i]` for inline PEM, or `signing key`.
    pub label: String,
    key: VerifyingKey,
}

impl SigningKey {
    /// A new random P-256 key.
    pub fn generate() -> SigningKey {
        SigningKey(EcdsaSigningKey::random(&mut rand_core::OsRng))
    }

    /// Reads cosign's encrypted key (with `password`), or an unencrypted PKCS#8 / SEC1 PEM key.
    pub fn from_pem(pem: &str, password: &[u8]) -> Result<SigningKey, KeyError> {
        let (label, der) =
            pem_rfc7468::decode_vec(pem.trim().as_bytes()).map_err(|e| KeyError::NotPem(e.to_string().into()))?;
        let not_p256 = |what: &'static str| move |e: p256::pkcs8::Error| KeyError::NotP256 { what, source: e.into() };
        let key = match label {
            ENCRYPTED_LABEL | LEGACY_ENCRYPTED_LABEL => {
                let pkcs8 = decrypt(&der, password)?;
                EcdsaSigningKey::from_pkcs8_der(&pkcs8).map_err(not_p256("decrypted key"))?
            }
            "PRIVATE KEY" => EcdsaSigningKey::from_pkcs8_der(&der).map_err(not_p256("PKCS#8 key"))?,
            "EC PRIVATE KEY" => p256::SecretKey::from_sec1_der(&der)
                .map(EcdsaSigningKey::from)
                .map_err(|e| KeyError::NotP256 { what: "SEC1 key", source: e.into() })?,
            other => return Err(KeyError::UnsupportedBlock(other.to_string())),
        };
        Ok(SigningKey(key))
    }

    /// The key as cosign writes `cosign.key` (password may be empty, as cosign allows).
    pub fn to_encrypted_pem(&self, password: &[u8]) -> Result<String, KeyError> {
        let pkcs8 = self.0.to_pkcs8_der().map_err(|e| KeyError::Encode(e.into()))?;
        let envelope = encrypt(pkcs8.as_bytes(), password)?;
        pem_rfc7468::encode_string(ENCRYPTED_LABEL, LineEnding::LF, &envelope)
            .map_err(|e| KeyError::Encode(e.to_string().into()))
    }

    /// The matching public key, labelled `signing key`.
    pub fn public_key(&self) -> PublicKey {
        PublicKey { label: "signing key".to_string(), key: *self.0.verifying_key() }
    }

    /// Base64 of the DER ECDSA signature over SHA-256(payload) (RFC 6979 nonces).
    pub fn sign(&self, payload: &[u8]) -> String {
        let signature: Signature = self.0.sign(payload);
        B64.encode(signature.to_der().as_bytes())
    }
}

impl PublicKey {
    /// A PKIX `PUBLIC KEY` PEM (cosign.pub).
    pub fn from_pem(pem: &str, label: impl Into<String>) -> Result<PublicKey, KeyError> {
        let label = label.into();
        let key = VerifyingKey::from_public_key_pem(pem.trim()).map_err(|e| KeyError::NotPublicKey(e.into()))?;
        Ok(PublicKey { label, key })
    }

    /// The key as a PKIX `PUBLIC KEY` PEM (cosign.pub).
    pub fn to_pem(&self) -> Result<String, KeyError> {
        self.key.to_public_key_pem(LineEnding::LF).map_err(|e| KeyError::Encode(e.into()))
    }

    /// `sha256:` of the DER public key, to tell keys apart in output.
    pub fn fingerprint(&self) -> String {
        match self.key.to_public_key_der() {
            Ok(der) => Digest::of(der.as_bytes()).to_string(),
            Err(_) => "unknown".to_string(),
        }
    }

    /// Checks a base64 DER (or raw r‖s) signature over `payload`.
    pub fn verify(&self, payload: &[u8], signature_b64: &str) -> bool {
        let Ok(raw) = B64.decode(signature_b64.trim()) else { return false };
        let Ok(signature) = Signature::from_der(&raw).or_else(|_| Signature::from_slice(&raw)) else {
            return false;
        };
        if self.key.verify(payload, &signature).is_ok() {
            return true;
        }
        // Go's ecdsa emits high-S signatures; (r, s) and (r, n-s) are equally valid.
        signature.normalize_s().is_some_and(|low| self.key.verify(payload, &low).is_ok())
    }
}

#[derive(Serialize, Deserialize)]
struct SimpleSigning {
    critical: Critical,
    #[serde(default)]
    optional: Option<serde_json::Value>,
}

#[derive(Serialize, Deserialize)]
struct Critical {
    identity: Identity,
    image: Image,
    #[serde(rename = "type")]
    kind: String,
}

#[derive(Serialize, Deserialize)]
struct Identity {
    #[serde(rename = "docker-reference")]
    docker_reference: String,
}

#[derive(Serialize, Deserialize)]
struct Image {
    // cosign writes lowercase; its reader (Go) is case-insensitive, so accept the spec's capitalised form too.
    #[serde(rename = "docker-manifest-digest", alias = "Docker-manifest-digest")]
    docker_manifest_digest: String,
}

/// The simple-signing payload for `manifest` in `repository` (`host/repo`).
pub fn payload(repository: &str, manifest: &Digest) -> Vec<u8> {
    let payload = SimpleSigning {
        critical: Critical {
            identity: Identity { docker_reference: repository.to_string() },
            image: Image { docker_manifest_digest: manifest.to_string() },
            kind: SIGNATURE_TYPE.to_string(),
        },
        optional: None,
    };
    serde_json::to_vec(&payload).unwrap_or_default()
}

/// Checks a (signature-verified) payload is a cosign image signature for `manifest`.
/// The identity is not checked, as in cosign: mirrors and renames keep signatures valid.
pub fn check_payload(payload: &[u8], manifest: &Digest) -> Result<(), PayloadError> {
    let parsed: SimpleSigning = serde_json::from_slice(payload).map_err(PayloadError::NotSimpleSigning)?;
    if parsed.critical.kind != SIGNATURE_TYPE {
        return Err(PayloadError::Type(parsed.critical.kind));
    }
    if parsed.critical.image.docker_manifest_digest != manifest.as_str() {
        return Err(PayloadError::OtherManifest {
            signed: parsed.critical.image.docker_manifest_digest,
            manifest: manifest.clone(),
        });
    }
    Ok(())
}

/// The image config cosign puts in its signature manifests (rootfs lists the payloads).
pub(crate) fn signature_config(payload_digests: &[String]) -> Vec<u8> {
    serde_json::to_vec(&serde_json::json!({
        "architecture": "",
        "created": "0001-01-01T00:00:00Z",
        "history": [{ "created": "0001-01-01T00:00:00Z" }],
        "os": "",
        "rootfs": { "type": "layers", "diff_ids": payload_digests },
        "config": {},
    }))
    .unwrap_or_default()
}

/// go-securesystemslib's `encrypted` envelope, as cosign stores private keys.
#[derive(Serialize, Deserialize)]
struct Envelope {
    kdf: Kdf,
    cipher: Cipher,
    #[serde(with = "b64")]
    ciphertext: Vec<u8>,
}

#[derive(Serialize, Deserialize)]
struct Kdf {
    name: String,
    params: ScryptParams,
    #[serde(with = "b64")]
    salt: Vec<u8>,
}

#[derive(Serialize, Deserialize)]
struct ScryptParams {
    #[serde(rename = "N")]
    n: u64,
    r: u32,
    p: u32,
}

#[derive(Serialize, Deserialize)]
struct Cipher {
    name: String,
    #[serde(with = "b64")]
    nonce: Vec<u8>,
}

mod b64 {
    use base64::Engine as _;
    use base64::engine::general_purpose::STANDARD;
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(bytes: &[u8], s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&STANDARD.encode(bytes))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<u8>, D::Error> {
        let text = String::deserialize(d)?;
        STANDARD.decode(text).map_err(serde::de::Error::custom)
    }
}

fn derive_key(password: &[u8], salt: &[u8], params: &ScryptParams) -> Result<[u8; 32], KeyError> {
    let unsupported = || KeyError::Scrypt { n: params.n, r: params.r, p: params.p };
    if !params.n.is_power_of_two() || params.n < 2 {
        return Err(unsupported());
    }
    let log_n = params.n.trailing_zeros() as u8;
    if log_n > SCRYPT_MAX_LOG_N || params.r > 32 || params.p > 16 {
        return Err(unsupported());
    }
    let scrypt_params = scrypt::Params::new(log_n, params.r, params.p, 32).map_err(|_| unsupported())?;
    let mut key = [0u8; 32];
    scrypt::scrypt(password, salt, &scrypt_params, &mut key).map_err(|_| unsupported())?;
    Ok(key)
}

fn decrypt(envelope: &[u8], password: &[u8]) -> Result<Vec<u8>, KeyError> {
    use crypto_secretbox::aead::{Aead, KeyInit};
    let envelope: Envelope = serde_json::from_slice(envelope).map_err(KeyError::Envelope)?;
    if envelope.kdf.name != "scrypt" || envelope.cipher.name != "nacl/secretbox" {
        return Err(KeyError::UnsupportedEncryption { kdf: envelope.kdf.name, cipher: envelope.cipher.name });
    }
    if envelope.cipher.nonce.len() != 24 {
        return Err(KeyError::Nonce);
    }
    let key = derive_key(password, &envelope.kdf.salt, &envelope.kdf.params)?;
    let cipher = crypto_secretbox::XSalsa20Poly1305::new(&key.into());
    let nonce = crypto_secretbox::Nonce::from_slice(&envelope.cipher.nonce);
    cipher.decrypt(nonce, envelope.ciphertext.as_slice()).map_err(|_| KeyError::Decrypt)
}

fn encrypt(plaintext: &[u8], password: &[u8]) -> Result<Vec<u8>, KeyError> {
    use crypto_secretbox::aead::{Aead, KeyInit};
    use rand_core::RngCore;
    let mut salt = vec![0u8; 32];
    let mut nonce = vec![0u8; 24];
    rand_core::OsRng.fill_bytes(&mut salt);
    rand_core::OsRng.fill_bytes(&mut nonce);
    let params = ScryptParams { n: 1 << SCRYPT_LOG_N, r: 8, p: 1 };
    let key = derive_key(password, &salt, &params)?;
    let cipher = crypto_secretbox::XSalsa20Poly1305::new(&key.into());
    let ciphertext = cipher
        .encrypt(crypto_secretbox::Nonce::from_slice(&nonce), plaintext)
        .map_err(|_| KeyError::Encode("secretbox encryption failed".into()))?;
    let envelope = Envelope {
        kdf: Kdf { name: "scrypt".to_string(), params, salt },
        cipher: Cipher { name: "nacl/secretbox".to_string(), nonce },
        ciphertext,
    };
    serde_json::to_vec(&envelope).map_err(|e| KeyError::Encode(e.into()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decrypts_the_reference_envelope() {
        // Test vector from go-securesystemslib's `encrypted` package (the code cosign uses to
        // seal private keys): password "supersecret", plaintext "reallyimportant".
        let envelope = br#"{"kdf":{"name":"scrypt","params":{"N":32768,"r":8,"p":1},"salt":"N9a7x5JFGbrtB2uBR81jPwp0eiLR4A7FV3mjVAQrg1g="},"cipher":{"name":"nacl/secretbox","nonce":"2h8HxMmgRfuYdpswZBQaU3xJ1nkA/5Ik"},"ciphertext":"SEW6sUh0jf2wfdjJGPNS9+bkk2uB+Cxamf32zR8XkQ=="}"#;
        assert_eq!(decrypt(envelope, b"supersecret").unwrap(), b"reallyimportant");
        assert!(decrypt(envelope, b"wrong").unwrap_err().to_string().contains("wrong password"));
    }

    #[test]
    fn keys_round_trip_and_signatures_verify() {
        let key = SigningKey::generate();
        let pem = key.to_encrypted_pem(b"pw").unwrap();
        assert!(pem.starts_with("-----BEGIN ENCRYPTED SIGSTORE PRIVATE KEY-----"));
        let again = SigningKey::from_pem(&pem, b"pw").unwrap();
        assert!(SigningKey::from_pem(&pem, b"other").is_err());

        let public = PublicKey::from_pem(&again.public_key().to_pem().unwrap(), "cosign.pub").unwrap();
        let manifest = Digest::of(b"manifest");
        let payload = payload("127.0.0.1:5000/plugins/redact", &manifest);
        let signature = key.sign(&payload);
        assert!(public.verify(&payload, &signature));
        check_payload(&payload, &manifest).unwrap();
        assert!(check_payload(&payload, &Digest::of(b"other")).unwrap_err().to_string().contains("signature is for"));

        let mut tampered = payload.clone();
        tampered[10] ^= 1;
        assert!(!public.verify(&tampered, &signature));
        let stranger = SigningKey::generate().public_key();
        assert!(!stranger.verify(&payload, &signature));
        assert!(!public.verify(&payload, "not base64!"));
    }
}
