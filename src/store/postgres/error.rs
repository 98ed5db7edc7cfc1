//! PostgreSQL's errors in the store's terms: constraint failures are refusals, the rest is a
//! backend failure; the driver's error is kept as the source.

use crate::store::{StoreError, Violation};
use tokio_postgres::error::SqlState;

/// Maps a failure of `op` (an operation name for the store's report).
pub(super) fn pg_error(op: &'static str) -> impl Fn(tokio_postgres::Error) -> StoreError {
    move |e| classify(op, e)
}

pub(super) fn classify(op: &'static str, e: tokio_postgres::Error) -> StoreError {
    let violation = match e.code() {
        Some(c) if *c == SqlState::UNIQUE_VIOLATION => Some(Violation::Duplicate),
        Some(c) if *c == SqlState::FOREIGN_KEY_VIOLATION => Some(Violation::Missing),
        Some(c) if *c == SqlState::CHECK_VIOLATION || *c == SqlState::NOT_NULL_VIOLATION => {
            Some(Violation::Other)
        }
        _ => None,
    };
    match violation {
        Some(violation) => StoreError::Refused {
            op,
            violation,
            source: Some(Box::new(e)),
        },
        None => StoreError::Backend {
            op,
            source: Box::new(e),
        },
    }
}

/// A value read back that does not decode into its record.
pub(super) fn corrupt(op: &'static str) -> impl Fn(tokio_postgres::Error) -> StoreError {
    move |e| StoreError::Corrupt {
        op,
        source: Box::new(e),
    }
}
