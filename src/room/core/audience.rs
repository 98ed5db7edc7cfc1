//! Who is in the room: joining, resuming, leaving, the welcome snapshot, heartbeats and token expiry.
//!
//! Per-session timed work (the audience-log heartbeat, the token's expiry) is kept in an
//! ordered set by due time, and `next_deadline` rounds its first entry up to a whole second:
//! the sessions that come due within a second share one wake-up, and nothing walks all
//! sessions to find the next one.

use super::{Output, Room, Session};
use crate::model::*;
use bytes::Bytes;
use serde_json::json;

/// Per-session work is done on this grid: a heartbeat or an expiry is at most this late.
const SESSION_CHECK_MS: i64 = 1000;

impl Room {
    /// Whether a (signature-checked) token may join or use the room's media: not once the
    /// room has ended, not with a token id that was kicked or revoked.
    pub fn admits(&self, jti: &str) -> Result<(), Refusal> {
        if self.record.state == RoomState::Ended {
            return Err(Refusal::new(EndReason::RoomEnded, "room ended"));
        }
        if self.kicked.contains_key(jti) {
            return Err(Refusal::new(
                EndReason::Revoked,
                "kicked: this token was revoked",
            ));
        }
        Ok(())
    }

    /// A viewer with a valid token joins. On success the welcome (or the resumed events)
    /// is among the outputs, before anything else for this session.
    pub fn join(
        &mut self,
        session: SessionId,
        req: JoinRequest,
        now: i64,
        out: &mut Vec<Output>,
    ) -> Result<AudienceClass, Refusal> {
        self.now = now;
        self.admits(&req.viewer.jti)?;
        if let Some(tier) = &req.viewer.token_tier {
            if self.record.tier_index(tier).is_none() {
                return Err(Refusal::new(
                    EndReason::Forbidden,
                    format!(
                        "the token names dealer tier {tier:?}, which room {} does not have \
                         (its tiers: {})",
                        self.record.id,
                        self.record.tiers.join(", ")
                    ),
                ));
            }
        }
        let v = req.viewer;
        let class = self.class_for(&v.viewer_id, v.token_tier.as_deref());
        let mut s = Session {
            viewer_id: v.viewer_id.clone(),
            display_name: v.display_name,
            inviter_id: v.inviter_id,
            token_tier: v.token_tier,
            jti: v.jti,
            expires_ms: v.expires_ms,
            class,
            joined_ms: now,
            last_heartbeat_ms: now,
            due_ms: 0,
            expiry_told: false,
            error_strikes: 0,
            strike_window_start: now,
            product_events: 0,
            product_window_start: now,
        };
        s.due_ms = self.session_due(&s);
        self.session_timers.insert((s.due_ms, session));
        // Counted before the welcome, so the viewer sees itself in `online`.
        self.viewers
            .entry(v.viewer_id)
            .or_default()
            .sessions
            .push(session);
        self.sessions.insert(session, s);
        self.peak_online = self.peak_online.max(self.online());
        let s = &self.sessions[&session];
        let resumed = req.resume.and_then(|r| {
            if r.replayed_by_node {
                // The serving node gives the events itself: only the count goes out here.
                self.resumable(&r)
                    .then(|| (Vec::new(), self.seq - r.last_seq))
            } else {
                self.replay(s, r.last_seq, r.epoch.as_deref())
                    .map(|frames| {
                        let n = frames.len() as u64;
                        (frames, n)
                    })
            }
        });
        match resumed {
            Some((frames, replayed)) => {
                out.push(Output::Send {
                    session,
                    frame: self.private(
                        "welcome",
                        json!({
                            "resumed": true,
                            "epoch": self.epoch,
                            "server_time_ms": now,
                            "replayed": replayed,
                            "you": self.you(s),
                        }),
                    ),
                });
                // The welcome carries the current seq; replayed frames are older. Clients
                // apply frames in arrival order.
                out.extend(
                    frames
                        .into_iter()
                        .map(|frame| Output::Send { session, frame }),
                );
            }
            None => out.push(Output::Send {
                session,
                frame: self.welcome(s, now),
            }),
        }
        out.push(self.audience_record(session, s, AudienceKind::Join, now));
        Ok(class)
    }

    pub(super) fn audience_record(
        &self,
        session: SessionId,
        s: &Session,
        kind: AudienceKind,
        now: i64,
    ) -> Output {
        Output::Persist(StoreOp::AppendAudience {
            room: self.record.id.clone(),
            record: Box::new(AudienceRecord {
                viewer_id: s.viewer_id.clone(),
                session: session.as_u64(),
                kind,
                inviter_id: s.inviter_id.clone(),
                tier: self.tier_name(s.class),
                at_ms: now,
            }),
        })
    }

    pub fn leave(&mut self, session: SessionId, now: i64, out: &mut Vec<Output>) {
        self.now = now;
        let Some(s) = self.sessions.remove(&session) else {
            return;
        };
        self.session_timers.remove(&(s.due_ms, session));
        *self.watch_time.entry(s.viewer_id.clone()).or_default() += (now - s.joined_ms).max(0);
        if let Some(vs) = self.viewers.get_mut(&s.viewer_id) {
            vs.sessions.retain(|id| *id != session);
            if vs.sessions.is_empty() {
                self.viewers.remove(&s.viewer_id);
            }
        }
        out.push(self.audience_record(session, &s, AudienceKind::Leave, now));
    }

    /// The open WebSocket sessions of a viewer.
    pub(super) fn sessions_of(&self, viewer_id: &str) -> Vec<SessionId> {
        self.viewers
            .get(viewer_id)
            .map(|v| v.sessions.clone())
            .unwrap_or_default()
    }

    /// Puts watch time from before a restart back, for watched-minutes draws.
    pub fn restore_watch_time(&mut self, watched: Vec<(String, i64)>) {
        self.watch_time.extend(watched);
    }

    /// How long a viewer has watched: closed sessions plus the longest open one.
    pub(super) fn watched_ms(&self, viewer_id: &str, now: i64) -> i64 {
        let open = self
            .viewers
            .get(viewer_id)
            .into_iter()
            .flat_map(|v| &v.sessions)
            .map(|id| now - self.sessions[id].joined_ms)
            .max()
            .unwrap_or(0);
        self.watch_time.get(viewer_id).copied().unwrap_or(0) + open
    }

    pub(super) fn you(&self, s: &Session) -> serde_json::Value {
        let tier = self.tier_name(s.class);
        json!({
            "viewer_id": s.viewer_id,
            "display_name": s.display_name,
            "role": if tier.is_some() { "dealer" } else { "viewer" },
            "tier": tier,
            "muted_until_ms": self.mutes.get(&s.viewer_id).copied(),
        })
    }

    pub(super) fn welcome(&self, s: &Session, now: i64) -> Bytes {
        let view = self.class_view(s.class);
        let shelf = self.shelf();
        let on_air = self
            .record
            .brand_on_air
            .as_ref()
            .and_then(|id| self.brands.iter().find(|b| &b.id == id));
        let r = &self.record;
        self.private(
            "welcome",
            json!({
                "resumed": false,
                "epoch": self.epoch,
                "server_time_ms": now,
                "room": {
                    "id": r.id,
                    "title": r.title,
                    "state": r.state.as_str(),
                    "scheduled_start_ms": r.scheduled_start_ms,
                    "currency": r.currency,
                    "chat_rate_limit": r.chat_rate_limit,
                },
                "brand_on_air": on_air,
                "program": {
                    "brand_id": self.record.brand_on_air,
                    "live": self.program().1,
                },
                "running_order": self.brands,
                "shelf": view.shelf(&shelf),
                "pinned_product": r.pinned_product,
                "online": self.online(),
                "likes": self.likes,
                "recent_chat": self.recent_chat.iter().map(|m| json!({
                    "id": m.id, "seq": m.seq, "viewer_id": m.viewer_id,
                    "display_name": m.display_name, "text": m.text, "is_dealer": m.is_dealer,
                    "at": m.at_ms,
                })).collect::<Vec<_>>(),
                "you": self.you(s),
                "sales": self.sales_view(view, now),
                "draws": self.open_draws_view(),
                "red_packets": self.red_packets_view(now),
            }),
        )
    }

    /// The frames after `last_seq`, if the history still has all of them. Sequence numbers
    /// mean something only within their epoch: without the client's epoch, or with another
    /// one (a restart, another owner), nothing is replayed and the client gets a snapshot.
    pub(super) fn replay(
        &self,
        s: &Session,
        last_seq: u64,
        epoch: Option<&str>,
    ) -> Option<Vec<Bytes>> {
        if !self.covers(last_seq, epoch) {
            return None;
        }
        Some(
            self.history
                .iter()
                .filter(|f| f.seq > last_seq)
                .map(|f| f.for_class(s.class).clone())
                .collect(),
        )
    }

    /// Whether the history still holds every event after `last_seq` of `epoch`.
    fn covers(&self, last_seq: u64, epoch: Option<&str>) -> bool {
        if epoch != Some(self.epoch.as_str()) || last_seq > self.seq {
            return false;
        }
        last_seq == self.seq
            || self
                .history
                .front()
                .is_some_and(|oldest| last_seq + 1 >= oldest.seq)
    }

    /// Whether a join with `r` resumes (rather than gets a snapshot): the events after its
    /// `last_seq` are still in the window, here or, as the room sees them, on the node that
    /// replays them itself.
    pub fn resumable(&self, r: &ResumeFrom) -> bool {
        self.covers(r.last_seq, r.epoch.as_deref())
    }

    /// `resume` on an open connection: the missed events, or a fresh welcome.
    pub(super) fn resume(
        &self,
        session: SessionId,
        last_seq: u64,
        epoch: Option<&str>,
        now: i64,
        out: &mut Vec<Output>,
    ) {
        let s = &self.sessions[&session];
        match self.replay(s, last_seq, epoch) {
            Some(frames) => out.extend(
                frames
                    .into_iter()
                    .map(|frame| Output::Send { session, frame }),
            ),
            None => out.push(Output::Send {
                session,
                frame: self.welcome(s, now),
            }),
        }
    }

    /// When `tick` next has work for this session: its heartbeat, or its token's expiry.
    pub(super) fn session_due(&self, s: &Session) -> i64 {
        let heartbeat = s.last_heartbeat_ms.saturating_add(self.heartbeat_ms);
        if s.expiry_told {
            heartbeat
        } else {
            heartbeat.min(s.expires_ms)
        }
    }

    /// The first session's due time, rounded up to the check grid.
    pub(super) fn next_session_deadline(&self) -> Option<i64> {
        let (due, _) = self.session_timers.first()?;
        let down = due.div_euclid(SESSION_CHECK_MS) * SESSION_CHECK_MS;
        Some(if down == *due {
            down
        } else {
            down.saturating_add(SESSION_CHECK_MS)
        })
    }

    /// Heartbeats and token expiries that came due.
    pub(super) fn sessions_tick(&mut self, now: i64, out: &mut Vec<Output>) {
        while let Some(&(due, session)) = self.session_timers.first() {
            if due > now {
                break;
            }
            self.session_timers.pop_first();
            let Some(s) = self.sessions.get(&session) else {
                continue;
            };
            if now - s.last_heartbeat_ms >= self.heartbeat_ms {
                out.push(self.audience_record(session, s, AudienceKind::Heartbeat, now));
                self.sessions
                    .get_mut(&session)
                    .expect("found above")
                    .last_heartbeat_ms = now;
            }
            let s = self.sessions.get_mut(&session).expect("found above");
            if !s.expiry_told && s.expires_ms <= now {
                // Told once: the owner closes the session and it leaves.
                s.expiry_told = true;
                out.push(Output::Close {
                    session,
                    why: Refusal::new(EndReason::Unauthenticated, "token expired"),
                });
            }
            let s = &self.sessions[&session];
            let due = self.session_due(s);
            self.sessions.get_mut(&session).expect("found above").due_ms = due;
            self.session_timers.insert((due, session));
        }
    }
}
