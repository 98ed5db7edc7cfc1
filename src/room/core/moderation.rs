//! Moderation: mutes, kicks and revoked tokens, and the media sessions they must reach.
//!
//! The room knows each WHIP/WHEP session (`attach_media`), so that a kick, a revoked token
//! or the end of the room ends it like a WebSocket session: `Output::EndMedia` tells the
//! media layer which ones to close.

use super::validate::{check_text, invalid};
use super::{Output, Room};
use crate::model::*;
use serde_json::json;

/// The longest lifetime of a token the control plane issues (30 days).
const MAX_TOKEN_TTL_MS: i64 = 30 * 86_400_000;

impl Room {
    /// How many token ids are refused (kicked and not yet expired); changes when a kick
    /// happens, so other holders of the room's tokens (media) know to check theirs again.
    pub fn kicked_tokens(&self) -> usize {
        self.kicked.len()
    }

    /// A WHIP or WHEP session starts: refused like a join (room ended, token revoked);
    /// otherwise the room remembers it until `detach_media`.
    pub fn attach_media(&mut self, m: MediaSession, now: i64) -> Result<(), Refusal> {
        self.now = now;
        self.admits(&m.jti)?;
        self.media.insert(m.id.clone(), m);
        Ok(())
    }

    /// How many WHIP/WHEP sessions are attached.
    pub fn media_sessions(&self) -> usize {
        self.media.len()
    }

    /// A WHIP or WHEP session ended on its own (or was ended by `Output::EndMedia`).
    pub fn detach_media(&mut self, id: &str) {
        self.media.remove(id);
    }

    /// The media sessions that match, taken out of the room.
    pub(super) fn take_media(
        &mut self,
        matches: impl Fn(&MediaSession) -> bool,
    ) -> Vec<MediaSession> {
        let ids: Vec<String> = self
            .media
            .values()
            .filter(|m| matches(m))
            .map(|m| m.id.clone())
            .collect();
        ids.iter().filter_map(|id| self.media.remove(id)).collect()
    }

    /// Refuses a token id until the token expires, and writes it down.
    pub(super) fn refuse_token(&mut self, jti: &str, expires_ms: i64, out: &mut Vec<Output>) {
        let expires_ms = match self.kicked.get(jti) {
            Some(&known) if known >= expires_ms => return,
            Some(&known) => {
                self.kicked_expiries.remove(&(known, jti.to_string()));
                expires_ms
            }
            None => expires_ms,
        };
        self.kicked.insert(jti.to_string(), expires_ms);
        self.kicked_expiries.insert((expires_ms, jti.to_string()));
        out.push(Output::Persist(StoreOp::KickToken {
            room: self.record.id.clone(),
            jti: jti.to_string(),
            expires_ms,
        }));
    }

    /// Refused tokens that expired need no refusing any more.
    pub(super) fn forget_expired_kicks(&mut self, now: i64) {
        while let Some((exp, _)) = self.kicked_expiries.first() {
            if *exp > now {
                break;
            }
            let (_, jti) = self.kicked_expiries.pop_first().expect("checked");
            self.kicked.remove(&jti);
        }
    }

    /// Ends WebSocket sessions with a `kicked` frame first, and media sessions, for `reason`.
    pub(super) fn end_for(
        &self,
        sessions: &[SessionId],
        media: Vec<MediaSession>,
        reason: &str,
        out: &mut Vec<Output>,
    ) {
        for &session in sessions {
            let frame = self.private("kicked", json!({ "reason": reason }));
            out.push(Output::Send { session, frame });
            out.push(Output::Close {
                session,
                why: Refusal::new(EndReason::Revoked, reason),
            });
        }
        if !media.is_empty() {
            out.push(Output::EndMedia {
                ids: media.into_iter().map(|m| m.id).collect(),
                why: Refusal::new(EndReason::Revoked, reason),
            });
        }
    }

    /// Ends every session of an identity — WebSocket, WHIP, WHEP — and refuses every token
    /// it used from then on.
    pub(super) fn kick(
        &mut self,
        viewer_id: String,
        reason: String,
        now: i64,
        out: &mut Vec<Output>,
    ) -> Result<HostReply, RoomError> {
        check_text("reason", &reason, 0, 200)?;
        let sessions = self.sessions_of(&viewer_id);
        let media = self.take_media(|m| m.identity == viewer_id);
        if sessions.is_empty() && media.is_empty() {
            return Err(RoomError::NotFound(format!(
                "viewer {viewer_id} has no session in room {} (WebSocket, WHIP or WHEP)",
                self.record.id
            )));
        }
        let reason = if reason.is_empty() {
            "kicked".to_string()
        } else {
            format!("kicked: {reason}")
        };
        let tokens: Vec<(String, i64)> = sessions
            .iter()
            .map(|id| &self.sessions[id])
            .map(|s| (s.jti.clone(), s.expires_ms))
            .chain(media.iter().map(|m| (m.jti.clone(), m.expires_ms)))
            .collect();
        for (jti, expires_ms) in tokens {
            self.refuse_token(&jti, expires_ms, out);
        }
        self.end_for(&sessions, media, &reason, out);
        out.push(self.action("kicked", &viewer_id, reason, now));
        Ok(HostReply::Done)
    }

    /// Refuses one token from then on and ends every session — WebSocket, WHIP, WHEP —
    /// that uses it, whether or not one is open.
    pub(super) fn revoke_token(
        &mut self,
        jti: String,
        reason: String,
        now: i64,
        out: &mut Vec<Output>,
    ) -> Result<HostReply, RoomError> {
        check_text("reason", &reason, 0, 200)?;
        if jti.is_empty() || jti.len() > 128 {
            return Err(invalid("jti must be 1 to 128 characters"));
        }
        let reason = if reason.is_empty() {
            "kicked: this token was revoked".to_string()
        } else {
            format!("kicked: {reason}")
        };
        let sessions: Vec<SessionId> = self
            .sessions
            .iter()
            .filter(|(_, s)| s.jti == jti)
            .map(|(id, _)| *id)
            .collect();
        let media = self.take_media(|m| m.jti == jti);
        // A token's expiry is known only from a session that used it; otherwise it is
        // refused for the longest lifetime a token can have.
        let expires_ms = sessions
            .first()
            .map(|id| self.sessions[id].expires_ms)
            .or_else(|| media.first().map(|m| m.expires_ms))
            .unwrap_or(now + MAX_TOKEN_TTL_MS);
        self.refuse_token(&jti, expires_ms, out);
        self.end_for(&sessions, media, &reason, out);
        out.push(self.action("token_revoked", "", format!("{jti}: {reason}"), now));
        Ok(HostReply::Done)
    }

    pub(super) fn mute(
        &mut self,
        viewer_id: String,
        duration_seconds: u32,
        now: i64,
        out: &mut Vec<Output>,
    ) -> Result<HostReply, RoomError> {
        crate::auth::check_viewer_id(&viewer_id).map_err(invalid)?;
        if duration_seconds > 30 * 86_400 {
            return Err(invalid(
                "duration_seconds must be at most 30 days (2592000)",
            ));
        }
        let until = if duration_seconds == 0 {
            0
        } else {
            now + duration_seconds as i64 * 1000
        };
        if until == 0 {
            self.mutes.remove(&viewer_id);
        } else {
            self.mutes.insert(viewer_id.clone(), until);
        }
        out.push(Output::Persist(StoreOp::PutMute {
            room: self.record.id.clone(),
            viewer_id: viewer_id.clone(),
            until_ms: until,
        }));
        for session in self.sessions_of(&viewer_id) {
            let frame = if until == 0 {
                self.private("unmuted", json!({}))
            } else {
                self.private("muted", json!({ "until_ms": until }))
            };
            out.push(Output::Send { session, frame });
        }
        out.push(self.action(
            if until == 0 { "unmuted" } else { "muted" },
            &viewer_id,
            format!("{duration_seconds}s"),
            now,
        ));
        Ok(HostReply::Done)
    }
}
