//! The client programs in the `showfloor` binary: `ctl` (control plane), `viewer` (a terminal
//! WebSocket viewer) and `verify-draw` (checks a lucky-draw record offline).

pub mod ctl;
pub mod verify_draw;
pub mod viewer;
