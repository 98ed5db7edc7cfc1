//! The owner's side: answering the joins, messages, leaves and watches other nodes send for
//! this node's rooms, relaying the sessions' private frames back, and dropping the sessions
//! of nodes that stop answering.

use super::*;

/// Answers the viewer traffic other nodes send to this node's rooms, until `stop`.
pub async fn serve_owner(
    client: async_nats::Client,
    node_id: &str,
    hub: Arc<Hub>,
    stop: CancellationToken,
) -> Result<(), crate::cluster::ClusterError> {
    let mut inbox = client
        .subscribe(owner_subject(node_id))
        .await
        .map_err(|e| crate::cluster::ClusterError::jet_stream("subscribe to remote viewers", e))?;
    let serving: Arc<DashMap<String, HashSet<(String, SessionId)>>> = Arc::new(DashMap::new());
    let watches: Watches = Arc::new(DashMap::new());
    tokio::spawn(watch_serving_nodes(
        client.clone(),
        hub.clone(),
        serving.clone(),
        watches.clone(),
        stop.clone(),
    ));
    let queue = hub.config().outbound_queue;
    tokio::spawn(close_remote_sessions_on_interruption(
        client.clone(),
        hub.clone(),
        stop.clone(),
    ));
    tokio::spawn(async move {
        loop {
            let Some(msg) = crate::cluster::next_or_stop(&mut inbox, &stop).await else {
                break;
            };
            let req = match serde_json::from_slice::<ToOwner>(&msg.payload) {
                Ok(r) => r,
                Err(e) => {
                    tracing::error!(error = %e, "undecodable remote viewer message");
                    continue;
                }
            };
            match req {
                ToOwner::Join {
                    room,
                    session,
                    node,
                    req,
                } => {
                    let Some(reply_to) = msg.reply.clone() else {
                        continue;
                    };
                    let (client, hub, serving) = (client.clone(), hub.clone(), serving.clone());
                    tokio::spawn(async move {
                        let (sink, q) = SessionSink::new(queue);
                        tokio::spawn(relay(
                            client.clone(),
                            serving_subject(&node),
                            room.clone(),
                            session,
                            q,
                        ));
                        let answer = match hub.join_remote(&room, session, req, sink).await {
                            Ok(Ok(joined)) => JoinAnswer::Joined(joined),
                            Ok(Err(refusal)) => JoinAnswer::Refused(refusal),
                            Err(RoomsError::RoomNotFound(_)) => JoinAnswer::NotFound,
                            Err(RoomsError::NotOwned(OwnershipError::HeldBy { node, .. })) => {
                                JoinAnswer::OwnedBy(node)
                            }
                            Err(e) => JoinAnswer::Unavailable(crate::error_chain(&e)),
                        };
                        let joined = matches!(answer, JoinAnswer::Joined(_));
                        let mut body = serde_json::to_vec(&answer).expect("answers serialise");
                        if body.len() + 1024 > client.server_info().max_payload {
                            hub.leave_remote(&room, session).await;
                            body = serde_json::to_vec(&JoinAnswer::TooLarge).expect("serialises");
                        } else if joined {
                            serving.entry(node).or_default().insert((room, session));
                        }
                        if let Err(e) = client.publish(reply_to, body.into()).await {
                            tracing::debug!(error = %e, "could not answer a remote join");
                        }
                    });
                }
                // In order, as they came: a viewer's messages are applied in its order.
                ToOwner::Message { room, session, msg } => {
                    hub.viewer_message(&room, session, msg).await;
                }
                ToOwner::Leave { room, session } => {
                    for mut e in serving.iter_mut() {
                        e.value_mut().remove(&(room.clone(), session));
                    }
                    hub.leave_remote(&room, session).await;
                }
                ToOwner::Watch { room, id, node } => {
                    let Some(reply_to) = msg.reply.clone() else {
                        continue;
                    };
                    let (client, hub, watches) = (client.clone(), hub.clone(), watches.clone());
                    tokio::spawn(async move {
                        let answer = match hub.watch_until_gone(&room).await {
                            Ok(events) => {
                                let open = CancellationToken::new();
                                watches.insert(id.clone(), (node.clone(), open.clone()));
                                tokio::spawn(forward_watch(
                                    client.clone(),
                                    serving_subject(&node),
                                    id,
                                    events,
                                    open,
                                    watches,
                                ));
                                WatchAnswer::Watching
                            }
                            Err(RoomsError::RoomNotFound(_)) => WatchAnswer::NotFound,
                            Err(RoomsError::NotOwned(OwnershipError::HeldBy { node, .. })) => {
                                WatchAnswer::OwnedBy(node)
                            }
                            Err(e) => WatchAnswer::Unavailable(crate::error_chain(&e)),
                        };
                        let body = serde_json::to_vec(&answer).expect("answers serialise");
                        if let Err(e) = client.publish(reply_to, body.into()).await {
                            tracing::debug!(error = %e, "could not answer a remote watch");
                        }
                    });
                }
                ToOwner::Unwatch { id } => {
                    if let Some((_, (_, open))) = watches.remove(&id) {
                        open.cancel();
                    }
                }
            }
        }
    });
    Ok(())
}

/// Carries a remote session's private frames and its close to the node serving it.
async fn relay(
    client: async_nats::Client,
    subject: String,
    room: String,
    session: SessionId,
    mut q: SessionQueue,
) {
    let publish = |m: ToServing| {
        let body = serde_json::to_vec(&m).expect("frames serialise");
        client.publish(subject.clone(), body.into())
    };
    let frame = |f: Text| ToServing::Frame {
        room: room.clone(),
        session,
        frame: f.as_str().to_string(),
    };
    let close = |req: crate::rooms::CloseRequest| ToServing::Close {
        room: room.clone(),
        session,
        why: req.why,
        drain: req.drain,
    };
    loop {
        tokio::select! {
            biased;
            f = q.frames.recv() => match f {
                Some(f) => {
                    if publish(frame(f)).await.is_err() {
                        return;
                    }
                }
                // The room let go of the session: after closing it, if it did (the close and
                // the end of the queue can be seen together; the close must still go out).
                None => {
                    if let Some(req) = q.close.get() {
                        let _ = publish(close(req)).await;
                    }
                    return;
                }
            },
            req = q.close.wait() => {
                if req.drain {
                    while let Some(f) = q.frames.try_recv() {
                        let _ = publish(frame(f)).await;
                    }
                }
                let _ = publish(close(req)).await;
                return;
            }
        }
    }
}

/// Frames relayed to other nodes while this node's NATS connection was down are lost: the
/// sessions they were for are closed (the close itself is relayed once connected again), so
/// they reconnect and resume rather than wait for answers that will not come.
async fn close_remote_sessions_on_interruption(
    client: async_nats::Client,
    hub: Arc<Hub>,
    stop: CancellationToken,
) {
    let mut connects = client.statistics().connects.load(Ordering::Relaxed);
    while interrupted(&client, &mut connects, &stop).await.is_some() {
        hub.close_remote_sessions(Refusal::new(
            EndReason::RoomUnavailable,
            "the room's server lost contact with this server; reconnect",
        ));
    }
}

/// Open remote watches: id → (the watching node, cancelled when the watch closes).
type Watches = Arc<DashMap<String, (String, CancellationToken)>>;

/// Carries a watch's events to the node that asked, with a sign of life every `WATCH_ALIVE`,
/// until the room ends, the watcher lets go (`open` cancelled), or the room stops here.
async fn forward_watch(
    client: async_nats::Client,
    subject: String,
    id: String,
    mut events: tokio_stream::wrappers::ReceiverStream<WatchEvent>,
    open: CancellationToken,
    watches: Watches,
) {
    let publish = |m: ToServing| {
        let body = serde_json::to_vec(&m).expect("watch events serialise");
        client.publish(subject.clone(), body.into())
    };
    let mut alive = tokio::time::interval(WATCH_ALIVE);
    loop {
        tokio::select! {
            _ = open.cancelled() => break,
            _ = alive.tick() => {
                let _ = publish(ToServing::WatchAlive { id: id.clone() }).await;
            }
            e = events.next() => match e {
                Some(event) => {
                    let ended = matches!(event, WatchEvent::Ended);
                    let _ = publish(ToServing::Watched { id: id.clone(), event }).await;
                    if ended {
                        break;
                    }
                }
                None => {
                    let why = "the room moved to another server; watch it again".to_string();
                    let _ = publish(ToServing::WatchLost { id: id.clone(), why }).await;
                    break;
                }
            },
        }
    }
    watches.remove(&id);
}

/// Drops the sessions of a serving node that stopped answering (killed, partitioned): they
/// would otherwise count as online for ever.
async fn watch_serving_nodes(
    client: async_nats::Client,
    hub: Arc<Hub>,
    serving: Arc<DashMap<String, HashSet<(String, SessionId)>>>,
    watches: Watches,
    stop: CancellationToken,
) {
    let mut missed: HashMap<String, u32> = HashMap::new();
    let ping = serde_json::to_vec(&ToServing::Ping).expect("serialises");
    loop {
        tokio::select! {
            _ = stop.cancelled() => return,
            _ = tokio::time::sleep(CHECK_EVERY) => {}
        }
        serving.retain(|_, sessions| !sessions.is_empty());
        let mut nodes: Vec<String> = serving.iter().map(|e| e.key().clone()).collect();
        nodes.extend(watches.iter().map(|e| e.value().0.clone()));
        nodes.sort();
        nodes.dedup();
        missed.retain(|n, _| nodes.contains(n));
        // All asked at once: a silent node must not delay the others' checks.
        let answers = futures_util::future::join_all(nodes.into_iter().map(|node| {
            let asked = client.request(serving_subject(&node), ping.clone().into());
            async move {
                let answered = matches!(tokio::time::timeout(CHECK_EVERY, asked).await, Ok(Ok(_)));
                (node, answered)
            }
        }))
        .await;
        for (node, answered) in answers {
            let n = missed.entry(node.clone()).or_default();
            *n = if answered { 0 } else { *n + 1 };
            if *n >= MISSED_PINGS {
                tracing::warn!(%node, "a node serving viewers of our rooms stopped answering; its sessions leave");
                missed.remove(&node);
                let unanswered = Refusal::new(
                    EndReason::RoomUnavailable,
                    "the room's server lost contact with this server; reconnect",
                );
                if let Some((_, sessions)) = serving.remove(&node) {
                    for (room, session) in sessions {
                        hub.drop_remote(&room, session, unanswered.clone()).await;
                    }
                }
                watches.retain(|_, (n, open)| {
                    if *n == node {
                        open.cancel();
                    }
                    *n != node
                });
            }
        }
    }
}
