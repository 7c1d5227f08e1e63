//! The same redaction on decoded requests (decode → edit → encode), as the
//! component did it before the SDK's view: the reference its tests compare
//! the view-based processor with, and the native baseline of the benchmarks.
//! Not exported by the component.

use wasmtel_sdk::otlp::common::v1::{AnyValue, KeyValue, any_value::Value};
use wasmtel_sdk::prelude::*;

use crate::{Config, Fate, Redact, RedactAction};

/// [`Redact`] over decoded requests.
#[derive(Debug)]
pub struct Decoded(pub Redact);

impl Processor for Decoded {
    type Config = Config;

    fn new(config: Config) -> Result<Self, String> {
        Redact::new(config).map(Decoded)
    }

    fn traces(&mut self, request: &mut ExportTraceServiceRequest) -> Result<Action, ProcessError> {
        let mut redacted = 0;
        for_each_trace_attributes(request, |_, attributes| redacted += self.redact_attributes(attributes));
        Ok(finish(redacted))
    }

    fn logs(&mut self, request: &mut ExportLogsServiceRequest) -> Result<Action, ProcessError> {
        let mut redacted = 0;
        for_each_log_attributes(request, |_, attributes| redacted += self.redact_attributes(attributes));
        if self.0.log_bodies {
            for record in
                request.resource_logs.iter_mut().flat_map(|r| &mut r.scope_logs).flat_map(|s| &mut s.log_records)
            {
                if let Some(body) = record.body.as_mut().and_then(|b| b.value.as_mut()) {
                    redacted += self.redact_body(body);
                }
            }
        }
        Ok(finish(redacted))
    }

    fn metrics(&mut self, request: &mut ExportMetricsServiceRequest) -> Result<Action, ProcessError> {
        let mut redacted = 0;
        for_each_metric_attributes(request, |_, attributes| redacted += self.redact_attributes(attributes));
        Ok(finish(redacted))
    }
}

fn finish(redacted: u64) -> Action {
    if redacted == 0 {
        return Action::Unchanged;
    }
    host::counter("redacted_values", redacted);
    Action::Modified
}

impl Decoded {
    fn redact_attributes(&self, attributes: &mut Vec<KeyValue>) -> u64 {
        let mut redacted = 0;
        attributes.retain_mut(|kv| match self.redact_entry(kv) {
            Fate::Keep(n) => {
                redacted += n;
                true
            }
            Fate::Remove => {
                redacted += 1;
                false
            }
        });
        redacted
    }

    fn redact_entry(&self, kv: &mut KeyValue) -> Fate {
        let Some(value) = kv.value.as_mut().and_then(|v| v.value.as_mut()) else {
            return Fate::Keep(0);
        };
        if !self.0.key_matches(&kv.key) {
            return self.redact_value(value);
        }
        if self.0.action == RedactAction::Remove {
            return Fate::Remove;
        }
        *value = Value::StringValue(self.0.replacement(&value_bytes(value)));
        Fate::Keep(1)
    }

    fn redact_value(&self, value: &mut Value) -> Fate {
        match value {
            Value::StringValue(text) => match self.0.redact_matches(text) {
                None => Fate::Keep(0),
                Some(_) if self.0.action == RedactAction::Remove => Fate::Remove,
                Some(new) => {
                    *text = new;
                    Fate::Keep(1)
                }
            },
            Value::KvlistValue(list) => Fate::Keep(self.redact_attributes(&mut list.values)),
            Value::ArrayValue(array) => {
                let mut redacted = 0;
                array.values.retain_mut(|element| match element.value.as_mut().map(|v| self.redact_value(v)) {
                    None => true,
                    Some(Fate::Keep(n)) => {
                        redacted += n;
                        true
                    }
                    Some(Fate::Remove) => {
                        redacted += 1;
                        false
                    }
                });
                Fate::Keep(redacted)
            }
            _ => Fate::Keep(0),
        }
    }

    fn redact_body(&self, body: &mut Value) -> u64 {
        if let Value::StringValue(text) = body {
            return match self.0.redact_matches(text) {
                Some(new) => {
                    *text = new;
                    1
                }
                None => 0,
            };
        }
        match self.redact_value(body) {
            Fate::Keep(n) => n,
            Fate::Remove => 0,
        }
    }
}

fn value_bytes(value: &Value) -> Vec<u8> {
    match value {
        Value::StringValue(s) => s.as_bytes().to_vec(),
        Value::BytesValue(b) => b.clone(),
        Value::BoolValue(b) => b.to_string().into_bytes(),
        Value::IntValue(i) => i.to_string().into_bytes(),
        Value::DoubleValue(d) => d.to_string().into_bytes(),
        other => wasmtel_sdk::encode(&AnyValue { value: Some(other.clone()) }),
    }
}
