//! The same filtering on decoded requests (decode → retain → encode), as the
//! component did it before the SDK's view: the reference its tests compare
//! the view-based processor with, and the native baseline of the benchmarks.
//! Not exported by the component.

use wasmtel_sdk::otlp::common::v1::{AnyValue, KeyValue, any_value};
use wasmtel_sdk::otlp::logs::v1::LogRecord;
use wasmtel_sdk::otlp::trace::v1::Span;
use wasmtel_sdk::prelude::*;
use wasmtel_sdk::view::Value;

use crate::{AttributeMatcher, Config, Filter, Match, count, json_equals};

/// [`Filter`] over decoded requests.
#[derive(Debug)]
pub struct Decoded(pub Filter);

impl Processor for Decoded {
    type Config = Config;

    fn new(config: Config) -> Result<Self, String> {
        Filter::new(config).map(Decoded)
    }

    fn traces(&mut self, request: &mut ExportTraceServiceRequest) -> Result<Action, ProcessError> {
        let mut dropped = 0;
        let action = retain_spans(request, |resource, span| {
            let drop = self.drops_resource(resource) || self.drops_span(span);
            dropped += u64::from(drop);
            !drop
        })?;
        count("filtered_spans", dropped);
        Ok(action)
    }

    fn logs(&mut self, request: &mut ExportLogsServiceRequest) -> Result<Action, ProcessError> {
        let mut dropped = 0;
        let action = retain_log_records(request, |resource, record| {
            let drop = self.drops_resource(resource) || self.drops_log(record);
            dropped += u64::from(drop);
            !drop
        })?;
        count("filtered_log_records", dropped);
        Ok(action)
    }

    fn metrics(&mut self, request: &mut ExportMetricsServiceRequest) -> Result<Action, ProcessError> {
        let mut dropped = 0;
        let action = retain_data_points(request, |resource, metric, attributes| {
            let drop = self.drops_resource(resource) || self.drops_point(metric, attributes);
            dropped += u64::from(drop);
            !drop
        })?;
        count("filtered_data_points", dropped);
        Ok(action)
    }
}

/// A decoded scalar as the view's borrowed value (lists never match a rule).
fn scalar(value: &AnyValue) -> Option<Value<'_>> {
    match value.value.as_ref()? {
        any_value::Value::StringValue(s) => Some(Value::String(s)),
        any_value::Value::BoolValue(b) => Some(Value::Bool(*b)),
        any_value::Value::IntValue(i) => Some(Value::Int(*i)),
        any_value::Value::DoubleValue(d) => Some(Value::Double(*d)),
        _ => None,
    }
}

fn matches(matcher: &AttributeMatcher, attributes: &[KeyValue]) -> bool {
    let Some(value) = attributes.value(&matcher.key) else {
        return false;
    };
    match &matcher.matcher {
        Match::Exists => true,
        Match::Equals(expected) => scalar(value).is_some_and(|v| json_equals(v, expected)),
        Match::Pattern(regex) => string_value(value).is_some_and(|s| regex.is_match(s)),
    }
}

fn any_matches(matchers: &[AttributeMatcher], attributes: &[KeyValue]) -> bool {
    matchers.iter().any(|m| matches(m, attributes))
}

impl Decoded {
    fn drops_resource(&self, attributes: &[KeyValue]) -> bool {
        any_matches(&self.0.resource_attributes, attributes)
    }

    fn drops_span(&self, span: &Span) -> bool {
        let filter = &self.0;
        filter.span_names.contains(&span.name)
            || filter.span_name_patterns.iter().any(|p| p.is_match(&span.name))
            || any_matches(&filter.span_attributes, &span.attributes)
    }

    fn drops_log(&self, record: &LogRecord) -> bool {
        let filter = &self.0;
        let too_low = filter.min_severity.is_some_and(|min| record.severity_number > 0 && record.severity_number < min);
        let body = record.body.as_ref().and_then(string_value);
        too_low
            || body.is_some_and(|b| filter.body_patterns.iter().any(|p| p.is_match(b)))
            || any_matches(&filter.log_attributes, &record.attributes)
    }

    fn drops_point(&self, metric: &str, attributes: &[KeyValue]) -> bool {
        let filter = &self.0;
        filter.metric_names.iter().any(|n| n == metric)
            || filter.metric_name_patterns.iter().any(|p| p.is_match(metric))
            || any_matches(&filter.point_attributes, attributes)
    }
}
