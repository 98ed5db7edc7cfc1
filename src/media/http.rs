//! WHIP (RFC 9725) and WHEP HTTP endpoints; `MediaError` becomes an HTTP status here, in
//! one place.

use super::{Media, MediaError};
use crate::model::EndReason;
use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, Path, Query, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::Router;
use serde::Deserialize;
use std::sync::Arc;

/// SDP offers are a few KiB; anything near this is not one.
const MAX_SDP_BYTES: usize = 64 * 1024;

pub fn router(media: Arc<Media>) -> Router {
    Router::new()
        .route("/whip/{room}/{brand}", post(whip_post))
        .route(
            "/whip/{room}/{brand}/{session}",
            axum::routing::delete(whip_delete).patch(whip_patch),
        )
        .route("/whep/{room}", post(whep_post).get(program))
        .route(
            "/whep/{room}/{session}",
            axum::routing::delete(whep_delete).patch(whep_patch),
        )
        .layer(DefaultBodyLimit::max(MAX_SDP_BYTES))
        .layer(axum::middleware::from_fn(cors))
        .with_state(media)
}

/// WHIP/WHEP clients are often pages on another origin: answer preflights and let them read
/// `Location`. Tokens travel in `Authorization`, never in cookies, so any origin may ask.
async fn cors(req: axum::extract::Request, next: axum::middleware::Next) -> Response {
    let preflight = req.method() == axum::http::Method::OPTIONS;
    let mut r = if preflight {
        StatusCode::NO_CONTENT.into_response()
    } else {
        next.run(req).await
    };
    let h = r.headers_mut();
    h.insert(
        header::ACCESS_CONTROL_ALLOW_ORIGIN,
        HeaderValue::from_static("*"),
    );
    h.insert(
        header::ACCESS_CONTROL_EXPOSE_HEADERS,
        HeaderValue::from_static("Location"),
    );
    if preflight {
        h.insert(
            header::ACCESS_CONTROL_ALLOW_METHODS,
            HeaderValue::from_static("GET, POST, PATCH, DELETE, OPTIONS"),
        );
        h.insert(
            header::ACCESS_CONTROL_ALLOW_HEADERS,
            HeaderValue::from_static("Authorization, Content-Type"),
        );
        h.insert(
            header::ACCESS_CONTROL_MAX_AGE,
            HeaderValue::from_static("600"),
        );
    }
    r
}

/// The longest `Retry-After` (seconds) a 503 asks for.
const RETRY_AFTER_MAX_S: u32 = 3;

/// The one place where a domain refusal becomes an HTTP status for WHIP/WHEP.
fn status_of_refusal(reason: EndReason) -> StatusCode {
    match reason {
        EndReason::Unauthenticated => StatusCode::UNAUTHORIZED,
        EndReason::Forbidden | EndReason::Revoked => StatusCode::FORBIDDEN,
        EndReason::RoomNotFound => StatusCode::NOT_FOUND,
        EndReason::RoomEnded => StatusCode::CONFLICT,
        EndReason::Protocol | EndReason::InvalidData | EndReason::BadRequest => {
            StatusCode::BAD_REQUEST
        }
        EndReason::MessageTooBig => StatusCode::PAYLOAD_TOO_LARGE,
        EndReason::Abuse => StatusCode::TOO_MANY_REQUESTS,
        EndReason::ShuttingDown
        | EndReason::IdleTimeout
        | EndReason::ServerFull
        | EndReason::RoomUnavailable
        | EndReason::SlowConsumer => StatusCode::SERVICE_UNAVAILABLE,
    }
}

impl IntoResponse for MediaError {
    fn into_response(self) -> Response {
        let status = match &self {
            MediaError::BadRequest(_) => StatusCode::BAD_REQUEST,
            MediaError::Unauthorized(_) => StatusCode::UNAUTHORIZED,
            MediaError::Forbidden(_) => StatusCode::FORBIDDEN,
            MediaError::NotFound(_) => StatusCode::NOT_FOUND,
            MediaError::Conflict(_) => StatusCode::CONFLICT,
            MediaError::Unavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
            MediaError::Refused(r) => status_of_refusal(r.reason),
            MediaError::Internal(m) => {
                tracing::error!(error = %m, "media request failed");
                StatusCode::INTERNAL_SERVER_ERROR
            }
        };
        let mut r = (status, format!("{self}\n")).into_response();
        if status == StatusCode::UNAUTHORIZED {
            r.headers_mut()
                .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
        }
        if status == StatusCode::SERVICE_UNAVAILABLE {
            // 1–3 s, spread: a room's viewers refused together do not all come back together.
            let after = rand::random_range(1..=RETRY_AFTER_MAX_S);
            r.headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(after));
        }
        r
    }
}

#[derive(Deserialize)]
pub struct TokenQuery {
    token: Option<String>,
}

/// `Authorization: Bearer …` (what WHIP/WHEP clients send), or `?token=` for pages.
fn bearer(headers: &HeaderMap, q: &TokenQuery) -> Result<String, MediaError> {
    if let Some(v) = headers.get(header::AUTHORIZATION) {
        let v = v
            .to_str()
            .map_err(|_| MediaError::Unauthorized("authorization header is not ASCII".into()))?;
        return v
            .strip_prefix("Bearer ")
            .map(|t| t.trim().to_string())
            .ok_or_else(|| {
                MediaError::Unauthorized("authorization must be `Bearer <token>`".into())
            });
    }
    q.token.clone().ok_or_else(|| {
        MediaError::Unauthorized("no token: send `Authorization: Bearer <token>`".into())
    })
}

fn content_type_is(headers: &HeaderMap, want: &str) -> bool {
    headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .is_some_and(|v| v.trim().eq_ignore_ascii_case(want))
}

fn sdp_body(headers: &HeaderMap, body: Bytes) -> Result<String, MediaError> {
    if !content_type_is(headers, "application/sdp") {
        return Err(MediaError::BadRequest(
            "the body must be an SDP offer with `Content-Type: application/sdp`".into(),
        ));
    }
    let s = String::from_utf8(body.to_vec())
        .map_err(|_| MediaError::BadRequest("the SDP offer is not UTF-8".into()))?;
    if !s.starts_with("v=0") {
        return Err(MediaError::BadRequest(
            "the body is not an SDP offer (it must start with `v=0`)".into(),
        ));
    }
    Ok(s)
}

fn created(location: String, sdp: String) -> Response {
    let mut r = (StatusCode::CREATED, sdp).into_response();
    let h = r.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/sdp"),
    );
    if let Ok(v) = HeaderValue::from_str(&location) {
        h.insert(header::LOCATION, v);
    }
    r
}

/// A WHIP/WHEP request for a room another node runs goes there (RFC 9725 §4.5: a `307`
/// keeps the method and the body), scheme-relative so the client keeps its scheme.
async fn elsewhere(media: &Media, room: &str, uri: &axum::http::Uri) -> Option<Response> {
    let home = media.rooms_seam().media_home(room).await?;
    let path = uri.path_and_query().map_or(uri.path(), |p| p.as_str());
    tracing::debug!(%room, %home, "media request redirected to the room's node");
    Some(
        (
            StatusCode::TEMPORARY_REDIRECT,
            [(axum::http::header::LOCATION, format!("//{home}{path}"))],
        )
            .into_response(),
    )
}

async fn whip_post(
    State(media): State<Arc<Media>>,
    Path((room, brand)): Path<(String, String)>,
    Query(q): Query<TokenQuery>,
    uri: axum::http::Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, MediaError> {
    if let Some(redirect) = elsewhere(&media, &room, &uri).await {
        return Ok(redirect);
    }
    let token = bearer(&headers, &q)?;
    let offer = sdp_body(&headers, body)?;
    let (session, sdp) = media.publish(&room, &brand, &token, offer).await?;
    Ok(created(format!("/whip/{room}/{brand}/{}", session.id), sdp))
}

async fn whep_post(
    State(media): State<Arc<Media>>,
    Path(room): Path<String>,
    Query(q): Query<TokenQuery>,
    uri: axum::http::Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, MediaError> {
    if let Some(redirect) = elsewhere(&media, &room, &uri).await {
        return Ok(redirect);
    }
    let token = bearer(&headers, &q)?;
    let offer = sdp_body(&headers, body)?;
    let (session, sdp) = media.subscribe(&room, &token, offer).await?;
    Ok(created(format!("/whep/{room}/{}", session.id), sdp))
}

/// The session behind a resource URL, if this room (and brand) owns it. Knowing the
/// unguessable URL is what authorises DELETE/PATCH (as in RFC 9725 §4.3).
fn find(
    media: &Media,
    room: &str,
    brand: Option<&str>,
    id: &str,
) -> Result<Arc<super::Session>, MediaError> {
    let s = media
        .session(id)
        .filter(|s| s.room == room && s.brand() == brand)
        .ok_or_else(|| MediaError::NotFound(format!("no media session {id} here")))?;
    Ok(s)
}

async fn whip_delete(
    State(media): State<Arc<Media>>,
    Path((room, brand, id)): Path<(String, String, String)>,
) -> Result<Response, MediaError> {
    find(&media, &room, Some(&brand), &id)?;
    media.close_session(&id).await;
    Ok(StatusCode::OK.into_response())
}

async fn whep_delete(
    State(media): State<Arc<Media>>,
    Path((room, id)): Path<(String, String)>,
) -> Result<Response, MediaError> {
    find(&media, &room, None, &id)?;
    media.close_session(&id).await;
    Ok(StatusCode::OK.into_response())
}

async fn whip_patch(
    State(media): State<Arc<Media>>,
    Path((room, brand, id)): Path<(String, String, String)>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, MediaError> {
    let s = find(&media, &room, Some(&brand), &id)?;
    patch(&media, &s, &headers, body).await
}

async fn whep_patch(
    State(media): State<Arc<Media>>,
    Path((room, id)): Path<(String, String)>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, MediaError> {
    let s = find(&media, &room, None, &id)?;
    patch(&media, &s, &headers, body).await
}

async fn patch(
    media: &Media,
    s: &super::Session,
    headers: &HeaderMap,
    body: Bytes,
) -> Result<Response, MediaError> {
    if !content_type_is(headers, "application/trickle-ice-sdpfrag") {
        return Err(MediaError::BadRequest(
            "PATCH takes `Content-Type: application/trickle-ice-sdpfrag`".into(),
        ));
    }
    let frag = String::from_utf8(body.to_vec())
        .map_err(|_| MediaError::BadRequest("the SDP fragment is not UTF-8".into()))?;
    match media.patch_ice(s, &frag).await? {
        Some(answer) => {
            let mut r = (StatusCode::OK, answer).into_response();
            r.headers_mut().insert(
                header::CONTENT_TYPE,
                HeaderValue::from_static("application/trickle-ice-sdpfrag"),
            );
            Ok(r)
        }
        None => Ok(StatusCode::NO_CONTENT.into_response()),
    }
}

/// `GET /whep/{room}`: the program state (brand on air, whether it has a live feed, whether
/// the room has ended).
async fn program(
    State(media): State<Arc<Media>>,
    Path(room): Path<String>,
) -> Result<Response, MediaError> {
    let state = media.program_state(&room).await?;
    Ok(axum::Json(state).into_response())
}
