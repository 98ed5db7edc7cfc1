//! Room leases in a JetStream KV bucket: one owner per room, a fencing token per tenure, and a loss signal that fires before anyone else can take the room.
//!
//! The bucket's `max_age` is the lease TTL (nats-server 2.9 has no per-key TTL): a key that is
//! not rewritten within the TTL disappears, and the room is free again. Taking a lease writes
//! the key only if it holds no live value (`update` expecting revision 0, or the revision of a
//! delete marker); renewing rewrites it expecting the revision we last wrote. The revision the
//! lease was *taken* at is the room's fencing token: revisions are the stream's sequence
//! numbers, so every later tenure of any room gets a greater one.
//!
//! The owner's view of the lease runs on its own monotonic clock. A renewal sent at `t` and
//! confirmed proves the key lives until at least `t + ttl` on the server (the server stamps it
//! later than `t`), so the owner holds the lease until `t + ttl - margin` and gives it up at
//! that instant if no later renewal was confirmed, or as soon as a renewal finds the key at a
//! revision it did not write. Either way [`Lease::lost`] fires and renewals stop for good.

use super::ClusterError;
use async_nats::jetstream::kv::{self, Operation, UpdateErrorKind};
use async_nats::jetstream::{stream, Context};
use bytes::Bytes;
use std::fmt;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::watch;
use tokio::task::JoinHandle;
use tokio::time::{sleep_until, timeout_at, Instant};
use tokio_util::sync::{CancellationToken, DropGuard};

/// The shortest TTL accepted: nats-server checks ages about every 250 ms at best, and the
/// renewal period (a third of the TTL) must stay well above a request's round trip.
pub const MIN_TTL: Duration = Duration::from_secs(1);

/// How often a contended acquisition re-reads the key before giving up: each round means the
/// key changed hands between our write and our read, which takes a release or an expiry.
const ACQUIRE_ATTEMPTS: u32 = 4;

/// The leases of one node in one bucket. Cheap to clone; every clone shares the connection.
#[derive(Clone)]
pub struct Leases {
    inner: Arc<Inner>,
}

struct Inner {
    kv: kv::Store,
    node_id: String,
    node_value: Bytes,
    ttl: Duration,
    /// Taken off the TTL for the owner's own deadline. It covers the server's wall clock being
    /// stepped forward (which expires keys early) and the time the owner needs to notice the
    /// loss and stop, so that it has stepped down before anyone else can take the room.
    margin: Duration,
    renew_every: Duration,
    /// After a renewal failed for a reason other than losing the key (no connection, timeout).
    retry_every: Duration,
    /// Test hook, see [`Leases::set_renewals_paused`].
    paused: watch::Sender<bool>,
}

/// The outcome of [`Leases::try_acquire`].
#[derive(Debug)]
pub enum Acquired {
    /// This node owns the room until the lease is lost, released or dropped.
    Owned(Lease),
    /// Another holder has the key: a node named `node`, at the key's current `revision` (its
    /// last renewal, not its token). This node's own earlier, lost lease is reported the same
    /// way until its key expires.
    HeldBy { node: String, revision: u64 },
}

/// Why a lease ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LossReason {
    /// A renewal found the key at a revision this lease did not write: the key was deleted or
    /// expired and someone (possibly another node) wrote it since.
    Superseded,
    /// No renewal was confirmed within `ttl - margin` of being sent, so the key may expire at
    /// any moment (NATS unreachable, a slow server, or this process was stopped).
    Unconfirmed,
    /// The lease was released or dropped by its owner.
    Released,
}

impl fmt::Display for LossReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            LossReason::Superseded => "superseded: the key was rewritten by someone else",
            LossReason::Unconfirmed => "unconfirmed: no renewal confirmed in time",
            LossReason::Released => "released",
        })
    }
}

/// One tenure of a room. Renewed in the background until lost, released or dropped.
pub struct Lease {
    room: String,
    token: u64,
    loss: watch::Receiver<Option<LossReason>>,
    /// Cancels the renewal task when the lease is dropped.
    stop: DropGuard,
    /// Yields the revision we last wrote if the lease was still ours when renewals stopped.
    renewal: JoinHandle<Option<u64>>,
    key: String,
    inner: Arc<Inner>,
}

/// The key of a node's advertised address (beside the rooms' leases; never a room's key).
fn node_key(node: &str) -> String {
    format!("node.{}", hex::encode(node))
}

/// The KV key a room's lease lives under.
///
/// Room ids Showfloor makes are `r` and ten lowercase letters or digits, but ids also arrive
/// from clients and KV keys allow only `[-/_=.a-zA-Z0-9]`, with `.` separating subject tokens.
/// Ids of letters, digits, `-` and `_` map to `room.<id>`; any other id is hex-encoded under
/// `room-hex.<hex>` (and the empty id to `room-empty`), so no two ids share a key.
pub fn lease_key(room: &str) -> String {
    if room.is_empty() {
        return "room-empty".to_string();
    }
    let plain = room
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
    if plain {
        format!("room.{room}")
    } else {
        format!("room-hex.{}", hex::encode(room.as_bytes()))
    }
}

impl Leases {
    /// Opens (creating if needed) the lease bucket with `max_age = ttl` and `history = 1`.
    ///
    /// Fails if the bucket exists with another `max_age`: nodes that disagree on the TTL would
    /// disagree on when a lease ends.
    pub async fn open(
        js: Context,
        bucket: &str,
        node_id: &str,
        ttl: Duration,
    ) -> Result<Leases, ClusterError> {
        if node_id.is_empty() || node_id.len() > 64 {
            return Err(ClusterError::InvalidSetting(format!(
                "node id {node_id:?} must be 1 to 64 bytes"
            )));
        }
        let bucket_ok = !bucket.is_empty()
            && bucket
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
        if !bucket_ok {
            return Err(ClusterError::InvalidSetting(format!(
                "bucket name {bucket:?} must be letters, digits, `-` and `_`"
            )));
        }
        if ttl < MIN_TTL {
            return Err(ClusterError::InvalidSetting(format!(
                "lease TTL {ttl:?} is below the minimum of {MIN_TTL:?}"
            )));
        }
        let kv = open_bucket(&js, bucket, ttl).await?;
        let (paused, _) = watch::channel(false);
        Ok(Leases {
            inner: Arc::new(Inner {
                kv,
                node_id: node_id.to_string(),
                node_value: Bytes::copy_from_slice(node_id.as_bytes()),
                ttl,
                margin: ttl / 5,
                renew_every: ttl / 3,
                retry_every: ttl / 10,
                paused,
            }),
        })
    }

    /// This node's id, the value written under every key it holds.
    pub fn node_id(&self) -> &str {
        &self.inner.node_id
    }

    /// The lease TTL (the bucket's `max_age`).
    pub fn ttl(&self) -> Duration {
        self.inner.ttl
    }

    /// Takes the room's lease if nobody holds it: its key is absent, expired, deleted or purged.
    pub async fn try_acquire(&self, room: &str) -> Result<Acquired, ClusterError> {
        let key = lease_key(room);
        let kv = &self.inner.kv;
        // Revision 0 expects no message at all under the key (never written, or expired).
        let mut expected = 0;
        for _ in 0..ACQUIRE_ATTEMPTS {
            let sent = Instant::now();
            match kv
                .update(&key, self.inner.node_value.clone(), expected)
                .await
            {
                Ok(revision) => {
                    return Ok(Acquired::Owned(self.start(room, key, revision, sent)));
                }
                Err(e) if e.kind() == UpdateErrorKind::WrongLastRevision => {}
                Err(e) => {
                    return Err(ClusterError::jet_stream(
                        format!("take the lease of room {room:?}"),
                        e,
                    ))
                }
            }
            // Someone wrote the key: a live holder, or a delete marker left by a release.
            // (async-nats's `create` does the same, but hides who holds the key.)
            let entry = kv.entry(key.as_str()).await.map_err(|e| {
                ClusterError::jet_stream(format!("read the lease of room {room:?}"), e)
            })?;
            match entry {
                None => expected = 0,
                Some(e) if matches!(e.operation, Operation::Delete | Operation::Purge) => {
                    expected = e.revision
                }
                Some(e) => {
                    return Ok(Acquired::HeldBy {
                        node: String::from_utf8_lossy(&e.value).into_owned(),
                        revision: e.revision,
                    })
                }
            }
        }
        Err(ClusterError::Contended {
            room: room.to_string(),
            attempts: ACQUIRE_ATTEMPTS,
        })
    }

    /// Who holds the room's lease now, and the key's current revision; `None` if it is free.
    pub async fn holder(&self, room: &str) -> Result<Option<(String, u64)>, ClusterError> {
        let entry =
            self.inner.kv.entry(lease_key(room)).await.map_err(|e| {
                ClusterError::jet_stream(format!("read the lease of room {room:?}"), e)
            })?;
        Ok(match entry {
            Some(e) if e.operation == Operation::Put => {
                Some((String::from_utf8_lossy(&e.value).into_owned(), e.revision))
            }
            _ => None,
        })
    }

    /// Publishes where clients reach this node (`HOST:PORT`) under `node.<hex id>` in the
    /// lease bucket, rewritten every TTL/3 until `stop`: like a lease, the entry expires
    /// with the bucket's `max_age` once the node is gone.
    pub fn advertise(&self, address: String, stop: tokio_util::sync::CancellationToken) {
        let (inner, key) = (self.inner.clone(), node_key(&self.inner.node_id));
        let every = self.inner.ttl / 3;
        tokio::spawn(async move {
            loop {
                if let Err(e) = inner
                    .kv
                    .put(key.clone(), Bytes::from(address.clone()))
                    .await
                {
                    tracing::debug!(error = %e, "could not advertise this node's address");
                }
                tokio::select! {
                    _ = stop.cancelled() => return,
                    _ = tokio::time::sleep(every) => {}
                }
            }
        });
    }

    /// Every address nodes advertise (see [`Leases::advertise`]), sorted, kept current until
    /// `stop`: a watch of the bucket's `node.*` keys. An address not rewritten for a TTL is
    /// dropped (an expired key sends no delete, it just goes). The browser pages use it: the
    /// viewer page may reconnect to any of them.
    pub fn advertised_addresses(
        &self,
        stop: tokio_util::sync::CancellationToken,
    ) -> watch::Receiver<Vec<String>> {
        use futures_util::StreamExt;
        let (tx, rx) = watch::channel(Vec::new());
        let (kv, ttl) = (self.inner.kv.clone(), self.inner.ttl);
        tokio::spawn(async move {
            // Node key → (address, when its last write was seen).
            let mut seen: std::collections::HashMap<String, (String, Instant)> =
                std::collections::HashMap::new();
            let mut prune = tokio::time::interval(ttl / 3);
            let mut again = false;
            'watch: loop {
                // A watch that failed or ended is made again, not at once.
                if again {
                    tokio::select! {
                        _ = stop.cancelled() => return,
                        _ = tokio::time::sleep(ttl / 3) => {}
                    }
                }
                again = true;
                let mut entries = match kv.watch_with_history("node.>").await {
                    Ok(entries) => entries,
                    Err(e) => {
                        tracing::debug!(error = %e, "cannot watch the nodes' addresses");
                        continue 'watch;
                    }
                };
                loop {
                    tokio::select! {
                        _ = stop.cancelled() => return,
                        entry = entries.next() => match entry {
                            Some(Ok(e)) if e.operation == Operation::Put => {
                                let address = String::from_utf8_lossy(&e.value).into_owned();
                                seen.insert(e.key, (address, Instant::now()));
                            }
                            Some(Ok(e)) => {
                                seen.remove(&e.key);
                            }
                            Some(Err(e)) => {
                                tracing::debug!(error = %e, "watching the nodes' addresses");
                                continue 'watch;
                            }
                            None => continue 'watch,
                        },
                        _ = prune.tick() => seen.retain(|_, (_, at)| at.elapsed() <= ttl),
                    }
                    let mut addresses: Vec<String> =
                        seen.values().map(|(a, _)| a.clone()).collect();
                    addresses.sort();
                    addresses.dedup();
                    tx.send_if_modified(|current| {
                        let changed = *current != addresses;
                        *current = addresses;
                        changed
                    });
                }
            }
        });
        rx
    }

    /// Where clients reach `node` (`HOST:PORT`), if it advertises an address and is alive.
    pub async fn address_of(&self, node: &str) -> Option<String> {
        match self.inner.kv.entry(node_key(node)).await {
            Ok(Some(e)) if e.operation == Operation::Put => {
                Some(String::from_utf8_lossy(&e.value).into_owned())
            }
            _ => None,
        }
    }

    /// Test hook: while paused, this node sends no renewals, as if it could not reach NATS or
    /// its process were stopped; deadlines keep running, so leases are lost as they would be.
    /// Resuming sends the renewals that fell due at once.
    #[doc(hidden)]
    pub fn set_renewals_paused(&self, paused: bool) {
        self.inner.paused.send_replace(paused);
    }

    fn start(&self, room: &str, key: String, revision: u64, sent: Instant) -> Lease {
        let (loss_tx, loss) = watch::channel(None);
        let stop = CancellationToken::new();
        let tenure = Tenure {
            room: room.to_string(),
            key: key.clone(),
            token: revision,
            revision,
            deadline: sent + self.inner.ttl - self.inner.margin,
            next: sent + self.inner.renew_every,
        };
        tracing::debug!(room, token = revision, "lease taken");
        // One task per lease rather than one loop renewing every lease of the node: each lease
        // has its own deadline that must fire on time, which a task gets from tokio's timer
        // wheel for a few hundred bytes, where one loop would need its own timer queue. KV has
        // no batched update, so one loop would save no requests either, and per-lease tasks
        // spread renewals over the period instead of sending thousands in one burst whose
        // queueing would eat into every lease's margin.
        let renewal = tokio::spawn(renew(self.inner.clone(), tenure, loss_tx, stop.clone()));
        Lease {
            room: room.to_string(),
            token: revision,
            loss,
            stop: stop.drop_guard(),
            renewal,
            key,
            inner: self.inner.clone(),
        }
    }
}

impl fmt::Debug for Leases {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Leases")
            .field("bucket", &self.inner.kv.name)
            .field("node_id", &self.inner.node_id)
            .field("ttl", &self.inner.ttl)
            .finish()
    }
}

impl Lease {
    /// The room this lease is for.
    pub fn room(&self) -> &str {
        &self.room
    }

    /// The fencing token: the revision the lease was taken at, the same for the whole tenure
    /// and greater than the token of any earlier tenure of any room in the bucket.
    pub fn token(&self) -> u64 {
        self.token
    }

    /// Resolves when the lease is lost (or released or dropped). The owner must stop acting
    /// for the room at once. Independent of `self`: hand it to the room's owner task.
    pub fn lost(&self) -> impl Future<Output = LossReason> + Send + 'static {
        let mut loss = self.loss.clone();
        async move {
            match loss.wait_for(Option::is_some).await {
                Ok(reason) => reason.unwrap_or(LossReason::Released),
                // The renewal task ended without a loss: the lease was released or dropped.
                Err(_) => LossReason::Released,
            }
        }
    }

    /// The reason the lease was lost, or `None` while it is held.
    pub fn loss(&self) -> Option<LossReason> {
        *self.loss.borrow()
    }

    /// Stops renewing and deletes the key if it is still ours (a revision-checked delete, so a
    /// key someone else holds now is left alone). Best effort: if the delete fails, the key
    /// expires after the TTL.
    pub async fn release(self) -> Result<(), ClusterError> {
        let Lease {
            room,
            stop,
            renewal,
            key,
            inner,
            token,
            ..
        } = self;
        // Let an in-flight renewal finish so we know the revision to delete at.
        stop.disarm().cancel();
        let Ok(Some(revision)) = renewal.await else {
            tracing::debug!(room, token, "lease already lost; nothing to release");
            return Ok(());
        };
        match inner.kv.delete_expect_revision(&key, Some(revision)).await {
            Ok(()) => {
                tracing::debug!(room, token, "lease released");
                Ok(())
            }
            Err(e) if e.kind() == UpdateErrorKind::WrongLastRevision => {
                tracing::debug!(room, token, "lease changed hands before release");
                Ok(())
            }
            Err(e) => Err(ClusterError::jet_stream(
                format!("release the lease of room {room:?}"),
                e,
            )),
        }
    }
}

impl fmt::Debug for Lease {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Lease")
            .field("room", &self.room)
            .field("token", &self.token)
            .field("loss", &self.loss())
            .finish()
    }
}

/// The renewal task's view of one tenure.
struct Tenure {
    room: String,
    key: String,
    token: u64,
    /// The revision we last wrote, expected by the next renewal.
    revision: u64,
    /// Until when the last confirmed write proves the key is ours.
    deadline: Instant,
    next: Instant,
}

/// Renews one lease until it is lost or stopped; returns the revision last written if the
/// lease was still held when stopped.
async fn renew(
    inner: Arc<Inner>,
    mut t: Tenure,
    loss: watch::Sender<Option<LossReason>>,
    stop: CancellationToken,
) -> Option<u64> {
    let mut paused = inner.paused.subscribe();
    loop {
        // `biased`: when the deadline and the next renewal are both due, the deadline wins,
        // so a process resumed after a stop gives up rather than renewing late.
        tokio::select! {
            biased;
            _ = stop.cancelled() => return Some(t.revision),
            _ = sleep_until(t.deadline) => return lose(&loss, &t, LossReason::Unconfirmed),
            _ = due(t.next, &mut paused) => {}
        }
        let sent = Instant::now();
        let attempt = inner
            .kv
            .update(&t.key, inner.node_value.clone(), t.revision);
        // Not cancelled by `stop`: `release` needs to know whether this write landed.
        match timeout_at(t.deadline, attempt).await {
            Err(_) => return lose(&loss, &t, LossReason::Unconfirmed),
            Ok(Ok(revision)) => {
                t.revision = revision;
                t.deadline = sent + inner.ttl - inner.margin;
                t.next = sent + inner.renew_every;
            }
            // Also what a renewal gets after an earlier one timed out yet landed: we cannot
            // tell that from someone else's write, so we give the lease up (safe; the key
            // expires and the room is taken again).
            Ok(Err(e)) if e.kind() == UpdateErrorKind::WrongLastRevision => {
                return lose(&loss, &t, LossReason::Superseded)
            }
            Ok(Err(e)) => {
                tracing::warn!(room = t.room, token = t.token, error = %e, "lease renewal failed; retrying");
                t.next = Instant::now() + inner.retry_every;
            }
        }
    }
}

/// Waits until `at`, then for renewals to be unpaused.
async fn due(at: Instant, paused: &mut watch::Receiver<bool>) {
    sleep_until(at).await;
    // An error means the sender is gone, which cannot happen while `Inner` lives.
    let _ = paused.wait_for(|p| !*p).await;
}

fn lose(loss: &watch::Sender<Option<LossReason>>, t: &Tenure, reason: LossReason) -> Option<u64> {
    tracing::warn!(room = t.room, token = t.token, %reason, "lease lost");
    loss.send_replace(Some(reason));
    None
}

async fn open_bucket(js: &Context, bucket: &str, ttl: Duration) -> Result<kv::Store, ClusterError> {
    // The stream a KV bucket is made of, as async-nats's `create_key_value` would make it. That
    // call cannot be used against nats-server 2.9: it first asks for the account's info, whose
    // 2.9 form lacks `reserved_memory` and `reserved_storage`, so async-nats 0.52 fails to
    // parse it and no bucket is ever created.
    let config = stream::Config {
        name: format!("KV_{bucket}"),
        description: Some("Showfloor room leases".to_string()),
        subjects: vec![format!("$KV.{bucket}.>")],
        max_messages_per_subject: 1,
        max_age: ttl,
        storage: stream::StorageType::File,
        num_replicas: 1,
        allow_rollup: true,
        deny_delete: true,
        deny_purge: false,
        allow_direct: true,
        discard: stream::DiscardPolicy::New,
        ..Default::default()
    };
    // Creating a stream that exists with the same configuration succeeds; with another it
    // fails, and the existing bucket tells us whether the difference matters.
    let created = js.create_stream(config).await;
    let store = js
        .get_key_value(bucket)
        .await
        .map_err(|get| match created {
            Err(create) => {
                ClusterError::jet_stream(format!("create the lease bucket {bucket:?}"), create)
            }
            Ok(_) => ClusterError::jet_stream(format!("open the lease bucket {bucket:?}"), get),
        })?;
    let found = store.stream.cached_info().config.max_age;
    if found != ttl {
        return Err(ClusterError::TtlMismatch {
            bucket: bucket.to_string(),
            found,
            expected: ttl,
        });
    }
    Ok(store)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_room_ids_are_readable_keys() {
        assert_eq!(lease_key("rab3k9mnpqr"), "room.rab3k9mnpqr");
        assert_eq!(lease_key("Fair_2026-spring"), "room.Fair_2026-spring");
    }

    #[test]
    fn other_ids_are_hex_encoded_into_valid_distinct_keys() {
        let ids = ["a.b", "a/b", "", "展会", "room.x", ".", "a b", "a*", "a>"];
        let keys: Vec<String> = ids.iter().map(|id| lease_key(id)).collect();
        for key in &keys {
            let valid = !key.starts_with('.')
                && !key.ends_with('.')
                && !key.contains("..")
                && key
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"-/_=.".contains(&b));
            assert!(valid, "{key:?} is not a valid KV key");
        }
        let mut unique = keys.clone();
        unique.sort();
        unique.dedup();
        assert_eq!(unique.len(), keys.len(), "two ids share a key: {keys:?}");
        assert_eq!(lease_key("a.b"), "room-hex.612e62");
    }
}
