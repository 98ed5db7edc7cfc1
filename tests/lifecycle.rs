//! The binary: a bad config exits 64 with a clear message; `serve` answers health checks,
//! `ctl` drives it, and SIGTERM closes viewers with "going away" and exits 0.

mod common;
use common::*;
use std::process::Command;

#[test]
fn bad_config_exits_64_with_a_clear_message() {
    let out = bin()
        .args(["serve"])
        .env_remove("SHOWFLOOR_API_KEYS")
        .env_remove("SHOWFLOOR_DEV")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(64));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("no host API key"), "{err}");

    let out = bin()
        .args(["serve", "--dev", "--outbound-queue", "1"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(64));
    assert!(String::from_utf8_lossy(&out.stderr).contains("outbound_queue"));

    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("bad.toml");
    std::fs::write(&cfg, "http_addr = 12\n").unwrap();
    let out = bin()
        .args(["serve", "--dev", "--config"])
        .arg(&cfg)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(64));
    assert!(String::from_utf8_lossy(&out.stderr).contains("http_addr"));
}

#[test]
fn a_postgres_that_refuses_us_exits_64_naming_it_without_the_password() {
    let server = showfloor::store::postgres::scratch::server_url();
    let mut url = url::Url::parse(&server).unwrap();
    // No such database: waiting would not help, so the node stops at once.
    url.set_path("showfloor_no_such_database");
    url.set_password(Some("hunter2")).unwrap();
    let serve = |url: &str| {
        bin()
            .args(["serve", "--dev", "--http-addr", "127.0.0.1:0"])
            .args([
                "--grpc-addr",
                "127.0.0.1:0",
                "--media-udp-addr",
                "127.0.0.1:0",
            ])
            .args(["--postgres", url])
            .output()
            .unwrap()
    };
    for (url, says) in [
        (url.as_str(), "showfloor_no_such_database"),
        (
            "postgres://nobody@127.0.0.1/x?sslmode=maybe",
            "sslmode=maybe",
        ),
    ] {
        let out = serve(url);
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(64), "{url}: {err}");
        assert!(err.contains(says), "{url}: {err}");
        assert!(!err.contains("hunter2"), "{err}");
    }
}

fn ctl(grpc: u16, args: &[&str]) -> (i32, String, String) {
    let out = bin()
        .arg("ctl")
        .args([
            "--server",
            &format!("http://127.0.0.1:{grpc}"),
            "--key",
            KEY,
        ])
        .args(args)
        .output()
        .unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).to_string(),
        String::from_utf8_lossy(&out.stderr).to_string(),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serve_ctl_and_sigterm_drain() {
    let dir = tempfile::tempdir().unwrap();
    let mut server = Served::start([
        "--api-key".into(),
        KEY.into(),
        "--data-dir".into(),
        std::ffi::OsString::from(dir.path()),
    ])
    .await;
    let (http, grpc) = (server.http, server.grpc);

    let (code, out, err) = ctl(grpc, &["--json", "create-room", "--title", "CLI room"]);
    assert_eq!(code, 0, "{err}");
    let v: serde_json::Value = serde_json::from_str(out.trim()).unwrap();
    let room = v["room"]["id"].as_str().unwrap().to_string();
    let (code, _, err) = ctl(grpc, &["open-room", &room]);
    assert_eq!(code, 0, "{err}");
    let (code, token, err) = ctl(grpc, &["issue-token", &room, "cli-viewer", "--name", "Cli"]);
    assert_eq!(code, 0, "{err}");
    let token = token.lines().next().unwrap().trim().to_string();
    let (code, _, err) = ctl(grpc, &["get-room", "nosuchroom"]);
    assert_eq!(code, 1);
    assert!(
        err.contains("NotFound") || err.to_lowercase().contains("not found"),
        "{err}"
    );

    let url = format!("ws://127.0.0.1:{http}/ws/{room}?token={token}");
    let (ws, _) = tokio_tungstenite::connect_async(url).await.unwrap();
    let mut v = Viewer {
        ws,
        frames: Vec::new(),
    };
    let w = v.expect("welcome").await;
    assert_eq!(w["room"]["title"], "CLI room");

    // SIGTERM: the viewer is closed with "going away", the process exits 0.
    let pid = server.child.id().to_string();
    assert!(Command::new("kill")
        .args(["-TERM", &pid])
        .status()
        .unwrap()
        .success());
    let (code, _) = v.closed().await;
    assert_eq!(code, 1001);
    let status = server.exited().await;
    assert_eq!(status.code(), Some(0));
}
