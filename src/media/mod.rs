//! Media: WHIP ingest, WHEP egress and the SFU that keeps each viewer's stream continuous
//! across brand switches.

pub mod keyframe;
pub mod rewrite;
pub mod sfu;
pub mod stun;
