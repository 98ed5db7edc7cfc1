//! One client address cannot take the node: with `--max-connections-per-ip 3` (loopback held
//! to it too, as a client elsewhere would be), a fourth WebSocket from the same address is
//! closed with 1013 and the reason, and gets in once one of the three leaves; a fourth HTTP
//! request in progress gets 429 with `Retry-After`; an address forwarded by a local proxy is
//! counted on its own. Request bodies are bounded on every endpoint that takes one.

mod common;

use common::{setup_show, Server};
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// A registration POST whose body never completes: its handler waits, holding a request slot.
async fn stalled_post(
    http: std::net::SocketAddr,
    room: &str,
    forwarded: Option<&str>,
) -> TcpStream {
    let mut s = TcpStream::connect(http).await.unwrap();
    let xff = forwarded
        .map(|a| format!("X-Forwarded-For: {a}\r\n"))
        .unwrap_or_default();
    s.write_all(
        format!(
            "POST /api/rooms/{room}/registrations HTTP/1.1\r\nHost: x\r\n{xff}\
             Content-Type: application/json\r\nContent-Length: 100\r\n\r\n{{\"name\":"
        )
        .as_bytes(),
    )
    .await
    .unwrap();
    s
}

/// One whole request on a new connection: the status and the response text.
async fn request(http: std::net::SocketAddr, raw: &str) -> (u16, String) {
    let mut s = TcpStream::connect(http).await.unwrap();
    s.write_all(raw.as_bytes()).await.unwrap();
    let mut out = Vec::new();
    let _ = tokio::time::timeout(Duration::from_secs(10), s.read_to_end(&mut out)).await;
    let text = String::from_utf8_lossy(&out).to_string();
    let status = text
        .split(' ')
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    (status, text)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_address_holds_at_most_its_share() {
    let server = Server::start_with(|c| {
        c.max_connections_per_ip = 3;
        c.limit_loopback = true;
    })
    .await;
    let mut c = server.control().await;
    let show = setup_show(&mut c).await;
    let http = server.app().http_addr;

    let mut viewers = Vec::new();
    for i in 0..3 {
        let token = c.token(&show.room, &format!("v{i}")).await;
        let mut v = server.viewer(&show.room, &token).await;
        v.expect("welcome").await;
        viewers.push(v);
    }
    let token = c.token(&show.room, "fourth").await;
    let mut fourth = server.viewer(&show.room, &token).await;
    let (code, reason) = fourth.closed().await;
    assert_eq!(code, 1013, "{reason}");
    assert!(
        reason.contains("too many connections from 127.0.0.1"),
        "{reason}"
    );
    drop(viewers.pop());
    let t = std::time::Instant::now();
    loop {
        let mut again = server.viewer(&show.room, &token).await;
        match again.next().await {
            common::Next::Frame(f) if f["type"] == "welcome" => break,
            _ => {
                assert!(
                    t.elapsed() < common::WAIT,
                    "a slot comes back when a viewer leaves"
                );
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
    }

    // HTTP: three requests in progress from this address, the fourth is told to wait.
    let _held: Vec<TcpStream> = {
        let mut v = Vec::new();
        for _ in 0..3 {
            v.push(stalled_post(http, &show.room, None).await);
        }
        v
    };
    tokio::time::sleep(Duration::from_millis(200)).await;
    let (status, text) = request(
        http,
        "GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
    )
    .await;
    assert_eq!(status, 429, "{text}");
    assert!(text.to_lowercase().contains("retry-after: 1"), "{text}");
    assert!(
        text.contains("too many requests in progress from 127.0.0.1"),
        "{text}"
    );
    // Through a local proxy, the forwarded address is the one counted.
    let (status, text) = request(
        http,
        "GET /healthz HTTP/1.1\r\nHost: x\r\nX-Forwarded-For: 203.0.113.5\r\nConnection: close\r\n\r\n",
    )
    .await;
    assert_eq!(status, 200, "{text}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn oversized_bodies_are_refused_on_every_endpoint_that_takes_one() {
    let server = Server::start().await;
    let mut c = server.control().await;
    let show = setup_show(&mut c).await;
    let http = server.app().http_addr;
    let big = "x".repeat(512 * 1024);
    for (path, kind) in [
        (
            format!("/whip/{}/{}", show.room, show.brand_a),
            "application/sdp",
        ),
        (format!("/whep/{}", show.room), "application/sdp"),
        (
            format!("/api/rooms/{}/registrations", show.room),
            "application/json",
        ),
    ] {
        let (status, text) = request(
            http,
            &format!(
                "POST {path} HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer t\r\n\
                 Content-Type: {kind}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{big}",
                big.len()
            ),
        )
        .await;
        assert_eq!(status, 413, "{path}: {}", &text[..text.len().min(300)]);
    }
}
