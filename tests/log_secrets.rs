//! Nothing secret reaches a log line. A server process logs everything it and its libraries
//! will say (`SHOWFLOOR_LOG=trace,tokio_postgres=trace`: tokio-postgres, which logs statement
//! parameters, is held at info whatever is asked) through a scripted show that handles every
//! kind of secret: the host API key (and a wrong one tried), the room's token key, viewer and dealer
//! tokens (in the URL and in `Authorization`), a presenter token (WHIP), a bad token, a
//! registration with its secret and personal link, the PostgreSQL password. Then the whole
//! log is searched for each of them.

mod common;

use common::process::Served;
use common::rtc_client::{http, WhepViewer, WhipPublisher};
use common::{authed, dealer_token, setup_show, Control, KEY};
use showfloor::pb;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_scripted_show_logs_no_secret() {
    let dir = tempfile::tempdir().unwrap();
    let pg_password = "pg-Secret-7f3a9c";
    let db = showfloor::store::postgres::scratch::fresh_database_url();
    // Trust authentication: the password is sent and ignored, but it is in the URL.
    let db = db.replacen(
        "postgres://postgres@",
        &format!("postgres://postgres:{pg_password}@"),
        1,
    );
    assert!(
        db.contains(pg_password),
        "the scratch URL's form changed: {db}"
    );
    let mut server = Served::start_logging(
        [
            "--api-key".into(),
            KEY.into(),
            "--data-dir".into(),
            std::ffi::OsString::from(dir.path()),
            "--postgres".into(),
            db.clone().into(),
        ],
        Some("trace,tokio_postgres=trace"),
    )
    .await;
    let http_addr: std::net::SocketAddr = server.http_addr().parse().unwrap();
    let mut c = Control::at(server.grpc).await;
    let show = setup_show(&mut c).await;
    let room = show.room.clone();
    let mut secrets = vec![KEY.to_string(), show.key.clone(), pg_password.to_string()];

    // A wrong host key is tried.
    let wrong = "wrong-Key-9d8e7f6a5b4c";
    let mut bad = tonic::Request::new(pb::GetRoomRequest {
        room_id: room.clone(),
    });
    bad.metadata_mut()
        .insert("authorization", format!("Bearer {wrong}").parse().unwrap());
    assert!(c.client.get_room(bad).await.is_err());
    secrets.push(wrong.into());

    // Viewers: a token in the URL, a dealer token, a forged one.
    let token = c.token(&room, "watcher").await;
    let mut v = common::connect(&server.http_addr(), &room, &token).await;
    v.expect("welcome").await;
    v.send(serde_json::json!({"type": "chat", "text": "hello"}))
        .await;
    v.expect("chat").await;
    let dealer = dealer_token(&room, &show.key, "d1", "gold");
    let mut d = common::connect(&server.http_addr(), &room, &dealer).await;
    d.expect("welcome").await;
    let sale = c.flash_sale(&room, &show.products[0].id, 5, 1, 600).await;
    d.send(serde_json::json!({"type": "grab", "sale_id": sale.id, "key": "g1"}))
        .await;
    d.expect("grab_result").await;
    let forged = format!("{}x", &token[..token.len() - 1]);
    let mut f = common::connect(&server.http_addr(), &room, &forged).await;
    let (code, _) = f.closed().await;
    assert_eq!(code, 4001);
    secrets.extend([token.clone(), dealer.clone(), forged]);
    c.verify(&room, "watcher", "silver").await;
    c.client
        .kick_viewer(authed(pb::KickViewerRequest {
            room_id: room.clone(),
            viewer_id: "d1".into(),
            reason: "test".into(),
        }))
        .await
        .unwrap();

    // Media: a presenter token (Authorization), a viewer token in the WHEP query.
    let presenter = c.presenter_token(&room, &show.brand_a).await;
    let publisher = WhipPublisher::connect(http_addr, &room, &show.brand_a, &presenter)
        .await
        .unwrap();
    let mut whep = WhepViewer::connect(http_addr, &room, &token).await.unwrap();
    whep.wait_connected().await;
    assert_eq!(whep.leave().await, 200);
    assert_eq!(publisher.stop().await, 200);
    secrets.push(presenter);

    // Registration: its token, secret and personal link.
    c.client
        .set_registration(authed(pb::SetRegistrationRequest {
            room_id: room.clone(),
            mode: pb::RegistrationMode::Open as i32,
            phone_country: Some("DE".into()),
        }))
        .await
        .unwrap();
    let r = http(
        http_addr,
        "POST",
        &format!("/api/rooms/{room}/registrations"),
        &[("content-type", "application/json")],
        r#"{"name":"Ada","company":"Acme","phone":"030 1234567"}"#,
    )
    .await;
    assert_eq!(r.status, 201, "{}", r.body);
    let reg: serde_json::Value = serde_json::from_str(&r.body).unwrap();
    for field in ["token", "secret"] {
        if let Some(s) = reg[field].as_str() {
            secrets.push(s.to_string());
        }
    }
    if let Some(link) = reg["link"].as_str() {
        if let Some(pass) = link.split("pass=").nth(1) {
            secrets.push(pass.split('&').next().unwrap().to_string());
        }
    }
    assert!(reg["token"].is_string(), "{reg}");

    server.child.kill().unwrap();
    let _ = server.exited().await;
    let log = server.log();
    assert!(log.lines().count() > 20, "the server logged: {log}");
    for s in &secrets {
        // A token's signature alone is as good as the token: look for its tail too.
        let tail = &s[s.len().saturating_sub(16)..];
        for needle in [s.as_str(), tail] {
            if let Some(line) = log.lines().find(|l| l.contains(needle)) {
                panic!(
                    "a secret ({}…) is in the log:\n{line}",
                    &s[..s.len().min(6)]
                );
            }
        }
    }
}
