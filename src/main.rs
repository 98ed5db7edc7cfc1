//! The `showfloor` binary: parse the command line, start tracing, run the server or the CLI.

use clap::{Parser, Subcommand};
use showfloor::app::App;
use showfloor::config::{Config, ConfigError, ServeArgs, EXIT_CONFIG};
use showfloor::log_limit;
use std::process::ExitCode;

/// The server allocates and frees many small buffers per message; mimalloc's per-thread
/// free lists cost a fraction of glibc malloc's there (see BENCHMARKS.md).
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[derive(Parser)]
#[command(
    name = "showfloor",
    version,
    about = "Real-time server for B2B live order meetings"
)]
struct Cli {
    #[command(subcommand)]
    cmd: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the server (HTTP + WebSocket on 7880, gRPC on 7881, store in ./data).
    Serve(Box<ServeArgs>),
    /// Control-plane client: every RPC as a subcommand.
    Ctl(showfloor::cli::ctl::CtlArgs),
    /// A terminal viewer: prints every event as a JSON line; typed lines are sent as chat.
    Viewer(showfloor::cli::viewer::ViewerArgs),
    /// Recompute a lucky-draw record (from GetDrawRecord / `showfloor ctl get-draw-record`)
    /// and print OK or what does not match.
    VerifyDraw {
        /// The record's JSON file, or `-` for standard input.
        record: std::path::PathBuf,
    },
}

/// Crates that log what they carry when asked for debug or trace output (tokio-postgres logs
/// every statement's parameters, room token keys among them): held at info whatever
/// `SHOWFLOOR_LOG` asks, so no secret reaches a log line (`tests/log_secrets.rs`).
const CAPPED: &[&str] = &["tokio_postgres=info"];

/// The filter without `SHOWFLOOR_LOG`: the server at info, webrtc's crates at warn (at info
/// they write nine lines per WHEP session — state changes the server's own lines and metrics
/// already tell; `SHOWFLOOR_LOG=info` brings them back). A directive's target is a prefix:
/// `rtc` covers `rtc_ice`, `rtc_dtls` and the rest.
const DEFAULT_FILTER: &str = "info,rtc=warn,webrtc=warn";

fn init_tracing() {
    let mut filter = tracing_subscriber::EnvFilter::try_from_env("SHOWFLOOR_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(DEFAULT_FILTER));
    for directive in CAPPED {
        filter = filter.add_directive(directive.parse().expect("a valid directive"));
    }
    use std::io::IsTerminal;
    use tracing_subscriber::layer::SubscriberExt;
    use tracing_subscriber::util::SubscriberInitExt;
    let limit = std::sync::Arc::new(log_limit::RepeatLimit::default());
    tracing_subscriber::registry()
        .with(filter)
        .with(log_limit::RepeatLimitLayer(limit.clone()))
        .with(
            tracing_subscriber::fmt::layer()
                .with_ansi(std::io::stderr().is_terminal())
                .with_writer(std::io::stderr),
        )
        .init();
    // What the limit held back, one line per place, once per window.
    std::thread::Builder::new()
        .name("log-limit".into())
        .spawn(move || loop {
            std::thread::sleep(log_limit::WINDOW);
            for (origin, count) in limit.take_suppressed() {
                tracing::warn!(
                    target: "showfloor::log_limit",
                    suppressed = count,
                    from = %origin.target,
                    level = %origin.level,
                    at = %origin.place,
                    "repeated log lines suppressed (at most {} per place per {} s)",
                    log_limit::PER_WINDOW,
                    log_limit::WINDOW.as_secs()
                );
            }
        })
        .expect("spawning the log-limit reporter");
}

async fn shutdown_signal() {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
            .expect("installing a SIGTERM handler");
        tokio::select! {
            _ = ctrl_c => {},
            _ = term.recv() => {},
        }
    }
    #[cfg(not(unix))]
    let _ = ctrl_c.await;
}

/// Raises the soft limit on open files to the hard one: every viewer holds a socket, and the
/// usual soft default (1,024) would cap a node far below `--max-connections`. Says so if even
/// the hard limit is too low for that many viewers (a WebSocket and an HTTP connection each).
fn raise_open_files(max_connections: usize) {
    let needed = 2 * max_connections as u64 + 1024;
    match rlimit::increase_nofile_limit(u64::MAX) {
        Ok(soft) if soft < needed => tracing::warn!(
            limit = soft,
            needed,
            "the open-file limit is below what --max-connections needs: raise the hard limit \
             (systemd LimitNOFILE, docker --ulimit nofile, ulimit -Hn)"
        ),
        Ok(soft) => tracing::info!(limit = soft, "open-file limit"),
        Err(e) => tracing::warn!(error = %e, "cannot raise the open-file limit"),
    }
}

/// Transparent huge pages off for this process, before the runtime allocates. mimalloc asks
/// for them on its arenas (`MADV_HUGEPAGE`), and where THP is `always` the kernel backs them
/// anyway: a 2 MiB page, once touched, stays resident whole, so the server's memory grew in
/// 2 MiB steps and sat ≈ 20–35 MB higher at 1,000–10,000 viewers. What they bought: ≈ 5 % of
/// a lone broadcast's p99 to 5,000 viewers, no CPU (BENCHMARKS.md, Soak).
#[cfg(target_os = "linux")]
fn no_transparent_huge_pages() -> std::io::Result<()> {
    // SAFETY: PR_SET_THP_DISABLE only sets a flag on this process's memory map; the other
    // arguments must be zero.
    match unsafe { libc::prctl(libc::PR_SET_THP_DISABLE, 1, 0, 0, 0) } {
        0 => Ok(()),
        _ => Err(std::io::Error::last_os_error()),
    }
}

#[cfg(not(target_os = "linux"))]
fn no_transparent_huge_pages() -> std::io::Result<()> {
    Ok(())
}

async fn serve(args: ServeArgs, huge_pages: std::io::Result<()>) -> ExitCode {
    let config = match Config::from_args(args) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("showfloor: {e}");
            return ExitCode::from(EXIT_CONFIG);
        }
    };
    init_tracing();
    if let Err(e) = huge_pages {
        tracing::warn!(error = %e, "cannot turn transparent huge pages off");
    }
    raise_open_files(config.max_connections);
    let app = match App::start(config).await {
        Ok(a) => a,
        Err(e) => {
            eprintln!("showfloor: {e:#}");
            // A setting to fix (PostgreSQL refused our credentials, say) is a usage error.
            return if e.downcast_ref::<ConfigError>().is_some() {
                ExitCode::from(EXIT_CONFIG)
            } else {
                ExitCode::FAILURE
            };
        }
    };
    if let Some(k) = &app.dev_key {
        eprintln!("showfloor: --dev: generated host API key (valid until exit): {k}");
        eprintln!("showfloor: export SHOWFLOOR_API_KEY={k}");
    }
    eprintln!(
        "showfloor: http+ws on {}, grpc on {}",
        app.http_addr, app.grpc_addr
    );
    shutdown_signal().await;
    tracing::info!("shutting down");
    app.shutdown().await;
    ExitCode::SUCCESS
}

fn main() -> ExitCode {
    let huge_pages = no_transparent_huge_pages();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            eprintln!("showfloor: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    runtime.block_on(run(huge_pages))
}

async fn run(huge_pages: std::io::Result<()>) -> ExitCode {
    let cli = Cli::parse();
    match cli.cmd {
        Command::Serve(args) => serve(*args, huge_pages).await,
        Command::Ctl(args) => showfloor::cli::ctl::run(args).await,
        Command::Viewer(args) => showfloor::cli::viewer::run(args).await,
        Command::VerifyDraw { record } => {
            ExitCode::from(showfloor::cli::verify_draw::run(&record) as u8)
        }
    }
}
