//! The harness's Socket.IO v4 client, for measuring the Socket.IO peer
//! (`benches/peers/socketio/server.js`) with the same scenarios, connections and clocks as
//! Showfloor. Engine.IO 4 over WebSocket only (no long-polling upgrade), the default namespace:
//!
//! - server → `0{"sid":…,"pingInterval":…}` (Engine.IO open), client → `40` (Socket.IO
//!   connect), server → `40{"sid":…}` (connected) or `44{…}` (refused);
//! - events are `42["name",payload]`;
//! - the server pings with `2`; the client must answer `3` within the ping timeout.

use crate::{dial, Ws};
use futures_util::{SinkExt, StreamExt};
use std::net::SocketAddr;
use std::time::Duration;
use tokio_tungstenite::tungstenite::Message;

/// The prefix of a `chat` event frame.
pub const CHAT: &str = "42[\"chat\"";
/// The prefix of the peer's error event (a malformed chat).
pub const ERROR: &str = "42[\"error_event\"";
/// Engine.IO ping (server → client) and pong.
pub const PING: &str = "2";
pub const PONG: &str = "3";

/// Opens connection `index` and completes the Engine.IO and Socket.IO handshakes.
pub async fn connect(addr: SocketAddr, index: usize, within: Duration) -> anyhow::Result<Ws> {
    tokio::time::timeout(within, async {
        let stream = dial(addr, index).await?;
        let url = format!("ws://{addr}/socket.io/?EIO=4&transport=websocket");
        let mut ws = crate::handshake(url, crate::tls::Conn::Plain(stream)).await?;
        let open = next_text(&mut ws).await?;
        anyhow::ensure!(
            open.starts_with('0'),
            "expected the Engine.IO open packet, got {open:.80}"
        );
        ws.send(Message::text("40")).await?;
        loop {
            let t = next_text(&mut ws).await?;
            if t.starts_with("40") {
                return Ok(ws);
            }
            if t == PING {
                ws.send(Message::text(PONG)).await?;
            } else if t.starts_with("44") {
                anyhow::bail!("the Socket.IO server refused the connection: {t:.200}");
            }
        }
    })
    .await
    .map_err(|_| anyhow::anyhow!("no Socket.IO handshake within {within:?}"))?
}

/// A `chat` event carrying `text`.
pub fn chat(text: &str) -> String {
    format!("42{}", serde_json::json!(["chat", { "text": text }]))
}

async fn next_text(ws: &mut Ws) -> anyhow::Result<String> {
    while let Some(m) = ws.next().await {
        match m? {
            Message::Text(t) => return Ok(t.as_str().to_string()),
            Message::Close(c) => anyhow::bail!("the server closed the connection: {c:?}"),
            _ => {}
        }
    }
    anyhow::bail!("the connection ended during the handshake")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_chat_event_is_a_socketio_event_packet() {
        let p = chat("hi \"there\"");
        assert!(p.starts_with(CHAT));
        let v: serde_json::Value = serde_json::from_str(&p[2..]).unwrap();
        assert_eq!(v[1]["text"], "hi \"there\"");
    }
}
