//! Broken WebSocket frames and bad query parameters end the connection with the close code
//! and reason RFC 6455 (and docs/protocol.md) name — never a bare close (1005) or an HTTP
//! error before the upgrade (a browser's 1006). Frames are written byte by byte, as a broken
//! or hostile client would.

mod common;
use common::*;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// A connection after a completed upgrade, speaking raw frames.
struct Raw {
    tcp: TcpStream,
}

impl Raw {
    async fn open(addr: std::net::SocketAddr, path: &str) -> Raw {
        let mut tcp = TcpStream::connect(addr).await.unwrap();
        let req = format!(
            "GET {path} HTTP/1.1\r\nHost: {addr}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
             Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
        );
        tcp.write_all(req.as_bytes()).await.unwrap();
        // Read the response head byte by byte so no frame after it is consumed.
        let mut head = Vec::new();
        while !head.ends_with(b"\r\n\r\n") {
            let mut b = [0u8; 1];
            tcp.read_exact(&mut b).await.unwrap();
            head.push(b[0]);
        }
        let head = String::from_utf8(head).unwrap();
        assert!(head.starts_with("HTTP/1.1 101"), "upgrade accepted: {head}");
        Raw { tcp }
    }

    /// Writes one masked frame (FIN set) with any opcode and payload.
    async fn frame(&mut self, opcode: u8, payload: &[u8]) {
        let mut f = vec![0x80 | opcode];
        let n = payload.len();
        if n < 126 {
            f.push(0x80 | n as u8);
        } else if n <= u16::MAX as usize {
            f.push(0x80 | 126);
            f.extend_from_slice(&(n as u16).to_be_bytes());
        } else {
            f.push(0x80 | 127);
            f.extend_from_slice(&(n as u64).to_be_bytes());
        }
        let mask = [0x12, 0x34, 0x56, 0x78];
        f.extend_from_slice(&mask);
        f.extend(payload.iter().enumerate().map(|(i, b)| b ^ mask[i % 4]));
        // The server may close before reading everything; that is its right.
        let _ = self.tcp.write_all(&f).await;
    }

    /// Reads server frames until a close; returns its code and reason (None: no close frame
    /// before the connection ended).
    async fn close(&mut self) -> Option<(u16, String)> {
        tokio::time::timeout(WAIT, async {
            loop {
                let mut h = [0u8; 2];
                self.tcp.read_exact(&mut h).await.ok()?;
                let mut len = (h[1] & 0x7f) as usize;
                if len == 126 {
                    let mut l = [0u8; 2];
                    self.tcp.read_exact(&mut l).await.ok()?;
                    len = u16::from_be_bytes(l) as usize;
                } else if len == 127 {
                    let mut l = [0u8; 8];
                    self.tcp.read_exact(&mut l).await.ok()?;
                    len = u64::from_be_bytes(l) as usize;
                }
                let mut payload = vec![0u8; len];
                self.tcp.read_exact(&mut payload).await.ok()?;
                if h[0] & 0x0f == 0x8 {
                    if payload.len() < 2 {
                        return Some((1005, String::new()));
                    }
                    let code = u16::from_be_bytes([payload[0], payload[1]]);
                    return Some((code, String::from_utf8_lossy(&payload[2..]).into_owned()));
                }
            }
        })
        .await
        .expect("the server answers within the wait")
    }
}

async fn joined(server: &Server, c: &mut Control) -> Raw {
    let room = c.create_room("frames").await.room.unwrap().id;
    let token = c.token(&room, "v").await;
    let mut raw = Raw::open(server.app().http_addr, &format!("/ws/{room}?token={token}")).await;
    // The welcome arrives first: the session is in the room.
    raw.frame(0x9, b"hello").await;
    tokio::time::sleep(Duration::from_millis(50)).await;
    raw
}

#[tokio::test]
async fn broken_frames_close_with_the_code_that_names_the_fault() {
    let server = Server::start().await;
    let mut c = server.control().await;

    let mut raw = joined(&server, &mut c).await;
    raw.frame(0x1, &[b'{', 0xff, 0xfe, b'}']).await;
    let (code, reason) = raw.close().await.expect("a close frame");
    assert_eq!(code, 1007, "invalid UTF-8: {reason}");
    assert!(reason.contains("UTF-8"), "{reason}");

    let mut raw = joined(&server, &mut c).await;
    raw.frame(0x3, b"reserved").await;
    let (code, reason) = raw.close().await.expect("a close frame");
    assert_eq!(code, 1002, "reserved opcode: {reason}");

    let mut raw = joined(&server, &mut c).await;
    raw.frame(0x9, &[b'p'; 200]).await;
    let (code, reason) = raw.close().await.expect("a close frame");
    assert_eq!(code, 1002, "a ping over 125 bytes: {reason}");

    let mut raw = joined(&server, &mut c).await;
    raw.frame(0x1, &vec![b'x'; 70_000]).await;
    let (code, reason) = raw.close().await.expect("a close frame");
    assert_eq!(code, 1009, "a message over 64 KiB: {reason}");
    assert!(reason.contains("65536"), "{reason}");
}

#[tokio::test]
async fn a_bad_resume_query_is_refused_after_the_upgrade_with_a_reason() {
    let server = Server::start().await;
    let mut c = server.control().await;
    let room = c.create_room("query").await.room.unwrap().id;
    let token = c.token(&room, "v").await;
    for (extra, needle) in [
        ("&last_seq=abc", "last_seq"),
        ("&last_seq=-1", "last_seq"),
        ("&last_seq=3&epoch=%00bad", "epoch"),
        ("&epoch=abc", "last_seq"),
    ] {
        let mut v = server.viewer_with(&room, &token, extra).await;
        let (code, reason) = v.closed().await;
        assert_eq!(code, 4400, "{extra}: {reason}");
        assert!(reason.contains(needle), "{extra}: {reason}");
    }
    // Unknown parameters are ignored; a good resume still works.
    let mut v = server.viewer_with(&room, &token, "&cache=123").await;
    assert_eq!(v.expect("welcome").await["resumed"], false);
}
