//! `redact`: masks, hashes or removes sensitive attribute values in traces,
//! logs and metrics — selected by exact key, key pattern, or value pattern.

use regex::{Regex, RegexSet};
use sha2::{Digest, Sha256};
use wasmtel_sdk::otlp::common::v1::{KeyValue, any_value::Value};
use wasmtel_sdk::prelude::*;

#[derive(serde::Deserialize, Debug)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// Attribute keys whose whole value is redacted.
    #[serde(default)]
    pub keys: Vec<String>,
    /// Regexes on attribute keys; a match redacts the whole value.
    #[serde(default)]
    pub key_patterns: Vec<String>,
    /// Regexes on string values (e.g. emails, card numbers); only the matched
    /// part is redacted, so `SELECT … WHERE email = 'a@b.c'` keeps its shape.
    #[serde(default)]
    pub value_patterns: Vec<String>,
    #[serde(default)]
    pub action: RedactAction,
    /// Replacement for `mask`.
    #[serde(default = "default_mask")]
    pub mask: String,
    /// Prepended to values before hashing, so hashes can't be looked up in a
    /// table of common values.
    #[serde(default)]
    pub hash_salt: String,
    /// Hex characters of the sha256 kept by `hash` (1..=64).
    #[serde(default = "default_hash_length")]
    pub hash_length: usize,
    /// Also apply `value_patterns` to string log bodies.
    #[serde(default)]
    pub log_bodies: bool,
}

#[derive(serde::Deserialize, Debug, Default, Clone, Copy, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum RedactAction {
    #[default]
    Mask,
    Hash,
    /// Delete the attribute (value-pattern matches delete it too).
    Remove,
}

fn default_mask() -> String {
    "****".to_string()
}

fn default_hash_length() -> usize {
    16
}

#[derive(Debug)]
pub struct Redact {
    keys: Vec<String>,
    key_patterns: RegexSet,
    value_patterns: Vec<Regex>,
    action: RedactAction,
    mask: String,
    hash_salt: String,
    hash_length: usize,
    log_bodies: bool,
}

impl Processor for Redact {
    type Config = Config;

    fn new(config: Config) -> Result<Self, String> {
        if config.keys.is_empty() && config.key_patterns.is_empty() && config.value_patterns.is_empty() {
            return Err("nothing to redact: set at least one of keys, key_patterns, value_patterns".into());
        }
        if !(1..=64).contains(&config.hash_length) {
            return Err(format!("hash_length must be between 1 and 64, got {}", config.hash_length));
        }
        let key_patterns = RegexSet::new(&config.key_patterns).map_err(|e| format!("invalid key_patterns: {e}"))?;
        let value_patterns = config
            .value_patterns
            .iter()
            .map(|p| Regex::new(p).map_err(|e| format!("invalid value_patterns entry {p:?}: {e}")))
            .collect::<Result<_, _>>()?;
        Ok(Redact {
            keys: config.keys,
            key_patterns,
            value_patterns,
            action: config.action,
            mask: config.mask,
            hash_salt: config.hash_salt,
            hash_length: config.hash_length,
            log_bodies: config.log_bodies,
        })
    }

    fn traces(&mut self, request: &mut ExportTraceServiceRequest) -> Result<Action, ProcessError> {
        let mut redacted = 0;
        for_each_trace_attributes(request, |_, attributes| redacted += self.redact_attributes(attributes));
        Ok(self.finish(redacted))
    }

    fn logs(&mut self, request: &mut ExportLogsServiceRequest) -> Result<Action, ProcessError> {
        let mut redacted = 0;
        for_each_log_attributes(request, |_, attributes| redacted += self.redact_attributes(attributes));
        if self.log_bodies {
            for record in
                request.resource_logs.iter_mut().flat_map(|r| &mut r.scope_logs).flat_map(|s| &mut s.log_records)
            {
                if let Some(Value::StringValue(body)) = record.body.as_mut().and_then(|b| b.value.as_mut()) {
                    if let Some(new) = self.redact_matches(body) {
                        *body = new;
                        redacted += 1;
                    }
                }
            }
        }
        Ok(self.finish(redacted))
    }

    fn metrics(&mut self, request: &mut ExportMetricsServiceRequest) -> Result<Action, ProcessError> {
        let mut redacted = 0;
        for_each_metric_attributes(request, |_, attributes| redacted += self.redact_attributes(attributes));
        Ok(self.finish(redacted))
    }
}

impl Redact {
    fn finish(&self, redacted: u64) -> Action {
        if redacted == 0 {
            return Action::Unchanged;
        }
        host::counter("redacted_values", redacted);
        Action::Modified
    }

    fn key_selected(&self, key: &str) -> bool {
        self.keys.iter().any(|k| k == key) || self.key_patterns.is_match(key)
    }

    /// Redacts one attribute list; returns how many values it changed.
    pub fn redact_attributes(&self, attributes: &mut Vec<KeyValue>) -> u64 {
        let mut redacted = 0;
        attributes.retain_mut(|kv| {
            let whole = self.key_selected(&kv.key);
            let Some(value) = kv.value.as_mut().and_then(|v| v.value.as_mut()) else {
                return true;
            };
            if whole {
                redacted += 1;
                if self.action == RedactAction::Remove {
                    return false;
                }
                *value = Value::StringValue(self.replacement(&value_text(value)));
                return true;
            }
            if let Value::StringValue(text) = value {
                if let Some(new) = self.redact_matches(text) {
                    redacted += 1;
                    if self.action == RedactAction::Remove {
                        return false;
                    }
                    *text = new;
                }
            }
            true
        });
        redacted
    }

    /// The text with every value-pattern match replaced, or `None` if nothing matched.
    fn redact_matches(&self, text: &str) -> Option<String> {
        let mut current: Option<String> = None;
        for pattern in &self.value_patterns {
            let source = current.as_deref().unwrap_or(text);
            if pattern.is_match(source) {
                let replaced = pattern.replace_all(source, |caps: &regex::Captures| self.replacement(&caps[0]));
                current = Some(replaced.into_owned());
            }
        }
        current
    }

    fn replacement(&self, original: &str) -> String {
        match self.action {
            RedactAction::Mask | RedactAction::Remove => self.mask.clone(),
            RedactAction::Hash => {
                let digest = Sha256::new().chain_update(&self.hash_salt).chain_update(original).finalize();
                let mut hex = hex::encode(digest);
                hex.truncate(self.hash_length);
                hex
            }
        }
    }
}

/// A value's text for hashing; non-string values hash their debug form so
/// the same value always hashes the same.
fn value_text(value: &Value) -> String {
    match value {
        Value::StringValue(s) => s.clone(),
        Value::BoolValue(b) => b.to_string(),
        Value::IntValue(i) => i.to_string(),
        Value::DoubleValue(d) => d.to_string(),
        other => format!("{other:?}"),
    }
}

wasmtel_sdk::export_processor!(Redact, signals: [traces, metrics, logs], config_schema: "config.schema.json");

#[cfg(test)]
mod tests {
    use super::*;
    use wasmtel_sdk::otlp::common::v1::AnyValue;
    use wasmtel_sdk::otlp::trace::v1::{ResourceSpans, ScopeSpans, Span, span::Event};
    use wasmtel_sdk::testing;

    fn attr(key: &str, value: &str) -> KeyValue {
        KeyValue {
            key: key.into(),
            value: Some(AnyValue { value: Some(Value::StringValue(value.into())) }),
            ..Default::default()
        }
    }

    fn request() -> ExportTraceServiceRequest {
        ExportTraceServiceRequest {
            resource_spans: vec![ResourceSpans {
                resource: Some(wasmtel_sdk::otlp::resource::v1::Resource {
                    attributes: vec![attr("host.name", "db-1"), attr("owner.email", "ops@example.com")],
                    ..Default::default()
                }),
                scope_spans: vec![ScopeSpans {
                    spans: vec![Span {
                        name: "GET /".into(),
                        attributes: vec![
                            attr("user.email", "ada@example.com"),
                            attr("http.request.header.authorization", "Bearer abc"),
                            attr("db.statement", "SELECT 1 WHERE email = 'ada@example.com'"),
                            attr("http.route", "/"),
                        ],
                        events: vec![Event {
                            name: "e".into(),
                            attributes: vec![attr("user.email", "b@example.com")],
                            ..Default::default()
                        }],
                        ..Default::default()
                    }],
                    ..Default::default()
                }],
                ..Default::default()
            }],
        }
    }

    fn run(
        config: serde_json::Value,
        input: &ExportTraceServiceRequest,
    ) -> (Outcome, Option<ExportTraceServiceRequest>) {
        let mut redact: Redact = testing::new(&config.to_string()).unwrap();
        testing::run_typed(&mut redact, Signal::Traces, input).unwrap()
    }

    fn span_attr(request: &ExportTraceServiceRequest, key: &str) -> Option<String> {
        request.resource_spans[0].scope_spans[0].spans[0].attributes.get_str(key).map(str::to_string)
    }

    #[test]
    fn masks_keys_patterns_and_values_everywhere() {
        let config = serde_json::json!({
            "keys": ["user.email"],
            "key_patterns": ["(?i)authorization"],
            "value_patterns": [r"[\w.+-]+@[\w-]+\.[\w.]+"],
        });
        let (outcome, out) = run(config, &request());
        assert!(matches!(outcome, Outcome::Replaced(_)));
        let out = out.unwrap();
        assert_eq!(span_attr(&out, "user.email").as_deref(), Some("****"));
        assert_eq!(span_attr(&out, "http.request.header.authorization").as_deref(), Some("****"));
        assert_eq!(span_attr(&out, "db.statement").as_deref(), Some("SELECT 1 WHERE email = '****'"));
        assert_eq!(span_attr(&out, "http.route").as_deref(), Some("/"));
        let resource = &out.resource_spans[0].resource.as_ref().unwrap().attributes;
        assert_eq!(resource.get_str("owner.email"), Some("****"), "value pattern reaches resources");
        assert_eq!(resource.get_str("host.name"), Some("db-1"));
        let event = &out.resource_spans[0].scope_spans[0].spans[0].events[0].attributes;
        assert_eq!(event.get_str("user.email"), Some("****"), "events are redacted too");
    }

    #[test]
    fn hashes_deterministically_with_salt_and_length() {
        let config = serde_json::json!({"keys": ["user.email"], "action": "hash", "hash_salt": "s", "hash_length": 12});
        let (_, out) = run(config.clone(), &request());
        let hashed = span_attr(&out.unwrap(), "user.email").unwrap();
        assert_eq!(hashed.len(), 12);
        let expected = hex::encode(Sha256::digest(b"sada@example.com"));
        assert_eq!(hashed, expected[..12]);
        let (_, again) = run(config, &request());
        assert_eq!(span_attr(&again.unwrap(), "user.email").unwrap(), hashed);
    }

    #[test]
    fn remove_deletes_the_attribute() {
        let (_, out) = run(serde_json::json!({"keys": ["user.email"], "action": "remove"}), &request());
        let out = out.unwrap();
        assert_eq!(span_attr(&out, "user.email"), None);
        assert_eq!(span_attr(&out, "http.route").as_deref(), Some("/"));
    }

    #[test]
    fn nothing_matched_is_unchanged_without_reencoding() {
        let (outcome, out) = run(serde_json::json!({"keys": ["no.such.key"]}), &request());
        assert_eq!(outcome, Outcome::Unchanged);
        assert!(out.is_none());
    }

    #[test]
    fn bad_configs_are_refused_with_the_reason() {
        assert!(testing::new::<Redact>("{}").unwrap_err().contains("nothing to redact"));
        assert!(testing::new::<Redact>(r#"{"key_patterns": ["("]}"#).unwrap_err().contains("key_patterns"));
        assert!(testing::new::<Redact>(r#"{"keys": ["a"], "hash_length": 0}"#).unwrap_err().contains("hash_length"));
        assert!(testing::new::<Redact>(r#"{"keys": ["a"], "acton": "hash"}"#).unwrap_err().contains("acton"));
    }

    #[test]
    fn log_bodies_only_when_asked() {
        use wasmtel_sdk::otlp::logs::v1::{LogRecord, ResourceLogs, ScopeLogs};
        let logs = ExportLogsServiceRequest {
            resource_logs: vec![ResourceLogs {
                scope_logs: vec![ScopeLogs {
                    log_records: vec![LogRecord {
                        body: Some(AnyValue { value: Some(Value::StringValue("mail ada@example.com".into())) }),
                        ..Default::default()
                    }],
                    ..Default::default()
                }],
                ..Default::default()
            }],
        };
        let pattern = r"[\w.+-]+@[\w-]+\.[\w.]+";
        let mut without: Redact = testing::new(&serde_json::json!({"value_patterns": [pattern]}).to_string()).unwrap();
        assert_eq!(testing::run_typed(&mut without, Signal::Logs, &logs).unwrap().0, Outcome::Unchanged);
        let mut with: Redact =
            testing::new(&serde_json::json!({"value_patterns": [pattern], "log_bodies": true}).to_string()).unwrap();
        let (_, out) = testing::run_typed(&mut with, Signal::Logs, &logs).unwrap();
        let body = out.unwrap().resource_logs[0].scope_logs[0].log_records[0].body.clone().unwrap();
        assert_eq!(string_value(&body), Some("mail ****"));
    }
}
