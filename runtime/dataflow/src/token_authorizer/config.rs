//! The extension's `config:`: where the admitted tokens are.

use std::path::PathBuf;

use otel_arrow_dfe_config::error::Error as ConfigError;
use serde::Deserialize;

use super::TOKEN_AUTHORIZER_URN;
use crate::config_error;

/// `config:` of a `urn:wasmtel:extension:token_authorizer` extension: exactly
/// one of `token_file` and `token_env`.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TokenAuthorizerConfig {
    /// A file with one admitted token per line (blank lines and `#` comments skipped).
    #[serde(default)]
    pub token_file: Option<PathBuf>,
    /// An environment variable holding one admitted token.
    #[serde(default)]
    pub token_env: Option<String>,
}

/// Shortest token accepted: anything shorter is guessable.
const MIN_TOKEN_CHARS: usize = 16;

impl TokenAuthorizerConfig {
    pub(super) fn from_value(value: &serde_json::Value) -> Result<Self, ConfigError> {
        let config: Self =
            serde_json::from_value(value.clone()).map_err(|e| config_error(format!("{TOKEN_AUTHORIZER_URN}: {e}")))?;
        match (&config.token_file, &config.token_env) {
            (Some(_), None) | (None, Some(_)) => Ok(config),
            _ => Err(config_error(format!("{TOKEN_AUTHORIZER_URN}: set exactly one of token_file and token_env"))),
        }
    }

    /// The admitted tokens (never empty; each at least 16 characters, one word).
    pub(super) fn tokens(&self) -> Result<Vec<String>, ConfigError> {
        let invalid = |message: String| config_error(format!("{TOKEN_AUTHORIZER_URN}: {message}"));
        let (source, text) = match (&self.token_file, &self.token_env) {
            (Some(path), _) => (
                path.display().to_string(),
                std::fs::read_to_string(path).map_err(|e| invalid(format!("token_file {}: {e}", path.display())))?,
            ),
            (None, Some(variable)) => (
                format!("${variable}"),
                std::env::var(variable).map_err(|e| invalid(format!("token_env {variable}: {e}")))?,
            ),
            (None, None) => return Err(invalid("no token source".into())),
        };
        let tokens: Vec<String> = text
            .lines()
            .map(str::trim)
            .filter(|line| !line.is_empty() && !line.starts_with('#'))
            .map(str::to_string)
            .collect();
        if tokens.is_empty() {
            return Err(invalid(format!("{source} holds no token")));
        }
        if let Some(line) =
            tokens.iter().position(|t| t.chars().count() < MIN_TOKEN_CHARS || t.contains(char::is_whitespace))
        {
            return Err(invalid(format!(
                "{source}: token {} is not one word of at least {MIN_TOKEN_CHARS} characters",
                line + 1
            )));
        }
        Ok(tokens)
    }
}
