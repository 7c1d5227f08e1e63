//! gRPC service code for proto/bridge.proto and grpc.health.v1, generated
//! from these descriptions (no protoc): the messages are hand-written prost
//! structs in src/proto.rs.

fn method(name: &str, route: &str, input: &str, output: &str) -> tonic_build::manual::Method {
    tonic_build::manual::Method::builder()
        .name(name)
        .route_name(route)
        .input_type(format!("crate::proto::{input}"))
        .output_type(format!("crate::proto::{output}"))
        .codec_path("tonic_prost::ProstCodec")
        .build()
}

fn main() {
    let bridge = tonic_build::manual::Service::builder()
        .name("Bridge")
        .package("wasmtel.bridge.v1")
        .method(method("load", "Load", "LoadRequest", "LoadResponse"))
        .method(method("process", "Process", "ProcessRequest", "ProcessResponse"))
        .method(method("metrics", "Metrics", "MetricsRequest", "MetricsResponse"))
        .method(method("unload", "Unload", "UnloadRequest", "UnloadResponse"))
        .method(method("start_segment", "StartSegment", "StartSegmentRequest", "StartSegmentResponse"))
        .method(method("stop_segment", "StopSegment", "StopSegmentRequest", "StopSegmentResponse"))
        .method(method("next_output", "NextOutput", "NextOutputRequest", "NextOutputResponse"))
        .method(method("answer_output", "AnswerOutput", "AnswerOutputRequest", "AnswerOutputResponse"))
        .build();
    let health = tonic_build::manual::Service::builder()
        .name("Health")
        .package("grpc.health.v1")
        .method(method("check", "Check", "HealthCheckRequest", "HealthCheckResponse"))
        .build();
    tonic_build::manual::Builder::new().compile(&[bridge, health]);
    println!("cargo:rerun-if-changed=build.rs");
}
