//! Engagement batches, the program log and lead weights: their writes and reads in SQLite.

use crate::model::{ChatRecord, EngagementKind, EngagementRecord, LeadWeights, ProgramRecord};
use rusqlite::types::Type;
use rusqlite::{params, Connection};

const APPEND_ENGAGEMENT: &str = "
INSERT INTO engagement (room, viewer_id, kind, target, count, at_ms) VALUES (?1, ?2, ?3, ?4, ?5, ?6)";
const APPEND_PROGRAM: &str = "INSERT INTO program_log (room, brand_id, at_ms) VALUES (?1, ?2, ?3)";
const PUT_LEAD_WEIGHTS: &str = "
INSERT INTO lead_weights (room, weights, updated_ms) VALUES (?1, ?2, ?3)
ON CONFLICT (room) DO UPDATE SET weights = excluded.weights, updated_ms = excluded.updated_ms";

pub(super) fn append_engagement(
    conn: &Connection,
    room: &str,
    records: &[EngagementRecord],
) -> rusqlite::Result<()> {
    let mut stmt = conn.prepare_cached(APPEND_ENGAGEMENT)?;
    for r in records {
        stmt.execute(params![
            room,
            r.viewer_id,
            r.kind.as_str(),
            r.target,
            r.count,
            r.at_ms
        ])?;
    }
    Ok(())
}

pub(super) fn append_program(
    conn: &Connection,
    room: &str,
    record: &ProgramRecord,
) -> rusqlite::Result<()> {
    conn.prepare_cached(APPEND_PROGRAM)?
        .execute(params![room, record.brand_id, record.at_ms])?;
    Ok(())
}

pub(super) fn put_lead_weights(
    conn: &Connection,
    room: &str,
    weights: &LeadWeights,
    at_ms: i64,
) -> rusqlite::Result<()> {
    let json = serde_json::to_string(weights)
        .map_err(|e| rusqlite::Error::ToSqlConversionFailure(Box::new(e)))?;
    conn.prepare_cached(PUT_LEAD_WEIGHTS)?
        .execute(params![room, json, at_ms])?;
    Ok(())
}

pub(super) fn engagement(conn: &Connection, room: &str) -> rusqlite::Result<Vec<EngagementRecord>> {
    let mut stmt = conn.prepare_cached(
        "SELECT viewer_id, kind, target, count, at_ms FROM engagement
         WHERE room = ?1 ORDER BY at_ms, rowid",
    )?;
    let rows = stmt.query_map([room], |row| {
        let kind: String = row.get(1)?;
        Ok(EngagementRecord {
            viewer_id: row.get(0)?,
            kind: EngagementKind::parse(&kind).ok_or_else(|| {
                rusqlite::Error::FromSqlConversionFailure(
                    1,
                    Type::Text,
                    format!("unknown engagement kind {kind:?}").into(),
                )
            })?,
            target: row.get(2)?,
            count: row.get(3)?,
            at_ms: row.get(4)?,
        })
    })?;
    rows.collect()
}

pub(super) fn program_log(conn: &Connection, room: &str) -> rusqlite::Result<Vec<ProgramRecord>> {
    let mut stmt = conn.prepare_cached(
        "SELECT brand_id, at_ms FROM program_log WHERE room = ?1 ORDER BY at_ms, rowid",
    )?;
    let rows = stmt.query_map([room], |row| {
        Ok(ProgramRecord {
            brand_id: row.get(0)?,
            at_ms: row.get(1)?,
        })
    })?;
    rows.collect()
}

pub(super) fn lead_weights(conn: &Connection, room: &str) -> rusqlite::Result<Option<LeadWeights>> {
    let mut stmt = conn.prepare_cached("SELECT weights FROM lead_weights WHERE room = ?1")?;
    let mut rows = stmt.query([room])?;
    let Some(row) = rows.next()? else {
        return Ok(None);
    };
    let text: String = row.get(0)?;
    serde_json::from_str(&text)
        .map(Some)
        .map_err(|e| rusqlite::Error::FromSqlConversionFailure(0, Type::Text, Box::new(e)))
}

/// Every chat message that was not deleted, oldest first.
pub(super) fn chat_log(conn: &Connection, room: &str) -> rusqlite::Result<Vec<ChatRecord>> {
    super::load::rows_of(
        conn,
        "WHERE room = ?1 AND deleted_ms IS NULL ORDER BY at_ms, rowid",
        room,
    )
}
