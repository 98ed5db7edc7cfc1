//! Each record's columns in one place: their names, how a record binds them for a write and
//! how a row decodes back into it. Every statement that writes or reads a record goes
//! through its [`Stored`] impl, and its SQL is built from the same column list.

use crate::model::{
    ApplicationStatus, AudienceKind, AudienceRecord, Brand, ChatRecord, DealerApplication,
    DealerRecord, Draw, FlashSale, Order, OrderStatus, Product, RedPacket, RoomRecord, RoomState,
};
use crate::model::{
    Channel, Registration, RegistrationMode, RegistrationSource, RegistrationStatus, Secret,
};
use crate::store::columns;
use rusqlite::types::{FromSql, Type};
use rusqlite::{Row, Statement, ToSql};
use serde::de::DeserializeOwned;
use serde::Serialize;

/// A record kept as one row of its table.
pub(super) trait Stored: Sized {
    const TABLE: &'static str;
    /// Whether the table's first column is `room`, which the record does not carry.
    const IN_ROOM: bool = true;
    /// Its own columns, in the order `bind` writes and `decode` reads them.
    const COLUMNS: &'static [&'static str];

    fn bind(&self, p: &mut Params<'_, '_>) -> rusqlite::Result<()>;
    fn decode(c: &mut Columns<'_, '_>) -> rusqlite::Result<Self>;
}

/// `INSERT INTO table ([room,] columns…) VALUES (?1, …) tail`; `room` is `?1` when present.
pub(super) fn insert_sql<T: Stored>(tail: &str) -> String {
    let room = usize::from(T::IN_ROOM);
    let names = if T::IN_ROOM { "room, " } else { "" };
    let marks: Vec<String> = (1..=room + T::COLUMNS.len())
        .map(|i| format!("?{i}"))
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

/// Executes an [`insert_sql`] statement of `T` for `record` (in `room`, when `T` is a room's).
pub(super) fn execute<T: Stored>(
    stmt: &mut Statement<'_>,
    room: Option<&str>,
    record: &T,
) -> rusqlite::Result<usize> {
    let mut p = Params { stmt, next: 1 };
    if let Some(room) = room {
        p.put(room)?;
    }
    record.bind(&mut p)?;
    debug_assert_eq!(
        p.next - 1,
        usize::from(T::IN_ROOM) + T::COLUMNS.len(),
        "{} binds one value per column",
        T::TABLE
    );
    stmt.raw_execute()
}

/// Decodes a row selected by [`select_sql`].
pub(super) fn decode<T: Stored>(row: &Row<'_>) -> rusqlite::Result<T> {
    T::decode(&mut Columns { row, next: 0 })
}

/// Binds a statement's parameters one after the other.
pub(super) struct Params<'s, 'c> {
    stmt: &'s mut Statement<'c>,
    next: usize,
}

impl Params<'_, '_> {
    pub(super) fn put<T: ToSql>(&mut self, value: T) -> rusqlite::Result<()> {
        self.stmt.raw_bind_parameter(self.next, value)?;
        self.next += 1;
        Ok(())
    }

    /// A value kept as JSON text.
    pub(super) fn json<T: Serialize>(&mut self, value: &T) -> rusqlite::Result<()> {
        let text = serde_json::to_string(value)
            .map_err(|e| rusqlite::Error::ToSqlConversionFailure(Box::new(e)))?;
        self.put(text)
    }
}

/// Reads a row's columns one after the other.
pub(super) struct Columns<'a, 'r> {
    row: &'a Row<'r>,
    next: usize,
}

impl Columns<'_, '_> {
    pub(super) fn get<T: FromSql>(&mut self) -> rusqlite::Result<T> {
        let value = self.row.get(self.next);
        self.next += 1;
        value
    }

    pub(super) fn json<T: DeserializeOwned>(&mut self) -> rusqlite::Result<T> {
        let idx = self.next;
        let text: String = self.get()?;
        serde_json::from_str(&text)
            .map_err(|e| rusqlite::Error::FromSqlConversionFailure(idx, Type::Text, Box::new(e)))
    }

    /// An enum kept as its `as_str` name.
    pub(super) fn name<T>(&mut self, parse: fn(&str) -> Option<T>) -> rusqlite::Result<T> {
        let idx = self.next;
        let text: String = self.get()?;
        parse(&text).ok_or_else(|| {
            rusqlite::Error::FromSqlConversionFailure(
                idx,
                Type::Text,
                format!("unknown value {text:?}").into(),
            )
        })
    }
}

impl Stored for RoomRecord {
    const TABLE: &'static str = "rooms";
    const IN_ROOM: bool = false;
    const COLUMNS: &'static [&'static str] = columns::ROOM;

    fn bind(&self, p: &mut Params<'_, '_>) -> rusqlite::Result<()> {
        p.put(&self.id)?;
        p.put(&self.title)?;
        p.put(self.state.as_str())?;
        p.put(self.scheduled_start_ms)?;
        p.json(&self.chat_rate_limit)?;
        p.json(&self.banned_words)?;
        p.put(self.history_window)?;
        p.json(&self.tiers)?;
        p.put(&self.currency)?;
        p.put(self.token_key.expose())?;
        p.put(&self.brand_on_air)?;
        p.put(&self.pinned_product)?;
        p.put(self.created_ms)?;
        p.put(self.opened_ms)?;
        p.put(self.ended_ms)?;
        p.put(self.next_id)?;
        p.put(self.registration.as_str())?;
        p.put(&self.phone_country)
    }

    fn decode(c: &mut Columns<'_, '_>) -> rusqlite::Result<Self> {
        Ok(RoomRecord {
            id: c.get()?,
            title: c.get()?,
            state: c.name(RoomState::parse)?,
            scheduled_start_ms: c.get()?,
            chat_rate_limit: c.json()?,
            banned_words: c.json()?,
            history_window: c.get()?,
            tiers: c.json()?,
            currency: c.get()?,
            token_key: crate::model::Secret::new(c.get::<String>()?),
            brand_on_air: c.get()?,
            pinned_product: c.get()?,
            created_ms: c.get()?,
            opened_ms: c.get()?,
            ended_ms: c.get()?,
            next_id: c.get()?,
            registration: c.name(RegistrationMode::parse)?,
            phone_country: c.get()?,
        })
    }
}

impl Stored for Brand {
    const TABLE: &'static str = "brands";
    const COLUMNS: &'static [&'static str] = columns::BRAND;

    fn bind(&self, p: &mut Params<'_, '_>) -> rusqlite::Result<()> {
        p.put(&self.id)?;
        p.put(&self.name)?;
        p.put(&self.logo_url)?;
        p.put(self.position)
    }

    fn decode(c: &mut Columns<'_, '_>) -> rusqlite::Result<Self> {
        Ok(Brand {
            id: c.get()?,
            name: c.get()?,
            logo_url: c.get()?,
            position: c.get()?,
        })
    }
}

impl Stored for Product {
    const TABLE: &'static str = "products";
    const COLUMNS: &'static [&'static str] = columns::PRODUCT;

    fn bind(&self, p: &mut Params<'_, '_>) -> rusqlite::Result<()> {
        p.put(&self.id)?;
        p.put(&self.brand_id)?;
        p.put(&self.name)?;
        p.put(&self.description)?;
        p.json(&self.image_urls)?;
        p.put(&self.link)?;
        p.put(self.min_order_quantity)?;
        p.json(&self.prices)
    }

    fn decode(c: &mut Columns<'_, '_>) -> rusqlite::Result<Self> {
        Ok(Product {
            id: c.get()?,
            brand_id: c.get()?,
            name: c.get()?,
            description: c.get()?,
            image_urls: c.json()?,
            link: c.get()?,
            min_order_quantity: c.get()?,
            prices: c.json()?,
        })
    }
}

impl Stored for DealerRecord {
    const TABLE: &'static str = "dealers";
    const COLUMNS: &'static [&'static str] = columns::DEALER;

    fn bind(&self, p: &mut Params<'_, '_>) -> rusqlite::Result<()> {
        p.put(&self.viewer_id)?;
        p.put(&self.tier)?;
        p.put(&self.company)?;
        p.put(self.updated_ms)
    }

    fn decode(c: &mut Columns<'_, '_>) -> rusqlite::Result<Self> {
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

    fn bind(&self, p: &mut Params<'_, '_>) -> rusqlite::Result<()> {
        p.put(&self.id)?;
        p.put(&self.viewer_id)?;
        p.put(&self.display_name)?;
        p.put(&self.company)?;
        p.put(&self.licence_number)?;
        p.put(&self.contact)?;
        p.put(self.status.as_str())?;
        p.put(&self.tier)?;
        p.put(&self.reason)?;
        p.put(self.created_ms)?;
        p.put(self.decided_ms)
    }

    fn decode(c: &mut Columns<'_, '_>) -> rusqlite::Result<Self> {
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

    fn bind(&self, p: &mut Params<'_, '_>) -> rusqlite::Result<()> {
        p.put(&self.id)?;
        p.put(self.seq)?;
        p.put(&self.viewer_id)?;
        p.put(&self.display_name)?;
        p.put(&self.text)?;
        p.put(self.at_ms)?;
        p.put(self.is_dealer)
    }

    fn decode(c: &mut Columns<'_, '_>) -> rusqlite::Result<Self> {
        Ok(ChatRecord {
            id: c.get()?,
            seq: c.get()?,
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

    fn bind(&self, p: &mut Params<'_, '_>) -> rusqlite::Result<()> {
        p.put(&self.viewer_id)?;
        // Session ids use all 64 bits (a node tag on top); SQLite integers are signed, so
        // the bits are kept as they are and read back the same way.
        p.put(self.session as i64)?;
        p.put(self.kind.as_str())?;
        p.put(&self.inviter_id)?;
        p.put(&self.tier)?;
        p.put(self.at_ms)
    }

    fn decode(c: &mut Columns<'_, '_>) -> rusqlite::Result<Self> {
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

    fn bind(&self, p: &mut Params<'_, '_>) -> rusqlite::Result<()> {
        p.put(&self.id)?;
        p.put(&self.viewer_id)?;
        p.put(&self.display_name)?;
        p.put(&self.tier)?;
        p.put(&self.brand_id)?;
        p.put(&self.product_id)?;
        p.put(&self.product_name)?;
        p.put(self.quantity)?;
        p.put(self.unit_price_cents)?;
        p.put(self.total_cents)?;
        p.put(&self.currency)?;
        p.put(self.status.as_str())?;
        p.put(&self.status_reason)?;
        p.put(&self.sale_id)?;
        p.put(&self.inviter_id)?;
        p.put(&self.idempotency_key)?;
        p.put(self.created_ms)?;
        p.put(self.updated_ms)
    }

    fn decode(c: &mut Columns<'_, '_>) -> rusqlite::Result<Self> {
        Ok(Order {
            id: c.get()?,
            viewer_id: c.get()?,
            display_name: c.get()?,
            tier: c.get()?,
            brand_id: c.get()?,
            product_id: c.get()?,
            product_name: c.get()?,
            quantity: c.get()?,
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

    fn bind(&self, p: &mut Params<'_, '_>) -> rusqlite::Result<()> {
        p.put(&self.id)?;
        p.put(&self.product_id)?;
        p.put(&self.brand_id)?;
        p.put(self.stock)?;
        p.put(self.remaining)?;
        p.put(self.per_dealer_limit)?;
        p.json(&self.prices)?;
        p.put(self.start_ms)?;
        p.put(self.end_ms)?;
        p.put(self.ended_ms)?;
        p.put(self.created_ms)
    }

    fn decode(c: &mut Columns<'_, '_>) -> rusqlite::Result<Self> {
        Ok(FlashSale {
            id: c.get()?,
            product_id: c.get()?,
            brand_id: c.get()?,
            stock: c.get()?,
            remaining: c.get()?,
            per_dealer_limit: c.get()?,
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

    fn bind(&self, p: &mut Params<'_, '_>) -> rusqlite::Result<()> {
        p.put(&self.id)?;
        p.put(&self.prize)?;
        p.put(self.winners_count)?;
        p.json(&self.eligibility)?;
        p.put(self.opened_ms)?;
        p.put(self.closes_ms)?;
        p.put(self.closed_ms)?;
        p.put(self.drawn_ms)?;
        p.put(&self.seed)?;
        p.put(&self.commitment)?;
        p.put(&self.beacon_source)?;
        p.put(&self.beacon)?;
        p.put(&self.entrants_hash)?;
        p.json(&self.winners)
    }

    fn decode(c: &mut Columns<'_, '_>) -> rusqlite::Result<Self> {
        Ok(Draw {
            id: c.get()?,
            prize: c.get()?,
            winners_count: c.get()?,
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

    fn bind(&self, p: &mut Params<'_, '_>) -> rusqlite::Result<()> {
        p.put(&self.id)?;
        p.put(self.total_cents)?;
        p.put(self.count)?;
        p.json(&self.tiers)?;
        p.put(&self.message)?;
        p.json(&self.amounts)?;
        p.put(self.created_ms)?;
        p.put(self.expires_ms)
    }

    fn decode(c: &mut Columns<'_, '_>) -> rusqlite::Result<Self> {
        Ok(RedPacket {
            id: c.get()?,
            total_cents: c.get()?,
            count: c.get()?,
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

    fn bind(&self, p: &mut Params<'_, '_>) -> rusqlite::Result<()> {
        p.put(&self.id)?;
        p.put(&self.viewer_id)?;
        p.put(&self.name)?;
        p.put(&self.company)?;
        p.put(&self.phone)?;
        p.put(self.status.as_str())?;
        p.put(self.source.as_str())?;
        p.put(&self.invite_code)?;
        p.put(self.secret.expose())?;
        p.put(&self.inviter_id)?;
        p.put(&self.channel)?;
        p.put(self.created_ms)?;
        p.put(self.decided_ms)?;
        p.put(self.erased_ms)
    }

    fn decode(c: &mut Columns<'_, '_>) -> rusqlite::Result<Self> {
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

    fn bind(&self, p: &mut Params<'_, '_>) -> rusqlite::Result<()> {
        p.put(&self.code)?;
        p.put(&self.name)?;
        p.put(self.created_ms)
    }

    fn decode(c: &mut Columns<'_, '_>) -> rusqlite::Result<Self> {
        Ok(Channel {
            code: c.get()?,
            name: c.get()?,
            created_ms: c.get()?,
        })
    }
}
