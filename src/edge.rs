//! HTTP surface: viewer WebSockets (`/ws/{room}`), health, readiness and metrics.

use crate::metrics::Metrics;
use crate::model::{EndReason, JoinRequest, ProtocolError, Refusal, ResumeFrom, SessionId};
use crate::room::protocol::parse_client_message;
use crate::rooms::{CloseSignal, FrameQueue, Rooms, SessionQueue, SessionSink, Text};
use axum::extract::ws::{CloseFrame, Message, Utf8Bytes, WebSocket, WebSocketUpgrade};
use axum::extract::{Path, RawQuery, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use futures_util::{SinkExt, StreamExt};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{Notify, OwnedSemaphorePermit, Semaphore};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tracing::Instrument;

/// Most frames written per flush (one syscall for many frames).
const MAX_BATCH: usize = 256;
/// A write that cannot complete in this time means the viewer is gone or not reading.
const WRITE_TIMEOUT: Duration = Duration::from_secs(10);
/// The server pings an otherwise quiet connection this often...
const PING_EVERY: Duration = Duration::from_secs(30);
/// ...and closes it when nothing at all arrived for this long.
const IDLE_LIMIT: Duration = Duration::from_secs(90);
/// Hard cap on one WebSocket message; larger ones end the connection (1009).
const HARD_MESSAGE_LIMIT: usize = 64 * 1024;

/// The one place where a domain reason becomes a WebSocket close code (docs/protocol.md).
pub fn close_code(reason: EndReason) -> u16 {
    match reason {
        EndReason::ShuttingDown | EndReason::IdleTimeout => 1001,
        EndReason::Protocol => 1002,
        EndReason::InvalidData => 1007,
        EndReason::MessageTooBig => 1009,
        EndReason::BadRequest => 4400,
        EndReason::ServerFull | EndReason::RoomUnavailable => 1013,
        EndReason::Unauthenticated => 4001,
        EndReason::Forbidden | EndReason::Revoked => 4003,
        EndReason::RoomNotFound => 4004,
        EndReason::SlowConsumer => 4008,
        EndReason::RoomEnded => 4010,
        EndReason::Abuse => 4029,
    }
}

#[derive(Clone)]
pub struct EdgeState {
    pub rooms: Arc<dyn Rooms>,
    pub metrics: Arc<Metrics>,
    pub connections: Arc<Semaphore>,
    /// Sessions per client address (`--max-connections-per-ip`).
    pub per_ip: Arc<crate::peer::PerIp>,
    pub max_message_bytes: usize,
    pub outbound_queue: usize,
    /// Least time between two flushes of one connection (write coalescing; zero: off).
    pub write_delay: Duration,
    /// Cancelled when the node drains: no new sessions; open ones are closed by their rooms.
    pub draining: CancellationToken,
    /// Every session task; the drain waits for them.
    pub sessions: TaskTracker,
    /// What must answer before this node is ready (the store; in a cluster, NATS too).
    pub dependencies: Arc<dyn Dependencies>,
}

/// The services a node needs, checked by `/readyz`.
#[async_trait::async_trait]
pub trait Dependencies: Send + Sync {
    /// `Err` names the first one that does not answer, and why.
    async fn check(&self) -> Result<(), String>;
}

pub fn router(state: EdgeState) -> Router {
    Router::new()
        .route("/healthz", get(|| async { "ok\n" }))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics))
        .route("/ws/{room}", get(ws_upgrade))
        .with_state(state)
}

async fn readyz(State(s): State<EdgeState>) -> Response {
    if s.draining.is_cancelled() {
        return (StatusCode::SERVICE_UNAVAILABLE, "draining\n").into_response();
    }
    match s.dependencies.check().await {
        Ok(()) => "ready\n".into_response(),
        Err(why) => (
            StatusCode::SERVICE_UNAVAILABLE,
            format!("not ready: {why}\n"),
        )
            .into_response(),
    }
}

async fn metrics(State(s): State<EdgeState>) -> Response {
    (
        [(
            header::CONTENT_TYPE,
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
        )],
        s.metrics.render(),
    )
        .into_response()
}

/// The query of a WebSocket URL, read leniently: a bad value is refused after the upgrade,
/// with a close code and reason a browser can see (an HTTP error before the upgrade shows
/// up there only as 1006).
#[derive(Default)]
struct RawWsParams {
    token: Option<String>,
    last_seq: Option<String>,
    epoch: Option<String>,
}

pub struct WsParams {
    last_seq: Option<u64>,
    epoch: Option<String>,
}

impl RawWsParams {
    fn parse(query: &str) -> RawWsParams {
        let mut p = RawWsParams::default();
        for (k, v) in url::form_urlencoded::parse(query.as_bytes()) {
            let slot = match &*k {
                "token" => &mut p.token,
                "last_seq" => &mut p.last_seq,
                "epoch" => &mut p.epoch,
                // Other parameters (a cache buster, tracking) are none of our business.
                _ => continue,
            };
            slot.get_or_insert_with(|| v.into_owned());
        }
        p
    }

    fn check(self) -> Result<WsParams, Refusal> {
        let last_seq = match self.last_seq.as_deref() {
            None => None,
            Some(v) => Some(v.parse::<u64>().map_err(|_| {
                Refusal::new(
                    EndReason::BadRequest,
                    format!("last_seq must be a whole number of 0 or more, not {v:?}"),
                )
            })?),
        };
        if let Some(e) = &self.epoch {
            if e.is_empty() || e.len() > 64 || !e.bytes().all(|b| b.is_ascii_alphanumeric()) {
                return Err(Refusal::new(
                    EndReason::BadRequest,
                    "epoch must be the 1 to 64 letters and digits of a welcome's `epoch`",
                ));
            }
        }
        if self.epoch.is_some() && last_seq.is_none() {
            return Err(Refusal::new(
                EndReason::BadRequest,
                "epoch is given without last_seq: resume needs both",
            ));
        }
        Ok(WsParams {
            last_seq,
            epoch: self.epoch,
        })
    }
}

async fn ws_upgrade(
    State(s): State<EdgeState>,
    Path(room): Path<String>,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
    axum::extract::ConnectInfo(peer): axum::extract::ConnectInfo<std::net::SocketAddr>,
    ws: WebSocketUpgrade,
) -> Response {
    let from = crate::peer::client_address(&headers, Some(peer));
    let held = s.per_ip.session(from);
    let raw = RawWsParams::parse(query.as_deref().unwrap_or(""));
    let token = raw.token.clone();
    let params = raw.check();
    let token = token.or_else(|| {
        headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "))
            .map(str::to_string)
    });
    let permit = s.connections.clone().try_acquire_owned().ok();
    ws.read_buffer_size(4096)
        .write_buffer_size(16 * 1024)
        .max_write_buffer_size(1024 * 1024)
        .max_message_size(HARD_MESSAGE_LIMIT)
        .max_frame_size(HARD_MESSAGE_LIMIT)
        .on_upgrade(move |socket| {
            let tracker = s.sessions.clone();
            tracker.track_future(async move {
                let Some(permit) = permit else {
                    let why = Refusal::new(EndReason::ServerFull, "server full");
                    s.metrics.closed(close_code(why.reason));
                    close_now(socket, &why).await;
                    return;
                };
                let Some(_held) = held else {
                    let why = Refusal::new(
                        EndReason::ServerFull,
                        format!(
                            "too many connections from {from} (at most {}); close one and retry",
                            s.per_ip.limit()
                        ),
                    );
                    s.metrics.closed(close_code(why.reason));
                    close_now(socket, &why).await;
                    return;
                };
                if s.draining.is_cancelled() {
                    let why = Refusal::new(EndReason::ShuttingDown, "server shutting down");
                    close_now(socket, &why).await;
                    return;
                }
                let params = match params {
                    Ok(p) => p,
                    Err(why) => {
                        s.metrics.closed(close_code(why.reason));
                        close_now(socket, &why).await;
                        return;
                    }
                };
                run_session(s, socket, room, token, params, permit).await;
            })
        })
}

fn close_frame(why: &Refusal) -> Message {
    Message::Close(Some(CloseFrame {
        code: close_code(why.reason),
        reason: Utf8Bytes::from(why.message.as_str()),
    }))
}

async fn close_now(mut socket: WebSocket, why: &Refusal) {
    let _ = socket.send(close_frame(why)).await;
    // Wait briefly for the client's close reply so the reason is delivered.
    let _ = tokio::time::timeout(Duration::from_secs(2), async {
        while let Some(Ok(m)) = socket.next().await {
            if matches!(m, Message::Close(_)) {
                break;
            }
        }
    })
    .await;
}

async fn run_session(
    s: EdgeState,
    socket: WebSocket,
    room: String,
    token: Option<String>,
    params: WsParams,
    _permit: OwnedSemaphorePermit,
) {
    let metrics = s.metrics.clone();
    let token = token.unwrap_or_default();
    let viewer = match s.rooms.check_viewer_token(&room, &token).await {
        Ok(v) => v,
        Err(why) => {
            metrics.closed(close_code(why.reason));
            close_now(socket, &why).await;
            return;
        }
    };
    let session = s.rooms.new_session_id();
    let span = tracing::debug_span!("session", room = %room, %session, viewer = %viewer.viewer_id);
    async move {
        let (sink, queue) = SessionSink::new(s.outbound_queue);
        let SessionQueue {
            frames: rx,
            close: close_signal,
            urge,
        } = queue;
        let req = JoinRequest {
            viewer,
            resume: params.last_seq.map(|last_seq| ResumeFrom {
                last_seq,
                epoch: params.epoch.clone(),
                replayed_by_node: false,
            }),
        };
        if let Err(why) = s.rooms.join(&room, session, req, sink).await {
            metrics.closed(close_code(why.reason));
            close_now(socket, &why).await;
            return;
        }
        metrics.connections.inc();
        tracing::debug!("joined");
        let (sink, mut stream) = socket.split();
        let writer = tokio::spawn(write_loop(
            sink,
            rx,
            close_signal.clone(),
            metrics.clone(),
            s.write_delay,
            urge,
        ));
        read_loop(
            &mut stream,
            &*s.rooms,
            &room,
            session,
            &close_signal,
            s.max_message_bytes,
        )
        .await;
        s.rooms.leave(&room, session).await;
        // The writer ends once the room drops our queue (after leave) or on a close request.
        let code = writer.await.ok().flatten();
        if let Some(code) = code {
            metrics.closed(code);
            // Our close frame is out: wait briefly for the client's reply, so that closing the
            // socket with unread input does not reset the connection before it read the reason.
            let _ = tokio::time::timeout(Duration::from_secs(2), async {
                while let Some(Ok(m)) = stream.next().await {
                    if matches!(m, Message::Close(_)) {
                        break;
                    }
                }
            })
            .await;
        }
        metrics.connections.dec();
        tracing::debug!(close = ?code, "left");
    }
    .instrument(span)
    .await
}

async fn read_loop(
    stream: &mut futures_util::stream::SplitStream<WebSocket>,
    rooms: &dyn Rooms,
    room: &str,
    session: SessionId,
    close_signal: &CloseSignal,
    max_message_bytes: usize,
) {
    loop {
        let next = tokio::select! {
            _ = close_signal.wait() => return,
            n = tokio::time::timeout(IDLE_LIMIT, stream.next()) => n,
        };
        let msg = match next {
            Err(_) => {
                close_signal.request(crate::rooms::CloseRequest {
                    why: Refusal::new(EndReason::IdleTimeout, "idle timeout"),
                    drain: false,
                });
                return;
            }
            Ok(None) => return,
            Ok(Some(Err(e))) => {
                // A broken frame ends the connection; say why, with the code RFC 6455 names.
                if let Some(why) = protocol_refusal(e) {
                    close_signal.request(crate::rooms::CloseRequest { why, drain: false });
                }
                return;
            }
            Ok(Some(Ok(m))) => m,
        };
        let parsed = match msg {
            Message::Text(t) if t.len() > max_message_bytes => Err(ProtocolError::new(
                "too_large",
                format!(
                    "message is {} bytes; the limit is {max_message_bytes}",
                    t.len()
                ),
            )),
            Message::Text(t) => parse_client_message(t.as_str()),
            Message::Binary(_) => Err(ProtocolError::new(
                "bad_frame",
                "binary frames are not part of the protocol; send JSON text",
            )),
            Message::Close(_) => return,
            Message::Ping(_) | Message::Pong(_) => continue,
        };
        rooms.viewer_message(room, session, parsed).await;
    }
}

/// Why a read failed, as the close the client should get; `None` when the connection is
/// simply gone (nobody to tell).
fn protocol_refusal(e: axum::Error) -> Option<Refusal> {
    use tokio_tungstenite::tungstenite::error::{CapacityError, Error as WsError};
    let inner = e.into_inner();
    let e = inner.downcast_ref::<WsError>()?;
    match e {
        WsError::Capacity(CapacityError::MessageTooLong { size, max_size }) => Some(Refusal::new(
            EndReason::MessageTooBig,
            format!("message of {size} bytes; the limit is {max_size}"),
        )),
        WsError::Capacity(c) => Some(Refusal::new(EndReason::MessageTooBig, c.to_string())),
        WsError::Utf8(_) => Some(Refusal::new(
            EndReason::InvalidData,
            "a text frame is not valid UTF-8",
        )),
        WsError::Protocol(p) => Some(Refusal::new(EndReason::Protocol, p.to_string())),
        _ => None,
    }
}

/// Writes queued frames: everything available is fed, then flushed once.
///
/// Coalescing: a frame that arrives less than `write_delay` after the connection's last flush
/// waits out the rest before it is written, so under a burst (a chat storm) each flush — one
/// syscall — carries every frame that arrived meanwhile instead of one. The first frame after
/// a quiet spell goes out at once, so sparse events (a brand switch) pay nothing; a queue that
/// fills up to half its bound ends the wait early, so batching never makes a viewer a slow
/// consumer.
///
/// Per wake-up costs are kept off the hot path: the close signal is awaited by one future for
/// the whole session (not re-registered per batch); a timer is armed only for a frame that
/// must wait (never after a flush, so one broadcast to thousands of quiet connections sets
/// no timers and wakes each writer once); the write timeout is armed only when a write cannot
/// complete at once.
/// Returns the close code the server sent, if any.
async fn write_loop(
    mut sink: futures_util::stream::SplitSink<WebSocket, Message>,
    mut rx: FrameQueue,
    close_signal: Arc<CloseSignal>,
    metrics: Arc<Metrics>,
    write_delay: Duration,
    urge: Arc<Notify>,
) -> Option<u16> {
    let mut ping = tokio::time::interval(PING_EVERY);
    ping.reset();
    let closing = close_signal.wait();
    tokio::pin!(closing);
    // When the connection last flushed (only kept when coalescing is on).
    let mut last_flush: Option<tokio::time::Instant> = None;
    // A frame taken off the queue when the close request was seen: it goes out first if the
    // close drains.
    let mut taken: Option<Text> = None;
    let req = loop {
        // Frames first: a writer woken for a frame polls nothing else. A close request is
        // still seen before the frame is written (one load), and the wait future is polled
        // only once the queue is empty.
        tokio::select! {
            biased;
            first = rx.recv() => {
                let Some(first) = first else {
                    // The room let go of us: after asking us to close (the close must still
                    // go out), or because we left (nothing more to say).
                    if let Some(req) = close_signal.get() {
                        break req;
                    }
                    let _ = tokio::time::timeout(WRITE_TIMEOUT, sink.close()).await;
                    return None;
                };
                if let Some(req) = close_signal.get() {
                    taken = Some(first);
                    break req;
                }
                let hold = last_flush
                    .map(|t| t + write_delay)
                    .filter(|due| *due > tokio::time::Instant::now());
                if let Some(due) = hold {
                    // Frames arriving meanwhile queue up behind `first`; a close request ends
                    // the wait at once, and so does a queue that is half full (the room urges).
                    tokio::select! {
                        biased;
                        req = &mut closing => break req,
                        _ = urge.notified() => {}
                        _ = tokio::time::sleep_until(due) => {}
                    }
                }
                let write = async {
                    let (mut n, mut next) = (0u64, Some(first));
                    while let Some(t) = next.take() {
                        sink.feed(Message::Text(t)).await?;
                        n += 1;
                        if n < MAX_BATCH as u64 {
                            next = rx.try_recv();
                        }
                    }
                    sink.flush().await.map(|()| n)
                };
                tokio::pin!(write);
                // Almost every write completes at once; only one that would block gets a timer.
                let done = match futures_util::poll!(write.as_mut()) {
                    std::task::Poll::Ready(r) => Ok(r),
                    std::task::Poll::Pending => tokio::time::timeout(WRITE_TIMEOUT, write).await,
                };
                match done {
                    Ok(Ok(n)) => {
                        metrics.frames_sent.inc_by(n);
                        metrics.ws_flushes.inc();
                        if !write_delay.is_zero() {
                            last_flush = Some(tokio::time::Instant::now());
                        }
                    }
                    _ => {
                        close_signal.request(crate::rooms::CloseRequest {
                            why: Refusal::new(EndReason::SlowConsumer, "slow consumer"),
                            drain: false,
                        });
                        metrics.slow_consumer_closes.inc();
                        return None;
                    }
                }
            }
            req = &mut closing => break req,
            _ = ping.tick() => {
                if tokio::time::timeout(WRITE_TIMEOUT, sink.send(Message::Ping(bytes::Bytes::new()))).await.is_err() {
                    return None;
                }
            }
        }
    };
    if req.drain {
        let drain = async {
            let mut n = 0;
            let mut next = taken.take().or_else(|| rx.try_recv());
            while let Some(t) = next {
                sink.feed(Message::Text(t)).await?;
                n += 1;
                next = rx.try_recv();
            }
            Ok::<u64, axum::Error>(n)
        };
        match tokio::time::timeout(WRITE_TIMEOUT, drain).await {
            Ok(Ok(n)) => {
                metrics.frames_sent.inc_by(n);
            }
            _ => return None,
        }
    }
    let _ = tokio::time::timeout(WRITE_TIMEOUT, sink.send(close_frame(&req.why))).await;
    Some(close_code(req.why.reason))
}
