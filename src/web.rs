//! The browser pages: the viewer page (`/r/{room}`) and the host console (`/host`), served from
//! assets embedded in the binary, plus the control plane over grpc-web on the same origin.
//!
//! The assets are static and carry no room data at all — no price can leak through them
//! (invariant 1): the viewer page gets everything from its WebSocket, which the room already
//! renders per audience class, and the console gets everything from the control plane.

use crate::pb;
use axum::body::Body;
use axum::extract::Path;
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use prost::Message;
use serde_json::{json, Map, Value};
use sha2::{Digest, Sha256};
use std::sync::LazyLock;

/// Scripts, styles and media from this origin only; no inline code, no framing. Product
/// images may come from any HTTPS host (catalog `image_urls`); `connect-src 'self'` covers
/// the WebSocket, WHIP/WHEP and grpc-web, all on this origin. In a cluster the viewer page's
/// `connect-src` also names the other nodes (see [`NodeAddresses`]).
const CONTENT_SECURITY_POLICY: &str = "default-src 'none'; script-src 'self'; style-src 'self'; \
     img-src 'self' https: data:; media-src 'self' blob: mediastream:; connect-src 'self'; \
     base-uri 'none'; form-action 'none'; frame-ancestors 'none'";

/// Sent with every page and asset. `no-referrer`: the viewer link carries its token until the
/// page removes it, so it must never travel onwards in a `Referer`.
const SECURITY_HEADERS: [(&str, &str); 4] = [
    ("content-security-policy", CONTENT_SECURITY_POLICY),
    ("x-content-type-options", "nosniff"),
    ("referrer-policy", "no-referrer"),
    ("permissions-policy", "camera=(self), microphone=(self)"),
];

/// Where the cluster's nodes take browsers (`HOST:PORT`, as each advertises it with
/// `--advertise`), kept current; always empty on a single node. The viewer page may reconnect
/// to any of them: its CSP allows connecting to them and the page gets the list in a
/// `<meta name="showfloor-nodes">`. Nothing else is allowed, so a crafted link cannot send a
/// viewer's token to a host that is not a node.
pub type NodeAddresses = tokio::sync::watch::Receiver<Vec<String>>;

/// One embedded file as it is served.
struct Asset {
    name: &'static str,
    content_type: &'static str,
    body: bytes::Bytes,
    etag: HeaderValue,
}

macro_rules! embedded {
    ($name:literal, $content_type:expr) => {
        (
            $name,
            $content_type,
            include_bytes!(concat!(env!("CARGO_MANIFEST_DIR"), "/web/", $name)).as_slice(),
        )
    };
}

/// Everything under `web/`, and the protobuf schema the console's codec reads.
static ASSETS: LazyLock<Vec<Asset>> = LazyLock::new(|| {
    const HTML: &str = "text/html; charset=utf-8";
    const JS: &str = "text/javascript; charset=utf-8";
    let files: [(&str, &str, &[u8]); 13] = [
        embedded!("viewer.html", HTML),
        embedded!("host.html", HTML),
        embedded!("style.css", "text/css; charset=utf-8"),
        embedded!("common.js", JS),
        embedded!("viewer.js", JS),
        embedded!("viewer-commerce.js", JS),
        embedded!("viewer-register.js", JS),
        embedded!("host.js", JS),
        embedded!("host-panels.js", JS),
        embedded!("host-setup.js", JS),
        embedded!("host-report.js", JS),
        embedded!("grpc-web.js", JS),
        embedded!("protobuf.js", JS),
    ];
    let mut assets: Vec<Asset> = files
        .into_iter()
        .map(|(name, content_type, body)| asset(name, content_type, body.to_vec()))
        .collect();
    assets.push(asset(
        "schema.json",
        "application/json",
        control_schema().to_string().into_bytes(),
    ));
    assets
});

fn asset(name: &'static str, content_type: &'static str, body: Vec<u8>) -> Asset {
    let digest = Sha256::digest(&body);
    let etag = format!("\"{}\"", hex::encode(&digest[..12]));
    Asset {
        name,
        content_type,
        body: body.into(),
        etag: HeaderValue::from_str(&etag).expect("hex is a valid header value"),
    }
}

fn find(name: &str) -> Option<&'static Asset> {
    ASSETS.iter().find(|a| a.name == name)
}

/// The pages and their assets. `grpc_web` is the control service wrapped for grpc-web; it is
/// mounted at the service's own path so the console calls it on the same origin.
pub fn router<S>(grpc_web: S, nodes: NodeAddresses) -> Router
where
    S: tower::Service<
            axum::http::Request<Body>,
            Response = Response<tonic::body::Body>,
            Error = std::convert::Infallible,
        > + Clone
        + Send
        + Sync
        + 'static,
    S::Future: Send + 'static,
{
    Router::new()
        .route(
            "/r/{room}",
            get(move |h: HeaderMap| {
                let nodes = nodes.borrow().clone();
                async move { serve_viewer_page(&nodes, &h) }
            }),
        )
        .route(
            "/host",
            get(|h: HeaderMap| async move { serve("host.html", &h) }),
        )
        .route(
            "/assets/{name}",
            get(|Path(name): Path<String>, h: HeaderMap| async move { serve(&name, &h) }),
        )
        .route_service("/showfloor.v1.Control/{method}", grpc_web)
}

fn serve(name: &str, request: &HeaderMap) -> Response {
    let Some(asset) = find(name) else {
        return (StatusCode::NOT_FOUND, "no such asset\n").into_response();
    };
    serve_asset(asset, request)
}

/// The viewer page, naming the cluster's nodes (in its CSP and a `<meta>`) when there are
/// any. An address that is not plainly `HOST:PORT` is left out: it could break out of the
/// header or the attribute.
fn serve_viewer_page(nodes: &[String], request: &HeaderMap) -> Response {
    let nodes: Vec<&str> = nodes
        .iter()
        .map(String::as_str)
        .filter(|a| is_plain_address(a))
        .collect();
    if nodes.is_empty() {
        return serve("viewer.html", request);
    }
    let page = find("viewer.html").expect("the viewer page is embedded");
    let html = std::str::from_utf8(&page.body).expect("assets are UTF-8");
    let charset = "<meta charset=\"utf-8\">\n";
    let meta = format!(
        "{charset}<meta name=\"showfloor-nodes\" content=\"{}\">\n",
        nodes.join(",")
    );
    let page = asset(
        page.name,
        page.content_type,
        html.replacen(charset, &meta, 1).into_bytes(),
    );
    let sources: Vec<String> = nodes
        .iter()
        .map(|a| format!("http://{a} ws://{a}"))
        .collect();
    let policy = CONTENT_SECURITY_POLICY.replacen(
        "connect-src 'self'",
        &format!("connect-src 'self' {}", sources.join(" ")),
        1,
    );
    let mut response = serve_asset(&page, request);
    response.headers_mut().insert(
        "content-security-policy",
        HeaderValue::from_str(&policy).expect("plain addresses make a valid header"),
    );
    response
}

/// `HOST:PORT` of letters, digits, `.`, `-`, `:` and IPv6 brackets only.
fn is_plain_address(address: &str) -> bool {
    !address.is_empty()
        && address.len() <= 255
        && address.contains(':')
        && address
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b".-:[]".contains(&b))
}

fn serve_asset(asset: &Asset, request: &HeaderMap) -> Response {
    // `no-cache` keeps pages fresh after an upgrade; the ETag makes the revalidation a 304.
    let fresh = request
        .get(header::IF_NONE_MATCH)
        .is_some_and(|v| v.as_bytes() == asset.etag.as_bytes());
    let mut response = if fresh {
        StatusCode::NOT_MODIFIED.into_response()
    } else {
        Response::new(Body::from(asset.body.clone()))
    };
    let headers = response.headers_mut();
    headers.insert(header::ETAG, asset.etag.clone());
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    if !fresh {
        headers.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static(asset.content_type),
        );
    }
    for (name, value) in SECURITY_HEADERS {
        headers.insert(name, HeaderValue::from_static(value));
    }
    response
}

/// `showfloor.v1` messages and enums as the browser codec (`web/protobuf.js`) reads them,
/// taken from the same descriptor set the server is built from, so the two cannot disagree.
///
/// `{"messages": {"Room": [[name, number, kind, repeated, type, oneof], …]},
///   "enums": {"RoomState": {"0": "ROOM_STATE_UNSPECIFIED", …}},
///   "methods": {"WatchRoom": ["RoomRef", "WatchRoomEvent", true], …}}`; `kind` is the protobuf
/// scalar type name, `"message"` or `"enum"`; `type` names the message or enum; `oneof` is the
/// name of a real oneof, `"?"` for a proto3 `optional` field, or null.
pub fn control_schema() -> Value {
    use prost_types::field_descriptor_proto::{Label, Type};
    let set = prost_types::FileDescriptorSet::decode(pb::FILE_DESCRIPTOR_SET)
        .expect("the build embeds a valid descriptor set");
    let mut messages = Map::new();
    let mut enums = Map::new();
    let local = |type_name: &str| -> String {
        type_name
            .strip_prefix(".showfloor.v1.")
            .unwrap_or(type_name)
            .to_string()
    };
    let mut methods = Map::new();
    for file in set.file.iter().filter(|f| f.package() == "showfloor.v1") {
        for service in &file.service {
            for m in &service.method {
                methods.insert(
                    m.name().to_string(),
                    json!([
                        local(m.input_type()),
                        local(m.output_type()),
                        m.server_streaming()
                    ]),
                );
            }
        }
        for e in &file.enum_type {
            let values: Map<String, Value> = e
                .value
                .iter()
                .map(|v| (v.number().to_string(), json!(v.name())))
                .collect();
            enums.insert(e.name().to_string(), Value::Object(values));
        }
        for m in &file.message_type {
            let fields: Vec<Value> = m
                .field
                .iter()
                .map(|f| {
                    let kind = match f.r#type() {
                        Type::Message => "message".to_string(),
                        Type::Enum => "enum".to_string(),
                        t => t.as_str_name().trim_start_matches("TYPE_").to_lowercase(),
                    };
                    let oneof = match f.oneof_index {
                        Some(_) if f.proto3_optional() => json!("?"),
                        Some(i) => json!(m.oneof_decl[i as usize].name()),
                        None => Value::Null,
                    };
                    json!([
                        f.name(),
                        f.number(),
                        kind,
                        f.label() == Label::Repeated,
                        local(f.type_name()),
                        oneof
                    ])
                })
                .collect();
            messages.insert(m.name().to_string(), Value::Array(fields));
        }
    }
    json!({ "messages": messages, "enums": enums, "methods": methods })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_embedded_asset_opens_with_a_comment_and_holds_no_data() {
        for a in ASSETS.iter().filter(|a| a.name != "schema.json") {
            let text = std::str::from_utf8(&a.body).expect("assets are UTF-8");
            assert!(
                text.starts_with("<!doctype html>\n<!--")
                    || text.starts_with("//")
                    || text.starts_with("/*"),
                "{} must open with a one-line comment",
                a.name
            );
        }
    }

    #[test]
    fn the_schema_describes_the_console_messages() {
        let s = control_schema();
        let order = s["messages"]["Order"].as_array().expect("Order");
        assert!(order
            .iter()
            .any(|f| f[0] == "unit_price_cents" && f[1] == 10 && f[2] == "int64"));
        let event = s["messages"]["WatchRoomEvent"].as_array().expect("event");
        assert!(event.iter().all(|f| f[5] == "event" && f[2] == "message"));
        let add_brand = s["messages"]["AddBrandRequest"].as_array().expect("add");
        assert!(add_brand.iter().any(|f| f[0] == "position" && f[5] == "?"));
        assert_eq!(s["enums"]["OrderStatus"]["2"], "ORDER_STATUS_CONFIRMED");
        assert_eq!(
            s["methods"]["WatchRoom"],
            json!(["RoomRef", "WatchRoomEvent", true])
        );
    }

    #[test]
    fn the_viewer_page_names_the_cluster_nodes_in_its_policy_and_a_meta() {
        let nodes = [
            "10.0.0.1:7880".to_string(),
            "[fd00::2]:7880".to_string(),
            "evil\"><script>:1".to_string(),
            "a.example:1; script-src *".to_string(),
        ];
        let r = serve_viewer_page(&nodes, &HeaderMap::new());
        let policy = r.headers()[header::CONTENT_SECURITY_POLICY]
            .to_str()
            .unwrap()
            .to_string();
        assert!(policy.contains(
            "connect-src 'self' http://10.0.0.1:7880 ws://10.0.0.1:7880 \
             http://[fd00::2]:7880 ws://[fd00::2]:7880; "
        ));
        assert!(!policy.contains("evil") && !policy.contains("a.example"));
        assert_eq!(policy.matches("script-src").count(), 1);
        let page = find("viewer.html").unwrap();
        let served = serve_viewer_page(&nodes, &HeaderMap::new());
        assert_ne!(served.headers()[header::ETAG], page.etag);
        let single = serve_viewer_page(&[], &HeaderMap::new());
        assert_eq!(single.headers()[header::ETAG], page.etag);
        assert!(single.headers()[header::CONTENT_SECURITY_POLICY]
            .to_str()
            .unwrap()
            .contains("connect-src 'self'; "));
    }

    #[tokio::test]
    async fn the_meta_lists_only_plain_addresses() {
        let nodes = ["10.0.0.1:7880".to_string(), "x\"y:1".to_string()];
        let body = axum::body::to_bytes(
            serve_viewer_page(&nodes, &HeaderMap::new()).into_body(),
            usize::MAX,
        )
        .await
        .unwrap();
        let html = String::from_utf8(body.to_vec()).unwrap();
        assert!(html.contains(
            "<meta charset=\"utf-8\">\n<meta name=\"showfloor-nodes\" content=\"10.0.0.1:7880\">\n"
        ));
        assert!(!html.contains("x\"y"));
    }

    #[test]
    fn a_matching_etag_answers_not_modified_with_the_policy() {
        let first = serve("viewer.html", &HeaderMap::new());
        assert_eq!(first.status(), StatusCode::OK);
        let etag = first.headers()[header::ETAG].clone();
        assert!(first.headers()[header::CONTENT_SECURITY_POLICY]
            .to_str()
            .unwrap()
            .contains("script-src 'self'"));
        let mut again = HeaderMap::new();
        again.insert(header::IF_NONE_MATCH, etag);
        assert_eq!(
            serve("viewer.html", &again).status(),
            StatusCode::NOT_MODIFIED
        );
        assert_eq!(
            serve("../Cargo.toml", &HeaderMap::new()).status(),
            StatusCode::NOT_FOUND
        );
    }
}
