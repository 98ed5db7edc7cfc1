//! The scenarios: each sets up its own room through the control plane, drives it, checks the
//! invariants a user would notice and closes the room again.

use crate::{expect, histogram, progress, token, Clock, Control, Latency, Report, Target};
use futures_util::{SinkExt, StreamExt};
use showfloor::pb;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::Semaphore;
use tokio_tungstenite::tungstenite::Message;

/// Connections opened at once while an audience joins.
const JOIN_CONCURRENCY: usize = 256;
/// How long a viewer waits for its welcome.
const WELCOME_WITHIN: Duration = Duration::from_secs(30);

/// Creates a live room with `brands` brands (at least one), the first on air with one product
/// (gold/silver prices) on its shelf.
pub(crate) async fn live_room(
    c: &mut Control,
    title: &str,
    chat_per_second: u32,
    brands: usize,
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
            // Long enough that a reconnect storm resumes from history, never from a snapshot.
            history_window: 100_000,
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

pub(crate) struct Room {
    pub(crate) id: String,
    pub(crate) key: String,
    product: String,
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
        let start_ms = showfloor::hub::now_ms() + 1500;
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

/// `audience`: `viewers` join at `rate` per second and stay for `hold` seconds: connect
/// success, connect time (TCP + WebSocket upgrade + welcome) and the server's memory per
/// connected viewer (its `process_resident_memory_bytes` before and after).
#[derive(Debug, Clone)]
pub struct Audience {
    pub viewers: usize,
    pub rate: u32,
    pub hold_secs: u64,
    /// Join a Socket.IO server at this address instead (the peer in the benchmarks).
    pub socketio: Option<std::net::SocketAddr>,
    /// Read the server's memory from `/proc/<pid>/status` (VmRSS) rather than `/metrics`:
    /// the same measure for every server.
    pub server_pid: Option<u32>,
}

pub async fn audience(
    target: &Target,
    o: &Audience,
    show_progress: bool,
) -> anyhow::Result<Report> {
    anyhow::ensure!(o.viewers >= 1, "--viewers must be at least 1");
    anyhow::ensure!(o.rate >= 1, "--rate must be at least 1 viewer per second");
    let (mut control, room) = match o.socketio {
        Some(_) => (None, None),
        None => {
            let mut c = target.control().await?;
            let room = live_room(&mut c, "Load test: audience", 1, 1).await?;
            (Some(c), Some(room))
        }
    };
    let rss = |target: Target| async move {
        match o.server_pid {
            Some(pid) => proc_resident_bytes(pid),
            None if o.socketio.is_none() => resident_bytes(&target).await,
            None => None,
        }
    };
    let result = async {
        let rss_before = rss(target.clone()).await;
        let clock = Clock::new();
        let bar = progress(o.viewers as u64, "joining", show_progress);
        let gate = Arc::new(Semaphore::new(JOIN_CONCURRENCY));
        let period = Duration::from_secs_f64(1.0 / f64::from(o.rate));
        let mut tick = tokio::time::interval(period);
        let mut tasks = Vec::with_capacity(o.viewers);
        for i in 0..o.viewers {
            tick.tick().await;
            let permit = gate.clone().acquire_owned().await?;
            let (target, bar) = (target.clone(), bar.clone());
            let showfloor = room
                .as_ref()
                .map(|r| (r.id.clone(), token(&r.id, &r.key, &format!("watcher-{i}"), None)));
            let socketio = o.socketio;
            tasks.push(tokio::spawn(async move {
                let t0 = clock.now_us();
                let joined = async {
                    if let Some(addr) = socketio {
                        let ws = crate::socketio::connect(addr, i, WELCOME_WITHIN).await?;
                        return anyhow::Ok(ws.split());
                    }
                    let (room_id, token) = showfloor.expect("a Showfloor room");
                    let ws = target.connect(i, &room_id, &token).await?;
                    let (tx, mut rx) = ws.split();
                    expect(&mut rx, "welcome", WELCOME_WITHIN).await?;
                    anyhow::Ok((tx, rx))
                }
                .await;
                drop(permit);
                bar.inc(1);
                joined.map(|ws| (ws, clock.now_us() - t0))
            }));
        }
        let mut h = histogram();
        let mut conns = Vec::new();
        let mut failures = Vec::new();
        for t in tasks {
            match t.await? {
                Ok((ws, us)) => {
                    let _ = h.record(us.max(1));
                    conns.push(ws);
                }
                Err(e) => failures.push(e.to_string()),
            }
        }
        bar.finish_and_clear();
        let connected = conns.len();
        tokio::time::sleep(Duration::from_secs(1)).await;
        let rss_after = rss(target.clone()).await;
        // Hold: every connection must stay up (the server's heartbeats are answered by the
        // reads below; Socket.IO's pings by a pong).
        let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
        let disconnects = Arc::new(AtomicU64::new(0));
        let mut readers = Vec::new();
        for (mut tx, mut rx) in conns {
            let mut stop = stop_rx.clone();
            let disconnects = disconnects.clone();
            readers.push(tokio::spawn(async move {
                loop {
                    let m = tokio::select! {
                        m = rx.next() => m,
                        _ = stop.wait_for(|s| *s) => break,
                    };
                    let ping = matches!(&m, Some(Ok(Message::Text(t))) if t.as_str() == crate::socketio::PING);
                    if ping && tx.send(Message::text(crate::socketio::PONG)).await.is_err() {
                        disconnects.fetch_add(1, Ordering::Relaxed);
                        break;
                    }
                    if !matches!(m, Some(Ok(_))) {
                        disconnects.fetch_add(1, Ordering::Relaxed);
                        break;
                    }
                }
                drop(tx);
            }));
        }
        tokio::time::sleep(Duration::from_secs(o.hold_secs)).await;
        let _ = stop_tx.send(true);
        for r in readers {
            r.await?;
        }
        let disconnects = disconnects.load(Ordering::Relaxed);
        let mut r = Report::new("audience");
        r.number(
            "server",
            if o.socketio.is_some() {
                "socket.io"
            } else {
                "showfloor"
            },
        );
        r.number("viewers", o.viewers);
        r.number("connected", connected);
        r.number("failed", failures.len());
        r.number("join_rate_per_s", o.rate);
        if let (Some(before), Some(after)) = (rss_before, rss_after) {
            r.number("server_rss_before_mb", before / 1_048_576);
            r.number("server_rss_after_mb", after / 1_048_576);
            if connected > 0 {
                let per = after.saturating_sub(before) as f64 / connected as f64;
                r.number("server_kb_per_viewer", (per / 1024.0 * 10.0).round() / 10.0);
            }
        } else {
            r.number(
                "server_kb_per_viewer",
                "unknown (give --server-pid, or a server with process_resident_memory_bytes on /metrics)",
            );
        }
        r.latency = Some(Latency::of(&h));
        let need = (o.viewers as f64 * 0.999).ceil() as usize;
        r.check(
            "connected",
            connected >= need,
            format!(
                "{connected} of {} (need 99.9 %){}",
                o.viewers,
                failures
                    .first()
                    .map(|e| format!("; first failure: {e}"))
                    .unwrap_or_default()
            ),
        );
        r.check(
            "no disconnects",
            disconnects == 0,
            format!(
                "{disconnects} connections dropped during the {} s hold",
                o.hold_secs
            ),
        );
        anyhow::Ok(r)
    }
    .await;
    if let (Some(c), Some(room)) = (control.as_mut(), room.as_ref()) {
        c.close_room(&room.id).await;
    }
    result
}

/// A process's resident memory from `/proc/<pid>/status`.
fn proc_resident_bytes(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let kb: u64 = status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))?
        .trim()
        .trim_end_matches("kB")
        .trim()
        .parse()
        .ok()?;
    Some(kb * 1024)
}

/// The server's `process_resident_memory_bytes` from `/metrics`.
async fn resident_bytes(target: &Target) -> Option<u64> {
    crate::metric(target, "process_resident_memory_bytes")
        .await
        .map(|v| v as u64)
}

/// `reconnect-storm`: `viewers` connected while the host announces `events_per_s` events
/// for `seconds`; a third of the way in, `drop_percent` of them lose their connection at once,
/// stay away for `away` (events keep coming) and reconnect together with resume (`last_seq`,
/// `epoch`). Every viewer must end up with every announcement, and every reconnect must
/// resume from history.
#[derive(Debug, Clone)]
pub struct ReconnectStorm {
    pub viewers: usize,
    pub drop_percent: u32,
    pub events_per_s: u32,
    pub seconds: u64,
    /// How long the dropped viewers stay away.
    pub away: Duration,
    /// The storm passes when every dropped viewer has resumed within this of coming back.
    pub recover_within: Duration,
}

/// What a viewer has seen: where to resume from, and which announcements arrived.
#[derive(Default)]
struct Seen {
    epoch: String,
    last_seq: u64,
    announcements: std::collections::HashSet<u64>,
}

impl Seen {
    fn take(&mut self, frame: &str) {
        let Ok(v) = serde_json::from_str::<serde_json::Value>(frame) else {
            return;
        };
        if let Some(seq) = v["seq"].as_u64() {
            self.last_seq = self.last_seq.max(seq);
        }
        if let Some(e) = v["epoch"].as_str() {
            self.epoch = e.to_string();
        }
        if v["type"] == "announce" {
            if let Some(k) = v["text"].as_str().and_then(|t| t.strip_prefix("lt-ann-")) {
                if let Ok(k) = k.parse() {
                    self.announcements.insert(k);
                }
            }
        }
    }
}

/// Each lock is a few field updates, never held across an `.await`.
type Shared = Arc<std::sync::Mutex<Seen>>;

fn lock(s: &Shared) -> std::sync::MutexGuard<'_, Seen> {
    s.lock().unwrap_or_else(|p| p.into_inner())
}

/// Reads a viewer's frames into its `Seen` until the connection ends, and counts the ends it
/// did not cause itself (the harness aborts the task when it drops a connection on purpose).
fn spawn_reader(
    mut rx: crate::WsRx,
    seen: Shared,
    lost: Arc<AtomicU64>,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        while let Some(m) = rx.next().await {
            match m {
                Ok(Message::Text(t)) => lock(&seen).take(t.as_str()),
                Ok(_) => {}
                Err(_) => break,
            }
        }
        lost.fetch_add(1, Ordering::Relaxed);
    })
}

pub async fn reconnect_storm(
    target: &Target,
    o: &ReconnectStorm,
    show_progress: bool,
) -> anyhow::Result<Report> {
    anyhow::ensure!(o.viewers >= 1, "--viewers must be at least 1");
    anyhow::ensure!(
        (1..=100).contains(&o.drop_percent),
        "--drop-percent must be 1 to 100"
    );
    anyhow::ensure!(
        (1..=1000).contains(&o.events_per_s),
        "--events-per-s must be 1 to 1000"
    );
    anyhow::ensure!(o.seconds >= 3, "--seconds must be at least 3");
    let mut c = target.control().await?;
    let room = live_room(&mut c, "Load test: reconnect storm", 1, 1).await?;
    let result = async {
        let conns = join(target, &room, o.viewers, "resumer-", None, show_progress).await?;
        let lost = Arc::new(AtomicU64::new(0));
        let mut viewers = Vec::with_capacity(conns.len());
        for (ws, welcome) in conns {
            let seen: Shared = Arc::default();
            lock(&seen).take(&welcome);
            let (tx, rx) = ws.split();
            let reader = spawn_reader(rx, seen.clone(), lost.clone());
            viewers.push((seen, Some(tx), reader));
        }
        // The host announces a numbered event every 1/events_per_s seconds.
        let total = o.events_per_s as u64 * o.seconds;
        let mut host = target.control().await?;
        let room_id = room.id.clone();
        let period = Duration::from_secs_f64(1.0 / f64::from(o.events_per_s));
        let announcer = tokio::spawn(async move {
            let mut tick = tokio::time::interval(period);
            for k in 0..total {
                tick.tick().await;
                let req = host.req(pb::AnnounceRequest {
                    room_id: room_id.clone(),
                    text: format!("lt-ann-{k}"),
                });
                host.client.announce(req).await?;
            }
            anyhow::Ok(())
        });
        tokio::time::sleep(Duration::from_secs(o.seconds) / 3).await;

        // The storm: connections dropped at once, without a close handshake.
        let dropped = (o.viewers * o.drop_percent as usize).div_ceil(100);
        for (_, tx, reader) in viewers.iter_mut().take(dropped) {
            reader.abort();
            tx.take();
        }
        tokio::time::sleep(o.away).await;
        let clock = Clock::new();
        let bar = progress(dropped as u64, "resuming", show_progress);
        let gate = Arc::new(Semaphore::new(JOIN_CONCURRENCY));
        let mut back = Vec::with_capacity(dropped);
        for (i, (seen, _, _)) in viewers.iter().enumerate().take(dropped) {
            let (last_seq, epoch) = {
                let s = lock(seen);
                (s.last_seq, s.epoch.clone())
            };
            let token = token(&room.id, &room.key, &format!("resumer-{i}"), None);
            let (target, room_id, gate, bar) =
                (target.clone(), room.id.clone(), gate.clone(), bar.clone());
            back.push(tokio::spawn(async move {
                let _permit = gate.acquire_owned().await?;
                let resume = Some((last_seq, epoch.as_str()));
                let ws = target.connect_resuming(i, &room_id, &token, resume).await?;
                let (tx, mut rx) = ws.split();
                let welcome = expect(&mut rx, "welcome", WELCOME_WITHIN).await?;
                let at = clock.now_us();
                bar.inc(1);
                anyhow::Ok((tx, rx, welcome, at))
            }));
        }
        let (mut resumed, mut fresh, mut failed, mut recovered_us) = (0u64, 0u64, 0u64, 0u64);
        let mut replayed = 0u64;
        let mut h = histogram();
        for (i, t) in back.into_iter().enumerate() {
            match t.await? {
                Ok((tx, rx, welcome, at)) => {
                    let v: serde_json::Value = serde_json::from_str(&welcome)?;
                    if v["resumed"] == true {
                        resumed += 1;
                        replayed += v["replayed"].as_u64().unwrap_or(0);
                    } else {
                        fresh += 1;
                    }
                    recovered_us = recovered_us.max(at);
                    let _ = h.record(at.max(1));
                    let seen = viewers[i].0.clone();
                    lock(&seen).take(&welcome);
                    viewers[i].2 = spawn_reader(rx, seen, lost.clone());
                    viewers[i].1 = Some(tx);
                }
                Err(_) => failed += 1,
            }
        }
        bar.finish_and_clear();
        announcer.await??;
        // Let the last announcements arrive (at most 10 s).
        for _ in 0..40 {
            let complete = viewers
                .iter()
                .all(|(s, _, _)| lock(s).announcements.len() as u64 >= total);
            if complete {
                break;
            }
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
        let missed: u64 = viewers
            .iter()
            .map(|(s, _, _)| total - (lock(s).announcements.len() as u64).min(total))
            .sum();
        let lost = lost.load(Ordering::Relaxed);
        for (_, tx, reader) in &mut viewers {
            reader.abort();
            tx.take();
        }
        let recover = Duration::from_micros(recovered_us);
        let mut r = Report::new("reconnect-storm");
        r.number("viewers", o.viewers);
        r.number("dropped", dropped);
        r.number("resumed", resumed);
        r.number("events", total);
        r.number("away_ms", o.away.as_millis() as u64);
        r.number("replayed_events", replayed);
        r.number("recovered_in_ms", recover.as_millis() as u64);
        r.latency = Some(Latency::of(&h));
        r.check(
            "everyone back",
            failed == 0 && resumed + fresh == dropped as u64,
            format!(
                "{} of {dropped} reconnected ({failed} failed)",
                resumed + fresh
            ),
        );
        r.check(
            "resumed from history",
            fresh == 0,
            format!("{fresh} reconnects got a fresh snapshot instead of the missed events"),
        );
        r.check(
            "no missed events",
            missed == 0,
            format!(
                "{missed} announcements missing across {} viewers × {total}",
                o.viewers
            ),
        );
        r.check(
            "recovered in time",
            recover <= o.recover_within,
            format!(
                "all {dropped} back {} ms after they reconnected (limit {} ms)",
                recover.as_millis(),
                o.recover_within.as_millis()
            ),
        );
        r.check(
            "no other disconnects",
            lost == 0,
            format!("{lost} connections ended that the harness did not drop"),
        );
        anyhow::Ok(r)
    }
    .await;
    c.close_room(&room.id).await;
    result
}
