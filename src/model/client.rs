//! What a viewer sends over its WebSocket, once parsed (the parser is `room::protocol`), and
//! why a message was refused. Serialisable, so a command can reach a room on another node.

use serde::{Deserialize, Serialize};
use std::borrow::Cow;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum ClientMessage {
    Chat {
        text: String,
    },
    Like {
        count: u32,
    },
    DealerApplication {
        company: String,
        licence_number: String,
        contact: String,
    },
    Resume {
        last_seq: u64,
        epoch: Option<String>,
    },
    Ping {
        t: Option<i64>,
    },
    PlaceOrder {
        product_id: String,
        quantity: u32,
        key: String,
    },
    Grab {
        sale_id: String,
        key: String,
    },
    EnterDraw {
        draw_id: String,
    },
    GrabRedPacket {
        packet_id: String,
    },
    /// A product card was opened (engagement; nothing is sent to anyone).
    ProductView {
        product_id: String,
    },
    /// A product's link was followed (engagement; verified dealers only).
    ProductClick {
        product_id: String,
    },
}

/// Why a client message was refused. `code` is stable and machine-readable.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProtocolError {
    pub code: Cow<'static, str>,
    pub message: String,
}

impl ProtocolError {
    pub fn new(code: &'static str, message: impl Into<String>) -> Self {
        ProtocolError {
            code: Cow::Borrowed(code),
            message: message.into(),
        }
    }
}
