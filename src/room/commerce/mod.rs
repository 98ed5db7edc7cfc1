//! Commerce inside the live as pure state and decisions: orders, flash sales, lucky draws, red packets.
//!
//! Each module holds the state of one kind of thing and decides what an attempt gets
//! (`SaleState::grab -> GrabOutcome`, `RedPacketState::grab -> PacketOutcome`, …) without a
//! room, a clock or a store: the room's glue (`room::core`) passes `now`, turns outcomes into
//! events, frames and store writes, and hands undos back when a write fails. Every state can
//! be rebuilt from the records the store keeps.

pub mod flash_sale;
pub mod lucky_draw;
pub mod orders;
pub mod red_packet;

#[cfg(test)]
mod properties;

/// The number in an id the room hands out (`o12`, `s3`, `d4`, `r5`), if it has that prefix.
pub fn number(id: &str, prefix: char) -> Option<u64> {
    id.strip_prefix(prefix)?.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_a_prefix_and_a_number() {
        assert_eq!(number("o12", 'o'), Some(12));
        assert_eq!(number("s12", 'o'), None);
        assert_eq!(number("o", 'o'), None);
        assert_eq!(number("o1x", 'o'), None);
    }
}
