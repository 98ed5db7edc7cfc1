//! Reports through gRPC and ctl (issue 15): a short real show — registrations through invite
//! links and a channel, viewers opening and clicking products, a dealer ordering, a brand
//! switch — then GetRoomReport, ListLeads, GetReferralTree, SetLeadWeights and a `lead_hot`
//! event in WatchRoom; bad product messages get an error event; reports need the host key.
//! On SQLite and PostgreSQL. (Every figure against a scripted clock: `report::tests`.)

mod common;
use common::registration::{json_of, register};
use common::rtc_client::http;
use common::*;
use serde_json::{json, Value};
use showfloor::pb;
use std::time::{Duration, Instant};
use tokio_stream::StreamExt;

struct Person {
    viewer_id: String,
    token: String,
    invite_code: String,
}

async fn registered(server: &Server, room: &str, addr: &str, body: Value) -> Person {
    let r = register(server, room, addr, &body.to_string()).await;
    assert_eq!(r.status, 201, "{}", r.body);
    let v = json_of(&r);
    Person {
        viewer_id: v["viewer_id"].as_str().unwrap().into(),
        token: v["token"].as_str().unwrap().into(),
        invite_code: v["invite_code"].as_str().unwrap().into(),
    }
}

async fn report(c: &mut Control, room: &str) -> pb::RoomReport {
    c.client
        .get_room_report(authed(pb::GetRoomReportRequest {
            room_id: room.into(),
        }))
        .await
        .unwrap()
        .into_inner()
}

async fn leads(c: &mut Control, q: pb::ListLeadsRequest) -> pb::ListLeadsResponse {
    c.client.list_leads(authed(q)).await.unwrap().into_inner()
}

fn breakdown(l: &pb::Lead) -> Vec<(String, u64, f64)> {
    l.breakdown
        .iter()
        .map(|a| (a.activity.clone(), a.count, a.points))
        .collect()
}

/// `showfloor ctl ARGS` against `server`: (exit code, stdout).
async fn ctl(server: &Server, args: &[&str]) -> (Option<i32>, String) {
    let run = ctl_run(server, args).await;
    (run.code, run.stdout)
}

async fn a_show_is_reported(server: Server) {
    let mut c = server.control().await;
    let room = c
        .client
        .create_room(authed(pb::CreateRoomRequest {
            title: "Report show".into(),
            tiers: vec!["gold".into(), "silver".into()],
            registration: pb::RegistrationMode::Open as i32,
            phone_country: "CN".into(),
            ..Default::default()
        }))
        .await
        .unwrap()
        .into_inner()
        .room
        .unwrap()
        .id;
    let a = c.add_brand(&room, "Alpha").await;
    let b = c.add_brand(&room, "Bravo").await;
    let jacket = c.product(&room, &a.id, "jacket", 11_100, 12_200).await.id;
    let tent = c.product(&room, &b.id, "tent", 15_500, 16_600).await.id;
    c.switch(&room, &a.id).await;
    c.client
        .open_room(authed(pb::RoomRef {
            room_id: room.clone(),
        }))
        .await
        .unwrap();
    let channel = c
        .client
        .create_channel(authed(pb::CreateChannelRequest {
            room_id: room.clone(),
            name: "WeChat group".into(),
        }))
        .await
        .unwrap()
        .into_inner();

    // Ann through the channel; Bob invited by Ann; Cat invited by Bob.
    let ann = registered(&server, &room, "10.0.0.1",
        json!({"name": "Ann", "company": "Ann Trading", "phone": "138 0013 8000", "channel": channel.code})).await;
    let bob = registered(&server, &room, "10.0.0.2",
        json!({"name": "Bob", "company": "Bob Co", "phone": "139 0013 9000", "invite": ann.invite_code})).await;
    let cat = registered(&server, &room, "10.0.0.3",
        json!({"name": "Cat", "company": "Cat Ltd", "phone": "137 0013 7000", "invite": bob.invite_code})).await;
    c.verify(&room, &bob.viewer_id, "gold").await;

    let mut va = server.viewer(&room, &ann.token).await;
    va.expect("welcome").await;
    va.send(json!({"type": "product_view", "product_id": jacket}))
        .await;
    va.send(json!({"type": "product_view", "product_id": jacket}))
        .await;
    va.send(json!({"type": "like", "count": 3})).await;
    // Bad input: an error event for the sender, nothing counted.
    va.send(json!({"type": "product_view", "product_id": "p999"}))
        .await;
    assert_eq!(va.expect("error").await["code"], "unknown_product");
    va.send(json!({"type": "product_click", "product_id": jacket}))
        .await;
    assert_eq!(va.expect("error").await["code"], "not_dealer");
    va.send(json!({"type": "product_view"})).await;
    assert_eq!(va.expect("error").await["code"], "missing_field");

    let mut vb = server.viewer(&room, &bob.token).await;
    vb.expect("welcome").await;
    vb.send(json!({"type": "product_click", "product_id": jacket}))
        .await;
    vb.send(json!({"type": "place_order", "product_id": jacket, "quantity": 10, "key": "k1"}))
        .await;
    let placed = vb.expect("order_placed").await;
    assert_eq!(placed["order"]["total_cents"], 111_000, "{placed}");
    c.switch(&room, &b.id).await;
    let mut vc = server.viewer(&room, &cat.token).await;
    vc.expect("welcome").await;
    vc.send(json!({"type": "product_view", "product_id": tent}))
        .await;
    // Nothing of it reached the others (what they received so far).
    assert!(!vb.saw_text("product_view") && !vc.saw_text("product_click"));
    let sent = Instant::now();

    // The report catches up within 5 s.
    let r = loop {
        let r = report(&mut c, &room).await;
        let views: u64 = r.products.iter().map(|p| p.views).sum();
        if views == 3 {
            break r;
        }
        assert!(
            sent.elapsed() < Duration::from_secs(5),
            "stale report: {r:?}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    assert_eq!((r.registered, r.unique_viewers), (3, 3));
    assert!(r.peak_concurrency >= 2, "{r:?}");
    let segments: Vec<&str> = r.segments.iter().map(|s| s.brand_id.as_str()).collect();
    assert_eq!(segments, [a.id.as_str(), b.id.as_str()]);
    assert_eq!((r.segments[0].product_clicks, r.segments[0].orders), (1, 1));
    assert_eq!(r.segments[0].value_cents, 111_000);
    assert_eq!((r.segments[1].product_views, r.segments[1].orders), (1, 0));
    let products: Vec<(&str, u64, u64, u32, i64)> = r
        .products
        .iter()
        .filter(|p| p.views + p.clicks > 0)
        .map(|p| {
            (
                p.product_id.as_str(),
                p.views,
                p.clicks,
                p.orders,
                p.value_cents,
            )
        })
        .collect();
    assert_eq!(
        products,
        [
            (jacket.as_str(), 2, 1, 1, 111_000),
            (tent.as_str(), 1, 0, 0, 0)
        ]
    );
    let f = r.funnel.unwrap();
    assert_eq!(
        (
            f.registered,
            f.watched,
            f.applied,
            f.verified_dealers,
            f.ordered
        ),
        (3, 3, 0, 1, 1)
    );
    let ch = &r.channels[0];
    assert_eq!((ch.registrations, ch.attended, ch.orders), (1, 1, 0));

    let l = leads(
        &mut c,
        pb::ListLeadsRequest {
            room_id: room.clone(),
            ..Default::default()
        },
    )
    .await;
    let by = |id: &str| l.leads.iter().find(|x| x.viewer_id == id).unwrap().clone();
    let bob_lead = by(&bob.viewer_id);
    let lines = breakdown(&bob_lead);
    assert!(lines.contains(&("order".into(), 1, 25.0)), "{lines:?}");
    assert!(
        lines.contains(&("product_click".into(), 1, 5.0)),
        "{lines:?}"
    );
    assert!(lines.contains(&("registered".into(), 1, 10.0)), "{lines:?}");
    assert_eq!(
        (bob_lead.dealer_tier.as_str(), bob_lead.phone.as_str()),
        ("gold", "+8613900139000")
    );
    let ann_lines = breakdown(&by(&ann.viewer_id));
    assert!(
        ann_lines.contains(&("product_view".into(), 2, 4.0)),
        "{ann_lines:?}"
    );
    assert!(
        ann_lines.contains(&("like".into(), 3, 3.0)),
        "{ann_lines:?}"
    );
    assert_eq!(by(&cat.viewer_id).brand_interest, vec![b.id.clone()]);

    // Referrals: Ann -> Bob -> Cat, Bob's order attributed to Ann directly and per subtree.
    let t = c
        .client
        .get_referral_tree(authed(pb::GetReferralTreeRequest {
            room_id: room.clone(),
        }))
        .await
        .unwrap()
        .into_inner();
    let root = &t.roots[0];
    assert_eq!(root.viewer_id, ann.viewer_id);
    assert_eq!(
        (
            root.direct_invitees,
            root.direct_orders,
            root.direct_value_cents
        ),
        (1, 1, 111_000)
    );
    assert_eq!((root.subtree_size, root.subtree_orders), (2, 1));
    assert_eq!(root.children[0].children[0].viewer_id, cat.viewer_id);
    assert_eq!(t.ranking.len(), 2);

    // A host watching hears when a dealer turns hot: orders weigh 100 and hot is 90.
    let mut watch = c
        .client
        .watch_room(authed(pb::RoomRef {
            room_id: room.clone(),
        }))
        .await
        .unwrap()
        .into_inner();
    tokio::time::sleep(Duration::from_millis(500)).await;
    let weights = c
        .client
        .set_lead_weights(authed(pb::SetLeadWeightsRequest {
            room_id: room.clone(),
            activities: vec![pb::NamedActivityWeight {
                activity: "order".into(),
                weight: Some(pb::ActivityWeight {
                    points: 100.0,
                    cap: 100.0,
                }),
            }],
            hot_at: Some(90.0),
            ..Default::default()
        }))
        .await
        .unwrap()
        .into_inner();
    assert_eq!((weights.hot_at, weights.warm_at), (90.0, 30.0));
    let hot = leads(
        &mut c,
        pb::ListLeadsRequest {
            room_id: room.clone(),
            stage: pb::LeadStage::Hot as i32,
            ..Default::default()
        },
    )
    .await;
    let ids: Vec<&str> = hot.leads.iter().map(|x| x.viewer_id.as_str()).collect();
    assert_eq!(ids, [bob.viewer_id.as_str()]);
    let event = tokio::time::timeout(Duration::from_secs(15), async {
        loop {
            let ev = watch.next().await.expect("stream open").unwrap();
            if let Some(pb::watch_room_event::Event::LeadHot(h)) = ev.event {
                return h;
            }
        }
    })
    .await
    .expect("a lead_hot event");
    assert_eq!(
        (event.viewer_id.as_str(), event.ordered),
        (bob.viewer_id.as_str(), true)
    );
    let bad = c
        .client
        .set_lead_weights(authed(pb::SetLeadWeightsRequest {
            room_id: room.clone(),
            warm_at: Some(95.0),
            ..Default::default()
        }))
        .await
        .unwrap_err();
    assert_eq!(bad.code(), tonic::Code::InvalidArgument);

    // Host-only, and an unknown room is NOT_FOUND.
    let anonymous = c
        .client
        .get_room_report(pb::GetRoomReportRequest {
            room_id: room.clone(),
        })
        .await
        .unwrap_err();
    assert_eq!(anonymous.code(), tonic::Code::Unauthenticated);
    let missing = c
        .client
        .list_leads(authed(pb::ListLeadsRequest {
            room_id: "nope".into(),
            ..Default::default()
        }))
        .await
        .unwrap_err();
    assert_eq!(missing.code(), tonic::Code::NotFound);

    // ctl, human and --json.
    let (code, out) = ctl(&server, &["--json", "report", &room]).await;
    assert_eq!(code, Some(0), "{out}");
    let v: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(
        (v["unique_viewers"].as_u64(), v["registered"].as_u64()),
        (Some(3), Some(3))
    );
    let (code, out) = ctl(&server, &["report", &room]).await;
    assert_eq!(code, Some(0));
    assert!(out.contains("funnel: registered 3 -> watched 3"), "{out}");
    let (code, out) = ctl(&server, &["leads", &room, "--stage", "hot"]).await;
    assert_eq!(code, Some(0));
    assert!(
        out.contains(&bob.viewer_id) && out.contains("order x1 = 100"),
        "{out}"
    );
    let (code, out) = ctl(&server, &["--json", "leads", &room, "--company", "ann"]).await;
    assert_eq!(code, Some(0));
    let v: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["leads"].as_array().unwrap().len(), 1, "{v}");
    let (code, out) = ctl(&server, &["referrals", &room]).await;
    assert_eq!(code, Some(0));
    assert!(
        out.contains(&format!("    {} \"Cat\"", cat.viewer_id)),
        "{out}"
    );
    let (code, out) = ctl(&server, &["set-lead-weights", &room, "--reset"]).await;
    assert_eq!(code, Some(0));
    assert!(out.contains("order          25 points, cap 75"), "{out}");
    let (code, _) = ctl(&server, &["set-lead-weights", &room, "--weight", "nap=1:2"]).await;
    assert_eq!(code, Some(1));

    // CSV exports, by RPC and by ctl (stdout or a file).
    let export = c
        .client
        .export_report(authed(pb::ExportReportRequest {
            room_id: room.clone(),
            kind: pb::ExportKind::Referrals as i32,
        }))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(export.filename, format!("{room}-referrals.csv"));
    let invited_by: Vec<(String, String)> = export
        .csv
        .lines()
        .skip(1)
        .map(|l| {
            let cells: Vec<&str> = l.split(',').collect();
            (cells[0].to_string(), cells[4].to_string())
        })
        .collect();
    assert_eq!(
        invited_by,
        [
            (ann.viewer_id.clone(), String::new()),
            (bob.viewer_id.clone(), ann.viewer_id.clone()),
            (cat.viewer_id.clone(), bob.viewer_id.clone()),
        ]
    );
    let unspecified = c
        .client
        .export_report(authed(pb::ExportReportRequest {
            room_id: room.clone(),
            kind: 0,
        }))
        .await
        .unwrap_err();
    assert_eq!(unspecified.code(), tonic::Code::InvalidArgument);
    let (code, out) = ctl(&server, &["export", &room, "segments"]).await;
    assert_eq!(code, Some(0));
    let rows: Vec<&str> = out.lines().collect();
    assert_eq!(rows.len(), 3, "{out}");
    assert!(
        rows[0].starts_with("brand_id,brand_name,start_ms,end_ms,viewers"),
        "{out}"
    );
    assert!(rows[1].starts_with(&format!("{},Alpha,", a.id)), "{out}");
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("orders.csv");
    let (code, _) = ctl(
        &server,
        &["export", &room, "orders", "--out", file.to_str().unwrap()],
    )
    .await;
    assert_eq!(code, Some(0));
    let orders = std::fs::read_to_string(&file).unwrap();
    assert_eq!(orders.lines().count(), 2, "{orders}");
    assert!(orders.contains(",111000,CNY,placed,"), "{orders}");

    // The same as an HTTP download for hosts.
    let path = format!("/api/rooms/{room}/reports/leads.csv");
    let bearer = format!("Bearer {KEY}");
    let got = http(
        server.app().http_addr,
        "GET",
        &path,
        &[("authorization", bearer.as_str())],
        "",
    )
    .await;
    assert_eq!(got.status, 200, "{}", got.body);
    assert!(
        got.body.starts_with("viewer_id,name,company,phone,"),
        "{}",
        got.body
    );
    assert_eq!(got.body.lines().count(), 4, "{}", got.body);
    let header = |name: &str| {
        got.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.clone())
    };
    assert_eq!(
        header("content-type").as_deref(),
        Some("text/csv; charset=utf-8")
    );
    assert_eq!(
        header("content-disposition"),
        Some(format!("attachment; filename=\"{room}-leads.csv\""))
    );
    let anonymous = http(server.app().http_addr, "GET", &path, &[], "").await;
    assert_eq!(anonymous.status, 401);
    assert!(!anonymous.body.contains("+86"), "no data without the key");
    let wrong = [("authorization", "Bearer nope")];
    assert_eq!(
        http(server.app().http_addr, "GET", &path, &wrong, "")
            .await
            .status,
        401
    );
    let auth = [("authorization", bearer.as_str())];
    let other = format!("/api/rooms/{room}/reports/everything.csv");
    assert_eq!(
        http(server.app().http_addr, "GET", &other, &auth, "")
            .await
            .status,
        404
    );
    let missing = "/api/rooms/nope/reports/leads.csv";
    assert_eq!(
        http(server.app().http_addr, "GET", missing, &auth, "")
            .await
            .status,
        404
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_show_is_reported_on_sqlite() {
    a_show_is_reported(Server::start().await).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_show_is_reported_on_postgres() {
    a_show_is_reported(Server::start_on_postgres().await).await;
}

/// Flash-sale forensics from a real sale: one unit, two dealers grab; the report names the
/// winner, the dealer who missed, the attempts against stock and when it sold out; `ctl
/// report` prints them.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_report_has_flash_sale_forensics() {
    let server = Server::start().await;
    let mut c = server.control().await;
    let show = setup_show(&mut c).await;
    let sale = c
        .flash_sale(&show.room, &show.products[0].id, 1, 1, 600)
        .await;
    let mut dealers = Vec::new();
    for d in ["fast", "slow"] {
        c.verify(&show.room, d, "gold").await;
        let mut v = server
            .viewer(&show.room, &dealer_token(&show.room, &show.key, d, "gold"))
            .await;
        v.expect("welcome").await;
        dealers.push(v);
    }
    dealers[0]
        .send(json!({"type": "grab", "sale_id": sale.id, "key": "f1"}))
        .await;
    assert_eq!(dealers[0].expect("grab_result").await["result"], "won");
    for k in ["s1", "s2"] {
        dealers[1]
            .send(json!({"type": "grab", "sale_id": sale.id, "key": k}))
            .await;
        assert_eq!(dealers[1].expect("grab_result").await["result"], "sold_out");
    }
    // Grab attempts reach the store in the room's engagement batches (every 2 s); a report
    // is at most 5 s old.
    let deadline = Instant::now() + Duration::from_secs(15);
    let f = loop {
        let r = c
            .client
            .get_room_report(authed(pb::GetRoomReportRequest {
                room_id: show.room.clone(),
            }))
            .await
            .unwrap()
            .into_inner();
        let f = r.flash_sales.into_iter().find(|f| f.sale_id == sale.id);
        if let Some(f) = f.filter(|f| f.attempts == 3) {
            break f;
        }
        assert!(
            Instant::now() < deadline,
            "the attempts never reached the report"
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    };
    assert_eq!((f.stock, f.sold, f.attempters), (1, 1, 2));
    assert!(f.sold_out_ms >= f.start_ms && f.sold_out_ms > 0);
    assert_eq!(f.revenue_cents, 5_000);
    let winner = f.winners[0].person.as_ref().unwrap();
    assert_eq!((winner.viewer_id.as_str(), f.winners[0].units), ("fast", 1));
    let missed = f.missed[0].person.as_ref().unwrap();
    assert_eq!(
        (missed.viewer_id.as_str(), f.missed[0].attempts),
        ("slow", 2)
    );
    assert_eq!(missed.company, "Acme Trading");
    let out = ctl_run(&server, &["report", &show.room]).await;
    assert_eq!(out.code, Some(0), "{}", out.stderr);
    assert!(
        out.stdout.contains("sold 1/1  3 grabs by 2 dealers"),
        "{}",
        out.stdout
    );
    assert!(
        out.stdout.contains("missed after 2 grab(s)  slow"),
        "{}",
        out.stdout
    );
}
