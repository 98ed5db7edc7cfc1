//! Every RPC answers bad input with a precise status, and a missing or wrong key with
//! UNAUTHENTICATED.

mod common;
use common::*;
use showfloor::pb;
use tonic::Code;

macro_rules! code_of {
    ($e:expr) => {
        match $e.await {
            Ok(_) => Code::Ok,
            Err(s) => {
                assert!(!s.message().is_empty(), "status without a message");
                s.code()
            }
        }
    };
}

#[tokio::test]
async fn no_key_or_a_wrong_key_is_unauthenticated() {
    let server = Server::start().await;
    let mut c = server.control().await;
    let e = c
        .client
        .list_rooms(pb::ListRoomsRequest::default())
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::Unauthenticated);
    let mut r = tonic::Request::new(pb::ListRoomsRequest::default());
    r.metadata_mut().insert(
        "authorization",
        "Bearer wrong-key-wrong-key".parse().unwrap(),
    );
    assert_eq!(
        c.client.list_rooms(r).await.unwrap_err().code(),
        Code::Unauthenticated
    );
    let mut r = tonic::Request::new(pb::RoomRef::default());
    r.metadata_mut()
        .insert("authorization", KEY.parse().unwrap());
    assert_eq!(
        c.client.open_room(r).await.unwrap_err().code(),
        Code::Unauthenticated
    );
    // Counted in /metrics by method and code.
    let m = reqwest_metrics(&server).await;
    assert!(
        m.contains("method=\"ListRooms\",code=\"Unauthenticated\""),
        "{m}"
    );
}

async fn reqwest_metrics(server: &Server) -> String {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut s = tokio::net::TcpStream::connect(server.app().http_addr)
        .await
        .unwrap();
    s.write_all(b"GET /metrics HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        .await
        .unwrap();
    let mut out = String::new();
    s.read_to_string(&mut out).await.unwrap();
    out
}

#[tokio::test]
async fn bad_input_gets_precise_codes() {
    let server = Server::start().await;
    let mut c = server.control().await;
    let show = setup_show(&mut c).await;
    let room = show.room.clone();
    let cl = &mut c.client;

    // Rooms
    assert_eq!(
        code_of!(cl.create_room(authed(pb::CreateRoomRequest::default()))),
        Code::InvalidArgument
    );
    assert_eq!(
        code_of!(cl.create_room(authed(pb::CreateRoomRequest {
            title: "t".into(),
            tiers: vec!["Gold Tier".into()],
            ..Default::default()
        }))),
        Code::InvalidArgument
    );
    assert_eq!(
        code_of!(cl.create_room(authed(pb::CreateRoomRequest {
            title: "t".into(),
            tiers: vec!["gold".into(), "gold".into()],
            ..Default::default()
        }))),
        Code::InvalidArgument
    );
    assert_eq!(
        code_of!(cl.create_room(authed(pb::CreateRoomRequest {
            title: "t".into(),
            currency: "yuan".into(),
            ..Default::default()
        }))),
        Code::InvalidArgument
    );
    assert_eq!(
        code_of!(cl.create_room(authed(pb::CreateRoomRequest {
            title: "t".into(),
            chat_rate_limit: Some(pb::ChatRateLimit {
                messages: 0,
                per_seconds: 10
            }),
            ..Default::default()
        }))),
        Code::InvalidArgument
    );
    assert_eq!(
        code_of!(cl.get_room(authed(pb::GetRoomRequest {
            room_id: "nope".into()
        }))),
        Code::NotFound
    );
    assert_eq!(
        code_of!(cl.get_room(authed(pb::GetRoomRequest::default()))),
        Code::InvalidArgument
    );
    assert_eq!(
        code_of!(cl.open_room(authed(pb::RoomRef {
            room_id: room.clone()
        }))),
        Code::FailedPrecondition
    );
    assert_eq!(
        code_of!(cl.get_room_token_key(authed(pb::RoomRef {
            room_id: "nope".into()
        }))),
        Code::NotFound
    );

    // Brands
    let bref = |b: &str| pb::BrandRef {
        room_id: room.clone(),
        brand_id: b.into(),
    };
    assert_eq!(
        code_of!(cl.add_brand(authed(pb::AddBrandRequest {
            room_id: room.clone(),
            name: "".into(),
            ..Default::default()
        }))),
        Code::InvalidArgument
    );
    assert_eq!(
        code_of!(cl.add_brand(authed(pb::AddBrandRequest {
            room_id: room.clone(),
            name: "x".into(),
            logo_url: "javascript:alert(1)".into(),
            position: None
        }))),
        Code::InvalidArgument
    );
    assert_eq!(
        code_of!(cl.update_brand(authed(pb::UpdateBrandRequest {
            room_id: room.clone(),
            brand_id: "b999".into(),
            ..Default::default()
        }))),
        Code::NotFound
    );
    assert_eq!(
        code_of!(cl.remove_brand(authed(bref(&show.brand_a)))),
        Code::FailedPrecondition
    );
    assert_eq!(
        code_of!(cl.remove_brand(authed(bref("b999")))),
        Code::NotFound
    );
    assert_eq!(
        code_of!(cl.switch_brand(authed(bref("b999")))),
        Code::NotFound
    );
    assert_eq!(
        code_of!(cl.switch_brand(authed(bref("")))),
        Code::InvalidArgument
    );

    // Products
    let good = pb::UpsertProductRequest {
        room_id: room.clone(),
        brand_id: show.brand_a.clone(),
        name: "p".into(),
        link: "https://shop.example/p".into(),
        min_order_quantity: 1,
        prices: vec![
            pb::TierPrice {
                tier: "gold".into(),
                price_cents: 1,
            },
            pb::TierPrice {
                tier: "silver".into(),
                price_cents: 2,
            },
        ],
        ..Default::default()
    };
    assert_eq!(code_of!(cl.upsert_product(authed(good.clone()))), Code::Ok);
    let bad = |f: &dyn Fn(&mut pb::UpsertProductRequest)| {
        let mut g = good.clone();
        f(&mut g);
        authed(g)
    };
    assert_eq!(
        code_of!(cl.upsert_product(bad(&|g| {
            g.prices.pop();
        }))),
        Code::InvalidArgument
    );
    assert_eq!(
        code_of!(cl.upsert_product(bad(&|g| g.prices[0].price_cents = -5))),
        Code::InvalidArgument
    );
    assert_eq!(
        code_of!(cl.upsert_product(bad(&|g| g.prices[0].tier = "platinum".into()))),
        Code::InvalidArgument
    );
    assert_eq!(
        code_of!(cl.upsert_product(bad(&|g| g.min_order_quantity = 0))),
        Code::InvalidArgument
    );
    assert_eq!(
        code_of!(cl.upsert_product(bad(&|g| g.link = "not a url".into()))),
        Code::InvalidArgument
    );
    assert_eq!(
        code_of!(cl.upsert_product(bad(&|g| g.brand_id = "b999".into()))),
        Code::NotFound
    );
    assert_eq!(
        code_of!(cl.upsert_product(bad(&|g| g.product_id = "p999".into()))),
        Code::NotFound
    );
    assert_eq!(
        code_of!(cl.remove_product(authed(pb::ProductRef {
            room_id: room.clone(),
            product_id: "p999".into()
        }))),
        Code::NotFound
    );
    assert_eq!(
        code_of!(cl.pin_product(authed(pb::ProductRef {
            room_id: room.clone(),
            product_id: show.products[2].id.clone()
        }))),
        Code::FailedPrecondition
    );
    assert_eq!(
        code_of!(cl.unpin_product(authed(pb::RoomRef {
            room_id: room.clone()
        }))),
        Code::FailedPrecondition
    );
    assert_eq!(
        code_of!(cl.list_products(authed(pb::ListProductsRequest {
            room_id: room.clone(),
            brand_id: "b999".into()
        }))),
        Code::NotFound
    );

    // Identity
    let tok = |v: &str, ttl: u32| pb::IssueViewerTokenRequest {
        room_id: room.clone(),
        viewer_id: v.into(),
        ttl_seconds: ttl,
        ..Default::default()
    };
    assert_eq!(
        code_of!(cl.issue_viewer_token(authed(tok("", 0)))),
        Code::InvalidArgument
    );
    assert_eq!(
        code_of!(cl.issue_viewer_token(authed(tok("bad id!", 0)))),
        Code::InvalidArgument
    );
    assert_eq!(
        code_of!(cl.issue_viewer_token(authed(tok("ok", 100 * 86_400)))),
        Code::InvalidArgument
    );
    assert_eq!(
        code_of!(cl.issue_viewer_token(authed(pb::IssueViewerTokenRequest {
            room_id: "nope".into(),
            viewer_id: "v".into(),
            ..Default::default()
        }))),
        Code::NotFound
    );
    assert_eq!(
        code_of!(cl.verify_dealer(authed(pb::VerifyDealerRequest {
            room_id: room.clone(),
            viewer_id: "v".into(),
            tier: "platinum".into(),
            company: String::new()
        }))),
        Code::InvalidArgument
    );
    assert_eq!(
        code_of!(cl.verify_dealer(authed(pb::VerifyDealerRequest {
            room_id: room.clone(),
            viewer_id: "v".into(),
            tier: String::new(),
            company: String::new()
        }))),
        Code::InvalidArgument
    );
    assert_eq!(
        code_of!(cl.revoke_dealer(authed(pb::ViewerRef {
            room_id: room.clone(),
            viewer_id: "never-a-dealer".into()
        }))),
        Code::NotFound
    );
    assert_eq!(
        code_of!(
            cl.approve_dealer_application(authed(pb::ApproveDealerApplicationRequest {
                room_id: room.clone(),
                application_id: "a999".into(),
                tier: "gold".into()
            }))
        ),
        Code::NotFound
    );
    assert_eq!(
        code_of!(
            cl.reject_dealer_application(authed(pb::RejectDealerApplicationRequest {
                room_id: room.clone(),
                application_id: "a999".into(),
                reason: String::new()
            }))
        ),
        Code::InvalidArgument
    );
    assert_eq!(
        code_of!(
            cl.list_dealer_applications(authed(pb::ListDealerApplicationsRequest {
                room_id: room.clone(),
                status: 42
            }))
        ),
        Code::InvalidArgument
    );

    // Moderation
    assert_eq!(
        code_of!(cl.mute_viewer(authed(pb::MuteViewerRequest {
            room_id: room.clone(),
            viewer_id: "v".into(),
            duration_seconds: 90 * 86_400
        }))),
        Code::InvalidArgument
    );
    assert_eq!(
        code_of!(cl.kick_viewer(authed(pb::KickViewerRequest {
            room_id: room.clone(),
            viewer_id: "absent".into(),
            reason: String::new()
        }))),
        Code::NotFound
    );
    assert_eq!(
        code_of!(cl.delete_message(authed(pb::DeleteMessageRequest {
            room_id: room.clone(),
            message_id: "m1.1".into()
        }))),
        Code::NotFound
    );
    assert_eq!(
        code_of!(cl.announce(authed(pb::AnnounceRequest {
            room_id: room.clone(),
            text: "   ".into()
        }))),
        Code::InvalidArgument
    );
    assert_eq!(
        code_of!(cl.announce(authed(pb::AnnounceRequest {
            room_id: room.clone(),
            text: "z".repeat(1001)
        }))),
        Code::InvalidArgument
    );
    assert_eq!(
        code_of!(cl.watch_room(authed(pb::RoomRef {
            room_id: "nope".into()
        }))),
        Code::NotFound
    );

    // An ended room refuses changes.
    assert_eq!(
        code_of!(cl.close_room(authed(pb::RoomRef {
            room_id: room.clone()
        }))),
        Code::Ok
    );
    assert_eq!(
        code_of!(cl.switch_brand(authed(bref(&show.brand_b)))),
        Code::FailedPrecondition
    );
    assert_eq!(
        code_of!(cl.open_room(authed(pb::RoomRef {
            room_id: room.clone()
        }))),
        Code::FailedPrecondition
    );
    assert_eq!(
        code_of!(cl.upsert_product(authed(good))),
        Code::FailedPrecondition
    );
}

#[tokio::test]
async fn watch_room_streams_chat_applications_and_stats() {
    use serde_json::json;
    let server = Server::start().await;
    let mut c = server.control().await;
    let show = setup_show(&mut c).await;
    let mut stream = c
        .client
        .watch_room(authed(pb::RoomRef {
            room_id: show.room.clone(),
        }))
        .await
        .unwrap()
        .into_inner();
    let t = c.token(&show.room, "w1").await;
    let mut v = server.viewer(&show.room, &t).await;
    v.expect("welcome").await;
    v.send(json!({"type":"chat","text":"hello host"})).await;
    v.send(json!({"type":"dealer_application","company":"C","licence_number":"L","contact":"c"}))
        .await;
    let (mut chat, mut app, mut stats_online) = (false, false, false);
    while !(chat && app && stats_online) {
        let ev = tokio::time::timeout(WAIT, stream.message())
            .await
            .unwrap()
            .unwrap()
            .unwrap();
        match ev.event.unwrap() {
            pb::watch_room_event::Event::Chat(m) => {
                assert_eq!(m.text, "hello host");
                chat = true;
            }
            pb::watch_room_event::Event::Application(a) => {
                assert_eq!(a.viewer_id, "w1");
                app = true;
            }
            pb::watch_room_event::Event::Stats(s) => stats_online |= s.online == 1,
            pb::watch_room_event::Event::Action(_)
            | pb::watch_room_event::Event::Order(_)
            | pb::watch_room_event::Event::LeadHot(_)
            | pb::watch_room_event::Event::RegistrationPending(_) => {}
        }
    }
    // Deleting that message reaches viewers.
    let msg_id = v.expect("chat").await["id"].as_str().unwrap().to_string();
    c.client
        .delete_message(authed(pb::DeleteMessageRequest {
            room_id: show.room.clone(),
            message_id: msg_id.clone(),
        }))
        .await
        .unwrap();
    assert_eq!(v.expect("chat_deleted").await["id"], msg_id.as_str());
}
