//! The soak's host, on the gRPC control plane: sets the show up (brands, products, tiers) and
//! then keeps it moving — a brand switch and a flash sale of the brand on air every so often —
//! riding out the server's restarts (a call that fails is tried again on the next turn).

use super::{Phase, Soak};
use crate::room::Room;
use crate::{Control, Target};
use showfloor::pb;
use tokio::sync::watch;

/// Products per brand.
const PRODUCTS: usize = 2;
/// Events the room keeps for resume: enough that no reconnect within a server's life falls
/// out of the window.
const HISTORY_WINDOW: u32 = 100_000;

/// The show: its room, and each brand's products (the brands in `room.brands` order).
pub(super) struct Show {
    pub room: Room,
    pub products: Vec<Vec<String>>,
}

/// Creates the room: `brands` brands with two products each (gold and silver prices), the
/// first on air, the room live.
pub(super) async fn set_up(c: &mut Control, o: &Soak) -> anyhow::Result<Show> {
    let created = c
        .client
        .create_room(c.req(pb::CreateRoomRequest {
            title: "Load test: soak".into(),
            tiers: vec!["gold".into(), "silver".into()],
            chat_rate_limit: Some(pb::ChatRateLimit {
                messages: 10,
                per_seconds: 10,
            }),
            history_window: HISTORY_WINDOW,
            ..Default::default()
        }))
        .await?
        .into_inner();
    let room_id = created
        .room
        .ok_or_else(|| anyhow::anyhow!("CreateRoom returned no room"))?
        .id;
    let (mut brands, mut products) = (Vec::new(), Vec::new());
    for b in 0..o.brands {
        let brand = c
            .client
            .add_brand(c.req(pb::AddBrandRequest {
                room_id: room_id.clone(),
                name: format!("Soak brand {}", b + 1),
                ..Default::default()
            }))
            .await?
            .into_inner()
            .id;
        let mut ids = Vec::new();
        for p in 0..PRODUCTS {
            let product = c
                .client
                .upsert_product(c.req(pb::UpsertProductRequest {
                    room_id: room_id.clone(),
                    brand_id: brand.clone(),
                    name: format!("Soak product {}.{}", b + 1, p + 1),
                    link: format!("https://shop.example/soak/{b}/{p}"),
                    min_order_quantity: 1,
                    prices: vec![
                        pb::TierPrice {
                            tier: "gold".into(),
                            price_cents: 10_000 + 100 * p as i64,
                        },
                        pb::TierPrice {
                            tier: "silver".into(),
                            price_cents: 11_000 + 100 * p as i64,
                        },
                    ],
                    ..Default::default()
                }))
                .await?
                .into_inner()
                .id;
            ids.push(product);
        }
        brands.push(brand);
        products.push(ids);
    }
    c.client
        .switch_brand(c.req(pb::BrandRef {
            room_id: room_id.clone(),
            brand_id: brands[0].clone(),
        }))
        .await?;
    c.client
        .open_room(c.req(pb::RoomRef {
            room_id: room_id.clone(),
        }))
        .await?;
    Ok(Show {
        room: Room {
            id: room_id,
            key: created.token_key,
            product: products[0][0].clone(),
            brands,
        },
        products,
    })
}

/// What the host did.
#[derive(Debug, Default)]
pub(super) struct HostReport {
    pub switches: u64,
    pub sales: Vec<String>,
    /// Calls that failed (mostly while the server was down), tried again later.
    pub failed_calls: u64,
}

/// Switches brands and opens flash sales until the run drains.
pub(super) async fn host(
    target: Target,
    show: &Show,
    o: &Soak,
    mut phase: watch::Receiver<Phase>,
) -> HostReport {
    let mut r = HostReport::default();
    let mut control: Option<Control> = None;
    let mut on_air = 0usize;
    let mut switch = tokio::time::interval(o.switch_every);
    let mut sale = tokio::time::interval(o.sale_every);
    switch.reset();
    switch.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    sale.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        enum Turn {
            Switch,
            Sale,
        }
        let turn = tokio::select! {
            _ = switch.tick() => Turn::Switch,
            _ = sale.tick() => Turn::Sale,
            changed = phase.changed() => {
                if changed.is_err() || *phase.borrow() != Phase::Run {
                    return r;
                }
                continue;
            }
        };
        if control.is_none() {
            control = target.control().await.ok();
        }
        let Some(c) = control.as_mut() else {
            r.failed_calls += 1;
            continue;
        };
        let done = match turn {
            Turn::Switch => {
                let next = (on_air + 1) % show.room.brands.len();
                let req = c.req(pb::BrandRef {
                    room_id: show.room.id.clone(),
                    brand_id: show.room.brands[next].clone(),
                });
                let ok = c.client.switch_brand(req).await.is_ok();
                if ok {
                    on_air = next;
                    r.switches += 1;
                }
                ok
            }
            Turn::Sale => {
                let req = c.req(pb::CreateFlashSaleRequest {
                    room_id: show.room.id.clone(),
                    product_id: show.products[on_air][0].clone(),
                    stock: o.sale_stock,
                    per_dealer_limit: 1,
                    prices: vec![
                        pb::TierPrice {
                            tier: "gold".into(),
                            price_cents: 5_000,
                        },
                        pb::TierPrice {
                            tier: "silver".into(),
                            price_cents: 5_500,
                        },
                    ],
                    start_ms: 0,
                    duration_seconds: o.sale_secs,
                    tiers: Vec::new(),
                });
                match c.client.create_flash_sale(req).await {
                    Ok(s) => {
                        r.sales.push(s.into_inner().id);
                        true
                    }
                    Err(_) => false,
                }
            }
        };
        if !done {
            // The channel may point at a killed process: a fresh one next turn.
            r.failed_calls += 1;
            control = None;
        }
    }
}
