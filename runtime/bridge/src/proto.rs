//! The messages of proto/bridge.proto and grpc.health.v1, as prost structs
//! (field numbers as in the .proto files).

#![allow(missing_docs, reason = "the fields are documented in proto/bridge.proto")]

#[derive(Clone, PartialEq, prost::Message)]
pub struct LoadRequest {
    #[prost(string, tag = "1")]
    pub name: String,
    #[prost(string, tag = "2")]
    pub reference: String,
    #[prost(string, tag = "3")]
    pub plugin_config_json: String,
    #[prost(string, tag = "4")]
    pub registry_policy_json: String,
}

#[derive(Clone, PartialEq, prost::Message)]
pub struct LoadResponse {
    #[prost(uint64, tag = "1")]
    pub plugin_id: u64,
}

#[derive(Clone, PartialEq, prost::Message)]
pub struct ProcessRequest {
    #[prost(uint64, tag = "1")]
    pub plugin_id: u64,
    #[prost(uint32, tag = "2")]
    pub signal: u32,
    /// A slice of the received message: not copied out of it.
    #[prost(bytes = "bytes", tag = "3")]
    pub otlp: bytes::Bytes,
    #[prost(uint32, tag = "4")]
    pub slot: u32,
    #[prost(uint64, tag = "5")]
    pub slot_size: u64,
    #[prost(uint64, tag = "6")]
    pub slot_ticket: u64,
    #[prost(uint64, tag = "7")]
    pub slot_input_len: u64,
    /// Plugins to run after `plugin_id`, in order, on its output: the
    /// consecutive `wasm` processors of a pipeline in one call.
    #[prost(uint64, repeated, tag = "8")]
    pub then_plugin_ids: Vec<u64>,
    /// Export the batch to this segment instead (`plugin_id` 0).
    #[prost(uint64, tag = "9")]
    pub segment_id: u64,
}

#[derive(Clone, PartialEq, prost::Message)]
pub struct ProcessResponse {
    #[prost(uint32, tag = "1")]
    pub outcome: u32,
    #[prost(bytes = "vec", tag = "2")]
    pub otlp: Vec<u8>,
    #[prost(bool, tag = "3")]
    pub in_slot: bool,
    #[prost(uint64, tag = "4")]
    pub slot_output_len: u64,
}

#[derive(Clone, PartialEq, prost::Message)]
pub struct MetricsRequest {
    #[prost(uint64, tag = "1")]
    pub plugin_id: u64,
    /// Or (`plugin_id` 0) a segment's wasm processors: a map by component ID.
    #[prost(uint64, tag = "2")]
    pub segment_id: u64,
}

#[derive(Clone, PartialEq, prost::Message)]
pub struct MetricsResponse {
    #[prost(string, tag = "1")]
    pub json: String,
}

#[derive(Clone, PartialEq, prost::Message)]
pub struct UnloadRequest {
    #[prost(uint64, tag = "1")]
    pub plugin_id: u64,
}

#[derive(Clone, PartialEq, prost::Message)]
pub struct UnloadResponse {}

#[derive(Clone, PartialEq, prost::Message)]
pub struct StartSegmentRequest {
    #[prost(string, tag = "1")]
    pub spec_json: String,
}

#[derive(Clone, PartialEq, prost::Message)]
pub struct StartSegmentResponse {
    #[prost(uint64, tag = "1")]
    pub segment_id: u64,
}

#[derive(Clone, PartialEq, prost::Message)]
pub struct StopSegmentRequest {
    #[prost(uint64, tag = "1")]
    pub segment_id: u64,
    #[prost(uint64, tag = "2")]
    pub timeout_ms: u64,
}

#[derive(Clone, PartialEq, prost::Message)]
pub struct StopSegmentResponse {}

#[derive(Clone, PartialEq, prost::Message)]
pub struct NextOutputRequest {
    #[prost(uint64, tag = "1")]
    pub segment_id: u64,
    #[prost(uint64, tag = "2")]
    pub timeout_ms: u64,
}

#[derive(Clone, PartialEq, prost::Message)]
pub struct NextOutputResponse {
    #[prost(uint64, tag = "1")]
    pub output_id: u64,
    #[prost(uint32, tag = "2")]
    pub signal: u32,
    #[prost(bytes = "bytes", tag = "3")]
    pub otlp: bytes::Bytes,
}

#[derive(Clone, PartialEq, prost::Message)]
pub struct AnswerOutputRequest {
    #[prost(uint64, tag = "1")]
    pub output_id: u64,
    #[prost(uint32, tag = "2")]
    pub refused: u32,
    #[prost(string, tag = "3")]
    pub reason: String,
}

#[derive(Clone, PartialEq, prost::Message)]
pub struct AnswerOutputResponse {}

#[derive(Clone, PartialEq, prost::Message)]
pub struct HealthCheckRequest {
    #[prost(string, tag = "1")]
    pub service: String,
}

#[derive(Clone, PartialEq, prost::Message)]
pub struct HealthCheckResponse {
    /// 1 SERVING, 2 NOT_SERVING (grpc.health.v1.HealthCheckResponse.ServingStatus).
    #[prost(int32, tag = "1")]
    pub status: i32,
}

pub const SERVING: i32 = 1;
pub const NOT_SERVING: i32 = 2;

/// `outcome` values of [`ProcessResponse`].
pub const UNCHANGED: u32 = 0;
pub const REPLACED: u32 = 1;
pub const DROPPED: u32 = 2;
/// A segment's exporters acknowledged the batch.
pub const EXPORTED: u32 = 3;
