//! The `media` scenario: one publisher, N subscribers — loss against what was sent, jitter,
//! delay, forwarded packets per second and the server's CPU; `--find-max` searches the most
//! subscribers one server keeps under a loss bound.
//!
//! The media server is a [`MediaServer`]: Showfloor (WHIP/WHEP, here) or a peer SFU
//! (`crate::janus`), so the same publisher, subscribers and counts measure both. `switchover`
//! uses the same Showfloor rig.

use crate::room::{join_with, live_room, Room};
use crate::rtc::{Publisher, Stream, Subscriber, Window};
use crate::{
    cpu_seconds, histogram, http_client, metric, next_probe, token, Clock, Latency, Report, Target,
};
use showfloor::pb;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

/// Subscribers set up at once (each is an offer, a POST and a DTLS handshake).
const SUBSCRIBE_CONCURRENCY: usize = 16;
/// After the audience changes, this long passes before a measurement starts.
const SETTLE: Duration = Duration::from_secs(2);
/// Packets sent at the end of a window get this long to arrive.
const GRACE: Duration = Duration::from_millis(500);
/// At most this many search steps.
const MAX_STEPS: usize = 12;

/// A subscription the server refused with 503: it is full or overloaded, and said so at once
/// (rather than leaving the newcomer to time out).
#[derive(Debug)]
pub struct Refused {
    message: String,
    /// When the server asked to be tried again (`Retry-After`), if it did.
    pub retry_after: Option<Duration>,
}

impl std::fmt::Display for Refused {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for Refused {}

/// What became of the subscribers one resize asked for.
#[derive(Debug, Default)]
struct Joins {
    refused: usize,
    failed: usize,
    /// The first refusal or failure, as the server or the connection put it.
    first_error: Option<String>,
    /// From the first request to the last answer or failure.
    seconds: f64,
}

/// A media server under test.
#[async_trait::async_trait]
pub trait MediaServer: Send + Sync {
    fn name(&self) -> &'static str;
    /// Starts a publisher sending `stream`.
    async fn publish(
        &self,
        stream: Stream,
        clock: Clock,
        window: Arc<Window>,
    ) -> anyhow::Result<Publisher>;
    /// Connects subscriber number `index` to what the publishers send.
    async fn subscribe(
        &self,
        index: usize,
        clock: Clock,
        window: Arc<Window>,
    ) -> anyhow::Result<Subscriber>;
    /// Packets the server says it forwarded and dropped so far, if it says.
    async fn counters(&self) -> Option<(f64, f64)> {
        None
    }
    /// Ends a subscription as a leaving client would, and closes it.
    async fn unsubscribe(&self, s: Subscriber) {
        s.close().await;
    }
    /// Releases what the server set up for the run.
    async fn finish(&self) {}
}

/// Showfloor: a room of its own, publishers by WHIP, subscribers by WHEP.
pub struct Showfloor {
    target: Target,
    control: tokio::sync::Mutex<crate::Control>,
    pub(crate) room: Room,
    /// The next brand a publisher takes.
    next_brand: std::sync::atomic::AtomicUsize,
}

impl Showfloor {
    pub async fn new(target: &Target, title: &str, brands: usize) -> anyhow::Result<Showfloor> {
        let mut c = target.control().await?;
        let room = live_room(&mut c, title, 1, brands).await?;
        Ok(Showfloor::for_room(target, c, room))
    }

    /// The rig for a room set up elsewhere (the soak's show).
    pub(crate) fn for_room(target: &Target, control: crate::Control, room: Room) -> Showfloor {
        Showfloor {
            target: target.clone(),
            control: tokio::sync::Mutex::new(control),
            room,
            next_brand: Default::default(),
        }
    }

    /// Starts a presenter of brand number `index` (in running order) sending `stream`: a
    /// presenter token from the control plane, then WHIP.
    pub(crate) async fn publish_brand(
        &self,
        index: usize,
        mut stream: Stream,
        clock: Clock,
        window: Arc<Window>,
    ) -> anyhow::Result<Publisher> {
        let brand = self
            .room
            .brands
            .get(index)
            .ok_or_else(|| anyhow::anyhow!("no brand left for publisher {index}"))?
            .clone();
        let token = {
            let mut c = self.control.lock().await;
            let req = c.req(pb::IssuePresenterTokenRequest {
                room_id: self.room.id.clone(),
                brand_id: brand,
                ..Default::default()
            });
            c.client.issue_presenter_token(req).await?.into_inner()
        };
        stream.source = index as u8;
        let mut p = Publisher::new(stream).await?;
        let (answer, _) = self
            .post_sdp(&token.whip_path, &token.token, p.offer().await?)
            .await?;
        p.start(&answer, clock, window).await?;
        Ok(p)
    }

    /// Replaces the control-plane client (the old one's server was restarted).
    pub(crate) async fn reconnect_control(&self) -> anyhow::Result<()> {
        let c = self.target.control().await?;
        *self.control.lock().await = c;
        Ok(())
    }

    pub async fn switch(&self, brand: &str) -> anyhow::Result<()> {
        let mut c = self.control.lock().await;
        let req = c.req(pb::BrandRef {
            room_id: self.room.id.clone(),
            brand_id: brand.to_string(),
        });
        c.client.switch_brand(req).await?;
        Ok(())
    }

    /// POSTs an SDP offer (WHIP/WHEP); the answer and the resource's `Location`.
    async fn post_sdp(
        &self,
        path: &str,
        bearer: &str,
        offer: String,
    ) -> anyhow::Result<(String, Option<String>)> {
        let r = http_client()
            .post(self.target.url(path))
            .header("content-type", "application/sdp")
            .bearer_auth(bearer)
            .body(offer)
            .send()
            .await?;
        let status = r.status();
        let location = r
            .headers()
            .get(reqwest::header::LOCATION)
            .and_then(|l| l.to_str().ok())
            .map(str::to_string);
        let retry_after = r
            .headers()
            .get(reqwest::header::RETRY_AFTER)
            .and_then(|v| v.to_str().ok()?.parse().ok())
            .map(Duration::from_secs);
        let body = r.text().await?;
        if status == reqwest::StatusCode::SERVICE_UNAVAILABLE {
            let message = format!("POST {path}: {status}: {}", body.trim());
            return Err(Refused {
                message,
                retry_after,
            }
            .into());
        }
        anyhow::ensure!(
            status == reqwest::StatusCode::CREATED,
            "POST {path}: {status}: {}",
            body.trim()
        );
        Ok((body, location))
    }
}

#[async_trait::async_trait]
impl MediaServer for Showfloor {
    fn name(&self) -> &'static str {
        "showfloor"
    }

    async fn publish(
        &self,
        stream: Stream,
        clock: Clock,
        window: Arc<Window>,
    ) -> anyhow::Result<Publisher> {
        let i = self.next_brand.fetch_add(1, Ordering::SeqCst);
        self.publish_brand(i, stream, clock, window).await
    }

    async fn subscribe(
        &self,
        index: usize,
        clock: Clock,
        window: Arc<Window>,
    ) -> anyhow::Result<Subscriber> {
        let token = token(
            &self.room.id,
            &self.room.key,
            &format!("whep-{index}"),
            None,
        );
        let mut s = Subscriber::new(clock, window).await?;
        let posted = self
            .post_sdp(&format!("/whep/{}", self.room.id), &token, s.offer().await?)
            .await;
        let (answer, location) = match posted {
            Ok(a) => a,
            Err(e) => {
                s.close().await;
                return Err(e);
            }
        };
        s.resource = location;
        if let Err(e) = s.accept(&answer).await {
            // Not connected in time: end the session the server answered for, as a client
            // giving up would, so it does not weigh on what is measured next.
            self.unsubscribe(s).await;
            return Err(e);
        }
        Ok(s)
    }

    /// WHEP: DELETE the resource, then close.
    async fn unsubscribe(&self, s: Subscriber) {
        if let Some(path) = &s.resource {
            let url = self.target.url(path);
            if let Err(e) = http_client().delete(url).send().await {
                eprintln!("DELETE {path}: {e}");
            }
        }
        s.close().await;
    }

    async fn counters(&self) -> Option<(f64, f64)> {
        let f = metric(&self.target, "showfloor_media_rtp_forwarded_total").await?;
        let d = metric(&self.target, "showfloor_media_rtp_dropped_total").await?;
        Some((f, d))
    }

    async fn finish(&self) {
        self.control.lock().await.close_room(&self.room.id).await;
    }
}

/// `media`: one publisher, `subscribers` subscribers.
#[derive(Debug, Clone)]
pub struct MediaLoad {
    /// Subscribers of a single run; the first step of a search.
    pub subscribers: usize,
    /// Seconds each measurement lasts.
    pub seconds: u64,
    /// Search the most subscribers with loss below `max_loss`.
    pub find_max: bool,
    /// The largest subscriber count a search tries.
    pub max_subscribers: usize,
    /// Loss bound (a fraction: 0.01 = 1 %).
    pub max_loss: f64,
    pub stream: Stream,
    /// The server's process, for its CPU time.
    pub server_pid: Option<u32>,
}

/// What one measurement found.
struct Step {
    subscribers: usize,
    sent: u64,
    received: u64,
    seconds: f64,
    server_cpu: Option<f64>,
    harness_cpu: Option<f64>,
    server_forwarded: Option<f64>,
    server_dropped: Option<f64>,
    jitter_mean_ms: f64,
    jitter_max_ms: f64,
    delay: hdrhistogram::Histogram<u64>,
    broken: usize,
}

impl Step {
    fn loss(&self) -> f64 {
        let expected = self.sent * self.subscribers as u64;
        if expected == 0 {
            return 1.0;
        }
        1.0 - (self.received as f64 / expected as f64).min(1.0)
    }
    fn summary(&self) -> serde_json::Value {
        let round = |v: f64, d: i32| (v * 10f64.powi(d)).round() / 10f64.powi(d);
        serde_json::json!({
            "subscribers": self.subscribers,
            "loss_percent": round(self.loss() * 100.0, 3),
            "packets_sent": self.sent,
            "packets_received": self.received,
            "received_per_s": (self.received as f64 / self.seconds).round(),
            "server_cpu_percent": self.server_cpu.map(|c| round(c * 100.0, 1)),
            "harness_cpu_percent": self.harness_cpu.map(|c| round(c * 100.0, 1)),
            "server_forwarded_per_s": self.server_forwarded.map(|f| (f / self.seconds).round()),
            "server_dropped": self.server_dropped,
            "jitter_mean_ms": round(self.jitter_mean_ms, 2),
            "jitter_max_ms": round(self.jitter_max_ms, 2),
            "delay_p50_ms": self.delay.value_at_quantile(0.5) as f64 / 1000.0,
            "delay_p99_ms": self.delay.value_at_quantile(0.99) as f64 / 1000.0,
            "broken_connections": self.broken,
        })
    }
}

/// Measures one window of `seconds` with the subscribers connected now.
/// What every measurement of a run shares.
struct Rig<'a> {
    server: &'a dyn MediaServer,
    publisher: &'a Publisher,
    window: &'a Window,
    clock: Clock,
    seconds: u64,
    server_pid: Option<u32>,
}

async fn measure(rig: &Rig<'_>, subs: &[Subscriber]) -> Step {
    let Rig {
        server,
        publisher,
        window,
        clock,
        seconds,
        server_pid,
    } = *rig;
    tokio::time::sleep(SETTLE).await;
    publisher.sent.in_window.store(0, Ordering::SeqCst);
    for s in subs {
        s.received.in_window.store(0, Ordering::SeqCst);
        s.received.take_delay();
    }
    let me = std::process::id();
    let counters0 = server.counters().await;
    let (cpu0, own0) = (server_pid.and_then(cpu_seconds), cpu_seconds(me));
    let from = clock.now_us();
    let to = from + seconds * 1_000_000;
    window.set(from, to);
    tokio::time::sleep(Duration::from_secs(seconds)).await;
    let (cpu1, own1) = (server_pid.and_then(cpu_seconds), cpu_seconds(me));
    let counters1 = server.counters().await;
    tokio::time::sleep(GRACE).await;
    let secs = seconds as f64;
    let mut delay = histogram();
    let (mut received, mut jitter_sum, mut jitter_max) = (0, 0.0, 0.0f64);
    for s in subs {
        received += s.received.in_window.load(Ordering::SeqCst);
        let _ = delay.add(s.received.take_delay());
        let j = s.received.jitter_ms();
        jitter_sum += j;
        jitter_max = jitter_max.max(j);
    }
    let diff = |a: Option<f64>, b: Option<f64>| Some(b? - a?);
    Step {
        subscribers: subs.len(),
        sent: publisher.sent.in_window.load(Ordering::SeqCst),
        received,
        seconds: secs,
        server_cpu: diff(cpu0, cpu1).map(|c| c / secs),
        harness_cpu: diff(own0, own1).map(|c| c / secs),
        server_forwarded: diff(counters0.map(|c| c.0), counters1.map(|c| c.0)),
        server_dropped: diff(counters0.map(|c| c.1), counters1.map(|c| c.1)),
        jitter_mean_ms: jitter_sum / subs.len().max(1) as f64,
        jitter_max_ms: jitter_max,
        delay,
        broken: subs.iter().filter(|s| s.broke()).count(),
    }
}

/// Brings the audience to `n` subscribers: connects more, or closes the newest. Those that
/// join are kept even when others do not, so the audience is what the server holds.
pub(crate) async fn resize(
    server: &Arc<dyn MediaServer>,
    subs: &mut Vec<Subscriber>,
    n: usize,
    clock: Clock,
    window: &Arc<Window>,
    show_progress: bool,
) -> anyhow::Result<()> {
    while subs.len() > n {
        if let Some(s) = subs.pop() {
            server.unsubscribe(s).await;
        }
    }
    let asked = n.saturating_sub(subs.len());
    let joins = join_counting(server, subs, n, clock, window, show_progress).await?;
    match joins.first_error {
        Some(e) => anyhow::bail!(
            "{} of {asked} subscribers could not join ({} refused with 503); the first: {e}",
            joins.refused + joins.failed,
            joins.refused
        ),
        None => Ok(()),
    }
}

/// Connects subscribers until there are `n`, keeping those that join and counting those that
/// do not (refused with 503, or not connected in time) instead of giving up at the first.
async fn join_counting(
    server: &Arc<dyn MediaServer>,
    subs: &mut Vec<Subscriber>,
    n: usize,
    clock: Clock,
    window: &Arc<Window>,
    show_progress: bool,
) -> anyhow::Result<Joins> {
    let started = std::time::Instant::now();
    let have = subs.len();
    let gate = Arc::new(tokio::sync::Semaphore::new(SUBSCRIBE_CONCURRENCY));
    let outcomes = join_with(n.saturating_sub(have), show_progress, |i| {
        let (server, window, gate) = (server.clone(), window.clone(), gate.clone());
        async move {
            let _permit = gate.acquire_owned().await?;
            anyhow::Ok(server.subscribe(have + i, clock, window).await)
        }
    })
    .await?;
    let mut joins = Joins::default();
    for outcome in outcomes {
        match outcome {
            Ok(s) => subs.push(s),
            Err(e) => {
                if e.is::<Refused>() {
                    joins.refused += 1;
                } else {
                    joins.failed += 1;
                }
                joins.first_error.get_or_insert_with(|| format!("{e:#}"));
            }
        }
    }
    joins.seconds = started.elapsed().as_secs_f64();
    Ok(joins)
}

pub async fn media(
    server: Arc<dyn MediaServer>,
    o: &MediaLoad,
    show_progress: bool,
) -> anyhow::Result<Report> {
    anyhow::ensure!(o.subscribers >= 1, "--subscribers must be at least 1");
    anyhow::ensure!(o.seconds >= 1, "--seconds must be at least 1");
    anyhow::ensure!(
        o.max_loss > 0.0 && o.max_loss < 1.0,
        "--max-loss-percent must be between 0 and 100"
    );
    let result = run_media(&server, o, show_progress).await;
    server.finish().await;
    result
}

async fn run_media(
    server: &Arc<dyn MediaServer>,
    o: &MediaLoad,
    show: bool,
) -> anyhow::Result<Report> {
    let clock = Clock::new();
    let window = Arc::new(Window::default());
    let publisher = server
        .publish(o.stream.clone(), clock, window.clone())
        .await?;
    let mut subs = Vec::new();
    let mut r = Report::new("media");
    r.number("server", server.name());
    r.number("packets_per_s", o.stream.packets_per_s);
    r.number("payload_bytes", o.stream.payload_bytes);
    r.number(
        "mbit_per_s_per_subscriber",
        (f64::from(o.stream.packets_per_s) * o.stream.payload_bytes as f64 * 8.0 / 1e5).round()
            / 10.0,
    );
    let ok = |s: &Step| s.loss() < o.max_loss && s.broken == 0;
    let rig = Rig {
        server: server.as_ref(),
        publisher: &publisher,
        window: &window,
        clock,
        seconds: o.seconds,
        server_pid: o.server_pid,
    };
    if !o.find_max {
        let joins = join_counting(server, &mut subs, o.subscribers, clock, &window, show).await?;
        r.number("refused", joins.refused);
        r.number("failed_to_join", joins.failed);
        r.number("join_seconds", (joins.seconds * 10.0).round() / 10.0);
        if let Some(e) = &joins.first_error {
            r.number("first_join_error", e.as_str());
        }
        r.check(
            "every subscriber joined",
            joins.refused + joins.failed == 0,
            format!(
                "{} joined, {} refused with 503, {} failed to join",
                subs.len(),
                joins.refused,
                joins.failed
            ),
        );
        anyhow::ensure!(
            !subs.is_empty(),
            "no subscriber joined: {}",
            joins.first_error.unwrap_or_default()
        );
        let s = measure(&rig, &subs).await;
        r.number("subscribers", s.subscribers);
        r.number("result", s.summary());
        r.latency = Some(Latency::of(&s.delay));
        r.check(
            "loss",
            s.loss() < o.max_loss,
            format!(
                "{:.3} % lost ({} of {} packets × {} subscribers arrived)",
                s.loss() * 100.0,
                s.received,
                s.sent,
                s.subscribers
            ),
        );
        r.check(
            "no broken connections",
            s.broken == 0 && !publisher.broke(),
            format!("{} subscriber connections broke", s.broken),
        );
        close_all(server.as_ref(), publisher, subs).await;
        return Ok(r);
    }
    // The search: double while the loss stays under the bound, then bisect.
    let (mut good, mut bad): (Option<Step>, Option<usize>) = (None, None);
    let mut n = o.subscribers.min(o.max_subscribers);
    let mut steps = Vec::new();
    for _ in 0..MAX_STEPS {
        if let Err(e) = resize(server, &mut subs, n, clock, &window, show).await {
            // The server refused more subscribers (its cap, or it fell over): that is the
            // first failing size.
            steps.push(serde_json::json!({"subscribers": n, "error": e.to_string()}));
            bad = Some(n);
        } else {
            let s = measure(&rig, &subs).await;
            steps.push(s.summary());
            if !show {
                eprintln!("media: {}", s.summary());
            }
            if ok(&s) {
                good = Some(s);
            } else {
                bad = Some(n);
            }
        }
        let good_n = good.as_ref().map(|g| g.subscribers);
        match next_probe(n, good_n, bad, o.max_subscribers, 5) {
            Some(next) => n = next,
            None => break,
        }
        // Broken subscribers would spoil later steps; start those afresh.
        let broken: Vec<usize> = (0..subs.len()).filter(|&i| subs[i].broke()).collect();
        for i in broken.into_iter().rev() {
            server.unsubscribe(subs.swap_remove(i)).await;
        }
    }
    r.number("max_loss_percent", o.max_loss * 100.0);
    r.number("steps", serde_json::Value::Array(steps));
    match &good {
        Some(g) => {
            r.number("max_subscribers", g.subscribers);
            r.number("at_max", g.summary());
            r.number(
                "first_failing_subscribers",
                bad.map_or(serde_json::Value::Null, |b| b.into()),
            );
            r.latency = Some(Latency::of(&g.delay));
        }
        None => r.number("max_subscribers", serde_json::Value::Null),
    }
    r.check(
        "a sustainable audience",
        good.is_some(),
        match &good {
            Some(g) => format!(
                "{} subscribers with {:.3} % loss",
                g.subscribers,
                g.loss() * 100.0
            ),
            None => format!(
                "not even {} subscribers stayed under {} % loss",
                o.subscribers,
                o.max_loss * 100.0
            ),
        },
    );
    close_all(server.as_ref(), publisher, subs).await;
    Ok(r)
}

async fn close_all(server: &dyn MediaServer, publisher: Publisher, subs: Vec<Subscriber>) {
    for s in subs {
        server.unsubscribe(s).await;
    }
    publisher.close().await;
}
