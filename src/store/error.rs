//! What can go wrong in a store, backend-neutral, with the backend's own error kept as source.

use std::fmt;

/// A backend's own error, kept whole so a caller can walk `source()` down to it.
pub type BoxError = Box<dyn std::error::Error + Send + Sync + 'static>;

/// A store failure. The display says what failed in the store's terms; the backend's error
/// (SQLite's, PostgreSQL's, an I/O error) is the source, not repeated in the display, so a
/// report that prints the chain shows it once.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The backend failed while doing `op`: I/O, a lost connection, a statement it rejected.
    #[error("store: {op} failed")]
    Backend {
        op: &'static str,
        #[source]
        source: BoxError,
    },
    /// A write the stored data does not allow; nothing of its submission was applied.
    #[error("store refused {op}: {violation}")]
    Refused {
        op: &'static str,
        violation: Violation,
        /// The backend's report of it, when the backend found it (not for a rule the store
        /// checks itself, such as a sold-out sale).
        #[source]
        source: Option<BoxError>,
    },
    /// Stored data that cannot be decoded into its record (written by something else, or
    /// damaged).
    #[error("store: {op} found undecodable data")]
    Corrupt {
        op: &'static str,
        #[source]
        source: BoxError,
    },
    /// The store was shut down before it could do this.
    #[error("store is closed")]
    Closed,
}

impl StoreError {
    /// The rule a refused write broke, if it was refused.
    pub fn violation(&self) -> Option<Violation> {
        match self {
            StoreError::Refused { violation, .. } => Some(*violation),
            _ => None,
        }
    }
}

/// Why a write was refused, the same for every backend.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Violation {
    /// Something with the same key is stored already: an id, an order's idempotency key, a
    /// red-packet share or its grabber.
    Duplicate,
    /// It refers to something that is not stored: a room, a brand, a draw, a red packet.
    Missing,
    /// A flash sale with no unit left (or no such sale).
    SoldOut,
    /// A newer owner of the room has written (a higher fencing token is stored): the
    /// writer no longer owns the room and must stop serving it.
    Fenced,
    /// Another rule of the stored data.
    Other,
}

impl fmt::Display for Violation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Violation::Duplicate => "a duplicate key",
            Violation::Missing => "it refers to something not stored",
            Violation::SoldOut => "sold out",
            Violation::Fenced => "a newer owner of the room has written",
            Violation::Other => "a rule of the stored data",
        })
    }
}
