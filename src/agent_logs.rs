//! Logs for Elastic Agent: one JSON object per line on stderr with `@timestamp`
//! (`2006-01-02T15:04:05.000Z` form), `log.level`, `message`, the event's fields, and `unit.id`
//! when the event names a unit, which is what the agent parses by default. The level can change
//! at run time (the agent sends it per unit).

use std::fmt;

use serde_json::{Map, Value};
use tracing::field::{Field, Visit};
use tracing::{Event, Subscriber};
use tracing_subscriber::fmt::format::Writer;
use tracing_subscriber::fmt::{FmtContext, FormatEvent, FormatFields};
use tracing_subscriber::registry::LookupSpan;
use tracing_subscriber::reload;

/// Changes the level of the logs while running.
pub(crate) type LevelHandle =
    reload::Handle<tracing_subscriber::EnvFilter, tracing_subscriber::Registry>;

/// Installs the JSON logger at `level` (`RUST_LOG` wins when set); returns the handle to change
/// the level later.
pub(crate) fn init(level: &str) -> LevelHandle {
    use tracing_subscriber::layer::SubscriberExt as _;
    use tracing_subscriber::util::SubscriberInitExt as _;
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(level));
    let (filter, handle) = reload::Layer::new(filter);
    let format = tracing_subscriber::fmt::layer()
        .with_writer(std::io::stderr)
        .with_ansi(false)
        .event_format(AgentJson);
    let _ = tracing_subscriber::registry()
        .with(filter)
        .with(format)
        .try_init();
    handle
}

/// Sets the level from the agent's unit log level (`error`, `warn`, `info`, `debug`, `trace`).
pub(crate) fn set_level(handle: &LevelHandle, level: &str) {
    if std::env::var_os("RUST_LOG").is_some() {
        return;
    }
    let _ = handle.modify(|filter| *filter = tracing_subscriber::EnvFilter::new(level));
}

/// The line format.
struct AgentJson;

impl<S, N> FormatEvent<S, N> for AgentJson
where
    S: Subscriber + for<'a> LookupSpan<'a>,
    N: for<'a> FormatFields<'a> + 'static,
{
    fn format_event(
        &self,
        _ctx: &FmtContext<'_, S, N>,
        mut writer: Writer<'_>,
        event: &Event<'_>,
    ) -> fmt::Result {
        let mut fields = FieldsToJson(Map::new());
        event.record(&mut fields);
        let mut line = Map::new();
        line.insert(
            "@timestamp".to_owned(),
            Value::String(
                chrono::Utc::now()
                    .format("%Y-%m-%dT%H:%M:%S%.3fZ")
                    .to_string(),
            ),
        );
        line.insert(
            "log.level".to_owned(),
            Value::String(event.metadata().level().as_str().to_ascii_lowercase()),
        );
        let message = fields
            .0
            .remove("message")
            .unwrap_or(Value::String(String::new()));
        line.insert("message".to_owned(), message);
        line.insert(
            "log.logger".to_owned(),
            Value::String(event.metadata().target().to_owned()),
        );
        for (key, value) in fields.0 {
            // `unit_id` in the code is `unit.id` for the agent's per-unit filtering.
            let key = if key == "unit_id" {
                "unit.id".to_owned()
            } else {
                key
            };
            line.insert(key, value);
        }
        writeln!(writer, "{}", Value::Object(line))
    }
}

struct FieldsToJson(Map<String, Value>);

impl Visit for FieldsToJson {
    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        self.0
            .insert(field.name().to_owned(), Value::String(format!("{value:?}")));
    }
    fn record_str(&mut self, field: &Field, value: &str) {
        self.0
            .insert(field.name().to_owned(), Value::String(value.to_owned()));
    }
    fn record_i64(&mut self, field: &Field, value: i64) {
        self.0.insert(field.name().to_owned(), Value::from(value));
    }
    fn record_u64(&mut self, field: &Field, value: u64) {
        self.0.insert(field.name().to_owned(), Value::from(value));
    }
    fn record_bool(&mut self, field: &Field, value: bool) {
        self.0.insert(field.name().to_owned(), Value::Bool(value));
    }
    fn record_error(&mut self, field: &Field, value: &(dyn std::error::Error + 'static)) {
        self.0
            .insert(field.name().to_owned(), Value::String(value.to_string()));
    }
}
