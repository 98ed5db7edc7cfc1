//! The `soak` scenario: a long show — chat, likes, brand switches, flash sales, orders, viewers
//! leaving and coming back, WHEP viewers — against a server process the harness starts itself
//! and kills with SIGKILL every few minutes, restarting it on the same data directory. At the
//! end (after one more kill) it checks that every acknowledged order and win is in the store,
//! that no sale oversold, that no viewer saw a gap within a life of the server and every
//! viewer and WHEP viewer came back after every restart; and it reports the server's memory,
//! file descriptors and tasks over time, per life.
//!
//! `server` runs the process, `members` and `dealer` are the WebSocket audience, `host` the
//! control plane, `whep` the media, `sampler` the resources, `verify` the checks.

mod dealer;
mod host;
mod members;
pub mod sampler;
mod server;
mod verify;
mod whep;

use crate::media::Showfloor;
use crate::room::Room;
use crate::rtc::Stream;
use crate::{Clock, Report, Target};
use members::{Cmd, MemberReport};
use rand::Rng;
use server::{Server, ServerSpec};
use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{mpsc, watch};

/// `soak`: see the module documentation. Rates are for the whole audience.
#[derive(Debug, Clone)]
pub struct Soak {
    /// The `showfloor` binary to run.
    pub server_bin: PathBuf,
    /// Its data directory (created if missing); the server's log goes there too.
    pub data_dir: PathBuf,
    pub duration: Duration,
    pub kill_every: Duration,
    pub viewers: usize,
    pub dealers: usize,
    /// WHEP viewers (each a PeerConnection in the harness).
    pub whep: usize,
    pub brands: usize,
    pub chat_per_s: f64,
    pub likes_per_s: f64,
    /// Orders placed per second by all dealers together.
    pub orders_per_s: f64,
    /// Viewers and dealers leaving per minute; each comes back after 0.5–3 s, half of them
    /// resuming, half as a new join.
    pub leaves_per_min: f64,
    pub switch_every: Duration,
    pub sale_every: Duration,
    pub sale_secs: u32,
    pub sale_stock: u32,
    /// Video packets per second each presenter sends.
    pub media_packets_per_s: u32,
    pub sample_every: Duration,
    /// Resource growth is measured from the first sample this long into a life.
    pub settle: Duration,
    /// Viewers must be back this soon after a restart.
    pub back_within: Duration,
    /// Write the resource samples here (`.csv`, else JSON).
    pub series_out: Option<PathBuf>,
    /// Events the room keeps for resume (its `history_window`): memory the room holds on
    /// purpose until the window is full.
    pub history_window: u32,
}

/// The run's stage: members and pacers act only while `Run`; `Drain` lets the last answers
/// arrive; `Stop` ends every task.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Phase {
    Run,
    Drain,
    Stop,
}

/// A life of the server process: its number (1 first), whether it is up, when it was ready
/// (µs on the run's clock).
#[derive(Debug, Clone, Copy)]
pub(crate) struct Life {
    pub n: u32,
    pub up: bool,
    pub ready_us: u64,
}

/// What every member task shares.
pub(crate) struct Ctx {
    target: Target,
    room: Room,
    clock: Clock,
    order_every: Duration,
    phase: watch::Receiver<Phase>,
    /// Dealers' requests sent and not yet answered: a kill waits for one.
    in_flight: Arc<AtomicUsize>,
}

/// After the run, this long for the answers still on their way.
const DRAIN: Duration = Duration::from_secs(5);
/// A kill waits at most this long (and half the kill interval) for a dealer request in flight.
const IN_FLIGHT_WAIT: Duration = Duration::from_secs(10);

pub async fn soak(o: &Soak, progress: bool) -> anyhow::Result<Report> {
    anyhow::ensure!(
        o.viewers + o.dealers >= 1,
        "--viewers and --dealers cannot both be 0"
    );
    anyhow::ensure!((1..=16).contains(&o.brands), "--brands must be 1 to 16");
    anyhow::ensure!(
        o.kill_every >= Duration::from_secs(5),
        "--kill-every-secs must be at least 5"
    );
    anyhow::ensure!(o.sale_stock >= 1, "--sale-stock must be at least 1");
    anyhow::ensure!(
        (1..=86_400).contains(&o.sale_secs),
        "--sale-secs must be 1 to 86400"
    );
    for (name, rate) in [
        ("--chat-per-s", o.chat_per_s),
        ("--likes-per-s", o.likes_per_s),
        ("--orders-per-s", o.orders_per_s),
        ("--leaves-per-min", o.leaves_per_min),
    ] {
        anyhow::ensure!(
            rate.is_finite() && (0.0..=10_000.0).contains(&rate),
            "{name} must be 0 to 10000"
        );
    }
    std::fs::create_dir_all(&o.data_dir)
        .map_err(|e| anyhow::anyhow!("cannot create {}: {e}", o.data_dir.display()))?;
    let spec = ServerSpec {
        bin: o.server_bin.clone(),
        data_dir: o.data_dir.clone(),
        api_key: format!("soak-{:032x}", rand::rng().random::<u128>()),
        log: o.data_dir.join("showfloor-soak.log"),
    };
    let mut server = Server::start(spec.clone()).await?;
    let target = Target {
        http: server.http,
        viewer_http: vec![server.http],
        grpc: format!("http://{}", server.grpc),
        api_key: spec.api_key.clone(),
        tls: None,
    };
    let result = run(o, &mut server, &target, progress).await;
    let _ = server.kill().await;
    result
}

async fn run(
    o: &Soak,
    server: &mut Server,
    target: &Target,
    progress: bool,
) -> anyhow::Result<Report> {
    let mut control = target.control().await?;
    let show = host::set_up(&mut control, o).await?;
    let clock = Clock::new();
    let say = |what: String| {
        if progress {
            eprintln!("soak {:>7.1} s  {what}", clock.now_us() as f64 / 1e6);
        }
    };
    let (life_tx, life_rx) = watch::channel(Life {
        n: 1,
        up: true,
        ready_us: 0,
    });
    let (pid_tx, pid_rx) = watch::channel(server.pid());
    let (phase_tx, phase_rx) = watch::channel(Phase::Run);
    let (stop_tx, stop_rx) = watch::channel(false);
    let sampler = tokio::spawn(sampler::sample(
        target.clone(),
        o.sample_every,
        clock,
        life_rx.clone(),
        pid_rx,
        stop_rx,
    ));
    let ctx = Arc::new(Ctx {
        target: target.clone(),
        room: show.room.clone(),
        clock,
        order_every: Duration::from_secs_f64(
            (o.dealers as f64 / o.orders_per_s.max(1e-3)).clamp(0.05, 3600.0),
        ),
        phase: phase_rx.clone(),
        in_flight: Arc::default(),
    });
    let mut members = Vec::new();
    let mut mailboxes = Vec::new();
    for i in 0..o.viewers + o.dealers {
        let (tx, rx) = mpsc::channel(8);
        let tier = (i >= o.viewers).then_some(if i % 4 == 0 { "silver" } else { "gold" });
        members.push(tokio::spawn(members::member(ctx.clone(), i, tier, rx)));
        mailboxes.push(tx);
    }
    let pacer = tokio::spawn(pace(o.clone(), mailboxes, phase_rx.clone()));
    let show = Arc::new(show);
    let host = {
        let (target, show, o, phase) = (target.clone(), show.clone(), o.clone(), phase_rx.clone());
        tokio::spawn(async move { host::host(target, &show, &o, phase).await })
    };
    let rig = Arc::new(Showfloor::for_room(
        target,
        target.control().await?,
        show.room.clone(),
    ));
    let media = tokio::spawn(whep::media(
        rig,
        o.brands,
        o.whep,
        Stream {
            packets_per_s: o.media_packets_per_s,
            payload_bytes: 800,
            ..Stream::default()
        },
        life_rx.clone(),
        phase_rx.clone(),
        clock,
    ));
    say(format!(
        "life 1 (pid {}): {} viewers, {} dealers, {} WHEP viewers",
        server.pid().unwrap_or(0),
        o.viewers,
        o.dealers,
        o.whep
    ));

    // The kills.
    let start = tokio::time::Instant::now();
    let end = start + o.duration;
    let mut kills = Vec::new();
    // When each life was ready (µs): the first when the members started.
    let mut ready_at = vec![0];
    let mut next_kill = start + o.kill_every;
    let mut in_flight_at_kills = 0;
    while next_kill < end {
        tokio::time::sleep_until(next_kill).await;
        let in_flight =
            request_in_flight(&ctx.in_flight, (o.kill_every / 2).min(IN_FLIGHT_WAIT)).await;
        in_flight_at_kills += in_flight;
        let (down, ready) = kill_and_restart(server, &life_tx, &pid_tx, &clock).await?;
        say(format!(
            "kill -9 #{}: life {} up after {} ms (pid {}); {in_flight} dealer requests were in flight",
            kills.len() + 1,
            life_tx.borrow().n,
            down / 1000,
            server.pid().unwrap_or(0)
        ));
        kills.push(down);
        ready_at.push(ready);
        next_kill += o.kill_every;
    }
    tokio::time::sleep_until(end).await;
    // The series ends with the full audience still there: a sample taken while members leave
    // would make the last life's growth (last sample − settled one) look smaller than it is.
    stop_tx.send_replace(true);
    let samples = sampler.await?;

    // Wind down: no new requests, the last answers, then everyone stops.
    say("draining".into());
    phase_tx.send_replace(Phase::Drain);
    let _ = pacer.await;
    let host = host.await?;
    tokio::time::sleep(DRAIN).await;
    phase_tx.send_replace(Phase::Stop);
    let mut reports: Vec<MemberReport> = Vec::new();
    for m in members {
        reports.push(m.await?);
    }
    let media = media.await?;
    if let Some(path) = &o.series_out {
        sampler::write_series(path, &samples)?;
    }

    // One more kill, so that what is read back comes from the store, not from memory.
    let (last, _) = kill_and_restart(server, &life_tx, &pid_tx, &clock).await?;
    say(format!(
        "final kill -9: up after {} ms; verifying",
        last / 1000
    ));
    let mut c = target.control().await?;
    let stored = verify::read_back(&mut c, &show.room.id).await?;
    let run = verify::Run {
        o,
        kills: &kills,
        in_flight_at_kills,
        ready_at: &ready_at,
        members: &reports,
        host: &host,
        media: &media,
        samples: &samples,
        stored: &stored,
    };
    Ok(run.report())
}

/// Waits, up to `within`, until a dealer's request is in flight (sent, not answered), so the
/// kill that follows catches requests the server may or may not have committed: each must
/// then be sent again with its key and answered once. How many were in flight (0: none came).
async fn request_in_flight(in_flight: &AtomicUsize, within: Duration) -> usize {
    let deadline = tokio::time::Instant::now() + within;
    loop {
        let n = in_flight.load(Ordering::Relaxed);
        if n > 0 || tokio::time::Instant::now() >= deadline {
            return n;
        }
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
}

/// SIGKILL, then the same server again on the same ports and data: µs from the kill until it
/// was ready, and when it was.
async fn kill_and_restart(
    server: &mut Server,
    life: &watch::Sender<Life>,
    pid: &watch::Sender<Option<u32>>,
    clock: &Clock,
) -> anyhow::Result<(u64, u64)> {
    life.send_modify(|l| l.up = false);
    pid.send_replace(None);
    let t0 = clock.now_us();
    server.kill().await?;
    server.restart().await?;
    let ready = clock.now_us();
    life.send_modify(|l| {
        *l = Life {
            n: l.n + 1,
            up: true,
            ready_us: ready,
        }
    });
    pid.send_replace(server.pid());
    Ok((ready - t0, ready))
}

/// Chat, likes and leaves, spread over the audience at random until the run drains. A
/// member whose mailbox is full (busy reconnecting) skips the turn.
async fn pace(o: Soak, mailboxes: Vec<mpsc::Sender<Cmd>>, mut phase: watch::Receiver<Phase>) {
    let every =
        |rate: f64| Duration::from_secs_f64(1.0 / rate.max(1e-3)).max(Duration::from_millis(1));
    let mut chat = tokio::time::interval(every(o.chat_per_s));
    let mut like = tokio::time::interval(every(o.likes_per_s));
    let mut leave = tokio::time::interval(every(o.leaves_per_min / 60.0));
    for t in [&mut chat, &mut like, &mut leave] {
        t.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
        t.reset();
    }
    let (viewers, all) = (o.viewers, mailboxes.len());
    let mut n = 0u64;
    loop {
        let cmd = tokio::select! {
            _ = chat.tick(), if viewers > 0 && o.chat_per_s > 0.0 => {
                n += 1;
                (rand::rng().random_range(0..viewers), Cmd::Chat(format!("soak chat {n}")))
            }
            _ = like.tick(), if viewers > 0 && o.likes_per_s > 0.0 => {
                (rand::rng().random_range(0..viewers), Cmd::Like(rand::rng().random_range(1..=5)))
            }
            _ = leave.tick(), if o.leaves_per_min > 0.0 => {
                let mut r = rand::rng();
                let away = Duration::from_millis(r.random_range(500..=3000));
                (r.random_range(0..all), Cmd::Leave { away, resume: r.random_bool(0.5) })
            }
            c = phase.changed() => {
                if c.is_err() || *phase.borrow() != Phase::Run {
                    return;
                }
                continue;
            }
        };
        let _ = mailboxes[cmd.0].try_send(cmd.1);
    }
}
