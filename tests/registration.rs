//! Registration and invitations (issue 15): each registration mode, invite codes and channel
//! links recorded with the registration, the same phone giving the same viewer, a registered
//! token joining the room with its inviter in the audience log — on SQLite and PostgreSQL.

mod common;
use common::registration::{json_of, register};
use common::rtc_client::http;
use common::*;
use serde_json::{json, Value};
use showfloor::model::AudienceKind;
use showfloor::pb;
use showfloor::registration::limits::Rate;
use std::time::Duration;

pub async fn room_with(c: &mut Control, mode: pb::RegistrationMode, country: &str) -> String {
    c.client
        .create_room(authed(pb::CreateRoomRequest {
            title: "Spring order meeting".into(),
            tiers: vec!["gold".into(), "silver".into()],
            registration: mode as i32,
            phone_country: country.into(),
            ..Default::default()
        }))
        .await
        .unwrap()
        .into_inner()
        .room
        .unwrap()
        .id
}

pub async fn registrations(c: &mut Control, room: &str) -> Vec<pb::Registration> {
    c.client
        .list_registrations(authed(pb::ListRegistrationsRequest {
            room_id: room.into(),
            status: 0,
        }))
        .await
        .unwrap()
        .into_inner()
        .registrations
}

/// The whole open-mode story on one backend.
async fn open_registration_with_invites_and_channels(server: Server) {
    let mut c = server.control().await;
    let room = room_with(&mut c, pb::RegistrationMode::Open, "CN").await;
    let got = c.get_room(&room).await;
    assert_eq!(got.registration(), pb::RegistrationMode::Open);
    assert_eq!(got.phone_country, "CN");
    let channel = c
        .client
        .create_channel(authed(pb::CreateChannelRequest {
            room_id: room.clone(),
            name: "WeChat group Shanghai".into(),
        }))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(channel.link, format!("/r/{room}?ch={}", channel.code));

    let a = register(
        &server,
        &room,
        "10.0.0.1",
        r#"{"name":"Ms Chen","company":"Chen Trading","phone":"138 0013 8000"}"#,
    )
    .await;
    assert_eq!(a.status, 201, "{}", a.body);
    assert_eq!(a.header("cache-control"), Some("no-store"));
    let a = json_of(&a);
    let code = a["invite_code"].as_str().unwrap();
    assert_eq!(
        a["invite_link"].as_str().unwrap(),
        format!("/r/{room}?invite={code}")
    );
    assert!(a["link"]
        .as_str()
        .unwrap()
        .starts_with(&format!("/r/{room}?pass=")));

    let body = json!({"name": "Mr Li", "company": "Li & Sons", "phone": "+86 139-0013-9000",
                      "invite": code, "channel": channel.code});
    let b = register(&server, &room, "10.0.0.2", &body.to_string()).await;
    assert_eq!(b.status, 201, "{}", b.body);
    let b = json_of(&b);

    let list = registrations(&mut c, &room).await;
    assert_eq!(list.len(), 2);
    assert_eq!(list[0].phone, "+8613800138000");
    assert_eq!(
        (list[0].inviter_id.as_str(), list[0].channel.as_str()),
        ("", "")
    );
    assert_eq!(list[1].phone, "+8613900139000");
    assert_eq!(list[1].inviter_id, a["viewer_id"].as_str().unwrap());
    assert_eq!(list[1].channel, channel.code);
    assert_eq!(list[1].source, "form");

    // The same phone typed another way: the same viewer, a fresh token, nothing new stored.
    let again = register(
        &server,
        &room,
        "10.0.0.3",
        r#"{"name":"Chen again","phone":"+8613800138000"}"#,
    )
    .await;
    assert_eq!(again.status, 200, "{}", again.body);
    let again = json_of(&again);
    assert_eq!(again["viewer_id"], a["viewer_id"]);
    assert_eq!(again["existing"], true);
    assert_ne!(again["token"], a["token"]);
    assert_eq!(registrations(&mut c, &room).await.len(), 2);

    // B's token opens the room's WebSocket; the audience log names A as B's inviter.
    let mut v = server.viewer(&room, b["token"].as_str().unwrap()).await;
    let welcome = v.expect("welcome").await;
    assert_eq!(welcome["you"]["viewer_id"], b["viewer_id"]);
    assert_eq!(welcome["you"]["display_name"], "Mr Li");
    let store = server.app().hub.store().clone();
    let mut joined = Vec::new();
    for _ in 0..100 {
        joined = store
            .audience_log(&room)
            .await
            .unwrap()
            .into_iter()
            .filter(|r| r.kind == AudienceKind::Join)
            .collect();
        if !joined.is_empty() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(joined.len(), 1, "{joined:?}");
    assert_eq!(joined[0].viewer_id, b["viewer_id"].as_str().unwrap());
    assert_eq!(joined[0].inviter_id.as_deref(), a["viewer_id"].as_str());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn open_registration_records_invites_and_channels_on_sqlite() {
    open_registration_with_invites_and_channels(Server::start().await).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn open_registration_records_invites_and_channels_on_postgres() {
    open_registration_with_invites_and_channels(Server::start_on_postgres().await).await;
}

/// One refusal: its status, error code and field.
async fn refused(
    server: &Server,
    room: &str,
    addr: &str,
    body: &str,
    status: u16,
    error: &str,
    field: Option<&str>,
) -> Value {
    let r = register(server, room, addr, body).await;
    assert_eq!(r.status, status, "{body}: {}", r.body);
    let v = json_of(&r);
    assert_eq!(v["error"], error, "{body}: {v}");
    assert_eq!(v["field"].as_str(), field, "{body}: {v}");
    assert!(!v["message"].as_str().unwrap().is_empty());
    v
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_input_is_answered_in_the_clients_terms_and_writes_nothing() {
    let server = Server::start().await;
    let mut c = server.control().await;
    let room = room_with(&mut c, pb::RegistrationMode::Open, "CN").await;
    let cases: &[(&str, u16, &str, Option<&str>)] = &[
        (r#"{"phone":"13800138000"}"#, 400, "invalid", Some("name")),
        (r#"{"name":"Ann"}"#, 400, "invalid", Some("phone")),
        (
            r#"{"name":"Ann","phone":"12345"}"#,
            400,
            "invalid",
            Some("phone"),
        ),
        (
            r#"{"name":"Ann","phone":"call me"}"#,
            400,
            "invalid",
            Some("phone"),
        ),
        (
            r#"{"name":7,"phone":"13800138000"}"#,
            400,
            "invalid",
            Some("name"),
        ),
        (
            r#"{"name":"Ann","phone":"13800138000","age":3}"#,
            400,
            "invalid",
            None,
        ),
        ("not json", 400, "invalid", None),
        (
            r#"{"name":"Ann","phone":"13800138000","invite":"nosuchcode"}"#,
            400,
            "invalid",
            Some("invite"),
        ),
        (
            r#"{"name":"Ann","phone":"13800138000","channel":"nosuchchannel"}"#,
            400,
            "invalid",
            Some("channel"),
        ),
    ];
    for (i, (body, status, error, field)) in cases.iter().enumerate() {
        let addr = format!("10.1.0.{i}");
        refused(&server, &room, &addr, body, *status, error, *field).await;
    }
    // Too large: refused before it is read.
    let big = format!(r#"{{"name":"{}","phone":"13800138000"}}"#, "x".repeat(8000));
    refused(
        &server,
        &room,
        "10.1.1.1",
        &big,
        413,
        "body_too_large",
        None,
    )
    .await;
    // Not JSON by its type.
    let r = http(
        server.app().http_addr,
        "POST",
        &format!("/api/rooms/{room}/registrations"),
        &[("content-type", "application/x-www-form-urlencoded")],
        "name=Ann&phone=13800138000",
    )
    .await;
    assert_eq!(r.status, 415, "{}", r.body);
    assert_eq!(json_of(&r)["error"], "unsupported_media_type");
    // An unknown room.
    let ok = r#"{"name":"Ann","phone":"13800138000"}"#;
    refused(
        &server,
        "rnosuchroom",
        "10.1.1.2",
        ok,
        404,
        "room_not_found",
        None,
    )
    .await;

    // A flood from one address: after its burst, 429 with Retry-After, even for a good body.
    for _ in 0..10 {
        refused(
            &server,
            &room,
            "10.2.0.1",
            "{}",
            400,
            "invalid",
            Some("name"),
        )
        .await;
    }
    let r = register(&server, &room, "10.2.0.1", ok).await;
    assert_eq!(r.status, 429, "{}", r.body);
    let secs: u64 = r.header("retry-after").unwrap().parse().unwrap();
    assert!((1..=60).contains(&secs), "{secs}");
    let v = json_of(&r);
    assert_eq!(v["error"], "rate_limited");
    assert!(v["message"].as_str().unwrap().contains("address"), "{v}");

    assert!(
        registrations(&mut c, &room).await.is_empty(),
        "a refused registration wrote something"
    );
    // Other addresses still register.
    let r = register(&server, &room, "10.3.0.1", ok).await;
    assert_eq!(r.status, 201, "{}", r.body);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_room_takes_a_bounded_number_of_registrations_from_everyone_at_once() {
    // 40 at once, then one a minute: the test is over long before the next one.
    let server = Server::start_with(|c| {
        c.registration_limits.per_room = Rate {
            burst: 40,
            per_minute: 1,
        }
    })
    .await;
    let mut c = server.control().await;
    let room = room_with(&mut c, pb::RegistrationMode::Open, "CN").await;
    // 40 at once from 4 addresses (10 each, their own limit) use up the room's burst.
    for n in 0..40 {
        let addr = format!("10.9.{}.1", n / 10);
        let r = register(&server, &room, &addr, "{}").await;
        assert_eq!(r.status, 400, "{n}: {}", r.body);
    }
    let r = register(
        &server,
        &room,
        "10.9.200.1",
        r#"{"name":"A","phone":"13800138000"}"#,
    )
    .await;
    assert_eq!(r.status, 429, "{}", r.body);
    assert!(r.header("retry-after").is_some());
    assert!(json_of(&r)["message"].as_str().unwrap().contains("room"));
    assert!(registrations(&mut c, &room).await.is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn modes_tokens_only_and_invite_only_and_setting_them() {
    let server = Server::start().await;
    let mut c = server.control().await;
    // The default: tokens only.
    let room = c.create_room("Default").await.room.unwrap().id;
    assert_eq!(
        c.get_room(&room).await.registration(),
        pb::RegistrationMode::TokensOnly
    );
    let ok = r#"{"name":"Ann","phone":"+8613800138000"}"#;
    refused(
        &server,
        &room,
        "10.4.0.1",
        ok,
        403,
        "registration_closed",
        None,
    )
    .await;
    let settings = http(
        server.app().http_addr,
        "GET",
        &format!("/api/rooms/{room}/registration"),
        &[],
        "",
    )
    .await;
    assert_eq!(settings.status, 200);
    assert_eq!(json_of(&settings)["accepts_registrations"], false);

    // Bad settings are refused, naming what is wrong.
    let set = |mode: i32, country: Option<&str>| pb::SetRegistrationRequest {
        room_id: room.clone(),
        mode,
        phone_country: country.map(String::from),
    };
    let e = c
        .client
        .set_registration(authed(set(0, None)))
        .await
        .unwrap_err();
    assert_eq!(e.code(), tonic::Code::InvalidArgument);
    assert!(e.message().contains("mode"), "{}", e.message());
    let e = c
        .client
        .set_registration(authed(set(2, Some("XX"))))
        .await
        .unwrap_err();
    assert_eq!(e.code(), tonic::Code::InvalidArgument);
    assert!(e.message().contains("phone_country"), "{}", e.message());
    assert_eq!(
        c.get_room(&room).await.registration(),
        pb::RegistrationMode::TokensOnly,
        "a refused change changes nothing"
    );

    // Open: phones need + (no country set); the first registrant invites.
    c.client
        .set_registration(authed(set(pb::RegistrationMode::Open as i32, None)))
        .await
        .unwrap();
    refused(
        &server,
        &room,
        "10.4.0.2",
        r#"{"name":"Ann","phone":"13800138000"}"#,
        400,
        "invalid",
        Some("phone"),
    )
    .await;
    let first = register(&server, &room, "10.4.0.3", ok).await;
    assert_eq!(first.status, 201, "{}", first.body);
    let code = json_of(&first)["invite_code"].as_str().unwrap().to_string();

    // Invite only, with CN as the phones' country.
    let room_now = c
        .client
        .set_registration(authed(set(
            pb::RegistrationMode::InviteOnly as i32,
            Some("CN"),
        )))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(room_now.registration(), pb::RegistrationMode::InviteOnly);
    assert_eq!(room_now.phone_country, "CN");
    let no_invite = r#"{"name":"Bo","phone":"13900139000"}"#;
    refused(
        &server,
        &room,
        "10.4.0.4",
        no_invite,
        403,
        "invite_required",
        Some("invite"),
    )
    .await;
    let bad = r#"{"name":"Bo","phone":"13900139000","invite":"wrong1"}"#;
    refused(
        &server,
        &room,
        "10.4.0.5",
        bad,
        400,
        "invalid",
        Some("invite"),
    )
    .await;
    let good = json!({"name": "Bo", "phone": "13900139000", "invite": code}).to_string();
    let r = register(&server, &room, "10.4.0.6", &good).await;
    assert_eq!(r.status, 201, "{}", r.body);
    assert_eq!(registrations(&mut c, &room).await.len(), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn approval_mode_hands_the_token_out_once_the_host_approves() {
    let server = Server::start().await;
    let mut c = server.control().await;
    let room = room_with(&mut c, pb::RegistrationMode::Approval, "CN").await;
    let mut watch = c
        .client
        .watch_room(authed(pb::RoomRef {
            room_id: room.clone(),
        }))
        .await
        .unwrap()
        .into_inner();
    let r = register(
        &server,
        &room,
        "10.5.0.1",
        r#"{"name":"Ann","phone":"13800138000"}"#,
    )
    .await;
    assert_eq!(r.status, 202, "{}", r.body);
    let pending = json_of(&r);
    // The host watching the room hears of it.
    let told = tokio::time::timeout(Duration::from_secs(15), async {
        loop {
            let ev = watch.message().await.unwrap().expect("the watch goes on");
            if let Some(pb::watch_room_event::Event::RegistrationPending(r)) = ev.event {
                return r;
            }
        }
    })
    .await
    .expect("a registration_pending event within 15 s");
    assert_eq!(
        (told.name.as_str(), told.phone.as_str()),
        ("Ann", "+8613800138000")
    );
    assert_eq!(told.status(), pb::RegistrationStatus::Pending);
    assert_eq!(pending["status"], "pending");
    assert!(pending.get("token").is_none());
    let poll = pending["poll"].as_str().unwrap().to_string();
    let id = pending["registration_id"].as_str().unwrap().to_string();
    let addr = server.app().http_addr;
    let get = |path: String| async move { http(addr, "GET", &path, &[], "").await };
    assert_eq!(get(poll.clone()).await.status, 202);
    let wrong = format!("/api/rooms/{room}/registrations/{id}?secret=guess");
    let w = get(wrong).await;
    assert_eq!(
        (w.status, json_of(&w)["error"].clone()),
        (404, json!("not_found"))
    );

    let pending_list = c
        .client
        .list_registrations(authed(pb::ListRegistrationsRequest {
            room_id: room.clone(),
            status: pb::RegistrationStatus::Pending as i32,
        }))
        .await
        .unwrap()
        .into_inner()
        .registrations;
    assert_eq!(pending_list.len(), 1);
    let reference = |id: &str| pb::RegistrationRef {
        room_id: room.clone(),
        registration_id: id.into(),
    };
    let approved = c
        .client
        .approve_registration(authed(reference(&id)))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(approved.status(), pb::RegistrationStatus::Approved);
    let r = get(poll.clone()).await;
    assert_eq!(r.status, 200, "{}", r.body);
    let token = json_of(&r)["token"].as_str().unwrap().to_string();
    let mut v = server.viewer(&room, &token).await;
    v.expect("welcome").await;
    // Revoked: the connected viewer is kicked, the pass and the phone no longer let in.
    c.client
        .reject_registration(authed(reference(&id)))
        .await
        .unwrap();
    let (code, _) = v.closed().await;
    assert_eq!(code, 4003, "a kicked viewer is closed as revoked");
    let r = get(poll.clone()).await;
    assert_eq!(
        (r.status, json_of(&r)["error"].clone()),
        (403, json!("rejected"))
    );
    let ann = r#"{"name":"Ann","phone":"13800138000"}"#;
    refused(&server, &room, "10.5.0.4", ann, 403, "rejected", None).await;
    let e = c
        .client
        .approve_registration(authed(reference(&id)))
        .await
        .unwrap_err();
    assert_eq!(e.code(), tonic::Code::FailedPrecondition);
    let e = c
        .client
        .approve_registration(authed(reference("gnosuch")))
        .await
        .unwrap_err();
    assert_eq!(e.code(), tonic::Code::NotFound);

    // A rejected registrant's polls and registrations say so.
    let r = register(
        &server,
        &room,
        "10.5.0.2",
        r#"{"name":"Bo","phone":"13900139000"}"#,
    )
    .await;
    let bo = json_of(&r);
    c.client
        .reject_registration(authed(reference(bo["registration_id"].as_str().unwrap())))
        .await
        .unwrap();
    let r = get(bo["poll"].as_str().unwrap().to_string()).await;
    assert_eq!(
        (r.status, json_of(&r)["error"].clone()),
        (403, json!("rejected"))
    );
    let again = r#"{"name":"Bo","phone":"+86 139 0013 9000"}"#;
    refused(&server, &room, "10.5.0.3", again, 403, "rejected", None).await;
}
