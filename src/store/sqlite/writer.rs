//! The writer thread: group commit of queued submissions, and the replay of a failed batch one
//! submission at a time so that one bad write fails only its own submission.
//
// The thread blocks for the first submission, drains whatever else is already queued (up to
// `MAX_BATCH_OPS` operations), applies the batch in one transaction and commits once; every
// `Durable` of the batch resolves after that commit is synced. If any operation fails, the
// batch is rolled back and its submissions are replayed each in its own transaction, so only
// the failing one sees the error (and none of its operations are applied).

use super::apply::{apply, op_name, Failure};
use super::error::{classify, sql_error};
use crate::store::{DurableSender, StoreError, StoreOp};
use rusqlite::{Connection, TransactionBehavior};
use std::sync::mpsc;

/// A batch stops draining the queue once it holds this many operations.
pub const MAX_BATCH_OPS: usize = 4096;

/// One `submit` call as the writer sees it.
pub(super) struct Submission {
    pub(super) ops: Vec<StoreOp>,
    pub(super) done: DurableSender,
}

pub(super) fn writer_loop(mut conn: Connection, rx: mpsc::Receiver<Submission>) {
    let mut batch = Vec::new();
    // `recv` fails only once every sender is gone and the queue is empty.
    while let Ok(first) = rx.recv() {
        let mut n = first.ops.len();
        batch.push(first);
        while n < MAX_BATCH_OPS {
            match rx.try_recv() {
                Ok(s) => {
                    n += s.ops.len();
                    batch.push(s);
                }
                Err(_) => break,
            }
        }
        write_batch(&mut conn, &mut batch);
    }
    if let Err(e) = conn.query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |_| Ok(())) {
        tracing::warn!(
            error = &e as &dyn std::error::Error,
            "store checkpoint at shutdown failed"
        );
    }
}

/// Applies and resolves every submission of `batch` (left empty).
pub(super) fn write_batch(conn: &mut Connection, batch: &mut Vec<Submission>) {
    if batch.iter().all(|s| s.ops.is_empty()) {
        // Flush barriers only: everything before them was committed by earlier batches.
        for s in batch.drain(..) {
            s.done.send(Ok(()));
        }
        return;
    }
    let all = batch.iter().flat_map(|s| s.ops.iter());
    match apply_in_transaction(conn, all) {
        Ok(()) => {
            for s in batch.drain(..) {
                s.done.send(Ok(()));
            }
        }
        Err(e) if batch.len() == 1 => {
            let s = batch.pop().expect("one submission");
            report(&s, &e);
            s.done.send(Err(e));
        }
        Err(e) => {
            tracing::warn!(
                submissions = batch.len(),
                error = &e as &dyn std::error::Error,
                "store batch failed; retrying submissions one by one"
            );
            for s in batch.drain(..) {
                let res = apply_in_transaction(conn, s.ops.iter());
                if let Err(e) = &res {
                    report(&s, e);
                }
                s.done.send(res);
            }
        }
    }
}

fn report(s: &Submission, e: &StoreError) {
    // The room checks its writes first, so even a refusal here means memory and store
    // disagree: worth an error.
    tracing::error!(
        ops = s.ops.len(),
        error = e as &dyn std::error::Error,
        "store write failed"
    );
}

/// All of `ops` in one transaction, or none of them.
pub(super) fn apply_in_transaction<'a>(
    conn: &mut Connection,
    ops: impl Iterator<Item = &'a StoreOp>,
) -> Result<(), StoreError> {
    let tx = conn
        .transaction_with_behavior(TransactionBehavior::Immediate)
        .map_err(sql_error("begin"))?;
    for op in ops {
        // On failure the dropped transaction rolls back.
        apply(&tx, op).map_err(|f| match f {
            Failure::Sql(e) => classify(op_name(op), e),
            Failure::Refused(violation) => StoreError::Refused {
                op: op_name(op),
                violation,
                source: None,
            },
        })?;
    }
    tx.commit().map_err(sql_error("commit"))
}
