//! The SDK's finished spans as an OTLP `ExportTraceServiceRequest`, encoded
//! here instead of through Python protobuf objects: the same message
//! `opentelemetry-exporter-otlp-proto-common`'s `encode_spans` builds (the
//! tests compare the two), at a fraction of its cost per span.

use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::common::v1::{
    AnyValue, ArrayValue, InstrumentationScope, KeyValue, KeyValueList, any_value,
};
use opentelemetry_proto::tonic::resource::v1::Resource;
use opentelemetry_proto::tonic::trace::v1::{ResourceSpans, ScopeSpans, Span, Status, span};
use prost::Message;
use pyo3::exceptions::PyTypeError;
use pyo3::prelude::*;
use pyo3::types::{PyBool, PyBytes, PyFloat, PyInt, PyMapping, PySequence, PyString};

/// `SpanFlags`: the parent's `is_remote` is known, and whether it is remote.
const HAS_IS_REMOTE: u32 = 0x100;
const IS_REMOTE: u32 = 0x200;

/// Spans grouped as OTLP wants them: resource, then scope (the SDK objects'
/// own equality decides, as the Python encoder's dicts do).
struct Group<'py> {
    resource: Bound<'py, PyAny>,
    scopes: Vec<(Bound<'py, PyAny>, Vec<Span>)>,
}

/// Encodes a sequence of `ReadableSpan`s.
pub fn encode_spans(spans: &Bound<'_, PyAny>) -> PyResult<Vec<u8>> {
    let mut groups: Vec<Group<'_>> = Vec::new();
    for span in spans.try_iter()? {
        let span = span?;
        let encoded = encode_span(&span)?;
        let resource = span.getattr("resource")?;
        let scope = span.getattr("instrumentation_scope")?;
        let group = match position(&groups, |g| &g.resource, &resource)? {
            Some(index) => &mut groups[index],
            None => {
                groups.push(Group { resource, scopes: Vec::new() });
                let last = groups.len() - 1;
                &mut groups[last]
            }
        };
        match position(&group.scopes, |(s, _)| s, &scope)? {
            Some(index) => group.scopes[index].1.push(encoded),
            None => group.scopes.push((scope, vec![encoded])),
        }
    }
    let mut resource_spans = Vec::with_capacity(groups.len());
    for group in groups {
        let mut scope_spans = Vec::with_capacity(group.scopes.len());
        for (scope, spans) in group.scopes {
            let (scope, schema_url) = if scope.is_none() {
                (InstrumentationScope::default(), String::new())
            } else {
                let encoded = InstrumentationScope {
                    name: scope.getattr("name")?.extract()?,
                    version: optional_string(&scope.getattr("version")?)?,
                    attributes: attributes(&scope.getattr("attributes")?)?,
                    dropped_attributes_count: 0,
                };
                (encoded, optional_string(&scope.getattr("schema_url")?)?)
            };
            scope_spans.push(ScopeSpans { scope: Some(scope), spans, schema_url });
        }
        resource_spans.push(ResourceSpans {
            resource: Some(Resource {
                attributes: attributes(&group.resource.getattr("attributes")?)?,
                ..Default::default()
            }),
            scope_spans,
            schema_url: optional_string(&group.resource.getattr("schema_url")?)?,
        });
    }
    Ok(ExportTraceServiceRequest { resource_spans }.encode_to_vec())
}

/// Where `key` is among `items` (identity first, then Python equality).
fn position<T>(
    items: &[T],
    key_of: impl Fn(&T) -> &Bound<'_, PyAny>,
    key: &Bound<'_, PyAny>,
) -> PyResult<Option<usize>> {
    if let Some(index) = items.iter().position(|item| key_of(item).is(key)) {
        return Ok(Some(index));
    }
    for (index, item) in items.iter().enumerate() {
        if key_of(item).eq(key)? {
            return Ok(Some(index));
        }
    }
    Ok(None)
}

fn encode_span(span: &Bound<'_, PyAny>) -> PyResult<Span> {
    let context = span.call_method0("get_span_context")?;
    let parent = span.getattr("parent")?;
    let (parent_span_id, flags) =
        if parent.is_none() { (Vec::new(), HAS_IS_REMOTE) } else { (span_id(&parent)?, remote_flags(&parent)?) };
    let status = span.getattr("status")?;
    Ok(Span {
        trace_id: trace_id(&context)?,
        span_id: span_id(&context)?,
        trace_state: trace_state(&context.getattr("trace_state")?)?,
        parent_span_id,
        flags,
        name: span.getattr("name")?.extract()?,
        // The SDK's SpanKind counts from INTERNAL = 0; OTLP's from INTERNAL = 1.
        kind: span.getattr("kind")?.getattr("value")?.extract::<i32>()? + 1,
        start_time_unix_nano: optional_u64(&span.getattr("start_time")?)?,
        end_time_unix_nano: optional_u64(&span.getattr("end_time")?)?,
        attributes: attributes(&span.getattr("attributes")?)?,
        dropped_attributes_count: span.getattr("dropped_attributes")?.extract()?,
        events: span
            .getattr("events")?
            .try_iter()?
            .map(|event| {
                let event = event?;
                Ok(span::Event {
                    time_unix_nano: optional_u64(&event.getattr("timestamp")?)?,
                    name: event.getattr("name")?.extract()?,
                    attributes: attributes(&event.getattr("attributes")?)?,
                    dropped_attributes_count: event.getattr("dropped_attributes")?.extract()?,
                })
            })
            .collect::<PyResult<_>>()?,
        dropped_events_count: span.getattr("dropped_events")?.extract()?,
        links: span
            .getattr("links")?
            .try_iter()?
            .map(|link| {
                let link = link?;
                let context = link.getattr("context")?;
                Ok(span::Link {
                    trace_id: trace_id(&context)?,
                    span_id: span_id(&context)?,
                    trace_state: String::new(),
                    attributes: attributes(&link.getattr("attributes")?)?,
                    dropped_attributes_count: link.getattr("dropped_attributes")?.extract()?,
                    flags: remote_flags(&context)?,
                })
            })
            .collect::<PyResult<_>>()?,
        dropped_links_count: span.getattr("dropped_links")?.extract()?,
        status: Some(Status {
            message: optional_string(&status.getattr("description")?)?,
            code: status.getattr("status_code")?.getattr("value")?.extract()?,
        }),
    })
}

fn trace_id(context: &Bound<'_, PyAny>) -> PyResult<Vec<u8>> {
    Ok(context.getattr("trace_id")?.extract::<u128>()?.to_be_bytes().to_vec())
}

fn span_id(context: &Bound<'_, PyAny>) -> PyResult<Vec<u8>> {
    Ok(context.getattr("span_id")?.extract::<u64>()?.to_be_bytes().to_vec())
}

fn remote_flags(context: &Bound<'_, PyAny>) -> PyResult<u32> {
    let remote: bool = context.getattr("is_remote")?.extract()?;
    Ok(if remote { HAS_IS_REMOTE | IS_REMOTE } else { HAS_IS_REMOTE })
}

/// `key=value` pairs joined by commas, as the Python encoder writes them.
fn trace_state(state: &Bound<'_, PyAny>) -> PyResult<String> {
    if state.is_none() {
        return Ok(String::new());
    }
    let mut pairs = Vec::new();
    for item in state.call_method0("items")?.try_iter()? {
        let (key, value): (String, String) = item?.extract()?;
        pairs.push(format!("{key}={value}"));
    }
    Ok(pairs.join(","))
}

fn optional_u64(value: &Bound<'_, PyAny>) -> PyResult<u64> {
    if value.is_none() { Ok(0) } else { value.extract() }
}

fn optional_string(value: &Bound<'_, PyAny>) -> PyResult<String> {
    if value.is_none() { Ok(String::new()) } else { value.extract() }
}

/// An attribute mapping; a value of a type OTLP cannot carry is skipped, as
/// the Python encoder skips it (it logs; the SDK never lets one in).
fn attributes(mapping: &Bound<'_, PyAny>) -> PyResult<Vec<KeyValue>> {
    if mapping.is_none() {
        return Ok(Vec::new());
    }
    let mut out = Vec::new();
    for item in mapping.call_method0("items")?.try_iter()? {
        let (key, value): (Bound<'_, PyAny>, Bound<'_, PyAny>) = item?.extract()?;
        if let Ok(value) = any_value(&value) {
            out.push(KeyValue { key: key.str()?.to_string(), value: Some(value), ..Default::default() });
        }
    }
    Ok(out)
}

fn any_value(value: &Bound<'_, PyAny>) -> PyResult<AnyValue> {
    use any_value::Value;
    let value = if value.is_none() {
        None
    } else if value.is_instance_of::<PyBool>() {
        Some(Value::BoolValue(value.extract()?))
    } else if value.is_instance_of::<PyString>() {
        Some(Value::StringValue(value.extract()?))
    } else if value.is_instance_of::<PyInt>() {
        Some(Value::IntValue(value.extract()?))
    } else if value.is_instance_of::<PyFloat>() {
        Some(Value::DoubleValue(value.extract()?))
    } else if value.is_instance_of::<PyBytes>() {
        Some(Value::BytesValue(value.extract()?))
    } else if let Ok(sequence) = value.cast::<PySequence>() {
        let values = sequence.try_iter()?.map(|v| any_value(&v?)).collect::<PyResult<_>>()?;
        Some(Value::ArrayValue(ArrayValue { values }))
    } else if let Ok(mapping) = value.cast::<PyMapping>() {
        let mut values = Vec::new();
        for item in mapping.items()?.try_iter()? {
            let (key, value): (Bound<'_, PyAny>, Bound<'_, PyAny>) = item?.extract()?;
            values.push(KeyValue {
                key: key.str()?.to_string(),
                value: Some(any_value(&value)?),
                ..Default::default()
            });
        }
        Some(Value::KvlistValue(KeyValueList { values }))
    } else {
        return Err(PyTypeError::new_err(format!("no OTLP value for {}", value.get_type().name()?)));
    };
    Ok(AnyValue { value })
}
