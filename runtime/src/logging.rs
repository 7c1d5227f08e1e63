//! The runtime's and its guests' log events as records, for hosts that hand
//! them to a logger of their own (the collector's zap logger, through the C
//! ABI or the subprocess bridge): one record per `tracing` event, with the
//! plugin it concerns.

use std::fmt::Write;

use tracing::field::{Field, Visit};
use tracing::{Event, Level, Subscriber};
use tracing_subscriber::layer::{Context, Layer};

/// One log event.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LogRecord {
    /// The event's level ([`level_name`](Self::level_name) maps it to the collector's names).
    pub level: Level,
    /// The plugin (its name as loaded: a collector's processor ID) the event
    /// concerns, if any.
    pub plugin: Option<String>,
    /// `stdout`, `stderr` or `log` for guest output.
    pub stream: Option<String>,
    /// The `tracing` target: the module that logged it, e.g. `wasmtel_runtime::plugin`.
    pub target: String,
    /// The message, followed by any other fields as ` key=value`.
    pub message: String,
}

impl LogRecord {
    /// The level as the collector's logger names it.
    pub fn level_name(&self) -> &'static str {
        match self.level {
            Level::TRACE | Level::DEBUG => "debug",
            Level::INFO => "info",
            Level::WARN => "warn",
            Level::ERROR => "error",
        }
    }
}

/// A layer that hands every event to `sink` as a [`LogRecord`].
pub struct RecordLayer<F>(F);

impl<F: Fn(LogRecord) + Send + Sync + 'static> RecordLayer<F> {
    /// A layer calling `sink` with each event's record, on the thread that logged it.
    pub fn new(sink: F) -> Self {
        RecordLayer(sink)
    }
}

impl<S: Subscriber, F: Fn(LogRecord) + Send + Sync + 'static> Layer<S> for RecordLayer<F> {
    fn on_event(&self, event: &Event<'_>, _context: Context<'_, S>) {
        let mut fields = Fields::default();
        event.record(&mut fields);
        let metadata = event.metadata();
        let mut message = fields.message;
        if !fields.rest.is_empty() {
            message.push_str(&fields.rest);
        }
        (self.0)(LogRecord {
            level: *metadata.level(),
            plugin: fields.plugin,
            stream: fields.stream,
            target: metadata.target().to_string(),
            message,
        });
    }
}

#[derive(Default)]
struct Fields {
    message: String,
    plugin: Option<String>,
    stream: Option<String>,
    rest: String,
}

impl Visit for Fields {
    fn record_str(&mut self, field: &Field, value: &str) {
        match field.name() {
            "message" => self.message = value.to_string(),
            "plugin" => self.plugin = Some(value.to_string()),
            "stream" => self.stream = Some(value.to_string()),
            name => {
                let _ = write!(self.rest, " {name}={value}");
            }
        }
    }

    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        match field.name() {
            "message" => self.message = format!("{value:?}"),
            "plugin" | "stream" => self.record_str(field, &format!("{value:?}")),
            name => {
                let _ = write!(self.rest, " {name}={value:?}");
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::{Arc, Mutex};

    use tracing_subscriber::layer::SubscriberExt;

    use super::*;

    #[test]
    fn events_become_records_with_their_plugin() {
        let records = Arc::new(Mutex::new(Vec::new()));
        let sink = records.clone();
        let subscriber =
            tracing_subscriber::registry().with(RecordLayer::new(move |record| sink.lock().unwrap().push(record)));
        tracing::subscriber::with_default(subscriber, || {
            tracing::warn!(plugin = "wasm/redact", stream = "stderr", "boom {}", 7);
            tracing::info!(dir = "/q", "plain");
        });
        let records = records.lock().unwrap();
        assert_eq!(records[0].level, Level::WARN);
        assert_eq!(records[0].plugin.as_deref(), Some("wasm/redact"));
        assert_eq!(records[0].stream.as_deref(), Some("stderr"));
        assert_eq!(records[0].message, "boom 7");
        assert_eq!((records[1].plugin.as_deref(), records[1].message.as_str()), (None, "plain dir=/q"));
        assert_eq!(records[1].level_name(), "info");
    }
}
