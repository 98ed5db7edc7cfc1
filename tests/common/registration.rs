//! The registration endpoint from a test: a POST from a given client address.

use super::rtc_client::{http, HttpResponse};
use super::Server;
use serde_json::Value;

/// A registration POST from `addr` (the test connects over loopback, so the server takes the
/// client's address from `X-Forwarded-For`, as behind a local proxy).
pub async fn register(server: &Server, room: &str, addr: &str, body: &str) -> HttpResponse {
    http(
        server.app().http_addr,
        "POST",
        &format!("/api/rooms/{room}/registrations"),
        &[
            ("content-type", "application/json"),
            ("x-forwarded-for", addr),
        ],
        body,
    )
    .await
}

/// A response's JSON body.
pub fn json_of(r: &HttpResponse) -> Value {
    serde_json::from_str(&r.body).unwrap_or_else(|e| panic!("not JSON ({e}): {:?}", r.body))
}
