//! Moderation: mutes, kicks and revoked tokens.

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

    /// Ends WebSocket sessions with a `kicked` frame first, for `reason`.
    pub(super) fn end_for(&self, sessions: &[SessionId], reason: &str, out: &mut Vec<Output>) {
        for &session in sessions {
            let frame = self.private("kicked", json!({ "reason": reason }));
            out.push(Output::Send { session, frame });
            out.push(Output::Close {
                session,
                why: Refusal::new(EndReason::Revoked, reason),
            });
        }
    }

    /// Ends every session of an identity and refuses every token it used from then on.
    pub(super) fn kick(
        &mut self,
        viewer_id: String,
        reason: String,
        now: i64,
        out: &mut Vec<Output>,
    ) -> Result<HostReply, RoomError> {
        check_text("reason", &reason, 0, 200)?;
        let sessions = self.sessions_of(&viewer_id);
        if sessions.is_empty() {
            return Err(RoomError::NotFound(format!(
                "viewer {viewer_id} is not connected to room {}",
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
            .collect();
        for (jti, expires_ms) in tokens {
            self.refuse_token(&jti, expires_ms, out);
        }
        self.end_for(&sessions, &reason, out);
        out.push(self.action("kicked", &viewer_id, reason, now));
        Ok(HostReply::Done)
    }

    /// Refuses one token from then on and ends every session that uses it, whether or not
    /// one is open.
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
        // A token's expiry is known only from a session that used it; otherwise it is
        // refused for the longest lifetime a token can have.
        let expires_ms = sessions
            .first()
            .map(|id| self.sessions[id].expires_ms)
            .unwrap_or(now + MAX_TOKEN_TTL_MS);
        self.refuse_token(&jti, expires_ms, out);
        self.end_for(&sessions, &reason, out);
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
