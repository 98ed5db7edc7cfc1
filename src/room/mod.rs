//! The heart of Showfloor: a room as a pure state machine (sans-IO), its events and wire parsing.

pub mod commerce;
pub mod core;
pub mod event;
pub mod protocol;
pub mod text;
