//! The browser pages in headless Chromium (`tests/browser/pages.sh` + `pages.mjs`, against the
//! binary cargo built; screenshots land in `target/browser-artifacts/`), and the console's
//! protobuf codec against messages prost encoded (`tests/browser/protobuf.test.mjs`).

use prost::Message;
use serde_json::{json, Value};
use showfloor::pb;
use std::path::Path;
use std::process::{Command, Output};

fn run(mut command: Command, what: &str) {
    let out: Output = command.output().expect("the command starts");
    let log = format!(
        "--- stdout\n{}\n--- stderr\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "{what} failed\n{log}");
    println!("{log}");
}

#[test]
fn host_console_and_viewer_page_work_in_chromium() {
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/browser/pages.sh");
    let bin = env!("CARGO_BIN_EXE_showfloor");
    // target/<profile>/showfloor → target/browser-artifacts
    let artifacts = Path::new(bin)
        .parent()
        .and_then(Path::parent)
        .expect("the binary lives in the target directory")
        .join("browser-artifacts");
    let mut command = Command::new("bash");
    command
        .arg(script)
        .env("SHOWFLOOR_BIN", bin)
        .env("ARTIFACTS", &artifacts);
    run(command, "the pages scenario");
}

/// One message as prost encodes it, and as the browser codec must read and write it.
fn case(name: &str, message: &impl Message, value: Value) -> Value {
    let type_name = name.split(' ').next().expect("a name");
    json!({
        "name": name,
        "type": type_name,
        "hex": hex::encode(message.encode_to_vec()),
        "value": value,
    })
}

#[test]
fn console_codec_round_trips_prost_messages() {
    use pb::draw_eligibility::Rule;
    use pb::watch_room_event::Event;
    let order = pb::Order {
        id: "o1".into(),
        room_id: "r1".into(),
        viewer_id: "chen".into(),
        display_name: "Ms Chen 陈".into(),
        tier: "gold".into(),
        product_name: "Down jacket".into(),
        quantity: 12,
        unit_price_cents: 731_943,
        total_cents: 8_783_316,
        currency: "CNY".into(),
        status: pb::OrderStatus::Confirmed as i32,
        sale_id: "s5".into(),
        created_ms: 1_763_891_100_000,
        ..Default::default()
    };
    let stats = pb::WatchRoomEvent {
        event: Some(Event::Stats(pb::RoomStats {
            online: 812,
            peak_online: 1200,
            dealers_online: 37,
            chat_per_minute: 0,
            likes: 20_311,
            seq: 4_294_967_301,
            at_ms: 1_763_891_000_000,
        })),
    };
    let draw = pb::CreateDrawRequest {
        room_id: "r1".into(),
        prize: "Factory tour".into(),
        winners: 3,
        eligibility: Some(pb::DrawEligibility {
            rule: Some(Rule::Everyone(pb::Empty {})),
        }),
        entry_seconds: 60,
        beacon_source: String::new(),
    };
    let record = pb::DrawRecord {
        draw_id: "d9".into(),
        eligibility: Some(pb::DrawEligibility {
            rule: Some(Rule::Keyword("lucky".into())),
        }),
        entrants: vec!["chen".into(), "li".into()],
        winners: vec!["li".into()],
        drawn_ms: 1_763_891_136_170,
        ..Default::default()
    };
    let brand = pb::AddBrandRequest {
        room_id: "r1".into(),
        name: "Alpha".into(),
        logo_url: String::new(),
        position: Some(0),
    };
    let negative = pb::TierPrice {
        tier: "gold".into(),
        price_cents: -5,
    };
    let rooms = pb::ListRoomsResponse {
        rooms: vec![pb::Room {
            id: "r1".into(),
            state: pb::RoomState::Live as i32,
            chat_rate_limit: Some(pb::ChatRateLimit {
                messages: 5,
                per_seconds: 10,
            }),
            tiers: vec!["gold".into(), "silver".into()],
            brands: vec![pb::Brand {
                id: "b1".into(),
                name: "Alpha".into(),
                position: 1,
                ..Default::default()
            }],
            ..Default::default()
        }],
    };
    let imported = pb::ImportCatalogResponse {
        errors: vec![pb::ImportRowError {
            line: 3,
            field: "price_gold".into(),
            reason: "\"12.345\" is not a price".into(),
        }],
        products: vec![pb::ImportedProduct {
            line: 2,
            product: Some(pb::Product {
                id: "p3".into(),
                name: "Down jacket".into(),
                image_urls: vec!["https://img.example/j.jpg".into()],
                min_order_quantity: 10,
                prices: vec![pb::TierPrice {
                    tier: "gold".into(),
                    price_cents: 25_900,
                }],
                ..Default::default()
            }),
            brand_name: "Alpha".into(),
            existing: true,
        }],
        new_brands: vec![pb::Brand {
            name: "Cobalt".into(),
            position: 2,
            ..Default::default()
        }],
        dry_run: true,
    };
    let report = pb::RoomReport {
        room_id: "r1".into(),
        peak_concurrency: 812,
        concurrency_per_minute: vec![3, 812, 300, 0],
        segments: vec![pb::SegmentReport {
            brand_name: "Alpha".into(),
            viewers: 4,
            value_cents: 723_300,
            buyers: 1,
            conversion: 0.25,
            ..Default::default()
        }],
        funnel: Some(pb::Funnel {
            registered: 3,
            watched: 2,
            ordered: 2,
            ..Default::default()
        }),
        ..Default::default()
    };
    let cases = vec![
        case(
            "Order (int64, enum, UTF-8)",
            &order,
            json!({"id": "o1", "room_id": "r1", "viewer_id": "chen", "display_name": "Ms Chen 陈",
                   "tier": "gold", "product_name": "Down jacket", "quantity": 12,
                   "unit_price_cents": 731943, "total_cents": 8783316, "currency": "CNY",
                   "status": 2, "sale_id": "s5", "created_ms": 1763891100000i64}),
        ),
        case(
            "WatchRoomEvent (oneof, uint64 beyond 32 bits)",
            &stats,
            json!({"stats": {"online": 812, "peak_online": 1200, "dealers_online": 37,
                             "likes": 20311, "seq": 4294967301u64, "at_ms": 1763891000000i64}}),
        ),
        case(
            "CreateDrawRequest (empty message in a oneof)",
            &draw,
            json!({"room_id": "r1", "prize": "Factory tour", "winners": 3,
                   "eligibility": {"everyone": {}}, "entry_seconds": 60}),
        ),
        case(
            "DrawRecord (repeated strings, string oneof)",
            &record,
            json!({"draw_id": "d9", "eligibility": {"keyword": "lucky"},
                   "entrants": ["chen", "li"], "winners": ["li"], "drawn_ms": 1763891136170i64}),
        ),
        case(
            "AddBrandRequest (proto3 optional set to zero)",
            &brand,
            json!({"room_id": "r1", "name": "Alpha", "position": 0}),
        ),
        case(
            "TierPrice (negative int64)",
            &negative,
            json!({"tier": "gold", "price_cents": -5}),
        ),
        case(
            "ImportCatalogResponse (row errors, nested product, bool)",
            &imported,
            json!({"errors": [{"line": 3, "field": "price_gold", "reason": "\"12.345\" is not a price"}],
                   "products": [{"line": 2, "brand_name": "Alpha", "existing": true,
                                 "product": {"id": "p3", "name": "Down jacket",
                                             "image_urls": ["https://img.example/j.jpg"],
                                             "min_order_quantity": 10,
                                             "prices": [{"tier": "gold", "price_cents": 25900}]}}],
                   "new_brands": [{"name": "Cobalt", "position": 2}], "dry_run": true}),
        ),
        case(
            "RoomReport (packed repeated uint32 with a zero, double)",
            &report,
            json!({"room_id": "r1", "peak_concurrency": 812, "concurrency_per_minute": [3, 812, 300, 0],
                   "segments": [{"brand_name": "Alpha", "viewers": 4, "value_cents": 723300,
                                 "buyers": 1, "conversion": 0.25}],
                   "funnel": {"registered": 3, "watched": 2, "ordered": 2}}),
        ),
        case(
            "ListRoomsResponse (nested and repeated messages)",
            &rooms,
            json!({"rooms": [{"id": "r1", "state": 2, "chat_rate_limit": {"messages": 5, "per_seconds": 10},
                              "tiers": ["gold", "silver"],
                              "brands": [{"id": "b1", "name": "Alpha", "position": 1}]}]}),
        ),
    ];
    let dir = tempfile::tempdir().expect("a temp dir");
    let fixtures = dir.path().join("codec-fixtures.json");
    let body = json!({ "schema": showfloor::web::control_schema(), "cases": cases });
    std::fs::write(&fixtures, body.to_string()).expect("fixtures written");
    let mut command = Command::new("node");
    command
        .arg("--test")
        .arg(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/tests/browser/protobuf.test.mjs"
        ))
        .env("CODEC_FIXTURES", &fixtures);
    run(command, "the codec test");
}
