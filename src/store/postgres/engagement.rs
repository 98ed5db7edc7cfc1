//! Engagement batches, the program log and lead weights: their reads in PostgreSQL (the
//! writes are planned with the others in `apply.rs`).

use super::error::pg_error;
use crate::model::{EngagementKind, EngagementRecord, LeadWeights, ProgramRecord};
use crate::store::StoreError;
use deadpool_postgres::GenericClient;
use tokio_postgres::types::Json;

/// A whole batch in one statement: the room, then one array per column.
pub(super) const APPEND_ENGAGEMENT: &str = "
INSERT INTO engagement (room, viewer_id, kind, target, count, at_ms)
SELECT $1::text, * FROM UNNEST($2::text[], $3::text[], $4::text[], $5::bigint[], $6::bigint[])";
pub(super) const APPEND_PROGRAM: &str =
    "INSERT INTO program_log (room, brand_id, at_ms) VALUES ($1, $2, $3)";
pub(super) const PUT_LEAD_WEIGHTS: &str = "
INSERT INTO lead_weights (room, weights, updated_ms) VALUES ($1, $2, $3)
ON CONFLICT (room) DO UPDATE SET weights = excluded.weights, updated_ms = excluded.updated_ms";

fn corrupt(op: &'static str, why: String) -> StoreError {
    StoreError::Corrupt {
        op,
        source: why.into(),
    }
}

pub(super) async fn engagement(
    c: &impl GenericClient,
    room: &str,
) -> Result<Vec<EngagementRecord>, StoreError> {
    let op = "engagement";
    let st = c
        .prepare_cached(
            "SELECT viewer_id, kind, target, count, at_ms FROM engagement
             WHERE room = $1 ORDER BY at_ms, pos",
        )
        .await
        .map_err(pg_error(op))?;
    let rows = c.query(&st, &[&room]).await.map_err(pg_error(op))?;
    rows.iter()
        .map(|row| {
            let kind: String = row.get(1);
            let count: i64 = row.get(3);
            Ok(EngagementRecord {
                viewer_id: row.get(0),
                kind: EngagementKind::parse(&kind)
                    .ok_or_else(|| corrupt(op, format!("unknown engagement kind {kind:?}")))?,
                target: row.get(2),
                count: u32::try_from(count)
                    .map_err(|_| corrupt(op, format!("count {count} out of range")))?,
                at_ms: row.get(4),
            })
        })
        .collect()
}

pub(super) async fn program_log(
    c: &impl GenericClient,
    room: &str,
) -> Result<Vec<ProgramRecord>, StoreError> {
    let op = "program_log";
    let st = c
        .prepare_cached(
            "SELECT brand_id, at_ms FROM program_log WHERE room = $1 ORDER BY at_ms, pos",
        )
        .await
        .map_err(pg_error(op))?;
    let rows = c.query(&st, &[&room]).await.map_err(pg_error(op))?;
    Ok(rows
        .iter()
        .map(|row| ProgramRecord {
            brand_id: row.get(0),
            at_ms: row.get(1),
        })
        .collect())
}

pub(super) async fn lead_weights(
    c: &impl GenericClient,
    room: &str,
) -> Result<Option<LeadWeights>, StoreError> {
    let op = "lead_weights";
    let st = c
        .prepare_cached("SELECT weights FROM lead_weights WHERE room = $1")
        .await
        .map_err(pg_error(op))?;
    let Some(row) = c.query_opt(&st, &[&room]).await.map_err(pg_error(op))? else {
        return Ok(None);
    };
    let Json(value): Json<serde_json::Value> = row.get(0);
    serde_json::from_value(value)
        .map(Some)
        .map_err(|e| corrupt(op, e.to_string()))
}
