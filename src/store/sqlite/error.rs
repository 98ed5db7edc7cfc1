//! SQLite's errors in the store's terms: constraint failures are refusals, undecodable rows
//! are corruption, the rest is a backend failure; SQLite's own error is kept as the source.

use crate::store::{StoreError, Violation};
use rusqlite::ffi;

/// Maps a failure of `op` (an operation name for the store's report).
pub(super) fn sql_error(op: &'static str) -> impl Fn(rusqlite::Error) -> StoreError {
    move |e| classify(op, e)
}

pub(super) fn classify(op: &'static str, e: rusqlite::Error) -> StoreError {
    match &e {
        rusqlite::Error::SqliteFailure(f, _)
            if f.code == rusqlite::ErrorCode::ConstraintViolation =>
        {
            let violation = match f.extended_code {
                ffi::SQLITE_CONSTRAINT_UNIQUE | ffi::SQLITE_CONSTRAINT_PRIMARYKEY => {
                    Violation::Duplicate
                }
                ffi::SQLITE_CONSTRAINT_FOREIGNKEY => Violation::Missing,
                _ => Violation::Other,
            };
            StoreError::Refused {
                op,
                violation,
                source: Some(Box::new(e)),
            }
        }
        rusqlite::Error::FromSqlConversionFailure(..)
        | rusqlite::Error::InvalidColumnType(..)
        | rusqlite::Error::IntegralValueOutOfRange(..) => StoreError::Corrupt {
            op,
            source: Box::new(e),
        },
        _ => StoreError::Backend {
            op,
            source: Box::new(e),
        },
    }
}
