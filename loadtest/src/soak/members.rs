//! The soak's WebSocket audience: each viewer or dealer is a task that stays in the room for
//! the whole run, reconnects with resume (`last_seq`, `epoch`) whenever its connection drops —
//! a server kill, or a leave of its own — and checks the room's sequence numbers: no gap within
//! an epoch, and across a restart an explicit fresh welcome with a new epoch.

use super::dealer::{Dealer, DealerReport};
use super::{Ctx, Phase};
use crate::{token, WsTx};
use futures_util::{SinkExt, StreamExt};
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::mpsc;
use tokio_tungstenite::tungstenite::Message;

/// How long a connection attempt (TCP, WebSocket handshake) may take.
const CONNECT_WITHIN: Duration = Duration::from_secs(10);
/// How long a connected viewer waits for its welcome.
const WELCOME_WITHIN: Duration = Duration::from_secs(30);
/// Pause between connection attempts while the server is down.
const RETRY_EVERY: Duration = Duration::from_millis(300);

/// Messages sent to viewers only for their own connection: they carry the seq of the latest
/// room event and take no number of their own (docs/protocol.md, "Common fields").
const PRIVATE: &[&str] = &[
    "welcome",
    "role_changed",
    "muted",
    "unmuted",
    "kicked",
    "dealer_application_received",
    "application_result",
    "pong",
    "order_placed",
    "order_status",
    "grab_result",
    "draw_entered",
    "draw_won",
    "red_packet_result",
    "error",
];

/// What the pacers ask a member to do.
#[derive(Debug)]
pub(super) enum Cmd {
    Chat(String),
    Like(u32),
    /// Leave (close the connection), stay away, come back: with resume, or as a new join.
    Leave {
        away: Duration,
        resume: bool,
    },
}

/// What one member saw over the run.
#[derive(Debug, Default)]
pub(super) struct MemberReport {
    /// Every epoch it was welcomed in, with the harness time (µs) of its first welcome there.
    pub epochs: Vec<(String, u64)>,
    /// Room events received (each seq once).
    pub events: u64,
    /// Events missing inside an epoch (a seq skipped), and how many times that happened.
    pub missing: u64,
    pub gaps: u64,
    /// Reconnects asking to resume within the same epoch that got the missed events.
    pub resumes: u64,
    /// Reconnects asking to resume within the same epoch that got a fresh welcome instead.
    pub lost_resumes: u64,
    /// Reconnects after a restart (another epoch) answered with an explicit fresh welcome.
    pub fresh_after_restart: u64,
    /// Reconnects with an old epoch answered `resumed: true`: a resume across a restart.
    pub resumed_across_epochs: u64,
    /// Joins without resume (the first, and the churn's new joins).
    pub joins: u64,
    /// Connection attempts that failed (mostly while the server was down).
    pub failed_connects: u64,
    /// Close frames the server sent: code and reason.
    pub closes: Vec<(u16, String)>,
    /// `error` events by code.
    pub errors: BTreeMap<String, u64>,
    pub dealer: Option<DealerReport>,
}

/// Where the member is in the room's sequence.
struct Position {
    epoch: Option<String>,
    last_seq: u64,
}

/// Runs member `index` until the run stops. `tier` makes it a dealer.
pub(super) async fn member(
    ctx: Arc<Ctx>,
    index: usize,
    tier: Option<&'static str>,
    mut cmds: mpsc::Receiver<Cmd>,
) -> MemberReport {
    let name = match tier {
        Some(_) => format!("soak-dealer-{index}"),
        None => format!("soak-viewer-{index}"),
    };
    let token = token(&ctx.room.id, &ctx.room.key, &name, tier);
    let mut dealer = tier.map(|_| Dealer::new(index, ctx.clock, ctx.in_flight.clone()));
    let mut phase = ctx.phase.clone();
    let mut r = MemberReport::default();
    let mut at = Position {
        epoch: None,
        last_seq: 0,
    };
    let mut resume_next = true;
    let mut mailbox_open = true;
    loop {
        if *phase.borrow() == Phase::Stop || phase.has_changed().is_err() {
            break;
        }
        let asked = if resume_next {
            at.epoch.clone().map(|e| (at.last_seq, e))
        } else {
            None
        };
        resume_next = true;
        let resume = asked.as_ref().map(|(s, e)| (*s, e.as_str()));
        let connect = ctx
            .target
            .connect_resuming(index, &ctx.room.id, &token, resume);
        let ws = match tokio::time::timeout(CONNECT_WITHIN, connect).await {
            Ok(Ok(ws)) => ws,
            _ => {
                r.failed_connects += 1;
                tokio::time::sleep(RETRY_EVERY).await;
                continue;
            }
        };
        let (mut tx, mut rx) = ws.split();
        let Ok(welcome) = crate::expect(&mut rx, "welcome", WELCOME_WITHIN).await else {
            r.failed_connects += 1;
            tokio::time::sleep(RETRY_EVERY).await;
            continue;
        };
        let Ok(v) = serde_json::from_str::<serde_json::Value>(&welcome) else {
            r.failed_connects += 1;
            continue;
        };
        welcomed(&mut r, &mut at, &v, asked, ctx.clock.now_us());
        if let Some(d) = dealer.as_mut() {
            d.on_welcome(&v);
            // A request whose answer the drop took is sent again with the same key.
            if let Some(m) = d.resend() {
                let _ = tx.send(Message::text(m)).await;
            }
        }
        let mut tick = tokio::time::interval(ctx.order_every);
        tick.reset();
        // The session: until the connection drops, the member leaves, or the run stops.
        let leave = loop {
            tokio::select! {
                m = rx.next() => match m {
                    Some(Ok(Message::Text(t))) => {
                        let Ok(v) = serde_json::from_str::<serde_json::Value>(t.as_str()) else {
                            continue;
                        };
                        frame(&mut r, &mut at, &v, dealer.as_mut());
                        if let Some(m) = dealer.as_mut().and_then(|d| d.next(true, *phase.borrow())) {
                            let _ = tx.send(Message::text(m)).await;
                        }
                    }
                    Some(Ok(Message::Close(Some(c)))) => {
                        r.closes.push((c.code.into(), c.reason.to_string()));
                    }
                    Some(Ok(_)) => {}
                    Some(Err(_)) | None => break None,
                },
                _ = tick.tick(), if dealer.is_some() => {
                    if let Some(m) = dealer.as_mut().and_then(|d| d.next(false, *phase.borrow())) {
                        let _ = tx.send(Message::text(m)).await;
                    }
                }
                c = cmds.recv(), if mailbox_open => match c {
                    Some(Cmd::Chat(text)) => send(&mut tx, serde_json::json!({"type": "chat", "text": text})).await,
                    Some(Cmd::Like(n)) => send(&mut tx, serde_json::json!({"type": "like", "count": n})).await,
                    Some(Cmd::Leave { away, resume }) => break Some((away, resume)),
                    // The pacers are done: nothing more will come.
                    None => mailbox_open = false,
                },
                changed = phase.changed() => {
                    if changed.is_err() || *phase.borrow() == Phase::Stop {
                        break None;
                    }
                }
            }
        };
        let _ = tx.close().await;
        if let Some((away, resume)) = leave {
            tokio::time::sleep(away).await;
            resume_next = resume;
        }
    }
    r.dealer = dealer.map(Dealer::report);
    r
}

async fn send(tx: &mut WsTx, m: serde_json::Value) {
    let _ = tx.send(Message::text(m.to_string())).await;
}

/// Takes a welcome: a resume or a fresh start, judged against what was asked.
fn welcomed(
    r: &mut MemberReport,
    at: &mut Position,
    v: &serde_json::Value,
    asked: Option<(u64, String)>,
    now_us: u64,
) {
    let epoch = v["epoch"].as_str().unwrap_or_default().to_string();
    let resumed = v["resumed"] == true;
    let seq = v["seq"].as_u64().unwrap_or(0);
    match asked {
        None => r.joins += 1,
        Some((_, old)) if old == epoch => {
            if resumed {
                r.resumes += 1;
            } else {
                r.lost_resumes += 1;
            }
        }
        Some(_) => {
            if resumed {
                r.resumed_across_epochs += 1;
            } else {
                r.fresh_after_restart += 1;
            }
        }
    }
    // A resumed welcome carries the latest seq; the missed events follow it, from ours on.
    if !resumed {
        at.last_seq = seq;
    }
    if !r.epochs.iter().any(|(e, _)| *e == epoch) {
        r.epochs.push((epoch.clone(), now_us));
    }
    at.epoch = Some(epoch);
}

/// Takes any frame after the welcome: room events are checked for gaps.
fn frame(
    r: &mut MemberReport,
    at: &mut Position,
    v: &serde_json::Value,
    dealer: Option<&mut Dealer>,
) {
    let kind = v["type"].as_str().unwrap_or_default();
    if PRIVATE.contains(&kind) {
        if kind == "error" {
            let code = v["code"].as_str().unwrap_or("?").to_string();
            *r.errors.entry(code).or_default() += 1;
        }
        if let Some(d) = dealer {
            d.on_answer(kind, v);
        }
        return;
    }
    let Some(seq) = v["seq"].as_u64() else {
        return;
    };
    if seq <= at.last_seq {
        return;
    }
    if seq != at.last_seq + 1 {
        r.gaps += 1;
        r.missing += seq - at.last_seq - 1;
    }
    at.last_seq = seq;
    r.events += 1;
    if let Some(d) = dealer {
        d.on_event(kind, v);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn fresh(epoch: &str, seq: u64) -> serde_json::Value {
        json!({"type": "welcome", "seq": seq, "resumed": false, "epoch": epoch})
    }

    /// A member just welcomed (a join) in epoch e1 at seq 5.
    fn joined() -> (MemberReport, Position) {
        let mut r = MemberReport::default();
        let mut at = Position {
            epoch: None,
            last_seq: 0,
        };
        welcomed(&mut r, &mut at, &fresh("e1", 5), None, 1);
        (r, at)
    }

    #[test]
    fn a_skipped_seq_is_a_gap_and_private_messages_take_no_number() {
        let (mut r, mut at) = joined();
        for (kind, seq) in [("chat", 6), ("pong", 6), ("like_count", 7), ("chat", 9)] {
            frame(&mut r, &mut at, &json!({"type": kind, "seq": seq}), None);
        }
        assert_eq!((r.events, r.gaps, r.missing, r.joins), (3, 1, 1, 1));
    }

    #[test]
    fn a_resume_is_judged_by_its_epoch() {
        let (mut r, mut at) = joined();
        let resumed = json!({"type": "welcome", "seq": 9, "resumed": true, "epoch": "e1"});
        welcomed(&mut r, &mut at, &resumed, Some((5, "e1".into())), 2);
        // The replayed events follow the resumed welcome from our seq on.
        frame(&mut r, &mut at, &json!({"type": "chat", "seq": 6}), None);
        welcomed(&mut r, &mut at, &fresh("e1", 9), Some((6, "e1".into())), 3);
        welcomed(&mut r, &mut at, &fresh("e2", 1), Some((9, "e1".into())), 4);
        welcomed(&mut r, &mut at, &resumed, Some((1, "e2".into())), 5);
        assert_eq!(r.resumes, 1);
        assert_eq!(r.lost_resumes, 1);
        assert_eq!(r.fresh_after_restart, 1);
        assert_eq!(r.resumed_across_epochs, 1);
        assert_eq!(r.gaps, 0);
        let epochs: Vec<&str> = r.epochs.iter().map(|(e, _)| e.as_str()).collect();
        assert_eq!(epochs, ["e1", "e2"]);
    }
}
