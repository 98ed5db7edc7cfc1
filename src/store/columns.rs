//! Each stored record's column names, in the order every backend binds and decodes them:
//! one list per table, so the SQLite and PostgreSQL schemas cannot drift apart.

/// The `ON CONFLICT (key) DO UPDATE SET …` tail of an upsert that replaces every column of
/// `columns` but those of `key` (comma-separated); both backends speak this SQL.
pub(crate) fn upsert_tail(columns: &[&str], key: &str) -> String {
    let set: Vec<String> = columns
        .iter()
        .filter(|c| !key.split(", ").any(|k| k == **c))
        .map(|c| format!("{c} = excluded.{c}"))
        .collect();
    format!("ON CONFLICT ({key}) DO UPDATE SET {}", set.join(", "))
}

/// [`crate::model::RoomRecord`]'s own columns (a room's table also has `room` first).
pub(crate) const ROOM: &[&str] = &[
    "id",
    "title",
    "state",
    "scheduled_start_ms",
    "chat_rate_limit",
    "banned_words",
    "history_window",
    "tiers",
    "currency",
    "token_key",
    "brand_on_air",
    "pinned_product",
    "created_ms",
    "opened_ms",
    "ended_ms",
    "next_id",
    "registration",
    "phone_country",
];

/// [`crate::model::Brand`]'s own columns (a room's table also has `room` first).
pub(crate) const BRAND: &[&str] = &["id", "name", "logo_url", "position"];

/// [`crate::model::Product`]'s own columns (a room's table also has `room` first).
pub(crate) const PRODUCT: &[&str] = &[
    "id",
    "brand_id",
    "name",
    "description",
    "image_urls",
    "link",
    "min_order_quantity",
    "prices",
];

/// [`crate::model::DealerRecord`]'s own columns (a room's table also has `room` first).
pub(crate) const DEALER: &[&str] = &["viewer_id", "tier", "company", "updated_ms"];

/// [`crate::model::DealerApplication`]'s own columns (a room's table also has `room` first).
pub(crate) const APPLICATION: &[&str] = &[
    "id",
    "viewer_id",
    "display_name",
    "company",
    "licence_number",
    "contact",
    "status",
    "tier",
    "reason",
    "created_ms",
    "decided_ms",
];

/// [`crate::model::ChatRecord`]'s own columns (a room's table also has `room` first).
pub(crate) const CHAT: &[&str] = &[
    "id",
    "seq",
    "viewer_id",
    "display_name",
    "text",
    "at_ms",
    "is_dealer",
];

/// [`crate::model::AudienceRecord`]'s own columns (a room's table also has `room` first).
pub(crate) const AUDIENCE: &[&str] = &[
    "viewer_id",
    "session",
    "kind",
    "inviter_id",
    "tier",
    "at_ms",
];

/// [`crate::model::Order`]'s own columns (a room's table also has `room` first).
pub(crate) const ORDER: &[&str] = &[
    "id",
    "viewer_id",
    "display_name",
    "tier",
    "brand_id",
    "product_id",
    "product_name",
    "quantity",
    "unit_price_cents",
    "total_cents",
    "currency",
    "status",
    "status_reason",
    "sale_id",
    "inviter_id",
    "idempotency_key",
    "created_ms",
    "updated_ms",
];

/// [`crate::model::FlashSale`]'s own columns (a room's table also has `room` first).
pub(crate) const FLASH_SALE: &[&str] = &[
    "id",
    "product_id",
    "brand_id",
    "stock",
    "remaining",
    "per_dealer_limit",
    "prices",
    "start_ms",
    "end_ms",
    "ended_ms",
    "created_ms",
];

/// [`crate::model::Draw`]'s own columns (a room's table also has `room` first).
pub(crate) const DRAW: &[&str] = &[
    "id",
    "prize",
    "winners_count",
    "eligibility",
    "opened_ms",
    "closes_ms",
    "closed_ms",
    "drawn_ms",
    "seed",
    "commitment",
    "beacon_source",
    "beacon",
    "entrants_hash",
    "winners",
];

/// [`crate::model::RedPacket`]'s own columns (a room's table also has `room` first).
pub(crate) const RED_PACKET: &[&str] = &[
    "id",
    "total_cents",
    "count",
    "tiers",
    "message",
    "amounts",
    "created_ms",
    "expires_ms",
];

/// [`crate::model::Registration`]'s own columns (a room's table also has `room` first).
pub(crate) const REGISTRATION: &[&str] = &[
    "id",
    "viewer_id",
    "name",
    "company",
    "phone",
    "status",
    "source",
    "invite_code",
    "secret",
    "inviter_id",
    "channel",
    "created_ms",
    "decided_ms",
    "erased_ms",
];

/// [`crate::model::Channel`]'s own columns (a room's table also has `room` first).
pub(crate) const CHANNEL: &[&str] = &["code", "name", "created_ms"];

/// The `WHERE` clause of a registrations read, with `room` as the first parameter and the
/// key's value (if any) as the second; `mark` is how the backend numbers them (`?` or `$`).
pub(crate) fn registration_filter(
    key: &crate::model::RegistrationKey,
    mark: char,
) -> (String, Option<&str>) {
    use crate::model::RegistrationKey as K;
    let (column, value) = match key {
        K::All => return (format!("WHERE room = {mark}1"), None),
        K::Id(v) => ("id", v),
        K::Phone(v) => ("phone", v),
        K::InviteCode(v) => ("invite_code", v),
        K::ViewerId(v) => ("viewer_id", v),
    };
    (
        format!("WHERE room = {mark}1 AND {column} = {mark}2"),
        Some(value.as_str()),
    )
}
