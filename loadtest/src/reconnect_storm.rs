//! The `reconnect-storm` scenario: part of the audience drops at once while events keep coming,
//! comes back with resume, and must end up with every event, resumed from history.

use crate::room::{join, live_room, JOIN_CONCURRENCY, WELCOME_WITHIN};
use crate::{expect, histogram, progress, token, Clock, Latency, Report, Target};
use futures_util::StreamExt;
use showfloor::pb;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::Semaphore;
use tokio_tungstenite::tungstenite::Message;

/// `reconnect-storm`: `viewers` connected while the host announces `events_per_s` events
/// for `seconds`; a third of the way in, `drop_percent` of them lose their connection at once,
/// stay away for `away` (events keep coming) and reconnect together with resume (`last_seq`,
/// `epoch`). Every viewer must end up with every announcement, and every reconnect must
/// resume from history.
#[derive(Debug, Clone)]
pub struct ReconnectStorm {
    pub viewers: usize,
    pub drop_percent: u32,
    pub events_per_s: u32,
    pub seconds: u64,
    /// How long the dropped viewers stay away.
    pub away: Duration,
    /// The storm passes when every dropped viewer has resumed within this of coming back.
    pub recover_within: Duration,
}

/// What a viewer has seen: where to resume from, and which announcements arrived.
#[derive(Default)]
struct Seen {
    epoch: String,
    last_seq: u64,
    announcements: std::collections::HashSet<u64>,
}

impl Seen {
    fn take(&mut self, frame: &str) {
        let Ok(v) = serde_json::from_str::<serde_json::Value>(frame) else {
            return;
        };
        if let Some(seq) = v["seq"].as_u64() {
            self.last_seq = self.last_seq.max(seq);
        }
        if let Some(e) = v["epoch"].as_str() {
            self.epoch = e.to_string();
        }
        if v["type"] == "announce" {
            if let Some(k) = v["text"].as_str().and_then(|t| t.strip_prefix("lt-ann-")) {
                if let Ok(k) = k.parse() {
                    self.announcements.insert(k);
                }
            }
        }
    }
}

/// Each lock is a few field updates, never held across an `.await`.
type Shared = Arc<parking_lot::Mutex<Seen>>;

fn lock(s: &Shared) -> parking_lot::MutexGuard<'_, Seen> {
    s.lock()
}

/// Reads a viewer's frames into its `Seen` until the connection ends, and counts the ends it
/// did not cause itself (the harness aborts the task when it drops a connection on purpose).
fn spawn_reader(
    mut rx: crate::WsRx,
    seen: Shared,
    lost: Arc<AtomicU64>,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        while let Some(m) = rx.next().await {
            match m {
                Ok(Message::Text(t)) => lock(&seen).take(t.as_str()),
                Ok(_) => {}
                Err(_) => break,
            }
        }
        lost.fetch_add(1, Ordering::Relaxed);
    })
}

pub async fn reconnect_storm(
    target: &Target,
    o: &ReconnectStorm,
    show_progress: bool,
) -> anyhow::Result<Report> {
    anyhow::ensure!(o.viewers >= 1, "--viewers must be at least 1");
    anyhow::ensure!(
        (1..=100).contains(&o.drop_percent),
        "--drop-percent must be 1 to 100"
    );
    anyhow::ensure!(
        (1..=1000).contains(&o.events_per_s),
        "--events-per-s must be 1 to 1000"
    );
    anyhow::ensure!(o.seconds >= 3, "--seconds must be at least 3");
    let mut c = target.control().await?;
    let room = live_room(&mut c, "Load test: reconnect storm", 1, 1).await?;
    let result = async {
        let conns = join(target, &room, o.viewers, "resumer-", None, show_progress).await?;
        let lost = Arc::new(AtomicU64::new(0));
        let mut viewers = Vec::with_capacity(conns.len());
        for (ws, welcome) in conns {
            let seen: Shared = Arc::default();
            lock(&seen).take(&welcome);
            let (tx, rx) = ws.split();
            let reader = spawn_reader(rx, seen.clone(), lost.clone());
            viewers.push((seen, Some(tx), reader));
        }
        // The host announces a numbered event every 1/events_per_s seconds.
        let total = o.events_per_s as u64 * o.seconds;
        let mut host = target.control().await?;
        let room_id = room.id.clone();
        let period = Duration::from_secs_f64(1.0 / f64::from(o.events_per_s));
        let announcer = tokio::spawn(async move {
            let mut tick = tokio::time::interval(period);
            for k in 0..total {
                tick.tick().await;
                let req = host.req(pb::AnnounceRequest {
                    room_id: room_id.clone(),
                    text: format!("lt-ann-{k}"),
                });
                host.client.announce(req).await?;
            }
            anyhow::Ok(())
        });
        tokio::time::sleep(Duration::from_secs(o.seconds) / 3).await;

        // The storm: connections dropped at once, without a close handshake.
        let dropped = (o.viewers * o.drop_percent as usize).div_ceil(100);
        for (_, tx, reader) in viewers.iter_mut().take(dropped) {
            reader.abort();
            tx.take();
        }
        tokio::time::sleep(o.away).await;
        let clock = Clock::new();
        let bar = progress(dropped as u64, "resuming", show_progress);
        let gate = Arc::new(Semaphore::new(JOIN_CONCURRENCY));
        let mut back = Vec::with_capacity(dropped);
        for (i, (seen, _, _)) in viewers.iter().enumerate().take(dropped) {
            let (last_seq, epoch) = {
                let s = lock(seen);
                (s.last_seq, s.epoch.clone())
            };
            let token = token(&room.id, &room.key, &format!("resumer-{i}"), None);
            let (target, room_id, gate, bar) =
                (target.clone(), room.id.clone(), gate.clone(), bar.clone());
            back.push(tokio::spawn(async move {
                let _permit = gate.acquire_owned().await?;
                let resume = Some((last_seq, epoch.as_str()));
                let ws = target.connect_resuming(i, &room_id, &token, resume).await?;
                let (tx, mut rx) = ws.split();
                let welcome = expect(&mut rx, "welcome", WELCOME_WITHIN).await?;
                let at = clock.now_us();
                bar.inc(1);
                anyhow::Ok((tx, rx, welcome, at))
            }));
        }
        let (mut resumed, mut fresh, mut failed, mut recovered_us) = (0u64, 0u64, 0u64, 0u64);
        let mut replayed = 0u64;
        let mut h = histogram();
        for (i, t) in back.into_iter().enumerate() {
            match t.await? {
                Ok((tx, rx, welcome, at)) => {
                    let v: serde_json::Value = serde_json::from_str(&welcome)?;
                    if v["resumed"] == true {
                        resumed += 1;
                        replayed += v["replayed"].as_u64().unwrap_or(0);
                    } else {
                        fresh += 1;
                    }
                    recovered_us = recovered_us.max(at);
                    let _ = h.record(at.max(1));
                    let seen = viewers[i].0.clone();
                    lock(&seen).take(&welcome);
                    viewers[i].2 = spawn_reader(rx, seen, lost.clone());
                    viewers[i].1 = Some(tx);
                }
                Err(_) => failed += 1,
            }
        }
        bar.finish_and_clear();
        announcer.await??;
        // Let the last announcements arrive (at most 10 s).
        for _ in 0..40 {
            let complete = viewers
                .iter()
                .all(|(s, _, _)| lock(s).announcements.len() as u64 >= total);
            if complete {
                break;
            }
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
        let missed: u64 = viewers
            .iter()
            .map(|(s, _, _)| total - (lock(s).announcements.len() as u64).min(total))
            .sum();
        let lost = lost.load(Ordering::Relaxed);
        for (_, tx, reader) in &mut viewers {
            reader.abort();
            tx.take();
        }
        let recover = Duration::from_micros(recovered_us);
        let mut r = Report::new("reconnect-storm");
        r.number("viewers", o.viewers);
        r.number("dropped", dropped);
        r.number("resumed", resumed);
        r.number("events", total);
        r.number("away_ms", o.away.as_millis() as u64);
        r.number("replayed_events", replayed);
        r.number("recovered_in_ms", recover.as_millis() as u64);
        r.latency = Some(Latency::of(&h));
        r.check(
            "everyone back",
            failed == 0 && resumed + fresh == dropped as u64,
            format!(
                "{} of {dropped} reconnected ({failed} failed)",
                resumed + fresh
            ),
        );
        r.check(
            "resumed from history",
            fresh == 0,
            format!("{fresh} reconnects got a fresh snapshot instead of the missed events"),
        );
        r.check(
            "no missed events",
            missed == 0,
            format!(
                "{missed} announcements missing across {} viewers × {total}",
                o.viewers
            ),
        );
        r.check(
            "recovered in time",
            recover <= o.recover_within,
            format!(
                "all {dropped} back {} ms after they reconnected (limit {} ms)",
                recover.as_millis(),
                o.recover_within.as_millis()
            ),
        );
        r.check(
            "no other disconnects",
            lost == 0,
            format!("{lost} connections ended that the harness did not drop"),
        );
        anyhow::Ok(r)
    }
    .await;
    c.close_room(&room.id).await;
    result
}
