//! The domain's shared vocabulary: records, events, commands, sessions and store writes.
//! A leaf: it imports nothing else of Showfloor, and every layer above may use it.

pub mod client;
pub mod command;
pub mod engagement;
pub mod event;
pub mod records;
pub mod registration;
pub mod secret;
pub mod session;
pub mod store_op;
pub mod webhook;

pub use client::{ClientMessage, ProtocolError};
pub use command::*;
pub use engagement::*;
pub use event::{RoomEvent, SeqEvent};
pub use records::*;
pub use registration::*;
pub use secret::Secret;
pub use session::*;
pub use store_op::StoreOp;
pub use webhook::*;

/// Milliseconds since the Unix epoch by the system clock (0 if the clock is before it).
pub fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}
