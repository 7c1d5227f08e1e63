//! The OCI distribution side, on `oci-client`: one client per registry and
//! scheme, every manifest and blob checked against its digest by us (the
//! registry's `Docker-Content-Digest` header is not trusted on its own).

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use futures_util::StreamExt;
use oci_client::client::{ClientConfig, ClientProtocol};
use oci_client::secrets::RegistryAuth;

use crate::artifact::{
    ArtifactError, DOCKER_LIST_MEDIA_TYPE, DOCKER_MANIFEST_MEDIA_TYPE, Descriptor, OCI_INDEX_MEDIA_TYPE,
    OCI_MANIFEST_MEDIA_TYPE,
};
use crate::error::classify;
use crate::reference::{Digest, OciRef, is_loopback};
use crate::store::Store;
use crate::{ErrorKind, Progress};

/// Manifests are small; anything bigger is not one of ours.
const MAX_MANIFEST_BYTES: usize = 4 << 20;
/// Upload chunk, also the progress granularity.
const CHUNK: usize = 1 << 20;

pub(crate) struct Remote {
    clients: Mutex<HashMap<String, Arc<oci_client::Client>>>,
    insecure: Vec<String>,
    timeout: Duration,
    auth: RegistryAuth,
}

impl Remote {
    pub fn new(insecure: Vec<String>, timeout: Duration) -> Remote {
        // rustls needs a process-wide crypto provider; another crate may have installed one already.
        let _ = rustls::crypto::ring::default_provider().install_default();
        let auth = match (std::env::var("WASMTEL_REGISTRY_USERNAME"), std::env::var("WASMTEL_REGISTRY_PASSWORD")) {
            (Ok(user), Ok(password)) => RegistryAuth::Basic(user, password),
            _ => RegistryAuth::Anonymous,
        };
        Remote { clients: Mutex::default(), insecure, timeout, auth }
    }

    /// Plain HTTP only for loopback hosts and registries configured as insecure.
    fn plain_http(&self, oci: &OciRef) -> bool {
        is_loopback(oci.host()) || self.insecure.iter().any(|r| r == &oci.registry || r == oci.host())
    }

    fn client(&self, oci: &OciRef) -> Arc<oci_client::Client> {
        let http = self.plain_http(oci);
        let key = format!("{}{}", if http { "http://" } else { "https://" }, oci.registry);
        let mut clients = self.clients.lock().unwrap_or_else(PoisonError::into_inner);
        clients
            .entry(key)
            .or_insert_with(|| {
                Arc::new(oci_client::Client::new(ClientConfig {
                    protocol: if http { ClientProtocol::Http } else { ClientProtocol::Https },
                    connect_timeout: Some(self.timeout),
                    read_timeout: Some(self.timeout),
                    platform_resolver: None,
                    ..ClientConfig::default()
                }))
            })
            .clone()
    }

    fn fail(oci: &OciRef) -> impl Fn(oci_client::errors::OciDistributionError) -> ErrorKind + '_ {
        move |e| classify(&oci.registry, e)
    }

    /// The digest a tag points at now (HEAD request).
    pub async fn head(&self, oci: &OciRef) -> Result<Digest, ErrorKind> {
        let digest =
            self.client(oci).fetch_manifest_digest(&oci.client_ref(), &self.auth).await.map_err(Self::fail(oci))?;
        Digest::parse(&digest).map_err(|e| registry_error(oci, format!("bad digest header: {e}")))
    }

    /// Fetches a manifest and checks its bytes hash to the pinned digest, if any.
    pub async fn manifest(&self, oci: &OciRef) -> Result<(Vec<u8>, Digest), ErrorKind> {
        self.manifest_accepting(oci, &[OCI_MANIFEST_MEDIA_TYPE, DOCKER_MANIFEST_MEDIA_TYPE]).await
    }

    async fn manifest_accepting(&self, oci: &OciRef, accept: &[&str]) -> Result<(Vec<u8>, Digest), ErrorKind> {
        let (bytes, _) =
            self.client(oci).pull_manifest_raw(&oci.client_ref(), &self.auth, accept).await.map_err(Self::fail(oci))?;
        if bytes.len() > MAX_MANIFEST_BYTES {
            return Err(registry_error(oci, format!("manifest of {} bytes is too large", bytes.len())));
        }
        let actual = Digest::of(&bytes);
        if let Some(expected) = &oci.digest
            && &actual != expected
        {
            return Err(ErrorKind::DigestMismatch {
                what: "manifest",
                expected: expected.to_string(),
                actual: actual.to_string(),
            });
        }
        Ok((bytes.to_vec(), actual))
    }

    /// Like [`Remote::manifest`], but a missing manifest is `None` (signature
    /// tags). Indexes are accepted too, so that whatever a tag holds is seen
    /// (and never mistaken for nothing and overwritten).
    pub async fn manifest_if_exists(&self, oci: &OciRef) -> Result<Option<(Vec<u8>, Digest)>, ErrorKind> {
        let accept =
            [OCI_MANIFEST_MEDIA_TYPE, DOCKER_MANIFEST_MEDIA_TYPE, OCI_INDEX_MEDIA_TYPE, DOCKER_LIST_MEDIA_TYPE];
        match self.manifest_accepting(oci, &accept).await {
            Ok(found) => Ok(Some(found)),
            Err(ErrorKind::NotFound(_)) => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// Streams a blob into the store: hashed while written, renamed into place
    /// only if digest and size match the descriptor.
    pub async fn blob_to_store(
        &self,
        oci: &OciRef,
        descriptor: &Descriptor,
        store: &Store,
        progress: &dyn Progress,
    ) -> Result<std::path::PathBuf, ErrorKind> {
        let expected =
            Digest::parse(&descriptor.digest).map_err(|source| ArtifactError::Digest { what: "layer", source })?;
        let client = self.client(oci);
        let mut stream =
            client.pull_blob_stream(&oci.client_ref(), descriptor.digest.as_str()).await.map_err(Self::fail(oci))?;
        let mut writer = store.blob_writer()?;
        progress.begin(&format!("pull {}", short(&expected)), Some(descriptor.size));
        let result = async {
            while let Some(chunk) = stream.next().await {
                let chunk = chunk.map_err(|e| {
                    // oci-client reports its own digest check as an I/O error at the end of the stream.
                    registry_error(oci, format!("reading blob {expected}: {e}"))
                })?;
                writer.write(&chunk)?;
                progress.advance(chunk.len() as u64);
                if writer.size() > descriptor.size {
                    return Err(ErrorKind::DigestMismatch {
                        what: "content",
                        expected: format!("{expected} ({} bytes)", descriptor.size),
                        actual: format!("more than {} bytes", descriptor.size),
                    });
                }
            }
            Ok(())
        }
        .await;
        progress.end();
        // A transfer cut short reports its own error; a complete one is judged by our
        // digest (which names both digests) rather than the stream's.
        let actual = writer.digest();
        match result {
            Err(e) if writer.size() < descriptor.size => Err(e),
            _ if actual != expected => Err(ErrorKind::DigestMismatch {
                what: "content",
                expected: expected.to_string(),
                actual: actual.to_string(),
            }),
            Err(e) => Err(e),
            Ok(()) => writer.commit(&expected),
        }
    }

    /// A small blob (config, signature payload) into memory, digest-checked.
    pub async fn small_blob(&self, oci: &OciRef, descriptor: &Descriptor) -> Result<Vec<u8>, ErrorKind> {
        let expected = Digest::parse(&descriptor.digest).map_err(|e| registry_error(oci, e))?;
        if descriptor.size as usize > MAX_MANIFEST_BYTES {
            return Err(registry_error(oci, format!("blob {expected} of {} bytes is too large", descriptor.size)));
        }
        let mut bytes = Vec::new();
        let mut stream = self
            .client(oci)
            .pull_blob_stream(&oci.client_ref(), descriptor.digest.as_str())
            .await
            .map_err(Self::fail(oci))?;
        while let Some(chunk) = stream.next().await {
            match chunk {
                Ok(chunk) => bytes.extend_from_slice(&chunk),
                Err(_) => break, // Reported below as a digest mismatch with both digests.
            }
            if bytes.len() > MAX_MANIFEST_BYTES {
                break;
            }
        }
        let actual = Digest::of(&bytes);
        if actual != expected {
            return Err(ErrorKind::DigestMismatch {
                what: "blob",
                expected: expected.to_string(),
                actual: actual.to_string(),
            });
        }
        Ok(bytes)
    }

    /// Uploads a blob unless the registry has it already.
    pub async fn push_blob(
        &self,
        oci: &OciRef,
        bytes: bytes::Bytes,
        digest: &Digest,
        progress: Option<Arc<dyn Progress>>,
    ) -> Result<(), ErrorKind> {
        let client = self.client(oci);
        let image = oci.client_ref();
        if client.blob_exists(&image, digest.as_str()).await.map_err(Self::fail(oci))? {
            return Ok(());
        }
        let Some(progress) = progress else {
            client.push_blob(&image, bytes, digest.as_str()).await.map_err(Self::fail(oci))?;
            return Ok(());
        };
        progress.begin(&format!("push {}", short(digest)), Some(bytes.len() as u64));
        let size = bytes.len() as u64;
        let chunks: Vec<bytes::Bytes> =
            (0..bytes.len()).step_by(CHUNK).map(|start| bytes.slice(start..(start + CHUNK).min(bytes.len()))).collect();
        let reporter = progress.clone();
        let stream = futures_util::stream::iter(chunks).map(move |chunk| {
            reporter.advance(chunk.len() as u64);
            Ok(chunk)
        });
        let result = client.push_blob_stream(&image, stream, digest.as_str(), Some(size)).await;
        progress.end();
        result.map_err(Self::fail(oci))?;
        Ok(())
    }

    /// Puts a manifest under `oci`'s tag (or digest).
    pub async fn push_manifest(&self, oci: &OciRef, bytes: Vec<u8>, media_type: &str) -> Result<(), ErrorKind> {
        let content_type = http::HeaderValue::from_str(media_type).map_err(|e| registry_error(oci, e))?;
        self.client(oci).push_manifest_raw(&oci.client_ref(), bytes, content_type).await.map_err(Self::fail(oci))?;
        Ok(())
    }
}

fn registry_error(oci: &OciRef, detail: impl std::fmt::Display) -> ErrorKind {
    ErrorKind::Registry { registry: oci.registry.clone(), detail: detail.to_string() }
}

fn short(digest: &Digest) -> String {
    format!("sha256:{}", &digest.hex()[..12])
}
