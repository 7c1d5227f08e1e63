//! `filter`: drops spans, log records and metric data points that match any
//! configured condition (e.g. health-check spans, debug logs), then the
//! scopes and resources left empty.

#[doc(hidden)]
pub mod decoded;

use regex::Regex;
use wasmtel_sdk::prelude::*;
use wasmtel_sdk::view::{
    KeyValueView, LogRecordView, MetricView, Repeated, ResourceView, SpanView, Value, ViewError, find_attribute,
    retain_data_points, retain_log_records, retain_spans,
};

type Attributes<'a> = Repeated<'a, KeyValueView<'a>>;

/// The filter's configuration (`config.schema.json`): an item is dropped when it
/// matches any rule; every section is optional and empty by default.
#[derive(serde::Deserialize, Debug, Default)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// Rules that drop spans.
    #[serde(default)]
    pub spans: SpanRules,
    /// Rules that drop log records.
    #[serde(default)]
    pub logs: LogRules,
    /// Rules that drop metric data points.
    #[serde(default)]
    pub data_points: DataPointRules,
    /// Drops all telemetry of resources with a matching attribute.
    #[serde(default)]
    pub resource_attributes: Vec<AttributeRule>,
}

/// Conditions under which a span is dropped (any one suffices).
#[derive(serde::Deserialize, Debug, Default)]
#[serde(deny_unknown_fields)]
pub struct SpanRules {
    /// Exact span names to drop.
    #[serde(default)]
    pub names: Vec<String>,
    /// Regexes searched for anywhere in the span name (anchor with `^`/`$` for a whole-name match).
    #[serde(default)]
    pub name_patterns: Vec<String>,
    /// Drops spans with an attribute matching any of these rules.
    #[serde(default)]
    pub attributes: Vec<AttributeRule>,
}

/// Conditions under which a log record is dropped (any one suffices).
#[derive(serde::Deserialize, Debug, Default)]
#[serde(deny_unknown_fields)]
pub struct LogRules {
    /// Drops records whose severity number is set and below this (9 = INFO).
    #[serde(default)]
    pub min_severity: Option<i32>,
    /// Regexes searched for in a string body; records with a matching body are dropped.
    #[serde(default)]
    pub body_patterns: Vec<String>,
    /// Drops records with an attribute matching any of these rules.
    #[serde(default)]
    pub attributes: Vec<AttributeRule>,
}

/// Conditions under which a metric data point is dropped (any one suffices); a
/// metric left without data points is removed.
#[derive(serde::Deserialize, Debug, Default)]
#[serde(deny_unknown_fields)]
pub struct DataPointRules {
    /// Exact metric names whose data points are all dropped.
    #[serde(default)]
    pub metric_names: Vec<String>,
    /// Regexes searched for in the metric name; all data points of a matching metric are dropped.
    #[serde(default)]
    pub metric_name_patterns: Vec<String>,
    /// Drops data points with an attribute matching any of these rules.
    #[serde(default)]
    pub attributes: Vec<AttributeRule>,
}

/// Matches an attribute by key and either an exact `value` or a `pattern`.
#[derive(serde::Deserialize, Debug)]
#[serde(deny_unknown_fields)]
pub struct AttributeRule {
    /// Attribute key to look up; with neither `value` nor `pattern` the rule matches when the key is present.
    pub key: String,
    /// Exact value to compare with (string, number or boolean; `200` and `200.0` both match the int 200).
    #[serde(default)]
    pub value: Option<serde_json::Value>,
    /// Regex searched for in a string value (non-string values never match); exclusive with `value`.
    #[serde(default)]
    pub pattern: Option<String>,
}

#[derive(Debug)]
enum Match {
    Exists,
    Equals(serde_json::Value),
    Pattern(Regex),
}

#[derive(Debug)]
struct AttributeMatcher {
    key: String,
    matcher: Match,
}

impl AttributeMatcher {
    fn compile(rules: Vec<AttributeRule>) -> Result<Vec<Self>, String> {
        rules
            .into_iter()
            .map(|rule| {
                let matcher = match (rule.value, rule.pattern) {
                    (Some(_), Some(_)) => {
                        return Err(format!("attribute rule for {:?}: give value or pattern, not both", rule.key));
                    }
                    (Some(value), None) => Match::Equals(value),
                    (None, Some(pattern)) => Match::Pattern(compile(&pattern)?),
                    (None, None) => Match::Exists,
                };
                Ok(AttributeMatcher { key: rule.key, matcher })
            })
            .collect()
    }

    fn matches(&self, attributes: Attributes<'_>) -> Result<bool, ViewError> {
        let Some(value) = find_attribute(attributes, &self.key)?.map(|kv| kv.get()).transpose()?.flatten() else {
            return Ok(false);
        };
        Ok(match &self.matcher {
            Match::Exists => true,
            Match::Equals(expected) => json_equals(value, expected),
            Match::Pattern(regex) => matches!(value, Value::String(s) if regex.is_match(s)),
        })
    }

    fn any_matches(matchers: &[Self], attributes: Attributes<'_>) -> Result<bool, ViewError> {
        for matcher in matchers {
            if matcher.matches(attributes.clone())? {
                return Ok(true);
            }
        }
        Ok(false)
    }
}

fn json_equals(value: Value<'_>, expected: &serde_json::Value) -> bool {
    match (value, expected) {
        (Value::String(s), serde_json::Value::String(e)) => s == e,
        (Value::Bool(b), serde_json::Value::Bool(e)) => b == *e,
        // `200` and `200.0` in the config both match the int 200.
        (Value::Int(i), serde_json::Value::Number(e)) => e.as_i64().map_or(e.as_f64() == Some(i as f64), |e| e == i),
        (Value::Double(d), serde_json::Value::Number(e)) => e.as_f64() == Some(d),
        _ => false,
    }
}

fn compile(pattern: &str) -> Result<Regex, String> {
    Regex::new(pattern).map_err(|e| format!("invalid pattern {pattern:?}: {e}"))
}

fn compile_all(patterns: &[String]) -> Result<Vec<Regex>, String> {
    patterns.iter().map(|p| compile(p)).collect()
}

/// The `filter` processor: the compiled [`Config`], applied to traces, logs and metrics in place.
#[derive(Debug)]
pub struct Filter {
    span_names: Vec<String>,
    span_name_patterns: Vec<Regex>,
    span_attributes: Vec<AttributeMatcher>,
    min_severity: Option<i32>,
    body_patterns: Vec<Regex>,
    log_attributes: Vec<AttributeMatcher>,
    metric_names: Vec<String>,
    metric_name_patterns: Vec<Regex>,
    point_attributes: Vec<AttributeMatcher>,
    resource_attributes: Vec<AttributeMatcher>,
}

impl Processor for Filter {
    type Config = Config;

    fn new(config: Config) -> Result<Self, String> {
        let filter = Filter {
            span_names: config.spans.names,
            span_name_patterns: compile_all(&config.spans.name_patterns)?,
            span_attributes: AttributeMatcher::compile(config.spans.attributes)?,
            min_severity: config.logs.min_severity,
            body_patterns: compile_all(&config.logs.body_patterns)?,
            log_attributes: AttributeMatcher::compile(config.logs.attributes)?,
            metric_names: config.data_points.metric_names,
            metric_name_patterns: compile_all(&config.data_points.metric_name_patterns)?,
            point_attributes: AttributeMatcher::compile(config.data_points.attributes)?,
            resource_attributes: AttributeMatcher::compile(config.resource_attributes)?,
        };
        Ok(filter)
    }

    /// Reads the request in place and removes what matches (the SDK's
    /// zero-decode view and splice editor): nothing is decoded or re-encoded.
    fn process_raw(&mut self, signal: Signal, otlp: Vec<u8>) -> Result<Outcome, ProcessError> {
        // Resource rules once per resource, not once per item.
        let mut resource_verdict: Option<(usize, bool)> = None;
        let mut drops_resource = |resource: Option<ResourceView<'_>>, at: usize| -> Result<bool, ViewError> {
            if let Some((cached_at, verdict)) = resource_verdict
                && cached_at == at
            {
                return Ok(verdict);
            }
            let verdict = match resource {
                Some(resource) => AttributeMatcher::any_matches(&self.resource_attributes, resource.attributes())?,
                None => false,
            };
            resource_verdict = Some((at, verdict));
            Ok(verdict)
        };
        let (outcome, dropped, counter) = match signal {
            Signal::Traces => {
                let (outcome, dropped) = retain_spans(&otlp, |rs, span| {
                    let drop = drops_resource(rs.resource()?, rs.location().body().start)? || self.drops_span(span)?;
                    Ok::<_, ViewError>(!drop)
                })?;
                (outcome, dropped, "filtered_spans")
            }
            Signal::Logs => {
                let (outcome, dropped) = retain_log_records(&otlp, |rl, record| {
                    let drop = drops_resource(rl.resource()?, rl.location().body().start)? || self.drops_log(record)?;
                    Ok::<_, ViewError>(!drop)
                })?;
                (outcome, dropped, "filtered_log_records")
            }
            Signal::Metrics => {
                let (outcome, dropped) = retain_data_points(&otlp, |rm, metric, attributes| {
                    let drop = drops_resource(rm.resource()?, rm.location().body().start)?
                        || self.drops_point(metric, attributes)?;
                    Ok::<_, ViewError>(!drop)
                })?;
                (outcome, dropped, "filtered_data_points")
            }
        };
        count(counter, dropped);
        Ok(outcome)
    }
}

/// Counts dropped items; nothing is sent to the host when nothing was dropped.
fn count(counter: &str, dropped: u64) {
    if dropped > 0 {
        host::counter(counter, dropped);
    }
}

impl Filter {
    fn drops_span(&self, span: &SpanView<'_>) -> Result<bool, ViewError> {
        let name = span.name()?;
        Ok(self.span_names.iter().any(|n| n == name)
            || self.span_name_patterns.iter().any(|p| p.is_match(name))
            || AttributeMatcher::any_matches(&self.span_attributes, span.attributes())?)
    }

    fn drops_log(&self, record: &LogRecordView<'_>) -> Result<bool, ViewError> {
        // Severity 0 means "unspecified": never dropped by min_severity.
        let severity = record.severity_number()?;
        if self.min_severity.is_some_and(|min| severity > 0 && severity < min) {
            return Ok(true);
        }
        if !self.body_patterns.is_empty()
            && let Some(body) = record.body()?
            && let Some(text) = body.as_str()?
            && self.body_patterns.iter().any(|p| p.is_match(text))
        {
            return Ok(true);
        }
        AttributeMatcher::any_matches(&self.log_attributes, record.attributes())
    }

    fn drops_point(&self, metric: &MetricView<'_>, attributes: Attributes<'_>) -> Result<bool, ViewError> {
        if !self.metric_names.is_empty() || !self.metric_name_patterns.is_empty() {
            let name = metric.name()?;
            if self.metric_names.iter().any(|n| n == name) || self.metric_name_patterns.iter().any(|p| p.is_match(name))
            {
                return Ok(true);
            }
        }
        AttributeMatcher::any_matches(&self.point_attributes, attributes)
    }
}

wasmtel_sdk::export_processor!(Filter, signals: [traces, metrics, logs], config_schema: "config.schema.json");

#[cfg(test)]
mod tests {
    use super::*;
    use wasmtel_sdk::otlp::common::v1::{AnyValue, KeyValue, any_value::Value};
    use wasmtel_sdk::otlp::logs::v1::{LogRecord, ResourceLogs, ScopeLogs};
    use wasmtel_sdk::otlp::metrics::v1::{Gauge, Metric, NumberDataPoint, ResourceMetrics, ScopeMetrics, metric::Data};
    use wasmtel_sdk::otlp::resource::v1::Resource;
    use wasmtel_sdk::otlp::trace::v1::{ResourceSpans, ScopeSpans, Span};
    use wasmtel_sdk::testing;

    fn attrs(pairs: &[(&str, &str)]) -> Vec<KeyValue> {
        let mut out = Vec::new();
        for (k, v) in pairs {
            out.set_str(k, *v);
        }
        out
    }

    fn traces(spans: &[(&str, &[(&str, &str)])]) -> ExportTraceServiceRequest {
        ExportTraceServiceRequest {
            resource_spans: vec![ResourceSpans {
                resource: Some(Resource { attributes: attrs(&[("service.name", "checkout")]), ..Default::default() }),
                scope_spans: vec![ScopeSpans {
                    spans: spans
                        .iter()
                        .map(|(name, a)| Span { name: name.to_string(), attributes: attrs(a), ..Default::default() })
                        .collect(),
                    ..Default::default()
                }],
                ..Default::default()
            }],
        }
    }

    fn filter(config: serde_json::Value) -> Filter {
        testing::new(&config.to_string()).unwrap()
    }

    fn span_names(request: &ExportTraceServiceRequest) -> Vec<String> {
        request
            .resource_spans
            .iter()
            .flat_map(|r| &r.scope_spans)
            .flat_map(|s| &s.spans)
            .map(|s| s.name.clone())
            .collect()
    }

    #[test]
    fn drops_health_checks_by_attribute_and_name_pattern() {
        let mut f = filter(serde_json::json!({
            "spans": { "attributes": [{ "key": "http.route", "value": "/health" }], "name_patterns": ["^GET /readyz"] }
        }));
        let input = traces(&[
            ("POST /api", &[("http.route", "/api")]),
            ("GET /health", &[("http.route", "/health")]),
            ("GET /readyz", &[]),
        ]);
        let (outcome, out) = testing::run_typed(&mut f, Signal::Traces, &input).unwrap();
        assert!(matches!(outcome, Outcome::Replaced(_)));
        assert_eq!(span_names(&out.unwrap()), vec!["POST /api"]);
    }

    #[test]
    fn all_filtered_is_dropped_and_none_filtered_is_unchanged() {
        let mut f = filter(serde_json::json!({ "spans": { "names": ["GET /health"] } }));
        let health = traces(&[("GET /health", &[])]);
        assert_eq!(testing::run_typed(&mut f, Signal::Traces, &health).unwrap().0, Outcome::Dropped);
        let other = traces(&[("GET /", &[])]);
        assert_eq!(testing::run_typed(&mut f, Signal::Traces, &other).unwrap().0, Outcome::Unchanged);
    }

    #[test]
    fn resource_rules_drop_whole_resources() {
        let mut f =
            filter(serde_json::json!({ "resource_attributes": [{ "key": "service.name", "pattern": "^check" }] }));
        assert_eq!(testing::run_typed(&mut f, Signal::Traces, &traces(&[("a", &[])])).unwrap().0, Outcome::Dropped);
    }

    #[test]
    fn logs_by_severity_and_body() {
        let record = |severity: i32, body: &str| LogRecord {
            severity_number: severity,
            body: Some(AnyValue { value: Some(Value::StringValue(body.into())) }),
            ..Default::default()
        };
        let input = ExportLogsServiceRequest {
            resource_logs: vec![ResourceLogs {
                scope_logs: vec![ScopeLogs {
                    log_records: vec![
                        record(5, "debug"),
                        record(9, "info"),
                        record(0, "unspecified"),
                        record(17, "GET /health ok"),
                    ],
                    ..Default::default()
                }],
                ..Default::default()
            }],
        };
        let mut f = filter(serde_json::json!({ "logs": { "min_severity": 9, "body_patterns": ["/health"] } }));
        let (_, out) = testing::run_typed(&mut f, Signal::Logs, &input).unwrap();
        let bodies: Vec<String> = out.unwrap().resource_logs[0].scope_logs[0]
            .log_records
            .iter()
            .map(|r| string_value(r.body.as_ref().unwrap()).unwrap().to_string())
            .collect();
        assert_eq!(bodies, vec!["info", "unspecified"]);
    }

    #[test]
    fn data_points_and_emptied_metrics() {
        let point = |route: &str| NumberDataPoint { attributes: attrs(&[("http.route", route)]), ..Default::default() };
        let gauge = |name: &str, routes: &[&str]| Metric {
            name: name.into(),
            data: Some(Data::Gauge(Gauge { data_points: routes.iter().map(|r| point(r)).collect() })),
            ..Default::default()
        };
        let input = ExportMetricsServiceRequest {
            resource_metrics: vec![ResourceMetrics {
                scope_metrics: vec![ScopeMetrics {
                    metrics: vec![gauge("latency", &["/api", "/health"]), gauge("debug.internal", &["/api"])],
                    ..Default::default()
                }],
                ..Default::default()
            }],
        };
        let mut f = filter(serde_json::json!({
            "data_points": { "metric_name_patterns": ["^debug\\."], "attributes": [{ "key": "http.route", "value": "/health" }] }
        }));
        let (_, out) = testing::run_typed(&mut f, Signal::Metrics, &input).unwrap();
        let metrics = &out.unwrap().resource_metrics[0].scope_metrics[0].metrics;
        assert_eq!(metrics.len(), 1, "the emptied metric is removed");
        let Some(Data::Gauge(g)) = &metrics[0].data else { panic!("gauge") };
        assert_eq!(g.data_points.len(), 1);
    }

    #[test]
    fn bad_configs_are_refused() {
        assert!(
            testing::new::<Filter>(r#"{"spans": {"name_patterns": ["["]}}"#).unwrap_err().contains("invalid pattern")
        );
        assert!(
            testing::new::<Filter>(r#"{"spans": {"attributes": [{"key": "a", "value": "x", "pattern": "y"}]}}"#)
                .unwrap_err()
                .contains("not both")
        );
        assert!(testing::new::<Filter>(r#"{"span": {}}"#).unwrap_err().contains("span"));
    }

    #[test]
    fn counters_count_dropped_items() {
        let mut f = filter(serde_json::json!({ "spans": { "names": ["GET /health"] } }));
        let input = traces(&[("GET /health", &[]), ("GET /health", &[]), ("GET /", &[])]);
        testing::run_typed(&mut f, Signal::Traces, &input).unwrap();
        testing::run_typed(&mut f, Signal::Traces, &input).unwrap();
        assert_eq!(wasmtel_sdk::host::counter_value("filtered_spans"), 4);
    }

    #[test]
    fn resource_rules_apply_to_logs_and_metrics_and_keep_other_resources() {
        use wasmtel_sdk::testing::{gauge, kv, log_record, point};
        let mut f =
            filter(serde_json::json!({ "resource_attributes": [{ "key": "deployment.environment", "value": "dev" }] }));
        let mut logs = testing::logs(vec![kv("deployment.environment", "dev")], vec![log_record(9, "a", vec![])]);
        let prod = testing::logs(vec![kv("deployment.environment", "prod")], vec![log_record(9, "b", vec![])]);
        logs.resource_logs.extend(prod.resource_logs);
        let (_, out) = testing::run_typed(&mut f, Signal::Logs, &logs).unwrap();
        let out = out.unwrap();
        assert_eq!(out.resource_logs.len(), 1, "the emptied resource is removed");
        assert_eq!(
            out.resource_logs[0].resource.as_ref().unwrap().attributes.get_str("deployment.environment"),
            Some("prod")
        );
        let metrics =
            testing::metrics(vec![kv("deployment.environment", "dev")], vec![gauge("g", vec![point(1, vec![])])]);
        assert_eq!(testing::run_typed(&mut f, Signal::Metrics, &metrics).unwrap().0, Outcome::Dropped);
        let metrics = testing::metrics(vec![], vec![gauge("g", vec![point(1, vec![])])]);
        assert_eq!(testing::run_typed(&mut f, Signal::Metrics, &metrics).unwrap().0, Outcome::Unchanged);
    }

    #[test]
    fn attribute_rules_exists_numbers_and_booleans() {
        use wasmtel_sdk::testing::{kv, span};
        let mut f = filter(serde_json::json!({ "spans": { "attributes": [
            { "key": "synthetic" },
            { "key": "http.response.status_code", "value": 404.0 },
            { "key": "cache.hit", "value": true },
        ] } }));
        let input = testing::traces(
            vec![],
            vec![
                span("a", vec![kv("synthetic", "yes")]),
                span("b", vec![kv("http.response.status_code", 404)]),
                span("c", vec![kv("http.response.status_code", 200)]),
                span("d", vec![kv("cache.hit", true)]),
                span("e", vec![kv("cache.hit", false), kv("http.response.status_code", "404")]),
            ],
        );
        let (_, out) = testing::run_typed(&mut f, Signal::Traces, &input).unwrap();
        assert_eq!(span_names(&out.unwrap()), vec!["c", "e"], "a string 404 is not the number 404");
    }
}
