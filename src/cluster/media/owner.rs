//! The owner's side of the media link: answering other nodes' media requests for the rooms
//! this node runs, publishing each room's media signals, keeping the table of the rooms'
//! origins (the nodes publishing their brands) and one publisher per brand across nodes.

use super::*;

impl MediaLink {
    pub(super) async fn answer(self: &Arc<Self>, req: Request) -> Answer {
        let room = match &req {
            // Any origin relays its own feeds, whether or not it runs the room.
            Request::Relay { .. } => return self.answer_here(req).await,
            Request::Attach { room, .. }
            | Request::Detach { room, .. }
            | Request::Sync { room, .. } => room.clone(),
        };
        // Only the room's node answers; it never forwards again.
        if !self.local.runs(&room) {
            return match self.local.locate(&room).await {
                Ok(()) => self.answer_here(req).await,
                Err(RoomsError::NotOwned(OwnershipError::HeldBy { node, .. })) => {
                    Answer::NotHere(Some(node))
                }
                Err(RoomsError::RoomNotFound(_)) => Answer::Attached(Err(Refusal::new(
                    EndReason::RoomUnavailable,
                    format!("room {room} does not exist"),
                ))),
                Err(_) => Answer::NotHere(None),
            };
        }
        self.answer_here(req).await
    }

    pub(super) async fn answer_here(self: &Arc<Self>, req: Request) -> Answer {
        match req {
            Request::Attach { room, node, media } => {
                let answer = self.local.attach_media(&room, media.clone()).await;
                if answer.is_ok() {
                    self.presenter_attached(&room, &media, &node).await;
                }
                Answer::Attached(answer)
            }
            Request::Detach { room, id } => {
                self.local.detach_media(&room, &id).await;
                self.media_detached(&room, &id);
                Answer::Detached
            }
            Request::Relay { room, sub } => Answer::Relayed(self.offer(&room, sub).await),
            Request::Sync {
                room,
                node,
                ids,
                relay,
                live,
                address,
            } => {
                let p = match self.publisher(&room).await {
                    Ok(p) => p,
                    Err(RoomsError::NotOwned(OwnershipError::HeldBy { node, .. })) => {
                        return Answer::NotHere(Some(node))
                    }
                    Err(e) => return Answer::Failed(crate::error_chain(&e)),
                };
                let (version, on_air, gone) = {
                    let mut st = p.state.lock();
                    st.last_sync = Instant::now();
                    let gone = ids
                        .into_iter()
                        .filter(|id| st.ended.contains(id) || !self.local.media_attached(&room, id))
                        .collect();
                    (st.version, st.on_air.clone(), gone)
                };
                self.origin_synced(&room, &node, live, address).await;
                let relay = match relay {
                    None => None,
                    Some(sub) => Some(self.offer(&room, sub).await),
                };
                let origins = self.origins_of(&room, &node);
                Answer::Synced(Synced {
                    epoch: p.epoch,
                    version,
                    on_air,
                    gone,
                    relay,
                    origins,
                })
            }
        }
    }

    pub(super) async fn offer(&self, room: &str, sub: SubKey) -> Offer {
        let (Some(media), Some(address)) = (self.media(), self.relay_address()) else {
            return Err("this node does not relay media (no relay address)".into());
        };
        let feeds = media
            .relay_offer(room, sub)
            .await
            .map_err(|e| e.to_string())?;
        Ok((address, feeds))
    }

    // ----- owner side: the room's origins -----

    /// `node` (perhaps this one) publishes `live` in a room this node runs: the room is told
    /// the union of every origin's brands when it changes.
    pub(super) async fn origin_synced(
        &self,
        room: &str,
        node: &str,
        live: BTreeSet<String>,
        address: Option<String>,
    ) {
        {
            let mut origins = self.origins.entry(room.to_string()).or_default();
            if live.is_empty() {
                origins.remove(node);
            } else {
                origins.insert(
                    node.to_string(),
                    Origin {
                        brands: live,
                        address,
                        seen: Instant::now(),
                    },
                );
            }
        }
        self.tell_live(room).await;
    }

    /// Tells a room this node runs which brands are live on any node, if that changed.
    pub(super) async fn tell_live(&self, room: &str) {
        let union: BTreeSet<String> = self
            .origins
            .get(room)
            .map(|o| {
                o.iter()
                    .filter(|(n, o)| **n == self.node_id || o.seen.elapsed() < ORIGIN_TTL)
                    .flat_map(|(_, o)| o.brands.iter().cloned())
                    .collect()
            })
            .unwrap_or_default();
        let changed = self.told_live.get(room).is_none_or(|t| *t != union);
        if changed && self.local.runs(room) {
            self.told_live.insert(room.to_string(), union.clone());
            self.local.set_live_feeds(room, union).await;
        }
    }

    /// The origins of a room this node runs, but `asker` and this node: (node, relay address).
    pub(super) fn origins_of(&self, room: &str, asker: &str) -> Vec<(String, String)> {
        self.origins
            .get(room)
            .map(|o| {
                o.iter()
                    .filter(|(n, o)| {
                        *n != asker && **n != self.node_id && o.seen.elapsed() < ORIGIN_TTL
                    })
                    .filter_map(|(n, o)| Some((n.clone(), o.address.clone()?)))
                    .collect()
            })
            .unwrap_or_default()
    }

    /// Origins that stopped syncing leave their rooms' live brands.
    pub(super) async fn sweep_origins(&self) {
        let mut every = tokio::time::interval(Duration::from_secs(1));
        loop {
            tokio::select! {
                _ = self.stop.cancelled() => return,
                _ = every.tick() => {}
            }
            // A room that left this node is told afresh if it comes back.
            self.told_live.retain(|room, _| self.local.runs(room));
            let mut stale = Vec::new();
            self.origins.retain(|room, o| {
                let before = o.len();
                o.retain(|n, o| *n == self.node_id || o.seen.elapsed() < ORIGIN_TTL);
                if o.len() != before {
                    stale.push(room.clone());
                }
                !o.is_empty()
            });
            for room in stale {
                self.tell_live(&room).await;
            }
        }
    }

    /// This node's own feeds of a room changed: the room hears of it (here if this node runs
    /// it, else at the next sync, made now).
    pub async fn own_feeds_changed(&self, room: &str) {
        if self.local.runs(room) {
            let live = self
                .media()
                .map(|m| m.local_brands(room))
                .unwrap_or_default();
            // The owner's own entry never expires: it is this node's present state.
            self.origin_synced(room, &self.node_id.clone(), live, None)
                .await;
        } else if let Some(p) = self.pokes.get(room) {
            p.notify_one();
        }
    }

    /// The room's signal publisher, started on first use: it follows the room's media
    /// signals here and publishes each, numbered, on the room's media subject.
    pub(super) async fn publisher(
        self: &Arc<Self>,
        room: &str,
    ) -> Result<Arc<Publisher>, RoomsError> {
        if let Some(p) = self.publishers.get(room) {
            if !p.stop.is_cancelled() {
                return Ok(p.clone());
            }
        }
        let mut signals = self.local.follow_media(room).await?;
        let on_air = match signals.next().await {
            Some(MediaSignal::OnAir(b)) => b,
            _ => {
                return Err(RoomsError::Unavailable(
                    room.to_string(),
                    "its media signals ended",
                ))
            }
        };
        let p = Arc::new(Publisher {
            epoch: rand::random(),
            state: Mutex::new(PublisherState {
                version: 0,
                on_air,
                ended: HashSet::new(),
                ended_order: Default::default(),
                last_sync: Instant::now(),
            }),
            stop: self.stop.child_token(),
        });
        self.publishers.insert(room.to_string(), p.clone());
        let (link, room, publisher) = (self.clone(), room.to_string(), p.clone());
        tokio::spawn(async move {
            link.publish_signals(&room, &publisher, signals).await;
            publisher.stop.cancel();
            link.publishers
                .remove_if(&room, |_, p| Arc::ptr_eq(p, &publisher));
        });
        Ok(p)
    }

    pub(super) async fn publish_signals(
        &self,
        room: &str,
        p: &Publisher,
        mut signals: BoxStream<'static, MediaSignal>,
    ) {
        let mut idle = tokio::time::interval(IDLE);
        idle.tick().await;
        loop {
            let signal = tokio::select! {
                _ = p.stop.cancelled() => return,
                _ = idle.tick() => {
                    if p.state.lock().last_sync.elapsed() >= IDLE {
                        return;
                    }
                    continue;
                }
                s = signals.next() => match s {
                    Some(s) => s,
                    None => return,
                },
            };
            let version = {
                let mut st = p.state.lock();
                st.version += 1;
                match &signal {
                    MediaSignal::OnAir(b) => st.on_air.clone_from(b),
                    MediaSignal::End { ids, .. } => {
                        for id in ids {
                            if st.ended.insert(id.clone()) {
                                st.ended_order.push_back(id.clone());
                            }
                        }
                        while st.ended_order.len() > ENDED_KEPT {
                            if let Some(old) = st.ended_order.pop_front() {
                                st.ended.remove(&old);
                            }
                        }
                    }
                }
                st.version
            };
            let body = serde_json::to_vec(&Published {
                epoch: p.epoch,
                version,
                signal,
            })
            .expect("signals serialise");
            if let Err(e) = self.client.publish(room_subject(room), body.into()).await {
                tracing::warn!(room, error = %e, "could not publish a media signal");
            }
        }
    }

    /// A media session was attached to a room this node runs, from `node`. A presenter
    /// replaces the brand's presenter on another node, as a newer publisher does on one node:
    /// the older one is ended, wherever it is.
    pub async fn presenter_attached(&self, room: &str, media: &MediaSession, node: &str) {
        let MediaRole::Presenter { brand_id } = &media.role else {
            return;
        };
        let old = self
            .presenters
            .entry(room.to_string())
            .or_default()
            .insert(brand_id.clone(), (media.id.clone(), node.to_string()));
        let Some((old_id, old_node)) = old else {
            return;
        };
        // On its own node a newer publisher replaces the older by itself.
        if old_node == node || old_id == media.id {
            return;
        }
        tracing::info!(room, brand = %brand_id, old = %old_id, %old_node, %node, "publisher replaced by one on another node");
        let why = Refusal::new(
            EndReason::Forbidden,
            "a newer publisher of this brand took over (on another server)",
        );
        if old_node == self.node_id {
            if let Some(m) = self.media() {
                m.end_session(&old_id, &why).await;
            }
            return;
        }
        // The older publisher's node takes an `End` from the room's media subject.
        let body = serde_json::to_vec(&Published {
            epoch: 0,
            version: 0,
            signal: MediaSignal::End {
                ids: vec![old_id],
                why,
            },
        })
        .expect("signals serialise");
        if let Err(e) = self.client.publish(room_subject(room), body.into()).await {
            tracing::warn!(room, error = %e, "could not end a replaced publisher");
        }
    }

    /// A media session left a room this node runs.
    pub fn media_detached(&self, room: &str, id: &str) {
        if let Some(mut p) = self.presenters.get_mut(room) {
            p.retain(|_, (s, _)| s != id);
        }
    }
}
