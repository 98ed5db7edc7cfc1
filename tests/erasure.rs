//! A host erases a registrant's personal data after the show: the registration's name,
//! company and phone go, and so does their name on orders, chat and dealer records; the
//! orders, amounts and counts stay. Orders are still processed after the room ended.

mod common;
use common::registration::{json_of, register};
use common::*;
use serde_json::json;
use showfloor::pb;
use tonic::Code;

async fn orders(c: &mut Control, room: &str) -> Vec<pb::Order> {
    c.client
        .list_orders(authed(pb::ListOrdersRequest {
            room_id: room.into(),
            ..Default::default()
        }))
        .await
        .unwrap()
        .into_inner()
        .orders
}

async fn erase(c: &mut Control, room: &str, id: &str) -> Result<pb::Registration, tonic::Status> {
    c.client
        .erase_registrant(authed(pb::RegistrationRef {
            room_id: room.into(),
            registration_id: id.into(),
        }))
        .await
        .map(|r| r.into_inner())
}

async fn erased_after_the_show(mut server: Server, restart: Option<std::path::PathBuf>) {
    let mut c = server.control().await;
    let show = setup_show(&mut c).await;
    c.client
        .set_registration(authed(pb::SetRegistrationRequest {
            room_id: show.room.clone(),
            mode: pb::RegistrationMode::Open as i32,
            phone_country: Some("CN".into()),
        }))
        .await
        .unwrap();
    let reg = register(
        &server,
        &show.room,
        "10.0.0.1",
        r#"{"name":"Ms Chen","company":"Chen Trading","phone":"138 0013 8000"}"#,
    )
    .await;
    assert_eq!(reg.status, 201, "{}", reg.body);
    let reg = json_of(&reg);
    let viewer = reg["viewer_id"].as_str().unwrap().to_string();
    let token = reg["token"].as_str().unwrap().to_string();
    let mut v = server.viewer(&show.room, &token).await;
    v.expect("welcome").await;
    c.verify(&show.room, &viewer, "gold").await;
    v.expect("role_changed").await;
    v.send(json!({"type": "chat", "text": "ten of the jackets please"}))
        .await;
    v.expect("chat").await;
    v.send(json!({"type": "place_order", "product_id": show.products[0].id, "quantity": 10, "key": "k1"}))
        .await;
    let placed = v.expect("order_placed").await;
    let order_id = placed["order"]["id"].as_str().unwrap().to_string();
    let total = placed["order"]["total_cents"].as_i64().unwrap();
    assert_eq!(orders(&mut c, &show.room).await[0].display_name, "Ms Chen");
    drop(v);
    c.client
        .close_room(authed(pb::RoomRef {
            room_id: show.room.clone(),
        }))
        .await
        .unwrap();

    // After the show: orders are still confirmed and shipped.
    for status in [pb::OrderStatus::Confirmed, pb::OrderStatus::Shipped] {
        let o = c
            .client
            .update_order_status(authed(pb::UpdateOrderStatusRequest {
                room_id: show.room.clone(),
                order_id: order_id.clone(),
                status: status as i32,
                reason: String::new(),
            }))
            .await
            .unwrap()
            .into_inner();
        assert_eq!(o.status, status as i32);
    }
    // Other changes stay refused.
    let e = c
        .client
        .announce(authed(pb::AnnounceRequest {
            room_id: show.room.clone(),
            text: "hello".into(),
        }))
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::FailedPrecondition);

    let list = c
        .client
        .list_registrations(authed(pb::ListRegistrationsRequest {
            room_id: show.room.clone(),
            status: 0,
        }))
        .await
        .unwrap()
        .into_inner()
        .registrations;
    let id = list[0].id.clone();
    let r = erase(&mut c, &show.room, &id).await.unwrap();
    assert_eq!(
        (r.name.as_str(), r.company.as_str(), r.phone.as_str()),
        ("", "", "")
    );
    assert!(r.erased_ms > 0);
    assert_eq!((r.personal_link.as_str(), r.invite_link.as_str()), ("", ""));
    assert_eq!(
        r.viewer_id, viewer,
        "the pseudonymous id stays: counts and orders keep it"
    );
    // Twice is once.
    let again = erase(&mut c, &show.room, &id).await.unwrap();
    assert_eq!(again.erased_ms, r.erased_ms);

    if let Some(dir) = restart {
        server.stop().await;
        server = Server::start_in(&dir, |_| {}).await;
        c = server.control().await;
    }
    let o = orders(&mut c, &show.room).await;
    assert_eq!(o.len(), 1);
    assert_eq!(o[0].display_name, "(erased)");
    assert_eq!(
        (o[0].total_cents, o[0].status),
        (total, pb::OrderStatus::Shipped as i32)
    );
    let dealers = c
        .client
        .list_dealers(authed(pb::RoomRef {
            room_id: show.room.clone(),
        }))
        .await
        .unwrap()
        .into_inner()
        .dealers;
    assert_eq!(dealers[0].company, "");
    // Nothing of them in any report the host can export.
    for kind in [
        pb::ExportKind::Leads,
        pb::ExportKind::Orders,
        pb::ExportKind::Referrals,
    ] {
        let csv = c
            .client
            .export_report(authed(pb::ExportReportRequest {
                room_id: show.room.clone(),
                kind: kind as i32,
            }))
            .await
            .unwrap()
            .into_inner()
            .csv;
        for personal in ["Chen", "8613800138000", "138 0013"] {
            assert!(!csv.contains(personal), "{kind:?} has {personal}: {csv}");
        }
    }
    let report = c
        .client
        .get_room_report(authed(pb::GetRoomReportRequest {
            room_id: show.room.clone(),
        }))
        .await
        .unwrap()
        .into_inner();
    assert!(!format!("{report:?}").contains("Chen"));

    let e = erase(&mut c, &show.room, "g404").await.unwrap_err();
    assert_eq!(e.code(), Code::NotFound, "{e:?}");
    assert!(e.message().contains("g404"), "{}", e.message());
    let e = erase(&mut c, "nope", &id).await.unwrap_err();
    assert_eq!(e.code(), Code::NotFound, "{e:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_registrant_is_erased_after_the_show_on_sqlite() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start_in(dir.path(), |_| {}).await;
    erased_after_the_show(server, Some(dir.path().to_path_buf())).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_registrant_is_erased_after_the_show_on_postgres() {
    erased_after_the_show(Server::start_on_postgres().await, None).await;
}
