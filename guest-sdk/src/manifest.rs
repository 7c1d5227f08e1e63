//! Builds the manifest JSON at compile time, so it can live in a custom
//! section the host reads without running the guest.

/// Pieces of the manifest, in order; `signals` and `schema` are filled in.
const fn pieces<'a>(name: &'a str, version: &'a str, failure_mode: &'a str, schema: &'a str) -> [&'a str; 11] {
    [
        "{\"name\":\"",
        name,
        "\",\"version\":\"",
        version,
        "\",\"wit\":\"",
        crate::WIT_VERSION,
        "\",\"sdk\":\"",
        crate::SDK_VERSION,
        "\",\"failure_mode\":\"",
        failure_mode,
        // The schema is JSON already and is embedded raw after the signals.
        schema,
    ]
}

const SIGNALS_KEY: &str = "\",\"signals\":[";
const SCHEMA_KEY: &str = "],\"config_schema\":";

/// Length of the manifest produced by [`bytes`].
pub const fn len(name: &str, version: &str, failure_mode: &str, signals: &[&str], schema: &str) -> usize {
    let parts = pieces(name, version, failure_mode, schema);
    let mut total = 0;
    let mut i = 0;
    while i < parts.len() {
        total += parts[i].len();
        i += 1;
    }
    total += SIGNALS_KEY.len() + SCHEMA_KEY.len() + 1;
    let mut s = 0;
    while s < signals.len() {
        total += signals[s].len() + 2 + if s > 0 { 1 } else { 0 };
        s += 1;
    }
    total
}

/// The manifest JSON as a byte array of length `N` (= [`len`]).
pub const fn bytes<const N: usize>(
    name: &str,
    version: &str,
    failure_mode: &str,
    signals: &[&str],
    schema: &str,
) -> [u8; N] {
    let parts = pieces(name, version, failure_mode, schema);
    let schema_part = parts.len() - 1;
    let mut out = [0u8; N];
    let mut at = 0;
    let mut i = 0;
    while i < schema_part {
        at = copy(&mut out, at, parts[i]);
        i += 1;
    }
    at = copy(&mut out, at, SIGNALS_KEY);
    let mut s = 0;
    while s < signals.len() {
        if s > 0 {
            at = copy(&mut out, at, ",");
        }
        at = copy(&mut out, at, "\"");
        at = copy(&mut out, at, signals[s]);
        at = copy(&mut out, at, "\"");
        s += 1;
    }
    at = copy(&mut out, at, SCHEMA_KEY);
    at = copy(&mut out, at, parts[schema_part]);
    at = copy(&mut out, at, "}");
    assert!(at == N, "manifest length mismatch");
    out
}

const fn copy<const N: usize>(out: &mut [u8; N], mut at: usize, text: &str) -> usize {
    let bytes = text.as_bytes();
    let mut i = 0;
    while i < bytes.len() {
        out[at] = bytes[i];
        at += 1;
        i += 1;
    }
    at
}

/// Checks a manifest built by [`bytes`]: valid JSON, with a config schema
/// that is a JSON object or absent. Run by the test `export_processor!` adds.
pub fn check(manifest: &[u8]) -> Result<(), String> {
    let json: serde_json::Value = serde_json::from_slice(manifest)
        .map_err(|e| format!("the wasmtel manifest is not valid JSON ({e}); is the config_schema file valid JSON?"))?;
    match &json["config_schema"] {
        serde_json::Value::Object(_) | serde_json::Value::Null => Ok(()),
        other => Err(format!("config_schema must be a JSON object, got {other}")),
    }
}

/// `failure_mode` of the manifest: what the host does by default when the
/// sandbox fails on a batch. `closed` (the default) refuses the batch; only a
/// plugin whose failure cannot leak or corrupt anything should say `open`.
#[doc(hidden)]
pub const FAIL_CLOSED: &str = "closed";
#[doc(hidden)]
pub const FAIL_OPEN: &str = "open";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn manifest_is_valid_json_with_every_field() {
        const SIGNALS: &[&str] = &["traces", "logs"];
        const SCHEMA: &str = r#"{"type":"object"}"#;
        const N: usize = len("redact", "1.2.3", FAIL_CLOSED, SIGNALS, SCHEMA);
        let json: serde_json::Value =
            serde_json::from_slice(&bytes::<N>("redact", "1.2.3", FAIL_CLOSED, SIGNALS, SCHEMA)).unwrap();
        assert_eq!(json["name"], "redact");
        assert_eq!(json["version"], "1.2.3");
        assert_eq!(json["signals"], serde_json::json!(["traces", "logs"]));
        assert_eq!(json["config_schema"]["type"], "object");
        assert_eq!(json["wit"], crate::WIT_VERSION);
        assert_eq!(json["sdk"], crate::SDK_VERSION);
        assert_eq!(json["failure_mode"], "closed");
        assert_eq!(check(&bytes::<N>("redact", "1.2.3", FAIL_CLOSED, SIGNALS, SCHEMA)), Ok(()));
    }

    #[test]
    fn check_names_a_broken_schema() {
        const BROKEN: &str = r#"{"type": "object",}"#;
        const N: usize = len("x", "0.1.0", FAIL_OPEN, &[], BROKEN);
        assert!(check(&bytes::<N>("x", "0.1.0", FAIL_OPEN, &[], BROKEN)).unwrap_err().contains("config_schema"));
        const ARRAY: &str = "[1]";
        const M: usize = len("x", "0.1.0", FAIL_OPEN, &[], ARRAY);
        assert!(check(&bytes::<M>("x", "0.1.0", FAIL_OPEN, &[], ARRAY)).unwrap_err().contains("JSON object"));
    }

    #[test]
    fn no_signals_and_no_schema() {
        const N: usize = len("x", "0.1.0", FAIL_OPEN, &[], "null");
        let json: serde_json::Value =
            serde_json::from_slice(&bytes::<N>("x", "0.1.0", FAIL_OPEN, &[], "null")).unwrap();
        assert_eq!(json["signals"], serde_json::json!([]));
        assert_eq!(json["failure_mode"], "open");
        assert!(json["config_schema"].is_null());
    }
}
