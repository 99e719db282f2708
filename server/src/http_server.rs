//! The connection loop that replaces `axum::serve` (issue 7, defect 3: no timeouts for slow or
//! stalled clients), with hyper 1 connections built by [`connection_builder`].
//!
//! - **Idle and header timeouts.** A connection with no request in flight is closed
//!   `idle_timeout` after its last answer (or after `accept`) if nothing of a next request has
//!   arrived, and `header_read_timeout` after the first byte of a request head that does not
//!   complete (slowloris). hyper's own `header_read_timeout` is left off: its clock starts when
//!   hyper begins waiting for a head, which on a keep-alive connection is the end of the previous
//!   answer, so it could not be told apart from the idle timeout.
//! - **Progress timeouts.** A request body that delivers no bytes for `body_progress_timeout`
//!   fails (the handler answers its error and hyper closes the connection); a connection whose
//!   answer the client has not read for that long is closed. Both measure progress, not total
//!   time, so multi-GiB uploads on slow links still work.
//! - **Connection limit** below the open-file limit ([`connections_for_files`]). At the limit
//!   each new connection sheds the oldest connection that has no request in flight (idle, or
//!   still reading its head), so a flood of stalled connections cannot lock well-behaved clients
//!   out. An `accept` error such as EMFILE lowers the limit below the connections open, sheds
//!   down to it and backs off instead of spinning.
//! - **Shutdown**: stop accepting, close connections without a request in flight, let in-flight
//!   requests and downloads finish (hyper's graceful shutdown), then return.

use std::collections::BTreeMap;
use std::convert::Infallible;
use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll, ready};
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::extract::ConnectInfo;
use axum::http::Request;
use bytes::Bytes;
use http_body::{Body as HttpBody, Frame, SizeHint};
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper_util::rt::TokioIo;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{Notify, watch};
use tokio::time::{Instant, Sleep};
use tower::ServiceExt;

use crate::config::Settings;

/// File descriptors kept back from connections for the database pool, storage, logs and keys.
pub const RESERVED_FILES: u64 = 64;
/// Upper bound of the derived default, so a huge hard limit does not invite unbounded memory.
pub const MAX_DERIVED_CONNECTIONS: u64 = 16_384;
/// Files freed for other uses when `accept` fails for lack of them: a sixteenth of the
/// connections open, at least this many.
const MIN_FILE_HEADROOM: usize = 16;
/// Longest pause between attempts after `accept` failed for lack of resources.
const MAX_ACCEPT_BACKOFF: Duration = Duration::from_secs(1);
/// At most one warning about shedding or `accept` errors per this interval.
const WARN_INTERVAL: Duration = Duration::from_secs(10);
/// No timestamp (`u64::MAX` milliseconds).
const NEVER: u64 = u64::MAX;

/// Timeouts and the connection limit, from [`Settings`].
#[derive(Debug, Clone, Copy)]
pub struct ConnectionLimits {
    pub header_read_timeout: Duration,
    pub idle_timeout: Duration,
    pub body_progress_timeout: Duration,
    pub max_connections: usize,
    /// The soft `RLIMIT_NOFILE` in force, for the startup message.
    pub open_file_limit: u64,
}

impl ConnectionLimits {
    /// Settings as given; `max_connections` unset means what the open-file limit allows (see
    /// [`raise_open_file_limit`]).
    pub fn from_settings(settings: &Settings) -> ConnectionLimits {
        let open_file_limit = raise_open_file_limit();
        let allowed = connections_for_files(open_file_limit);
        let max_connections = match settings.max_connections {
            Some(configured) => {
                if configured > allowed {
                    tracing::warn!(
                        max_connections = configured,
                        allowed,
                        "max_connections exceeds what the open-file limit allows; \
                         accept errors will shed idle connections"
                    );
                }
                configured
            }
            None => allowed,
        };
        ConnectionLimits {
            header_read_timeout: Duration::from_secs(settings.header_read_timeout_secs),
            idle_timeout: Duration::from_secs(settings.idle_timeout_secs),
            body_progress_timeout: Duration::from_secs(settings.body_progress_timeout_secs),
            max_connections,
            open_file_limit,
        }
    }
}

/// Raises the soft open-file limit towards the hard one, as far as the largest derived
/// connection limit needs, and returns the soft limit then in force.
pub fn raise_open_file_limit() -> u64 {
    let wanted = 2 * MAX_DERIVED_CONNECTIONS + RESERVED_FILES;
    match rlimit::increase_nofile_limit(wanted) {
        Ok(files) => files,
        Err(e) => {
            tracing::warn!(error = %e, "cannot read or raise the open-file limit; assuming 1024");
            1024
        }
    }
}

/// Connections that `files` open files allow: half of what remains after [`RESERVED_FILES`],
/// since a connection may hold one storage file open while it uploads or downloads.
pub fn connections_for_files(files: u64) -> usize {
    let connections = (files.saturating_sub(RESERVED_FILES) / 2).clamp(16, MAX_DERIVED_CONNECTIONS);
    usize::try_from(connections).unwrap_or(16)
}

/// The HTTP/1 connection settings, in one place (issue 9 will set `title_case_headers` here).
pub fn connection_builder() -> http1::Builder {
    let mut builder = http1::Builder::new();
    // `ConnectionTask::run` times heads; see the module documentation.
    builder.header_read_timeout(None);
    // A BSL client's `Ответ.Заголовки` is a case-sensitive map: `Licence-Signature`, not
    // `licence-signature`, is the name seed 000 documents (SPEC §4.1, issue 9).
    builder.title_case_headers(true);
    builder
}

/// Serves `app` on `listener` until `shutdown` resolves, then waits for in-flight requests.
pub async fn serve(
    listener: TcpListener,
    app: Router,
    limits: ConnectionLimits,
    shutdown: impl Future<Output = ()> + Send + 'static,
) {
    let registry = Arc::new(Registry::default());
    let builder = Arc::new(connection_builder());
    // Every connection task holds a receiver; `closed()` resolves when the last one ends.
    let (stop_tx, stop_rx) = watch::channel(false);
    tokio::pin!(shutdown);
    let mut backoff = Duration::from_millis(10);
    // Lowered below the configured limit when `accept` runs out of files.
    let mut max_connections = limits.max_connections;
    loop {
        let accepted = tokio::select! {
            accepted = listener.accept() => accepted,
            () = &mut shutdown => break,
        };
        let (stream, remote) = match accepted {
            Ok(accepted) => {
                backoff = Duration::from_millis(10);
                // An answer is written whole in one go: Nagle's algorithm would only hold its
                // last partial segment back until the previous ones are acknowledged.
                if let Err(e) = accepted.0.set_nodelay(true) {
                    tracing::debug!(error = %e, "cannot set TCP_NODELAY");
                }
                accepted
            }
            Err(e) if is_connection_error(&e) => continue,
            Err(e) => {
                // EMFILE and friends: the limit was set higher than the files allow (or
                // storage holds more files than reserved). Lower the limit below what is open
                // now, so that later connections shed before `accept` fails, make room, and
                // wait a little instead of a busy loop.
                let open = registry.len();
                let lowered = open
                    .saturating_sub((open / 16).max(MIN_FILE_HEADROOM))
                    .max(1);
                if lowered < max_connections {
                    tracing::warn!(
                        error = %e,
                        from = max_connections,
                        to = lowered,
                        "accept failed: lowering max_connections"
                    );
                    max_connections = lowered;
                } else {
                    registry.warn_rate_limited(|| {
                        tracing::warn!(error = %e, "accept failed; shedding idle connections");
                    });
                }
                for _ in 0..open.saturating_sub(max_connections).max(1) {
                    if !registry.shed_oldest_idle(max_connections) {
                        break;
                    }
                }
                tokio::select! {
                    () = tokio::time::sleep(backoff) => {}
                    () = &mut shutdown => break,
                }
                backoff = (backoff * 2).min(MAX_ACCEPT_BACKOFF);
                continue;
            }
        };
        // At the limit: shed the oldest connection without a request in flight, or wait for
        // one to end when every connection is busy.
        loop {
            if registry.len() < max_connections || registry.shed_oldest_idle(max_connections) {
                break;
            }
            tokio::select! {
                () = registry.released.notified() => {}
                () = &mut shutdown => {
                    drop(stream);
                    return finish(listener, stop_tx, stop_rx).await;
                }
            }
        }
        let activity = registry.insert(limits);
        let task = ConnectionTask {
            activity,
            registry: registry.clone(),
            builder: builder.clone(),
            app: app.clone(),
            remote,
            limits,
            stop: stop_rx.clone(),
        };
        tokio::spawn(task.run(stream));
    }
    finish(listener, stop_tx, stop_rx).await
}

async fn finish(
    listener: TcpListener,
    stop_tx: watch::Sender<bool>,
    stop_rx: watch::Receiver<bool>,
) {
    drop(listener);
    drop(stop_rx);
    let _ = stop_tx.send(true);
    stop_tx.closed().await;
}

/// Errors of one incoming connection (it went away before we took it), not of the listener.
fn is_connection_error(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::ConnectionRefused
            | io::ErrorKind::ConnectionAborted
            | io::ErrorKind::ConnectionReset
            | io::ErrorKind::Interrupted
            | io::ErrorKind::WouldBlock
    )
}

/// The open connections, oldest first (ids grow with each `accept`).
#[derive(Default)]
struct Registry {
    connections: Mutex<BTreeMap<u64, Arc<Activity>>>,
    next_id: AtomicU64,
    /// A connection ended: the accept loop may be waiting for a free slot.
    released: Notify,
    shed_total: AtomicU64,
    last_warning: Mutex<Option<std::time::Instant>>,
}

impl Registry {
    fn len(&self) -> usize {
        self.lock().len()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, BTreeMap<u64, Arc<Activity>>> {
        self.connections
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn insert(&self, limits: ConnectionLimits) -> Arc<Activity> {
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let activity = Arc::new(Activity::new(id, limits));
        self.lock().insert(id, activity.clone());
        activity
    }

    fn remove(&self, id: u64) {
        if self.lock().remove(&id).is_some() {
            self.released.notify_one();
        }
    }

    /// Closes the oldest connection that has no request in flight; false when every
    /// connection is busy.
    fn shed_oldest_idle(&self, max_connections: usize) -> bool {
        let shed = {
            let mut connections = self.lock();
            let id = connections
                .iter()
                .find(|(_, a)| a.is_idle())
                .map(|(id, _)| *id);
            id.and_then(|id| connections.remove(&id))
        };
        let Some(activity) = shed else {
            return false;
        };
        activity.shed.notify_one();
        let total = self.shed_total.fetch_add(1, Ordering::Relaxed) + 1;
        self.warn_rate_limited(|| {
            tracing::warn!(
                max_connections,
                shed_total = total,
                "connection limit reached: closing the oldest idle connections"
            );
        });
        true
    }

    fn warn_rate_limited(&self, warn: impl FnOnce()) {
        let mut last = self
            .last_warning
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let now = std::time::Instant::now();
        if last.is_none_or(|at| now.duration_since(at) >= WARN_INTERVAL) {
            *last = Some(now);
            warn();
        }
    }
}

/// What one connection is doing, shared by its socket wrapper, its requests and its watchdog.
/// Times are milliseconds since `origin` (the `accept`), [`NEVER`] when unset.
struct Activity {
    id: u64,
    origin: Instant,
    in_flight: AtomicUsize,
    /// End of the last answer (0: the connection is new).
    idle_since: AtomicU64,
    /// First byte received since `idle_since`: a request head is arriving.
    head_started: AtomicU64,
    /// A write to the client has been waiting for socket space since then.
    write_blocked_since: AtomicU64,
    /// When the watchdog wakes next; an event whose deadline is earlier wakes it sooner.
    watch_until: AtomicU64,
    /// The watchdog's deadline moved earlier than `watch_until`.
    changed: Notify,
    limits: ConnectionLimits,
    /// Set by the accept loop to close this connection now.
    shed: Notify,
}

impl Activity {
    fn new(id: u64, limits: ConnectionLimits) -> Activity {
        Activity {
            id,
            origin: Instant::now(),
            in_flight: AtomicUsize::new(0),
            idle_since: AtomicU64::new(0),
            head_started: AtomicU64::new(NEVER),
            write_blocked_since: AtomicU64::new(NEVER),
            watch_until: AtomicU64::new(NEVER),
            changed: Notify::new(),
            limits,
            shed: Notify::new(),
        }
    }

    fn now_ms(&self) -> u64 {
        u64::try_from(self.origin.elapsed().as_millis()).unwrap_or(NEVER - 1)
    }

    fn at(&self, ms: u64) -> Instant {
        self.origin + Duration::from_millis(ms)
    }

    fn ms(&self, at: Instant) -> u64 {
        u64::try_from(at.saturating_duration_since(self.origin).as_millis()).unwrap_or(NEVER - 1)
    }

    /// Records a state change (`store`) and wakes the watchdog only if `timeout` from now ends
    /// before it would wake anyway, so busy keep-alive connections cost no wake-up per request.
    /// Every such change happens while the connection task polls hyper's connection, after the
    /// watchdog stored `watch_until` for this round.
    fn note(&self, store: impl FnOnce(u64), timeout: Duration) {
        let now = self.now_ms();
        store(now);
        let due = now.saturating_add(u64::try_from(timeout.as_millis()).unwrap_or(NEVER));
        if due < self.watch_until.load(Ordering::SeqCst) {
            self.changed.notify_one();
        }
    }

    /// When the connection must be closed unless something happens first, and whether that
    /// deadline is final (`false`: just look again then).
    fn deadline(&self) -> (Instant, bool) {
        let limits = &self.limits;
        let blocked = self.write_blocked_since.load(Ordering::SeqCst);
        if blocked != NEVER {
            return (self.at(blocked) + limits.body_progress_timeout, true);
        }
        if self.in_flight.load(Ordering::SeqCst) == 0 {
            let head = self.head_started.load(Ordering::SeqCst);
            return if head != NEVER {
                (self.at(head) + limits.header_read_timeout, true)
            } else {
                let idle = self.idle_since.load(Ordering::SeqCst);
                (self.at(idle) + limits.idle_timeout, true)
            };
        }
        // Busy and moving: look again after the shortest timeout, so that any event (which
        // happens later) has a deadline after this one and needs no wake-up.
        let shortest = limits
            .header_read_timeout
            .min(limits.idle_timeout)
            .min(limits.body_progress_timeout);
        (Instant::now() + shortest, false)
    }

    /// Nothing in flight and nothing left to write: closing it loses no answer.
    fn is_idle(&self) -> bool {
        self.in_flight.load(Ordering::Acquire) == 0
            && self.write_blocked_since.load(Ordering::Acquire) == NEVER
    }

    fn request_started(self: &Arc<Self>) -> InFlight {
        self.in_flight.fetch_add(1, Ordering::AcqRel);
        InFlight(self.clone())
    }
}

/// One request from its head to the end of its answer; dropping it may start an idle period.
struct InFlight(Arc<Activity>);

impl Drop for InFlight {
    fn drop(&mut self) {
        let activity = &self.0;
        activity.note(
            |now| {
                activity.idle_since.store(now, Ordering::SeqCst);
                activity.head_started.store(NEVER, Ordering::SeqCst);
                activity.in_flight.fetch_sub(1, Ordering::SeqCst);
            },
            activity.limits.idle_timeout,
        );
    }
}

struct ConnectionTask {
    activity: Arc<Activity>,
    registry: Arc<Registry>,
    builder: Arc<http1::Builder>,
    app: Router,
    remote: SocketAddr,
    limits: ConnectionLimits,
    stop: watch::Receiver<bool>,
}

impl ConnectionTask {
    async fn run(mut self, stream: TcpStream) {
        let activity = self.activity.clone();
        let io = TokioIo::new(TrackedIo {
            inner: stream,
            activity: activity.clone(),
        });
        let (app, remote, progress) = (
            self.app.clone(),
            self.remote,
            self.limits.body_progress_timeout,
        );
        let service = hyper::service::service_fn(move |request: Request<Incoming>| {
            let in_flight = activity.request_started();
            let mut request =
                request.map(|body| Body::new(ProgressTimeoutBody::new(body, progress)));
            request.extensions_mut().insert(ConnectInfo(remote));
            let app = app.clone();
            async move {
                let response = app.oneshot(request).await?;
                Ok::<_, Infallible>(response.map(|body| {
                    Body::new(InFlightBody {
                        inner: body,
                        _in_flight: in_flight,
                    })
                }))
            }
        });
        let connection = self.builder.serve_connection(io, service);
        tokio::pin!(connection);
        let mut stopping = false;
        loop {
            // Shutting down: a connection with nothing in flight (idle, or a head still
            // trickling in) is closed now rather than when its timeout expires.
            if stopping && self.activity.is_idle() {
                break;
            }
            let (deadline, is_final) = self.activity.deadline();
            self.activity
                .watch_until
                .store(self.activity.ms(deadline), Ordering::SeqCst);
            tokio::select! {
                result = connection.as_mut() => {
                    if let Err(e) = result {
                        tracing::debug!(error = %e, remote = %self.remote, "connection ended with an error");
                    }
                    break;
                }
                () = self.activity.shed.notified() => break,
                () = self.activity.changed.notified() => {}
                () = tokio::time::sleep_until(deadline) => {
                    if is_final && self.activity.deadline().0 <= Instant::now() {
                        tracing::debug!(remote = %self.remote, "closing a stalled or idle connection");
                        break;
                    }
                }
                _ = self.stop.changed(), if !stopping => {
                    stopping = true;
                    connection.as_mut().graceful_shutdown();
                }
            }
        }
        self.registry.remove(self.activity.id);
    }
}

/// The socket, noting when bytes arrive and when writes wait for the client.
struct TrackedIo {
    inner: TcpStream,
    activity: Arc<Activity>,
}

impl TrackedIo {
    fn note_write(&self, poll: &Poll<io::Result<usize>>) {
        let activity = &self.activity;
        let blocked = &activity.write_blocked_since;
        if poll.is_pending() {
            if blocked.load(Ordering::SeqCst) == NEVER {
                activity.note(
                    |now| blocked.store(now, Ordering::SeqCst),
                    activity.limits.body_progress_timeout,
                );
            }
        } else if blocked.load(Ordering::SeqCst) != NEVER {
            // The rest of an answer went out: an idle period starts now, not when hyper
            // finished reading the answer's body.
            activity.note(
                |now| {
                    blocked.store(NEVER, Ordering::SeqCst);
                    if activity.in_flight.load(Ordering::SeqCst) == 0 {
                        activity.idle_since.store(now, Ordering::SeqCst);
                    }
                },
                activity.limits.idle_timeout,
            );
        }
    }
}

impl AsyncRead for TrackedIo {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        let before = buf.filled().len();
        let result = ready!(Pin::new(&mut this.inner).poll_read(cx, buf));
        let activity = &this.activity;
        if buf.filled().len() > before
            && activity.in_flight.load(Ordering::SeqCst) == 0
            && activity.head_started.load(Ordering::SeqCst) == NEVER
        {
            activity.note(
                |now| activity.head_started.store(now, Ordering::SeqCst),
                activity.limits.header_read_timeout,
            );
        }
        Poll::Ready(result)
    }
}

impl AsyncWrite for TrackedIo {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        let poll = Pin::new(&mut this.inner).poll_write(cx, buf);
        this.note_write(&poll);
        poll
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        let poll = Pin::new(&mut this.inner).poll_write_vectored(cx, bufs);
        this.note_write(&poll);
        poll
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_shutdown(cx)
    }
}

/// The request body failed because the client sent nothing for the progress timeout.
#[derive(Debug, thiserror::Error)]
#[error("no bytes of the request body arrived for {0:?}")]
pub struct BodyStalled(Duration);

/// A request body whose frames must keep coming: waiting longer than `timeout` for the next one
/// is an error. The clock runs only while the handler is waiting for data.
struct ProgressTimeoutBody {
    inner: Incoming,
    timeout: Duration,
    /// Armed while waiting; allocated once, reset for each wait.
    stall: Option<Pin<Box<Sleep>>>,
    waiting: bool,
}

impl ProgressTimeoutBody {
    fn new(inner: Incoming, timeout: Duration) -> Self {
        ProgressTimeoutBody {
            inner,
            timeout,
            stall: None,
            waiting: false,
        }
    }
}

impl HttpBody for ProgressTimeoutBody {
    type Data = Bytes;
    type Error = axum::BoxError;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Self::Error>>> {
        let this = self.get_mut();
        if let Poll::Ready(frame) = Pin::new(&mut this.inner).poll_frame(cx) {
            this.waiting = false;
            return Poll::Ready(frame.map(|f| f.map_err(Into::into)));
        }
        let deadline = Instant::now() + this.timeout;
        let stall = this
            .stall
            .get_or_insert_with(|| Box::pin(tokio::time::sleep_until(deadline)));
        if !this.waiting {
            this.waiting = true;
            stall.as_mut().reset(deadline);
        }
        if stall.as_mut().poll(cx).is_ready() {
            this.waiting = false;
            return Poll::Ready(Some(Err(BodyStalled(this.timeout).into())));
        }
        Poll::Pending
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

/// An answer's body that keeps its request counted as in flight until hyper drops it.
struct InFlightBody {
    inner: Body,
    _in_flight: InFlight,
}

impl HttpBody for InFlightBody {
    type Data = Bytes;
    type Error = axum::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Self::Error>>> {
        Pin::new(&mut self.get_mut().inner).poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn derived_limit_leaves_room_for_files_of_every_connection() {
        assert_eq!(connections_for_files(1024), 480);
        assert_eq!(connections_for_files(10), 16);
        assert_eq!(
            connections_for_files(1 << 20),
            MAX_DERIVED_CONNECTIONS as usize
        );
    }

    fn limits() -> ConnectionLimits {
        ConnectionLimits {
            header_read_timeout: Duration::from_secs(10),
            idle_timeout: Duration::from_secs(20),
            body_progress_timeout: Duration::from_secs(30),
            max_connections: 3,
            open_file_limit: 1024,
        }
    }

    #[test]
    fn deadline_follows_what_the_connection_is_doing() {
        let a = Arc::new(Activity::new(0, limits()));
        let secs = |at: Instant| at.duration_since(a.origin).as_secs();
        // New and silent: idle timeout from accept.
        assert_eq!((secs(a.deadline().0), a.deadline().1), (20, true));
        // A head starts arriving: header timeout from its first byte.
        a.note(
            |now| a.head_started.store(now, Ordering::SeqCst),
            Duration::ZERO,
        );
        assert_eq!((secs(a.deadline().0), a.deadline().1), (10, true));
        // In flight: no final deadline, look again after the shortest timeout.
        let request = a.request_started();
        assert_eq!((secs(a.deadline().0), a.deadline().1), (10, false));
        assert!(!a.is_idle());
        // Answered: idle again, from the answer's end, and nothing of a next head yet.
        drop(request);
        assert_eq!(a.head_started.load(Ordering::SeqCst), NEVER);
        assert_eq!((secs(a.deadline().0), a.deadline().1), (20, true));
        // An answer the client does not read: progress timeout, and not sheddable.
        a.write_blocked_since.store(0, Ordering::SeqCst);
        assert_eq!((secs(a.deadline().0), a.deadline().1), (30, true));
        assert!(!a.is_idle());
    }

    #[test]
    fn sheds_the_oldest_connection_without_a_request_in_flight() {
        let registry = Registry::default();
        let busy = registry.insert(limits());
        let _request = busy.request_started();
        let idle_old = registry.insert(limits());
        let idle_new = registry.insert(limits());
        assert!(registry.shed_oldest_idle(3));
        let left: Vec<u64> = registry.lock().keys().copied().collect();
        assert_eq!(
            left,
            [busy.id, idle_new.id],
            "{} was the oldest idle",
            idle_old.id
        );
        assert!(registry.shed_oldest_idle(3));
        assert!(
            !registry.shed_oldest_idle(3),
            "the busy connection is never shed"
        );
    }
}
