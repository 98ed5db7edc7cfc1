//! ICE restart by PATCH (RFC 9725 §4.4): a WHEP viewer sends new ICE credentials as a
//! trickle-ice-sdpfrag, gets the server's new credentials and candidates back, and keeps
//! receiving the program on the same resource and PeerConnection.

mod common;

use common::rtc_client::{http, WhepViewer, WhipPublisher};
use common::{setup_show, Server, WAIT};
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};
use webrtc::peer_connection::RTCSessionDescription;

fn value<'a>(sdp: &'a str, key: &str) -> Option<&'a str> {
    sdp.lines().find_map(|l| l.strip_prefix(key))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ice_restart_by_patch_keeps_the_session() {
    let server = Server::start().await;
    let mut c = server.control().await;
    let show = setup_show(&mut c).await;
    let addr = server.app().http_addr;
    let port = server.app().media.udp_addr().port();
    let ta = c.presenter_token(&show.room, &show.brand_a).await;
    let publisher = WhipPublisher::connect(addr, &show.room, &show.brand_a, &ta)
        .await
        .unwrap();
    let token = c.token(&show.room, "v").await;
    let mut v = WhepViewer::connect(addr, &show.room, &token).await.unwrap();
    v.wait_connected().await;

    // New local credentials.
    v.pc.restart_ice().await.unwrap();
    let offer = v.pc.create_offer(None).await.unwrap();
    v.pc.set_local_description(offer).await.unwrap();
    tokio::time::sleep(Duration::from_millis(300)).await;
    let local = v.pc.local_description().await.unwrap().sdp;
    let (ufrag, pwd) = (
        value(&local, "a=ice-ufrag:").unwrap().to_string(),
        value(&local, "a=ice-pwd:").unwrap().to_string(),
    );
    let mut frag = format!("a=ice-ufrag:{ufrag}\r\na=ice-pwd:{pwd}\r\n");
    for l in local.lines().filter(|l| l.starts_with("a=candidate:")) {
        frag.push_str(l);
        frag.push_str("\r\n");
    }
    let r = http(
        addr,
        "PATCH",
        &v.location,
        &[("Content-Type", "application/trickle-ice-sdpfrag")],
        &frag,
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.body);
    let new_ufrag = value(&r.body, "a=ice-ufrag:").expect("our new ufrag");
    let new_pwd = value(&r.body, "a=ice-pwd:").expect("our new pwd");
    assert_ne!(
        Some(new_ufrag),
        value(&v.answer, "a=ice-ufrag:"),
        "new credentials"
    );
    let candidates: Vec<&str> = r
        .body
        .lines()
        .filter(|l| l.starts_with("a=candidate:"))
        .collect();
    assert!(!candidates.is_empty(), "{}", r.body);
    assert!(candidates
        .iter()
        .all(|l| l.split(' ').nth(5) == Some(port.to_string().as_str())));

    // The previous answer with the new credentials and candidates.
    let mut answer = String::new();
    for l in v.answer.lines() {
        if l.starts_with("a=candidate:") || l.starts_with("a=end-of-candidates") {
            continue;
        } else if l.starts_with("a=ice-ufrag:") {
            answer.push_str(&format!("a=ice-ufrag:{new_ufrag}\r\n"));
        } else if l.starts_with("a=ice-pwd:") {
            answer.push_str(&format!("a=ice-pwd:{new_pwd}\r\n"));
            for c in &candidates {
                answer.push_str(c);
                answer.push_str("\r\n");
            }
        } else {
            answer.push_str(l);
            answer.push_str("\r\n");
        }
    }
    v.pc.set_remote_description(RTCSessionDescription::answer(answer).unwrap())
        .await
        .unwrap();

    // Media keeps arriving on the same connection after the restart.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let before = v.received.audio_count.load(Ordering::SeqCst);
    let t = Instant::now();
    while v.received.audio_count.load(Ordering::SeqCst) < before + 50 {
        assert!(t.elapsed() < WAIT, "media flows after the ICE restart");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(server.app().media.session_count(), 2);
    assert_eq!(v.leave().await, 200);
    publisher.stop().await;
}
