//! Each record's columns in one place: their names, how a record binds them for a write and
//! how a row decodes back into it (the same columns as the SQLite store, in PostgreSQL types).

use crate::model::{
    ApplicationStatus, AudienceKind, AudienceRecord, Brand, ChatRecord, DealerApplication,
    DealerRecord, Draw, FlashSale, Order, OrderStatus, Product, RedPacket, RoomRecord, RoomState,
};
use crate::store::columns;
use crate::store::{BoxError, StoreError};
use serde::de::DeserializeOwned;
use serde::Serialize;
use tokio_postgres::types::{FromSqlOwned, Json, ToSql};
use tokio_postgres::Row;

/// One bound value of a statement.
pub(super) type Param = Box<dyn ToSql + Sync + Send>;

/// `params` as the driver takes them.
pub(super) fn refs(params: &[Param]) -> Vec<&(dyn ToSql + Sync)> {
    params
        .iter()
        .map(|p| p.as_ref() as &(dyn ToSql + Sync))
        .collect()
}

/// A record kept as one row of its table.
pub(super) trait Stored: Sized {
    const TABLE: &'static str;
    /// Whether the table's first column is `room`, which the record does not carry.
    const IN_ROOM: bool = true;
    /// Its own columns, in the order `bind` writes and `decode` reads them.
    const COLUMNS: &'static [&'static str];

    fn bind(&self, p: &mut Values);
    fn decode(c: &mut Columns<'_>) -> Result<Self, BoxError>;
}

/// `INSERT INTO table ([room,] columns…) VALUES ($1, …) tail`; `room` is `$1` when present.
pub(super) fn insert_sql<T: Stored>(tail: &str) -> String {
    let room = usize::from(T::IN_ROOM);
    let names = if T::IN_ROOM { "room, " } else { "" };
    let marks: Vec<String> = (1..=room + T::COLUMNS.len())
        .map(|i| format!("${i}"))
        .collect();
    format!(
        "INSERT INTO {} ({names}{}) VALUES ({}) {tail}",
        T::TABLE,
        T::COLUMNS.join(", "),
        marks.join(", ")
    )
}

/// `SELECT columns… FROM table tail`, the columns in [`Stored::decode`]'s order.
pub(super) fn select_sql<T: Stored>(tail: &str) -> String {
    format!("SELECT {} FROM {} {tail}", T::COLUMNS.join(", "), T::TABLE)
}

/// The parameters of an [`insert_sql`] statement of `T` for `record` (in `room`, if a room's).
pub(super) fn values<T: Stored>(room: Option<&str>, record: &T) -> Vec<Param> {
    let mut p = Values(Vec::with_capacity(1 + T::COLUMNS.len()));
    if let Some(room) = room {
        p.text(room);
    }
    record.bind(&mut p);
    debug_assert_eq!(
        p.0.len(),
        usize::from(T::IN_ROOM) + T::COLUMNS.len(),
        "{} binds one value per column",
        T::TABLE
    );
    p.0
}

/// Decodes a row selected by [`select_sql`]; `op` names the read in errors.
pub(super) fn decode<T: Stored>(op: &'static str, row: &Row) -> Result<T, StoreError> {
    T::decode(&mut Columns { row, next: 0 }).map_err(|source| StoreError::Corrupt { op, source })
}

/// A statement's parameters, one after the other.
pub(super) struct Values(Vec<Param>);

impl Values {
    pub(super) fn text(&mut self, v: &str) {
        self.0.push(Box::new(v.to_string()));
    }
    pub(super) fn opt_text(&mut self, v: &Option<String>) {
        self.0.push(Box::new(v.clone()));
    }
    pub(super) fn int(&mut self, v: impl Into<i64>) {
        self.0.push(Box::new(v.into()));
    }
    pub(super) fn opt_int(&mut self, v: Option<i64>) {
        self.0.push(Box::new(v));
    }
    pub(super) fn boolean(&mut self, v: bool) {
        self.0.push(Box::new(v));
    }
    /// A value kept as JSONB.
    pub(super) fn json<T: Serialize>(&mut self, v: &T) {
        let value = serde_json::to_value(v).expect("records serialise to JSON");
        self.0.push(Box::new(Json(value)));
    }
}

/// A row's columns, one after the other.
pub(super) struct Columns<'r> {
    row: &'r Row,
    next: usize,
}

impl Columns<'_> {
    pub(super) fn get<T: FromSqlOwned>(&mut self) -> Result<T, BoxError> {
        let value = self.row.try_get(self.next)?;
        self.next += 1;
        Ok(value)
    }

    /// A BIGINT column that holds an unsigned 32-bit value.
    pub(super) fn u32(&mut self) -> Result<u32, BoxError> {
        let column = self.next;
        let v: i64 = self.get()?;
        u32::try_from(v).map_err(|_| format!("column {column}: {v} is out of range").into())
    }

    pub(super) fn json<T: DeserializeOwned>(&mut self) -> Result<T, BoxError> {
        let Json(value): Json<serde_json::Value> = self.get()?;
        Ok(serde_json::from_value(value)?)
    }

    /// An enum kept as its `as_str` name.
    pub(super) fn name<T>(&mut self, parse: fn(&str) -> Option<T>) -> Result<T, BoxError> {
        let column = self.next;
        let text: String = self.get()?;
        parse(&text).ok_or_else(|| format!("column {column}: unknown value {text:?}").into())
    }
}

impl Stored for RoomRecord {
    const TABLE: &'static str = "rooms";
    const IN_ROOM: bool = false;
    const COLUMNS: &'static [&'static str] = columns::ROOM;

    fn bind(&self, p: &mut Values) {
        p.text(&self.id);
        p.text(&self.title);
        p.text(self.state.as_str());
        p.int(self.scheduled_start_ms);
        p.json(&self.chat_rate_limit);
        p.json(&self.banned_words);
        p.int(self.history_window);
        p.json(&self.tiers);
        p.text(&self.currency);
        p.text(self.token_key.expose());
        p.opt_text(&self.brand_on_air);
        p.opt_text(&self.pinned_product);
        p.int(self.created_ms);
        p.opt_int(self.opened_ms);
        p.opt_int(self.ended_ms);
        // Ids count up from 1; never near 2^63.
        p.int(self.next_id as i64);
    }

    fn decode(c: &mut Columns<'_>) -> Result<Self, BoxError> {
        Ok(RoomRecord {
            id: c.get()?,
            title: c.get()?,
            state: c.name(RoomState::parse)?,
            scheduled_start_ms: c.get()?,
            chat_rate_limit: c.json()?,
            banned_words: c.json()?,
            history_window: c.u32()?,
            tiers: c.json()?,
            currency: c.get()?,
            token_key: crate::model::Secret::new(c.get::<String>()?),
            brand_on_air: c.get()?,
            pinned_product: c.get()?,
            created_ms: c.get()?,
            opened_ms: c.get()?,
            ended_ms: c.get()?,
            next_id: c.get::<i64>()? as u64,
        })
    }
}

impl Stored for Brand {
    const TABLE: &'static str = "brands";
    const COLUMNS: &'static [&'static str] = columns::BRAND;

    fn bind(&self, p: &mut Values) {
        p.text(&self.id);
        p.text(&self.name);
        p.text(&self.logo_url);
        p.int(self.position);
    }

    fn decode(c: &mut Columns<'_>) -> Result<Self, BoxError> {
        Ok(Brand {
            id: c.get()?,
            name: c.get()?,
            logo_url: c.get()?,
            position: c.u32()?,
        })
    }
}

impl Stored for Product {
    const TABLE: &'static str = "products";
    const COLUMNS: &'static [&'static str] = columns::PRODUCT;

    fn bind(&self, p: &mut Values) {
        p.text(&self.id);
        p.text(&self.brand_id);
        p.text(&self.name);
        p.text(&self.description);
        p.json(&self.image_urls);
        p.text(&self.link);
        p.int(self.min_order_quantity);
        p.json(&self.prices);
    }

    fn decode(c: &mut Columns<'_>) -> Result<Self, BoxError> {
        Ok(Product {
            id: c.get()?,
            brand_id: c.get()?,
            name: c.get()?,
            description: c.get()?,
            image_urls: c.json()?,
            link: c.get()?,
            min_order_quantity: c.u32()?,
            prices: c.json()?,
        })
    }
}

impl Stored for DealerRecord {
    const TABLE: &'static str = "dealers";
    const COLUMNS: &'static [&'static str] = columns::DEALER;

    fn bind(&self, p: &mut Values) {
        p.text(&self.viewer_id);
        p.opt_text(&self.tier);
        p.text(&self.company);
        p.int(self.updated_ms);
    }

    fn decode(c: &mut Columns<'_>) -> Result<Self, BoxError> {
        Ok(DealerRecord {
            viewer_id: c.get()?,
            tier: c.get()?,
            company: c.get()?,
            updated_ms: c.get()?,
        })
    }
}

impl Stored for DealerApplication {
    const TABLE: &'static str = "applications";
    const COLUMNS: &'static [&'static str] = columns::APPLICATION;

    fn bind(&self, p: &mut Values) {
        p.text(&self.id);
        p.text(&self.viewer_id);
        p.text(&self.display_name);
        p.text(&self.company);
        p.text(&self.licence_number);
        p.text(&self.contact);
        p.text(self.status.as_str());
        p.opt_text(&self.tier);
        p.opt_text(&self.reason);
        p.int(self.created_ms);
        p.opt_int(self.decided_ms);
    }

    fn decode(c: &mut Columns<'_>) -> Result<Self, BoxError> {
        Ok(DealerApplication {
            id: c.get()?,
            viewer_id: c.get()?,
            display_name: c.get()?,
            company: c.get()?,
            licence_number: c.get()?,
            contact: c.get()?,
            status: c.name(ApplicationStatus::parse)?,
            tier: c.get()?,
            reason: c.get()?,
            created_ms: c.get()?,
            decided_ms: c.get()?,
        })
    }
}

impl Stored for ChatRecord {
    const TABLE: &'static str = "chat";
    const COLUMNS: &'static [&'static str] = columns::CHAT;

    fn bind(&self, p: &mut Values) {
        p.text(&self.id);
        p.int(self.seq as i64);
        p.text(&self.viewer_id);
        p.text(&self.display_name);
        p.text(&self.text);
        p.int(self.at_ms);
        p.boolean(self.is_dealer);
    }

    fn decode(c: &mut Columns<'_>) -> Result<Self, BoxError> {
        Ok(ChatRecord {
            id: c.get()?,
            seq: c.get::<i64>()? as u64,
            viewer_id: c.get()?,
            display_name: c.get()?,
            text: c.get()?,
            at_ms: c.get()?,
            is_dealer: c.get()?,
        })
    }
}

impl Stored for AudienceRecord {
    const TABLE: &'static str = "audience";
    const COLUMNS: &'static [&'static str] = columns::AUDIENCE;

    fn bind(&self, p: &mut Values) {
        p.text(&self.viewer_id);
        // Session ids keep their top bit clear, so they fit a signed column as they are.
        p.int(self.session as i64);
        p.text(self.kind.as_str());
        p.opt_text(&self.inviter_id);
        p.opt_text(&self.tier);
        p.int(self.at_ms);
    }

    fn decode(c: &mut Columns<'_>) -> Result<Self, BoxError> {
        Ok(AudienceRecord {
            viewer_id: c.get()?,
            session: c.get::<i64>()? as u64,
            kind: c.name(AudienceKind::parse)?,
            inviter_id: c.get()?,
            tier: c.get()?,
            at_ms: c.get()?,
        })
    }
}

impl Stored for Order {
    const TABLE: &'static str = "orders";
    const COLUMNS: &'static [&'static str] = columns::ORDER;

    fn bind(&self, p: &mut Values) {
        p.text(&self.id);
        p.text(&self.viewer_id);
        p.text(&self.display_name);
        p.text(&self.tier);
        p.text(&self.brand_id);
        p.text(&self.product_id);
        p.text(&self.product_name);
        p.int(self.quantity);
        p.int(self.unit_price_cents);
        p.int(self.total_cents);
        p.text(&self.currency);
        p.text(self.status.as_str());
        p.opt_text(&self.status_reason);
        p.opt_text(&self.sale_id);
        p.opt_text(&self.inviter_id);
        p.text(&self.idempotency_key);
        p.int(self.created_ms);
        p.int(self.updated_ms);
    }

    fn decode(c: &mut Columns<'_>) -> Result<Self, BoxError> {
        Ok(Order {
            id: c.get()?,
            viewer_id: c.get()?,
            display_name: c.get()?,
            tier: c.get()?,
            brand_id: c.get()?,
            product_id: c.get()?,
            product_name: c.get()?,
            quantity: c.u32()?,
            unit_price_cents: c.get()?,
            total_cents: c.get()?,
            currency: c.get()?,
            status: c.name(OrderStatus::parse)?,
            status_reason: c.get()?,
            sale_id: c.get()?,
            inviter_id: c.get()?,
            idempotency_key: c.get()?,
            created_ms: c.get()?,
            updated_ms: c.get()?,
        })
    }
}

/// Many orders as one array per column (the rows of an `UNNEST`), in [`Order`]'s column
/// order, with the room first: how a run of flash-sale grants is inserted in one statement.
#[derive(Default)]
pub(super) struct OrderArrays {
    room: Vec<String>,
    text: [Vec<String>; 7],
    ints: [Vec<i64>; 3],
    currency: Vec<String>,
    status: Vec<String>,
    opt: [Vec<Option<String>>; 3],
    key: Vec<String>,
    times: [Vec<i64>; 2],
}

impl OrderArrays {
    /// The `INSERT … SELECT * FROM UNNEST(…)` these arrays bind.
    pub(super) fn insert_sql() -> String {
        let types = [
            "text", "text", "text", "text", "text", "text", "text", "text", "bigint", "bigint",
            "bigint", "text", "text", "text", "text", "text", "text", "bigint", "bigint",
        ];
        debug_assert_eq!(types.len(), 1 + Order::COLUMNS.len());
        let arrays: Vec<String> = types
            .iter()
            .enumerate()
            .map(|(i, t)| format!("${}::{t}[]", i + 1))
            .collect();
        format!(
            "INSERT INTO orders (room, {}) SELECT * FROM UNNEST({})",
            Order::COLUMNS.join(", "),
            arrays.join(", ")
        )
    }

    pub(super) fn push(&mut self, room: &str, o: &Order) {
        self.room.push(room.to_string());
        for (column, v) in self.text.iter_mut().zip([
            &o.id,
            &o.viewer_id,
            &o.display_name,
            &o.tier,
            &o.brand_id,
            &o.product_id,
            &o.product_name,
        ]) {
            column.push(v.clone());
        }
        for (column, v) in
            self.ints
                .iter_mut()
                .zip([i64::from(o.quantity), o.unit_price_cents, o.total_cents])
        {
            column.push(v);
        }
        self.currency.push(o.currency.clone());
        self.status.push(o.status.as_str().to_string());
        for (column, v) in self
            .opt
            .iter_mut()
            .zip([&o.status_reason, &o.sale_id, &o.inviter_id])
        {
            column.push(v.clone());
        }
        self.key.push(o.idempotency_key.clone());
        self.times[0].push(o.created_ms);
        self.times[1].push(o.updated_ms);
    }

    pub(super) fn into_params(self) -> Vec<Param> {
        let mut p: Vec<Param> = vec![Box::new(self.room)];
        p.extend(self.text.into_iter().map(|c| Box::new(c) as Param));
        p.extend(self.ints.into_iter().map(|c| Box::new(c) as Param));
        p.push(Box::new(self.currency));
        p.push(Box::new(self.status));
        p.extend(self.opt.into_iter().map(|c| Box::new(c) as Param));
        p.push(Box::new(self.key));
        p.extend(self.times.into_iter().map(|c| Box::new(c) as Param));
        p
    }
}

impl Stored for FlashSale {
    const TABLE: &'static str = "flash_sales";
    const COLUMNS: &'static [&'static str] = columns::FLASH_SALE;

    fn bind(&self, p: &mut Values) {
        p.text(&self.id);
        p.text(&self.product_id);
        p.text(&self.brand_id);
        p.int(self.stock);
        p.int(self.remaining);
        p.int(self.per_dealer_limit);
        p.json(&self.prices);
        p.int(self.start_ms);
        p.int(self.end_ms);
        p.opt_int(self.ended_ms);
        p.int(self.created_ms);
    }

    fn decode(c: &mut Columns<'_>) -> Result<Self, BoxError> {
        Ok(FlashSale {
            id: c.get()?,
            product_id: c.get()?,
            brand_id: c.get()?,
            stock: c.u32()?,
            remaining: c.u32()?,
            per_dealer_limit: c.u32()?,
            prices: c.json()?,
            start_ms: c.get()?,
            end_ms: c.get()?,
            ended_ms: c.get()?,
            created_ms: c.get()?,
        })
    }
}

/// A draw's entrants live in `draw_entrants`; this row leaves them empty.
impl Stored for Draw {
    const TABLE: &'static str = "draws";
    const COLUMNS: &'static [&'static str] = columns::DRAW;

    fn bind(&self, p: &mut Values) {
        p.text(&self.id);
        p.text(&self.prize);
        p.int(self.winners_count);
        p.json(&self.eligibility);
        p.int(self.opened_ms);
        p.int(self.closes_ms);
        p.opt_int(self.closed_ms);
        p.opt_int(self.drawn_ms);
        p.text(&self.seed);
        p.text(&self.commitment);
        p.text(&self.beacon_source);
        p.text(&self.beacon);
        p.opt_text(&self.entrants_hash);
        p.json(&self.winners);
    }

    fn decode(c: &mut Columns<'_>) -> Result<Self, BoxError> {
        Ok(Draw {
            id: c.get()?,
            prize: c.get()?,
            winners_count: c.u32()?,
            eligibility: c.json()?,
            opened_ms: c.get()?,
            closes_ms: c.get()?,
            closed_ms: c.get()?,
            drawn_ms: c.get()?,
            seed: c.get()?,
            commitment: c.get()?,
            beacon_source: c.get()?,
            beacon: c.get()?,
            entrants: Vec::new(),
            entrants_hash: c.get()?,
            winners: c.json()?,
        })
    }
}

/// A red packet's grabs live in `red_packet_grabs`; this row leaves them empty.
impl Stored for RedPacket {
    const TABLE: &'static str = "red_packets";
    const COLUMNS: &'static [&'static str] = columns::RED_PACKET;

    fn bind(&self, p: &mut Values) {
        p.text(&self.id);
        p.int(self.total_cents);
        p.int(self.count);
        p.json(&self.tiers);
        p.text(&self.message);
        p.json(&self.amounts);
        p.int(self.created_ms);
        p.int(self.expires_ms);
    }

    fn decode(c: &mut Columns<'_>) -> Result<Self, BoxError> {
        Ok(RedPacket {
            id: c.get()?,
            total_cents: c.get()?,
            count: c.u32()?,
            tiers: c.json()?,
            message: c.get()?,
            amounts: c.json()?,
            created_ms: c.get()?,
            expires_ms: c.get()?,
            grabs: Vec::new(),
        })
    }
}
