//! The server's log with no `SHOWFLOOR_LOG`: webrtc's crates are held at warn (no per-session
//! state lines), and a warning a library repeats for every session is written at most
//! `log_limit::PER_WINDOW` times a minute — here rtc_dtls's complaint about a DTLS config
//! without a server name, which it makes for every WHEP viewer.

mod common;

use common::process::Served;
use common::rtc_client::{WhepViewer, WhipPublisher};
use common::{setup_show, Control, KEY};
use showfloor::log_limit::PER_WINDOW;

const REPEATED: &str = "conn.remote_addr is empty";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn library_lines_are_held_to_warn_and_a_repeated_warning_is_limited() {
    let dir = tempfile::tempdir().unwrap();
    let server = Served::start_logging(
        [
            "--api-key".into(),
            KEY.into(),
            "--data-dir".into(),
            std::ffi::OsString::from(dir.path()),
        ],
        None,
    )
    .await;
    let addr: std::net::SocketAddr = server.http_addr().parse().unwrap();
    let mut c = Control::at(server.grpc).await;
    let show = setup_show(&mut c).await;
    let presenter = c.presenter_token(&show.room, &show.brand_a).await;
    let _publisher = WhipPublisher::connect(addr, &show.room, &show.brand_a, &presenter)
        .await
        .unwrap();
    let token = c.token(&show.room, "v").await;
    let viewers = PER_WINDOW as usize + 5;
    for _ in 0..viewers {
        let mut v = WhepViewer::connect(addr, &show.room, &token).await.unwrap();
        v.wait_connected().await;
        assert_eq!(v.leave().await, 200);
    }

    let log = server.log();
    let repeated = log.lines().filter(|l| l.contains(REPEATED)).count();
    assert!(
        (1..=PER_WINDOW as usize).contains(&repeated),
        "{repeated} lines of {REPEATED:?} for {viewers} viewers, at most {PER_WINDOW} wanted:\n{log}"
    );
    assert!(
        !log.contains("peer connection state changed"),
        "webrtc's info lines are not in the default log:\n{log}"
    );
    assert!(log.contains("showfloor serving"), "{log}");
}
