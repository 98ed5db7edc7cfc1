//! A cluster of two server processes (`serve --nats --postgres --node-id`) on a real
//! nats-server and PostgreSQL: `kill -9` of the room's owner in the middle of a flash-sale
//! burst. The other node takes the room once the lease expires; every acknowledged grab is
//! stored, a retried key gets the same answer, and the stock is sold exactly once.

mod common;

use common::nats::NatsServer;
use common::*;
use serde_json::json;
use showfloor::model::LoadedRoom;
use showfloor::pb;
use showfloor::store::postgres::{scratch, PgStore, PgTarget};
use showfloor::store::Store;
use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

const TTL_SECS: u64 = 2;

type Node = Served;

async fn spawn_node(nats: &str, postgres: &str, id: &str) -> Node {
    common::process::cluster_node(nats, postgres, id, TTL_SECS, &[]).await
}

/// Two nodes on a nats-server and a PostgreSQL database of their own, and a show created on
/// node A (so A owns it) with a flash sale of `stock` units, `limit` per dealer.
struct Cluster {
    nats: NatsServer,
    pg_url: String,
    a: Node,
    b: Node,
    show: Show,
    sale: pb::FlashSale,
}

async fn two_nodes_with_a_sale(stock: u32, limit: u32) -> Cluster {
    raise_fd_limit();
    let nats = NatsServer::start().await;
    let pg_url = scratch::fresh_database_url();
    let a = spawn_node(&nats.url(), &pg_url, "node-a").await;
    let b = spawn_node(&nats.url(), &pg_url, "node-b").await;
    let mut c = Control::at(a.grpc).await;
    let show = setup_show(&mut c).await;
    let sale = c
        .flash_sale(&show.room, &show.products[0].id, stock, limit, 600)
        .await;
    Cluster {
        nats,
        pg_url,
        a,
        b,
        show,
        sale,
    }
}

/// Three nodes: A owns the room (with a sale of 10, 1 per dealer), B, and C.
async fn three_nodes() -> (Cluster, Node) {
    let cluster = two_nodes_with_a_sale(10, 1).await;
    let c = spawn_node(&cluster.nats.url(), &cluster.pg_url, "node-c").await;
    (cluster, c)
}

/// Kills `nodes`, then reads `room` from the store they shared.
async fn stop_and_load(nodes: &mut [&mut Node], pg_url: &str, room: &str) -> LoadedRoom {
    for node in nodes.iter_mut() {
        node.child.kill().unwrap();
        node.child.wait().unwrap();
    }
    let store = PgStore::open(&PgTarget::parse(pg_url).unwrap())
        .await
        .unwrap();
    store
        .load_room(room)
        .await
        .unwrap()
        .expect("the room is stored")
}

/// Grabs with `key` on a node: the answer, or `None` if the node refused the session.
async fn grab(
    http: u16,
    room: &str,
    token: &str,
    sale: &str,
    key: &str,
) -> Option<(String, String)> {
    let Ok(mut v) = try_connect(&format!("127.0.0.1:{http}"), room, token).await else {
        return None;
    };
    match v.next().await {
        Next::Frame(f) if f["type"] == "welcome" => {}
        _ => return None,
    }
    v.send(json!({"type": "grab", "sale_id": sale, "key": key}))
        .await;
    loop {
        match v.next().await {
            Next::Frame(f) if f["type"] == "grab_result" => {
                return Some((
                    f["result"].as_str().unwrap().to_string(),
                    f["order_id"].as_str().unwrap_or("").to_string(),
                ))
            }
            Next::Frame(_) => continue,
            Next::Closed(_) => return None,
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_9_of_the_owner_mid_burst_loses_no_acknowledged_grab_and_never_oversells() {
    let stock = 120;
    let Cluster {
        nats: _nats,
        pg_url,
        mut a,
        mut b,
        show,
        sale,
    } = two_nodes_with_a_sale(stock, 4).await;

    // 60 dealers grab on A, each up to four times (keys k0..k3, limit 4); A is killed once
    // 40 wins are acknowledged, with grabs still in flight.
    let acked = Arc::new(parking_lot::Mutex::new(
        HashMap::<(String, String), String>::new(),
    ));
    let mut tasks = tokio::task::JoinSet::new();
    for i in 0..60 {
        let (room, key, sale_id, mine) = (
            show.room.clone(),
            show.key.clone(),
            sale.id.clone(),
            acked.clone(),
        );
        let port = a.http;
        tasks.spawn(async move {
            let dealer = format!("d{i}");
            let token = dealer_token(&room, &key, &dealer, "gold");
            for k in 0..4 {
                let key = format!("k{k}");
                match grab(port, &room, &token, &sale_id, &key).await {
                    Some((result, order)) if result == "won" => {
                        mine.lock().insert((dealer.clone(), key), order);
                    }
                    Some(_) => {}
                    None => return,
                }
            }
        });
    }
    let deadline = Instant::now() + WAIT;
    while acked.lock().len() < 40 && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    a.child.kill().unwrap();
    a.child.wait().unwrap();
    while tasks.join_next().await.is_some() {}
    let acked = acked.lock().clone();
    assert!(
        acked.len() >= 30,
        "{} wins acknowledged before the kill",
        acked.len()
    );
    let killed = Instant::now();

    // B takes the room over once A's lease expires; every dealer asks again on B with the
    // same keys: wins acknowledged on A come back as the same orders, the rest of the stock is
    // sold on B, and not one unit more.
    let first_token = dealer_token(&show.room, &show.key, "d0", "gold");
    let took_over = loop {
        if let Some(answer) = grab(b.http, &show.room, &first_token, &sale.id, "k0").await {
            break answer;
        }
        assert!(killed.elapsed() < WAIT, "B never took the room over");
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    eprintln!(
        "failover: first grab served by node-b {:?} after the kill (lease TTL {TTL_SECS}s)",
        killed.elapsed()
    );
    let mut answers = HashMap::new();
    answers.insert(("d0".to_string(), "k0".to_string()), took_over);
    for i in 0..60 {
        let dealer = format!("d{i}");
        let token = dealer_token(&show.room, &show.key, &dealer, "gold");
        for k in 0..4 {
            let key = format!("k{k}");
            if answers.contains_key(&(dealer.clone(), key.clone())) {
                continue;
            }
            let answer = grab(b.http, &show.room, &token, &sale.id, &key)
                .await
                .expect("B serves the room");
            answers.insert((dealer.clone(), key), answer);
        }
    }
    for (grab_key, order) in &acked {
        let (result, again) = &answers[grab_key];
        assert_eq!(result, "won", "{grab_key:?} was acknowledged a win on A");
        assert_eq!(again, order, "{grab_key:?} gets the same order on B");
    }
    let won = answers.values().filter(|(r, _)| r == "won").count();
    assert_eq!(won as u32, stock, "the stock is sold exactly once");

    // The store agrees.
    let room = stop_and_load(&mut [&mut b], &pg_url, &show.room).await;
    let s = room.sales.iter().find(|s| s.id == sale.id).unwrap();
    assert_eq!(s.remaining, 0);
    let orders: Vec<_> = room
        .orders
        .iter()
        .filter(|o| o.sale_id.as_deref() == Some(sale.id.as_str()))
        .collect();
    assert_eq!(orders.len() as u32, stock);
    for order in acked.values() {
        assert!(
            orders.iter().any(|o| &o.id == order),
            "acknowledged {order} is stored"
        );
    }
}

/// SIGSTOP of the owner past its lease: the other node takes the room and sells; on SIGCONT
/// the old owner's pending grabs are never acknowledged as wins (its writes are fenced, or it
/// sees its lease gone first), it steps down, and no unit is granted twice.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_paused_owner_that_resumes_is_fenced_and_steps_down() {
    let stock = 30;
    let Cluster {
        nats: _nats,
        pg_url,
        mut a,
        mut b,
        show,
        sale,
    } = two_nodes_with_a_sale(stock, stock).await;
    let token = |d: &str| dealer_token(&show.room, &show.key, d, "gold");

    // A dealer on A, then A stops (SIGSTOP) with 20 grabs from that dealer in its socket.
    let mut on_a = try_connect(&format!("127.0.0.1:{}", a.http), &show.room, &token("x"))
        .await
        .unwrap();
    assert!(matches!(on_a.next().await, Next::Frame(f) if f["type"] == "welcome"));
    let pid = a.child.id() as libc::pid_t;
    // SAFETY: kill(2) on our own child's pid, not yet reaped.
    unsafe { libc::kill(pid, libc::SIGSTOP) };
    for k in 0..20 {
        on_a.send(json!({"type": "grab", "sale_id": sale.id, "key": format!("x{k}")}))
            .await;
    }

    // B takes the room once A's lease expires and sells 25 of the 30 units.
    let stopped = Instant::now();
    let mut b_wins = 0;
    let mut d = 0;
    while b_wins < 25 {
        match grab(b.http, &show.room, &token(&format!("b{d}")), &sale.id, "k").await {
            Some((result, _)) => {
                assert_eq!(result, "won");
                b_wins += 1;
                d += 1;
            }
            None => {
                assert!(stopped.elapsed() < WAIT, "B never took the room over");
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
    }

    // A resumes: whatever it makes of the 20 queued grabs, none is acknowledged as a win, and
    // its session is closed with "moved".
    // SAFETY: as above.
    unsafe { libc::kill(pid, libc::SIGCONT) };
    let mut a_wins = 0;
    let close = loop {
        match on_a.next().await {
            Next::Frame(f) if f["type"] == "grab_result" && f["result"] == "won" => a_wins += 1,
            Next::Frame(_) => {}
            Next::Closed(c) => break c,
        }
    };
    assert_eq!(a_wins, 0, "a fenced owner acknowledged wins");
    let (code, reason) = close.expect("a close frame");
    assert_eq!(code, 1013, "{reason}");

    // B sells the last 5 units and no more.
    let mut more = 0;
    for i in 0..10 {
        let (result, _) = grab(
            b.http,
            &show.room,
            &token(&format!("late{i}")),
            &sale.id,
            "k",
        )
        .await
        .expect("B still serves the room");
        if result == "won" {
            more += 1;
        }
    }
    assert_eq!(b_wins + more, stock as usize);
    let room = stop_and_load(&mut [&mut a, &mut b], &pg_url, &show.room).await;
    let orders: Vec<_> = room
        .orders
        .iter()
        .filter(|o| o.sale_id.as_deref() == Some(sale.id.as_str()))
        .collect();
    assert_eq!(orders.len(), stock as usize, "one order per unit");
    assert!(
        orders.iter().all(|o| o.viewer_id != "x"),
        "no order of the fenced owner"
    );
    assert_eq!(room.sales[0].remaining, 0);
}

/// Two surviving nodes race to take over the room of a dead owner (viewers arriving on both
/// at once): exactly one of them runs it, the other serves its viewers by following it, and
/// both agree on who owns it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_nodes_racing_for_a_room_get_exactly_one_owner() {
    // `_nats` keeps the nats-server running until the end of the test.
    let (
        Cluster {
            mut a,
            mut b,
            show,
            nats: _nats,
            ..
        },
        mut c,
    ) = three_nodes().await;
    a.child.kill().unwrap();
    a.child.wait().unwrap();
    let token = dealer_token(&show.room, &show.key, "racer", "gold");
    let joined = |port: u16| {
        let (room, token) = (show.room.clone(), token.clone());
        async move {
            let mut v = try_connect(&format!("127.0.0.1:{port}"), &room, &token)
                .await
                .ok()?;
            match v.next().await {
                Next::Frame(f) if f["type"] == "welcome" => Some(Ok(v)),
                Next::Closed(Some((code, reason))) => Some(Err((code, reason))),
                _ => None,
            }
        }
    };
    // Viewers arrive on both at once until one of them is served; then both serve viewers
    // (the other follows the room from the winner), and exactly one runs it.
    let deadline = Instant::now() + WAIT;
    loop {
        let (on_b, on_c) = tokio::join!(joined(b.http), joined(c.http));
        let won = |r: &Option<Result<Viewer, (u16, String)>>| matches!(r, Some(Ok(_)));
        if won(&on_b) || won(&on_c) {
            break;
        }
        assert!(Instant::now() < deadline, "nobody took the room over");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    for port in [b.http, c.http] {
        let served = joined(port).await;
        assert!(
            matches!(served, Some(Ok(_))),
            "node on {port}: {:?}",
            served.map(|r| r.err())
        );
    }
    let mut runs = Vec::new();
    for (node, name) in [(&b, "node-b"), (&c, "node-c")] {
        let addr = format!("127.0.0.1:{}", node.http).parse().unwrap();
        let m = common::rtc_client::http(addr, "GET", "/metrics", &[], "")
            .await
            .body;
        if m.contains("\nshowfloor_rooms 1\n") {
            runs.push(name);
        } else {
            assert!(m.contains("\nshowfloor_rooms 0\n"), "{m}");
            assert!(m.contains("\nshowfloor_rooms_followed 1\n"), "{m}");
        }
    }
    assert_eq!(runs.len(), 1, "exactly one node runs the room: {runs:?}");
    let winner = runs[0];
    for port in [b.grpc, c.grpc] {
        let owner = Control::at(port)
            .await
            .get_room(&show.room)
            .await
            .owner_node;
        assert_eq!(owner, winner, "asked on port {port}");
    }
    for node in [&mut b, &mut c] {
        node.child.kill().unwrap();
        node.child.wait().unwrap();
    }
}

/// nats-server restarts (SIGKILL, same store) while a dealer is connected to the room's
/// owner and a viewer to the other node: the owner reconnects and keeps its lease, or gives
/// the room up and the dealer is told to reconnect; the other node's viewer is told to
/// reconnect (what was published meanwhile is lost); either way every acknowledged grab is stored and the stock is never
/// oversold, and the room goes on selling after the restart.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_nats_restart_loses_nothing_acknowledged() {
    let stock = 40;
    let Cluster {
        mut nats,
        pg_url,
        mut a,
        mut b,
        show,
        sale,
    } = two_nodes_with_a_sale(stock, stock).await;
    let token = dealer_token(&show.room, &show.key, "d", "gold");
    let mut acked = Vec::new();
    for k in 0..10 {
        let (result, order) = grab(a.http, &show.room, &token, &sale.id, &format!("k{k}"))
            .await
            .expect("A serves its room");
        assert_eq!(result, "won");
        acked.push(order);
    }
    // A viewer of the room on B (which follows it from A) is told to reconnect: events
    // published while NATS was down are gone, and nothing of them may be missed silently.
    let mut on_b = connect(
        &b.http_addr(),
        &show.room,
        &dealer_token(&show.room, &show.key, "vb", "gold"),
    )
    .await;
    on_b.expect("welcome").await;
    nats.restart().await;
    let (code, reason) = on_b.closed().await;
    assert_eq!(code, 1013, "{reason}");
    assert!(reason.contains("reconnect"), "{reason}");
    // After the restart the room is served again, by A (lease kept) or by whichever node
    // takes it once A's lease is gone; the same keys answer the same, new keys win.
    let deadline = Instant::now() + WAIT;
    let mut k = 0;
    while k < 30 {
        let key = format!("k{k}");
        let mut served = None;
        for port in [a.http, b.http] {
            if let Some(answer) = grab(port, &show.room, &token, &sale.id, &key).await {
                served = Some(answer);
                break;
            }
        }
        match served {
            Some((result, order)) => {
                assert_eq!(result, "won", "{key}");
                if k < 10 {
                    assert_eq!(order, acked[k], "{key} answers the same after the restart");
                } else {
                    acked.push(order);
                }
                k += 1;
            }
            None => {
                assert!(Instant::now() < deadline, "the room was not served again");
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
    }
    let room = stop_and_load(&mut [&mut a, &mut b], &pg_url, &show.room).await;
    let s = room.sales.iter().find(|s| s.id == sale.id).unwrap();
    assert_eq!(s.remaining, stock - 30);
    for order in &acked {
        assert!(
            room.orders.iter().any(|o| &o.id == order),
            "acknowledged {order} is stored"
        );
    }
    assert_eq!(room.orders.len(), 30);
}

/// Reads frames until an `online_count` of `n`.
async fn online_reaches(v: &mut Viewer, n: u64) {
    loop {
        if v.expect("online_count").await["online"] == n {
            return;
        }
    }
}

/// Viewers served by nodes that do not own their room. When their node is killed, the owner
/// counts them out within a few seconds (it stops answering the owner's checks). When the
/// owner is killed, they are told to reconnect (within the lease TTL and a check) and,
/// reconnecting to the same node, get an explicit fresh snapshot from the new owner: a new
/// epoch, never a silent gap.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn followers_viewers_leave_with_their_node_and_reconnect_after_the_owner() {
    // `_nats` keeps the nats-server running until the end of the test.
    let (
        Cluster {
            mut a,
            mut b,
            show,
            nats: _nats,
            ..
        },
        mut c,
    ) = three_nodes().await;
    let room = show.room.clone();
    let token = |id: &str| dealer_token(&room, &show.key, id, "gold");
    let welcome = |mut v: Viewer| async move {
        let w = v.expect("welcome").await;
        (v, w)
    };
    let (mut on_a, _) = welcome(connect(&a.http_addr(), &room, &token("va")).await).await;
    let (_c1, _) = welcome(connect(&c.http_addr(), &room, &token("vc1")).await).await;
    let (_c2, w) = welcome(connect(&c.http_addr(), &room, &token("vc2")).await).await;
    assert_eq!(w["online"], 3, "{w}");
    online_reaches(&mut on_a, 3).await;
    c.kill();
    online_reaches(&mut on_a, 1).await;

    let (mut on_b, w) = welcome(connect(&b.http_addr(), &room, &token("vb")).await).await;
    let epoch = w["epoch"].as_str().unwrap().to_string();
    let killed = Instant::now();
    a.kill();
    let (code, reason) = on_b.closed().await;
    assert_eq!(code, 1013, "{reason}");
    assert!(reason.contains("reconnect"), "{reason}");
    assert!(killed.elapsed() < WAIT, "told after {:?}", killed.elapsed());
    let query = format!("&last_seq={}&epoch={epoch}", w["seq"]);
    let deadline = Instant::now() + WAIT;
    let w = loop {
        let url = format!(
            "ws://{}/ws/{room}?token={}{query}",
            b.http_addr(),
            token("vb")
        );
        let (ws, _) = tokio_tungstenite::connect_async(url).await.unwrap();
        let mut v = Viewer {
            ws,
            frames: Vec::new(),
        };
        match v.next().await {
            Next::Frame(f) if f["type"] == "welcome" => break f,
            Next::Frame(f) => panic!("unexpected first frame {f}"),
            Next::Closed(c) => {
                assert!(Instant::now() < deadline, "B never served the room: {c:?}");
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
        }
    };
    assert_eq!(w["resumed"], false, "{w}");
    assert_ne!(w["epoch"], epoch.as_str(), "a new incarnation, said so");
    b.kill();
}

/// A node serving a viewer of a room it does not own stops answering (SIGSTOP) for longer
/// than the owner's checks allow: the owner takes its viewer out of the room (the count
/// drops), and when the node comes back (SIGCONT) the viewer is told to reconnect rather than
/// served by a room that no longer counts it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_paused_serving_node_s_viewer_is_counted_out_and_told_to_reconnect() {
    let Cluster {
        mut a,
        mut b,
        show,
        nats: _nats,
        ..
    } = two_nodes_with_a_sale(10, 1).await;
    let token = |id: &str| dealer_token(&show.room, &show.key, id, "gold");
    let mut on_a = connect(&a.http_addr(), &show.room, &token("va")).await;
    on_a.expect("welcome").await;
    let mut on_b = connect(&b.http_addr(), &show.room, &token("vb")).await;
    on_b.expect("welcome").await;
    online_reaches(&mut on_a, 2).await;
    let pid = b.child.id() as libc::pid_t;
    // SAFETY: kill(2) on our own child's pid, not yet reaped.
    assert_eq!(unsafe { libc::kill(pid, libc::SIGSTOP) }, 0);
    online_reaches(&mut on_a, 1).await;
    // SAFETY: as above.
    assert_eq!(unsafe { libc::kill(pid, libc::SIGCONT) }, 0);
    let (code, reason) = on_b.closed().await;
    eprintln!("the resumed node's viewer was closed: {code} {reason}");
    assert_eq!(code, 1013, "{reason}");
    assert!(reason.contains("reconnect"), "{reason}");
    a.kill();
    b.kill();
}
