//! The host's CSV download on the HTTP port: `GET /api/rooms/{room}/reports/{kind}.csv` with
//! `Authorization: Bearer <host API key>` (docs/reports.md), for a browser or a CRM job that
//! fetches a file. The same CSV as `ExportReport`.

use crate::auth::HostKeys;
use crate::report::ExportKind;
use crate::reports::{ReportError, Reports};
use axum::extract::{Path, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use std::sync::Arc;

#[derive(Clone)]
struct Download {
    reports: Arc<Reports>,
    keys: HostKeys,
}

pub fn router(reports: Arc<Reports>, keys: HostKeys) -> Router {
    Router::new()
        .route("/api/rooms/{room}/reports/{file}", get(download))
        .with_state(Download { reports, keys })
}

fn plain(status: StatusCode, message: String) -> Response {
    let mut r = (status, message).into_response();
    r.headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    r
}

async fn download(
    State(d): State<Download>,
    Path((room, file)): Path<(String, String)>,
    headers: HeaderMap,
) -> Response {
    let key = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "));
    if !key.is_some_and(|k| d.keys.check(k.trim())) {
        let mut r = plain(
            StatusCode::UNAUTHORIZED,
            "reports need `Authorization: Bearer <host API key>`\n".into(),
        );
        r.headers_mut()
            .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
        return r;
    }
    let Some(kind) = file.strip_suffix(".csv").and_then(ExportKind::parse) else {
        return plain(
            StatusCode::NOT_FOUND,
            "no such report: leads.csv, orders.csv, products.csv, segments.csv or referrals.csv\n"
                .into(),
        );
    };
    match d.reports.export(&room, kind).await {
        Ok(csv) => {
            let mut r = plain(StatusCode::OK, csv);
            let h = r.headers_mut();
            h.insert(
                header::CONTENT_TYPE,
                HeaderValue::from_static("text/csv; charset=utf-8"),
            );
            // Room ids are checked characters, but the header is built safely whatever they are.
            let name = format!("{room}-{}.csv", kind.as_str())
                .chars()
                .filter(|c| c.is_ascii_alphanumeric() || "-_.".contains(*c))
                .collect::<String>();
            if let Ok(v) = HeaderValue::from_str(&format!("attachment; filename=\"{name}\"")) {
                h.insert(header::CONTENT_DISPOSITION, v);
            }
            r
        }
        Err(e @ ReportError::NotFound(_)) => plain(StatusCode::NOT_FOUND, format!("{e}\n")),
        Err(e @ ReportError::Store(_)) => {
            tracing::error!(error = %e, "store failure in a report download");
            plain(
                StatusCode::SERVICE_UNAVAILABLE,
                "the store did not answer; try again\n".into(),
            )
        }
        Err(e) => plain(StatusCode::INTERNAL_SERVER_ERROR, format!("{e}\n")),
    }
}
