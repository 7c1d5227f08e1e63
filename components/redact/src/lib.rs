//! `redact`: masks, hashes or removes sensitive attribute values in traces,
//! logs and metrics — selected by exact key, key pattern, or value pattern.
//! Array and key-value-list values are searched too: semantic-convention
//! headers are string arrays, and structured values nest the same secrets.

#[doc(hidden)]
pub mod decoded;

use regex::{Regex, RegexSet};
use sha2::{Digest, Sha256};
use std::cell::RefCell;
use wasmtel_sdk::edit::Editor;
use wasmtel_sdk::otlp::common::v1::{KeyValue, KeyValueList};
use wasmtel_sdk::prelude::*;
use wasmtel_sdk::view::{
    AnyValueView, KeyValueListView, KeyValueView, LogsView, Repeated, Value, ViewError, for_each_attributes, view_of,
};

/// The redactor's configuration (`config.schema.json`); at least one of `keys`,
/// `key_patterns` and `value_patterns` must be set.
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
    /// What is done to a selected value or matched part (default `mask`).
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
    /// Also redact log bodies: `value_patterns` in string bodies, keys and
    /// values in structured (key-value list) bodies.
    #[serde(default)]
    pub log_bodies: bool,
}

/// What happens to a redacted value (`action` in the config, lowercase).
#[derive(serde::Deserialize, Debug, Default, Clone, Copy, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum RedactAction {
    /// Replace it with `mask` (the default).
    #[default]
    Mask,
    /// Replace it with the first `hash_length` hex characters of sha256(`hash_salt` + value).
    Hash,
    /// Delete the attribute (or nested entry / array element) holding the
    /// match. A matching string log body is masked instead: a record keeps its body.
    Remove,
}

fn default_mask() -> String {
    "****".to_string()
}

fn default_hash_length() -> usize {
    16
}

/// The `redact` processor: the compiled [`Config`], applied to traces, logs and metrics in place.
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
    /// Key decisions already made: a batch repeats a few dozen keys
    /// thousands of times, and a lookup is far cheaper than the key patterns.
    key_decisions: RefCell<KeyMemo>,
}

/// Remembered key decisions in a fixed two-way set-associative table. A
/// lookup is a hash of a key's length and ends and at most two compares,
/// whatever the keys: no probe chains for crafted keys to lengthen, memory
/// bounded by [`KEY_MEMO_SETS`] × 2 keys of at most [`KEY_MEMO_MAX_KEY`]
/// bytes, and a collision costs only what an unremembered key costs.
#[derive(Debug)]
struct KeyMemo {
    sets: Vec<[Option<Remembered>; 2]>,
}

/// A key and whether it is selected.
type Remembered = (Box<str>, bool);

const KEY_MEMO_SETS: usize = 256;
/// Longer keys are checked every time rather than kept.
const KEY_MEMO_MAX_KEY: usize = 256;

impl Default for KeyMemo {
    fn default() -> Self {
        KeyMemo { sets: vec![[None, None]; KEY_MEMO_SETS] }
    }
}

impl KeyMemo {
    fn set_of(key: &str) -> usize {
        let bytes = key.as_bytes();
        let word = |chunk: &[u8]| chunk.iter().fold(0u64, |word, &byte| (word << 8) | u64::from(byte));
        let head = word(&bytes[..bytes.len().min(8)]);
        let tail = word(&bytes[bytes.len().saturating_sub(8)..]);
        let mixed = (head ^ tail.rotate_left(29) ^ bytes.len() as u64).wrapping_mul(0x9e37_79b9_7f4a_7c15);
        (mixed >> 56) as usize % KEY_MEMO_SETS
    }

    fn get(&mut self, key: &str) -> Option<bool> {
        let set = &mut self.sets[Self::set_of(key)];
        let matches = |way: &Option<Remembered>| way.as_ref().filter(|(kept, _)| &**kept == key).map(|w| w.1);
        if let Some(selected) = matches(&set[0]) {
            return Some(selected);
        }
        let selected = matches(&set[1])?;
        set.swap(0, 1); // the most recent first
        Some(selected)
    }

    fn remember(&mut self, key: &str, selected: bool) {
        if key.len() > KEY_MEMO_MAX_KEY {
            return;
        }
        let set = &mut self.sets[Self::set_of(key)];
        set[1] = set[0].take();
        set[0] = Some((key.into(), selected));
    }

    #[cfg(test)]
    fn len(&self) -> usize {
        self.sets.iter().flatten().flatten().count()
    }
}

/// What redaction decided for one value.
enum Fate {
    /// Kept, with this many values redacted in it.
    Keep(u64),
    /// Remove the entry holding it (`action: remove`).
    Remove,
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
            key_decisions: RefCell::default(),
        })
    }

    /// Reads the request in place and writes only the values it redacts
    /// (the zero-decode view and splice editor of the SDK).
    fn process_raw(&mut self, signal: Signal, otlp: Vec<u8>) -> Result<Outcome, ProcessError> {
        let mut editor = Editor::new(&otlp);
        let mut redacted = 0;
        for_each_attributes(signal, &otlp, |_, attributes| {
            redacted += self.redact_list(&mut editor, attributes)?;
            Ok::<_, ViewError>(())
        })?;
        if signal == Signal::Logs && self.log_bodies {
            redacted += self.redact_bodies(&mut editor, &otlp)?;
        }
        if redacted == 0 {
            return Ok(Outcome::Unchanged);
        }
        host::counter("redacted_values", redacted);
        Ok(editor.finish()?)
    }
}

impl Redact {
    /// The configured keys and key patterns, uncached.
    fn key_matches(&self, key: &str) -> bool {
        self.keys.iter().any(|k| k == key) || self.key_patterns.is_match(key)
    }

    fn key_selected(&self, key: &str) -> bool {
        let mut decisions = self.key_decisions.borrow_mut();
        if let Some(selected) = decisions.get(key) {
            return selected;
        }
        let selected = self.key_matches(key);
        decisions.remember(key, selected);
        selected
    }

    /// Redacts one attribute list of a decoded request (and the lists and
    /// arrays nested in its values); returns how many values it changed or
    /// removed. The same code as for requests, on the list's encoding.
    pub fn redact_attributes(&self, attributes: &mut Vec<KeyValue>) -> u64 {
        let list = wasmtel_sdk::encode(&KeyValueList { values: std::mem::take(attributes) });
        let mut editor = Editor::new(&list);
        // Our own encoding reads cleanly and the output decodes.
        let redacted = self.redact_list(&mut editor, view_of::<KeyValueListView>(&list).values()).unwrap_or(0);
        let edited = match editor.write() {
            Ok(Some(bytes)) => bytes,
            _ => list.clone(),
        };
        *attributes = wasmtel_sdk::decode::<KeyValueList>(Signal::Logs, &edited).map(|l| l.values).unwrap_or_default();
        redacted
    }

    fn redact_list<'a>(
        &self,
        editor: &mut Editor<'a>,
        attributes: Repeated<'a, KeyValueView<'a>>,
    ) -> Result<u64, ViewError> {
        let mut redacted = 0;
        for attribute in attributes {
            redacted += self.redact_entry(editor, &attribute?)?;
        }
        Ok(redacted)
    }

    fn redact_entry<'a>(&self, editor: &mut Editor<'a>, attribute: &KeyValueView<'a>) -> Result<u64, ViewError> {
        let (key, any) = attribute.key_and_value()?;
        let Some(any) = any else {
            return Ok(0);
        };
        let Some(value) = any.get()? else {
            return Ok(0);
        };
        if !self.key_selected(key) {
            return Ok(match self.redact_value(editor, &any, value)? {
                Fate::Keep(n) => n,
                Fate::Remove => {
                    editor.remove(attribute);
                    1
                }
            });
        }
        if self.action == RedactAction::Remove {
            editor.remove(attribute);
        } else {
            editor.set_value(attribute, self.replacement(&value_bytes(&any, value)).as_str());
        }
        Ok(1)
    }

    /// Value-pattern matches in a value, and selected keys in nested lists.
    fn redact_value<'a>(
        &self,
        editor: &mut Editor<'a>,
        any: &AnyValueView<'a>,
        value: Value<'a>,
    ) -> Result<Fate, ViewError> {
        Ok(match value {
            Value::String(text) => match self.redact_matches(text) {
                None => Fate::Keep(0),
                Some(_) if self.action == RedactAction::Remove => Fate::Remove,
                Some(new) => {
                    editor.set_any_value(any, new.as_str());
                    Fate::Keep(1)
                }
            },
            Value::KvList(list) => Fate::Keep(self.redact_list(editor, list.values())?),
            Value::Array(array) => {
                let mut redacted = 0;
                for element in array.values() {
                    let element = element?;
                    let Some(inner) = element.get()? else { continue };
                    match self.redact_value(editor, &element, inner)? {
                        Fate::Keep(n) => redacted += n,
                        Fate::Remove => {
                            editor.remove(&element);
                            redacted += 1;
                        }
                    }
                }
                Fate::Keep(redacted)
            }
            _ => Fate::Keep(0),
        })
    }

    /// Log bodies: string bodies are masked or hashed in place even under
    /// `remove`; structured bodies are redacted like attributes.
    fn redact_bodies<'a>(&self, editor: &mut Editor<'a>, otlp: &'a [u8]) -> Result<u64, ViewError> {
        let mut redacted = 0;
        for resource_logs in LogsView::new(otlp).resource_logs() {
            for scope_logs in resource_logs?.scope_logs() {
                for record in scope_logs?.log_records() {
                    let Some(body) = record?.body()? else { continue };
                    redacted += match body.get()? {
                        None => 0,
                        Some(Value::String(text)) => match self.redact_matches(text) {
                            Some(new) => {
                                editor.set_any_value(&body, new.as_str());
                                1
                            }
                            None => 0,
                        },
                        Some(value) => match self.redact_value(editor, &body, value)? {
                            Fate::Keep(n) => n,
                            // Only strings ask for removal, handled above.
                            Fate::Remove => 0,
                        },
                    };
                }
            }
        }
        Ok(redacted)
    }

    /// The text with every value-pattern match replaced, or `None` if nothing matched.
    fn redact_matches(&self, text: &str) -> Option<String> {
        // One `is_match` per pattern: measured faster than a RegexSet pre-scan,
        // which cannot stop at the first match.
        let mut current: Option<String> = None;
        for pattern in &self.value_patterns {
            let source = current.as_deref().unwrap_or(text);
            if pattern.is_match(source) {
                let replaced =
                    pattern.replace_all(source, |caps: &regex::Captures| self.replacement(caps[0].as_bytes()));
                current = Some(replaced.into_owned());
            }
        }
        current
    }

    fn replacement(&self, original: &[u8]) -> String {
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

/// The bytes a whole value is hashed from: strings and bytes as they are,
/// numbers and booleans as text, arrays and lists as their protobuf encoding
/// (stable across builds, unlike a debug format).
fn value_bytes<'a>(any: &AnyValueView<'a>, value: Value<'a>) -> std::borrow::Cow<'a, [u8]> {
    match value {
        Value::String(s) => s.as_bytes().into(),
        Value::Bytes(b) => b.into(),
        Value::Bool(b) => b.to_string().into_bytes().into(),
        Value::Int(i) => i.to_string().into_bytes().into(),
        Value::Double(d) => d.to_string().into_bytes().into(),
        Value::Array(_) | Value::KvList(_) | Value::StringIndex(_) => any.bytes().into(),
    }
}

wasmtel_sdk::export_processor!(Redact, signals: [traces, metrics, logs], config_schema: "config.schema.json");

#[cfg(test)]
mod tests {
    use super::*;
    use wasmtel_sdk::otlp::common::v1::{AnyValue, any_value::Value};
    use wasmtel_sdk::otlp::common::v1::{ArrayValue, KeyValueList};
    use wasmtel_sdk::otlp::metrics::v1::{Exemplar, metric::Data};
    use wasmtel_sdk::otlp::trace::v1::{ResourceSpans, ScopeSpans, Span, span::Event, span::Link};
    use wasmtel_sdk::testing;
    use wasmtel_sdk::testing::{gauge, kv, log_record, point, span};

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

    const EMAIL: &str = r"[\w.+-]+@[\w-]+\.[\w.]+";

    fn redact(config: serde_json::Value) -> Redact {
        testing::new(&config.to_string()).unwrap()
    }

    #[test]
    fn links_log_records_data_points_and_exemplars_are_redacted() {
        let mut s = span("s", vec![]);
        s.links.push(Link { attributes: vec![kv("user.email", "a@b.io")], ..Default::default() });
        let mut r = redact(serde_json::json!({"keys": ["user.email"]}));
        let (_, out) = testing::run_typed(&mut r, Signal::Traces, &testing::traces(vec![], vec![s])).unwrap();
        let link = &out.unwrap().resource_spans[0].scope_spans[0].spans[0].links[0];
        assert_eq!(link.attributes.get_str("user.email"), Some("****"));

        let logs = testing::logs(vec![], vec![log_record(9, "b", vec![kv("user.email", "a@b.io"), kv("x", "y")])]);
        let (_, out) = testing::run_typed(&mut r, Signal::Logs, &logs).unwrap();
        let attributes = &out.unwrap().resource_logs[0].scope_logs[0].log_records[0].attributes;
        assert_eq!((attributes.get_str("user.email"), attributes.get_str("x")), (Some("****"), Some("y")));

        let mut p = point(1, vec![kv("user.email", "a@b.io")]);
        p.exemplars.push(Exemplar { filtered_attributes: vec![kv("user.email", "c@d.io")], ..Default::default() });
        let metrics = testing::metrics(vec![], vec![gauge("g", vec![p])]);
        let (_, out) = testing::run_typed(&mut r, Signal::Metrics, &metrics).unwrap();
        let out = out.unwrap();
        let Some(Data::Gauge(g)) = &out.resource_metrics[0].scope_metrics[0].metrics[0].data else { panic!("gauge") };
        assert_eq!(g.data_points[0].attributes.get_str("user.email"), Some("****"));
        assert_eq!(g.data_points[0].exemplars[0].filtered_attributes.get_str("user.email"), Some("****"));
        assert_eq!(wasmtel_sdk::host::counter_value("redacted_values"), 4, "link, log record, data point, exemplar");
    }

    #[test]
    fn key_decisions_stay_right_and_their_memo_bounded() {
        let r = redact(serde_json::json!({"keys": ["user.email"], "key_patterns": ["(?i)token"]}));
        // Four times as many distinct keys as can be remembered, every tenth selected, asked twice.
        let key = |i: usize| if i.is_multiple_of(10) { format!("x{i}.Token") } else { format!("x{i}.route") };
        for _ in 0..2 {
            for i in 0..8 * KEY_MEMO_SETS {
                assert_eq!(r.key_selected(&key(i)), i % 10 == 0, "key {}", key(i));
            }
            assert!(r.key_selected("user.email") && !r.key_selected("user.name"));
        }
        let long = format!("{}token", "x".repeat(KEY_MEMO_MAX_KEY));
        assert!(r.key_selected(&long) && r.key_selected(&long), "a long key is checked, not kept");
        let mut memo = r.key_decisions.borrow_mut();
        assert!(memo.len() <= 2 * KEY_MEMO_SETS, "the memo stays within its bound");
        assert_eq!(memo.get(&long), None);
        assert_eq!(memo.get("user.email"), Some(true), "usual keys are remembered after a burst");
        assert_eq!(memo.get("user.name"), Some(false));
        // The usual keys of a span all stay remembered together.
        let usual = ["http.request.method", "http.route", "url.full", "user_agent.original", "server.address"];
        usual.iter().for_each(|key| memo.remember(key, false));
        assert!(usual.iter().all(|key| memo.get(key) == Some(false)));
    }

    fn array(values: &[&str]) -> AnyValue {
        let values = values.iter().map(|v| AnyValue { value: Some(Value::StringValue(v.to_string())) }).collect();
        AnyValue { value: Some(Value::ArrayValue(ArrayValue { values })) }
    }

    fn kvlist(values: Vec<KeyValue>) -> AnyValue {
        AnyValue { value: Some(Value::KvlistValue(KeyValueList { values })) }
    }

    #[test]
    fn strings_nested_in_arrays_and_lists_are_searched() {
        let mut attributes = vec![
            kv("http.request.header.x-forwarded-for", array(&["10.0.0.1", "ada@example.com"])),
            kv("payload", kvlist(vec![kv("user", kvlist(vec![kv("password", "hunter2"), kv("id", 7)]))])),
        ];
        let r = redact(serde_json::json!({"keys": ["password"], "value_patterns": [EMAIL]}));
        assert_eq!(r.redact_attributes(&mut attributes), 2);
        let Some(Value::ArrayValue(a)) = &attributes[0].value.as_ref().unwrap().value else { panic!("array") };
        assert_eq!(a.values.iter().map(|v| string_value(v).unwrap()).collect::<Vec<_>>(), ["10.0.0.1", "****"]);
        let Some(Value::KvlistValue(payload)) = &attributes[1].value.as_ref().unwrap().value else { panic!("list") };
        let Some(Value::KvlistValue(user)) = &payload.values[0].value.as_ref().unwrap().value else { panic!("list") };
        assert_eq!(user.values.get_str("password"), Some("****"));
        assert_eq!(user.values.get_i64("id"), Some(7));

        let remove = redact(serde_json::json!({"keys": ["password"], "value_patterns": [EMAIL], "action": "remove"}));
        let mut attributes = vec![
            kv("emails", array(&["ada@example.com", "none"])),
            kv("user", kvlist(vec![kv("password", "x"), kv("id", 7)])),
        ];
        assert_eq!(remove.redact_attributes(&mut attributes), 2);
        let Some(Value::ArrayValue(a)) = &attributes[0].value.as_ref().unwrap().value else { panic!("array") };
        assert_eq!(a.values.len(), 1, "the matching element is removed, not the attribute");
        let Some(Value::KvlistValue(user)) = &attributes[1].value.as_ref().unwrap().value else { panic!("list") };
        assert_eq!(user.values.iter().map(|kv| kv.key.as_str()).collect::<Vec<_>>(), ["id"]);
    }

    #[test]
    fn hashing_whole_non_string_values_and_each_match() {
        let r = redact(
            serde_json::json!({"keys": ["user.id"], "value_patterns": [EMAIL], "action": "hash", "hash_length": 64}),
        );
        let mut attributes = vec![kv("user.id", 42), kv("to", "a@x.io, b@x.io")];
        assert_eq!(r.redact_attributes(&mut attributes), 2);
        assert_eq!(attributes.get_str("user.id"), Some(hex::encode(Sha256::digest(b"42")).as_str()));
        let a = hex::encode(Sha256::digest(b"a@x.io"));
        let b = hex::encode(Sha256::digest(b"b@x.io"));
        assert_eq!(attributes.get_str("to"), Some(format!("{a}, {b}").as_str()));
    }

    #[test]
    fn structured_log_bodies_are_redacted_like_attributes() {
        let mut record = log_record(9, "", vec![]);
        record.body = Some(kvlist(vec![kv("password", "x"), kv("msg", "from ada@example.com")]));
        let logs = testing::logs(vec![], vec![record]);
        let mut r = redact(serde_json::json!({"keys": ["password"], "value_patterns": [EMAIL], "log_bodies": true}));
        let (_, out) = testing::run_typed(&mut r, Signal::Logs, &logs).unwrap();
        let body = out.unwrap().resource_logs[0].scope_logs[0].log_records[0].body.clone().unwrap();
        let Some(Value::KvlistValue(list)) = body.value else { panic!("list") };
        assert_eq!(list.values.get_str("password"), Some("****"));
        assert_eq!(list.values.get_str("msg"), Some("from ****"));
    }

    #[test]
    fn remove_masks_a_string_body_rather_than_emptying_the_record() {
        let logs = testing::logs(vec![], vec![log_record(9, "mail ada@example.com", vec![])]);
        let mut r = redact(serde_json::json!({"value_patterns": [EMAIL], "log_bodies": true, "action": "remove"}));
        let (_, out) = testing::run_typed(&mut r, Signal::Logs, &logs).unwrap();
        let body = out.unwrap().resource_logs[0].scope_logs[0].log_records[0].body.clone().unwrap();
        assert_eq!(string_value(&body), Some("mail ****"));
    }

    #[test]
    fn card_numbers_in_free_text() {
        let r = redact(serde_json::json!({"value_patterns": [r"\b\d(?:[ -]?\d){12,18}\b"]}));
        let mut attributes = vec![kv("note", "paid with 4111 1111 1111 1111 on 2024-01-02"), kv("order.id", "12345")];
        assert_eq!(r.redact_attributes(&mut attributes), 1);
        assert_eq!(attributes.get_str("note"), Some("paid with **** on 2024-01-02"));
        assert_eq!(attributes.get_str("order.id"), Some("12345"));
    }
}
