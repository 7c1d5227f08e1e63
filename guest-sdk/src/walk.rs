//! Walks over every attribute list of a request, and `retain_*` helpers that
//! drop telemetry items and then the scopes and resources left empty.

use crate::otlp::common::v1::KeyValue;
use crate::otlp::logs::v1::LogRecord;
use crate::otlp::metrics::v1::{Metric, metric::Data};
use crate::otlp::trace::v1::Span;
use crate::{Action, ExportLogsServiceRequest, ExportMetricsServiceRequest, ExportTraceServiceRequest, ProcessError};

/// Where an attribute list sits in the OTLP tree.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum AttributeSite {
    Resource,
    Scope,
    Span,
    SpanEvent,
    SpanLink,
    LogRecord,
    DataPoint,
    Exemplar,
}

/// Calls `visit` on every attribute list of a traces request.
pub fn for_each_trace_attributes(
    request: &mut ExportTraceServiceRequest,
    mut visit: impl FnMut(AttributeSite, &mut Vec<KeyValue>),
) {
    for resource_spans in &mut request.resource_spans {
        if let Some(resource) = &mut resource_spans.resource {
            visit(AttributeSite::Resource, &mut resource.attributes);
        }
        for scope_spans in &mut resource_spans.scope_spans {
            if let Some(scope) = &mut scope_spans.scope {
                visit(AttributeSite::Scope, &mut scope.attributes);
            }
            for span in &mut scope_spans.spans {
                visit(AttributeSite::Span, &mut span.attributes);
                for event in &mut span.events {
                    visit(AttributeSite::SpanEvent, &mut event.attributes);
                }
                for link in &mut span.links {
                    visit(AttributeSite::SpanLink, &mut link.attributes);
                }
            }
        }
    }
}

/// Calls `visit` on every attribute list of a logs request.
pub fn for_each_log_attributes(
    request: &mut ExportLogsServiceRequest,
    mut visit: impl FnMut(AttributeSite, &mut Vec<KeyValue>),
) {
    for resource_logs in &mut request.resource_logs {
        if let Some(resource) = &mut resource_logs.resource {
            visit(AttributeSite::Resource, &mut resource.attributes);
        }
        for scope_logs in &mut resource_logs.scope_logs {
            if let Some(scope) = &mut scope_logs.scope {
                visit(AttributeSite::Scope, &mut scope.attributes);
            }
            for record in &mut scope_logs.log_records {
                visit(AttributeSite::LogRecord, &mut record.attributes);
            }
        }
    }
}

/// Calls `visit` on every attribute list of a metrics request, including
/// every data point kind and their exemplars.
pub fn for_each_metric_attributes(
    request: &mut ExportMetricsServiceRequest,
    mut visit: impl FnMut(AttributeSite, &mut Vec<KeyValue>),
) {
    for resource_metrics in &mut request.resource_metrics {
        if let Some(resource) = &mut resource_metrics.resource {
            visit(AttributeSite::Resource, &mut resource.attributes);
        }
        for scope_metrics in &mut resource_metrics.scope_metrics {
            if let Some(scope) = &mut scope_metrics.scope {
                visit(AttributeSite::Scope, &mut scope.attributes);
            }
            for metric in &mut scope_metrics.metrics {
                for_each_point_attributes(metric, &mut visit);
            }
        }
    }
}

fn for_each_point_attributes(metric: &mut Metric, visit: &mut impl FnMut(AttributeSite, &mut Vec<KeyValue>)) {
    macro_rules! points {
        ($points:expr, exemplars) => {
            for point in $points {
                visit(AttributeSite::DataPoint, &mut point.attributes);
                for exemplar in &mut point.exemplars {
                    visit(AttributeSite::Exemplar, &mut exemplar.filtered_attributes);
                }
            }
        };
    }
    match &mut metric.data {
        Some(Data::Gauge(g)) => points!(&mut g.data_points, exemplars),
        Some(Data::Sum(s)) => points!(&mut s.data_points, exemplars),
        Some(Data::Histogram(h)) => points!(&mut h.data_points, exemplars),
        Some(Data::ExponentialHistogram(h)) => points!(&mut h.data_points, exemplars),
        Some(Data::Summary(s)) => {
            for point in &mut s.data_points {
                visit(AttributeSite::DataPoint, &mut point.attributes);
            }
        }
        None => {}
    }
}

/// What a `retain_*` pass did, as the [`Action`] to return.
fn action(before: usize, after: usize) -> Action {
    if after == before {
        Action::Unchanged
    } else if after == 0 {
        Action::Dropped
    } else {
        Action::Modified
    }
}

/// Keeps the spans for which `keep(resource_attributes, span)` is true;
/// removes scopes and resources left empty.
pub fn retain_spans(
    request: &mut ExportTraceServiceRequest,
    mut keep: impl FnMut(&[KeyValue], &Span) -> bool,
) -> Result<Action, ProcessError> {
    let (mut before, mut after) = (0, 0);
    for resource_spans in &mut request.resource_spans {
        let resource = resource_spans.resource.as_ref().map_or(&[][..], |r| &r.attributes[..]);
        for scope_spans in &mut resource_spans.scope_spans {
            before += scope_spans.spans.len();
            scope_spans.spans.retain(|span| keep(resource, span));
            after += scope_spans.spans.len();
        }
        resource_spans.scope_spans.retain(|s| !s.spans.is_empty());
    }
    request.resource_spans.retain(|r| !r.scope_spans.is_empty());
    Ok(action(before, after))
}

/// Keeps the log records for which `keep(resource_attributes, record)` is true.
pub fn retain_log_records(
    request: &mut ExportLogsServiceRequest,
    mut keep: impl FnMut(&[KeyValue], &LogRecord) -> bool,
) -> Result<Action, ProcessError> {
    let (mut before, mut after) = (0, 0);
    for resource_logs in &mut request.resource_logs {
        let resource = resource_logs.resource.as_ref().map_or(&[][..], |r| &r.attributes[..]);
        for scope_logs in &mut resource_logs.scope_logs {
            before += scope_logs.log_records.len();
            scope_logs.log_records.retain(|record| keep(resource, record));
            after += scope_logs.log_records.len();
        }
        resource_logs.scope_logs.retain(|s| !s.log_records.is_empty());
    }
    request.resource_logs.retain(|r| !r.scope_logs.is_empty());
    Ok(action(before, after))
}

/// Keeps the data points for which `keep(resource_attributes, metric_name,
/// point_attributes)` is true; removes metrics, scopes and resources left empty.
pub fn retain_data_points(
    request: &mut ExportMetricsServiceRequest,
    mut keep: impl FnMut(&[KeyValue], &str, &[KeyValue]) -> bool,
) -> Result<Action, ProcessError> {
    let (mut before, mut after) = (0, 0);
    for resource_metrics in &mut request.resource_metrics {
        let resource = resource_metrics.resource.as_ref().map_or(&[][..], |r| &r.attributes[..]);
        for scope_metrics in &mut resource_metrics.scope_metrics {
            for metric in &mut scope_metrics.metrics {
                let name = metric.name.as_str();
                macro_rules! retain {
                    ($points:expr) => {{
                        before += $points.len();
                        $points.retain(|p| keep(resource, name, &p.attributes));
                        after += $points.len();
                        $points.is_empty()
                    }};
                }
                let empty = match &mut metric.data {
                    Some(Data::Gauge(g)) => retain!(g.data_points),
                    Some(Data::Sum(s)) => retain!(s.data_points),
                    Some(Data::Histogram(h)) => retain!(h.data_points),
                    Some(Data::ExponentialHistogram(h)) => retain!(h.data_points),
                    Some(Data::Summary(s)) => retain!(s.data_points),
                    None => false,
                };
                if empty {
                    metric.data = None;
                }
            }
            scope_metrics.metrics.retain(|m| m.data.is_some());
        }
        resource_metrics.scope_metrics.retain(|s| !s.metrics.is_empty());
    }
    request.resource_metrics.retain(|r| !r.scope_metrics.is_empty());
    Ok(action(before, after))
}
