//! The writer task: group commit of queued submissions on one connection, the replay of a
//! refused batch one submission at a time, and reconnection after the connection is lost.
//
// The task waits for the first submission, drains whatever else is queued (up to
// `MAX_BATCH_OPS` operations), applies the batch in one transaction with its statements
// pipelined, and commits once; every `Durable` of the batch resolves after the commit
// returns (PostgreSQL has flushed its WAL: `synchronous_commit` must stay on). If a rule of
// the data refuses the batch, it is rolled back and its submissions replayed each in its own
// transaction, so only the offending one fails. If the connection fails instead, the outcome
// of a commit in flight is unknown: the batch is reported failed and not replayed (a replay
// could apply it twice), and the next batch reconnects first.

use super::apply::{apply, Statements};
use super::connect::PgTarget;
use super::error::pg_error;
use crate::store::{DurableSender, StoreError, StoreOp};
use std::time::Duration;
use tokio::sync::mpsc;
use tokio_postgres::Client;

/// A batch stops draining the queue once it holds this many operations.
pub const MAX_BATCH_OPS: usize = 4096;

/// One `submit` call as the writer sees it.
pub(super) struct Submission {
    pub(super) ops: Vec<StoreOp>,
    pub(super) done: DurableSender,
}

/// The writer's connection and its prepared statements.
pub(super) struct Connection {
    client: Client,
    statements: Statements,
}

impl Connection {
    pub(super) async fn open(target: &PgTarget) -> Result<Connection, StoreError> {
        let client = target.connect().await?;
        // A writer paused inside a transaction (SIGSTOP, a frozen VM) would hold its room's
        // fence row, and the next owner's claim would wait on it for as long as the pause
        // lasts. Our transactions take milliseconds: PostgreSQL ends one left idle for 2 s,
        // which releases the row; a claim waits at most 10 s for a lock before it fails.
        client
            .batch_execute(
                "SET idle_in_transaction_session_timeout = '2s'; SET lock_timeout = '10s'",
            )
            .await
            .map_err(pg_error("configure the writer connection"))?;
        let statements = Statements::prepare(&client)
            .await
            .map_err(pg_error("prepare the write statements"))?;
        Ok(Connection { client, statements })
    }
}

pub(super) async fn writer_loop(
    target: PgTarget,
    mut conn: Option<Connection>,
    mut rx: mpsc::UnboundedReceiver<Submission>,
) {
    let mut batch = Vec::new();
    // `recv` gives `None` once every sender is gone and the queue is empty.
    while let Some(first) = rx.recv().await {
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
        write_batch(&target, &mut conn, &mut batch).await;
    }
}

/// Reconnects when the connection is gone: a few tries over about two seconds, so a brief
/// outage (a restart, a failover) costs the batches meanwhile, not the writer.
async fn connected<'c>(
    target: &PgTarget,
    conn: &'c mut Option<Connection>,
) -> Result<&'c mut Connection, StoreError> {
    if conn.as_ref().is_some_and(|c| c.client.is_closed()) {
        *conn = None;
    }
    if conn.is_none() {
        let mut delay = Duration::from_millis(100);
        let mut last = None;
        for _ in 0..4 {
            match Connection::open(target).await {
                Ok(c) => {
                    tracing::info!(target_db = ?target, "store writer reconnected");
                    *conn = Some(c);
                    break;
                }
                Err(e) => {
                    last = Some(e);
                    tokio::time::sleep(delay).await;
                    delay *= 2;
                }
            }
        }
        if let Some(e) = last.filter(|_| conn.is_none()) {
            return Err(e);
        }
    }
    Ok(conn.as_mut().expect("connected above"))
}

/// Applies and resolves every submission of `batch` (left empty).
async fn write_batch(
    target: &PgTarget,
    conn: &mut Option<Connection>,
    batch: &mut Vec<Submission>,
) {
    if batch.iter().all(|s| s.ops.is_empty()) {
        // Flush barriers only: everything before them was committed by earlier batches.
        for s in batch.drain(..) {
            s.done.send(Ok(()));
        }
        return;
    }
    let c = match connected(target, conn).await {
        Ok(c) => c,
        Err(e) => {
            tracing::error!(
                error = &e as &dyn std::error::Error,
                submissions = batch.len(),
                "store writer cannot reach PostgreSQL; failing the batch"
            );
            fail_all(batch, &e);
            return;
        }
    };
    let all = batch.iter().flat_map(|s| s.ops.iter());
    match apply_in_transaction(c, all).await {
        Ok(()) => {
            for s in batch.drain(..) {
                s.done.send(Ok(()));
            }
        }
        Err(e) if e.violation().is_none() => {
            // Not a rule of the data: most likely the connection. Start the next batch on a
            // new one (the driver may not have noticed yet that this one is gone).
            *conn = None;
            tracing::error!(
                submissions = batch.len(),
                error = &e as &dyn std::error::Error,
                "store batch failed; not replayed (its outcome may be unknown)"
            );
            fail_all(batch, &e);
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
                "store batch refused; retrying submissions one by one"
            );
            for s in batch.drain(..) {
                let res = apply_in_transaction(c, s.ops.iter()).await;
                if let Err(e) = &res {
                    report(&s, e);
                }
                s.done.send(res);
            }
        }
    }
}

/// Fails every submission of `batch` with `e` (each gets its message, chain included).
fn fail_all(batch: &mut Vec<Submission>, e: &StoreError) {
    let message = crate::error_chain(e);
    for s in batch.drain(..) {
        s.done.send(Err(StoreError::Backend {
            op: "write",
            source: message.clone().into(),
        }));
    }
}

fn report(s: &Submission, e: &StoreError) {
    // A fenced write is expected once a room moved to another node; the owner steps down.
    if e.violation() == Some(crate::store::Violation::Fenced) {
        tracing::warn!(
            ops = s.ops.len(),
            "store write fenced: a newer owner holds the room"
        );
        return;
    }
    // The room checks its writes first, so even a refusal here means memory and store
    // disagree: worth an error.
    tracing::error!(
        ops = s.ops.len(),
        error = e as &dyn std::error::Error,
        "store write failed"
    );
}

/// All of `ops` in one transaction, or none of them.
async fn apply_in_transaction<'a>(
    c: &mut Connection,
    ops: impl Iterator<Item = &'a StoreOp>,
) -> Result<(), StoreError> {
    let tx = c.client.transaction().await.map_err(pg_error("begin"))?;
    // On failure the dropped transaction rolls back.
    apply(&tx, &c.statements, ops).await?;
    tx.commit().await.map_err(pg_error("commit"))
}
