//! What every scenario shares: a live room of its own, set up through the control plane, and
//! an audience joining it.

use crate::{expect, progress, token, Control, Target};
use futures_util::StreamExt;
use showfloor::pb;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::Semaphore;

/// Connections opened at once while an audience joins.
pub(crate) const JOIN_CONCURRENCY: usize = 256;
/// How long a viewer waits for its welcome.
pub(crate) const WELCOME_WITHIN: Duration = Duration::from_secs(30);

/// Creates a live room with `brands` brands (at least one), the first on air with one product
/// (gold/silver prices) on its shelf.
pub(crate) async fn live_room(
    c: &mut Control,
    title: &str,
    chat_per_second: u32,
    brands: usize,
) -> anyhow::Result<Room> {
    // Long enough that a reconnect storm resumes from history, never from a snapshot.
    live_room_keeping(c, title, chat_per_second, brands, 100_000).await
}

/// As [`live_room`], keeping `history_window` events for resume.
pub(crate) async fn live_room_keeping(
    c: &mut Control,
    title: &str,
    chat_per_second: u32,
    brands: usize,
    history_window: u32,
) -> anyhow::Result<Room> {
    let created = c
        .client
        .create_room(c.req(pb::CreateRoomRequest {
            title: title.to_string(),
            tiers: vec!["gold".into(), "silver".into()],
            chat_rate_limit: Some(pb::ChatRateLimit {
                messages: chat_per_second.clamp(1, 1000),
                per_seconds: 1,
            }),
            history_window,
            ..Default::default()
        }))
        .await?
        .into_inner();
    let room = created
        .room
        .ok_or_else(|| anyhow::anyhow!("CreateRoom returned no room"))?
        .id;
    let mut brand_ids = Vec::new();
    for i in 0..brands.max(1) {
        let brand = c
            .client
            .add_brand(c.req(pb::AddBrandRequest {
                room_id: room.clone(),
                name: format!("Load test brand {}", i + 1),
                logo_url: String::new(),
                position: None,
            }))
            .await?
            .into_inner();
        brand_ids.push(brand.id);
    }
    let product = c
        .client
        .upsert_product(c.req(pb::UpsertProductRequest {
            room_id: room.clone(),
            brand_id: brand_ids[0].clone(),
            name: "Load test jacket".into(),
            link: "https://shop.example/loadtest".into(),
            min_order_quantity: 1,
            prices: vec![
                pb::TierPrice {
                    tier: "gold".into(),
                    price_cents: 10_000,
                },
                pb::TierPrice {
                    tier: "silver".into(),
                    price_cents: 11_000,
                },
            ],
            ..Default::default()
        }))
        .await?
        .into_inner();
    let brand_ref = pb::BrandRef {
        room_id: room.clone(),
        brand_id: brand_ids[0].clone(),
    };
    c.client.switch_brand(c.req(brand_ref)).await?;
    let room_ref = pb::RoomRef {
        room_id: room.clone(),
    };
    c.client.open_room(c.req(room_ref)).await?;
    Ok(Room {
        id: room,
        key: created.token_key,
        product: product.id,
        brands: brand_ids,
    })
}

#[derive(Clone)]
pub(crate) struct Room {
    pub(crate) id: String,
    pub(crate) key: String,
    pub(crate) product: String,
    /// In running order; the first is on air.
    pub(crate) brands: Vec<String>,
}

/// Connects `n` viewers (named `{prefix}{i}`, dealers of `tier` if given) and waits for their
/// welcomes. Returns the connections, or the first failure with how many had connected.
pub(crate) async fn join(
    target: &Target,
    room: &Room,
    n: usize,
    prefix: &str,
    tier: Option<&str>,
    show_progress: bool,
) -> anyhow::Result<Vec<(crate::Ws, String)>> {
    join_with(n, show_progress, |i| {
        let (target, room_id) = (target.clone(), room.id.clone());
        let token = token(&room.id, &room.key, &format!("{prefix}{i}"), tier);
        async move {
            let ws = target.connect(i, &room_id, &token).await?;
            let (tx, mut rx) = ws.split();
            let welcome = expect(&mut rx, "welcome", WELCOME_WITHIN).await?;
            anyhow::Ok((tx.reunite(rx)?, welcome))
        }
    })
    .await
}

/// Runs `connect(i)` for every `i` below `n`, [`JOIN_CONCURRENCY`] at a time, with a progress
/// bar. Returns the results in order, or the first failure with how many had joined.
pub(crate) async fn join_with<T, F, Fut>(
    n: usize,
    show_progress: bool,
    connect: F,
) -> anyhow::Result<Vec<T>>
where
    F: Fn(usize) -> Fut,
    Fut: std::future::Future<Output = anyhow::Result<T>> + Send + 'static,
    T: Send + 'static,
{
    let bar = progress(n as u64, "joining", show_progress);
    let gate = Arc::new(Semaphore::new(JOIN_CONCURRENCY));
    let mut tasks = Vec::with_capacity(n);
    for i in 0..n {
        let (gate, bar, joined) = (gate.clone(), bar.clone(), connect(i));
        tasks.push(tokio::spawn(async move {
            let _permit = gate.acquire_owned().await?;
            let out = joined.await?;
            bar.inc(1);
            anyhow::Ok(out)
        }));
    }
    let mut out = Vec::with_capacity(n);
    for (i, t) in tasks.into_iter().enumerate() {
        match t.await? {
            Ok(x) => out.push(x),
            Err(e) => anyhow::bail!("viewer {i} could not join ({} joined): {e}", out.len()),
        }
    }
    bar.finish_and_clear();
    Ok(out)
}
