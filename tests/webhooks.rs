//! CRM webhooks from the outside: a host sets a room's endpoint; registrations, orders and
//! order status changes reach it signed; failures are retried and logged; what is queued
//! survives a restart; bad input gets a clear gRPC status.

mod common;
use common::receiver::Receiver;
use common::registration::{json_of, register};
use common::*;
use serde_json::json;
use showfloor::pb;
use showfloor::webhooks::sign;
use tonic::Code;

async fn set_webhook(c: &mut Control, room: &str, url: &str, events: &[&str]) -> pb::Webhook {
    c.client
        .set_webhook(authed(pb::SetWebhookRequest {
            room_id: room.into(),
            url: url.into(),
            events: events.iter().map(|e| e.to_string()).collect(),
            ..Default::default()
        }))
        .await
        .unwrap()
        .into_inner()
}

async fn deliveries(c: &mut Control, room: &str, status: &str) -> Vec<pb::WebhookDelivery> {
    c.client
        .list_webhook_deliveries(authed(pb::ListWebhookDeliveriesRequest {
            room_id: room.into(),
            status: status.into(),
            limit: 0,
        }))
        .await
        .unwrap()
        .into_inner()
        .deliveries
}

/// Waits until the log shows `id` with `status`.
async fn logged(c: &mut Control, room: &str, id: &str, status: &str) -> pb::WebhookDelivery {
    for _ in 0..400 {
        if let Some(d) = deliveries(c, room, status)
            .await
            .into_iter()
            .find(|d| d.id == id)
        {
            return d;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    panic!("{id} never {status}: {:?}", deliveries(c, room, "").await);
}

fn verified(r: &common::receiver::Received, secret: &str) -> serde_json::Value {
    let ts: i64 = r.header("showfloor-timestamp").parse().unwrap();
    let now = showfloor::model::now_ms() / 1000;
    sign::verify(
        secret,
        r.header("showfloor-signature"),
        ts,
        &r.body,
        now,
        300,
    )
    .expect("the signature verifies with the webhook's secret");
    assert_eq!(r.header("content-type"), "application/json");
    let body = r.json();
    assert_eq!(body["id"], r.header("showfloor-delivery"));
    assert_eq!(body["type"], r.header("showfloor-event"));
    body
}

/// The whole story on one backend: registration, order placed, order confirmed, each signed
/// with the generated secret and logged as delivered.
async fn events_reach_the_endpoint_signed(server: Server) {
    let hook = Receiver::start().await;
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
    let w = set_webhook(&mut c, &show.room, &hook.url(), &[]).await;
    assert!(w.secret.starts_with("whsec_"), "generated: {}", w.secret);
    assert_eq!(w.secret_hint, &w.secret[w.secret.len() - 4..]);
    assert_eq!(
        w.events,
        ["registration", "lead.stage", "order.placed", "order.status"]
    );
    let secret = w.secret.clone();
    // Reading it back never shows the secret.
    let got = c
        .client
        .get_webhook(authed(pb::RoomRef {
            room_id: show.room.clone(),
        }))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        (got.secret.as_str(), got.url.as_str()),
        ("", hook.url().as_str())
    );

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
    let reg_id = list[0].id.clone();
    let r = hook
        .wait_for(&format!("registration:{reg_id}:approved"), 200)
        .await;
    let body = verified(&r, &secret);
    assert_eq!(body["room_id"], show.room.as_str());
    assert_eq!(body["attempt"], 1);
    let data = &body["data"]["registration"];
    assert_eq!(data["phone"], "+8613800138000");
    assert_eq!(data["company"], "Chen Trading");
    assert_eq!(data["viewer_id"], viewer.as_str());
    // Never the registrant's secret or personal link.
    let text = String::from_utf8_lossy(&r.body);
    assert!(
        !text.contains("pass=") && !text.contains("secret"),
        "{text}"
    );

    // The registrant, verified as a dealer, orders; the host confirms.
    c.verify(&show.room, &viewer, "gold").await;
    let t = dealer_token(&show.room, &show.key, &viewer, "gold");
    let mut v = server.viewer(&show.room, &t).await;
    v.expect("welcome").await;
    let jacket = &show.products[0];
    v.send(json!({"type": "place_order", "product_id": jacket.id, "quantity": 13, "key": "c1"}))
        .await;
    let placed = v.expect("order_placed").await;
    let order_id = placed["order"]["id"].as_str().unwrap().to_string();
    let r = hook
        .wait_for(&format!("order.placed:{order_id}"), 200)
        .await;
    let body = verified(&r, &secret);
    assert_eq!(body["type"], "order.placed");
    assert_eq!(body["data"]["order"]["quantity"], 13);
    assert_eq!(body["data"]["order"]["status"], "placed");
    assert_eq!(body["data"]["buyer"]["company"], "Chen Trading");
    c.client
        .update_order_status(authed(pb::UpdateOrderStatusRequest {
            room_id: show.room.clone(),
            order_id: order_id.clone(),
            status: pb::OrderStatus::Confirmed as i32,
            reason: String::new(),
        }))
        .await
        .unwrap();
    let r = hook
        .wait_for(&format!("order.status:{order_id}:confirmed"), 200)
        .await;
    let body = verified(&r, &secret);
    assert_eq!(body["data"]["order"]["status"], "confirmed");

    let d = logged(
        &mut c,
        &show.room,
        &format!("order.placed:{order_id}"),
        "delivered",
    )
    .await;
    assert_eq!((d.attempts, d.last_code), (1, 200));
    assert_eq!(d.log.len(), 1);
    assert_eq!(d.log[0].code, 200);
    assert!(d.delivered_ms > 0);

    // ctl shows the log and the webhook in both modes.
    let out = ctl_run(&server, &["webhook-deliveries", &show.room]).await;
    assert_eq!(out.code, Some(0), "{}", out.stderr);
    assert!(
        out.stdout
            .contains(&format!("order.placed:{order_id}  delivered")),
        "{}",
        out.stdout
    );
    let out = ctl_run(&server, &["--json", "webhook", &show.room]).await;
    assert_eq!(out.code, Some(0), "{}", out.stderr);
    let w: serde_json::Value = serde_json::from_str(&out.stdout).unwrap();
    assert_eq!(w["url"], hook.url());
    assert!(!out.stdout.contains(&secret));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn events_reach_the_endpoint_signed_on_sqlite() {
    events_reach_the_endpoint_signed(Server::start().await).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn events_reach_the_endpoint_signed_on_postgres() {
    events_reach_the_endpoint_signed(Server::start_on_postgres().await).await;
}

/// 500, then a connection refused, then 200: three attempts, each logged; a delivery out of
/// attempts fails and a host's retry sends it again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failed_attempts_are_retried_and_logged() {
    let server = Server::start().await;
    let hook = Receiver::start().await;
    hook.answer(&[500]);
    let mut c = server.control().await;
    let show = setup_show(&mut c).await;
    set_webhook(&mut c, &show.room, &hook.url(), &["order.placed"]).await;
    c.verify(&show.room, "d1", "gold").await;
    let t = dealer_token(&show.room, &show.key, "d1", "gold");
    let mut v = server.viewer(&show.room, &t).await;
    v.expect("welcome").await;
    let p = &show.products[1];
    v.send(json!({"type": "place_order", "product_id": p.id, "quantity": 11, "key": "k1"}))
        .await;
    let id = format!(
        "order.placed:{}",
        v.expect("order_placed").await["order"]["id"]
            .as_str()
            .unwrap()
    );
    hook.wait_for(&id, 500).await;
    let d = logged(&mut c, &show.room, &id, "pending").await;
    assert_eq!(d.last_code, 500);
    assert_eq!(d.last_error, "HTTP 500");
    assert!(d.next_ms > d.last_attempt_ms, "retried later");
    let r = hook.wait_for(&id, 200).await;
    assert_eq!(r.json()["attempt"], 2);
    let d = logged(&mut c, &show.room, &id, "delivered").await;
    assert_eq!(d.attempts, 2);
    let codes: Vec<u32> = d.log.iter().map(|a| a.code).collect();
    assert_eq!(codes, [500, 200]);

    // A delivered one is not retried.
    let e = c
        .client
        .retry_webhook_delivery(authed(pb::WebhookDeliveryRef {
            room_id: show.room.clone(),
            delivery_id: id.clone(),
        }))
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::FailedPrecondition, "{e:?}");

    // An endpoint that is down: "could not connect" in the log.
    let port = hook.addr.port();
    hook.stop();
    tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    v.send(json!({"type": "place_order", "product_id": p.id, "quantity": 12, "key": "k2"}))
        .await;
    let id2 = format!(
        "order.placed:{}",
        v.expect("order_placed").await["order"]["id"]
            .as_str()
            .unwrap()
    );
    let d = logged(&mut c, &show.room, &id2, "pending").await;
    let d = if d.attempts == 0 {
        tokio::time::sleep(std::time::Duration::from_millis(500)).await;
        logged(&mut c, &show.room, &id2, "pending").await
    } else {
        d
    };
    assert!(d.last_error.contains("could not connect"), "{d:?}");
    assert_eq!(d.last_code, 0);
    // Back up on the same port: the retry gets through.
    let hook = Receiver::start_on(port).await;
    hook.wait_for(&id2, 200).await;
    logged(&mut c, &show.room, &id2, "delivered").await;
}

/// Deliveries queued while the endpoint refuses stay in the store across a restart and go
/// out once it answers; removing the webhook fails what is left and keeps the log.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_outbox_survives_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let hook = Receiver::start().await;
    hook.answer(&[503; 50]);
    let slow = |c: &mut showfloor::config::Config| {
        c.webhooks.schedule.base_ms = 2_000;
    };
    let mut server = Server::start_in(dir.path(), slow).await;
    let mut c = server.control().await;
    let show = setup_show(&mut c).await;
    set_webhook(
        &mut c,
        &show.room,
        &hook.url(),
        &["order.placed", "order.status"],
    )
    .await;
    c.verify(&show.room, "d1", "gold").await;
    let t = dealer_token(&show.room, &show.key, "d1", "gold");
    let mut v = server.viewer(&show.room, &t).await;
    v.expect("welcome").await;
    v.send(json!({"type": "place_order", "product_id": show.products[0].id, "quantity": 14, "key": "k"}))
        .await;
    let order = v.expect("order_placed").await["order"]["id"]
        .as_str()
        .unwrap()
        .to_string();
    let id = format!("order.placed:{order}");
    hook.wait_for(&id, 503).await;
    drop(v);
    server.stop().await;

    let hook2 = Receiver::start().await;
    let mut server = Server::start_in(dir.path(), slow).await;
    let mut c = server.control().await;
    set_webhook(
        &mut c,
        &show.room,
        &hook2.url(),
        &["order.placed", "order.status"],
    )
    .await;
    let r = hook2.wait_for(&id, 200).await;
    assert!(r.json()["attempt"].as_u64().unwrap() >= 2, "{:?}", r.json());
    assert_eq!(r.json()["data"]["order"]["quantity"], 14);

    // Removing the webhook: a queued status change fails, the log stays.
    hook2.answer(&[503; 50]);
    c.client
        .update_order_status(authed(pb::UpdateOrderStatusRequest {
            room_id: show.room.clone(),
            order_id: order.clone(),
            status: pb::OrderStatus::Confirmed as i32,
            reason: String::new(),
        }))
        .await
        .unwrap();
    let shipped = format!("order.status:{order}:confirmed");
    hook2.wait_for(&shipped, 503).await;
    c.client
        .delete_webhook(authed(pb::RoomRef {
            room_id: show.room.clone(),
        }))
        .await
        .unwrap();
    let d = logged(&mut c, &show.room, &shipped, "failed").await;
    assert_eq!(d.last_error, "webhook removed");
    logged(&mut c, &show.room, &id, "delivered").await;
    server.stop().await;
}

/// Bad input is refused with a status that names the problem; nothing is set.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_webhook_requests_are_refused_clearly() {
    let server = Server::start_with(|c| c.webhooks.allow_private = false).await;
    let mut c = server.control().await;
    let room = c.create_room("Hooks").await.room.unwrap().id;
    let set = |url: &str, events: &[&str], secret: &str| pb::SetWebhookRequest {
        room_id: room.clone(),
        url: url.into(),
        events: events.iter().map(|e| e.to_string()).collect(),
        secret: secret.into(),
        ..Default::default()
    };
    let cases = [
        (
            set("ftp://crm.example/x", &[], ""),
            Code::InvalidArgument,
            "scheme must be https or http",
        ),
        (
            set("no url", &[], ""),
            Code::InvalidArgument,
            "url: not a valid URL",
        ),
        (set("", &[], ""), Code::InvalidArgument, "url"),
        (
            set("http://127.0.0.1:9/x", &[], ""),
            Code::InvalidArgument,
            "--webhook-allow-private",
        ),
        (
            set("https://169.254.169.254/x", &[], ""),
            Code::InvalidArgument,
            "internal address",
        ),
        (
            set("https://crm.example/x", &["order"], ""),
            Code::InvalidArgument,
            "events: unknown event \"order\"",
        ),
        (
            set("https://crm.example/x", &[], "short"),
            Code::InvalidArgument,
            "secret: 16 to 256",
        ),
    ];
    for (req, code, text) in cases {
        let e = c.client.set_webhook(authed(req.clone())).await.unwrap_err();
        assert_eq!(e.code(), code, "{req:?}: {e:?}");
        assert!(e.message().contains(text), "{req:?}: {}", e.message());
    }
    let mut unknown = set("https://crm.example/x", &[], "");
    unknown.room_id = "nope".into();
    let e = c.client.set_webhook(authed(unknown)).await.unwrap_err();
    assert_eq!(e.code(), Code::NotFound);
    let e = c
        .client
        .get_webhook(authed(pb::RoomRef {
            room_id: room.clone(),
        }))
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::NotFound);
    assert!(e.message().contains("has no webhook"), "{}", e.message());
    let e = c
        .client
        .set_webhook(tonic::Request::new(set("https://crm.example/x", &[], "")))
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::Unauthenticated);
    let e = c
        .client
        .list_webhook_deliveries(authed(pb::ListWebhookDeliveriesRequest {
            room_id: room.clone(),
            status: "lost".into(),
            limit: 0,
        }))
        .await
        .unwrap_err();
    assert!(e.message().contains("status: \"lost\""), "{}", e.message());
    let e = c
        .client
        .retry_webhook_delivery(authed(pb::WebhookDeliveryRef {
            room_id: room.clone(),
            delivery_id: "order.placed:o404".into(),
        }))
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::NotFound);

    // A public name is fine (nothing is sent until an event); a given secret is kept
    // and never echoed; rotating makes a new one.
    let w = c
        .client
        .set_webhook(authed(set(
            "https://crm.example/hook",
            &["order.status", "registration"],
            "my-own-secret-0123",
        )))
        .await
        .unwrap()
        .into_inner();
    assert_eq!((w.secret.as_str(), w.secret_hint.as_str()), ("", "0123"));
    assert_eq!(w.events, ["registration", "order.status"]);
    let w = c
        .client
        .set_webhook(authed(set("https://crm.example/hook2", &[], "")))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        (w.secret.as_str(), w.secret_hint.as_str()),
        ("", "0123"),
        "kept"
    );
    let mut rotate = set("https://crm.example/hook2", &[], "");
    rotate.rotate_secret = true;
    let w = c
        .client
        .set_webhook(authed(rotate))
        .await
        .unwrap()
        .into_inner();
    assert!(w.secret.starts_with("whsec_"));
}

/// A viewer whose lead turns warm, then hot, is sent once per stage reached.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn leads_reaching_a_stage_are_sent_once() {
    let server = Server::start().await;
    let hook = Receiver::start().await;
    let mut c = server.control().await;
    let show = setup_show(&mut c).await;
    c.client
        .set_lead_weights(authed(pb::SetLeadWeightsRequest {
            room_id: show.room.clone(),
            activities: vec![pb::NamedActivityWeight {
                activity: "chat".into(),
                weight: Some(pb::ActivityWeight {
                    points: 10.0,
                    cap: 100.0,
                }),
            }],
            warm_at: Some(5.0),
            hot_at: Some(25.0),
            ..Default::default()
        }))
        .await
        .unwrap();
    let w = set_webhook(&mut c, &show.room, &hook.url(), &["lead.stage"]).await;
    let t = c.token(&show.room, "lead-1").await;
    let mut v = server.viewer(&show.room, &t).await;
    v.expect("welcome").await;
    v.send(json!({"type": "chat", "text": "what is the lead time for the jacket?"}))
        .await;
    v.expect("chat").await;
    let warm = hook.wait_for("lead.stage:lead-1:warm", 200).await;
    let body = verified(&warm, &w.secret);
    assert_eq!(body["data"]["lead"]["viewer_id"], "lead-1");
    assert_eq!(body["data"]["lead"]["stage"], "warm");
    for text in ["and the minimum order?", "we would take 200"] {
        v.send(json!({"type": "chat", "text": text})).await;
        v.expect("chat").await;
    }
    hook.wait_for("lead.stage:lead-1:hot", 200).await;
    // Several checks later, still one delivery per stage.
    tokio::time::sleep(std::time::Duration::from_millis(1_500)).await;
    let sent: Vec<String> = hook
        .got()
        .iter()
        .map(|r| r.header("showfloor-delivery").to_string())
        .collect();
    assert_eq!(sent, ["lead.stage:lead-1:warm", "lead.stage:lead-1:hot"]);
}
