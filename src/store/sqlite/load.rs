//! Reads: a room with everything it restores from, the room list, recent chat, the audience
//! log and watch time. Each runs on the read connection, from one snapshot.

use super::rows::{decode, select_sql, Stored};
use crate::model::{
    AudienceRecord, Brand, ChatRecord, DealerApplication, DealerRecord, Draw, FlashSale,
    LoadedRoom, Order, PacketGrab, Product, RedPacket, RoomRecord,
};
use crate::model::{Channel, Registration, RegistrationKey};
use crate::store::{RoomFilter, WatchTime};
use rusqlite::{params, Connection, Params};
use std::collections::HashMap;

/// Every row of `T` that `tail` selects (after `FROM table`).
fn rows<T: Stored>(conn: &Connection, tail: &str, params: impl Params) -> rusqlite::Result<Vec<T>> {
    let mut stmt = conn.prepare_cached(&select_sql::<T>(tail))?;
    let rows = stmt.query_map(params, decode::<T>)?;
    rows.collect()
}

/// Every row of `T` in `room` that `tail` selects (`?1` is the room).
pub(super) fn rows_of<T: Stored>(
    conn: &Connection,
    tail: &str,
    room: &str,
) -> rusqlite::Result<Vec<T>> {
    rows(conn, tail, [room])
}

/// A room's own records, in the order the room restores them.
fn of_room<T: Stored>(conn: &Connection, room: &str, order_by: &str) -> rusqlite::Result<Vec<T>> {
    rows(
        conn,
        &format!("WHERE room = ?1 ORDER BY {order_by}"),
        [room],
    )
}

/// One room with everything it restores from; kicked tokens and mutes that ended by `now`
/// are left out.
pub(super) fn load_room(
    conn: &mut Connection,
    id: &str,
    now: i64,
) -> rusqlite::Result<Option<LoadedRoom>> {
    let tx = conn.transaction()?;
    let room = rows::<RoomRecord>(&tx, "WHERE id = ?1", [id])?.pop();
    let loaded = room.map(|r| fill(&tx, r, now)).transpose()?;
    tx.finish()?;
    Ok(loaded)
}

/// Every room, oldest first.
pub(super) fn load_rooms(conn: &mut Connection, now: i64) -> rusqlite::Result<Vec<LoadedRoom>> {
    let tx = conn.transaction()?;
    let rooms = rows::<RoomRecord>(&tx, "ORDER BY created_ms, rowid", [])?
        .into_iter()
        .map(|r| fill(&tx, r, now))
        .collect::<rusqlite::Result<_>>()?;
    tx.finish()?;
    Ok(rooms)
}

/// One order of a room.
pub(super) fn order(conn: &Connection, room: &str, id: &str) -> rusqlite::Result<Option<Order>> {
    Ok(rows::<Order>(conn, "WHERE room = ?1 AND id = ?2", [room, id])?.pop())
}

pub(super) fn list_rooms(
    conn: &Connection,
    filter: &RoomFilter,
) -> rusqlite::Result<Vec<RoomRecord>> {
    rows(
        conn,
        "WHERE (?1 IS NULL OR state = ?1) AND (?2 IS NULL OR created_ms > ?2)
           AND (?4 IS NULL OR id = ?4)
         ORDER BY created_ms DESC, id LIMIT ?3",
        params![
            filter.state.map(|s| s.as_str()),
            filter.created_after_ms,
            // A negative limit is none in SQLite.
            filter.limit.map_or(-1, i64::from),
            filter.id,
        ],
    )
}

fn fill(conn: &Connection, record: RoomRecord, now: i64) -> rusqlite::Result<LoadedRoom> {
    let room = record.id.as_str();
    let pairs = |sql: &str| -> rusqlite::Result<Vec<(String, i64)>> {
        let mut stmt = conn.prepare_cached(sql)?;
        let rows = stmt.query_map(params![room, now], |r| Ok((r.get(0)?, r.get(1)?)))?;
        rows.collect()
    };
    let kicked_tokens = pairs(
        "SELECT jti, expires_ms FROM kicked_tokens
         WHERE room = ?1 AND expires_ms > ?2 ORDER BY rowid",
    )?;
    let mutes = pairs(
        "SELECT viewer_id, until_ms FROM mutes WHERE room = ?1 AND until_ms > ?2 ORDER BY rowid",
    )?;

    let mut draws: Vec<Draw> = of_room(conn, room, "opened_ms, rowid")?;
    let draw_at: HashMap<String, usize> = draws
        .iter()
        .enumerate()
        .map(|(i, d)| (d.id.clone(), i))
        .collect();
    let mut stmt = conn.prepare_cached(
        "SELECT draw_id, viewer_id FROM draw_entrants WHERE room = ?1 ORDER BY at_ms, rowid",
    )?;
    let mut entrants = stmt.query([room])?;
    while let Some(r) = entrants.next()? {
        if let Some(&i) = draw_at.get(&r.get::<_, String>(0)?) {
            draws[i].entrants.push(r.get(1)?);
        }
    }
    for d in draws.iter_mut().filter(|d| d.closed_ms.is_some()) {
        // A closed draw's entrants are kept in the canonical order its hash covers.
        crate::draw::sort_entrants(&mut d.entrants);
    }

    let mut red_packets: Vec<RedPacket> = of_room(conn, room, "created_ms, rowid")?;
    let packet_at: HashMap<String, usize> = red_packets
        .iter()
        .enumerate()
        .map(|(i, p)| (p.id.clone(), i))
        .collect();
    let mut stmt = conn.prepare_cached(
        "SELECT packet_id, viewer_id, idx, amount_cents FROM red_packet_grabs
         WHERE room = ?1 ORDER BY packet_id, idx",
    )?;
    let mut grabs = stmt.query([room])?;
    while let Some(r) = grabs.next()? {
        if let Some(&i) = packet_at.get(&r.get::<_, String>(0)?) {
            red_packets[i].grabs.push(PacketGrab {
                viewer_id: r.get(1)?,
                index: r.get(2)?,
                amount_cents: r.get(3)?,
            });
        }
    }

    Ok(LoadedRoom {
        brands: of_room::<Brand>(conn, room, "position, rowid")?,
        products: of_room::<Product>(conn, room, "rowid")?,
        dealers: of_room::<DealerRecord>(conn, room, "rowid")?,
        applications: of_room::<DealerApplication>(conn, room, "created_ms, rowid")?,
        kicked_tokens,
        mutes,
        orders: of_room::<Order>(conn, room, "created_ms, rowid")?,
        sales: of_room::<FlashSale>(conn, room, "created_ms, rowid")?,
        draws,
        red_packets,
        record: Some(record),
    })
}

/// The newest `limit` messages that were not deleted, oldest first.
pub(super) fn recent_chat(
    conn: &Connection,
    room: &str,
    limit: u32,
) -> rusqlite::Result<Vec<ChatRecord>> {
    rows(
        conn,
        "WHERE rowid IN (
             SELECT rowid FROM chat WHERE room = ?1 AND deleted_ms IS NULL
             ORDER BY seq DESC LIMIT ?2
         ) ORDER BY seq ASC",
        params![room, limit],
    )
}

pub(super) fn audience_log(conn: &Connection, room: &str) -> rusqlite::Result<Vec<AudienceRecord>> {
    of_room(conn, room, "at_ms, rowid")
}

pub(super) fn watch_time(conn: &Connection, room: &str) -> rusqlite::Result<Vec<(String, i64)>> {
    // Streamed viewer by viewer, as the fold wants it: the log can be long.
    let mut stmt = conn.prepare_cached(&select_sql::<AudienceRecord>(
        "WHERE room = ?1 ORDER BY viewer_id, at_ms, rowid",
    ))?;
    let mut fold = WatchTime::default();
    for a in stmt.query_map([room], decode::<AudienceRecord>)? {
        let a = a?;
        fold.add(&a.viewer_id, a.session, a.kind, a.at_ms);
    }
    Ok(fold.finish())
}

pub(super) fn registrations(
    conn: &Connection,
    room: &str,
    key: &RegistrationKey,
) -> rusqlite::Result<Vec<Registration>> {
    let (filter, value) = crate::store::columns::registration_filter(key, '?');
    let tail = format!("{filter} ORDER BY created_ms, rowid");
    match value {
        None => rows(conn, &tail, params![room]),
        Some(v) => rows(conn, &tail, params![room, v]),
    }
}

pub(super) fn channels(conn: &Connection, room: &str) -> rusqlite::Result<Vec<Channel>> {
    rows(
        conn,
        "WHERE room = ?1 ORDER BY created_ms, rowid",
        params![room],
    )
}
