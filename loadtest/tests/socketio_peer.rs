//! The harness against the real Socket.IO peer (`benches/peers/socketio/server.js`): keeps the
//! Socket.IO v4 client that `benches/compare.sh` relies on honest. Small and short; timings
//! are printed, never asserted.

use showfloor_loadtest::audience::{audience, Audience};
use showfloor_loadtest::chat::{self, ChatStorm};
use showfloor_loadtest::Target;
use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::Path;
use std::process::{Child, Command, Stdio};

struct Peer {
    child: Child,
    addr: SocketAddr,
}

impl Drop for Peer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Installs the peer's dependencies once per test process: the tests run in parallel, and
/// two `npm ci` at once in one folder delete each other's files.
static SETUP: std::sync::OnceLock<()> = std::sync::OnceLock::new();

fn peer() -> Peer {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../benches/peers/socketio");
    SETUP.get_or_init(|| {
        let setup = Command::new(dir.join("setup.sh"))
            .status()
            .expect("run benches/peers/socketio/setup.sh");
        assert!(setup.success(), "setup.sh failed: {setup}");
    });
    let mut child = Command::new("node")
        .arg("server.js")
        .arg("0")
        .current_dir(&dir)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start node server.js");
    let mut line = String::new();
    BufReader::new(child.stdout.take().expect("stdout"))
        .read_line(&mut line)
        .expect("read the peer's first line");
    let port: u16 = match line
        .trim()
        .strip_prefix("listening ")
        .and_then(|p| p.parse().ok())
    {
        Some(p) => p,
        None => {
            let _ = child.kill();
            let mut err = String::new();
            if let Some(mut e) = child.stderr.take() {
                let _ = std::io::Read::read_to_string(&mut e, &mut err);
            }
            panic!("unexpected first line from the peer: {line:?}; its stderr: {err}");
        }
    };
    Peer {
        child,
        addr: SocketAddr::from(([127, 0, 0, 1], port)),
    }
}

fn nowhere() -> Target {
    // The Showfloor target is not used against a Socket.IO peer.
    Target {
        http: "127.0.0.1:9".parse().unwrap(),
        viewer_http: vec![],
        grpc: "http://127.0.0.1:9".into(),
        api_key: String::new(),
        tls: None,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn chat_storm_and_audience_run_against_socketio() {
    let peer = peer();
    let o = ChatStorm {
        viewers: 100,
        senders: 5,
        rate: 50,
        seconds: 2,
        socketio: Some(peer.addr),
        find_max_p99_ms: None,
        server_pid: None,
    };
    let report = chat::chat_storm(&nowhere(), &o, false).await.unwrap();
    println!("{}", report.human());
    assert!(report.passed(), "{}", report.human());
    assert_eq!(report.numbers["server"], "socket.io");
    assert!(report.numbers["deliveries"].as_u64().unwrap() >= 100 * 90);

    let o = Audience {
        viewers: 200,
        rate: 1000,
        hold_secs: 1,
        socketio: Some(peer.addr),
        server_pid: Some(peer.child.id()),
    };
    let report = audience(&nowhere(), &o, false).await.unwrap();
    println!("{}", report.human());
    assert!(report.passed(), "{}", report.human());
    assert!(report.numbers["server_kb_per_viewer"].is_number());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_search_finds_a_rate_on_socketio() {
    let peer = peer();
    let o = ChatStorm {
        viewers: 50,
        senders: 5,
        rate: 20,
        seconds: 1,
        socketio: Some(peer.addr),
        find_max_p99_ms: Some(100.0),
        server_pid: None,
    };
    let report = chat::chat_storm(&nowhere(), &o, false).await.unwrap();
    println!("{}", report.human());
    assert!(report.passed(), "{}", report.human());
    let steps = report.numbers["steps"].as_array().unwrap();
    assert!(steps.len() >= 2, "a search takes several steps");
    assert!(report.numbers["max_rate"].as_u64().unwrap() >= 20);
}
