//! The harness against the real Janus VideoRoom peer (`benches/peers/janus`): keeps the Janus
//! signalling that `benches/compare.sh` relies on honest. Installs and starts Janus itself on
//! free ports; a small `media` run must pass with every packet accounted for. Timings are
//! printed, never asserted.

use showfloor_loadtest::janus::Janus;
use showfloor_loadtest::media::{self, MediaLoad};
use showfloor_loadtest::rtc::Stream;
use std::path::PathBuf;
use std::process::Command;
use std::sync::Arc;

/// A Janus started by `janus.sh start`; stopped when dropped, so a failing test stops it too.
struct Peer {
    script: PathBuf,
    port: u16,
    pid: u32,
    /// Its configs and log; removed after the stop (fields drop after `Drop::drop`).
    run_dir: tempfile::TempDir,
}

impl Peer {
    fn start() -> Peer {
        let script =
            PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../benches/peers/janus/janus.sh");
        // A free port for the REST API, and an RTP range apart from compare.sh's default
        // (10000-20000) and from the clients' ephemeral ports.
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("a free port")
            .port();
        let mut peer = Peer {
            script,
            port,
            pid: 0,
            run_dir: tempfile::tempdir().expect("a run folder"),
        };
        let started = peer
            .command("start")
            .env("JANUS_RTP_PORTS", "22000-23999")
            .status()
            .expect("run benches/peers/janus/janus.sh start");
        assert!(started.success(), "janus.sh start failed: {started}");
        let pid = peer.command("pid").output().expect("run janus.sh pid");
        assert!(pid.status.success(), "janus.sh pid: {pid:?}");
        peer.pid = String::from_utf8_lossy(&pid.stdout)
            .trim()
            .parse()
            .expect("a pid");
        peer
    }

    fn command(&self, what: &str) -> Command {
        let mut c = Command::new(&self.script);
        c.arg(what)
            .env("JANUS_HTTP_PORT", self.port.to_string())
            .env("JANUS_RUN_DIR", self.run_dir.path());
        c
    }

    fn url(&self) -> String {
        format!("http://127.0.0.1:{}/janus", self.port)
    }
}

impl Drop for Peer {
    fn drop(&mut self) {
        let _ = self.command("stop").status();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn media_runs_against_janus() {
    let peer = Peer::start();
    let o = MediaLoad {
        subscribers: 5,
        seconds: 2,
        find_max: false,
        max_subscribers: 5,
        max_loss: 0.01,
        // A debug build on two cores shared with Janus: a light stream.
        stream: Stream {
            packets_per_s: 100,
            ..Stream::default()
        },
        server_pid: Some(peer.pid),
    };
    let janus = Janus::new(&peer.url())
        .await
        .expect("a Janus session and room");
    let report = media::media(Arc::new(janus), &o, false).await.unwrap();
    println!("{}", report.human());
    assert!(report.passed(), "{}", report.human());
    assert_eq!(report.numbers["server"], "janus");
    let result = &report.numbers["result"];
    let sent = result["packets_sent"].as_u64().unwrap();
    assert!(sent >= 150, "the publisher sent through Janus: {result}");
    assert!(
        result["packets_received"].as_u64().unwrap() >= sent * 5 * 99 / 100,
        "every subscriber received what was sent: {result}"
    );
    assert!(
        result["server_cpu_percent"].as_f64().unwrap() > 0.0,
        "Janus's CPU is read from its pid: {result}"
    );
}
