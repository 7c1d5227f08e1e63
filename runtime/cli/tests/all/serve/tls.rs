//! Secured forwarding: `wasmtel serve` A forwards OTLP over TLS to `wasmtel
//! serve` B with a CA made for the test and a bearer token read from a file; a
//! wrong CA and a missing token are refused with clear errors and open A's
//! breaker. OTAP goes over mutual TLS: only a client certificate of the CA is
//! admitted.

use rcgen::{BasicConstraints, CertificateParams, CertifiedIssuer, DnType, ExtendedKeyUsagePurpose, IsCa, KeyPair};

use super::*;

/// A CA and, signed by it, a server certificate for `localhost` and
/// 127.0.0.1 and a client certificate; PEM files in `dir`.
struct Pki {
    ca: PathBuf,
    cert: PathBuf,
    key: PathBuf,
    client_cert: PathBuf,
    client_key: PathBuf,
}

fn make_pki(dir: &Path, name: &str) -> Pki {
    let mut ca_params = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca_params.distinguished_name.push(DnType::CommonName, format!("wasmtel test CA {name}"));
    let ca = CertifiedIssuer::self_signed(ca_params, KeyPair::generate().unwrap()).unwrap();
    let server_key = KeyPair::generate().unwrap();
    let server = CertificateParams::new(vec!["localhost".to_string(), "127.0.0.1".to_string()])
        .unwrap()
        .signed_by(&server_key, &ca)
        .unwrap();
    let client_key = KeyPair::generate().unwrap();
    let mut client_params = CertificateParams::new(vec!["wasmtel-forwarder".to_string()]).unwrap();
    client_params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
    let client = client_params.signed_by(&client_key, &ca).unwrap();
    let file = |what: &str| dir.join(format!("{name}-{what}"));
    let pki = Pki {
        ca: file("ca.pem"),
        cert: file("server.pem"),
        key: file("server.key"),
        client_cert: file("client.pem"),
        client_key: file("client.key"),
    };
    std::fs::write(&pki.ca, ca.pem()).unwrap();
    std::fs::write(&pki.cert, server.pem()).unwrap();
    std::fs::write(&pki.key, server_key.serialize_pem()).unwrap();
    std::fs::write(&pki.client_cert, client.pem()).unwrap();
    std::fs::write(&pki.client_key, client_key.serialize_pem()).unwrap();
    pki
}

/// B: OTLP/gRPC over TLS in, admitting the bearer tokens in `tokens`, and
/// OTAP over mutual TLS (client certificates of the CA only); Arrow files out.
fn tls_receiver(admin: u16, grpc: u16, otap: u16, pki: &Pki, tokens: &Path, out: &Path) -> Value {
    let mut otlp = otlp_receiver(grpc, true);
    otlp["config"]["protocols"]["grpc"]["tls"] = json!({ "cert_file": pki.cert, "key_file": pki.key });
    otlp["capabilities"] = json!({ "bearer_token_authorizer": "tokens" });
    let mut spec = chain(admin, &[("otlp", otlp), ("files", arrow_files(out))]);
    let pipeline = &mut spec["groups"]["default"]["pipelines"]["main"];
    pipeline["extensions"] = json!({ "tokens": {
        "type": "urn:wasmtel:extension:token_authorizer", "config": { "token_file": tokens } } });
    pipeline["nodes"]["otap"] = json!({ "type": "receiver:otap", "config": {
        "listening_addr": format!("127.0.0.1:{otap}"), "response_stream_channel_size": 64,
        "tls": { "cert_file": pki.cert, "key_file": pki.key, "client_ca_file": pki.ca },
    } });
    pipeline["connections"] = json!([{ "from": ["otlp", "otap"], "to": "files" }]);
    spec
}

/// A: plaintext OTLP in, OTAP over TLS out with `client` (certificate, key) when given.
fn otap_forwarder(admin: u16, grpc: u16, upstream: u16, ca: &Path, client: Option<(&Path, &Path)>) -> Value {
    let mut tls = json!({ "ca_file": ca, "include_system_ca_certs_pool": false });
    if let Some((cert, key)) = client {
        tls["cert_file"] = json!(cert);
        tls["key_file"] = json!(key);
    }
    chain(
        admin,
        &[
            ("otlp", otlp_receiver(grpc, true)),
            (
                "forward",
                json!({ "type": "exporter:otap", "config": {
                "grpc_endpoint": format!("https://localhost:{upstream}"), "tls": tls } }),
            ),
        ],
    )
}

/// A: plaintext OTLP in, redact, breaker, OTLP/gRPC over TLS to B.
fn tls_forwarder(admin: u16, grpc: u16, upstream: u16, ca: &Path, headers: Value) -> Value {
    chain(
        admin,
        &[
            ("otlp", otlp_receiver(grpc, true)),
            ("redact", redact()),
            (
                "breaker",
                json!({ "type": "urn:wasmtel:processor:circuit_breaker", "config": {
                    "failure_threshold": 2, "open_duration": "60s" } }),
            ),
            (
                "forward",
                json!({ "type": "exporter:otlp_grpc", "config": {
                    "grpc_endpoint": format!("https://localhost:{upstream}"),
                    "connect_timeout": "2s",
                    "tls": { "ca_file": ca, "include_system_ca_certs_pool": false },
                    "headers": headers,
                } }),
            ),
        ],
    )
}

/// The dashboard's view of A's breaker.
fn breaker_status(serve: &Serve) -> Value {
    let (_, body) = serve.admin_request("GET", "/api/wasmtel/v1/status", &[]).unwrap_or_default();
    let status: Value = serde_json::from_str(&body).unwrap_or(Value::Null);
    status["pipelines"][0]["breakers"][0].clone()
}

#[test]
fn secured_forwarding_delivers_and_refuses_a_wrong_ca_a_missing_token_or_client_certificate() {
    let dir = tempfile::tempdir().unwrap();
    let (pki, other) = (make_pki(dir.path(), "b"), make_pki(dir.path(), "other"));
    let (b_grpc, b_otap, b_admin) = (free_port(), free_port(), free_port());
    let out = dir.path().join("b-data");
    let tokens = dir.path().join("b-tokens");
    std::fs::write(&tokens, "# admitted\nZp3Wm8Qx1Rv6Ty9Ub2Nc5Ld7\n").unwrap();
    let b = Serve::start(dir.path(), "b", &tls_receiver(b_admin, b_grpc, b_otap, &pki, &tokens, &out), b_grpc);

    // Trusted CA and the token: delivered; the secret never shows in A's status or logs.
    std::fs::write(dir.path().join("token"), "Zp3Wm8Qx1Rv6Ty9Ub2Nc5Ld7\n").unwrap();
    let (a_grpc, a_admin) = (free_port(), free_port());
    let headers = json!({ "authorization": "Bearer ${file:token}" });
    let a = Serve::start(dir.path(), "a", &tls_forwarder(a_admin, a_grpc, b_grpc, &pki.ca, headers), a_grpc);
    runtime().block_on(send_traces(a_grpc, &spans(&["over tls".to_string()]))).expect("delivered over TLS");
    let delivered = wait_for(Duration::from_secs(30), || batch_names(&out, true).contains("over tls"));
    assert!(delivered, "B has {:?}:\n{}", batch_names(&out, true), a.logs());
    let (_, status) = a.admin_request("GET", "/api/wasmtel/v1/status", &[]).unwrap();
    assert!(!status.contains("0123456789abcdef") && !a.logs().contains("0123456789abcdef"), "the token leaked");
    a.stop();

    // A CA that did not sign B's certificate: refused, named, and the breaker opens.
    let (c_grpc, c_admin) = (free_port(), free_port());
    let headers = json!({ "authorization": "Bearer ${file:token}" });
    let c = Serve::start(dir.path(), "c", &tls_forwarder(c_admin, c_grpc, b_grpc, &other.ca, headers), c_grpc);
    let reason = refused_until_open(&c, c_grpc, "untrusted");
    assert!(reason.contains("certificate") || reason.contains("unknownissuer"), "{reason}");
    c.stop();

    // The right CA but no token: B refuses before reading the batch; A's
    // breaker counts the refusal as an outage and keeps it retryable.
    let (d_grpc, d_admin) = (free_port(), free_port());
    let d = Serve::start(dir.path(), "d", &tls_forwarder(d_admin, d_grpc, b_grpc, &pki.ca, json!({})), d_grpc);
    let reason = refused_until_open(&d, d_grpc, "tokenless");
    assert!(reason.contains("unauthenticated") || reason.contains("credential"), "{reason}");
    d.stop();

    // OTAP over mutual TLS: with the client certificate delivered; without it
    // B refuses the handshake and nothing arrives.
    let (e_grpc, e_admin) = (free_port(), free_port());
    let client = Some((pki.client_cert.as_path(), pki.client_key.as_path()));
    let e = Serve::start(dir.path(), "e", &otap_forwarder(e_admin, e_grpc, b_otap, &pki.ca, client), e_grpc);
    runtime().block_on(send_traces(e_grpc, &spans(&["over mtls".to_string()]))).expect("delivered over mTLS");
    let delivered = wait_for(Duration::from_secs(30), || batch_names(&out, true).contains("over mtls"));
    assert!(delivered, "B has {:?}:\n{}", batch_names(&out, true), e.logs());
    e.stop();
    let (f_grpc, f_admin) = (free_port(), free_port());
    let f = Serve::start(dir.path(), "f", &otap_forwarder(f_admin, f_grpc, b_otap, &pki.ca, None), f_grpc);
    let refused = runtime().block_on(send_traces(f_grpc, &spans(&["certless".to_string()])));
    assert!(refused.is_err(), "a client without a certificate was admitted");
    f.stop();

    let names = batch_names(&out, true);
    assert!(
        !names.iter().any(|n| ["untrusted", "tokenless", "certless"].iter().any(|w| n.starts_with(w))),
        "{names:?}"
    );
    b.stop();
}

/// Sends batches through `serve` until its breaker opens (each refused to the
/// client); returns the breaker's last failure, lowercased.
fn refused_until_open(serve: &Serve, grpc: u16, what: &str) -> String {
    for attempt in 0..4 {
        let sent = runtime().block_on(send_traces(grpc, &spans(&[format!("{what} {attempt}")])));
        let error = sent.expect_err("the upstream refuses the batch");
        assert!(matches!(error.code(), tonic::Code::Unavailable), "{what}: {error:?}");
    }
    let breaker = breaker_status(serve);
    assert_eq!(breaker["state"], "open", "{what}: {breaker:#}\n{}", serve.logs());
    breaker["last_failure"].as_str().unwrap_or_default().to_lowercase()
}
