//! Checks of what hosts send (text, URLs, tier names, prices) and of a new room's settings.

use super::Room;
use crate::model::*;
use foldhash::HashSet;

pub(super) fn invalid(msg: impl Into<String>) -> RoomError {
    RoomError::InvalidArgument(msg.into())
}

/// `min` to `max` characters, no control characters but newlines.
pub(super) fn check_text(field: &str, v: &str, min: usize, max: usize) -> Result<(), RoomError> {
    let n = v.chars().count();
    if n < min || n > max {
        return Err(invalid(format!(
            "{field} must be {min} to {max} characters (got {n})"
        )));
    }
    if v.chars().any(|c| c.is_control() && c != '\n') {
        return Err(invalid(format!("{field} contains control characters")));
    }
    Ok(())
}

pub(super) fn check_url(field: &str, v: &str, required: bool) -> Result<(), RoomError> {
    if v.is_empty() {
        return if required {
            Err(invalid(format!("{field} is required")))
        } else {
            Ok(())
        };
    }
    if v.len() > 2048 {
        return Err(invalid(format!("{field} is longer than 2048 bytes")));
    }
    match url::Url::parse(v) {
        Ok(u) if u.scheme() == "https" || u.scheme() == "http" => Ok(()),
        Ok(u) => Err(invalid(format!(
            "{field} must be an http(s) URL, not {}:",
            u.scheme()
        ))),
        Err(e) => Err(invalid(format!("{field} is not a valid URL: {e}"))),
    }
}

fn is_tier_name(t: &str) -> bool {
    !t.is_empty()
        && t.len() <= 32
        && t.bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_' || b == b'-')
}

/// An unknown tier, named with the room's tiers.
pub(super) fn unknown_tier(tier: &str, record: &RoomRecord) -> RoomError {
    invalid(format!(
        "unknown tier {tier:?}; the room's tiers are {}",
        record.tiers.join(", ")
    ))
}

/// Exactly one price per tier in `tiers`, each 0 to 100000000000 cents; `what` names the
/// price in messages ("price", "sale price").
pub(super) fn one_price_per_tier(
    what: &str,
    prices: &[(String, i64)],
    tiers: &[String],
) -> Result<Vec<(String, i64)>, RoomError> {
    let mut out = Vec::with_capacity(tiers.len());
    for tier in tiers {
        let mine: Vec<i64> = prices
            .iter()
            .filter(|(t, _)| t == tier)
            .map(|(_, c)| *c)
            .collect();
        match mine[..] {
            [c] if (0..=100_000_000_000).contains(&c) => out.push((tier.clone(), c)),
            [c] => {
                return Err(invalid(format!(
                    "{what} for tier {tier} must be 0 to 100000000000 cents (got {c})"
                )))
            }
            [] => return Err(invalid(format!("missing the {what} for tier {tier}"))),
            _ => return Err(invalid(format!("more than one {what} for tier {tier}"))),
        }
    }
    Ok(out)
}

/// The most brands and products a room holds.
pub const MAX_BRANDS: usize = 64;
pub const MAX_PRODUCTS: usize = 10_000;

/// A brand's name, as `AddBrand` checks it (`field` names it in the message).
pub fn check_brand_name(field: &str, name: &str) -> Result<(), RoomError> {
    check_text(field, name.trim(), 1, 100)
}

/// The field of a product that a [`ProductProblem`] is about.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ProductField {
    Name,
    Description,
    ImageUrls,
    Link,
    MinOrderQuantity,
    /// The price of this tier (or a price for a tier the room does not have).
    Price(String),
}

/// One reason a product is refused: the field at fault and the room's message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProductProblem {
    pub field: ProductField,
    pub message: String,
}

/// Every reason a room with `tiers` refuses a product (its brand aside), in the order
/// `UpsertProduct` checks them: the room answers the first, an import lists them all. Empty
/// when the product is good.
pub fn product_problems(p: &ProductInput, tiers: &[String]) -> Vec<ProductProblem> {
    let mut problems = Vec::new();
    let mut add = |field: ProductField, r: Result<(), RoomError>| {
        if let Err(e) = r {
            problems.push(ProductProblem {
                field,
                message: e.to_string(),
            });
        }
    };
    add(
        ProductField::Name,
        check_text("name", p.name.trim(), 1, 200),
    );
    add(
        ProductField::Description,
        check_text("description", &p.description, 0, 5000),
    );
    if p.image_urls.len() > 20 {
        add(
            ProductField::ImageUrls,
            Err(invalid("at most 20 image_urls")),
        );
    }
    for u in &p.image_urls {
        add(ProductField::ImageUrls, check_url("image_url", u, true));
    }
    add(ProductField::Link, check_url("link", &p.link, true));
    if p.min_order_quantity == 0 || p.min_order_quantity > 1_000_000 {
        add(
            ProductField::MinOrderQuantity,
            Err(invalid("min_order_quantity must be 1 to 1000000")),
        );
    }
    for (t, _) in &p.prices {
        if !tiers.contains(t) {
            add(
                ProductField::Price(t.clone()),
                Err(invalid(format!(
                    "price for unknown tier {t:?}; the room's tiers are {}",
                    tiers.join(", ")
                ))),
            );
        }
    }
    for tier in tiers {
        let mine: Vec<(String, i64)> = p
            .prices
            .iter()
            .filter(|(t, _)| t == tier)
            .cloned()
            .collect();
        add(
            ProductField::Price(tier.clone()),
            one_price_per_tier("price", &mine, std::slice::from_ref(tier)).map(|_| ()),
        );
    }
    problems
}

impl Room {
    /// Validates the settings of a new room and returns its record.
    pub fn create(new: NewRoom, now: i64) -> Result<RoomRecord, RoomError> {
        check_text("title", new.title.trim(), 1, 200)?;
        let rate = new.chat_rate_limit.unwrap_or_default();
        if rate.messages == 0
            || rate.messages > 1000
            || rate.per_seconds == 0
            || rate.per_seconds > 3600
        {
            return Err(invalid(
                "chat_rate_limit must allow 1 to 1000 messages per 1 to 3600 seconds",
            ));
        }
        let history_window = new.history_window.unwrap_or(1000);
        if !(1..=100_000).contains(&history_window) {
            return Err(invalid("history_window must be 1 to 100000 events"));
        }
        let tiers = if new.tiers.is_empty() {
            vec!["gold".into(), "silver".into(), "bronze".into()]
        } else {
            new.tiers
        };
        if tiers.len() > 16 {
            return Err(invalid("at most 16 dealer tiers"));
        }
        for t in &tiers {
            if !is_tier_name(t) {
                return Err(invalid(format!(
                    "tier name {t:?} must be 1 to 32 characters of a-z, 0-9, _ or -"
                )));
            }
        }
        let distinct: HashSet<&String> = tiers.iter().collect();
        if distinct.len() != tiers.len() {
            return Err(invalid("tier names must be distinct"));
        }
        if new.banned_words.len() > 1000 {
            return Err(invalid("at most 1000 banned words"));
        }
        let mut banned = Vec::new();
        for w in new.banned_words {
            let w = w.trim().to_lowercase();
            check_text("banned word", &w, 1, 100)?;
            banned.push(w);
        }
        let currency = new.currency.unwrap_or_else(|| "CNY".into());
        if currency.len() != 3 || !currency.bytes().all(|b| b.is_ascii_uppercase()) {
            return Err(invalid(format!(
                "currency {currency:?} must be a three-letter ISO 4217 code such as CNY"
            )));
        }
        super::registration::check_phone_country(&new.phone_country)?;
        if new.scheduled_start_ms < 0 {
            return Err(invalid("scheduled_start_ms must not be negative"));
        }
        Ok(RoomRecord {
            id: new.id,
            title: new.title.trim().to_string(),
            state: RoomState::Scheduled,
            scheduled_start_ms: new.scheduled_start_ms,
            chat_rate_limit: rate,
            banned_words: banned,
            history_window,
            tiers,
            currency,
            token_key: new.token_key,
            brand_on_air: None,
            pinned_product: None,
            created_ms: now,
            opened_ms: None,
            ended_ms: None,
            next_id: 1,
            registration: new.registration,
            phone_country: new.phone_country,
        })
    }

    /// Host commands that change the room are refused once it has ended.
    pub(super) fn require_not_ended(&self) -> Result<(), RoomError> {
        if self.record.state == RoomState::Ended {
            return Err(RoomError::FailedPrecondition(format!(
                "room {} has ended; it can no longer be changed",
                self.record.id
            )));
        }
        Ok(())
    }

    /// Lucky draws and red packets run while the room is live; `what` says which.
    pub(super) fn require_live(&self, what: &str) -> Result<(), RoomError> {
        if self.record.state != RoomState::Live {
            return Err(RoomError::FailedPrecondition(format!(
                "room {} is {}; {what} while it is live",
                self.record.id,
                self.record.state.as_str()
            )));
        }
        Ok(())
    }

    pub(super) fn check_tier(&self, tier: &str) -> Result<(), RoomError> {
        match self.record.tier_index(tier) {
            Some(_) => Ok(()),
            None => Err(unknown_tier(tier, &self.record)),
        }
    }
}
