//! `showfloor verify-draw`: a good record is OK (exit 0), a tampered one is a MISMATCH naming
//! the field (exit 1), and a file that is not a record is refused (exit 2).

use showfloor::draw::{self, DrawRecord};
use std::io::Write;
use std::process::{Command, Output, Stdio};

fn closed_record() -> DrawRecord {
    let seed = draw::new_seed();
    let entrants: Vec<String> = ["viewer-c", "viewer-a", "viewer-e", "viewer-b", "viewer-d"]
        .into_iter()
        .map(String::from)
        .collect();
    let (entrants, entrants_hash, winners) =
        draw::decide(&seed, "draw-7", "lottery 2024-06-01: 04 17 23", entrants, 2);
    DrawRecord {
        algorithm: draw::ALGORITHM.to_string(),
        room_id: "room-1".to_string(),
        draw_id: "draw-7".to_string(),
        prize: "Sample case".to_string(),
        winners_count: 2,
        eligibility: serde_json::json!({"kind": "everyone"}),
        opened_ms: 1_717_200_000_000,
        closes_ms: 1_717_200_060_000,
        closed_ms: Some(1_717_200_060_000),
        drawn_ms: Some(1_717_200_120_000),
        commitment: draw::commitment(&seed),
        seed: Some(hex::encode(seed)),
        entrants,
        entrants_hash: Some(entrants_hash),
        beacon_source: "the lottery draw of 2024-06-01".to_string(),
        beacon: "lottery 2024-06-01: 04 17 23".to_string(),
        winners,
    }
}

fn verify_file(contents: &str) -> Output {
    let mut file = tempfile::NamedTempFile::new().unwrap();
    file.write_all(contents.as_bytes()).unwrap();
    Command::new(env!("CARGO_BIN_EXE_showfloor"))
        .arg("verify-draw")
        .arg(file.path())
        .output()
        .unwrap()
}

fn text(output: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    )
}

#[test]
fn a_good_record_is_ok() {
    let record = closed_record();
    let output = verify_file(&serde_json::to_string_pretty(&record).unwrap());
    let out = text(&output);
    assert_eq!(output.status.code(), Some(0), "{out}");
    assert!(
        out.starts_with("OK: draw draw-7 of room room-1: 5 entrants"),
        "{out}"
    );
    for winner in &record.winners {
        assert!(out.contains(winner.as_str()), "{out}");
    }
}

#[test]
fn a_record_is_read_from_stdin() {
    let json = serde_json::to_string(&closed_record()).unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_showfloor"))
        .args(["verify-draw", "-"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(json.as_bytes())
        .unwrap();
    let output = child.wait_with_output().unwrap();
    assert_eq!(output.status.code(), Some(0), "{}", text(&output));
    assert!(text(&output).starts_with("OK: "));
}

#[test]
fn swapped_winners_are_a_mismatch() {
    let mut record = closed_record();
    record.winners.swap(0, 1);
    let output = verify_file(&serde_json::to_string(&record).unwrap());
    let out = text(&output);
    assert_eq!(output.status.code(), Some(1), "{out}");
    assert!(out.starts_with("MISMATCH\n"), "{out}");
    assert!(out.lines().any(|l| l.starts_with("winners: ")), "{out}");
}

#[test]
fn malformed_json_is_refused() {
    let output = verify_file("{\"algorithm\": \"showfloor-draw-v1\", ");
    let out = text(&output);
    assert_eq!(output.status.code(), Some(2), "{out}");
    assert!(out.contains("not a draw record"), "{out}");
}
