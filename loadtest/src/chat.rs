//! `chat-storm`: `viewers` connected, `senders` of them chatting `rate` messages per second in
//! total. Every message carries its send time; every viewer reads everything, so each message
//! is `viewers` deliveries. The same storm runs against Showfloor or, with `socketio`, against
//! the Socket.IO peer (`benches/peers/socketio/`), so the two can be compared on one machine.
//!
//! With `find_max_p99_ms` the storm becomes a search on the same connections: the rate doubles
//! while a step delivers everything with p99 within the bound, then bisects between the last
//! good and the first bad rate. The answer is the most deliveries per second each server
//! sustains at that p99 — the comparison the benchmarks make.

use crate::room::{join, join_with, live_room};
use crate::{
    cpu_seconds, histogram, next_probe, progress, socketio, Clock, Latency, Report, Target, WsRx,
    WsTx,
};
use futures_util::{SinkExt, StreamExt};
use hdrhistogram::Histogram;
use parking_lot::Mutex;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;
use tokio_tungstenite::tungstenite::Message;

/// Chat text length (a typical question in a live room); the same for every server.
const TEXT_LEN: usize = 100;
/// A search step stops waiting for stragglers after this long without progress.
const DRAIN_IDLE: Duration = Duration::from_secs(3);
/// At most this many search steps.
const MAX_STEPS: usize = 14;
/// Showfloor's highest per-viewer chat limit is 1,000 a second; senders stay below half.
const MAX_PER_SENDER: f64 = 500.0;

#[derive(Debug, Clone)]
pub struct ChatStorm {
    pub viewers: usize,
    pub senders: usize,
    /// Messages per second, all senders together (the first rate of a search).
    pub rate: u32,
    /// Seconds per run (per step of a search).
    pub seconds: u64,
    /// Talk Socket.IO v4 to a Socket.IO server at this address instead of Showfloor.
    pub socketio: Option<SocketAddr>,
    /// Search the highest rate that keeps delivery p99 within this many ms with no loss.
    pub find_max_p99_ms: Option<f64>,
    /// The server's process, for its CPU use while the storm runs (the harness reports its
    /// own too, so a run says which side was the limit).
    pub server_pid: Option<u32>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Wire {
    Showfloor,
    SocketIo,
}

impl Wire {
    fn chat(self, text: &str) -> String {
        match self {
            Wire::Showfloor => serde_json::json!({"type": "chat", "text": text}).to_string(),
            Wire::SocketIo => socketio::chat(text),
        }
    }
    fn is_chat(self, frame: &str) -> bool {
        match self {
            Wire::Showfloor => frame.starts_with("{\"type\":\"chat\""),
            Wire::SocketIo => frame.starts_with(socketio::CHAT),
        }
    }
    fn is_refusal(self, frame: &str) -> bool {
        match self {
            Wire::Showfloor => frame.starts_with("{\"type\":\"error\""),
            Wire::SocketIo => frame.starts_with(socketio::ERROR),
        }
    }
    fn name(self) -> &'static str {
        match self {
            Wire::Showfloor => "showfloor",
            Wire::SocketIo => "socket.io",
        }
    }
}

pub async fn chat_storm(
    target: &Target,
    o: &ChatStorm,
    show_progress: bool,
) -> anyhow::Result<Report> {
    anyhow::ensure!(o.viewers >= 1, "--viewers must be at least 1");
    anyhow::ensure!(
        (1..=o.viewers).contains(&o.senders),
        "--senders must be 1 to --viewers"
    );
    anyhow::ensure!(o.rate >= 1, "--rate must be at least 1 message per second");
    anyhow::ensure!(o.seconds >= 1, "--seconds must be at least 1");
    if let Some(p) = o.find_max_p99_ms {
        anyhow::ensure!(
            p.is_finite() && p > 0.0,
            "--find-max-p99-ms must be a positive number"
        );
    }
    let per_sender = f64::from(o.rate) / o.senders as f64;
    anyhow::ensure!(
        o.socketio.is_some() || per_sender <= MAX_PER_SENDER,
        "{per_sender:.0} messages/s per sender is above the {MAX_PER_SENDER} a second one viewer may chat: use more senders"
    );
    let clock = Clock::new();
    if let Some(addr) = o.socketio {
        let conns = join_socketio(addr, o.viewers, show_progress).await?;
        return storm(conns, Wire::SocketIo, o, clock, show_progress).await;
    }
    let mut c = target.control().await?;
    // The per-viewer limit leaves the senders headroom (a late tick sends at once); a search
    // gets the room's maximum.
    let limit = match o.find_max_p99_ms {
        Some(_) => 1000,
        None => (per_sender * 2.0).ceil() as u32 + 5,
    };
    let room = live_room(&mut c, "Load test: chat storm", limit, 1).await?;
    let result = async {
        let conns = join(target, &room, o.viewers, "chatter-", None, show_progress)
            .await?
            .into_iter()
            .map(|(ws, _)| ws.split())
            .collect();
        storm(conns, Wire::Showfloor, o, clock, show_progress).await
    }
    .await;
    c.close_room(&room.id).await;
    result
}

async fn join_socketio(
    addr: SocketAddr,
    n: usize,
    show_progress: bool,
) -> anyhow::Result<Vec<(WsTx, WsRx)>> {
    join_with(n, show_progress, |i| async move {
        let ws = socketio::connect(addr, i, Duration::from_secs(30)).await?;
        anyhow::Ok(ws.split())
    })
    .await
}

/// What one viewer has read so far.
struct Tally {
    received: u64,
    refused: u64,
    latency: Histogram<u64>,
}

/// The connected audience: a reader per viewer, the write halves for the senders.
struct Fleet {
    wire: Wire,
    clock: Clock,
    viewers: usize,
    tallies: Vec<Arc<Mutex<Tally>>>,
    writers: Vec<Arc<tokio::sync::Mutex<WsTx>>>,
    disconnects: Arc<AtomicU64>,
    readers: Vec<tokio::task::JoinHandle<()>>,
}

impl Fleet {
    fn start(conns: Vec<(WsTx, WsRx)>, wire: Wire, clock: Clock) -> Fleet {
        let viewers = conns.len();
        let disconnects = Arc::new(AtomicU64::new(0));
        let (mut tallies, mut writers, mut readers) = (Vec::new(), Vec::new(), Vec::new());
        for (tx, mut rx) in conns {
            let tally = Arc::new(Mutex::new(Tally {
                received: 0,
                refused: 0,
                latency: histogram(),
            }));
            let tx = Arc::new(tokio::sync::Mutex::new(tx));
            let (t, w, d) = (tally.clone(), tx.clone(), disconnects.clone());
            readers.push(tokio::spawn(async move {
                while let Some(Ok(m)) = rx.next().await {
                    let Message::Text(text) = m else { continue };
                    let text = text.as_str();
                    if wire.is_chat(text) {
                        if let Some(sent) = sent_at(text) {
                            let at = clock.now_us();
                            let mut t = lock(&t);
                            let _ = t.latency.record(at.saturating_sub(sent).max(1));
                            t.received += 1;
                        }
                    } else if wire.is_refusal(text) {
                        lock(&t).refused += 1;
                    } else if wire == Wire::SocketIo && text == socketio::PING {
                        let mut w = w.lock().await;
                        if w.send(Message::text(socketio::PONG)).await.is_err() {
                            break;
                        }
                    }
                }
                d.fetch_add(1, Ordering::Relaxed);
            }));
            tallies.push(tally);
            writers.push(tx);
        }
        Fleet {
            wire,
            clock,
            viewers,
            tallies,
            writers,
            disconnects,
            readers,
        }
    }

    /// Deliveries and refusals read so far, all viewers together.
    fn totals(&self) -> (u64, u64) {
        self.tallies.iter().fold((0, 0), |(r, f), t| {
            let t = lock(t);
            (r + t.received, f + t.refused)
        })
    }

    /// The latencies recorded since the last call, merged; the viewers start afresh.
    fn take_latency(&self) -> Histogram<u64> {
        let mut h = histogram();
        for t in &self.tallies {
            let mut t = lock(t);
            let _ = h.add(&t.latency);
            t.latency.reset();
        }
        h
    }

    /// Runs the storm at `rate` for `seconds`, then waits for the deliveries in flight.
    async fn step(
        &self,
        senders: usize,
        rate: u32,
        seconds: u64,
        server_pid: Option<u32>,
        show: bool,
    ) -> Step {
        let me = std::process::id();
        let cpu0 = (server_pid.and_then(cpu_seconds), cpu_seconds(me));
        let (received0, refused0) = self.totals();
        let disconnects0 = self.disconnects.load(Ordering::Relaxed);
        let per_sender = f64::from(rate) / senders as f64;
        let period = Duration::from_secs_f64(1.0 / per_sender);
        let started = self.clock.now_us();
        let until = tokio::time::Instant::now() + Duration::from_secs(seconds);
        let mut tasks = Vec::new();
        for (i, w) in self.writers.iter().take(senders).enumerate() {
            let (w, wire, clock) = (w.clone(), self.wire, self.clock);
            tasks.push(tokio::spawn(async move {
                // Senders start spread over one period, not all on the same tick.
                let offset = period.mul_f64(i as f64 / senders as f64);
                let mut tick =
                    tokio::time::interval_at(tokio::time::Instant::now() + offset, period);
                tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Burst);
                let mut sent = 0u64;
                loop {
                    // A slow sender's next tick may lie well past the end: stop at the end,
                    // so the storm lasts `seconds` and its rate is counted over them.
                    let at = tokio::select! {
                        at = tick.tick() => at,
                        _ = tokio::time::sleep_until(until) => break,
                    };
                    if at >= until {
                        break;
                    }
                    let head = format!("lt {i} {sent} t={} ", clock.now_us());
                    let text = format!("{head:-<TEXT_LEN$}");
                    let frame = Message::text(wire.chat(&text));
                    if w.lock().await.send(frame).await.is_err() {
                        break;
                    }
                    sent += 1;
                }
                sent
            }));
        }
        let bar = progress(seconds, &format!("{rate} msg/s"), show);
        let ticker = {
            let bar = bar.clone();
            tokio::spawn(async move {
                let mut t = tokio::time::interval(Duration::from_secs(1));
                t.tick().await;
                loop {
                    t.tick().await;
                    bar.inc(1);
                }
            })
        };
        let mut sent = 0;
        for t in tasks {
            sent += t.await.unwrap_or(0);
        }
        ticker.abort();
        let send_secs = (self.clock.now_us() - started) as f64 / 1e6;
        let cpu1 = (server_pid.and_then(cpu_seconds), cpu_seconds(me));
        let busy = |a: Option<f64>, b: Option<f64>| Some((b? - a?) / send_secs.max(1e-6));
        // Wait for the deliveries still in flight, as long as they keep coming.
        let (mut last, mut idle_since) = (u64::MAX, tokio::time::Instant::now());
        loop {
            tokio::time::sleep(Duration::from_millis(100)).await;
            let (received, refused) = self.totals();
            let expected = (sent - (refused - refused0).min(sent)) * self.viewers as u64;
            if received - received0 >= expected {
                break;
            }
            if received != last {
                (last, idle_since) = (received, tokio::time::Instant::now());
            } else if idle_since.elapsed() > DRAIN_IDLE {
                break;
            }
        }
        bar.finish_and_clear();
        let (received, refused) = self.totals();
        let refused = refused - refused0;
        Step {
            rate,
            sent,
            refused,
            received: received - received0,
            expected: (sent - refused.min(sent)) * self.viewers as u64,
            send_secs,
            disconnects: self.disconnects.load(Ordering::Relaxed) - disconnects0,
            latency: self.take_latency(),
            server_cpu: busy(cpu0.0, cpu1.0),
            harness_cpu: busy(cpu0.1, cpu1.1),
        }
    }

    fn stop(self) {
        for r in self.readers {
            r.abort();
        }
    }
}

fn lock(t: &Mutex<Tally>) -> parking_lot::MutexGuard<'_, Tally> {
    t.lock()
}

struct Step {
    rate: u32,
    sent: u64,
    refused: u64,
    received: u64,
    expected: u64,
    send_secs: f64,
    disconnects: u64,
    latency: Histogram<u64>,
    /// Cores busy while sending (1.0 = one core), if known.
    server_cpu: Option<f64>,
    harness_cpu: Option<f64>,
}

impl Step {
    fn deliveries_per_s(&self) -> u64 {
        (self.received as f64 / self.send_secs.max(1e-6)).round() as u64
    }
    fn p99_ms(&self) -> f64 {
        self.latency.value_at_quantile(0.99) as f64 / 1000.0
    }
    fn clean(&self) -> bool {
        self.received == self.expected && self.disconnects == 0 && self.refused == 0
    }
    fn summary(&self) -> serde_json::Value {
        serde_json::json!({
            "rate": self.rate,
            "messages_sent": self.sent,
            "deliveries": self.received,
            "expected": self.expected,
            "deliveries_per_s": self.deliveries_per_s(),
            "p99_ms": self.p99_ms(),
            "refused": self.refused,
            "disconnects": self.disconnects,
            "server_cpu_percent": self.server_cpu.map(|c| (c * 1000.0).round() / 10.0),
            "harness_cpu_percent": self.harness_cpu.map(|c| (c * 1000.0).round() / 10.0),
        })
    }
}

async fn storm(
    conns: Vec<(WsTx, WsRx)>,
    wire: Wire,
    o: &ChatStorm,
    clock: Clock,
    show: bool,
) -> anyhow::Result<Report> {
    let fleet = Fleet::start(conns, wire, clock);
    let mut r = Report::new("chat-storm");
    r.number("server", wire.name());
    r.number("viewers", o.viewers);
    r.number("senders", o.senders);
    let Some(bound) = o.find_max_p99_ms else {
        let s = fleet
            .step(o.senders, o.rate, o.seconds, o.server_pid, show)
            .await;
        fleet.stop();
        for (k, v) in
            ["server_cpu_percent", "harness_cpu_percent"].map(|k| (k, s.summary()[k].clone()))
        {
            r.number(k, v);
        }
        r.number("messages_sent", s.sent);
        r.number("messages_refused", s.refused);
        r.number("deliveries", s.received);
        r.number("deliveries_per_s", s.deliveries_per_s());
        r.number("send_seconds", (s.send_secs * 100.0).round() / 100.0);
        r.latency = Some(Latency::of(&s.latency));
        r.check(
            "no loss",
            s.received == s.expected,
            format!(
                "{} of {} deliveries ({} messages × {} viewers)",
                s.received,
                s.expected,
                s.sent - s.refused,
                o.viewers
            ),
        );
        r.check(
            "no disconnects",
            s.disconnects == 0,
            format!("{} viewers lost their connection", s.disconnects),
        );
        r.check(
            "nothing refused",
            s.refused == 0,
            format!("{} messages refused by the server", s.refused),
        );
        return Ok(r);
    };
    // The search: double while good, then bisect to 5 %.
    let cap = match wire {
        Wire::Showfloor => (MAX_PER_SENDER * o.senders as f64) as u32,
        Wire::SocketIo => u32::MAX / 2,
    };
    let (mut good, mut bad): (Option<Step>, Option<u32>) = (None, None);
    let mut rate = o.rate.min(cap);
    let mut steps = Vec::new();
    // A first, uncounted step warms both sides up (allocations, caches, TCP windows).
    let _ = fleet
        .step(o.senders, rate, o.seconds.min(2), o.server_pid, show)
        .await;
    for _ in 0..MAX_STEPS {
        let mut s = fleet
            .step(o.senders, rate, o.seconds, o.server_pid, show)
            .await;
        let pass = |s: &Step| s.clean() && s.p99_ms() <= bound;
        // A rate fails only when it fails twice: one noisy step must not end the search
        // below what the server sustains.
        if !pass(&s) && s.disconnects == 0 {
            steps.push(s.summary());
            s = fleet
                .step(o.senders, rate, o.seconds, o.server_pid, show)
                .await;
        }
        let ok = pass(&s);
        steps.push(s.summary());
        let lost_viewers = s.disconnects > 0;
        if ok {
            good = Some(s);
        } else {
            bad = Some(rate);
        }
        if lost_viewers {
            // Viewers the server closed (slow consumers) cannot take part in later steps.
            break;
        }
        let good_rate = good.as_ref().map(|g| g.rate as usize);
        match next_probe(
            rate as usize,
            good_rate,
            bad.map(|b| b as usize),
            cap as usize,
            1,
        ) {
            Some(next) => rate = next as u32,
            None => break,
        }
    }
    fleet.stop();
    r.number("p99_bound_ms", bound);
    r.number("steps", serde_json::Value::Array(steps));
    match &good {
        Some(g) => {
            r.number("max_rate", g.rate);
            r.number("max_deliveries_per_s", g.deliveries_per_s());
            r.number(
                "first_failing_rate",
                bad.map_or(serde_json::Value::Null, |b| b.into()),
            );
            r.latency = Some(Latency::of(&g.latency));
        }
        None => r.number("max_rate", serde_json::Value::Null),
    }
    r.check(
        "a sustainable rate",
        good.is_some(),
        match &good {
            Some(g) => format!(
                "{} msg/s = {} deliveries/s with p99 {:.1} ms and no loss",
                g.rate,
                g.deliveries_per_s(),
                g.p99_ms()
            ),
            None => format!(
                "not even {} msg/s kept p99 within {bound} ms with no loss",
                o.rate.min(cap)
            ),
        },
    );
    Ok(r)
}

/// The send time carried in a load-test chat message (`… t=<µs>`).
fn sent_at(frame: &str) -> Option<u64> {
    static FINDER: std::sync::LazyLock<memchr::memmem::Finder<'static>> =
        std::sync::LazyLock::new(|| memchr::memmem::Finder::new(" t="));
    let at = FINDER.find(frame.as_bytes())? + 3;
    let digits = &frame[at..];
    let end = digits
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(digits.len());
    digits[..end].parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_send_time_is_read_back_from_the_frame() {
        let text = format!("{:-<TEXT_LEN$}", "lt 3 7 t=123456 ");
        assert_eq!(text.len(), TEXT_LEN);
        // What a sender writes carries the time; what the server serves is told apart as chat.
        let f = Wire::Showfloor.chat(&text);
        assert_eq!(sent_at(&f), Some(123_456));
        let f = Wire::SocketIo.chat(&text);
        assert!(Wire::SocketIo.is_chat(&f));
        assert_eq!(sent_at(&f), Some(123_456));
        let served =
            r#"{"type":"chat","seq":4,"at":1,"text":"lt 3 17 t=123456","is_dealer":false}"#;
        assert!(Wire::Showfloor.is_chat(served));
        assert!(!Wire::Showfloor.is_refusal(served));
        assert_eq!(sent_at(served), Some(123_456));
        assert_eq!(sent_at(r#"{"type":"chat","text":"hello"}"#), None);
    }
}
