//! Revoking a token (`RevokeToken`) or kicking a viewer reaches sessions that only use media:
//! the WHIP or WHEP session of that token ends, other sessions stay, and the token is refused
//! (403) from then on.

mod common;

use common::rtc_client::{http, WhepViewer, WhipPublisher};
use common::{authed, setup_show, Control, Server};
use showfloor::pb;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

/// Waits (bounded) until the media session behind `location` is gone (its DELETE is 404).
async fn ends(server: &Server, addr: SocketAddr, location: &str, left: usize) {
    let t = Instant::now();
    while server.app().media.session_count() > left {
        assert!(
            t.elapsed() < common::WAIT,
            "{location} still open ({} media sessions)",
            server.app().media.session_count()
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let r = http(addr, "DELETE", location, &[], "").await;
    assert_eq!(r.status, 404, "{location} is gone: {}", r.body);
}

async fn revoke(c: &mut Control, room: &str, jti: &str) {
    c.client
        .revoke_token(authed(pb::RevokeTokenRequest {
            room_id: room.into(),
            jti: jti.into(),
            reason: "leaked".into(),
        }))
        .await
        .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_revoked_presenter_token_ends_its_whip_session() {
    let server = Server::start().await;
    let mut c = server.control().await;
    let show = setup_show(&mut c).await;
    let addr = server.app().http_addr;
    let presenter = c
        .client
        .issue_presenter_token(authed(pb::IssuePresenterTokenRequest {
            room_id: show.room.clone(),
            brand_id: show.brand_a.clone(),
            ..Default::default()
        }))
        .await
        .unwrap()
        .into_inner();
    let publisher = WhipPublisher::connect(addr, &show.room, &show.brand_a, &presenter.token)
        .await
        .unwrap();
    // A viewer of the room, whose session must survive the presenter's revocation.
    let token = c.token(&show.room, "watcher").await;
    let mut viewer = WhepViewer::connect(addr, &show.room, &token).await.unwrap();
    viewer.wait_connected().await;
    assert_eq!(server.app().media.session_count(), 2);

    revoke(&mut c, &show.room, &presenter.jti).await;
    ends(&server, addr, &publisher.location, 1).await;
    assert!(
        server.app().media.session(viewer_id(&viewer)).is_some(),
        "the viewer's session stays"
    );
    let (status, body) = WhipPublisher::connect(addr, &show.room, &show.brand_a, &presenter.token)
        .await
        .err()
        .expect("a revoked presenter token cannot publish again");
    assert_eq!(status, 403, "{body}");
    assert!(
        body.contains("revoked") || body.contains("kicked"),
        "{body}"
    );
    // A new presenter token for the brand works.
    let fresh = c.presenter_token(&show.room, &show.brand_a).await;
    let again = WhipPublisher::connect(addr, &show.room, &show.brand_a, &fresh)
        .await
        .expect("a new presenter token publishes");
    assert_eq!(again.stop().await, 200);
    assert_eq!(viewer.leave().await, 200);
    let _ = publisher.pc.close().await;
}

fn viewer_id(v: &WhepViewer) -> &str {
    v.location.rsplit('/').next().unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_revoked_viewer_token_ends_its_whep_session() {
    let server = Server::start().await;
    let mut c = server.control().await;
    let show = setup_show(&mut c).await;
    let addr = server.app().http_addr;
    let issued = c
        .client
        .issue_viewer_token(authed(pb::IssueViewerTokenRequest {
            room_id: show.room.clone(),
            viewer_id: "media-only".into(),
            display_name: "Media Only".into(),
            ..Default::default()
        }))
        .await
        .unwrap()
        .into_inner();
    let other = c.token(&show.room, "other").await;
    // Both only play by WHEP: no WebSocket.
    let mut viewer = WhepViewer::connect(addr, &show.room, &issued.token)
        .await
        .unwrap();
    viewer.wait_connected().await;
    let mut stays = WhepViewer::connect(addr, &show.room, &other).await.unwrap();
    stays.wait_connected().await;

    revoke(&mut c, &show.room, &issued.jti).await;
    ends(&server, addr, &viewer.location, 1).await;
    assert!(server.app().media.session(viewer_id(&stays)).is_some());
    let (status, body) = WhepViewer::connect(addr, &show.room, &issued.token)
        .await
        .err()
        .expect("a revoked viewer token cannot play again");
    assert_eq!(status, 403, "{body}");
    assert_eq!(stays.leave().await, 200);
    let _ = viewer.pc.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kicking_a_media_only_viewer_ends_its_whep_session() {
    let server = Server::start().await;
    let mut c = server.control().await;
    let show = setup_show(&mut c).await;
    let addr = server.app().http_addr;
    let token = c.token(&show.room, "lurker").await;
    let other = c.token(&show.room, "other").await;
    let mut viewer = WhepViewer::connect(addr, &show.room, &token).await.unwrap();
    viewer.wait_connected().await;
    let mut stays = WhepViewer::connect(addr, &show.room, &other).await.unwrap();
    stays.wait_connected().await;

    c.client
        .kick_viewer(authed(pb::KickViewerRequest {
            room_id: show.room.clone(),
            viewer_id: "lurker".into(),
            reason: "spam".into(),
        }))
        .await
        .expect("a viewer who only plays media can be kicked");
    ends(&server, addr, &viewer.location, 1).await;
    assert!(server.app().media.session(viewer_id(&stays)).is_some());
    let (status, body) = WhepViewer::connect(addr, &show.room, &token)
        .await
        .err()
        .expect("a kicked viewer's token cannot play again");
    assert_eq!(status, 403, "{body}");
    assert!(body.contains("kicked"), "{body}");
    assert_eq!(stays.leave().await, 200);
    let _ = viewer.pc.close().await;
}

/// A revocation that lands while sessions of the token are still being set up ends those too:
/// a session is known to media before the room is told of it, so the room's `End` finds it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn revoking_while_sessions_are_being_set_up_leaves_none() {
    let server = Server::start().await;
    let mut c = server.control().await;
    let show = setup_show(&mut c).await;
    let addr = server.app().http_addr;
    let issued = c
        .client
        .issue_viewer_token(authed(pb::IssueViewerTokenRequest {
            room_id: show.room.clone(),
            viewer_id: "racer".into(),
            ..Default::default()
        }))
        .await
        .unwrap()
        .into_inner();
    let connects: Vec<_> = (0..12)
        .map(|_| {
            let (room, token) = (show.room.clone(), issued.token.clone());
            tokio::spawn(async move { WhepViewer::connect(addr, &room, &token).await })
        })
        .collect();
    // Revoke as soon as the first of them is being set up, while the others are in flight.
    let t = Instant::now();
    while server.app().media.session_count() == 0 {
        assert!(t.elapsed() < common::WAIT, "no WHEP session started");
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    revoke(&mut c, &show.room, &issued.jti).await;
    let mut viewers = Vec::new();
    for connect in connects {
        match connect.await.unwrap() {
            Ok(v) => viewers.push(v),
            Err((status, body)) => assert_eq!(status, 403, "{body}"),
        }
    }
    let t = Instant::now();
    while server.app().media.session_count() > 0 {
        assert!(
            t.elapsed() < common::WAIT,
            "{} sessions of the revoked token are still open",
            server.app().media.session_count()
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    for v in viewers {
        let _ = v.pc.close().await;
    }
}
