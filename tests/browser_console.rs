//! The organiser's set-up in the host console, in headless Chromium (`tests/browser/console.sh`
//! with `console.mjs`, against the binary cargo built; screenshots land in
//! `target/browser-artifacts/`): create a room, add brands, check and import a catalogue and a
//! dealer list, add a product with the form (bad ones refused with the reason shown), create a
//! channel link, go live, confirm the dealers' orders in bulk, export them, run a flash sale, a
//! draw and a red packet, approve and reject registrations as they arrive, and read the Report
//! view's charts and its flash-sale, draw and red-packet tables.

use std::path::Path;
use std::process::Command;

#[test]
fn an_organiser_sets_up_and_runs_a_room_from_the_console() {
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/browser/console.sh");
    let bin = env!("CARGO_BIN_EXE_showfloor");
    let artifacts = Path::new(bin)
        .parent()
        .and_then(Path::parent)
        .expect("the binary lives in the target directory")
        .join("browser-artifacts");
    let out = Command::new("bash")
        .arg(script)
        .env("SHOWFLOOR_BIN", bin)
        .env("ARTIFACTS", &artifacts)
        .output()
        .expect("bash starts");
    let log = format!(
        "--- stdout\n{}\n--- stderr\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "the console scenario failed\n{log}");
    println!("{log}");
}
