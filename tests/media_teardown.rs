//! 1,000 WHEP join/leave cycles (each connects ICE + DTLS, receives the program, leaves)
//! leave the process's task and file-descriptor counts flat: every PeerConnection, virtual
//! socket, writer and RTCP task of a viewer goes away with it.

mod common;

use common::rtc_client::{WhepViewer, WhipPublisher};
use common::{setup_show, Server};
use std::time::{Duration, Instant};

const CYCLES: usize = 1000;
const AT_ONCE: usize = 10;

fn fds() -> usize {
    std::fs::read_dir("/proc/self/fd").unwrap().count()
}

fn tasks() -> usize {
    tokio::runtime::Handle::current()
        .metrics()
        .num_alive_tasks()
}

async fn cycle(addr: std::net::SocketAddr, room: String, token: String) {
    let mut v = WhepViewer::connect(addr, &room, &token).await.unwrap();
    v.wait_connected().await;
    let t = Instant::now();
    while v
        .received
        .audio_count
        .load(std::sync::atomic::Ordering::SeqCst)
        == 0
    {
        assert!(
            t.elapsed() < common::WAIT,
            "the viewer receives the program"
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    assert_eq!(v.leave().await, 200);
}

/// Waits (bounded) for teardown to finish, then returns the counts.
async fn settle(limit_tasks: usize, limit_fds: usize) -> (usize, usize) {
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let (t, f) = (tasks(), fds());
        if (t <= limit_tasks && f <= limit_fds) || Instant::now() > deadline {
            return (t, f);
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn thousand_join_leave_cycles_leave_counts_flat() {
    common::raise_fd_limit();
    let server = Server::start().await;
    let mut c = server.control().await;
    let show = setup_show(&mut c).await;
    let addr = server.app().http_addr;
    let presenter = c.presenter_token(&show.room, &show.brand_a).await;
    let publisher = WhipPublisher::connect(addr, &show.room, &show.brand_a, &presenter)
        .await
        .unwrap();
    let token = c.token(&show.room, "cycler").await;

    // Warm up (lazily created runtime threads, pools), then take the baseline.
    for _ in 0..AT_ONCE {
        cycle(addr, show.room.clone(), token.clone()).await;
    }
    tokio::time::sleep(Duration::from_secs(1)).await;
    let (base_tasks, base_fds) = (tasks(), fds());

    let started = Instant::now();
    let mut done = 0;
    while done < CYCLES {
        let batch: Vec<_> = (0..AT_ONCE)
            .map(|_| tokio::spawn(cycle(addr, show.room.clone(), token.clone())))
            .collect();
        for b in batch {
            b.await.unwrap();
        }
        done += AT_ONCE;
    }
    let elapsed = started.elapsed();
    let (end_tasks, end_fds) = settle(base_tasks + 2, base_fds + 2).await;
    println!(
        "{CYCLES} WHEP join/leave cycles in {:.1} s: tasks {base_tasks} → {end_tasks}, \
         fds {base_fds} → {end_fds}, media sessions left {}",
        elapsed.as_secs_f64(),
        server.app().media.session_count()
    );
    assert_eq!(
        server.app().media.session_count(),
        1,
        "only the publisher is left"
    );
    assert!(
        end_tasks <= base_tasks + 2,
        "tasks grew from {base_tasks} to {end_tasks}"
    );
    assert!(
        end_fds <= base_fds + 2,
        "fds grew from {base_fds} to {end_fds}"
    );
    publisher.stop().await;
}
