//! The `flash-sale` scenario: verified dealers grab at the same instant; no oversell, nobody
//! above the limit, every win with its order, and grabs idempotent by key.

use crate::room::{join, live_room};
use crate::{expect, histogram, Clock, Latency, Report, Target};
use futures_util::{SinkExt, StreamExt};
use showfloor::pb;
use std::time::Duration;
use tokio_tungstenite::tungstenite::Message;

/// `flash-sale`: `dealers` verified dealers wait for the sale to start, then each sends
/// `attempts` grabs with distinct keys, plus its first key again, at the same instant.
#[derive(Debug, Clone)]
pub struct FlashSale {
    pub dealers: usize,
    pub stock: u32,
    pub limit: u32,
    pub attempts: u32,
}

pub async fn flash_sale(
    target: &Target,
    o: &FlashSale,
    show_progress: bool,
) -> anyhow::Result<Report> {
    anyhow::ensure!(o.dealers >= 1, "--dealers must be at least 1");
    anyhow::ensure!(o.stock >= 1, "--stock must be at least 1");
    anyhow::ensure!(o.limit >= 1, "--limit must be at least 1");
    anyhow::ensure!(
        (1..=100).contains(&o.attempts),
        "--attempts must be 1 to 100"
    );
    let mut c = target.control().await?;
    let room = live_room(&mut c, "Load test: flash sale", 1, 1).await?;
    let result = async {
        let conns = join(
            target,
            &room,
            o.dealers,
            "dealer-",
            Some("gold"),
            show_progress,
        )
        .await?;
        let start_ms = showfloor::model::now_ms() + 1500;
        let sale = c
            .client
            .create_flash_sale(c.req(pb::CreateFlashSaleRequest {
                room_id: room.id.clone(),
                product_id: room.product.clone(),
                stock: o.stock,
                per_dealer_limit: o.limit,
                prices: vec![pb::TierPrice {
                    tier: "gold".into(),
                    price_cents: 5_000,
                }],
                start_ms,
                duration_seconds: 600,
                tiers: vec!["gold".into()],
            }))
            .await?
            .into_inner();
        let clock = Clock::new();
        let mut tasks = Vec::new();
        for (ws, _) in conns {
            let sale_id = sale.id.clone();
            let attempts = o.attempts;
            tasks.push(tokio::spawn(async move {
                let (mut tx, mut rx) = ws.split();
                expect(&mut rx, "sale_started", Duration::from_secs(30)).await?;
                let mut sent = Vec::new();
                for k in 0..attempts {
                    sent.push((format!("k{k}"), clock.now_us()));
                }
                sent.push(("k0".to_string(), clock.now_us()));
                for (key, _) in &sent {
                    let m = serde_json::json!({"type": "grab", "sale_id": sale_id, "key": key});
                    tx.feed(Message::text(m.to_string())).await?;
                }
                tx.flush().await?;
                let mut answers = Vec::new();
                while answers.len() < sent.len() {
                    let frame = expect(&mut rx, "grab_result", Duration::from_secs(60)).await?;
                    let v: serde_json::Value = serde_json::from_str(&frame)?;
                    let at = clock.now_us();
                    let key = v["key"].as_str().unwrap_or_default().to_string();
                    answers.push((
                        key,
                        v["result"].as_str().unwrap_or_default().to_string(),
                        v["order_id"].as_str().map(str::to_string),
                        at,
                    ));
                }
                let _ = tx.close().await;
                anyhow::Ok((sent, answers))
            }));
        }
        let mut h = histogram();
        let (mut won_orders, mut over_limit, mut key_mismatch, mut answered) =
            (Vec::new(), 0, 0, 0u64);
        let (mut first_sent, mut last_answer) = (u64::MAX, 0u64);
        for (i, t) in tasks.into_iter().enumerate() {
            let (sent, answers) = t.await?.map_err(|e| anyhow::anyhow!("dealer {i}: {e}"))?;
            // Answers come in the order the grabs were sent (one connection, one room); the
            // last one answers the repeated first key and is not a grab of its own.
            let mut wins = 0;
            for (n, ((key, at_sent), (akey, result, order, at))) in
                sent.iter().zip(&answers).enumerate()
            {
                first_sent = first_sent.min(*at_sent);
                last_answer = last_answer.max(*at);
                let _ = h.record(at.saturating_sub(*at_sent).max(1));
                answered += 1;
                if key != akey {
                    key_mismatch += 1;
                }
                if result == "won" && n + 1 < sent.len() {
                    wins += 1;
                    won_orders.extend(order.clone());
                }
            }
            // The repeated first key must get the first answer again.
            let first = answers.first().map(|a| (&a.1, &a.2));
            let repeat = answers.last().map(|a| (&a.1, &a.2));
            if first != repeat {
                key_mismatch += 1;
            }
            if wins > o.limit {
                over_limit += 1;
            }
        }
        let secs = (last_answer.saturating_sub(first_sent)) as f64 / 1e6;
        let winners = won_orders.len() as u64;
        let orders = c
            .client
            .list_orders(c.req(pb::ListOrdersRequest {
                room_id: room.id.clone(),
                sale_id: sale.id.clone(),
                limit: 1,
                ..Default::default()
            }))
            .await?
            .into_inner();
        let after = c
            .client
            .get_flash_sale(c.req(pb::FlashSaleRef {
                room_id: room.id.clone(),
                sale_id: sale.id.clone(),
            }))
            .await?
            .into_inner();
        let mut unique = won_orders.clone();
        unique.sort();
        unique.dedup();
        let demand = o.dealers as u64 * u64::from(o.limit.min(o.attempts));
        let expected_winners = demand.min(u64::from(o.stock));
        let mut r = Report::new("flash-sale");
        r.number("dealers", o.dealers);
        r.number("stock", o.stock);
        r.number("per_dealer_limit", o.limit);
        r.number("grab_answers", answered);
        r.number(
            "grab_answers_per_s",
            (answered as f64 / secs.max(1e-6)).round() as u64,
        );
        r.number("won", winners);
        r.latency = Some(Latency::of(&h));
        r.check(
            "no oversell",
            winners <= u64::from(o.stock) && after.granted as u64 == winners,
            format!(
                "{winners} won of stock {}; the sale says {} granted",
                o.stock, after.granted
            ),
        );
        r.check(
            "stock accounted",
            after.granted + after.remaining == o.stock,
            format!(
                "granted {} + remaining {} = stock {}",
                after.granted, after.remaining, o.stock
            ),
        );
        r.check(
            "sold what was asked",
            winners == expected_winners,
            format!(
                "{winners} winners, expected min(demand {demand}, stock {})",
                o.stock
            ),
        );
        r.check(
            "limit per dealer",
            over_limit == 0,
            format!("{over_limit} dealers above the limit of {}", o.limit),
        );
        r.check(
            "every win has its order",
            unique.len() as u64 == winners && u64::from(orders.total_count) == winners,
            format!(
                "{} distinct order ids for {winners} wins; ListOrders counts {}",
                unique.len(),
                orders.total_count
            ),
        );
        r.check(
            "idempotent keys",
            key_mismatch == 0,
            format!(
                "{key_mismatch} answers for the wrong key or a repeated key answered differently"
            ),
        );
        anyhow::Ok(r)
    }
    .await;
    c.close_room(&room.id).await;
    result
}
