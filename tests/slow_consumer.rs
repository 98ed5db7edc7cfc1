//! A viewer that stops reading is closed with 4008 "slow consumer"; the others keep receiving.

mod common;
use common::*;
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_viewer_that_stops_reading_is_closed_and_others_keep_receiving() {
    let server = Server::start_with(|c| c.outbound_queue = 16).await;
    let mut c = server.control().await;
    let show = setup_show(&mut c).await;
    let t_slow = c.token(&show.room, "slow").await;
    let t_ok = c.token(&show.room, "reader").await;

    // The stalled client: a raw socket with a tiny receive buffer that completes the
    // WebSocket handshake and then never reads again.
    let sock = tokio::net::TcpSocket::new_v4().unwrap();
    sock.set_recv_buffer_size(4096).unwrap();
    let mut stalled = sock.connect(server.app().http_addr).await.unwrap();
    let req = format!(
        "GET /ws/{}?token={t_slow} HTTP/1.1\r\nHost: localhost\r\nUpgrade: websocket\r\n\
         Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\
         Sec-WebSocket-Version: 13\r\n\r\n",
        show.room
    );
    stalled.write_all(req.as_bytes()).await.unwrap();
    let mut buf = [0u8; 1024];
    let n = stalled.read(&mut buf).await.unwrap();
    assert!(buf[..n].starts_with(b"HTTP/1.1 101"));

    let mut reader = server.viewer(&show.room, &t_ok).await;
    reader.expect("welcome").await;

    // Flood the room with large announcements until the server gives up on the stalled one.
    let text = "x".repeat(1000);
    let metrics_url = format!("{}/metrics", server.http());
    let start = Instant::now();
    let mut closed = false;
    let mut sent = 0;
    while start.elapsed() < Duration::from_secs(60) && sent < 20_000 {
        for _ in 0..50 {
            c.announce(&show.room, &text).await;
            sent += 1;
        }
        let m = reqwest_get(&metrics_url).await;
        if m.lines()
            .any(|l| l.starts_with("showfloor_slow_consumer_closes_total") && !l.ends_with(" 0"))
        {
            closed = true;
            break;
        }
        // The healthy reader keeps up.
        while let Ok(Some(_)) = tokio::time::timeout(
            Duration::from_millis(1),
            futures_util::StreamExt::next(&mut reader.ws),
        )
        .await
        {}
    }
    assert!(
        closed,
        "the stalled viewer was not closed after {sent} announcements"
    );

    // The healthy viewer is still connected and receiving.
    c.announce(&show.room, "still-here").await;
    loop {
        let f = reader.expect("announce").await;
        if f["text"] == "still-here" {
            break;
        }
    }
    let room = c.get_room(&show.room).await;
    assert_eq!(room.online, 1, "only the reader is left");
}

/// A tiny HTTP GET over a raw socket (keeps the test free of an HTTP client crate).
async fn reqwest_get(url: &str) -> String {
    let u = url::Url::parse(url).unwrap();
    let mut s = tokio::net::TcpStream::connect((u.host_str().unwrap(), u.port().unwrap()))
        .await
        .unwrap();
    let req = format!(
        "GET {} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
        u.path()
    );
    s.write_all(req.as_bytes()).await.unwrap();
    let mut out = String::new();
    s.read_to_string(&mut out).await.unwrap();
    out
}
