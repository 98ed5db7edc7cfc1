//! A soak dealer's requests: orders of what is on the shelf and grabs of every flash sale that
//! starts, one request at a time so that each answer (or `error`) is known to be its answer.
//! A request whose connection dropped before the answer is sent again with the same key after
//! the reconnect; every acknowledged order and win is kept for the end-of-run check.

use super::Phase;
use crate::Clock;
use std::collections::{BTreeMap, HashSet, VecDeque};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

/// A request with no answer this long after it was sent (on an open connection) is given up
/// and counted.
const ANSWER_WITHIN: Duration = Duration::from_secs(20);
/// Grabs each dealer makes per sale, with distinct keys: the second finds the limit.
const GRABS_PER_SALE: u32 = 2;

/// An order the server acknowledged: `order_placed`, or a `won` grab.
#[derive(Debug, Clone)]
pub(super) struct Ack {
    pub key: String,
    pub order_id: String,
    pub sale_id: Option<String>,
}

#[derive(Debug, Default)]
pub(super) struct DealerReport {
    pub acks: Vec<Ack>,
    pub orders_sent: u64,
    pub grabs_sent: u64,
    /// Requests sent again, same key, after a reconnect.
    pub resent: u64,
    /// Grab results by kind (`won`, `sold_out`, `limit_reached`, …).
    pub grab_results: BTreeMap<String, u64>,
    /// Refusals of this dealer's requests by error code.
    pub refused: BTreeMap<String, u64>,
    /// Requests never answered within [`ANSWER_WITHIN`] on an open connection.
    pub unanswered: u64,
    /// Answers for a key that was not the one waiting, or a `won` without an order id.
    pub bad_answers: u64,
    /// Wins per sale.
    pub wins: BTreeMap<String, u32>,
}

struct Pending {
    key: String,
    message: String,
    sale: Option<String>,
    sent_us: u64,
}

pub(super) struct Dealer {
    index: usize,
    clock: Clock,
    /// The products on the shelf (the brand on air).
    shelf: Vec<String>,
    grabs: VecDeque<(String, u32)>,
    seen_sales: HashSet<String>,
    pending: Option<Pending>,
    /// A request refused with `store_failed`, to send again.
    retry: Option<Pending>,
    orders: u64,
    r: DealerReport,
    /// Requests of every dealer sent and not yet answered (a kill can wait for one), and
    /// whether this dealer's waiting request is counted there.
    in_flight: Arc<AtomicUsize>,
    counted: bool,
}

impl Dealer {
    pub(super) fn new(index: usize, clock: Clock, in_flight: Arc<AtomicUsize>) -> Dealer {
        Dealer {
            index,
            clock,
            in_flight,
            counted: false,
            shelf: Vec::new(),
            grabs: VecDeque::new(),
            seen_sales: HashSet::new(),
            pending: None,
            retry: None,
            orders: 0,
            r: DealerReport::default(),
        }
    }

    pub(super) fn on_welcome(&mut self, v: &serde_json::Value) {
        self.take_shelf(&v["shelf"]);
        for s in v["sales"].as_array().into_iter().flatten() {
            if s["phase"] == "live" {
                self.sale_started(s);
            }
        }
    }

    /// A room event (already checked for its seq).
    pub(super) fn on_event(&mut self, kind: &str, v: &serde_json::Value) {
        match kind {
            "brand_switched" => self.take_shelf(&v["shelf"]),
            "sale_started" => self.sale_started(v),
            _ => {}
        }
    }

    /// A private message: the answer to the waiting request, if it is one.
    pub(super) fn on_answer(&mut self, kind: &str, v: &serde_json::Value) {
        self.answer(kind, v);
        self.count_in_flight();
    }

    fn answer(&mut self, kind: &str, v: &serde_json::Value) {
        let key = match kind {
            "order_placed" => v["order"]["key"].as_str(),
            "grab_result" => v["key"].as_str(),
            "error" => {
                if let Some(p) = self.pending.take() {
                    let code = v["code"].as_str().unwrap_or("?");
                    *self.r.refused.entry(code.to_string()).or_default() += 1;
                    // Nothing was taken: the same request again, on the next turn.
                    if code == "store_failed" {
                        self.retry = Some(p);
                    }
                }
                return;
            }
            _ => return,
        };
        let Some(p) = self.pending.take_if(|p| Some(p.key.as_str()) == key) else {
            self.r.bad_answers += 1;
            return;
        };
        let order_id = match kind {
            "order_placed" => v["order"]["id"].as_str(),
            _ => {
                let result = v["result"].as_str().unwrap_or("?");
                *self.r.grab_results.entry(result.to_string()).or_default() += 1;
                if result != "won" {
                    return;
                }
                v["order_id"].as_str()
            }
        };
        let Some(order_id) = order_id else {
            self.r.bad_answers += 1;
            return;
        };
        if let Some(sale) = &p.sale {
            *self.r.wins.entry(sale.clone()).or_default() += 1;
        }
        self.r.acks.push(Ack {
            key: p.key,
            order_id: order_id.to_string(),
            sale_id: p.sale,
        });
    }

    /// The waiting request again, after a reconnect.
    pub(super) fn resend(&mut self) -> Option<String> {
        let p = self.pending.as_mut()?;
        p.sent_us = self.clock.now_us();
        self.r.resent += 1;
        Some(p.message.clone())
    }

    /// The next request to send, if one may go now: a grab as soon as a sale starts
    /// (`urgent`), an order on the dealer's tick. Nothing new once the run drains.
    pub(super) fn next(&mut self, urgent: bool, phase: Phase) -> Option<String> {
        let next = self.next_request(urgent, phase);
        self.count_in_flight();
        next
    }

    /// Keeps the shared count of waiting requests in step with this dealer's.
    fn count_in_flight(&mut self) {
        let waiting = self.pending.is_some();
        if waiting != self.counted {
            if waiting {
                self.in_flight.fetch_add(1, Ordering::Relaxed);
            } else {
                self.in_flight.fetch_sub(1, Ordering::Relaxed);
            }
            self.counted = waiting;
        }
    }

    fn next_request(&mut self, urgent: bool, phase: Phase) -> Option<String> {
        let now = self.clock.now_us();
        if let Some(p) = &self.pending {
            if now.saturating_sub(p.sent_us) < ANSWER_WITHIN.as_micros() as u64 {
                return None;
            }
            self.r.unanswered += 1;
            self.pending = None;
        }
        if phase != Phase::Run {
            return None;
        }
        if let Some(mut p) = self.retry.take() {
            p.sent_us = now;
            self.r.resent += 1;
            let message = p.message.clone();
            self.pending = Some(p);
            return Some(message);
        }
        if let Some((sale, attempt)) = self.grabs.pop_front() {
            let key = format!("g-{sale}-{attempt}");
            let message =
                serde_json::json!({"type": "grab", "sale_id": sale, "key": key}).to_string();
            self.r.grabs_sent += 1;
            return Some(self.wait(key, message, Some(sale), now));
        }
        if urgent || self.shelf.is_empty() {
            return None;
        }
        self.orders += 1;
        let product = &self.shelf[(self.index + self.orders as usize) % self.shelf.len()];
        let key = format!("o-{}", self.orders);
        let message = serde_json::json!({
            "type": "place_order",
            "product_id": product,
            "quantity": 1 + self.orders % 5,
            "key": key,
        })
        .to_string();
        self.r.orders_sent += 1;
        Some(self.wait(key, message, None, now))
    }

    pub(super) fn report(self) -> DealerReport {
        self.r
    }

    fn wait(&mut self, key: String, message: String, sale: Option<String>, now: u64) -> String {
        self.pending = Some(Pending {
            key,
            message: message.clone(),
            sale,
            sent_us: now,
        });
        message
    }

    fn take_shelf(&mut self, shelf: &serde_json::Value) {
        self.shelf = shelf
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|p| p["id"].as_str().map(str::to_string))
            .collect();
    }

    fn sale_started(&mut self, s: &serde_json::Value) {
        let Some(sale) = s["sale_id"].as_str() else {
            return;
        };
        if s["eligible"] == true && self.seen_sales.insert(sale.to_string()) {
            for attempt in 1..=GRABS_PER_SALE {
                self.grabs.push_back((sale.to_string(), attempt));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn grabs_go_first_and_each_answer_settles_its_own_key() {
        let in_flight = Arc::new(AtomicUsize::new(0));
        let mut d = Dealer::new(0, Clock::new(), in_flight.clone());
        d.on_welcome(&json!({"shelf": [{"id": "p1"}], "sales": []}));
        d.on_event("sale_started", &json!({"sale_id": "s1", "eligible": true}));
        let grab = d.next(true, Phase::Run).unwrap();
        assert!(grab.contains("\"key\":\"g-s1-1\""), "{grab}");
        assert_eq!(
            in_flight.load(Ordering::Relaxed),
            1,
            "a request is in flight"
        );
        // One request at a time.
        assert_eq!(d.next(false, Phase::Run), None);
        d.on_answer(
            "grab_result",
            &json!({"sale_id": "s1", "key": "g-s1-1", "result": "won", "order_id": "o7"}),
        );
        let again = d.next(true, Phase::Run).unwrap();
        assert!(again.contains("\"key\":\"g-s1-2\"") && again.contains("\"sale_id\":\"s1\""));
        d.on_answer(
            "grab_result",
            &json!({"key": "g-s1-2", "result": "limit_reached"}),
        );
        // No grab left: an urgent turn sends nothing, a tick an order.
        assert_eq!(d.next(true, Phase::Run), None);
        let order = d.next(false, Phase::Run).unwrap();
        assert!(
            order.contains("place_order") && order.contains("p1"),
            "{order}"
        );
        // Dropped before its answer: the same message again.
        assert_eq!(d.resend(), Some(order));
        assert_eq!(in_flight.load(Ordering::Relaxed), 1);
        d.on_answer(
            "order_placed",
            &json!({"order": {"id": "o9", "key": "o-1"}}),
        );
        assert_eq!(in_flight.load(Ordering::Relaxed), 0, "answered");
        assert_eq!(d.next(false, Phase::Drain), None);
        let r = d.report();
        let acked: Vec<_> = r.acks.iter().map(|a| a.order_id.as_str()).collect();
        assert_eq!(acked, ["o7", "o9"]);
        assert_eq!(r.wins["s1"], 1);
        assert_eq!((r.resent, r.bad_answers, r.unanswered), (1, 0, 0));
    }

    #[test]
    fn a_store_failure_sends_the_same_key_again() {
        let mut d = Dealer::new(0, Clock::new(), Arc::default());
        d.on_event("sale_started", &json!({"sale_id": "s2", "eligible": true}));
        let first = d.next(true, Phase::Run).unwrap();
        d.on_answer("error", &json!({"code": "store_failed"}));
        assert_eq!(d.next(true, Phase::Run), Some(first));
        let r = d.report();
        assert_eq!(
            (r.refused["store_failed"], r.resent, r.grabs_sent),
            (1, 1, 1)
        );
    }
}
