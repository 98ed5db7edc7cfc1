//! DTLS roles: whatever role an offer claims (`a=setup:actpass`, `active` or `passive`), the
//! server answers the opposite one and media flows, for WHIP and for WHEP. (With the webrtc
//! crate's own answer, `active`, an `active` offer never got DTLS going.)

mod common;

use common::rtc_client::{setup_roles, Setup, Tweaks, WhepViewer, WhipPublisher};
use common::{setup_show, Server};
use showfloor::media::keyframe::VideoCodec;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

const ROLES: [Setup; 3] = [Setup::Actpass, Setup::Passive, Setup::Active];

/// The role an answer must take for an offer that claims `offered`.
fn answered(offered: Setup) -> &'static str {
    match offered {
        Setup::Active => "passive",
        Setup::Passive | Setup::Actpass => "active",
    }
}

/// Waits (bounded) until `v` has received audio and video packets.
async fn receives_media(v: &WhepViewer, what: &str) {
    let t = Instant::now();
    loop {
        let audio = v.received.audio_count.load(Ordering::SeqCst);
        let video = v.received.video_count.load(Ordering::SeqCst);
        if audio > 0 && video > 0 {
            return;
        }
        assert!(
            t.elapsed() < common::WAIT,
            "{what}: no media (audio {audio}, video {video} packets)"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn whip_offers_of_every_setup_role_publish() {
    let server = Server::start().await;
    let mut c = server.control().await;
    let show = setup_show(&mut c).await;
    let addr = server.app().http_addr;
    let presenter = c.presenter_token(&show.room, &show.brand_a).await;
    let token = c.token(&show.room, "watcher").await;
    for role in ROLES {
        let claim = move |sdp: &str| role.claim(sdp);
        let tweaks = Tweaks {
            offer: Some(&claim),
            ..Tweaks::default()
        };
        let what = format!("WHIP offer with a=setup:{}", role.as_str());
        eprintln!("{what}");
        // Panics if the publisher's connection (ICE and DTLS) does not come up.
        let publisher = WhipPublisher::connect_tweaked(
            addr,
            &show.room,
            &show.brand_a,
            &presenter,
            VideoCodec::Vp8,
            &tweaks,
        )
        .await
        .unwrap_or_else(|e| panic!("{what}: refused {e:?}"));
        let roles = setup_roles(&publisher.answer);
        assert!(
            !roles.is_empty() && roles.iter().all(|r| r == answered(role)),
            "{what}: answered {roles:?}"
        );
        let mut viewer = WhepViewer::connect(addr, &show.room, &token).await.unwrap();
        viewer.wait_connected().await;
        receives_media(&viewer, &what).await;
        assert_eq!(viewer.leave().await, 200);
        assert_eq!(publisher.stop().await, 200, "{what}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn whep_offers_of_every_setup_role_play() {
    let server = Server::start().await;
    let mut c = server.control().await;
    let show = setup_show(&mut c).await;
    let addr = server.app().http_addr;
    let presenter = c.presenter_token(&show.room, &show.brand_a).await;
    let publisher = WhipPublisher::connect(addr, &show.room, &show.brand_a, &presenter)
        .await
        .unwrap();
    let token = c.token(&show.room, "watcher").await;
    for role in ROLES {
        let claim = move |sdp: &str| role.claim(sdp);
        let tweaks = Tweaks {
            offer: Some(&claim),
            ..Tweaks::default()
        };
        let what = format!("WHEP offer with a=setup:{}", role.as_str());
        eprintln!("{what}");
        let mut viewer = WhepViewer::connect_tweaked(addr, &show.room, &token, &tweaks)
            .await
            .unwrap_or_else(|e| panic!("{what}: refused {e:?}"));
        tokio::time::timeout(
            common::WAIT,
            viewer
                .state
                .wait_for(|s| *s == webrtc::peer_connection::RTCPeerConnectionState::Connected),
        )
        .await
        .unwrap_or_else(|_| panic!("{what}: the connection (ICE + DTLS) never came up"))
        .unwrap();
        receives_media(&viewer, &what).await;
        let roles = setup_roles(&viewer.answer);
        assert!(
            !roles.is_empty() && roles.iter().all(|r| r == answered(role)),
            "{what}: answered {roles:?}"
        );
        assert_eq!(viewer.leave().await, 200, "{what}");
    }
    // An offer that asks for no DTLS connection at all is refused, in its own terms.
    let holdconn = |sdp: &str| {
        Setup::Active
            .claim(sdp)
            .replace("a=setup:active", "a=setup:holdconn")
    };
    let tweaks = Tweaks {
        offer: Some(&holdconn),
        ..Tweaks::default()
    };
    let (status, body) = WhepViewer::connect_tweaked(addr, &show.room, &token, &tweaks)
        .await
        .err()
        .expect("a=setup:holdconn is refused");
    assert_eq!(status, 400, "{body}");
    assert!(body.contains("holdconn"), "{body}");
    assert_eq!(server.app().media.session_count(), 1, "only the publisher");
    publisher.stop().await;
}
