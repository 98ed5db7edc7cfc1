//! The soak's host, on the gRPC control plane: sets the show up (brands, products, tiers) and
//! then keeps it moving — a brand switch and a flash sale of the brand on air every so often —
//! riding out the server's restarts (a call that fails is tried again on the next turn).

use super::{Phase, Soak};
use crate::room::{live_room_keeping, Room};
use crate::{Control, Target};
use showfloor::pb;
use tokio::sync::watch;

/// Products per brand.
const PRODUCTS: usize = 2;

/// The show: its room, and each brand's products (the brands in `room.brands` order).
pub(super) struct Show {
    pub room: Room,
    pub products: Vec<Vec<String>>,
}

/// Creates the room: `brands` brands with two products each (gold and silver prices), the
/// first on air, the room live — the scenarios' live room (whose history window outlasts any
/// reconnect within a server's life) with the other products added.
pub(super) async fn set_up(c: &mut Control, o: &Soak) -> anyhow::Result<Show> {
    // Ten chat messages a second per viewer: far above what the soak sends, so no chat of
    // it is refused.
    let room = live_room_keeping(c, "Load test: soak", 10, o.brands, o.history_window).await?;
    let mut products = Vec::new();
    for (b, brand) in room.brands.iter().enumerate() {
        let mut ids = Vec::new();
        for p in 0..PRODUCTS {
            if (b, p) == (0, 0) {
                // The live room's own product, on the first brand's shelf.
                ids.push(room.product.clone());
                continue;
            }
            let product = c
                .client
                .upsert_product(c.req(pb::UpsertProductRequest {
                    room_id: room.id.clone(),
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
        products.push(ids);
    }
    Ok(Show { room, products })
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
