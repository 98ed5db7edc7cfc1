//! `showfloor-loadtest`: drives a running Showfloor server and tells the truth about latency,
//! loss and correctness. Exit status: 0 every check passed, 1 a check failed, 2 the run could
//! not be carried out (server unreachable, bad arguments, setup refused).

use clap::{Parser, Subcommand, ValueEnum};
use showfloor_loadtest::audience::{self, Audience};
use showfloor_loadtest::chat::{self, ChatStorm};
use showfloor_loadtest::flash_sale::{self, FlashSale};
use showfloor_loadtest::janus::Janus;
use showfloor_loadtest::media::{self, MediaLoad, MediaServer};
use showfloor_loadtest::reconnect_storm::{self, ReconnectStorm};
use showfloor_loadtest::rtc::Stream;
use showfloor_loadtest::soak::{self, Soak};
use showfloor_loadtest::switchover::{self, Switchover};
use showfloor_loadtest::Target;
use std::net::SocketAddr;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

#[derive(Parser)]
#[command(name = "showfloor-loadtest", version, about)]
struct Cli {
    /// The server's HTTP/WebSocket address. Several, comma-separated or repeated (the nodes
    /// of a cluster): viewers are spread over them in turn, viewer i on address i mod n; the
    /// first is the one whose memory and media are measured.
    #[arg(
        long,
        default_value = "127.0.0.1:7880",
        env = "SHOWFLOOR_HTTP",
        value_delimiter = ','
    )]
    http: Vec<SocketAddr>,
    /// The server's gRPC control plane.
    #[arg(
        long,
        default_value = "http://127.0.0.1:7881",
        env = "SHOWFLOOR_SERVER"
    )]
    grpc: String,
    /// A host API key (the harness creates its own room with it and closes it afterwards).
    /// Not needed against a Socket.IO or Janus peer.
    #[arg(
        long,
        env = "SHOWFLOOR_API_KEY",
        hide_env_values = true,
        default_value = ""
    )]
    api_key: String,
    /// The server serves TLS itself (`--tls-cert`): viewers use `wss://`, WHIP/WHEP and
    /// `/metrics` `https://`; give `--grpc` as `https://…`.
    #[arg(long)]
    tls: bool,
    /// PEM file of a private CA to trust (besides the system's) with --tls.
    #[arg(long, requires = "tls")]
    ca: Option<std::path::PathBuf>,
    /// The name the server's certificate is checked against with --tls [default: the
    /// address's IP].
    #[arg(long, requires = "tls")]
    tls_name: Option<String>,
    /// Print the report as JSON on stdout (no progress bar).
    #[arg(long)]
    json: bool,
    /// Give up after this many seconds in all.
    #[arg(long, default_value_t = 600)]
    timeout_secs: u64,
    #[command(subcommand)]
    scenario: Scenario,
}

#[derive(Subcommand)]
enum Scenario {
    /// N viewers join at R per second and stay; connect success and time, server memory per viewer.
    Audience {
        #[arg(long, default_value_t = 1000)]
        viewers: usize,
        /// Joins per second.
        #[arg(long, default_value_t = 500)]
        rate: u32,
        /// Seconds to stay connected once everyone joined.
        #[arg(long, default_value_t = 5)]
        hold_secs: u64,
        /// Join a Socket.IO v4 server at this address instead (benches/peers/socketio).
        #[arg(long, value_name = "ADDR")]
        socketio: Option<SocketAddr>,
        /// The server's process id: memory is read from /proc/PID/status (VmRSS) — the same
        /// measure for every server. Without it, Showfloor's /metrics is used.
        #[arg(long, value_name = "PID")]
        server_pid: Option<u32>,
    },
    /// N viewers, K of them chatting M messages per second in total; delivery latency, loss.
    ChatStorm {
        #[arg(long, default_value_t = 1000)]
        viewers: usize,
        #[arg(long, default_value_t = 10)]
        senders: usize,
        /// Messages per second, all senders together.
        #[arg(long, default_value_t = 100)]
        rate: u32,
        /// Seconds of sending (per step, with --find-max-p99-ms).
        #[arg(long, default_value_t = 10)]
        seconds: u64,
        /// Chat with a Socket.IO v4 server at this address instead (benches/peers/socketio).
        #[arg(long, value_name = "ADDR")]
        socketio: Option<SocketAddr>,
        /// Search the highest rate (starting at --rate, doubling, then bisecting) whose
        /// deliveries keep p99 within this many milliseconds with no loss.
        #[arg(long, value_name = "MS")]
        find_max_p99_ms: Option<f64>,
        /// The server's process id: its CPU use while sending is reported.
        #[arg(long, value_name = "PID")]
        server_pid: Option<u32>,
    },
    /// Drop X % of N viewers at once and reconnect them with resume while events flow: time to
    /// recover, and proof that no viewer missed an event.
    ReconnectStorm {
        #[arg(long, default_value_t = 1000)]
        viewers: usize,
        #[arg(long, default_value_t = 50)]
        drop_percent: u32,
        /// Host announcements per second while the storm runs.
        #[arg(long, default_value_t = 20)]
        events_per_s: u32,
        #[arg(long, default_value_t = 9)]
        seconds: u64,
        /// How long the dropped viewers stay away before they reconnect, in milliseconds.
        #[arg(long, default_value_t = 1000)]
        away_ms: u64,
        /// The storm fails unless every dropped viewer resumed within this many seconds of
        /// reconnecting.
        #[arg(long, default_value_t = 5.0)]
        recover_within_secs: f64,
    },
    /// One publisher, N subscribers: loss against what was sent, jitter, delay, forwarded
    /// packets per second, the server's CPU; `--find-max` searches the most subscribers.
    Media {
        /// Subscribers (the first step of a search).
        #[arg(long, default_value_t = 100)]
        subscribers: usize,
        /// Seconds per measurement.
        #[arg(long, default_value_t = 5)]
        seconds: u64,
        /// Search the most subscribers with loss under --max-loss-percent (doubling, then
        /// bisecting, on the same publisher).
        #[arg(long)]
        find_max: bool,
        /// The most subscribers a search tries.
        #[arg(long, default_value_t = 2000)]
        max_subscribers: usize,
        #[arg(long, default_value_t = 1.0)]
        max_loss_percent: f64,
        /// Video packets per second the publisher sends.
        #[arg(long, default_value_t = 250)]
        packets_per_s: u32,
        /// RTP payload bytes per packet (250 × 1,100 B ≈ 2.2 Mbit/s).
        #[arg(long, default_value_t = 1100)]
        payload_bytes: usize,
        /// The server's process id, for its CPU use.
        #[arg(long, value_name = "PID")]
        server_pid: Option<u32>,
        /// The media server: Showfloor (WHIP/WHEP) or Janus VideoRoom (benches/peers/janus).
        #[arg(long, value_enum, default_value_t = Peer::Showfloor)]
        peer: Peer,
        /// Janus's HTTP API root, with `--peer janus`.
        #[arg(
            long,
            value_name = "URL",
            default_value = "http://127.0.0.1:8088/janus"
        )]
        janus_url: String,
    },
    /// N WebSocket viewers and M WHEP subscribers through K brand switches: disconnects,
    /// brand_switched latency, the new brand's key frame, the video gap.
    Switchover {
        #[arg(long, default_value_t = 1000)]
        viewers: usize,
        #[arg(long, default_value_t = 20)]
        subscribers: usize,
        /// Brands, each with its own publisher.
        #[arg(long, default_value_t = 2)]
        brands: usize,
        #[arg(long, default_value_t = 10)]
        switches: usize,
        /// Milliseconds between switches.
        #[arg(long, default_value_t = 2000)]
        interval_ms: u64,
    },
    /// A long show against a server the harness starts itself and kills with SIGKILL every
    /// few minutes (same ports, same data directory): chat, likes, brand switches, flash sales,
    /// orders, leaves and joins, WHEP viewers. Checks that every acknowledged order survives,
    /// nothing oversells, no viewer sees a gap and everyone comes back after each restart;
    /// reports the server's memory, file descriptors and tasks per life. Ignores --http,
    /// --grpc and --api-key; runs at least until its --seconds are up, whatever
    /// --timeout-secs says.
    Soak(SoakArgs),
    /// N dealers grab at the same instant; no oversell, limits, every win has its order.
    FlashSale {
        #[arg(long, default_value_t = 1000)]
        dealers: usize,
        #[arg(long, default_value_t = 100)]
        stock: u32,
        /// Units per dealer.
        #[arg(long, default_value_t = 1)]
        limit: u32,
        /// Grabs per dealer (distinct keys), sent together; each dealer also repeats its first.
        #[arg(long, default_value_t = 2)]
        attempts: u32,
    },
}

/// Default `soak` length.
const SOAK_MINUTES: u64 = 30;

/// `soak`'s options (see `Scenario::Soak`).
#[derive(clap::Args)]
struct SoakArgs {
    /// The `showfloor` binary to run (`target/release/showfloor`).
    #[arg(long, value_name = "PATH")]
    server_bin: std::path::PathBuf,
    /// The server's data directory (its SQLite store and the log of every start); a fresh
    /// one per run is best.
    #[arg(long, value_name = "DIR")]
    data_dir: std::path::PathBuf,
    /// Length of the run [default: 30 minutes].
    #[arg(long, conflicts_with = "seconds")]
    minutes: Option<u64>,
    #[arg(long)]
    seconds: Option<u64>,
    /// SIGKILL and restart the server this often.
    #[arg(long, default_value_t = 300)]
    kill_every_secs: u64,
    #[arg(long, default_value_t = 1000)]
    viewers: usize,
    /// Verified dealers (a quarter silver, the rest gold) placing orders and grabbing.
    #[arg(long, default_value_t = 50)]
    dealers: usize,
    /// WHEP viewers of the program (WebRTC, in the harness).
    #[arg(long, default_value_t = 20)]
    whep: usize,
    /// Brands, each with a presenter publishing by WHIP.
    #[arg(long, default_value_t = 3)]
    brands: usize,
    #[arg(long, default_value_t = 5.0)]
    chat_per_s: f64,
    #[arg(long, default_value_t = 20.0)]
    likes_per_s: f64,
    /// Orders per second, all dealers together (each dealer one request at a time).
    #[arg(long, default_value_t = 10.0)]
    orders_per_s: f64,
    /// Viewers and dealers leaving per minute (back after 0.5–3 s: half resuming, half as
    /// a new join).
    #[arg(long, default_value_t = 60.0)]
    leaves_per_min: f64,
    #[arg(long, default_value_t = 30)]
    switch_every_secs: u64,
    /// A flash sale of the brand on air this often (limit 1 per dealer; each dealer grabs
    /// twice).
    #[arg(long, default_value_t = 60)]
    sale_every_secs: u64,
    #[arg(long, default_value_t = 30)]
    sale_secs: u32,
    /// Units per sale [default: half the dealers].
    #[arg(long)]
    sale_stock: Option<u32>,
    /// Video packets per second per presenter (800-byte payloads).
    #[arg(long, default_value_t = 100)]
    media_packets_per_s: u32,
    /// Seconds between samples of the server's memory, descriptors and tasks.
    #[arg(long, default_value_t = 5)]
    sample_every_secs: u64,
    /// Growth within a life is measured from the first sample this many seconds in.
    #[arg(long, default_value_t = 30)]
    settle_secs: u64,
    /// Every viewer must be welcomed again within this many seconds of a restart.
    #[arg(long, default_value_t = 30)]
    back_within_secs: u64,
    /// Write the samples here: CSV if the name ends in .csv, else JSON.
    #[arg(long, value_name = "FILE")]
    series_out: Option<std::path::PathBuf>,
    /// Events the room keeps for resume (1–100000). Its memory grows until the window is
    /// full: a small window tells that growth from a leak.
    #[arg(long, default_value_t = 100_000)]
    history_window: u32,
}

impl SoakArgs {
    /// The checked options of the run.
    fn soak(self) -> anyhow::Result<Soak> {
        anyhow::ensure!(
            self.viewers + self.dealers <= MAX_CONNECTIONS,
            "at most {MAX_CONNECTIONS} viewers and dealers"
        );
        anyhow::ensure!(self.whep <= MAX_MEDIA, "at most {MAX_MEDIA} WHEP viewers");
        let secs = self.run_seconds();
        anyhow::ensure!(
            (10..=7 * 24 * 3600).contains(&secs),
            "a soak runs 10 seconds to 7 days"
        );
        for (name, v) in [
            ("--switch-every-secs", self.switch_every_secs),
            ("--sale-every-secs", self.sale_every_secs),
            ("--sample-every-secs", self.sample_every_secs),
        ] {
            anyhow::ensure!(v >= 1, "{name} must be at least 1");
        }
        anyhow::ensure!(
            (25..=10_000).contains(&self.media_packets_per_s),
            "--media-packets-per-s must be 25 to 10000"
        );
        anyhow::ensure!(
            (1..=100_000).contains(&self.history_window),
            "--history-window must be 1 to 100000"
        );
        Ok(Soak {
            duration: Duration::from_secs(secs),
            kill_every: Duration::from_secs(self.kill_every_secs),
            switch_every: Duration::from_secs(self.switch_every_secs),
            sale_every: Duration::from_secs(self.sale_every_secs),
            sale_stock: self.sale_stock.unwrap_or((self.dealers as u32 / 2).max(1)),
            sample_every: Duration::from_secs(self.sample_every_secs),
            settle: Duration::from_secs(self.settle_secs),
            back_within: Duration::from_secs(self.back_within_secs),
            server_bin: self.server_bin,
            data_dir: self.data_dir,
            viewers: self.viewers,
            dealers: self.dealers,
            whep: self.whep,
            brands: self.brands,
            chat_per_s: self.chat_per_s,
            likes_per_s: self.likes_per_s,
            orders_per_s: self.orders_per_s,
            leaves_per_min: self.leaves_per_min,
            sale_secs: self.sale_secs,
            media_packets_per_s: self.media_packets_per_s,
            series_out: self.series_out,
            history_window: self.history_window,
        })
    }

    /// The run's length: --minutes, --seconds, or the default.
    fn run_seconds(&self) -> u64 {
        self.seconds
            .unwrap_or_else(|| self.minutes.unwrap_or(SOAK_MINUTES).saturating_mul(60))
    }
}

/// The media server `media` measures.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum Peer {
    Showfloor,
    Janus,
}

const MAX_CONNECTIONS: usize = 100_000;
/// WebRTC subscribers per run (each is a PeerConnection in this process).
const MAX_MEDIA: usize = 10_000;

fn needs_key(target: &Target, needed: bool) -> anyhow::Result<()> {
    anyhow::ensure!(
        !needed || !target.api_key.is_empty(),
        "a host API key is needed: pass --api-key or set SHOWFLOOR_API_KEY"
    );
    Ok(())
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let rt = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("cannot start the runtime: {e}");
            return ExitCode::from(2);
        }
    };
    let tls = if cli.tls {
        let ca = match cli.ca.as_ref().map(std::fs::read).transpose() {
            Ok(ca) => ca,
            Err(e) => {
                eprintln!("cannot read --ca: {e}");
                return ExitCode::from(2);
            }
        };
        match showfloor_loadtest::tls::Tls::new(ca, cli.tls_name.clone()) {
            Ok(t) => Some(t),
            Err(e) => {
                eprintln!("TLS: {e:#}");
                return ExitCode::from(2);
            }
        }
    } else {
        None
    };
    let target = Target {
        http: cli.http[0],
        viewer_http: cli.http.clone(),
        grpc: cli.grpc.clone(),
        api_key: cli.api_key.clone(),
        tls,
    };
    let progress = !cli.json;
    let timeout_secs = match &cli.scenario {
        Scenario::Soak(args) => cli.timeout_secs.max(args.run_seconds().saturating_add(900)),
        _ => cli.timeout_secs,
    };
    let run = async {
        match cli.scenario {
            Scenario::Soak(args) => soak::soak(&args.soak()?, progress).await,
            Scenario::Audience {
                viewers,
                rate,
                hold_secs,
                socketio,
                server_pid,
            } => {
                anyhow::ensure!(
                    viewers <= MAX_CONNECTIONS,
                    "at most {MAX_CONNECTIONS} viewers"
                );
                anyhow::ensure!(hold_secs <= 3600, "at most 3600 seconds");
                needs_key(&target, socketio.is_none())?;
                let o = Audience {
                    viewers,
                    rate,
                    hold_secs,
                    socketio,
                    server_pid,
                };
                audience::audience(&target, &o, progress).await
            }
            Scenario::ChatStorm {
                viewers,
                senders,
                rate,
                seconds,
                socketio,
                find_max_p99_ms,
                server_pid,
            } => {
                anyhow::ensure!(
                    viewers <= MAX_CONNECTIONS,
                    "at most {MAX_CONNECTIONS} viewers"
                );
                anyhow::ensure!(seconds <= 3600, "at most 3600 seconds");
                needs_key(&target, socketio.is_none())?;
                let o = ChatStorm {
                    viewers,
                    senders,
                    rate,
                    seconds,
                    socketio,
                    find_max_p99_ms,
                    server_pid,
                };
                chat::chat_storm(&target, &o, progress).await
            }
            Scenario::ReconnectStorm {
                viewers,
                drop_percent,
                events_per_s,
                seconds,
                away_ms,
                recover_within_secs,
            } => {
                anyhow::ensure!(
                    viewers <= MAX_CONNECTIONS,
                    "at most {MAX_CONNECTIONS} viewers"
                );
                anyhow::ensure!(seconds <= 3600, "at most 3600 seconds");
                anyhow::ensure!(
                    recover_within_secs.is_finite() && recover_within_secs > 0.0,
                    "--recover-within-secs must be a positive number"
                );
                needs_key(&target, true)?;
                let o = ReconnectStorm {
                    viewers,
                    drop_percent,
                    events_per_s,
                    seconds,
                    away: Duration::from_millis(away_ms),
                    recover_within: Duration::from_secs_f64(recover_within_secs),
                };
                reconnect_storm::reconnect_storm(&target, &o, progress).await
            }
            Scenario::FlashSale {
                dealers,
                stock,
                limit,
                attempts,
            } => {
                anyhow::ensure!(
                    dealers <= MAX_CONNECTIONS,
                    "at most {MAX_CONNECTIONS} dealers"
                );
                needs_key(&target, true)?;
                let o = FlashSale {
                    dealers,
                    stock,
                    limit,
                    attempts,
                };
                flash_sale::flash_sale(&target, &o, progress).await
            }
            Scenario::Media {
                subscribers,
                seconds,
                find_max,
                max_subscribers,
                max_loss_percent,
                packets_per_s,
                payload_bytes,
                server_pid,
                peer,
                janus_url,
            } => {
                anyhow::ensure!(
                    subscribers.max(max_subscribers) <= MAX_MEDIA,
                    "at most {MAX_MEDIA} subscribers"
                );
                anyhow::ensure!(seconds <= 600, "at most 600 seconds per measurement");
                anyhow::ensure!(
                    (100..=1200).contains(&payload_bytes),
                    "--payload-bytes must be 100 to 1200 (one packet within a 1,500-byte MTU)"
                );
                anyhow::ensure!(
                    (25..=10_000).contains(&packets_per_s),
                    "--packets-per-s must be 25 to 10000"
                );
                needs_key(&target, peer == Peer::Showfloor)?;
                let o = MediaLoad {
                    subscribers,
                    seconds,
                    find_max,
                    max_subscribers,
                    max_loss: max_loss_percent / 100.0,
                    stream: Stream {
                        packets_per_s,
                        payload_bytes,
                        ..Stream::default()
                    },
                    server_pid,
                };
                let server: Arc<dyn MediaServer> = match peer {
                    Peer::Showfloor => {
                        Arc::new(media::Showfloor::new(&target, "Load test: media", 1).await?)
                    }
                    Peer::Janus => Arc::new(Janus::new(&janus_url).await?),
                };
                media::media(server, &o, progress).await
            }
            Scenario::Switchover {
                viewers,
                subscribers,
                brands,
                switches,
                interval_ms,
            } => {
                anyhow::ensure!(
                    viewers <= MAX_CONNECTIONS,
                    "at most {MAX_CONNECTIONS} viewers"
                );
                anyhow::ensure!(subscribers <= MAX_MEDIA, "at most {MAX_MEDIA} subscribers");
                anyhow::ensure!(switches <= 1000, "at most 1000 switches");
                anyhow::ensure!(
                    (100..=60_000).contains(&interval_ms),
                    "--interval-ms must be 100 to 60000"
                );
                needs_key(&target, true)?;
                let o = Switchover {
                    viewers,
                    subscribers,
                    brands,
                    switches,
                    interval: Duration::from_millis(interval_ms),
                    stream: Stream::default(),
                };
                switchover::switchover(&target, &o, progress).await
            }
        }
    };
    let result = rt.block_on(async {
        tokio::time::timeout(Duration::from_secs(timeout_secs), run)
            .await
            .unwrap_or_else(|_| Err(anyhow::anyhow!("gave up after {timeout_secs} s")))
    });
    match result {
        Ok(report) => {
            if cli.json {
                println!(
                    "{}",
                    serde_json::to_string_pretty(&report).unwrap_or_default()
                );
            } else {
                print!("{}", report.human());
            }
            if report.passed() {
                ExitCode::SUCCESS
            } else {
                ExitCode::from(1)
            }
        }
        Err(e) => {
            eprintln!("showfloor-loadtest: {e:#}");
            ExitCode::from(2)
        }
    }
}
