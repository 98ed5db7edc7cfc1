//! Janus VideoRoom (`benches/peers/janus`) as a [`MediaServer`]: the same publisher and
//! subscribers as Showfloor, signalled over Janus's HTTP REST API.
//!
//! One Janus session for the whole run and a handle per peer. Requests carry a transaction;
//! synchronous plugin requests (`create`, `destroy`) answer in the POST's response, the others
//! (`join`, `configure`, `start`) answer `ack` and their result — with the SDP — arrives later
//! as an event on the session's long poll, which one task reads and routes by transaction.
//! Janus runs half-trickle (its candidates are in its SDP) and our offers and answers are sent
//! after gathering with `"trickle": false`, so no candidate is ever trickled either way.

use crate::http_client;
use crate::media::MediaServer;
use crate::rtc::{Publisher, Stream, Subscriber, Window};
use crate::Clock;
use anyhow::Context;
use serde_json::{json, Value};
use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::oneshot;

const VIDEOROOM: &str = "janus.plugin.videoroom";
/// Janus's session timeout is 60 s by default; a keepalive well within it.
const KEEPALIVE: Duration = Duration::from_secs(20);
/// Janus answers a long poll after 30 s without events; the request may take a little longer.
const LONG_POLL: Duration = Duration::from_secs(45);
/// Events per long-poll answer.
const MAX_EVENTS: usize = 64;
/// How long an asynchronous request's event may take.
const EVENT_WITHIN: Duration = Duration::from_secs(20);
/// Long polls that may fail in a row (a connection reset) before the session counts as lost.
const POLL_RETRIES: u32 = 5;
/// Publishers a room takes (a switchover-like run has one per brand; `media` has one).
const ROOM_PUBLISHERS: u32 = 16;
/// The room's bitrate cap, which Janus sends publishers as REMB: far above any test stream.
const ROOM_BITRATE: u64 = 100_000_000;

/// Janus's reason for refusing a request: a core error (`"janus":"error"`) or the plugin's
/// (`error_code` in its data).
fn refusal(reply: &Value) -> Option<String> {
    if reply["janus"] == "error" {
        let e = &reply["error"];
        return Some(format!("Janus error {}: {}", e["code"], text(&e["reason"])));
    }
    let data = &reply["plugindata"]["data"];
    if !data["error_code"].is_null() {
        return Some(format!(
            "VideoRoom error {}: {}",
            data["error_code"],
            text(&data["error"])
        ));
    }
    None
}

fn text(v: &Value) -> String {
    v.as_str().map_or_else(|| v.to_string(), str::to_string)
}

/// The events of a long-poll answer: an array with `maxev`, a lone keepalive after a quiet
/// spell.
fn events(answer: Value) -> Vec<Value> {
    match answer {
        Value::Array(events) => events,
        Value::Null => Vec::new(),
        one => vec![one],
    }
}

/// The SDP of an event's `jsep` of the given type.
fn sdp_of(event: &Value, kind: &str) -> anyhow::Result<String> {
    let jsep = &event["jsep"];
    anyhow::ensure!(
        jsep["type"] == kind,
        "Janus sent no SDP {kind}: {}",
        event["plugindata"]["data"]
    );
    jsep["sdp"]
        .as_str()
        .map(str::to_string)
        .ok_or_else(|| anyhow::anyhow!("Janus's {kind} has no SDP"))
}

/// A complete local description (ICE gathered), so Janus expects no trickle.
fn jsep(kind: &str, sdp: String) -> Value {
    json!({"type": kind, "sdp": sdp, "trickle": false})
}

/// One Janus session over HTTP and the routing of its events.
struct Session {
    /// The API root, e.g. `http://127.0.0.1:8088/janus`.
    url: String,
    id: u64,
    next_transaction: AtomicU64,
    /// Asynchronous requests waiting for their event, by transaction.
    waiting: parking_lot::Mutex<HashMap<String, oneshot::Sender<Value>>>,
}

impl Session {
    async fn post(&self, path: &str, body: &Value) -> anyhow::Result<Value> {
        let url = format!("{}{path}", self.url);
        let reply: Value = http_client()
            .post(&url)
            .json(body)
            .send()
            .await
            .with_context(|| format!("POST {url}"))?
            .error_for_status()
            .with_context(|| format!("POST {url}"))?
            .json()
            .await
            .with_context(|| format!("POST {url}: not JSON"))?;
        if let Some(e) = refusal(&reply) {
            let what = body["body"]["request"].as_str().unwrap_or_default();
            anyhow::bail!("{} {what}: {e}", text(&body["janus"]));
        }
        Ok(reply)
    }

    async fn create(url: &str) -> anyhow::Result<Session> {
        let mut s = Session {
            url: url.trim_end_matches('/').to_string(),
            id: 0,
            next_transaction: AtomicU64::new(0),
            waiting: Default::default(),
        };
        let reply = s
            .post("", &json!({"janus": "create", "transaction": "create"}))
            .await
            .with_context(|| format!("cannot open a Janus session at {url}"))?;
        s.id = reply["data"]["id"]
            .as_u64()
            .ok_or_else(|| anyhow::anyhow!("Janus gave no session id: {reply}"))?;
        Ok(s)
    }

    fn transaction(&self) -> String {
        format!(
            "lt{}",
            self.next_transaction.fetch_add(1, Ordering::Relaxed)
        )
    }

    /// A core request on the session (`attach`, `keepalive`, `destroy`).
    async fn request(&self, mut body: Value) -> anyhow::Result<Value> {
        body["transaction"] = self.transaction().into();
        self.post(&format!("/{}", self.id), &body).await
    }

    async fn attach(&self) -> anyhow::Result<u64> {
        let reply = self
            .request(json!({"janus": "attach", "plugin": VIDEOROOM}))
            .await?;
        reply["data"]["id"]
            .as_u64()
            .ok_or_else(|| anyhow::anyhow!("Janus gave no handle id: {reply}"))
    }

    async fn detach(&self, handle: u64) {
        let _ = self
            .post(
                &format!("/{}/{handle}", self.id),
                &json!({"janus": "detach", "transaction": self.transaction()}),
            )
            .await;
    }

    /// A VideoRoom request on `handle`: the reply of a synchronous request, or the event that
    /// answers an asynchronous one (with its `jsep`, if any).
    async fn message(
        &self,
        handle: u64,
        body: Value,
        jsep: Option<Value>,
    ) -> anyhow::Result<Value> {
        let transaction = self.transaction();
        let what = text(&body["request"]);
        let mut m = json!({"janus": "message", "transaction": transaction, "body": body});
        if let Some(j) = jsep {
            m["jsep"] = j;
        }
        // Waiting before posting: the event may come back before the POST's response does.
        let (tx, rx) = oneshot::channel();
        self.waiting.lock().insert(transaction.clone(), tx);
        let reply = self.post(&format!("/{}/{handle}", self.id), &m).await;
        let reply = match reply {
            Ok(r) if r["janus"] == "ack" => None,
            other => {
                self.waiting.lock().remove(&transaction);
                Some(other?)
            }
        };
        let event = match reply {
            Some(r) => r,
            None => match tokio::time::timeout(EVENT_WITHIN, rx).await {
                Ok(Ok(event)) => event,
                Ok(Err(_)) => anyhow::bail!("{what}: Janus's event stream ended"),
                Err(_) => {
                    self.waiting.lock().remove(&transaction);
                    anyhow::bail!("{what}: no answer from Janus within {EVENT_WITHIN:?}")
                }
            },
        };
        if let Some(e) = refusal(&event) {
            anyhow::bail!("{what}: {e}");
        }
        Ok(event)
    }

    /// Reads the session's events until Janus says the session is gone or stops answering,
    /// handing each answer to the request that waits for it. Ending drops every waiter.
    async fn poll(self: Arc<Session>) {
        let url = format!("{}/{}?maxev={MAX_EVENTS}", self.url, self.id);
        let mut failures = 0;
        loop {
            let answer = async {
                let r = http_client().get(&url).timeout(LONG_POLL).send().await?;
                r.error_for_status()?.json::<Value>().await
            }
            .await;
            let answer = match answer {
                Ok(a) => a,
                Err(e) if failures < POLL_RETRIES => {
                    failures += 1;
                    eprintln!("janus: long poll failed ({e}), retrying");
                    tokio::time::sleep(Duration::from_millis(200)).await;
                    continue;
                }
                Err(e) => {
                    eprintln!("janus: long poll failed {failures} times, the last: {e}");
                    break;
                }
            };
            failures = 0;
            for event in events(answer) {
                if event["janus"] == "error" {
                    eprintln!("janus: session {} lost: {}", self.id, event["error"]);
                    self.waiting.lock().clear();
                    return;
                }
                // Keepalives, webrtcup, media, slowlink and hangup need no answer: the
                // peers' own connection states tell whether media flows.
                let waiter = event["transaction"]
                    .as_str()
                    .and_then(|t| self.waiting.lock().remove(t));
                if let Some(w) = waiter {
                    let _ = w.send(event);
                }
            }
        }
        self.waiting.lock().clear();
    }

    async fn keep_alive(self: Arc<Session>) {
        loop {
            tokio::time::sleep(KEEPALIVE).await;
            if let Err(e) = self.request(json!({"janus": "keepalive"})).await {
                eprintln!("janus: keepalive: {e:#}");
            }
        }
    }
}

/// Janus VideoRoom: a room of its own, a handle per publisher and per subscriber.
pub struct Janus {
    session: Arc<Session>,
    /// The handle that created the room and destroys it.
    control: u64,
    room: u64,
    /// The publishers' feed ids, which every subscriber subscribes to.
    feeds: parking_lot::Mutex<Vec<u64>>,
    tasks: Vec<tokio::task::JoinHandle<()>>,
}

impl Janus {
    /// Opens a session at the Janus API root `url` (e.g. `http://127.0.0.1:8088/janus`) and
    /// creates a VP8 room for the run.
    pub async fn new(url: &str) -> anyhow::Result<Janus> {
        let session = Arc::new(Session::create(url).await?);
        let tasks = vec![
            tokio::spawn(session.clone().poll()),
            tokio::spawn(session.clone().keep_alive()),
        ];
        let mut janus = Janus {
            session,
            control: 0,
            room: 0,
            feeds: Default::default(),
            tasks,
        };
        janus.control = janus.session.attach().await.with_context(|| {
            format!("Janus at {url} has no VideoRoom plugin ({VIDEOROOM}) to attach to")
        })?;
        let reply = janus
            .session
            .message(
                janus.control,
                json!({
                    "request": "create",
                    "description": "showfloor-loadtest media",
                    "is_private": false,
                    "publishers": ROOM_PUBLISHERS,
                    "videocodec": "vp8",
                    "audiocodec": "opus",
                    "bitrate": ROOM_BITRATE,
                    "notify_joining": false,
                }),
                None,
            )
            .await?;
        janus.room = reply["plugindata"]["data"]["room"]
            .as_u64()
            .ok_or_else(|| anyhow::anyhow!("Janus created a room without an id: {reply}"))?;
        Ok(janus)
    }

    async fn start_publisher(
        &self,
        handle: u64,
        stream: Stream,
        clock: Clock,
        window: Arc<Window>,
    ) -> anyhow::Result<Publisher> {
        let joined = self
            .session
            .message(
                handle,
                json!({
                    "request": "join",
                    "ptype": "publisher",
                    "room": self.room,
                    "display": format!("loadtest-{}", stream.source),
                }),
                None,
            )
            .await?;
        let feed = joined["plugindata"]["data"]["id"]
            .as_u64()
            .ok_or_else(|| anyhow::anyhow!("Janus gave the publisher no feed id: {joined}"))?;
        let mut p = Publisher::new(stream).await?;
        // The publisher's offer has VP8 video only.
        let configured = self
            .session
            .message(
                handle,
                json!({"request": "configure", "audio": false, "video": true}),
                Some(jsep("offer", p.offer().await?)),
            )
            .await?;
        p.start(&sdp_of(&configured, "answer")?, clock, window)
            .await?;
        self.feeds.lock().push(feed);
        Ok(p)
    }

    async fn start_subscriber(
        &self,
        handle: u64,
        clock: Clock,
        window: Arc<Window>,
    ) -> anyhow::Result<Subscriber> {
        let streams: Vec<Value> = self
            .feeds
            .lock()
            .iter()
            .map(|feed| json!({ "feed": feed }))
            .collect();
        anyhow::ensure!(!streams.is_empty(), "no publisher to subscribe to");
        let attached = self
            .session
            .message(
                handle,
                json!({
                    "request": "join",
                    "ptype": "subscriber",
                    "room": self.room,
                    "streams": streams,
                }),
                None,
            )
            .await?;
        let mut s = Subscriber::new(clock, window).await?;
        let answer = s.answer(&sdp_of(&attached, "offer")?).await?;
        self.session
            .message(
                handle,
                json!({"request": "start"}),
                Some(jsep("answer", answer)),
            )
            .await?;
        s.connected().await?;
        s.resource = Some(handle.to_string());
        Ok(s)
    }
}

#[async_trait::async_trait]
impl MediaServer for Janus {
    fn name(&self) -> &'static str {
        "janus"
    }

    async fn publish(
        &self,
        mut stream: Stream,
        clock: Clock,
        window: Arc<Window>,
    ) -> anyhow::Result<Publisher> {
        stream.source = self.feeds.lock().len() as u8;
        let handle = self.session.attach().await?;
        let p = self.start_publisher(handle, stream, clock, window).await;
        if p.is_err() {
            self.session.detach(handle).await;
        }
        // One line with every cause: the search reports refusals with `{}`.
        p.map_err(|e| anyhow::anyhow!("Janus publisher: {e:#}"))
    }

    async fn subscribe(
        &self,
        index: usize,
        clock: Clock,
        window: Arc<Window>,
    ) -> anyhow::Result<Subscriber> {
        let handle = self.session.attach().await?;
        let s = self.start_subscriber(handle, clock, window).await;
        if s.is_err() {
            self.session.detach(handle).await;
        }
        s.map_err(|e| anyhow::anyhow!("Janus subscriber {index}: {e:#}"))
    }

    /// Detaching the handle hangs up its PeerConnection, as a leaving client's would.
    async fn unsubscribe(&self, s: Subscriber) {
        if let Some(handle) = s.resource.as_deref().and_then(|h| h.parse().ok()) {
            self.session.detach(handle).await;
        }
        s.close().await;
    }

    async fn finish(&self) {
        let destroyed = self
            .session
            .message(
                self.control,
                json!({"request": "destroy", "room": self.room}),
                None,
            )
            .await;
        if let Err(e) = destroyed {
            eprintln!("could not destroy Janus room {}: {e:#}", self.room);
        }
        // The long poll would only hear that the session is gone.
        for t in &self.tasks {
            t.abort();
        }
        // Ending the session detaches every handle and hangs up what is left.
        let _ = self.session.request(json!({"janus": "destroy"})).await;
    }
}

impl Drop for Janus {
    fn drop(&mut self) {
        for t in &self.tasks {
            t.abort();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refusals_carry_janus_reason() {
        let core = json!({"janus": "error", "error": {"code": 458, "reason": "No such session"}});
        assert_eq!(
            refusal(&core).as_deref(),
            Some("Janus error 458: No such session")
        );
        let plugin = json!({"janus": "event", "plugindata": {"plugin": VIDEOROOM,
            "data": {"videoroom": "event", "error_code": 426, "error": "No such room"}}});
        assert_eq!(
            refusal(&plugin).as_deref(),
            Some("VideoRoom error 426: No such room")
        );
        let fine = json!({"janus": "event", "plugindata": {"data": {"videoroom": "joined"}}});
        assert_eq!(refusal(&fine), None);
    }

    #[test]
    fn a_long_poll_answer_is_a_list_of_events() {
        assert_eq!(
            events(json!([{"janus": "event"}, {"janus": "webrtcup"}])).len(),
            2
        );
        assert_eq!(events(json!({"janus": "keepalive"})).len(), 1);
        assert!(events(Value::Null).is_empty());
    }

    #[test]
    fn the_sdp_must_be_of_the_expected_type() {
        let e = json!({"janus": "event", "jsep": {"type": "offer", "sdp": "v=0"}});
        assert_eq!(sdp_of(&e, "offer").unwrap(), "v=0");
        assert!(sdp_of(&e, "answer").is_err());
        assert!(sdp_of(&json!({"janus": "event"}), "offer").is_err());
    }
}
