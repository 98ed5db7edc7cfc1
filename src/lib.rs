//! Showfloor: a real-time server for B2B live order meetings (library; `main.rs` only wires).

pub mod app;
pub mod auth;
pub mod bus;
pub mod config;
pub mod control;
pub mod ctl;
pub mod draw;
pub mod edge;
pub mod hub;
pub mod media;
pub mod metrics;
pub mod model;
pub mod room;
pub mod store;
pub mod verify_draw;
pub mod viewer_cli;
pub mod web;

/// Generated gRPC types and services of `proto/showfloor/v1/control.proto`.
pub mod pb {
    #![allow(clippy::all)]
    tonic::include_proto!("showfloor.v1");

    /// For gRPC server reflection.
    pub const FILE_DESCRIPTOR_SET: &[u8] =
        tonic::include_file_descriptor_set!("showfloor_descriptor");
}
