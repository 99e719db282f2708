//! Log output (SPEC §8 Running; issue 8, item 4): `VYPUSK_LOG` filter (default `info`),
//! `VYPUSK_LOG_FORMAT=json`, colours only when stderr is a terminal, and a non-blocking writer
//! so that a slow stderr (a full pipe, a stalled journal) never stalls a request: lines are
//! handed to a writer thread, and dropped rather than waited for when its buffer is full.

use std::io::IsTerminal;

use tracing_appender::non_blocking::{NonBlockingBuilder, WorkerGuard};

/// Installs the global subscriber. Keep the guard until the process ends: dropping it writes
/// the lines still buffered.
pub fn init() -> WorkerGuard {
    let filter = tracing_subscriber::EnvFilter::try_from_env("VYPUSK_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info,sqlx=warn"));
    let (writer, guard) = NonBlockingBuilder::default()
        .lossy(true)
        .thread_name("vypusk-log")
        // The writer thread flushes whenever it has written all it was sent: lines that pile
        // up under load leave in one `write` instead of one each.
        .finish(std::io::BufWriter::new(std::io::stderr()));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(std::io::stderr().is_terminal())
        .with_writer(writer);
    if std::env::var("VYPUSK_LOG_FORMAT").is_ok_and(|f| f == "json") {
        builder.json().init();
    } else {
        builder.init();
    }
    guard
}
