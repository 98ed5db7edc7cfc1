//! Reads: a room with everything it restores from, the room list, recent chat, the audience
//! log and watch time. A room loads from one snapshot (a repeatable-read transaction).

use super::error::pg_error;
use super::rows::{decode, select_sql, Stored};
use crate::model::{
    AudienceRecord, Brand, ChatRecord, DealerApplication, DealerRecord, Draw, FlashSale,
    LoadedRoom, Order, PacketGrab, Product, RedPacket, RoomRecord,
};
use crate::model::{Channel, Registration, RegistrationKey};
use crate::store::{RoomFilter, StoreError, WatchTime};
use deadpool_postgres::GenericClient;
use std::collections::HashMap;
use tokio_postgres::types::ToSql;

/// Every row of `T` that `tail` selects (after `FROM table`).
async fn rows<T: Stored>(
    c: &impl GenericClient,
    op: &'static str,
    tail: &str,
    params: &[&(dyn ToSql + Sync)],
) -> Result<Vec<T>, StoreError> {
    let statement = c
        .prepare_cached(&select_sql::<T>(tail))
        .await
        .map_err(pg_error(op))?;
    c.query(&statement, params)
        .await
        .map_err(pg_error(op))?
        .iter()
        .map(|row| decode(op, row))
        .collect()
}

/// One order of a room.
pub(super) async fn order(
    c: &impl GenericClient,
    room: &str,
    id: &str,
) -> Result<Option<Order>, StoreError> {
    Ok(
        rows::<Order>(c, "order", "WHERE room = $1 AND id = $2", &[&room, &id])
            .await?
            .pop(),
    )
}

/// A room's own records, in the order the room restores them.
async fn of_room<T: Stored>(
    c: &impl GenericClient,
    room: &str,
    order_by: &str,
) -> Result<Vec<T>, StoreError> {
    rows(
        c,
        "load_room",
        &format!("WHERE room = $1 ORDER BY {order_by}"),
        &[&room],
    )
    .await
}

/// One room with everything it restores from; kicked tokens and mutes that ended by `now`
/// are left out.
pub(super) async fn load_room(
    c: &mut deadpool_postgres::Object,
    id: &str,
    now: i64,
) -> Result<Option<LoadedRoom>, StoreError> {
    let tx = c
        .build_transaction()
        .isolation_level(tokio_postgres::IsolationLevel::RepeatableRead)
        .read_only(true)
        .start()
        .await
        .map_err(pg_error("load_room"))?;
    let Some(record) = rows::<RoomRecord>(&tx, "load_room", "WHERE id = $1", &[&id])
        .await?
        .pop()
    else {
        return Ok(None);
    };
    let room = record.id.as_str();
    let pairs = |sql: &'static str| {
        let tx = &tx;
        async move {
            let statement = tx
                .prepare_cached(sql)
                .await
                .map_err(pg_error("load_room"))?;
            let rows = tx
                .query(&statement, &[&room, &now])
                .await
                .map_err(pg_error("load_room"))?;
            rows.iter()
                .map(|r| Ok((r.try_get(0)?, r.try_get(1)?)))
                .collect::<Result<Vec<(String, i64)>, tokio_postgres::Error>>()
                .map_err(super::error::corrupt("load_room"))
        }
    };
    let kicked_tokens = pairs(
        "SELECT jti, expires_ms FROM kicked_tokens
         WHERE room = $1 AND expires_ms > $2 ORDER BY pos",
    )
    .await?;
    let mutes = pairs(
        "SELECT viewer_id, until_ms FROM mutes WHERE room = $1 AND until_ms > $2 ORDER BY pos",
    )
    .await?;

    let mut draws: Vec<Draw> = of_room(&tx, room, "opened_ms, pos").await?;
    let draw_at: HashMap<String, usize> = draws
        .iter()
        .enumerate()
        .map(|(i, d)| (d.id.clone(), i))
        .collect();
    let entrants = tx
        .query(
            "SELECT draw_id, viewer_id FROM draw_entrants WHERE room = $1 ORDER BY at_ms, pos",
            &[&room],
        )
        .await
        .map_err(pg_error("load_room"))?;
    for r in &entrants {
        let (draw, viewer): (String, String) = (r.get(0), r.get(1));
        if let Some(&i) = draw_at.get(&draw) {
            draws[i].entrants.push(viewer);
        }
    }
    for d in draws.iter_mut().filter(|d| d.closed_ms.is_some()) {
        // A closed draw's entrants are kept in the canonical order its hash covers.
        crate::draw::sort_entrants(&mut d.entrants);
    }

    let mut red_packets: Vec<RedPacket> = of_room(&tx, room, "created_ms, pos").await?;
    let packet_at: HashMap<String, usize> = red_packets
        .iter()
        .enumerate()
        .map(|(i, p)| (p.id.clone(), i))
        .collect();
    let grabs = tx
        .query(
            "SELECT packet_id, viewer_id, idx, amount_cents FROM red_packet_grabs
             WHERE room = $1 ORDER BY packet_id, idx",
            &[&room],
        )
        .await
        .map_err(pg_error("load_room"))?;
    for r in &grabs {
        let packet: String = r.get(0);
        if let Some(&i) = packet_at.get(&packet) {
            let index: i64 = r.get(2);
            red_packets[i].grabs.push(PacketGrab {
                viewer_id: r.get(1),
                index: u32::try_from(index).map_err(|_| StoreError::Corrupt {
                    op: "load_room",
                    source: format!("red packet share index {index}").into(),
                })?,
                amount_cents: r.get(3),
            });
        }
    }

    let loaded = LoadedRoom {
        brands: of_room::<Brand>(&tx, room, "position, pos").await?,
        products: of_room::<Product>(&tx, room, "pos").await?,
        dealers: of_room::<DealerRecord>(&tx, room, "pos").await?,
        applications: of_room::<DealerApplication>(&tx, room, "created_ms, pos").await?,
        kicked_tokens,
        mutes,
        orders: of_room::<Order>(&tx, room, "created_ms, pos").await?,
        sales: of_room::<FlashSale>(&tx, room, "created_ms, pos").await?,
        draws,
        red_packets,
        record: None,
    };
    tx.commit().await.map_err(pg_error("load_room"))?;
    Ok(Some(LoadedRoom {
        record: Some(record),
        ..loaded
    }))
}

pub(super) async fn list_rooms(
    c: &impl GenericClient,
    filter: &RoomFilter,
) -> Result<Vec<RoomRecord>, StoreError> {
    let state = filter.state.map(|s| s.as_str());
    let limit = filter.limit.map(i64::from);
    rows(
        c,
        "list_rooms",
        "WHERE ($1::text IS NULL OR state = $1) AND ($2::bigint IS NULL OR created_ms > $2)
           AND ($4::text IS NULL OR id = $4)
         ORDER BY created_ms DESC, id LIMIT $3",
        &[&state, &filter.created_after_ms, &limit, &filter.id],
    )
    .await
}

/// The newest `limit` messages that were not deleted, oldest first.
pub(super) async fn recent_chat(
    c: &impl GenericClient,
    room: &str,
    limit: u32,
) -> Result<Vec<ChatRecord>, StoreError> {
    let mut newest: Vec<ChatRecord> = rows(
        c,
        "recent_chat",
        "WHERE room = $1 AND deleted_ms IS NULL ORDER BY seq DESC LIMIT $2",
        &[&room, &i64::from(limit)],
    )
    .await?;
    newest.reverse();
    Ok(newest)
}

pub(super) async fn audience_log(
    c: &impl GenericClient,
    room: &str,
) -> Result<Vec<AudienceRecord>, StoreError> {
    rows(
        c,
        "audience_log",
        "WHERE room = $1 ORDER BY at_ms, pos",
        &[&room],
    )
    .await
}

pub(super) async fn watch_time(
    c: &impl GenericClient,
    room: &str,
) -> Result<Vec<(String, i64)>, StoreError> {
    let log: Vec<AudienceRecord> = rows(
        c,
        "watch_time",
        "WHERE room = $1 ORDER BY viewer_id, at_ms, pos",
        &[&room],
    )
    .await?;
    let mut fold = WatchTime::default();
    for a in &log {
        fold.add(&a.viewer_id, a.session, a.kind, a.at_ms);
    }
    Ok(fold.finish())
}

pub(super) async fn registrations(
    c: &impl GenericClient,
    room: &str,
    key: &RegistrationKey,
) -> Result<Vec<Registration>, StoreError> {
    let (filter, value) = crate::store::columns::registration_filter(key, '$');
    let tail = format!("{filter} ORDER BY created_ms, pos");
    match value {
        None => rows(c, "registrations", &tail, &[&room]).await,
        Some(v) => rows(c, "registrations", &tail, &[&room, &v]).await,
    }
}

pub(super) async fn channels(
    c: &impl GenericClient,
    room: &str,
) -> Result<Vec<Channel>, StoreError> {
    rows(
        c,
        "channels",
        "WHERE room = $1 ORDER BY created_ms, pos",
        &[&room],
    )
    .await
}

/// Every chat message that was not deleted, oldest first.
pub(super) async fn chat_log(
    c: &impl GenericClient,
    room: &str,
) -> Result<Vec<ChatRecord>, StoreError> {
    rows(
        c,
        "chat_log",
        "WHERE room = $1 AND deleted_ms IS NULL ORDER BY at_ms, seq",
        &[&room],
    )
    .await
}
