//! Registration on the viewer page in headless Chromium (`tests/browser/register.sh` +
//! `register.mjs`, against the binary cargo built; screenshots land in
//! `target/browser-artifacts/`).

use std::path::Path;
use std::process::Command;

#[test]
fn a_phone_sized_page_registers_and_invites_a_guest() {
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/browser/register.sh");
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
    assert!(
        out.status.success(),
        "the registration scenario failed\n{log}"
    );
    println!("{log}");
}
