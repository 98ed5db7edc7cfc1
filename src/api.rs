//! The registration endpoint on the HTTP port (docs/registration.md): viewers register
//! themselves, poll a pending registration and open their personal link. JSON in, JSON out;
//! every refusal is `{"error": code, "field": …, "message": …}` with its HTTP status.

use crate::model::{Registration, RoomState};
use crate::peer::client_address;
use crate::registration::{self, input::MAX_BODY, Outcome, Registrar, RegistrationError};
use axum::body::Body;
use axum::extract::{ConnectInfo, Path, Query, Request};
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use serde_json::{json, Value};
use std::net::SocketAddr;
use std::sync::Arc;

pub fn router(registrar: Arc<Registrar>) -> Router {
    Router::new()
        .route("/api/rooms/{room}/registration", get(settings))
        .route(
            "/api/rooms/{room}/registrations",
            axum::routing::post(register),
        )
        .route("/api/rooms/{room}/registrations/{id}", get(fetch))
        .with_state(registrar)
}

/// A JSON answer that is never cached (it may carry a token).
fn answer(status: StatusCode, body: Value) -> Response {
    let mut r = (status, axum::Json(body)).into_response();
    r.headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    r
}

fn refusal(status: StatusCode, code: &str, field: Option<&str>, message: String) -> Response {
    let mut body = json!({ "error": code, "message": message });
    if let Some(f) = field {
        body["field"] = json!(f);
    }
    answer(status, body)
}

fn error_response(e: RegistrationError) -> Response {
    let status = StatusCode::from_u16(e.status()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let retry = match &e {
        RegistrationError::RateLimited {
            retry_after_secs, ..
        } => Some(*retry_after_secs),
        _ => None,
    };
    if status.is_server_error() {
        tracing::warn!(error = %e, "registration failed");
    }
    let mut r = refusal(status, e.code(), e.field(), e.to_string());
    if let Some(s) = retry {
        r.headers_mut()
            .insert(header::RETRY_AFTER, HeaderValue::from(s));
    }
    r
}

fn peer_of(req: &Request) -> Option<SocketAddr> {
    req.extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map(|c| c.0)
}

/// What the viewer page asks before it shows the registration form.
async fn settings(
    axum::extract::State(reg): axum::extract::State<Arc<Registrar>>,
    Path(room): Path<String>,
    req: Request,
) -> Response {
    let from = client_address(req.headers(), peer_of(&req));
    match reg.settings(&room, from).await {
        Ok(r) => answer(
            StatusCode::OK,
            json!({
                "room": r.id,
                "title": r.title,
                "state": r.state.as_str(),
                "registration": r.registration.as_str(),
                "accepts_registrations": r.registration.accepts_registrations()
                    && r.state != RoomState::Ended,
                "phone_country": r.phone_country,
            }),
        ),
        Err(e) => error_response(e),
    }
}

async fn register(
    axum::extract::State(reg): axum::extract::State<Arc<Registrar>>,
    Path(room): Path<String>,
    req: Request,
) -> Response {
    let from = client_address(req.headers(), peer_of(&req));
    if let Some(ct) = req.headers().get(header::CONTENT_TYPE) {
        let ct = ct.to_str().unwrap_or("");
        if !ct
            .trim_start()
            .to_ascii_lowercase()
            .starts_with("application/json")
        {
            return refusal(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "unsupported_media_type",
                None,
                "the body must be JSON (Content-Type: application/json)".into(),
            );
        }
    }
    let declared = req
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    let too_large = || {
        refusal(
            StatusCode::PAYLOAD_TOO_LARGE,
            "body_too_large",
            None,
            format!("the body must be at most {MAX_BODY} bytes"),
        )
    };
    if declared.is_some_and(|n| n > MAX_BODY as u64) {
        return too_large();
    }
    let body = match axum::body::to_bytes(req.into_body(), MAX_BODY).await {
        Ok(b) => b,
        Err(_) => return too_large(),
    };
    match reg.register(&room, from, &body).await {
        Ok(outcome) => outcome_response(&room, outcome),
        Err(e) => error_response(e),
    }
}

#[derive(serde::Deserialize)]
struct FetchQuery {
    #[serde(default)]
    secret: String,
}

async fn fetch(
    axum::extract::State(reg): axum::extract::State<Arc<Registrar>>,
    Path((room, id)): Path<(String, String)>,
    Query(q): Query<FetchQuery>,
    req: Request<Body>,
) -> Response {
    let from = client_address(req.headers(), peer_of(&req));
    match reg.fetch(&room, &id, &q.secret, from).await {
        Ok(outcome) => outcome_response(&room, outcome),
        Err(e) => error_response(e),
    }
}

/// 201 with a token (200 for a registrant's own fetch or a phone registered before), or 202
/// while the host has not decided.
fn outcome_response(room: &str, outcome: Outcome) -> Response {
    match outcome {
        Outcome::Admitted {
            registration: r,
            token,
            created,
        } => answer(
            if created {
                StatusCode::CREATED
            } else {
                StatusCode::OK
            },
            json!({
                "status": "approved",
                "registration_id": r.id,
                "viewer_id": r.viewer_id,
                "name": r.name,
                "token": token.token,
                "expires_ms": token.expires_ms,
                "invite_code": r.invite_code,
                "invite_link": registration::invite_link(room, &r),
                "link": registration::personal_link(room, &r),
                "existing": !created,
            }),
        ),
        Outcome::Pending {
            registration: r,
            created,
        } => answer(
            StatusCode::ACCEPTED,
            json!({
                "status": "pending",
                "registration_id": r.id,
                "secret": r.secret.expose(),
                "poll": poll_path(room, &r),
                "existing": !created,
            }),
        ),
    }
}

fn poll_path(room: &str, r: &Registration) -> String {
    format!(
        "/api/rooms/{room}/registrations/{}?secret={}",
        r.id,
        r.secret.expose()
    )
}
