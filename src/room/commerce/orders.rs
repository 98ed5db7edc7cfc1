//! The order book of a room: numbering, idempotency by the dealer's key, limits, status, listing.
//!
//! A key is the dealer's idempotency key, as Stripe uses them: the same key with the same
//! product and quantity gets the first answer again (the same order); the same key with
//! different parameters is an error, never a second order.

use super::number;
use crate::model::{Order, OrderFilter, OrderPage, OrderStatus, ProtocolError, RoomError};
use foldhash::{HashMap, HashMapExt};
use std::collections::BTreeMap;

/// Largest quantity one order may carry.
pub const MAX_ORDER_QUANTITY: u32 = 1_000_000;
/// Orders one dealer may place in one room (flash-sale wins count too).
pub const MAX_ORDERS_PER_DEALER: u32 = 10_000;

/// The id of order number `n`.
pub fn order_id(n: u64) -> String {
    format!("o{n}")
}

/// What a dealer asks for.
#[derive(Debug, Clone, Copy)]
pub struct OrderRequest<'a> {
    pub dealer_id: &'a str,
    pub key: &'a str,
    pub product_id: &'a str,
    pub quantity: u32,
}

/// What the room knows of an order that the book does not: who, what, at which price.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OrderDraft {
    pub display_name: String,
    pub tier: String,
    pub brand_id: String,
    pub product_name: String,
    pub unit_price_cents: i64,
    pub currency: String,
    pub inviter_id: Option<String>,
}

/// Why the book refuses an order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OrderRefusal {
    /// The key was used for another product or quantity.
    KeyReused {
        key: String,
        order_id: String,
        product_id: String,
        quantity: u32,
    },
    QuantityOutOfRange {
        quantity: u32,
    },
    TooManyOrders,
    /// Unit price × quantity does not fit.
    TotalOverflows,
}

impl From<OrderRefusal> for ProtocolError {
    fn from(r: OrderRefusal) -> ProtocolError {
        match r {
            OrderRefusal::KeyReused {
                key,
                order_id,
                product_id,
                quantity,
            } => ProtocolError::new(
                "key_reused",
                format!(
                    "key {key:?} was used for order {order_id} ({quantity} × {product_id}); \
                     use a new key for a new order"
                ),
            ),
            OrderRefusal::QuantityOutOfRange { quantity } => ProtocolError::new(
                "quantity_too_large",
                format!(
                    "`quantity` must be a whole number from 1 to {MAX_ORDER_QUANTITY} (got {quantity})"
                ),
            ),
            OrderRefusal::TooManyOrders => ProtocolError::new(
                "too_many_orders",
                format!("at most {MAX_ORDERS_PER_DEALER} orders per dealer in one room"),
            ),
            OrderRefusal::TotalOverflows => ProtocolError::new(
                "quantity_too_large",
                "the order's total is too large; order fewer units",
            ),
        }
    }
}

/// Where a placed order stands: new (to be written), or the first answer to this key again.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Placement {
    pub number: u64,
    pub repeated: bool,
}

/// All orders of a room, oldest first.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OrderBook {
    orders: BTreeMap<u64, Order>,
    /// (dealer, key) → order number, for `place`; flash-sale wins keep their keys per sale.
    keys: HashMap<(String, String), u64>,
    per_dealer: HashMap<String, u32>,
    next_number: u64,
}

impl Default for OrderBook {
    fn default() -> Self {
        OrderBook {
            orders: BTreeMap::new(),
            keys: HashMap::new(),
            per_dealer: HashMap::new(),
            next_number: 1,
        }
    }
}

impl OrderBook {
    /// The book as the store has it. Orders with an id that is not `o{n}` are skipped.
    pub fn restore(orders: Vec<Order>) -> OrderBook {
        let mut book = OrderBook::default();
        for o in orders {
            let Some(n) = number(&o.id, 'o') else {
                tracing::warn!(order = %o.id, "order with an unexpected id skipped");
                continue;
            };
            book.add(n, o);
        }
        book
    }

    /// The number the next new order (or flash-sale win) takes.
    pub fn next_number(&self) -> u64 {
        self.next_number
    }

    pub fn get(&self, n: u64) -> Option<&Order> {
        self.orders.get(&n)
    }

    /// Puts `name` on every order of `viewer` (personal data erased); how many.
    pub fn rename_buyer(&mut self, viewer: &str, name: &str) -> usize {
        let mut n = 0;
        for o in self.orders.values_mut().filter(|o| o.viewer_id == viewer) {
            o.display_name = name.to_string();
            n += 1;
        }
        n
    }

    pub fn by_id(&self, id: &str) -> Option<&Order> {
        number(id, 'o').and_then(|n| self.orders.get(&n))
    }

    pub fn len(&self) -> usize {
        self.orders.len()
    }

    pub fn is_empty(&self) -> bool {
        self.orders.is_empty()
    }

    /// Orders (and wins) of one dealer.
    pub fn count_of(&self, dealer_id: &str) -> u32 {
        self.per_dealer.get(dealer_id).copied().unwrap_or(0)
    }

    /// Places an order, or answers a repeated key. `draft` checks everything the book cannot
    /// know (room live, product on the shelf, minimum quantity, price) and is asked only for
    /// a key not seen before, so a repeated key gets its first answer even when the shelf
    /// changed since.
    pub fn place<E: From<OrderRefusal>>(
        &mut self,
        req: OrderRequest<'_>,
        now: i64,
        draft: impl FnOnce() -> Result<OrderDraft, E>,
    ) -> Result<Placement, E> {
        let key = (req.dealer_id.to_string(), req.key.to_string());
        if let Some(&n) = self.keys.get(&key) {
            let o = &self.orders[&n];
            if o.product_id != req.product_id || o.quantity != req.quantity {
                return Err(OrderRefusal::KeyReused {
                    key: key.1,
                    order_id: o.id.clone(),
                    product_id: o.product_id.clone(),
                    quantity: o.quantity,
                }
                .into());
            }
            return Ok(Placement {
                number: n,
                repeated: true,
            });
        }
        let d = draft()?;
        if !(1..=MAX_ORDER_QUANTITY).contains(&req.quantity) {
            return Err(OrderRefusal::QuantityOutOfRange {
                quantity: req.quantity,
            }
            .into());
        }
        if self.count_of(req.dealer_id) >= MAX_ORDERS_PER_DEALER {
            return Err(OrderRefusal::TooManyOrders.into());
        }
        let total = d
            .unit_price_cents
            .checked_mul(req.quantity as i64)
            .ok_or(OrderRefusal::TotalOverflows)?;
        let n = self.next_number;
        self.add(
            n,
            Order {
                id: order_id(n),
                viewer_id: key.0,
                display_name: d.display_name,
                tier: d.tier,
                brand_id: d.brand_id,
                product_id: req.product_id.to_string(),
                product_name: d.product_name,
                quantity: req.quantity,
                unit_price_cents: d.unit_price_cents,
                total_cents: total,
                currency: d.currency,
                status: OrderStatus::Placed,
                status_reason: None,
                sale_id: None,
                inviter_id: d.inviter_id,
                idempotency_key: key.1,
                created_ms: now,
                updated_ms: now,
            },
        );
        Ok(Placement {
            number: n,
            repeated: false,
        })
    }

    /// Adds an order under number `n` (a flash-sale win, or one from the store).
    pub fn add(&mut self, n: u64, order: Order) {
        self.next_number = self.next_number.max(n + 1);
        *self.per_dealer.entry(order.viewer_id.clone()).or_default() += 1;
        if order.sale_id.is_none() {
            self.keys
                .insert((order.viewer_id.clone(), order.idempotency_key.clone()), n);
        }
        self.orders.insert(n, order);
    }

    /// Takes an order back after its write failed: it, its key and its count are gone. Only
    /// the first call for a number finds it.
    pub fn take_back(&mut self, n: u64) -> Option<Order> {
        let o = self.orders.remove(&n)?;
        if o.sale_id.is_none() {
            self.keys
                .remove(&(o.viewer_id.clone(), o.idempotency_key.clone()));
        }
        if let Some(c) = self.per_dealer.get_mut(&o.viewer_id) {
            *c -= 1;
            if *c == 0 {
                self.per_dealer.remove(&o.viewer_id);
            }
        }
        Some(o)
    }

    /// Moves an order along placed → confirmed → shipped (or to cancelled, with a reason).
    pub fn set_status(
        &mut self,
        order_id: &str,
        status: OrderStatus,
        reason: String,
        now: i64,
        room_id: &str,
    ) -> Result<&Order, RoomError> {
        let order = number(order_id, 'o')
            .and_then(|n| self.orders.get_mut(&n))
            .ok_or_else(|| {
                RoomError::NotFound(format!("order {order_id} not found in room {room_id}"))
            })?;
        if !order.status.can_become(status) {
            return Err(RoomError::FailedPrecondition(format!(
                "order {order_id} is {}; it cannot become {} (placed → confirmed → shipped, \
                 or placed/confirmed → cancelled)",
                order.status.as_str(),
                status.as_str()
            )));
        }
        order.status = status;
        order.status_reason = (status == OrderStatus::Cancelled).then_some(reason);
        order.updated_ms = now;
        Ok(order)
    }

    /// One page of the orders that match, newest first, with the count and sum of all matches.
    pub fn list(&self, f: &OrderFilter) -> Result<OrderPage, RoomError> {
        let invalid = |m: String| RoomError::InvalidArgument(m);
        let limit = match f.limit {
            None | Some(0) => 100,
            Some(l) if l <= 1000 => l as usize,
            Some(l) => return Err(invalid(format!("limit must be 1 to 1000 (got {l})"))),
        };
        let before = match &f.before_order_id {
            Some(id) => Some(
                number(id, 'o')
                    .ok_or_else(|| invalid(format!("before_order_id {id:?} is not an order id")))?,
            ),
            None => None,
        };
        if let (Some(a), Some(b)) = (f.since_ms, f.until_ms) {
            if a >= b {
                return Err(invalid("since_ms must be before until_ms".into()));
            }
        }
        let matches = |o: &Order| {
            f.brand_id.as_ref().is_none_or(|b| &o.brand_id == b)
                && f.product_id.as_ref().is_none_or(|p| &o.product_id == p)
                && f.viewer_id.as_ref().is_none_or(|v| &o.viewer_id == v)
                && f.sale_id
                    .as_ref()
                    .is_none_or(|s| o.sale_id.as_ref() == Some(s))
                && f.status.is_none_or(|s| o.status == s)
                && f.since_ms.is_none_or(|t| o.created_ms >= t)
                && f.until_ms.is_none_or(|t| o.created_ms < t)
        };
        let mut total_count = 0u32;
        let mut total_cents = 0i64;
        let mut orders = Vec::new();
        for (n, o) in self.orders.iter().rev() {
            if !matches(o) {
                continue;
            }
            total_count += 1;
            total_cents = total_cents.saturating_add(o.total_cents);
            if orders.len() < limit && before.is_none_or(|b| *n < b) {
                orders.push(o.clone());
            }
        }
        Ok(OrderPage {
            orders,
            total_count,
            total_cents,
        })
    }

    /// Every order, oldest first (what the store would hold).
    pub fn orders(&self) -> impl Iterator<Item = &Order> {
        self.orders.values()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn draft() -> OrderDraft {
        OrderDraft {
            display_name: "Wang".into(),
            tier: "gold".into(),
            brand_id: "b1".into(),
            product_name: "Jacket".into(),
            unit_price_cents: 100,
            currency: "CNY".into(),
            inviter_id: None,
        }
    }

    fn ask<'a>(dealer: &'a str, key: &'a str, product: &'a str, quantity: u32) -> OrderRequest<'a> {
        OrderRequest {
            dealer_id: dealer,
            key,
            product_id: product,
            quantity,
        }
    }

    fn place(book: &mut OrderBook, req: OrderRequest<'_>) -> Result<Placement, OrderRefusal> {
        book.place(req, 5, || Ok(draft()))
    }

    #[test]
    fn the_same_key_and_parameters_get_the_first_order_again() {
        let mut book = OrderBook::default();
        let first = place(&mut book, ask("d1", "k", "p1", 12)).unwrap();
        assert_eq!(
            first,
            Placement {
                number: 1,
                repeated: false
            }
        );
        let again = book
            .place(
                ask("d1", "k", "p1", 12),
                9,
                || -> Result<_, OrderRefusal> { panic!("a repeated key is not checked again") },
            )
            .unwrap();
        assert_eq!(
            again,
            Placement {
                number: 1,
                repeated: true
            }
        );
        assert_eq!(book.len(), 1);
        assert_eq!(book.get(1).unwrap().total_cents, 1200);
        // Keys are per dealer.
        assert_eq!(
            place(&mut book, ask("d2", "k", "p1", 12)).unwrap().number,
            2
        );
    }

    #[test]
    fn the_same_key_with_other_parameters_is_an_error_naming_the_first_order() {
        let mut book = OrderBook::default();
        place(&mut book, ask("d1", "k", "p1", 12)).unwrap();
        for other in [ask("d1", "k", "p1", 13), ask("d1", "k", "p2", 12)] {
            let err = place(&mut book, other).unwrap_err();
            assert!(matches!(&err, OrderRefusal::KeyReused { order_id, .. } if order_id == "o1"));
            let wire = ProtocolError::from(err);
            assert_eq!(wire.code, "key_reused");
            assert!(wire.message.contains("o1"), "{}", wire.message);
        }
        assert_eq!(book.len(), 1);
    }

    #[test]
    fn a_refused_draft_leaves_no_trace() {
        let mut book = OrderBook::default();
        let err = book
            .place(ask("d1", "k", "p1", 1), 0, || {
                Err(ProtocolError::new("not_on_shelf", "no"))
            })
            .unwrap_err();
        assert_eq!(err.code, "not_on_shelf");
        assert!(book.is_empty());
        assert_eq!(place(&mut book, ask("d1", "k", "p1", 1)).unwrap().number, 1);
    }

    #[test]
    fn quantity_limit_count_limit_and_overflow_are_refused() {
        let mut book = OrderBook::default();
        assert_eq!(
            place(&mut book, ask("d1", "a", "p1", MAX_ORDER_QUANTITY + 1)),
            Err(OrderRefusal::QuantityOutOfRange {
                quantity: MAX_ORDER_QUANTITY + 1
            })
        );
        let err = book
            .place(ask("d1", "b", "p1", MAX_ORDER_QUANTITY), 0, || {
                Ok::<_, OrderRefusal>(OrderDraft {
                    unit_price_cents: i64::MAX / 2,
                    ..draft()
                })
            })
            .unwrap_err();
        assert_eq!(err, OrderRefusal::TotalOverflows);
        for i in 0..MAX_ORDERS_PER_DEALER {
            place(&mut book, ask("d1", &format!("k{i}"), "p1", 1)).unwrap();
        }
        assert_eq!(
            place(&mut book, ask("d1", "one-more", "p1", 1)),
            Err(OrderRefusal::TooManyOrders)
        );
        assert!(place(&mut book, ask("d2", "k", "p1", 1)).is_ok());
    }

    #[test]
    fn taking_back_an_order_frees_its_key_exactly_once() {
        let mut book = OrderBook::default();
        place(&mut book, ask("d1", "k", "p1", 3)).unwrap();
        assert!(book.take_back(1).is_some());
        assert!(book.take_back(1).is_none(), "only once");
        assert_eq!(book.count_of("d1"), 0);
        // The key is free: the dealer's retry is a new order, with other parameters too.
        assert_eq!(
            place(&mut book, ask("d1", "k", "p1", 4)).unwrap(),
            Placement {
                number: 2,
                repeated: false
            }
        );
    }

    #[test]
    fn restore_from_the_written_orders_equals_the_book_before() {
        let mut book = OrderBook::default();
        place(&mut book, ask("d1", "a", "p1", 3)).unwrap();
        place(&mut book, ask("d2", "b", "p1", 4)).unwrap();
        book.add(
            3,
            Order {
                id: order_id(3),
                sale_id: Some("s9".into()),
                idempotency_key: "g".into(),
                ..book.get(1).unwrap().clone()
            },
        );
        place(&mut book, ask("d1", "c", "p1", 5)).unwrap();
        book.take_back(2);
        let written: Vec<Order> = book.orders().cloned().collect();
        assert_eq!(OrderBook::restore(written), book);
    }

    #[test]
    fn status_moves_forward_only() {
        let mut book = OrderBook::default();
        place(&mut book, ask("d1", "a", "p1", 3)).unwrap();
        let o = book
            .set_status("o1", OrderStatus::Confirmed, String::new(), 7, "r")
            .unwrap();
        assert_eq!((o.status, o.updated_ms), (OrderStatus::Confirmed, 7));
        assert!(matches!(
            book.set_status("o1", OrderStatus::Placed, String::new(), 8, "r"),
            Err(RoomError::FailedPrecondition(_))
        ));
        assert!(matches!(
            book.set_status("o9", OrderStatus::Shipped, String::new(), 8, "r"),
            Err(RoomError::NotFound(_))
        ));
    }

    #[test]
    fn listing_pages_newest_first_and_sums_every_match() {
        let mut book = OrderBook::default();
        for i in 0..5 {
            place(&mut book, ask("d1", &format!("k{i}"), "p1", 1 + i)).unwrap();
        }
        let page = book
            .list(&OrderFilter {
                limit: Some(2),
                before_order_id: Some("o4".into()),
                ..OrderFilter::default()
            })
            .unwrap();
        let ids: Vec<&str> = page.orders.iter().map(|o| o.id.as_str()).collect();
        assert_eq!(ids, ["o3", "o2"]);
        assert_eq!((page.total_count, page.total_cents), (5, 1500));
        assert!(book
            .list(&OrderFilter {
                limit: Some(1001),
                ..OrderFilter::default()
            })
            .is_err());
    }
}
