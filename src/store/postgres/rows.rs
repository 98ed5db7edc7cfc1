//! Each record's columns in one place: their names, how a record binds them for a write and
//! how a row decodes back into it (the same columns as the SQLite store, in PostgreSQL types).

use crate::model::{
    ApplicationStatus, AudienceKind, AudienceRecord, Brand, ChatRecord, DealerApplication,
    DealerRecord, Draw, FlashSale, Order, OrderStatus, Product, RedPacket, RoomRecord, RoomState,
};
use crate::model::{
    Channel, Registration, RegistrationMode, RegistrationSource, RegistrationStatus, Secret,
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

    fn bind(&self, p: &mut impl Sink);
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

/// The `INSERT … SELECT * FROM UNNEST($1::type[], …) tail` of `T` whose parameters are the
/// columns of an [`Arrays`]; `types` are the columns' SQL types (from the single-row insert
/// PostgreSQL prepared, so they follow the schema).
pub(super) fn unnest_sql<T: Stored>(types: &[&str], tail: &str) -> String {
    let names = if T::IN_ROOM { "room, " } else { "" };
    let arrays: Vec<String> = types
        .iter()
        .enumerate()
        .map(|(i, t)| format!("${}::{t}[]", i + 1))
        .collect();
    format!(
        "INSERT INTO {} ({names}{}) SELECT * FROM UNNEST({}) {tail}",
        T::TABLE,
        T::COLUMNS.join(", "),
        arrays.join(", ")
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

/// Where a record's values go: a statement's parameters ([`Values`]) or one array per
/// column for `UNNEST` ([`Arrays`]).
pub(super) trait Sink {
    fn text(&mut self, v: &str);
    fn opt_text(&mut self, v: &Option<String>);
    fn int(&mut self, v: impl Into<i64>);
    fn opt_int(&mut self, v: Option<i64>);
    fn boolean(&mut self, v: bool);
    /// A value kept as JSONB.
    fn json<T: Serialize>(&mut self, v: &T);
}

fn to_json<T: Serialize>(v: &T) -> Json<serde_json::Value> {
    Json(serde_json::to_value(v).expect("records serialise to JSON"))
}

/// A statement's parameters, one after the other.
pub(super) struct Values(Vec<Param>);

impl Sink for Values {
    fn text(&mut self, v: &str) {
        self.0.push(Box::new(v.to_string()));
    }
    fn opt_text(&mut self, v: &Option<String>) {
        self.0.push(Box::new(v.clone()));
    }
    fn int(&mut self, v: impl Into<i64>) {
        self.0.push(Box::new(v.into()));
    }
    fn opt_int(&mut self, v: Option<i64>) {
        self.0.push(Box::new(v));
    }
    fn boolean(&mut self, v: bool) {
        self.0.push(Box::new(v));
    }
    fn json<T: Serialize>(&mut self, v: &T) {
        self.0.push(Box::new(to_json(v)));
    }
}

/// One column of many rows.
enum Column {
    Text(Vec<String>),
    OptText(Vec<Option<String>>),
    Int(Vec<i64>),
    OptInt(Vec<Option<i64>>),
    Bool(Vec<bool>),
    Json(Vec<Json<serde_json::Value>>),
}

/// Many records of one type as one array per column (the parameters of an [`unnest_sql`]
/// statement): a run of rows is bound as a fixed number of parameters.
#[derive(Default)]
pub(super) struct Arrays {
    columns: Vec<Column>,
    at: usize,
    rows: usize,
}

impl Arrays {
    /// Adds `record` (in `room`, if a room's) as the next row.
    pub(super) fn push<T: Stored>(&mut self, room: Option<&str>, record: &T) {
        self.at = 0;
        if let Some(room) = room {
            self.text(room);
        }
        record.bind(self);
        self.rows += 1;
    }

    pub(super) fn rows(&self) -> usize {
        self.rows
    }

    pub(super) fn into_params(self) -> Vec<Param> {
        self.columns
            .into_iter()
            .map(|c| -> Param {
                match c {
                    Column::Text(v) => Box::new(v),
                    Column::OptText(v) => Box::new(v),
                    Column::Int(v) => Box::new(v),
                    Column::OptInt(v) => Box::new(v),
                    Column::Bool(v) => Box::new(v),
                    Column::Json(v) => Box::new(v),
                }
            })
            .collect()
    }

    /// The current column, created by the first row.
    fn column(&mut self, new: fn() -> Column) -> &mut Column {
        if self.at == self.columns.len() {
            self.columns.push(new());
        }
        self.at += 1;
        &mut self.columns[self.at - 1]
    }
}

/// Pushes onto the current column, which must be of the variant every row binds there.
macro_rules! push_column {
    ($self:ident, $variant:ident, $value:expr) => {
        match $self.column(|| Column::$variant(Vec::new())) {
            Column::$variant(v) => v.push($value),
            _ => unreachable!("a record binds the same kinds in the same order"),
        }
    };
}

impl Sink for Arrays {
    fn text(&mut self, v: &str) {
        push_column!(self, Text, v.to_string())
    }
    fn opt_text(&mut self, v: &Option<String>) {
        push_column!(self, OptText, v.clone())
    }
    fn int(&mut self, v: impl Into<i64>) {
        push_column!(self, Int, v.into())
    }
    fn opt_int(&mut self, v: Option<i64>) {
        push_column!(self, OptInt, v)
    }
    fn boolean(&mut self, v: bool) {
        push_column!(self, Bool, v)
    }
    fn json<T: Serialize>(&mut self, v: &T) {
        push_column!(self, Json, to_json(v))
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

    fn bind(&self, p: &mut impl Sink) {
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
        p.text(self.registration.as_str());
        p.text(&self.phone_country);
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
            registration: c.name(RegistrationMode::parse)?,
            phone_country: c.get()?,
        })
    }
}

impl Stored for Brand {
    const TABLE: &'static str = "brands";
    const COLUMNS: &'static [&'static str] = columns::BRAND;

    fn bind(&self, p: &mut impl Sink) {
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

    fn bind(&self, p: &mut impl Sink) {
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

    fn bind(&self, p: &mut impl Sink) {
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

    fn bind(&self, p: &mut impl Sink) {
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

    fn bind(&self, p: &mut impl Sink) {
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

    fn bind(&self, p: &mut impl Sink) {
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

    fn bind(&self, p: &mut impl Sink) {
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

impl Stored for FlashSale {
    const TABLE: &'static str = "flash_sales";
    const COLUMNS: &'static [&'static str] = columns::FLASH_SALE;

    fn bind(&self, p: &mut impl Sink) {
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

    fn bind(&self, p: &mut impl Sink) {
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

    fn bind(&self, p: &mut impl Sink) {
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

impl Stored for Registration {
    const TABLE: &'static str = "registrations";
    const COLUMNS: &'static [&'static str] = columns::REGISTRATION;

    fn bind(&self, p: &mut impl Sink) {
        p.text(&self.id);
        p.text(&self.viewer_id);
        p.text(&self.name);
        p.text(&self.company);
        p.text(&self.phone);
        p.text(self.status.as_str());
        p.text(self.source.as_str());
        p.text(&self.invite_code);
        p.text(self.secret.expose());
        p.opt_text(&self.inviter_id);
        p.opt_text(&self.channel);
        p.int(self.created_ms);
        p.opt_int(self.decided_ms);
        p.opt_int(self.erased_ms);
    }

    fn decode(c: &mut Columns<'_>) -> Result<Self, BoxError> {
        let mut r = Registration {
            id: c.get()?,
            viewer_id: c.get()?,
            name: c.get()?,
            company: c.get()?,
            phone: c.get()?,
            status: c.name(RegistrationStatus::parse)?,
            source: c.name(RegistrationSource::parse)?,
            invite_code: c.get()?,
            secret: Secret::new(c.get::<String>()?),
            inviter_id: c.get()?,
            channel: c.get()?,
            created_ms: c.get()?,
            decided_ms: c.get()?,
            erased_ms: c.get()?,
        };
        // An erased phone is stored as `erased:<id>` (phones are unique in a room): read as none.
        if r.erased_ms.is_some() {
            r.phone.clear();
        }
        Ok(r)
    }
}

impl Stored for Channel {
    const TABLE: &'static str = "channels";
    const COLUMNS: &'static [&'static str] = columns::CHANNEL;

    fn bind(&self, p: &mut impl Sink) {
        p.text(&self.code);
        p.text(&self.name);
        p.int(self.created_ms);
    }

    fn decode(c: &mut Columns<'_>) -> Result<Self, BoxError> {
        Ok(Channel {
            code: c.get()?,
            name: c.get()?,
            created_ms: c.get()?,
        })
    }
}
