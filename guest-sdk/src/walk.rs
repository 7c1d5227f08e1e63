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
    /// A resource's attributes.
    Resource,
    /// An instrumentation scope's attributes.
    Scope,
    /// A span's attributes.
    Span,
    /// A span event's attributes.
    SpanEvent,
    /// A span link's attributes.
    SpanLink,
    /// A log record's attributes.
    LogRecord,
    /// A metric data point's attributes (any kind: number, histogram, exponential histogram, summary).
    DataPoint,
    /// An exemplar's filtered attributes.
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::attributes::kv;
    use crate::otlp::common::v1::InstrumentationScope;
    use crate::otlp::metrics::v1::{
        Exemplar, ExponentialHistogram, ExponentialHistogramDataPoint, Histogram, HistogramDataPoint, Summary,
        SummaryDataPoint,
    };
    use crate::otlp::trace::v1::span::{Event, Link};
    use crate::testing::{self, gauge, point, span, sum};

    fn sites_of(visit: impl FnOnce(&mut dyn FnMut(AttributeSite, &mut Vec<KeyValue>))) -> Vec<AttributeSite> {
        let mut sites = Vec::new();
        visit(&mut |site, attributes: &mut Vec<KeyValue>| {
            attributes.clear();
            sites.push(site);
        });
        sites
    }

    fn all_metric_kinds() -> ExportMetricsServiceRequest {
        let a = || vec![kv("k", "v")];
        let exemplars = || vec![Exemplar { filtered_attributes: a(), ..Default::default() }];
        let histogram = Histogram {
            data_points: vec![HistogramDataPoint { attributes: a(), exemplars: exemplars(), ..Default::default() }],
            ..Default::default()
        };
        let exponential = ExponentialHistogram {
            data_points: vec![ExponentialHistogramDataPoint { attributes: a(), ..Default::default() }],
            ..Default::default()
        };
        let summary = Summary { data_points: vec![SummaryDataPoint { attributes: a(), ..Default::default() }] };
        let mut request = testing::metrics(
            a(),
            vec![
                gauge("gauge", vec![point(1, a())]),
                sum("sum", vec![point(1, a())]),
                Metric { name: "histogram".into(), data: Some(Data::Histogram(histogram)), ..Default::default() },
                Metric {
                    name: "exp".into(),
                    data: Some(Data::ExponentialHistogram(exponential)),
                    ..Default::default()
                },
                Metric { name: "summary".into(), data: Some(Data::Summary(summary)), ..Default::default() },
            ],
        );
        request.resource_metrics[0].scope_metrics[0].scope =
            Some(InstrumentationScope { attributes: a(), ..Default::default() });
        request
    }

    #[test]
    fn every_trace_and_log_attribute_list_is_visited() {
        let mut s = span("s", vec![kv("k", "v")]);
        s.events.push(Event { attributes: vec![kv("k", "v")], ..Default::default() });
        s.links.push(Link { attributes: vec![kv("k", "v")], ..Default::default() });
        let mut request = testing::traces(vec![kv("k", "v")], vec![s]);
        request.resource_spans[0].scope_spans[0].scope =
            Some(InstrumentationScope { attributes: vec![kv("k", "v")], ..Default::default() });
        let sites = sites_of(|v| for_each_trace_attributes(&mut request, v));
        use AttributeSite::*;
        assert_eq!(sites, [Resource, Scope, Span, SpanEvent, SpanLink]);
        let mut logs = testing::logs(vec![kv("k", "v")], vec![testing::log_record(9, "b", vec![kv("k", "v")])]);
        assert_eq!(sites_of(|v| for_each_log_attributes(&mut logs, v)), [Resource, LogRecord]);
    }

    #[test]
    fn every_data_point_kind_and_exemplar_is_visited() {
        let mut request = all_metric_kinds();
        let sites = sites_of(|v| for_each_metric_attributes(&mut request, v));
        use AttributeSite::*;
        let expected = [Resource, Scope, DataPoint, DataPoint, DataPoint, Exemplar, DataPoint, DataPoint];
        assert_eq!(sites, expected);
    }

    #[test]
    fn retain_data_points_covers_every_kind_and_removes_emptied_metrics() {
        let mut request = all_metric_kinds();
        let action = retain_data_points(&mut request, |_, name, _| name == "summary" || name == "histogram").unwrap();
        assert_eq!(action, Action::Modified);
        let names: Vec<&str> =
            request.resource_metrics[0].scope_metrics[0].metrics.iter().map(|m| m.name.as_str()).collect();
        assert_eq!(names, ["histogram", "summary"]);
        assert_eq!(retain_data_points(&mut request, |_, _, _| true).unwrap(), Action::Unchanged);
        assert_eq!(retain_data_points(&mut request, |_, _, _| false).unwrap(), Action::Dropped);
        assert!(request.resource_metrics.is_empty(), "emptied scopes and resources are removed");
    }

    #[test]
    fn retain_spans_sees_resource_attributes_and_removes_empty_containers() {
        let mut request = testing::traces(vec![kv("env", "dev")], vec![span("a", vec![])]);
        request
            .resource_spans
            .push(testing::traces(vec![kv("env", "prod")], vec![span("b", vec![])]).resource_spans.remove(0));
        let action = retain_spans(&mut request, |resource, _| {
            crate::attributes::AttributesExt::get_str(resource, "env") == Some("prod")
        })
        .unwrap();
        assert_eq!(action, Action::Modified);
        assert_eq!(request.resource_spans.len(), 1);
        assert_eq!(request.resource_spans[0].scope_spans[0].spans[0].name, "b");
    }
}
