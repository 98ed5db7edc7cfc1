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

async fn serve(args: ServeArgs) -> ExitCode {
    let config = match Config::from_args(args) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("showfloor: {e}");
            return ExitCode::from(EXIT_CONFIG);
        }
    };
    init_tracing();
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

#[tokio::main]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.cmd {
        Command::Serve(args) => serve(*args).await,
        Command::Ctl(args) => showfloor::cli::ctl::run(args).await,
        Command::Viewer(args) => showfloor::cli::viewer::run(args).await,
        Command::VerifyDraw { record } => {
            ExitCode::from(showfloor::cli::verify_draw::run(&record) as u8)
        }
    }
}
