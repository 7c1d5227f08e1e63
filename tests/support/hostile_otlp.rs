//! The hostile OTLP cases of `tests/data/hostile-otlp.json`, shared with the
//! Go collector tests; the file says how requests are built and what each
//! case expects.

use serde::Deserialize;

use crate::{field, workspace_root};

/// The file's contents.
#[derive(Debug, Deserialize)]
pub struct HostileOtlp {
    /// The value planted in every span; it must never reach an exporter.
    pub secret: String,
    /// The cases, in the order to send them.
    pub cases: Vec<Case>,
}

/// One hostile request and what must become of it.
#[derive(Debug, Deserialize)]
pub struct Case {
    /// Names the case in failures.
    pub name: String,
    #[serde(default)]
    spans: Vec<SpanSpec>,
    #[serde(default)]
    request_hex: Option<String>,
    #[serde(default = "one")]
    request_repeat: usize,
    /// How many times to send it.
    #[serde(default = "one")]
    pub times: usize,
    /// What must become of it.
    pub expect: Expect,
}

#[derive(Debug, Deserialize)]
struct SpanSpec {
    #[serde(default)]
    name: Option<String>,
    #[serde(default)]
    name_hex: Option<String>,
    #[serde(default)]
    bare: bool,
    #[serde(default)]
    raw_hex: String,
    #[serde(default = "one")]
    raw_repeat: usize,
    #[serde(default)]
    nested_value_depth: usize,
    #[serde(default = "one")]
    repeat: usize,
}

/// The expected fate of a case.
#[derive(Debug, Deserialize)]
#[serde(tag = "outcome", rename_all = "snake_case")]
pub enum Expect {
    /// Accepted (repaired where needed): the span `name` arrives `count` times per send.
    Exported {
        /// The span's name after any repair.
        name: String,
        /// Spans of that name per send.
        count: usize,
    },
    /// The receiver cannot frame the bytes.
    Refused,
    /// The redactor fails on it: refused, nothing forwarded.
    FailClosed {
        /// Words the refusal names.
        cause: String,
    },
}

fn one() -> usize {
    1
}

fn unhex(text: &str) -> Vec<u8> {
    hex::decode(text).unwrap_or_else(|e| panic!("hostile-otlp.json: {text:?}: {e}"))
}

/// Reads `tests/data/hostile-otlp.json`.
pub fn load() -> HostileOtlp {
    let path = workspace_root().join("tests/data/hostile-otlp.json");
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

impl Case {
    /// The request bytes, built as the file describes.
    pub fn request(&self, secret: &str) -> Vec<u8> {
        if let Some(request) = &self.request_hex {
            return unhex(request).repeat(self.request_repeat);
        }
        let secret_attribute = || [field(0x0a, b"user.email"), field(0x12, &field(0x0a, secret.as_bytes()))].concat();
        let mut scope_spans = Vec::new();
        for spec in &self.spans {
            let name = match (&spec.name, &spec.name_hex) {
                (Some(name), _) => name.as_bytes().to_vec(),
                (None, Some(hex)) => unhex(hex),
                (None, None) => panic!("{}: a span needs name or name_hex", self.name),
            };
            let mut span = Vec::new();
            if !spec.bare {
                span.extend(field(0x0a, &[1; 16]));
                span.extend(field(0x12, &[2; 8]));
            }
            span.extend(field(0x2a, &name));
            if !spec.bare {
                span.extend(field(0x4a, &secret_attribute()));
            }
            if spec.nested_value_depth > 0 {
                let mut value = field(0x0a, secret.as_bytes());
                for _ in 0..spec.nested_value_depth {
                    value = field(0x2a, &field(0x0a, &value));
                }
                span.extend(field(0x4a, &[field(0x0a, b"nested"), field(0x12, &value)].concat()));
            }
            span.extend(unhex(&spec.raw_hex).repeat(spec.raw_repeat));
            for _ in 0..spec.repeat {
                scope_spans.extend(field(0x12, &span));
            }
        }
        field(0x0a, &field(0x12, &scope_spans))
    }
}
