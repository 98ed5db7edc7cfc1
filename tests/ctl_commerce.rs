//! `showfloor ctl` drives commerce against a real server: flash sales, lucky draws whose
//! record verifies offline, red packets and orders, with the server's errors and exit codes.

mod common;
use common::*;
use serde_json::{json, Value};
use std::io::Write as _;
use std::process::Command;

/// What one run of the binary left behind.
struct Run {
    code: Option<i32>,
    stdout: String,
    stderr: String,
}

impl Run {
    fn ok(&self) -> &str {
        assert_eq!(
            self.code,
            Some(0),
            "stdout: {}\nstderr: {}",
            self.stdout,
            self.stderr
        );
        &self.stdout
    }

    fn json(&self) -> Value {
        serde_json::from_str(self.ok()).expect("--json prints one JSON object")
    }
}

/// Runs `showfloor ARGS…` off the runtime's worker threads (the server is in this process).
async fn showfloor(args: Vec<String>) -> Run {
    tokio::task::spawn_blocking(move || {
        let out = Command::new(env!("CARGO_BIN_EXE_showfloor"))
            .args(&args)
            .output()
            .expect("the binary runs");
        Run {
            code: out.status.code(),
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        }
    })
    .await
    .unwrap()
}

/// `showfloor ctl --server … --key … ARGS…`.
async fn ctl(server: &Server, args: &[&str]) -> Run {
    let addr = format!("http://{}", server.app().grpc_addr);
    let mut argv: Vec<String> = ["ctl", "--server", &addr, "--key", KEY]
        .iter()
        .map(|s| s.to_string())
        .collect();
    argv.extend(args.iter().map(|s| s.to_string()));
    showfloor(argv).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_flash_sale_is_created_listed_and_live() {
    let server = Server::start().await;
    let mut c = server.control().await;
    let show = setup_show(&mut c).await;
    let product = show.products[0].id.as_str();

    let sale = ctl(
        &server,
        &[
            "--json",
            "create-flash-sale",
            &show.room,
            product,
            "--stock",
            "20",
            "--limit",
            "2",
            "--price",
            "gold=5000",
            "--price",
            "silver=6000",
            "--duration",
            "600",
        ],
    )
    .await
    .json();
    let id = sale["id"].as_str().expect("a sale id").to_string();
    // The reply message in the proto3 JSON mapping: enums by name, 64-bit integers as strings.
    assert_eq!(sale["phase"], "SALE_PHASE_LIVE");
    assert_eq!(sale["product_id"], product);
    assert_eq!(
        (sale["stock"].clone(), sale["remaining"].clone()),
        (json!(20), json!(20))
    );
    assert_eq!(
        sale["prices"],
        json!([
            {"tier": "gold", "price_cents": "5000"},
            {"tier": "silver", "price_cents": "6000"},
        ])
    );

    let listed = ctl(&server, &["list-flash-sales", &show.room]).await;
    let lines: Vec<&str> = listed.ok().lines().collect();
    assert_eq!(lines.len(), 1, "{lines:?}");
    let line = lines[0];
    assert!(
        line.starts_with(&format!("sale {id}  live  product {product}")),
        "{line}"
    );
    assert!(line.contains("left 20/20"), "{line}");
    assert!(
        line.contains("prices(cents CNY) gold=5000 silver=6000"),
        "{line}"
    );

    let shown = ctl(&server, &["get-flash-sale", &show.room, &id]).await;
    assert!(
        shown.ok().starts_with(&format!("sale {id}  live  ")),
        "{}",
        shown.stdout
    );
    let shown = ctl(&server, &["--json", "get-flash-sale", &show.room, &id]).await;
    assert_eq!(shown.json()["phase"], "SALE_PHASE_LIVE");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_closed_draw_record_from_ctl_verifies_offline() {
    let server = Server::start().await;
    let mut c = server.control().await;
    let show = setup_show(&mut c).await;
    let mut fans = Vec::new();
    for name in ["fan-1", "fan-2"] {
        let token = c.token(&show.room, name).await;
        let mut v = server.viewer(&show.room, &token).await;
        v.expect("welcome").await;
        fans.push(v);
    }

    let opened = ctl(
        &server,
        &[
            "--json",
            "create-draw",
            &show.room,
            "--prize",
            "A factory tour",
            "--winners",
            "1",
            "--seconds",
            "600",
            "--beacon-source",
            "the x lottery after close",
        ],
    )
    .await
    .json();
    let draw = opened["draw_id"].as_str().expect("a draw id").to_string();
    assert_eq!(opened["eligibility"], json!({"everyone": {}}));
    assert_eq!(opened["seed"], "", "the seed stays secret while open");
    for v in fans.iter_mut() {
        v.expect("draw_opened").await;
        v.send(json!({"type": "enter_draw", "draw_id": draw})).await;
        v.expect("draw_entered").await;
    }

    let entry_closed = ctl(&server, &["close-draw", &show.room, &draw]).await;
    let line = entry_closed.ok();
    assert!(
        line.starts_with(&format!("draw {draw}  awaiting-beacon")),
        "{line}"
    );
    assert!(line.contains("(awaiting the beacon)"), "{line}");
    let closed = ctl(&server, &["close-draw", &show.room, &draw, "--beacon", "x"]).await;
    let line = closed.ok();
    assert!(
        line.starts_with(&format!("draw {draw}  closed  \"A factory tour\"")),
        "{line}"
    );
    assert!(line.contains("entrants 2"), "{line}");
    assert!(line.contains("beacon \"x\""), "{line}");

    let listed = ctl(&server, &["list-draws", &show.room]).await;
    assert!(
        listed.ok().starts_with(&format!("draw {draw}  closed")),
        "{}",
        listed.stdout
    );

    // `ctl get-draw-record R D > record.json && showfloor verify-draw record.json`
    let record = ctl(&server, &["get-draw-record", &show.room, &draw]).await;
    let as_json = ctl(&server, &["--json", "get-draw-record", &show.room, &draw]).await;
    assert_eq!(
        record.ok(),
        as_json.ok(),
        "the record is the same with --json"
    );
    let parsed: Value = serde_json::from_str(record.ok()).expect("the record is JSON");
    assert_eq!(parsed["beacon"], "x");
    let mut file = tempfile::NamedTempFile::new().unwrap();
    file.write_all(record.stdout.as_bytes()).unwrap();
    let path = file.path().to_str().unwrap().to_string();
    let verdict = showfloor(vec!["verify-draw".into(), path]).await;
    assert!(verdict.ok().starts_with("OK"), "{}", verdict.stdout);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_red_packet_is_dropped_and_its_grabs_shown() {
    let server = Server::start().await;
    let mut c = server.control().await;
    let show = setup_show(&mut c).await;
    let token = c.token(&show.room, "fan-1").await;
    let mut fan = server.viewer(&show.room, &token).await;
    fan.expect("welcome").await;

    let dropped = ctl(
        &server,
        &[
            "--json",
            "drop-red-packet",
            &show.room,
            "--total-cents",
            "1000",
            "--count",
            "3",
            "--message",
            "Thanks for coming",
        ],
    )
    .await
    .json();
    let packet = dropped["id"].as_str().expect("a packet id").to_string();
    assert_eq!(dropped["total_cents"], "1000");
    assert_eq!(dropped["count"], 3);
    assert_eq!(dropped["currency"], "CNY");

    fan.expect("red_packet").await;
    fan.send(json!({"type": "grab_red_packet", "packet_id": packet}))
        .await;
    let won = fan.expect("red_packet_result").await;
    let amount = won["amount_cents"].as_i64().expect("an amount");

    let shown = ctl(&server, &["get-red-packet", &show.room, &packet]).await;
    let lines: Vec<&str> = shown.ok().lines().collect();
    assert_eq!(lines.len(), 2, "{lines:?}");
    assert!(
        lines[0].starts_with(&format!("red packet {packet}  1000 cents CNY in 3 shares")),
        "{}",
        lines[0]
    );
    assert!(lines[0].contains("grabbed 1/3"), "{}", lines[0]);
    assert!(
        lines[0].contains(&format!("left {} cents CNY", 1000 - amount)),
        "{}",
        lines[0]
    );
    assert!(lines[0].contains("\"Thanks for coming\""), "{}", lines[0]);
    assert_eq!(lines[1], format!("  fan-1  {amount} cents CNY"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn orders_list_with_a_total_and_server_errors_exit_1() {
    let server = Server::start().await;
    let mut c = server.control().await;
    let show = setup_show(&mut c).await;

    let listed = ctl(&server, &["list-orders", &show.room]).await;
    assert_eq!(listed.ok(), "total 0 orders  0 cents\n");
    let listed = ctl(
        &server,
        &["--json", "list-orders", &show.room, "--status", "placed"],
    )
    .await;
    assert_eq!(
        listed.json(),
        json!({"orders": [], "total_count": 0, "total_cents": "0"})
    );

    let missing = ctl(&server, &["order-status", &show.room, "o999", "confirmed"]).await;
    assert_eq!(missing.code, Some(1), "{}", missing.stderr);
    assert!(missing.stdout.is_empty(), "{}", missing.stdout);
    assert!(
        missing.stderr.starts_with("error: NOT_FOUND: ") && missing.stderr.contains("not found"),
        "{}",
        missing.stderr
    );

    let product = show.products[0].id.as_str();
    let refused = ctl(
        &server,
        &[
            "create-flash-sale",
            &show.room,
            product,
            "--stock",
            "0",
            "--limit",
            "1",
            "--price",
            "gold=5000",
            "--price",
            "silver=6000",
            "--duration",
            "60",
        ],
    )
    .await;
    assert_eq!(refused.code, Some(1), "{}", refused.stderr);
    assert_eq!(
        refused.stderr,
        "error: INVALID_ARGUMENT: stock must be 1 to 1000000 (got 0)\n"
    );
}
