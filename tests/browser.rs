//! Headless Chromium publishes its fake camera by WHIP and plays the program by WHEP;
//! `framesDecoded` keeps growing across brand switches. The scenario is
//! `tests/browser/whip_whep.mjs`, driven by `tests/browser/run.sh`, which installs Debian's
//! chromium and playwright-core from npm when they are missing: this test runs it against the
//! binary cargo built, so the browser check is part of `cargo test`.

use std::process::Command;

#[test]
fn chromium_publishes_by_whip_and_keeps_decoding_by_whep_across_switches() {
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/browser/run.sh");
    let out = Command::new("bash")
        .arg(script)
        .env("SHOWFLOOR_BIN", env!("CARGO_BIN_EXE_showfloor"))
        .output()
        .expect("bash runs");
    let log = format!(
        "--- stdout\n{}\n--- stderr\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "browser scenario failed\n{log}");
    println!("{log}");
}
