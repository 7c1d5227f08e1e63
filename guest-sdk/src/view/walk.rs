//! Walks over views: every attribute list of a request, and `retain_*`
//! helpers that remove telemetry items through an [`Editor`], then the
//! scopes and resources left empty — the zero-decode counterparts of
//! the decoded walkers ([`crate::for_each_trace_attributes`], [`crate::retain_spans`], …), visiting the same sites in the same order.

use super::{
    HasAttributes, KeyValueView, LogsView, MetricView, MetricsView, Repeated, ResourceLogsView, ResourceMetricsView,
    ResourceSpansView, SpanView, TracesView, ViewError, first_fields,
};
use crate::edit::Editor;
use crate::{AttributeSite, Outcome, Signal};

type Attributes<'a> = Repeated<'a, KeyValueView<'a>>;

/// Calls `visit` on every attribute list of a request of `signal`: resource,
/// scope, span, event, link, log record, data point (every kind) and
/// exemplar attributes.
pub fn for_each_attributes<'a, E: From<ViewError>>(
    signal: Signal,
    otlp: &'a [u8],
    mut visit: impl FnMut(AttributeSite, Attributes<'a>) -> Result<(), E>,
) -> Result<(), E> {
    match signal {
        Signal::Traces => {
            for rs in TracesView::new(otlp).resource_spans() {
                let rs = rs?;
                if let Some(resource) = rs.resource()? {
                    visit(AttributeSite::Resource, resource.attributes())?;
                }
                for ss in rs.scope_spans() {
                    let ss = ss?;
                    if let Some(scope) = ss.scope()? {
                        visit(AttributeSite::Scope, scope.attributes())?;
                    }
                    for span in ss.spans() {
                        let span = span?;
                        let (attributes, events, links) = (span.attributes(), span.events(), span.links());
                        let [first_attribute, first_event, first_link] =
                            first_fields(&span, [attributes.number(), events.number(), links.number()])?;
                        visit(AttributeSite::Span, attributes.starting_at(first_attribute))?;
                        for event in events.starting_at(first_event) {
                            visit(AttributeSite::SpanEvent, event?.attributes())?;
                        }
                        for link in links.starting_at(first_link) {
                            visit(AttributeSite::SpanLink, link?.attributes())?;
                        }
                    }
                }
            }
        }
        Signal::Logs => {
            for rl in LogsView::new(otlp).resource_logs() {
                let rl = rl?;
                if let Some(resource) = rl.resource()? {
                    visit(AttributeSite::Resource, resource.attributes())?;
                }
                for sl in rl.scope_logs() {
                    let sl = sl?;
                    if let Some(scope) = sl.scope()? {
                        visit(AttributeSite::Scope, scope.attributes())?;
                    }
                    for record in sl.log_records() {
                        visit(AttributeSite::LogRecord, record?.attributes())?;
                    }
                }
            }
        }
        Signal::Metrics => {
            for rm in MetricsView::new(otlp).resource_metrics() {
                let rm = rm?;
                if let Some(resource) = rm.resource()? {
                    visit(AttributeSite::Resource, resource.attributes())?;
                }
                for sm in rm.scope_metrics() {
                    let sm = sm?;
                    if let Some(scope) = sm.scope()? {
                        visit(AttributeSite::Scope, scope.attributes())?;
                    }
                    for metric in sm.metrics() {
                        for_each_point(&metric?, |point| {
                            visit(AttributeSite::DataPoint, point.attributes)?;
                            if let Some(exemplars) = point.exemplars {
                                for exemplar in exemplars {
                                    visit(AttributeSite::Exemplar, exemplar?.attributes())?;
                                }
                            }
                            Ok::<_, E>(())
                        })?;
                    }
                }
            }
        }
    }
    Ok(())
}

/// One data point of any kind, as the walkers hand it out.
pub struct PointView<'a> {
    /// Where to remove it with the editor.
    point: PointKind<'a>,
    /// The data point's attributes.
    pub attributes: Attributes<'a>,
    /// `None` for summaries, which carry no exemplars.
    pub exemplars: Option<Repeated<'a, super::ExemplarView<'a>>>,
}

enum PointKind<'a> {
    Number(super::NumberDataPointView<'a>),
    Histogram(super::HistogramDataPointView<'a>),
    Exponential(super::ExponentialHistogramDataPointView<'a>),
    Summary(super::SummaryDataPointView<'a>),
}

impl<'a> PointView<'a> {
    fn remove(&self, editor: &mut Editor<'a>) {
        match &self.point {
            PointKind::Number(p) => editor.remove(p),
            PointKind::Histogram(p) => editor.remove(p),
            PointKind::Exponential(p) => editor.remove(p),
            PointKind::Summary(p) => editor.remove(p),
        }
    }
}

/// Calls `visit` on each data point of a metric, whatever its kind; returns
/// whether the metric has data at all.
fn for_each_point<'a, E: From<ViewError>>(
    metric: &MetricView<'a>,
    mut visit: impl FnMut(PointView<'a>) -> Result<(), E>,
) -> Result<bool, E> {
    macro_rules! points {
        ($data:expr, $kind:ident, exemplars) => {
            for point in $data.data_points() {
                let point = point?;
                let exemplars = Some(point.exemplars());
                visit(PointView { attributes: point.attributes(), exemplars, point: PointKind::$kind(point) })?;
            }
        };
    }
    if let Some(gauge) = metric.gauge()? {
        points!(gauge, Number, exemplars);
    } else if let Some(sum) = metric.sum()? {
        points!(sum, Number, exemplars);
    } else if let Some(histogram) = metric.histogram()? {
        points!(histogram, Histogram, exemplars);
    } else if let Some(histogram) = metric.exponential_histogram()? {
        points!(histogram, Exponential, exemplars);
    } else if let Some(summary) = metric.summary()? {
        for point in summary.data_points() {
            let point = point?;
            visit(PointView { attributes: point.attributes(), exemplars: None, point: PointKind::Summary(point) })?;
        }
    } else {
        return Ok(false);
    }
    Ok(true)
}

/// The result of a `retain_*` pass: the outcome to return and how many
/// items it removed. `Unchanged` when nothing was removed; `Dropped` when
/// nothing is left.
fn finish(editor: Editor<'_>, removed: u64) -> Result<(Outcome, u64), ViewError> {
    if removed == 0 {
        return Ok((Outcome::Unchanged, 0));
    }
    Ok((editor.finish()?, removed))
}

/// Keeps the spans for which `keep(resource_spans, span)` is true; removes
/// the scopes and resources left empty (as [`crate::retain_spans`]).
pub fn retain_spans<'a, E: From<ViewError>>(
    otlp: &'a [u8],
    mut keep: impl FnMut(&ResourceSpansView<'a>, &SpanView<'a>) -> Result<bool, E>,
) -> Result<(Outcome, u64), E> {
    let mut editor = Editor::new(otlp);
    let mut removed = 0;
    for rs in TracesView::new(otlp).resource_spans() {
        let rs = rs?;
        let mut scopes_left = 0;
        for ss in rs.scope_spans() {
            let ss = ss?;
            let mut kept = 0;
            for span in ss.spans() {
                let span = span?;
                if keep(&rs, &span)? {
                    kept += 1;
                } else {
                    editor.remove(&span);
                    removed += 1;
                }
            }
            if kept == 0 {
                editor.remove(&ss);
            } else {
                scopes_left += 1;
            }
        }
        if scopes_left == 0 {
            editor.remove(&rs);
        }
    }
    Ok(finish(editor, removed)?)
}

/// Keeps the log records for which `keep(resource_logs, record)` is true.
pub fn retain_log_records<'a, E: From<ViewError>>(
    otlp: &'a [u8],
    mut keep: impl FnMut(&ResourceLogsView<'a>, &super::LogRecordView<'a>) -> Result<bool, E>,
) -> Result<(Outcome, u64), E> {
    let mut editor = Editor::new(otlp);
    let mut removed = 0;
    for rl in LogsView::new(otlp).resource_logs() {
        let rl = rl?;
        let mut scopes_left = 0;
        for sl in rl.scope_logs() {
            let sl = sl?;
            let mut kept = 0;
            for record in sl.log_records() {
                let record = record?;
                if keep(&rl, &record)? {
                    kept += 1;
                } else {
                    editor.remove(&record);
                    removed += 1;
                }
            }
            if kept == 0 {
                editor.remove(&sl);
            } else {
                scopes_left += 1;
            }
        }
        if scopes_left == 0 {
            editor.remove(&rl);
        }
    }
    Ok(finish(editor, removed)?)
}

/// Keeps the data points (every kind) for which `keep(resource_metrics,
/// metric, point_attributes)` is true; removes metrics, scopes and resources
/// left empty (a metric without data counts as empty).
pub fn retain_data_points<'a, E: From<ViewError>>(
    otlp: &'a [u8],
    mut keep: impl FnMut(&ResourceMetricsView<'a>, &MetricView<'a>, Attributes<'a>) -> Result<bool, E>,
) -> Result<(Outcome, u64), E> {
    let mut editor = Editor::new(otlp);
    let mut removed = 0;
    for rm in MetricsView::new(otlp).resource_metrics() {
        let rm = rm?;
        let mut scopes_left = 0;
        for sm in rm.scope_metrics() {
            let sm = sm?;
            let mut metrics_left = 0;
            for metric in sm.metrics() {
                let metric = metric?;
                let mut kept = 0;
                for_each_point(&metric, |point| {
                    if keep(&rm, &metric, point.attributes.clone())? {
                        kept += 1;
                    } else {
                        point.remove(&mut editor);
                        removed += 1;
                    }
                    Ok::<_, E>(())
                })?;
                if kept == 0 {
                    editor.remove(&metric);
                } else {
                    metrics_left += 1;
                }
            }
            if metrics_left == 0 {
                editor.remove(&sm);
            } else {
                scopes_left += 1;
            }
        }
        if scopes_left == 0 {
            editor.remove(&rm);
        }
    }
    Ok(finish(editor, removed)?)
}

#[cfg(test)]
mod tests {
    use prost::Message;

    use super::*;
    use crate::attributes::kv;
    use crate::testing::{self, gauge, point, span};

    #[test]
    fn the_same_sites_in_the_same_order_as_the_decoded_walkers() {
        let mut s = span("s", vec![kv("k", "v")]);
        s.events.push(crate::otlp::trace::v1::span::Event { attributes: vec![kv("k", "v")], ..Default::default() });
        s.links.push(crate::otlp::trace::v1::span::Link { attributes: vec![kv("k", "v")], ..Default::default() });
        let mut request = testing::traces(vec![kv("k", "v")], vec![s]);
        let otlp = request.encode_to_vec();
        let mut viewed = Vec::new();
        for_each_attributes::<ViewError>(Signal::Traces, &otlp, |site, _| {
            viewed.push(site);
            Ok(())
        })
        .unwrap();
        let mut decoded = Vec::new();
        crate::walk::for_each_trace_attributes(&mut request, |site, _| decoded.push(site));
        assert_eq!(viewed, decoded);
    }

    #[test]
    fn retain_removes_emptied_containers_and_reports_counts() {
        let request = testing::traces(vec![kv("env", "dev")], vec![span("a", vec![]), span("b", vec![])]);
        let otlp = request.encode_to_vec();
        let (outcome, removed) = retain_spans::<ViewError>(&otlp, |_, span| Ok(span.name()? == "b")).unwrap();
        assert_eq!(removed, 1);
        let Outcome::Replaced(out) = outcome else { panic!("{outcome:?}") };
        let decoded = crate::ExportTraceServiceRequest::decode(out.as_slice()).unwrap();
        assert_eq!(decoded.resource_spans[0].scope_spans[0].spans.len(), 1);
        assert_eq!(retain_spans::<ViewError>(&otlp, |_, _| Ok(true)).unwrap(), (Outcome::Unchanged, 0));
        assert_eq!(retain_spans::<ViewError>(&otlp, |_, _| Ok(false)).unwrap(), (Outcome::Dropped, 2));

        let metrics =
            testing::metrics(vec![], vec![gauge("g", vec![point(1, vec![kv("k", "v")])]), gauge("h", vec![])]);
        let otlp = metrics.encode_to_vec();
        let (outcome, removed) =
            retain_data_points::<ViewError>(&otlp, |_, metric, _| Ok(metric.name()? == "g")).unwrap();
        assert_eq!(removed, 0, "nothing removed: the empty metric stays as it came");
        assert_eq!(outcome, Outcome::Unchanged);
        assert_eq!(retain_data_points::<ViewError>(&otlp, |_, _, _| Ok(false)).unwrap(), (Outcome::Dropped, 1));
    }
}
