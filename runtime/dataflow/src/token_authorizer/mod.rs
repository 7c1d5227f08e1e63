//! `urn:wasmtel:extension:token_authorizer`: the `bearer_token_authorizer`
//! capability for the engine's OTLP receiver, admitting the bearer tokens
//! listed in a file (one per line) or an environment variable. otap-dataflow
//! 0.62 defines the capability but ships no provider of it.
//!
//! ```yaml
//! extensions:
//!   tokens:
//!     type: urn:wasmtel:extension:token_authorizer
//!     config: { token_file: /etc/wasmtel/otlp-tokens }   # or token_env: OTLP_TOKEN
//! nodes:
//!   otlp:
//!     type: receiver:otlp
//!     capabilities: { bearer_token_authorizer: tokens }
//! ```
//!
//! A request without `Authorization: Bearer …` is answered `UNAUTHENTICATED`
//! (missing credential), one with an unknown token `UNAUTHENTICATED` (invalid
//! credential), both before the payload is read. Tokens are compared in
//! constant time; they are read once, when the pipeline starts.

use std::sync::Arc;

use async_trait::async_trait;
use linkme::distributed_slice;
use otel_arrow_dfe_config::error::Error as ConfigError;
use otel_arrow_dfe_config::extension::ExtensionUserConfig;
use otel_arrow_dfe_engine::capability::CapabilityError;
use otel_arrow_dfe_engine::capability::auth::bearer_token_authorizer::BearerTokenAuthorizer;
use otel_arrow_dfe_engine::capability::auth::{AuthzDecision, BearerToken, DenyReason};
use otel_arrow_dfe_engine::config::ExtensionConfig;
use otel_arrow_dfe_engine::context::ExtensionContext;
use otel_arrow_dfe_engine::extension::{ExtensionBundle, ExtensionWrapper};
use otel_arrow_dfe_engine::shared::capability::auth::bearer_token_authorizer::BearerTokenAuthorizer as SharedAuthorizer;
use otel_arrow_dfe_engine::{ExtensionFactory, extension_capabilities};
use otel_arrow_dfe_otap::OTAP_EXTENSION_FACTORIES;

mod config;
pub use config::TokenAuthorizerConfig;

/// The extension type of the token authorizer.
pub const TOKEN_AUTHORIZER_URN: &str = "urn:wasmtel:extension:token_authorizer";

/// Admits the configured tokens.
#[derive(Clone)]
pub struct TokenAuthorizer {
    tokens: Arc<Vec<String>>,
}

impl TokenAuthorizer {
    /// An authorizer admitting `tokens`.
    pub fn new(tokens: Vec<String>) -> Self {
        TokenAuthorizer { tokens: Arc::new(tokens) }
    }

    fn admits(&self, presented: &str) -> bool {
        // Every token is compared, so the time taken does not say which one matched.
        self.tokens
            .iter()
            .fold(false, |found, token| found | crate::constant_time_eq(presented.as_bytes(), token.as_bytes()))
    }
}

#[async_trait]
impl SharedAuthorizer for TokenAuthorizer {
    async fn authorize(&self, credential: &BearerToken) -> Result<AuthzDecision, CapabilityError> {
        let presented = credential.expose_token();
        Ok(if presented.is_empty() {
            AuthzDecision::deny(DenyReason::MissingCredential)
        } else if self.admits(presented) {
            AuthzDecision::allow_anonymous()
        } else {
            AuthzDecision::deny_with_detail(DenyReason::InvalidCredential, "not one of the configured tokens")
        })
    }
}

fn create(
    _ctx: &ExtensionContext,
    name: otel_arrow_dfe_config::ExtensionId,
    user_config: Arc<ExtensionUserConfig>,
    extension_config: &ExtensionConfig,
) -> Result<ExtensionBundle, ConfigError> {
    let config = TokenAuthorizerConfig::from_value(&user_config.config)?;
    let authorizer = TokenAuthorizer::new(config.tokens()?);
    ExtensionWrapper::builder(name, user_config, extension_config)
        .passive()
        .cloned()
        .shared(authorizer)
        .build()
        .map_err(|e| crate::config_error(format!("{TOKEN_AUTHORIZER_URN}: {e}")))
}

/// Registers the extension with the engine.
#[allow(unsafe_code)]
#[distributed_slice(OTAP_EXTENSION_FACTORIES)]
pub static TOKEN_AUTHORIZER_FACTORY: ExtensionFactory = ExtensionFactory {
    name: TOKEN_AUTHORIZER_URN,
    description: "Admits the bearer tokens listed in a file or an environment variable",
    documentation_url: "https://github.com/wasmtel/wasmtel/tree/main/runtime/dataflow/src/token_authorizer",
    capabilities: Some(extension_capabilities!(shared: TokenAuthorizer => [BearerTokenAuthorizer])),
    create,
    validate_config: |value| TokenAuthorizerConfig::from_value(value).and_then(|c| c.tokens()).map(|_| ()),
};

#[cfg(test)]
mod tests {
    use super::*;

    fn decide(authorizer: &TokenAuthorizer, token: &str) -> AuthzDecision {
        let runtime = tokio::runtime::Builder::new_current_thread().build().unwrap();
        runtime.block_on(authorizer.authorize(&BearerToken::without_expiry(token.to_string()))).unwrap()
    }

    #[test]
    fn admits_only_configured_tokens() {
        let authorizer = TokenAuthorizer::new(vec!["first-token-0123456".into(), "second-token-0123456".into()]);
        assert!(decide(&authorizer, "second-token-0123456").is_allowed());
        assert!(!decide(&authorizer, "second-token-012345").is_allowed());
        assert!(matches!(decide(&authorizer, ""), AuthzDecision::Deny { reason: DenyReason::MissingCredential, .. }));
        assert!(matches!(
            decide(&authorizer, "guess"),
            AuthzDecision::Deny { reason: DenyReason::InvalidCredential, .. }
        ));
    }
}
