//! The shipped sample telemetry is valid OTLP/JSON as the collector writes it.

use std::path::PathBuf;

use wasmtel_runtime::Signal;
use wasmtel_runtime::otlp::{count_items, json_to_protobuf, protobuf_to_json};

fn sample(signal: Signal) -> Vec<u8> {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join(format!("../examples/data/{signal}.json"));
    std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

#[test]
fn samples_parse_and_round_trip_through_json() {
    let expected_items = [(Signal::Traces, 4), (Signal::Logs, 3), (Signal::Metrics, 3)];
    for (signal, items) in expected_items {
        let protobuf = json_to_protobuf(signal, &sample(signal)).unwrap_or_else(|e| panic!("{signal}: {e}"));
        assert_eq!(count_items(signal, &protobuf).unwrap(), items, "{signal}");
        let json = protobuf_to_json(signal, &protobuf).unwrap();
        assert_eq!(json_to_protobuf(signal, json.as_bytes()).unwrap(), protobuf, "{signal} JSON round trip");
    }
}

#[test]
fn trace_ids_are_hex_in_json() {
    let protobuf = json_to_protobuf(Signal::Traces, &sample(Signal::Traces)).unwrap();
    let json = protobuf_to_json(Signal::Traces, &protobuf).unwrap();
    assert!(json.contains("5b8efff798038103d269b633813fc60c"), "{json}");
}

#[test]
fn json_of_the_wrong_shape_is_an_error_naming_the_signal() {
    let error = json_to_protobuf(Signal::Logs, b"{\"resourceLogs\": 7}").unwrap_err();
    assert!(error.to_string().contains("logs"), "{error}");
}
