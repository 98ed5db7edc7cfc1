//! Catalogue import (issue 15) over gRPC and through `showfloor ctl import-catalog`: a bad
//! file answers every bad row with its line, column and reason and writes nothing; a dry run
//! writes nothing; a good file makes brands and products with their tier prices, and the
//! same file again updates them instead of adding them twice.

mod common;
use common::*;
use serde_json::Value;
use showfloor::pb;
use std::io::Write as _;
use tonic::Code;

const HEADER: &str =
    "brand,name,description,image_urls,link,min_order_quantity,price_gold,price_silver\n";

fn csv_file(text: &str) -> tempfile::NamedTempFile {
    let mut f = tempfile::NamedTempFile::new().unwrap();
    f.write_all(text.as_bytes()).unwrap();
    f
}

fn import(room: &str, csv: &str, dry_run: bool) -> pb::ImportCatalogRequest {
    pb::ImportCatalogRequest {
        room_id: room.into(),
        csv: csv.into(),
        dry_run,
    }
}

async fn products(c: &mut Control, room: &str) -> Vec<pb::Product> {
    c.client
        .list_products(authed(pb::ListProductsRequest {
            room_id: room.into(),
            brand_id: String::new(),
        }))
        .await
        .unwrap()
        .into_inner()
        .products
}

/// The room's brands and products, to compare before and after an import that must write
/// nothing.
async fn catalogue(c: &mut Control, room: &str) -> (Vec<pb::Brand>, Vec<pb::Product>) {
    (c.get_room(room).await.brands, products(c, room).await)
}

fn prices(p: &pb::Product) -> Vec<(String, i64)> {
    p.prices
        .iter()
        .map(|t| (t.tier.clone(), t.price_cents))
        .collect()
}

fn good_csv() -> String {
    format!(
        "{HEADER}\
         Acme,Down jacket,\"Warm, light\",https://img.example/j1.jpg|https://img.example/j2.jpg,https://shop.example/jacket,10,259.00,279.90\n\
         Nova,Scarf,,,https://shop.example/scarf,1,12.5,13\n\
         acme,Gloves,,https://img.example/g.jpg https://img.example/g2.jpg,https://shop.example/gloves,5,9.99,10.49\n"
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_good_catalogue_is_imported_and_imported_again_updates_it() {
    let server = Server::start().await;
    let mut c = server.control().await;
    let room = c.create_room("Catalogue").await.room.unwrap().id;
    let acme = c.add_brand(&room, "Acme").await;

    let dry = c
        .client
        .import_catalog(authed(import(&room, &good_csv(), true)))
        .await
        .unwrap()
        .into_inner();
    assert!(dry.errors.is_empty(), "{:?}", dry.errors);
    assert!(dry.dry_run);
    assert_eq!(dry.products.len(), 3);
    assert_eq!(dry.new_brands.len(), 1);
    assert_eq!(
        (dry.new_brands[0].name.as_str(), dry.new_brands[0].position),
        ("Nova", 1)
    );
    assert_eq!(catalogue(&mut c, &room).await, (vec![acme.clone()], vec![]));

    let done = c
        .client
        .import_catalog(authed(import(&room, &good_csv(), false)))
        .await
        .unwrap()
        .into_inner();
    assert!(done.errors.is_empty(), "{:?}", done.errors);
    let nova = &done.new_brands[0];
    assert!(!nova.id.is_empty());
    let lines: Vec<(u32, &str, bool)> = done
        .products
        .iter()
        .map(|p| (p.line, p.brand_name.as_str(), p.existing))
        .collect();
    assert_eq!(
        lines,
        vec![(2, "Acme", false), (3, "Nova", false), (4, "Acme", false)]
    );

    // Brands in the running order: the room's first, then the new one.
    let brands = c.get_room(&room).await.brands;
    let names: Vec<&str> = brands.iter().map(|b| b.name.as_str()).collect();
    assert_eq!(names, vec!["Acme", "Nova"]);
    let listed = products(&mut c, &room).await;
    assert_eq!(listed.len(), 3);
    let jacket = listed.iter().find(|p| p.name == "Down jacket").unwrap();
    assert_eq!(jacket.brand_id, acme.id);
    assert_eq!(jacket.description, "Warm, light");
    assert_eq!(jacket.image_urls.len(), 2);
    assert_eq!(jacket.min_order_quantity, 10);
    assert_eq!(
        prices(jacket),
        vec![("gold".into(), 25900), ("silver".into(), 27990)]
    );
    let scarf = listed.iter().find(|p| p.name == "Scarf").unwrap();
    assert_eq!(scarf.brand_id, nova.id);
    assert_eq!(
        prices(scarf),
        vec![("gold".into(), 1250), ("silver".into(), 1300)]
    );
    let gloves = listed.iter().find(|p| p.name == "Gloves").unwrap();
    assert_eq!(gloves.brand_id, acme.id);
    assert_eq!(gloves.image_urls.len(), 2);

    // The same products (any case) with a new price: updated, not added.
    let again = format!(
        "{HEADER}ACME,down jacket,Warmer,,https://shop.example/jacket,20,199,219\n\
         nova,Scarf,,,https://shop.example/scarf,1,12.5,13\n"
    );
    let re = c
        .client
        .import_catalog(authed(import(&room, &again, false)))
        .await
        .unwrap()
        .into_inner();
    assert!(re.errors.is_empty(), "{:?}", re.errors);
    assert!(re.new_brands.is_empty());
    assert!(re.products.iter().all(|p| p.existing), "{:?}", re.products);
    let listed = products(&mut c, &room).await;
    assert_eq!(listed.len(), 3);
    let jacket2 = listed.iter().find(|p| p.id == jacket.id).unwrap();
    assert_eq!(jacket2.name, "down jacket");
    assert_eq!(jacket2.description, "Warmer");
    assert_eq!(jacket2.min_order_quantity, 20);
    assert_eq!(
        prices(jacket2),
        vec![("gold".into(), 19900), ("silver".into(), 21900)]
    );
    assert_eq!(c.get_room(&room).await.brands.len(), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bad_catalogue_answers_every_bad_row_and_writes_nothing() {
    let server = Server::start().await;
    let mut c = server.control().await;
    let room = c.create_room("Bad rows").await.room.unwrap().id;
    let acme = c.add_brand(&room, "Acme").await;
    c.product(&room, &acme.id, "Kept", 100, 200).await;
    let before = catalogue(&mut c, &room).await;

    let bad = format!(
        "{HEADER}\
         Acme,Fine,,,https://shop.example/fine,1,1.00,2.00\n\
         Acme,Cheap,,,https://shop.example/cheap,1,12.345,2\n\
         Nova,,,,https://shop.example/noname,1,1,2\n\
         Nova,Url,,,shop.example/relative,1,1,2\n\
         Acme,Moq,,,https://shop.example/moq,0,1,2\n\
         Acme,Kept,,,https://shop.example/kept,1,,2\n"
    );
    for dry_run in [true, false] {
        let r = c
            .client
            .import_catalog(authed(import(&room, &bad, dry_run)))
            .await
            .unwrap()
            .into_inner();
        let got: Vec<(u32, &str)> = r
            .errors
            .iter()
            .map(|e| (e.line, e.field.as_str()))
            .collect();
        assert_eq!(
            got,
            vec![
                (3, "price_gold"),
                (4, "name"),
                (5, "link"),
                (6, "min_order_quantity"),
                (7, "price_gold"),
            ],
            "{:?}",
            r.errors
        );
        assert!(r.errors[0].reason.contains("12.345"), "{:?}", r.errors);
        assert!(
            r.errors[1].reason.contains("name must be"),
            "{:?}",
            r.errors
        );
        assert!(
            r.errors[2].reason.contains("link is not a valid URL"),
            "{:?}",
            r.errors
        );
        assert!(
            r.errors[3].reason.contains("1 to 1000000"),
            "{:?}",
            r.errors
        );
        assert!(r.products.is_empty() && r.new_brands.is_empty());
        assert_eq!(catalogue(&mut c, &room).await, before);
    }

    // A header with an unknown column and without a price column: the header's problems.
    let r = c
        .client
        .import_catalog(authed(import(
            &room,
            "brand,name,description,image_urls,link,min_order_quantity,price_gold,colour\n\
             Acme,X,,,https://shop.example/x,1,1,red\n",
            false,
        )))
        .await
        .unwrap()
        .into_inner();
    let got: Vec<(u32, &str)> = r
        .errors
        .iter()
        .map(|e| (e.line, e.field.as_str()))
        .collect();
    assert_eq!(got, vec![(1, "colour"), (1, "price_silver")]);
    assert!(r.errors[0].reason.contains("unknown column"));

    // One row more than a catalogue may hold.
    let mut many = HEADER.to_string();
    for i in 0..=showfloor::catalog_import::MAX_ROWS {
        many.push_str(&format!("Acme,P{i},,,https://shop.example/{i},1,1,1\n"));
    }
    let r = c
        .client
        .import_catalog(authed(import(&room, &many, false)))
        .await
        .unwrap()
        .into_inner();
    // The row past the limit, and the room's own limit (it has one product already).
    assert_eq!(r.errors.len(), 2, "{:?}", r.errors);
    assert_eq!(r.errors[0].line, 10_002);
    assert!(r.errors[0].reason.contains("more than 10000"));
    assert!(
        r.errors[1].reason.contains("a room has at most 10000"),
        "{:?}",
        r.errors
    );
    assert_eq!(catalogue(&mut c, &room).await, before);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refusals_are_clear_statuses() {
    let server = Server::start().await;
    let mut c = server.control().await;
    let room = c.create_room("Refusals").await.room.unwrap().id;

    let e = c
        .client
        .import_catalog(authed(import("", &good_csv(), false)))
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::InvalidArgument);
    assert!(e.message().contains("room_id"), "{}", e.message());

    let e = c
        .client
        .import_catalog(authed(import(&room, " \n", false)))
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::InvalidArgument);
    assert!(e.message().contains("csv is required"), "{}", e.message());

    let e = c
        .client
        .import_catalog(authed(import("no-such-room", &good_csv(), true)))
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::NotFound);
    assert!(e.message().contains("no-such-room"), "{}", e.message());

    let e = c
        .client
        .import_catalog(import(&room, &good_csv(), true))
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::Unauthenticated);
    assert!(products(&mut c, &room).await.is_empty());

    c.client
        .close_room(authed(pb::RoomRef {
            room_id: room.clone(),
        }))
        .await
        .unwrap();
    let e = c
        .client
        .import_catalog(authed(import(&room, &good_csv(), false)))
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::FailedPrecondition);
    assert!(e.message().contains("ended"), "{}", e.message());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ctl_import_catalog_prints_rows_or_every_error() {
    let server = Server::start().await;
    let mut c = server.control().await;
    let room = c.create_room("From a terminal").await.room.unwrap().id;

    let bad = csv_file(&format!(
        "{HEADER}Acme,Ok,,,https://shop.example/ok,1,1,2\nAcme,Bad,,,https://shop.example/b,1,abc,2\n"
    ));
    let path = bad.path().to_str().unwrap();
    for args in [
        vec!["import-catalog", room.as_str(), path, "--dry-run"],
        vec!["import-catalog", room.as_str(), path],
    ] {
        let run = ctl_run(&server, &args).await;
        assert_eq!(run.code, Some(1), "{}", run.stdout);
        assert!(
            run.stderr
                .contains("line 3: price_gold: \"abc\" is not a price"),
            "{}",
            run.stderr
        );
        assert!(
            run.stderr.contains("nothing was imported"),
            "{}",
            run.stderr
        );
        assert!(products(&mut c, &room).await.is_empty());
    }
    let run = ctl_run(&server, &["--json", "import-catalog", &room, path]).await;
    assert_eq!(run.code, Some(1));
    let json: Value = serde_json::from_str(&run.stdout).unwrap();
    assert_eq!(json["errors"][0]["line"], 3);
    assert_eq!(json["errors"][0]["field"], "price_gold");

    let good = csv_file(&good_csv());
    let path = good.path().to_str().unwrap();
    let dry = ctl_run(&server, &["import-catalog", &room, path, "--dry-run"]).await;
    assert_eq!(dry.code, Some(0), "{}", dry.stderr);
    assert!(
        dry.stdout.contains("would add brand -  \"Acme\""),
        "{}",
        dry.stdout
    );
    assert!(
        dry.stdout.contains(
            "3 product(s) would be imported (dry run: nothing written): 3 new, 0 updated; 2 new brand(s)"
        ),
        "{}",
        dry.stdout
    );
    assert!(products(&mut c, &room).await.is_empty());

    let run = ctl_run(&server, &["import-catalog", &room, path]).await;
    assert_eq!(run.code, Some(0), "{}", run.stderr);
    assert!(
        run.stdout
            .contains("line 2  p3  brand \"Acme\"  \"Down jacket\"  moq 10  images 2  prices(cents) gold=25900 silver=27990"),
        "{}",
        run.stdout
    );
    assert!(run
        .stdout
        .contains("3 product(s) imported: 3 new, 0 updated; 2 new brand(s)"));

    let run = ctl_run(&server, &["--json", "import-catalog", &room, path]).await;
    assert_eq!(run.code, Some(0), "{}", run.stderr);
    let json: Value = serde_json::from_str(&run.stdout).unwrap();
    assert_eq!(json["dry_run"], false);
    assert_eq!(json["new_brands"], Value::Array(vec![]));
    assert_eq!(json["products"][0]["existing"], true);
    assert_eq!(
        json["products"][0]["product"]["prices"][0]["price_cents"],
        "25900"
    );
    assert_eq!(products(&mut c, &room).await.len(), 3);
}
