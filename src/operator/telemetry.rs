//! Structured logging: text or JSON, level from `RUST_LOG` or the `--log-level` flag.

use tracing_subscriber::EnvFilter;

use super::config::LogFormat;

/// Install the global subscriber; a second call (tests, `mk8 dev`) keeps the first one.
pub fn init(level: &str, format: LogFormat) {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(level));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    let _ = match format {
        LogFormat::Text => builder.try_init(),
        LogFormat::Json => builder.json().flatten_event(true).try_init(),
    };
}
