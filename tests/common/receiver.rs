//! A CRM's webhook endpoint for tests: an HTTP server on loopback that records every POST
//! and answers with the statuses it is told to (then 200).

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use parking_lot::Mutex;
use serde_json::Value;
use std::collections::VecDeque;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

/// One POST as the endpoint got it.
#[derive(Debug, Clone)]
pub struct Received {
    pub headers: HeaderMap,
    pub body: Bytes,
    /// What the endpoint answered.
    pub answered: u16,
}

impl Received {
    pub fn header(&self, name: &str) -> &str {
        self.headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_else(|| panic!("no {name} header"))
    }

    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.body).expect("a JSON body")
    }
}

#[derive(Default)]
struct Inner {
    got: Vec<Received>,
    answers: VecDeque<u16>,
}

#[derive(Clone)]
pub struct Receiver {
    pub addr: SocketAddr,
    inner: Arc<Mutex<Inner>>,
    task: Arc<tokio::task::JoinHandle<()>>,
}

async fn take(
    State(inner): State<Arc<Mutex<Inner>>>,
    headers: HeaderMap,
    body: Bytes,
) -> StatusCode {
    let mut i = inner.lock();
    let answered = i.answers.pop_front().unwrap_or(200);
    i.got.push(Received {
        headers,
        body,
        answered,
    });
    StatusCode::from_u16(answered).unwrap()
}

impl Receiver {
    /// Listening on a fresh loopback port (or `port`, when it is given: a receiver back
    /// where a down one was).
    pub async fn start_on(port: u16) -> Receiver {
        let inner = Arc::new(Mutex::new(Inner::default()));
        let app = axum::Router::new()
            .route("/hook", axum::routing::post(take))
            .with_state(inner.clone());
        let listener = tokio::net::TcpListener::bind(("127.0.0.1", port))
            .await
            .unwrap();
        let addr = listener.local_addr().unwrap();
        let task = tokio::spawn(async move {
            axum::serve(listener, app).await.unwrap();
        });
        Receiver {
            addr,
            inner,
            task: Arc::new(task),
        }
    }

    pub async fn start() -> Receiver {
        Receiver::start_on(0).await
    }

    pub fn url(&self) -> String {
        format!("http://{}/hook", self.addr)
    }

    /// The next POSTs are answered with these statuses, in order.
    pub fn answer(&self, codes: &[u16]) {
        self.inner.lock().answers.extend(codes);
    }

    pub fn got(&self) -> Vec<Received> {
        self.inner.lock().got.clone()
    }

    /// Waits (up to 20 s) until a POST for delivery `id` was answered with `code`.
    pub async fn wait_for(&self, id: &str, code: u16) -> Received {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
        loop {
            if let Some(r) = self.got().into_iter().find(|r| {
                r.headers.get("showfloor-delivery").is_some_and(|v| v == id) && r.answered == code
            }) {
                return r;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "no delivery {id} answered {code}; got {:?}",
                self.got()
                    .iter()
                    .map(|r| (r.headers.get("showfloor-delivery").cloned(), r.answered))
                    .collect::<Vec<_>>()
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Stops listening (its port refuses connections).
    pub fn stop(&self) {
        self.task.abort();
    }
}
