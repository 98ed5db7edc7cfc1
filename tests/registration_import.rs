//! Dealer import (issue 15) through `showfloor ctl import-dealers`: every bad row is listed
//! with its line number and nothing is written; a good list makes verified dealers whose
//! personal links open the room at their tier, and whose phones the open form will not
//! hand out.

mod common;
use common::rtc_client::http;
use common::*;
use serde_json::Value;
use showfloor::pb;
use std::io::Write as _;
use std::process::Command;

struct Run {
    code: Option<i32>,
    stdout: String,
    stderr: String,
}

/// `showfloor ctl --server … --key … ARGS…`, off the runtime's threads.
async fn ctl(server: &Server, args: &[&str]) -> Run {
    let mut argv: Vec<String> = vec![
        "ctl".into(),
        "--server".into(),
        format!("http://{}", server.app().grpc_addr),
        "--key".into(),
        KEY.into(),
    ];
    argv.extend(args.iter().map(|s| s.to_string()));
    tokio::task::spawn_blocking(move || {
        let out = Command::new(env!("CARGO_BIN_EXE_showfloor"))
            .args(&argv)
            .output()
            .expect("the binary runs");
        Run {
            code: out.status.code(),
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        }
    })
    .await
    .unwrap()
}

fn csv_file(text: &str) -> tempfile::NamedTempFile {
    let mut f = tempfile::NamedTempFile::new().unwrap();
    f.write_all(text.as_bytes()).unwrap();
    f
}

async fn nothing_written(c: &mut Control, room: &str) {
    let regs = c
        .client
        .list_registrations(authed(pb::ListRegistrationsRequest {
            room_id: room.into(),
            status: 0,
        }))
        .await
        .unwrap()
        .into_inner()
        .registrations;
    assert!(regs.is_empty(), "{regs:?}");
    let dealers = c
        .client
        .list_dealers(authed(pb::RoomRef {
            room_id: room.into(),
        }))
        .await
        .unwrap()
        .into_inner()
        .dealers;
    assert!(dealers.is_empty(), "{dealers:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dealer_list_is_checked_whole_then_imported_with_personal_links() {
    let server = Server::start().await;
    let mut c = server.control().await;
    let created = ctl(
        &server,
        &[
            "--json",
            "create-room",
            "--title",
            "Dealers only",
            "--tier",
            "gold",
            "--tier",
            "silver",
            "--registration",
            "open",
            "--phone-country",
            "CN",
        ],
    )
    .await;
    assert_eq!(created.code, Some(0), "{}", created.stderr);
    let room = serde_json::from_str::<Value>(&created.stdout).unwrap()["room"]["id"]
        .as_str()
        .unwrap()
        .to_string();

    let bad = csv_file(
        "name,company,phone,tier\n\
         Wang,Wang Trading,138 0013 8000,gold\n\
         Li,Li Co,12345,silver\n\
         Zhao,Zhao Ltd,13700137000,platinum\n",
    );
    let path = bad.path().to_str().unwrap();
    for args in [
        vec!["import-dealers", room.as_str(), path, "--dry-run"],
        vec!["import-dealers", room.as_str(), path],
    ] {
        let run = ctl(&server, &args).await;
        assert_eq!(run.code, Some(1), "{}", run.stdout);
        assert!(run.stderr.contains("line 3: phone: "), "{}", run.stderr);
        assert!(run.stderr.contains("line 4: tier: "), "{}", run.stderr);
        assert!(!run.stderr.contains("line 2"), "{}", run.stderr);
        assert!(
            run.stderr.contains("nothing was imported"),
            "{}",
            run.stderr
        );
        nothing_written(&mut c, &room).await;
    }

    let good = csv_file(
        "name,company,phone,tier\n\
         Wang,Wang Trading,138 0013 8000,gold\n\
         Li,Li Co,+86 139 0013 9000,silver\n",
    );
    let path = good.path().to_str().unwrap();
    let dry = ctl(&server, &["import-dealers", &room, path, "--dry-run"]).await;
    assert_eq!(dry.code, Some(0), "{}", dry.stderr);
    assert!(
        dry.stdout.contains("2 dealer(s) would be imported"),
        "{}",
        dry.stdout
    );
    nothing_written(&mut c, &room).await;

    let run = ctl(&server, &["--json", "import-dealers", &room, path]).await;
    assert_eq!(run.code, Some(0), "{}", run.stderr);
    let imported: Value = serde_json::from_str(&run.stdout).unwrap();
    let dealers = imported["dealers"].as_array().unwrap();
    assert_eq!(dealers.len(), 2);
    let wang = &dealers[0]["registration"];
    assert_eq!(wang["phone"], "+8613800138000");
    assert_eq!(wang["source"], "import");
    let link = wang["personal_link"].as_str().unwrap();
    let pass = link.split("pass=").nth(1).unwrap();
    let (id, secret) = pass.split_once('.').unwrap();

    let listed = c
        .client
        .list_dealers(authed(pb::RoomRef {
            room_id: room.clone(),
        }))
        .await
        .unwrap()
        .into_inner()
        .dealers;
    let tiers: Vec<(String, String)> = listed
        .iter()
        .map(|d| (d.company.clone(), d.tier.clone()))
        .collect();
    assert_eq!(tiers.len(), 2);
    assert!(
        tiers.contains(&("Wang Trading".into(), "gold".into())),
        "{tiers:?}"
    );

    // The personal link gets a token that opens the room as the gold dealer.
    let r = http(
        server.app().http_addr,
        "GET",
        &format!("/api/rooms/{room}/registrations/{id}?secret={secret}"),
        &[],
        "",
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.body);
    let token: Value = serde_json::from_str(&r.body).unwrap();
    let mut v = server.viewer(&room, token["token"].as_str().unwrap()).await;
    let welcome = v.expect("welcome").await;
    assert_eq!(welcome["you"]["role"], "dealer");
    assert_eq!(welcome["you"]["tier"], "gold");

    // Typing a dealer's phone into the open form does not open the dealer's identity.
    let r = http(
        server.app().http_addr,
        "POST",
        &format!("/api/rooms/{room}/registrations"),
        &[("content-type", "application/json")],
        r#"{"name":"Someone","phone":"13800138000"}"#,
    )
    .await;
    assert_eq!(r.status, 409, "{}", r.body);
    let e: Value = serde_json::from_str(&r.body).unwrap();
    assert_eq!(
        (e["error"].as_str(), e["field"].as_str()),
        (Some("dealer_phone"), Some("phone"))
    );

    // Importing the same list again keeps the same viewers.
    let again = ctl(&server, &["--json", "import-dealers", &room, path]).await;
    let again: Value = serde_json::from_str(&again.stdout).unwrap();
    assert_eq!(again["dealers"][0]["existing"], true);
    assert_eq!(
        again["dealers"][0]["registration"]["viewer_id"],
        wang["viewer_id"]
    );
}
