//! The harness against the fan-out floor (`benches/peers/floor/floor.c`, built by its
//! setup.sh with the system's C compiler): keeps the floor that `benches/compare.sh floor`
//! measures Showfloor against honest — every chat reaches every viewer, in the Socket.IO
//! wire the harness speaks. Small and short; timings are printed, never asserted.

use showfloor_loadtest::chat::{self, ChatStorm};
use showfloor_loadtest::Target;
use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::Path;
use std::process::{Child, Command, Stdio};

struct Floor {
    child: Child,
    addr: SocketAddr,
}

impl Drop for Floor {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn floor() -> Floor {
    let setup = Path::new(env!("CARGO_MANIFEST_DIR")).join("../benches/peers/floor/setup.sh");
    let out = Command::new(&setup)
        .output()
        .expect("run benches/peers/floor/setup.sh");
    assert!(
        out.status.success(),
        "setup.sh failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let bin = String::from_utf8(out.stdout).unwrap().trim().to_string();
    let mut child = Command::new(&bin)
        .arg("0")
        .stdout(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("start {bin}: {e}"));
    let mut line = String::new();
    BufReader::new(child.stdout.take().expect("stdout"))
        .read_line(&mut line)
        .expect("read the floor's first line");
    let port: u16 = line
        .trim()
        .strip_prefix("listening ")
        .and_then(|p| p.parse().ok())
        .unwrap_or_else(|| panic!("unexpected first line from the floor: {line:?}"));
    Floor {
        child,
        addr: SocketAddr::from(([127, 0, 0, 1], port)),
    }
}

fn nowhere() -> Target {
    // The Showfloor target is not used against the floor.
    Target {
        http: "127.0.0.1:9".parse().unwrap(),
        viewer_http: vec![],
        grpc: "http://127.0.0.1:9".into(),
        api_key: String::new(),
        tls: None,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_chat_reaches_every_viewer_of_the_floor() {
    let floor = floor();
    let o = ChatStorm {
        viewers: 300,
        senders: 5,
        rate: 20,
        seconds: 2,
        socketio: Some(floor.addr),
        find_max_p99_ms: None,
        server_pid: Some(floor.child.id()),
    };
    let report = chat::chat_storm(&nowhere(), &o, false).await.unwrap();
    println!("{}", report.human());
    assert!(report.passed(), "{}", report.human());
    let sent = report.numbers["messages_sent"].as_u64().unwrap();
    assert!(sent >= 20, "{}", report.human());
    assert_eq!(report.numbers["deliveries"].as_u64().unwrap(), sent * 300);
}
