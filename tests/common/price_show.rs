//! The price-leak show: a scripted show (switches, a pin, a product updated on the shelf, a
//! viewer verified then revoked) watched by a public viewer, a gold and a silver dealer and a
//! viewer whose role changes, each on the server given. A public viewer never receives a price
//! or a product link; dealers see their own tier's prices; the role change applies on the open
//! connection. Used on one node (`dealer_prices.rs`) and across nodes (`cluster_three_nodes.rs`).

use super::*;
use showfloor::pb;

/// Every number anywhere in a JSON value.
fn numbers(v: &serde_json::Value, out: &mut Vec<i64>) {
    match v {
        serde_json::Value::Number(n) => out.extend(n.as_i64()),
        serde_json::Value::Array(a) => a.iter().for_each(|x| numbers(x, out)),
        serde_json::Value::Object(o) => o.values().for_each(|x| numbers(x, out)),
        _ => {}
    }
}

/// A public frame must not carry a price field, a link, or any price value.
fn assert_public_clean(show: &Show, extra_prices: &[i64], frame: &str) {
    assert_no_price_or_link(frame);
    let mut prices: Vec<i64> = show
        .products
        .iter()
        .flat_map(|p| p.prices.iter().map(|t| t.price_cents))
        .collect();
    prices.extend_from_slice(extra_prices);
    let mut nums = Vec::new();
    numbers(&serde_json::from_str(frame).unwrap(), &mut nums);
    for n in nums {
        assert!(
            !prices.contains(&n),
            "public frame carries a price value {n}: {frame}"
        );
    }
}

/// The viewers' frames after the show, for more checks: public, gold, silver, other.
pub struct Watched {
    pub public: Viewer,
    pub gold: Viewer,
    pub silver: Viewer,
    pub other: Viewer,
}

/// Runs the show with commands from `c` and the viewers on `at` (public, gold, silver, other).
pub async fn run(c: &mut Control, show: &Show, at: [&Server; 4]) -> Watched {
    let room = show.room.clone();

    let t_pub = c.token(&room, "public-1").await;
    let t_gold = c.token(&room, "gold-1").await;
    let t_silver = c.token(&room, "silver-1").await;
    let t_other = c.token(&room, "other-1").await;
    c.verify(&room, "gold-1", "gold").await;
    c.verify(&room, "silver-1", "silver").await;

    let [at_public, at_gold, at_silver, at_other] = at;
    let mut public = at_public.viewer(&room, &t_pub).await;
    let mut gold = at_gold.viewer(&room, &t_gold).await;
    let mut silver = at_silver.viewer(&room, &t_silver).await;
    let mut other = at_other.viewer(&room, &t_other).await;

    let w = public.expect("welcome").await;
    assert_eq!(w["you"]["role"], "viewer");
    assert_eq!(w["shelf"].as_array().unwrap().len(), 2);
    assert!(w["shelf"][0].get("price_cents").is_none());
    assert!(w["shelf"][0].get("link").is_none());

    let w = gold.expect("welcome").await;
    assert_eq!(w["you"]["tier"], "gold");
    assert_eq!(w["shelf"][0]["price_cents"], 11_100);
    assert_eq!(
        w["shelf"][0]["link"],
        "https://shop.example/secret/alpha-jacket"
    );
    let w = silver.expect("welcome").await;
    assert_eq!(w["shelf"][0]["price_cents"], 12_200);
    other.expect("welcome").await;

    // The script: switch, pin, update a product on the shelf, another viewer's role changes.
    c.switch(&room, &show.brand_b).await;
    let tent = &show.products[2];
    c.client
        .pin_product(authed(pb::ProductRef {
            room_id: room.clone(),
            product_id: tent.id.clone(),
        }))
        .await
        .unwrap();
    let mut upd = pb::UpsertProductRequest {
        room_id: room.clone(),
        product_id: tent.id.clone(),
        brand_id: show.brand_b.clone(),
        name: "bravo-tent-xl".into(),
        description: "bigger".into(),
        image_urls: vec![],
        link: "https://shop.example/secret/tent-xl".into(),
        min_order_quantity: 5,
        prices: vec![
            pb::TierPrice {
                tier: "gold".into(),
                price_cents: 19_900,
            },
            pb::TierPrice {
                tier: "silver".into(),
                price_cents: 20_900,
            },
        ],
    };
    c.client.upsert_product(authed(upd.clone())).await.unwrap();
    c.verify(&room, "other-1", "gold").await;
    c.client
        .revoke_dealer(authed(pb::ViewerRef {
            room_id: room.clone(),
            viewer_id: "other-1".into(),
        }))
        .await
        .unwrap();
    c.switch(&room, &show.brand_a).await;
    upd.name = "bravo-tent-off-shelf".into();
    c.client.upsert_product(authed(upd)).await.unwrap();
    c.announce(&room, "end of script").await;

    // Everyone reads up to the final announcement.
    for v in [&mut public, &mut gold, &mut silver] {
        let mut switches = 0;
        loop {
            let f = v.frame().await;
            if f["type"] == "brand_switched" {
                switches += 1;
            }
            if f["type"] == "announce" {
                break;
            }
        }
        assert_eq!(switches, 2);
    }
    // Counters (online, likes) are coalesced on their own clock; the script's events are 6.
    let scripted = public
        .frames
        .iter()
        .filter(|f| {
            !f.contains("\"type\":\"online_count\"") && !f.contains("\"type\":\"like_count\"")
        })
        .count();
    assert_eq!(scripted, 6, "{:?}", public.frames);
    for f in &public.frames {
        assert_public_clean(show, &[19_900, 20_900], f);
    }
    assert!(gold.saw_text("\"price_cents\":19900"));
    assert!(!gold.saw_text("20900"));
    assert!(silver.saw_text("\"price_cents\":20900"));
    assert!(!silver.saw_text("19900"));
    assert!(silver.saw_text("https://shop.example/secret/tent-xl"));

    // The dealer-to-be saw prices only between verify and revoke.
    let mut phase = 0;
    loop {
        let f = other.frame().await;
        let raw = other.frames.last().unwrap().clone();
        if f["type"] == "role_changed" {
            phase += 1;
            if phase == 1 {
                assert_eq!(f["you"]["tier"], "gold");
                assert_eq!(f["shelf"][0]["price_cents"], 19_900);
            } else {
                assert_eq!(f["you"]["role"], "viewer");
                assert!(!raw.contains("price"), "{raw}");
            }
            continue;
        }
        if phase != 1 {
            assert!(
                !raw.contains("price") && !raw.contains("shop.example"),
                "{raw}"
            );
        }
        if f["type"] == "announce" {
            break;
        }
    }
    assert_eq!(phase, 2);
    Watched {
        public,
        gold,
        silver,
        other,
    }
}
