//! The extension's `config:`: where the admitted tokens are.

use std::path::PathBuf;

use otel_arrow_dfe_config::error::Error as ConfigError;
use serde::Deserialize;

use super::TOKEN_AUTHORIZER_URN;
use crate::{TOKEN_RULE, config_error, is_strong_token};

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
        if let Some(line) = tokens.iter().position(|t| !is_strong_token(t)) {
            return Err(invalid(format!("{source}: token {} is not {TOKEN_RULE}", line + 1)));
        }
        Ok(tokens)
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn tokens_come_from_exactly_one_source_and_must_be_strong() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("tokens");
        std::fs::write(&file, "# operators\n\nq7LrT2vXe9NwB4mZk1HsYc8P\n  Zp3Wm8Qx1Rv6Ty9Ub2Nc5Ld7  \n").unwrap();
        let config = TokenAuthorizerConfig::from_value(&json!({ "token_file": file })).unwrap();
        assert_eq!(config.tokens().unwrap(), ["q7LrT2vXe9NwB4mZk1HsYc8P", "Zp3Wm8Qx1Rv6Ty9Ub2Nc5Ld7"]);

        let both = json!({ "token_file": file, "token_env": "X" });
        assert!(TokenAuthorizerConfig::from_value(&both).unwrap_err().to_string().contains("exactly one"));
        assert!(TokenAuthorizerConfig::from_value(&json!({})).is_err());
        assert!(TokenAuthorizerConfig::from_value(&json!({ "token_file": file, "typo": 1 })).is_err());

        for (content, expected) in [
            ("# only a comment\n", "holds no token"),
            ("short\n", "token 1 is not one word"),
            ("q7LrT2vXe9NwB4mZk1HsYc8P\naaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\n", "token 2 is not one word"),
        ] {
            std::fs::write(&file, content).unwrap();
            let error = config.tokens().unwrap_err().to_string();
            assert!(error.contains(expected), "{error}");
        }
        let missing = TokenAuthorizerConfig::from_value(&json!({ "token_file": dir.path().join("none") })).unwrap();
        assert!(missing.tokens().unwrap_err().to_string().contains("token_file"));
        let unset = TokenAuthorizerConfig::from_value(&json!({ "token_env": "WASMTEL_TOKEN_TEST_UNSET" })).unwrap();
        assert!(unset.tokens().unwrap_err().to_string().contains("WASMTEL_TOKEN_TEST_UNSET"));
    }
}
