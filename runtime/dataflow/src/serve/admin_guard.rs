//! The admin address of `wasmtel serve`: a guard in front of the
//! otap-dataflow admin API, which in 0.62 has no authentication and no
//! Origin or Host check (any web page the operator opens could POST
//! `/api/v1/groups/shutdown` as a simple cross-site request, or reach it
//! through DNS rebinding). The engine's own server listens on an ephemeral
//! loopback port; the operator's address serves this guard, which forwards
//! a request only if:
//! - its `Host` names the admin address itself (or a loopback name on its
//!   port), so a rebound DNS name is refused;
//! - it carries no `Origin` other than the admin address's own, and is not
//!   marked `Sec-Fetch-Site: cross-site`, so browsers cannot forge it;
//! - it only reads (GET, HEAD), or it carries `Authorization: Bearer <token>`
//!   matching the admin token; without a token, writes are disabled.

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::thread;

use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, Uri, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use tokio_util::sync::CancellationToken;

/// Why the guard could not start.
#[derive(Debug, thiserror::Error)]
pub enum AdminGuardError {
    /// `address` is not a socket address.
    #[error("admin address {address}: {source}")]
    Address {
        /// The configured address.
        address: String,
        /// Why it does not parse.
        source: std::net::AddrParseError,
    },
    /// Nothing can listen on `address`.
    #[error("admin address {address}: cannot listen: {source}")]
    Bind {
        /// The address.
        address: SocketAddr,
        /// The operating system's reason.
        source: std::io::Error,
    },
    /// The token file cannot be read.
    #[error("admin token file {path}: {source}")]
    TokenUnreadable {
        /// The token file.
        path: String,
        /// The operating system's reason.
        source: std::io::Error,
    },
    /// The token is not long and random enough ([`crate::TOKEN_RULE`]).
    #[error("admin token file {path}: the token must be {rule}", rule = crate::TOKEN_RULE)]
    TokenTooWeak {
        /// The token file.
        path: String,
    },
}

/// A running guard: where operators reach it, and where the engine's own
/// admin server must listen (loopback, ephemeral). Dropping it stops it.
pub struct AdminGuard {
    /// Where operators reach the admin API (through the guard).
    pub public: SocketAddr,
    /// Where the engine's own admin server must listen (loopback,
    /// ephemeral), when the guard forwards to one.
    pub engine: Option<SocketAddr>,
    stop: CancellationToken,
}

impl Drop for AdminGuard {
    fn drop(&mut self) {
        self.stop.cancel();
    }
}

struct Rules {
    public: SocketAddr,
    engine: Option<SocketAddr>,
    token: Option<String>,
    client: Client<HttpConnector, Body>,
}

/// Reads an admin token file: one line, long and random ([`crate::TOKEN_RULE`]).
pub fn read_token(path: &std::path::Path) -> Result<String, AdminGuardError> {
    let text = std::fs::read_to_string(path)
        .map_err(|source| AdminGuardError::TokenUnreadable { path: path.display().to_string(), source })?;
    let token = text.trim().to_string();
    if !crate::is_strong_token(&token) {
        return Err(AdminGuardError::TokenTooWeak { path: path.display().to_string() });
    }
    Ok(token)
}

/// What the guard serves besides the dashboard of `board`.
pub enum Behind {
    /// The engine's admin API, moved to an ephemeral loopback port.
    Engine,
    /// Nothing (an embedded pipeline's dashboard).
    Nothing,
}

/// Listens on `public` and serves, on a thread of its own, the dashboard of
/// `board` and what is `behind` it, every request through the guard's rules.
pub fn start(public: &str, token: Option<String>, board: &str, behind: Behind) -> Result<AdminGuard, AdminGuardError> {
    let public: SocketAddr =
        public.parse().map_err(|source| AdminGuardError::Address { address: public.to_string(), source })?;
    let listener =
        std::net::TcpListener::bind(public).map_err(|source| AdminGuardError::Bind { address: public, source })?;
    let public = listener.local_addr().map_err(|source| AdminGuardError::Bind { address: public, source })?;
    let engine = match behind {
        Behind::Engine => {
            Some(ephemeral_loopback().map_err(|source| AdminGuardError::Bind { address: public, source })?)
        }
        Behind::Nothing => None,
    };
    listener.set_nonblocking(true).map_err(|source| AdminGuardError::Bind { address: public, source })?;
    let rules = Arc::new(Rules { public, engine, token, client: Client::builder(TokioExecutor::new()).build_http() });
    let stop = CancellationToken::new();
    let stopped = stop.clone();
    let board = board.to_string();
    thread::Builder::new()
        .name("wasmtel-admin-guard".into())
        .spawn(move || {
            let runtime = match tokio::runtime::Builder::new_current_thread().enable_all().build() {
                Ok(runtime) => runtime,
                Err(error) => return tracing::error!("admin guard: cannot start its runtime: {error}"),
            };
            runtime.block_on(async move {
                let listener = match tokio::net::TcpListener::from_std(listener) {
                    Ok(listener) => listener,
                    Err(error) => return tracing::error!("admin guard: {error}"),
                };
                tokio::spawn(crate::dashboard::sample_forever(board.clone()));
                let app = crate::dashboard::routes(board)
                    .fallback(forward)
                    .layer(axum::middleware::from_fn_with_state(rules.clone(), check))
                    .with_state(rules);
                let served = axum::serve(listener, app).with_graceful_shutdown(stopped.cancelled_owned());
                if let Err(error) = served.await {
                    tracing::error!("admin guard stopped: {error}");
                }
            });
        })
        .map_err(|source| AdminGuardError::Bind { address: public, source })?;
    Ok(AdminGuard { public, engine, stop })
}

/// A free loopback port for the engine's admin server.
fn ephemeral_loopback() -> std::io::Result<SocketAddr> {
    std::net::TcpListener::bind("127.0.0.1:0")?.local_addr()
}

/// Refuses what the rules refuse, before any route.
async fn check(State(rules): State<Arc<Rules>>, request: Request, next: Next) -> Response {
    if let Err(refusal) = rules.check(request.method(), request.headers()) {
        tracing::warn!(method = %request.method(), path = %request.uri().path(), "admin request refused: {refusal}");
        return (StatusCode::FORBIDDEN, refusal).into_response();
    }
    next.run(request).await
}

/// Anything that is not the dashboard goes to the engine's admin server.
async fn forward(State(rules): State<Arc<Rules>>, request: Request) -> Response {
    let Some(engine) = rules.engine else {
        return (StatusCode::NOT_FOUND, "not found: this address serves the dashboard only").into_response();
    };
    let path = request.uri().path_and_query().map_or("/", |p| p.as_str()).to_string();
    let (mut parts, body) = request.into_parts();
    parts.uri = match format!("http://{engine}{path}").parse::<Uri>() {
        Ok(uri) => uri,
        Err(error) => return (StatusCode::BAD_REQUEST, format!("bad path: {error}")).into_response(),
    };
    parts.headers.remove(header::AUTHORIZATION);
    if let Ok(host) = HeaderValue::from_str(&engine.to_string()) {
        parts.headers.insert(header::HOST, host);
    }
    match rules.client.request(Request::from_parts(parts, body)).await {
        Ok(response) => response.map(Body::new).into_response(),
        Err(error) => {
            (StatusCode::BAD_GATEWAY, format!("the engine's admin server did not answer: {error}")).into_response()
        }
    }
}

impl Rules {
    fn check(&self, method: &Method, headers: &HeaderMap) -> Result<(), String> {
        let host = headers.get(header::HOST).and_then(|v| v.to_str().ok()).ok_or("no Host header")?;
        if !self.is_own_host(host) {
            return Err(format!("Host {host:?} is not this admin address"));
        }
        if let Some(origin) = headers.get(header::ORIGIN) {
            let own = format!("http://{host}");
            if origin.as_bytes() != own.as_bytes() {
                return Err(format!("cross-origin request from {origin:?}"));
            }
        }
        if headers.get("sec-fetch-site").is_some_and(|site| site == "cross-site") {
            return Err("cross-site request".into());
        }
        if matches!(*method, Method::GET | Method::HEAD) {
            return Ok(());
        }
        let Some(token) = &self.token else {
            return Err("admin writes are disabled: start wasmtel serve with --admin-token-file".into());
        };
        let presented = headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "))
            .unwrap_or("");
        if !crate::constant_time_eq(presented.as_bytes(), token.as_bytes()) {
            return Err("admin writes need Authorization: Bearer <the admin token>".into());
        }
        Ok(())
    }

    /// `host:port` naming this address: its own IP, or a loopback name when
    /// it listens on loopback (or everywhere).
    fn is_own_host(&self, host: &str) -> bool {
        let Some((name, port)) = host.rsplit_once(':') else { return false };
        if port.parse() != Ok(self.public.port()) {
            return false;
        }
        let name = name.trim_start_matches('[').trim_end_matches(']');
        let ip = self.public.ip();
        match name.parse::<IpAddr>() {
            Ok(named) => named == ip || (named.is_loopback() && (ip.is_loopback() || ip.is_unspecified())),
            Err(_) => name.eq_ignore_ascii_case("localhost") && (ip.is_loopback() || ip.is_unspecified()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rules(public: &str, token: Option<&str>) -> Rules {
        Rules {
            public: public.parse().unwrap(),
            engine: Some("127.0.0.1:1".parse().unwrap()),
            token: token.map(str::to_string),
            client: Client::builder(TokioExecutor::new()).build_http(),
        }
    }

    fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (name, value) in pairs {
            map.insert(*name, HeaderValue::from_str(value).unwrap());
        }
        map
    }

    #[test]
    fn reads_from_the_admin_address_itself_pass() {
        let r = rules("127.0.0.1:18080", None);
        for host in ["127.0.0.1:18080", "localhost:18080", "[::1]:18080"] {
            assert_eq!(r.check(&Method::GET, &headers(&[("host", host)])), Ok(()), "{host}");
        }
        let same_origin = headers(&[("host", "127.0.0.1:18080"), ("origin", "http://127.0.0.1:18080")]);
        assert_eq!(r.check(&Method::GET, &same_origin), Ok(()));
    }

    #[test]
    fn rebound_names_foreign_origins_and_cross_site_requests_are_refused() {
        let r = rules("127.0.0.1:18080", Some("0123456789abcdef"));
        let bearer = ("authorization", "Bearer 0123456789abcdef");
        for (what, request) in [
            ("rebound DNS name", headers(&[("host", "evil.example:18080")])),
            ("other port", headers(&[("host", "127.0.0.1:9999")])),
            ("no host", headers(&[])),
            ("foreign origin", headers(&[("host", "127.0.0.1:18080"), ("origin", "https://evil.example"), bearer])),
            ("cross-site", headers(&[("host", "127.0.0.1:18080"), ("sec-fetch-site", "cross-site"), bearer])),
        ] {
            assert!(r.check(&Method::POST, &request).is_err(), "{what}");
        }
    }

    #[test]
    fn writes_need_the_token_and_are_off_without_one() {
        let host = ("host", "127.0.0.1:18080");
        let off = rules("127.0.0.1:18080", None);
        let refused = off.check(&Method::POST, &headers(&[host])).unwrap_err();
        assert!(refused.contains("--admin-token-file"), "{refused}");
        let on = rules("127.0.0.1:18080", Some("0123456789abcdef"));
        assert!(on.check(&Method::POST, &headers(&[host])).is_err());
        assert!(on.check(&Method::DELETE, &headers(&[host, ("authorization", "Bearer wrong")])).is_err());
        assert_eq!(on.check(&Method::POST, &headers(&[host, ("authorization", "Bearer 0123456789abcdef")])), Ok(()));
    }
}
