//! WHIP/WHEP refusals: tokens are bound to their room (and, for presenters, their brand), a
//! viewer token cannot publish, and bad requests get a clear status and reason.

mod common;

use common::rtc_client::{http, WhepViewer, WhipPublisher};
use common::{setup_show, Server};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tokens_are_bound_to_room_brand_and_role() {
    let server = Server::start().await;
    let mut c = server.control().await;
    let a = setup_show(&mut c).await;
    let b = setup_show(&mut c).await;
    let addr = server.app().http_addr;

    // A viewer token cannot WHIP.
    let viewer_a = c.token(&a.room, "v1").await;
    let (status, body) = WhipPublisher::connect(addr, &a.room, &a.brand_a, &viewer_a)
        .await
        .err()
        .expect("a viewer token cannot publish");
    assert_eq!(status, 403, "{body}");
    assert!(body.contains("not a presenter"), "{body}");

    // A viewer token of room A is refused for room B.
    let (status, body) = WhepViewer::connect(addr, &b.room, &viewer_a)
        .await
        .err()
        .expect("wrong room");
    assert_eq!(status, 403, "{body}");
    assert!(body.contains("another room"), "{body}");

    // A presenter token is for its brand and its room only.
    let presenter_a = c.presenter_token(&a.room, &a.brand_a).await;
    let (status, body) = WhipPublisher::connect(addr, &a.room, &a.brand_b, &presenter_a)
        .await
        .err()
        .expect("wrong brand");
    assert_eq!(status, 403, "{body}");
    assert!(body.contains("another brand"), "{body}");
    let (status, _) = WhipPublisher::connect(addr, &b.room, &a.brand_a, &presenter_a)
        .await
        .err()
        .expect("wrong room");
    assert_eq!(status, 403);

    // The right presenter token publishes; a viewer of the room watches.
    let p = WhipPublisher::connect(addr, &a.room, &a.brand_a, &presenter_a)
        .await
        .expect("presenter publishes");
    let v = WhepViewer::connect(addr, &a.room, &viewer_a)
        .await
        .expect("viewer watches");
    assert_eq!(v.leave().await, 200);
    assert_eq!(p.stop().await, 200);

    // Presenter tokens are issued for existing brands only.
    let e = c
        .client
        .issue_presenter_token(common::authed(showfloor::pb::IssuePresenterTokenRequest {
            room_id: a.room.clone(),
            brand_id: "no-such-brand".into(),
            ..Default::default()
        }))
        .await
        .unwrap_err();
    assert_eq!(e.code(), tonic::Code::NotFound);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_requests_get_clear_errors() {
    let server = Server::start().await;
    let mut c = server.control().await;
    let a = setup_show(&mut c).await;
    let addr = server.app().http_addr;
    let viewer = c.token(&a.room, "v1").await;
    let bearer = format!("Bearer {viewer}");
    let sdp = [("Content-Type", "application/sdp")];

    let r = http(addr, "POST", &format!("/whep/{}", a.room), &sdp, "v=0\r\n").await;
    assert_eq!(r.status, 401, "no token: {}", r.body);
    assert!(r.header("www-authenticate").is_some());

    let r = http(
        addr,
        "POST",
        &format!("/whep/{}", a.room),
        &[
            ("Content-Type", "application/sdp"),
            ("Authorization", "Bearer garbage"),
        ],
        "v=0\r\n",
    )
    .await;
    assert_eq!(r.status, 401, "{}", r.body);

    let r = http(
        addr,
        "POST",
        "/whep/no-such-room",
        &[
            ("Content-Type", "application/sdp"),
            ("Authorization", &bearer),
        ],
        "v=0\r\n",
    )
    .await;
    assert_eq!(r.status, 404, "{}", r.body);

    let r = http(
        addr,
        "POST",
        &format!("/whep/{}", a.room),
        &[("Content-Type", "text/plain"), ("Authorization", &bearer)],
        "v=0\r\n",
    )
    .await;
    assert_eq!(r.status, 400);
    assert!(r.body.contains("application/sdp"), "{}", r.body);

    let r = http(
        addr,
        "POST",
        &format!("/whep/{}", a.room),
        &[
            ("Content-Type", "application/sdp"),
            ("Authorization", &bearer),
        ],
        "hello",
    )
    .await;
    assert_eq!(r.status, 400, "{}", r.body);

    // Looks like SDP, is not a usable offer.
    let r = http(
        addr,
        "POST",
        &format!("/whep/{}", a.room),
        &[
            ("Content-Type", "application/sdp"),
            ("Authorization", &bearer),
        ],
        "v=0\r\no=- 1 1 IN IP4 0.0.0.0\r\ns=-\r\nt=0 0\r\nm=video 9 UDP/TLS/RTP/SAVPF\r\n",
    )
    .await;
    assert_eq!(r.status, 400, "{}", r.body);
    assert_eq!(
        server.app().media.session_count(),
        0,
        "refused offers leave nothing"
    );

    let r = http(addr, "DELETE", &format!("/whep/{}/nope", a.room), &[], "").await;
    assert_eq!(r.status, 404, "{}", r.body);

    // A session's URL belongs to its room.
    let v = WhepViewer::connect(addr, &a.room, &viewer).await.unwrap();
    let id = v.location.rsplit('/').next().unwrap().to_string();
    let r = http(addr, "DELETE", &format!("/whep/other-room/{id}"), &[], "").await;
    assert_eq!(r.status, 404);
    let r = http(
        addr,
        "PATCH",
        &v.location,
        &[("Content-Type", "application/sdp")],
        "a=candidate:1 1 udp 1 127.0.0.1 9 typ host\r\n",
    )
    .await;
    assert_eq!(r.status, 400, "{}", r.body);
    assert_eq!(v.leave().await, 200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kicked_tokens_and_ended_rooms_get_no_media() {
    let server = Server::start().await;
    let mut c = server.control().await;
    let a = setup_show(&mut c).await;
    let addr = server.app().http_addr;

    // A viewer kicked on the WebSocket cannot use the same token for WHEP.
    let token = c.token(&a.room, "troll").await;
    let mut ws = server.viewer(&a.room, &token).await;
    ws.expect("welcome").await;
    let mut watching = WhepViewer::connect(addr, &a.room, &token).await.unwrap();
    watching.wait_connected().await;
    assert_eq!(server.app().media.session_count(), 1);
    c.client
        .kick_viewer(common::authed(showfloor::pb::KickViewerRequest {
            room_id: a.room.clone(),
            viewer_id: "troll".into(),
            reason: "spam".into(),
        }))
        .await
        .unwrap();
    ws.closed().await;
    // Its WHEP session ends too.
    let t = std::time::Instant::now();
    while server.app().media.session_count() > 0 {
        assert!(
            t.elapsed() < common::WAIT,
            "the kicked viewer's media session ends"
        );
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    drop(watching);
    let (status, body) = WhepViewer::connect(addr, &a.room, &token)
        .await
        .err()
        .expect("kicked token");
    assert_eq!(status, 403, "{body}");
    assert!(body.contains("kicked"), "{body}");

    // An ended room takes no media: 409.
    let viewer = c.token(&a.room, "late").await;
    let presenter = c.presenter_token(&a.room, &a.brand_a).await;
    c.client
        .close_room(common::authed(showfloor::pb::RoomRef {
            room_id: a.room.clone(),
        }))
        .await
        .unwrap();
    let (status, body) = WhepViewer::connect(addr, &a.room, &viewer)
        .await
        .err()
        .expect("ended room");
    assert_eq!(status, 409, "{body}");
    let (status, _) = WhipPublisher::connect(addr, &a.room, &a.brand_a, &presenter)
        .await
        .err()
        .expect("ended room");
    assert_eq!(status, 409);
}
