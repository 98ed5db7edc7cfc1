//! `showfloor ctl`'s text for CRM webhooks and their delivery log.

use std::fmt::Write as _;

use super::text::fmt_ms;
use crate::pb::*;

pub(super) fn webhook_text(s: &mut String, w: &Webhook) {
    let _ = writeln!(
        s,
        "{}  {}  events {}  secret …{}{}",
        w.url,
        if w.enabled { "enabled" } else { "disabled" },
        w.events.join(","),
        w.secret_hint,
        if w.updated_ms > 0 {
            format!("  updated {}", fmt_ms(w.updated_ms))
        } else {
            String::new()
        },
    );
    if !w.secret.is_empty() {
        let _ = writeln!(
            s,
            "secret {}  (shown once: store it where the receiver verifies signatures)",
            w.secret
        );
    }
}

pub(super) fn delivery_text(s: &mut String, d: &WebhookDelivery) {
    let next = if d.status == "pending" && d.next_ms > 0 {
        format!("  next {}", fmt_ms(d.next_ms))
    } else {
        String::new()
    };
    let _ = writeln!(
        s,
        "{}  {:<9}  {} attempt(s)  occurred {}{}",
        d.id,
        d.status,
        d.attempts,
        fmt_ms(d.occurred_ms),
        next,
    );
    for a in &d.log {
        let answer = match (a.code, a.error.is_empty()) {
            (0, _) => a.error.clone(),
            (code, true) => format!("HTTP {code}"),
            (_, false) => a.error.clone(),
        };
        let _ = writeln!(s, "  {}  {} ms  {}", fmt_ms(a.at_ms), a.duration_ms, answer);
    }
}
