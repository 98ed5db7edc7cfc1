//! Room glue for red packets: dropping one with a split from the room's entropy, grabs, the end.

use super::commerce::{Due, PacketEntry};
use super::validate::{check_text, invalid};
use super::{Output, Room, Undo};
use crate::model::*;
use crate::room::commerce::number;
use crate::room::commerce::red_packet::{split, PacketOutcome, RedPacketState};
use crate::room::event::RoomEvent;
use serde_json::json;

/// Red packets a room may hold.
const MAX_PACKETS: usize = 10_000;

impl Room {
    /// The packets with shares left and not expired (welcome snapshot).
    pub(super) fn red_packets_view(&self, now: i64) -> Vec<serde_json::Value> {
        self.commerce
            .packets
            .values()
            .map(|p| &p.state)
            .filter(|p| !p.expired(now) && p.left() > 0)
            .map(|p| {
                let r = p.packet();
                json!({
                    "packet_id": r.id,
                    "count": r.count,
                    "left": p.left(),
                    "total_cents": r.total_cents,
                    "currency": self.record.currency,
                    "tiers": r.tiers,
                    "message": r.message,
                    "expires_ms": r.expires_ms,
                })
            })
            .collect()
    }

    #[allow(clippy::too_many_arguments)]
    pub(super) fn drop_red_packet(
        &mut self,
        total_cents: i64,
        count: u32,
        tiers: Vec<String>,
        message: String,
        duration_seconds: Option<u32>,
        now: i64,
        out: &mut Vec<Output>,
    ) -> Result<HostReply, RoomError> {
        self.require_live("red packets are dropped")?;
        if !(1..=10_000).contains(&count) {
            return Err(invalid(format!("count must be 1 to 10000 (got {count})")));
        }
        if !(1..=100_000_000).contains(&total_cents) {
            return Err(invalid(format!(
                "total_cents must be 1 to 100000000 (got {total_cents})"
            )));
        }
        if total_cents < count as i64 {
            return Err(invalid(format!(
                "total_cents ({total_cents}) must be at least count ({count}): every share is ≥ 1 cent"
            )));
        }
        for t in &tiers {
            self.check_tier(t)?;
        }
        let message = message.trim().to_string();
        check_text("message", &message, 0, 200)?;
        let duration = duration_seconds.filter(|d| *d != 0).unwrap_or(300);
        if !(10..=86_400).contains(&duration) {
            return Err(invalid(format!(
                "duration_seconds must be 10 to 86400 (got {duration})"
            )));
        }
        if self.commerce.packets.len() >= MAX_PACKETS {
            return Err(RoomError::FailedPrecondition(format!(
                "a room holds at most {MAX_PACKETS} red packets"
            )));
        }
        let amounts = split(total_cents, count, &mut *self.entropy);
        let id = self.next_id("r");
        let n = number(&id, 'r').expect("made here");
        let packet = RedPacket {
            id,
            total_cents,
            count,
            tiers,
            message,
            amounts,
            created_ms: now,
            expires_ms: now + duration as i64 * 1000,
            grabs: Vec::new(),
        };
        self.persist_room(out);
        out.push(Output::Persist(StoreOp::PutRedPacket {
            room: self.record.id.clone(),
            packet: Box::new(packet.clone()),
        }));
        self.broadcast(
            RoomEvent::RedPacketDropped {
                packet_id: packet.id.clone(),
                count,
                total_cents,
                currency: self.record.currency.clone(),
                tiers: packet.tiers.clone(),
                message: packet.message.clone(),
                expires_ms: packet.expires_ms,
            },
            now,
            out,
        );
        out.push(self.action("red_packet", "", packet.id.clone(), now));
        self.commerce
            .agenda
            .insert((packet.expires_ms, Due::PacketExpiry(n)));
        self.commerce.packets.insert(
            n,
            PacketEntry {
                state: RedPacketState::restore(packet.clone()),
                gone_announced: false,
            },
        );
        Ok(HostReply::RedPacket(Box::new(packet)))
    }

    pub(super) fn grab_red_packet(
        &mut self,
        session: SessionId,
        packet_id: &str,
        now: i64,
        out: &mut Vec<Output>,
    ) -> Result<(), ProtocolError> {
        let Some(n) = number(packet_id, 'r').filter(|n| self.commerce.packets.contains_key(n))
        else {
            return Err(ProtocolError::new(
                "unknown_packet",
                format!("red packet {packet_id} is not in this room"),
            ));
        };
        let tier = self.dealer_tier(session);
        let viewer_id = &self.sessions[&session].viewer_id;
        let entry = self.commerce.packets.get_mut(&n).expect("checked");
        let outcome = entry.state.grab(viewer_id, tier.as_deref(), now);
        let (index, amount, emptied) = match outcome {
            PacketOutcome::Won {
                index,
                amount_cents,
                emptied,
            } => (index, amount_cents, emptied),
            PacketOutcome::AlreadyGrabbed { amount_cents } => {
                return Err(ProtocolError::new(
                    "already_grabbed",
                    format!("you already opened red packet {packet_id} ({amount_cents} cents)"),
                ))
            }
            PacketOutcome::NotEligible => {
                return Err(ProtocolError::new(
                    "not_eligible",
                    format!(
                        "red packet {packet_id} is for dealers of the tiers {}",
                        entry.state.packet().tiers.join(", ")
                    ),
                ))
            }
            PacketOutcome::Expired => {
                return Err(ProtocolError::new(
                    "packet_expired",
                    format!("red packet {packet_id} has expired"),
                ))
            }
            PacketOutcome::Empty => {
                return Err(ProtocolError::new(
                    "packet_empty",
                    format!("red packet {packet_id} is all taken"),
                ))
            }
        };
        let grabbed = entry.state.grabbed();
        let expires_ms = entry.state.packet().expires_ms;
        if emptied {
            entry.gone_announced = true;
        }
        let viewer_id = viewer_id.clone();
        out.push(Output::Persist(StoreOp::GrabRedPacket {
            room: self.record.id.clone(),
            packet_id: packet_id.to_string(),
            viewer_id: viewer_id.clone(),
            index,
            amount_cents: amount,
            at_ms: now,
        }));
        let frame = self.private(
            "red_packet_result",
            json!({
                "packet_id": packet_id,
                "result": "won",
                "amount_cents": amount,
                "currency": self.record.currency,
            }),
        );
        out.push(Output::SendDurable {
            session,
            frame,
            undo: Some(Undo::RedPacketGrab {
                packet_id: packet_id.to_string(),
                viewer_id,
                index,
            }),
        });
        if emptied {
            self.commerce
                .agenda
                .remove(&(expires_ms, Due::PacketExpiry(n)));
            self.broadcast(
                RoomEvent::RedPacketGone {
                    packet_id: packet_id.to_string(),
                    reason: "empty".into(),
                    grabbed,
                },
                now,
                out,
            );
        }
        Ok(())
    }

    pub(super) fn announce_packet_expired(&mut self, n: u64, now: i64, out: &mut Vec<Output>) {
        let Some(p) = self.commerce.packets.get_mut(&n) else {
            return;
        };
        if p.gone_announced || !p.state.expired(now) {
            return;
        }
        p.gone_announced = true;
        let event = RoomEvent::RedPacketGone {
            packet_id: p.state.id().to_string(),
            reason: "expired".into(),
            grabbed: p.state.grabbed(),
        };
        self.broadcast(event, now, out);
    }
}
