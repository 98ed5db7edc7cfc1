//! Chat: rate limits and floods, mutes, banned-word masking, deletion, announcements, likes.

use super::validate::check_text;
use super::{Output, Room};
use crate::model::*;
use crate::room::event::RoomEvent;

/// Chat messages kept in memory for the welcome snapshot.
const RECENT_CHAT: usize = 30;
/// Chat ids remembered for DeleteMessage.
const DELETABLE_CHAT: usize = 10_000;
/// Rate-limited messages per minute after which a viewer is closed for flooding.
const FLOOD_STRIKES: u32 = 30;

/// Masks every banned word (case-insensitive) with asterisks of the same length.
pub fn mask_banned(text: &str, banned: &[String]) -> String {
    if banned.is_empty() {
        return text.to_string();
    }
    let lower: Vec<char> = text.chars().flat_map(|c| c.to_lowercase()).collect();
    let orig: Vec<char> = text.chars().collect();
    // Lowercasing may change the length for a few scripts; fall back to the simple path.
    if lower.len() != orig.len() {
        let mut out = text.to_string();
        for w in banned {
            out = out.replace(w.as_str(), &"*".repeat(w.chars().count()));
        }
        return out;
    }
    let mut mask = vec![false; orig.len()];
    for w in banned {
        let w: Vec<char> = w.chars().flat_map(|c| c.to_lowercase()).collect();
        if w.is_empty() || w.len() > lower.len() {
            continue;
        }
        for i in 0..=(lower.len() - w.len()) {
            if lower[i..i + w.len()] == w[..] {
                mask[i..i + w.len()].iter_mut().for_each(|m| *m = true);
            }
        }
    }
    orig.iter()
        .zip(mask)
        .map(|(c, m)| if m { '*' } else { *c })
        .collect()
}

impl Room {
    /// Puts chat from the store (oldest first) back into the snapshot and the deletable set.
    pub fn restore_chat(&mut self, chat: Vec<ChatRecord>) {
        for m in chat {
            self.remember_chat(m);
        }
    }

    pub(super) fn remember_chat(&mut self, message: ChatRecord) {
        if self.deletable_chat.len() >= DELETABLE_CHAT {
            if let Some(old) = self.deletable_chat.pop_front() {
                self.deletable_set.remove(&old);
            }
        }
        self.deletable_chat.push_back(message.id.clone());
        self.deletable_set.insert(message.id.clone());
        if self.recent_chat.len() >= RECENT_CHAT {
            self.recent_chat.pop_front();
        }
        self.recent_chat.push_back(message);
    }

    /// Keeps only the last minute of chat times (host stats).
    pub(super) fn forget_old_chat_times(&mut self, now: i64) {
        while self.chat_minute.front().is_some_and(|t| now - t >= 60_000) {
            self.chat_minute.pop_front();
        }
    }

    pub(super) fn like(&mut self, count: u32) {
        self.likes += count as u64;
    }

    /// A viewer's chat message (its text already cleaned by the parser).
    pub(super) fn chat(
        &mut self,
        session: SessionId,
        text: String,
        now: i64,
        out: &mut Vec<Output>,
    ) -> Result<(), ProtocolError> {
        let viewer_id = self.sessions[&session].viewer_id.clone();
        if let Some(until) = self.mutes.get(&viewer_id).copied() {
            if until > now {
                return Err(ProtocolError::new(
                    "muted",
                    format!(
                        "you are muted for {} more seconds",
                        (until - now + 999) / 1000
                    ),
                ));
            }
            self.mutes.remove(&viewer_id);
        }
        let rate = self.record.chat_rate_limit;
        let window = rate.per_seconds as i64 * 1000;
        let vs = self.viewers.get_mut(&viewer_id).expect("session's viewer");
        while vs.chat_times.front().is_some_and(|t| now - t >= window) {
            vs.chat_times.pop_front();
        }
        if vs.chat_times.len() >= rate.messages as usize {
            if now - vs.flood_window_start > 60_000 {
                vs.flood_window_start = now;
                vs.flood_strikes = 0;
            }
            vs.flood_strikes += 1;
            let retry = window - (now - vs.chat_times.front().copied().unwrap_or(now));
            if vs.flood_strikes > FLOOD_STRIKES {
                out.push(Output::Close {
                    session,
                    why: Refusal::new(EndReason::Abuse, "chat flood"),
                });
            }
            return Err(ProtocolError::new(
                "rate_limited",
                format!(
                    "at most {} messages per {} s; retry in {} ms",
                    rate.messages, rate.per_seconds, retry
                ),
            ));
        }
        vs.chat_times.push_back(now);
        self.keyword_entries(session, &text, now, out);
        let s = &self.sessions[&session];
        let message = ChatRecord {
            id: format!("m{}.{}", self.epoch, self.seq + 1),
            seq: self.seq + 1,
            viewer_id,
            display_name: s.display_name.clone(),
            text: mask_banned(&text, &self.record.banned_words),
            at_ms: now,
            is_dealer: s.class != AudienceClass::Public,
        };
        self.broadcast(
            RoomEvent::Chat {
                message: message.clone(),
            },
            now,
            out,
        );
        self.forget_old_chat_times(now);
        self.chat_minute.push_back(now);
        self.remember_chat(message.clone());
        out.push(Output::Persist(StoreOp::AppendChat {
            room: self.record.id.clone(),
            chat: Box::new(message.clone()),
        }));
        out.push(Output::Watch(WatchEvent::Chat(Box::new(message))));
        Ok(())
    }

    pub(super) fn delete_message(
        &mut self,
        message_id: String,
        now: i64,
        out: &mut Vec<Output>,
    ) -> Result<HostReply, RoomError> {
        if !self.deletable_set.remove(&message_id) {
            return Err(RoomError::NotFound(format!(
                "message {message_id} not found in room {} (or deleted already)",
                self.record.id
            )));
        }
        self.recent_chat.retain(|m| m.id != message_id);
        out.push(Output::Persist(StoreOp::DeleteChat {
            room: self.record.id.clone(),
            message_id: message_id.clone(),
            at_ms: now,
        }));
        self.broadcast(
            RoomEvent::ChatDeleted {
                id: message_id.clone(),
            },
            now,
            out,
        );
        out.push(self.action("chat_deleted", "", message_id, now));
        Ok(HostReply::Done)
    }

    pub(super) fn announce(
        &mut self,
        text: String,
        now: i64,
        out: &mut Vec<Output>,
    ) -> Result<HostReply, RoomError> {
        check_text("text", text.trim(), 1, 1000)?;
        let text = text.trim().to_string();
        self.broadcast(RoomEvent::Announce { text: text.clone() }, now, out);
        out.push(self.action("announce", "", text, now));
        Ok(HostReply::Done)
    }
}
