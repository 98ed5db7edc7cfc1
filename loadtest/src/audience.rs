//! The `audience` scenario: viewers join at a rate and stay; connect success, connect time and
//! the server's memory per viewer (Showfloor, or a Socket.IO peer).

use crate::room::{live_room, JOIN_CONCURRENCY, WELCOME_WITHIN};
use crate::{expect, histogram, progress, token, Clock, Latency, Report, Target};
use futures_util::{SinkExt, StreamExt};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::Semaphore;
use tokio_tungstenite::tungstenite::Message;

/// `audience`: `viewers` join at `rate` per second and stay for `hold` seconds: connect
/// success, connect time (TCP + WebSocket upgrade + welcome) and the server's memory per
/// connected viewer (its `process_resident_memory_bytes` before and after).
#[derive(Debug, Clone)]
pub struct Audience {
    pub viewers: usize,
    pub rate: u32,
    pub hold_secs: u64,
    /// Join a Socket.IO server at this address instead (the peer in the benchmarks).
    pub socketio: Option<std::net::SocketAddr>,
    /// Read the server's memory from `/proc/<pid>/status` (VmRSS) rather than `/metrics`:
    /// the same measure for every server.
    pub server_pid: Option<u32>,
}

pub async fn audience(
    target: &Target,
    o: &Audience,
    show_progress: bool,
) -> anyhow::Result<Report> {
    anyhow::ensure!(o.viewers >= 1, "--viewers must be at least 1");
    anyhow::ensure!(o.rate >= 1, "--rate must be at least 1 viewer per second");
    let (mut control, room) = match o.socketio {
        Some(_) => (None, None),
        None => {
            let mut c = target.control().await?;
            let room = live_room(&mut c, "Load test: audience", 1, 1).await?;
            (Some(c), Some(room))
        }
    };
    let rss = |target: Target| async move {
        match o.server_pid {
            Some(pid) => proc_resident_bytes(pid),
            None if o.socketio.is_none() => resident_bytes(&target).await,
            None => None,
        }
    };
    let result = async {
        let rss_before = rss(target.clone()).await;
        let clock = Clock::new();
        let bar = progress(o.viewers as u64, "joining", show_progress);
        let gate = Arc::new(Semaphore::new(JOIN_CONCURRENCY));
        let period = Duration::from_secs_f64(1.0 / f64::from(o.rate));
        let mut tick = tokio::time::interval(period);
        let mut tasks = Vec::with_capacity(o.viewers);
        for i in 0..o.viewers {
            tick.tick().await;
            let permit = gate.clone().acquire_owned().await?;
            let (target, bar) = (target.clone(), bar.clone());
            let showfloor = room
                .as_ref()
                .map(|r| (r.id.clone(), token(&r.id, &r.key, &format!("watcher-{i}"), None)));
            let socketio = o.socketio;
            tasks.push(tokio::spawn(async move {
                let t0 = clock.now_us();
                let joined = async {
                    if let Some(addr) = socketio {
                        let ws = crate::socketio::connect(addr, i, WELCOME_WITHIN).await?;
                        return anyhow::Ok(ws.split());
                    }
                    let (room_id, token) = showfloor.expect("a Showfloor room");
                    let ws = target.connect(i, &room_id, &token).await?;
                    let (tx, mut rx) = ws.split();
                    expect(&mut rx, "welcome", WELCOME_WITHIN).await?;
                    anyhow::Ok((tx, rx))
                }
                .await;
                drop(permit);
                bar.inc(1);
                joined.map(|ws| (ws, clock.now_us() - t0))
            }));
        }
        let mut h = histogram();
        let mut conns = Vec::new();
        let mut failures = Vec::new();
        for t in tasks {
            match t.await? {
                Ok((ws, us)) => {
                    let _ = h.record(us.max(1));
                    conns.push(ws);
                }
                Err(e) => failures.push(e.to_string()),
            }
        }
        bar.finish_and_clear();
        let connected = conns.len();
        tokio::time::sleep(Duration::from_secs(1)).await;
        let rss_after = rss(target.clone()).await;
        // Hold: every connection must stay up (the server's heartbeats are answered by the
        // reads below; Socket.IO's pings by a pong).
        let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
        let disconnects = Arc::new(AtomicU64::new(0));
        let mut readers = Vec::new();
        for (mut tx, mut rx) in conns {
            let mut stop = stop_rx.clone();
            let disconnects = disconnects.clone();
            readers.push(tokio::spawn(async move {
                loop {
                    let m = tokio::select! {
                        m = rx.next() => m,
                        _ = stop.wait_for(|s| *s) => break,
                    };
                    let ping = matches!(&m, Some(Ok(Message::Text(t))) if t.as_str() == crate::socketio::PING);
                    if ping && tx.send(Message::text(crate::socketio::PONG)).await.is_err() {
                        disconnects.fetch_add(1, Ordering::Relaxed);
                        break;
                    }
                    if !matches!(m, Some(Ok(_))) {
                        disconnects.fetch_add(1, Ordering::Relaxed);
                        break;
                    }
                }
                drop(tx);
            }));
        }
        tokio::time::sleep(Duration::from_secs(o.hold_secs)).await;
        let _ = stop_tx.send(true);
        for r in readers {
            r.await?;
        }
        let disconnects = disconnects.load(Ordering::Relaxed);
        let mut r = Report::new("audience");
        r.number(
            "server",
            if o.socketio.is_some() {
                "socket.io"
            } else {
                "showfloor"
            },
        );
        r.number("viewers", o.viewers);
        r.number("connected", connected);
        r.number("failed", failures.len());
        r.number("join_rate_per_s", o.rate);
        if let (Some(before), Some(after)) = (rss_before, rss_after) {
            r.number("server_rss_before_mb", before / 1_048_576);
            r.number("server_rss_after_mb", after / 1_048_576);
            if connected > 0 {
                let per = after.saturating_sub(before) as f64 / connected as f64;
                r.number("server_kb_per_viewer", (per / 1024.0 * 10.0).round() / 10.0);
            }
        } else {
            r.number(
                "server_kb_per_viewer",
                "unknown (give --server-pid, or a server with process_resident_memory_bytes on /metrics)",
            );
        }
        r.latency = Some(Latency::of(&h));
        let need = (o.viewers as f64 * 0.999).ceil() as usize;
        r.check(
            "connected",
            connected >= need,
            format!(
                "{connected} of {} (need 99.9 %){}",
                o.viewers,
                failures
                    .first()
                    .map(|e| format!("; first failure: {e}"))
                    .unwrap_or_default()
            ),
        );
        r.check(
            "no disconnects",
            disconnects == 0,
            format!(
                "{disconnects} connections dropped during the {} s hold",
                o.hold_secs
            ),
        );
        anyhow::Ok(r)
    }
    .await;
    if let (Some(c), Some(room)) = (control.as_mut(), room.as_ref()) {
        c.close_room(&room.id).await;
    }
    result
}

/// A process's resident memory from `/proc/<pid>/status`.
fn proc_resident_bytes(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let kb: u64 = status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))?
        .trim()
        .trim_end_matches("kB")
        .trim()
        .parse()
        .ok()?;
    Some(kb * 1024)
}

/// The server's `process_resident_memory_bytes` from `/metrics`.
async fn resident_bytes(target: &Target) -> Option<u64> {
    crate::metric(target, "process_resident_memory_bytes")
        .await
        .map(|v| v as u64)
}
