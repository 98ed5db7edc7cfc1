//! Why a registration or a registrant's fetch was refused, with its HTTP status and the
//! JSON error code clients switch on (docs/registration.md lists them).

use super::FieldError;
use crate::store::StoreError;

#[derive(Debug, thiserror::Error)]
pub enum RegistrationError {
    /// The body, or one field of it, is not acceptable.
    #[error("{}", .0.message)]
    Invalid(FieldError),
    #[error("room {0} not found")]
    RoomNotFound(String),
    #[error("this room does not take registrations: its host hands out the links")]
    Closed,
    #[error("this room has ended")]
    Ended,
    #[error("this room takes registrations by invitation only: open the link you were sent")]
    InviteRequired,
    #[error(
        "this phone number belongs to a verified dealer: open your personal link, or ask the \
         organiser for it"
    )]
    DealerPhone,
    #[error("the organiser declined this registration")]
    Rejected,
    /// An unknown registration, or a wrong secret (the same answer, so neither is revealed).
    #[error("no such registration")]
    NotFound,
    #[error("too many registrations from this {scope}; try again in {retry_after_secs} s")]
    RateLimited {
        retry_after_secs: u64,
        scope: &'static str,
    },
    /// A host's request that clashes with what is stored (a channel name taken).
    #[error("{0}")]
    AlreadyExists(String),
    /// A host's decision on a registration already decided otherwise.
    #[error("{0}")]
    AlreadyDecided(String),
    /// The room or the store cannot be reached now.
    #[error("registration is not available right now: {0}")]
    Unavailable(String),
    #[error("internal error: {0}")]
    Internal(String),
}

impl From<StoreError> for RegistrationError {
    fn from(e: StoreError) -> Self {
        tracing::warn!(error = %crate::error_chain(&e), "registration: the store failed");
        RegistrationError::Unavailable("the store failed".into())
    }
}

impl RegistrationError {
    /// The HTTP status of this refusal.
    pub fn status(&self) -> u16 {
        match self {
            RegistrationError::Invalid(_) => 400,
            RegistrationError::RoomNotFound(_) | RegistrationError::NotFound => 404,
            RegistrationError::Closed
            | RegistrationError::InviteRequired
            | RegistrationError::Rejected => 403,
            RegistrationError::Ended
            | RegistrationError::DealerPhone
            | RegistrationError::AlreadyExists(_)
            | RegistrationError::AlreadyDecided(_) => 409,
            RegistrationError::RateLimited { .. } => 429,
            RegistrationError::Unavailable(_) => 503,
            RegistrationError::Internal(_) => 500,
        }
    }

    /// The stable code clients switch on.
    pub fn code(&self) -> &'static str {
        match self {
            RegistrationError::Invalid(_) => "invalid",
            RegistrationError::RoomNotFound(_) => "room_not_found",
            RegistrationError::Closed => "registration_closed",
            RegistrationError::Ended => "room_ended",
            RegistrationError::InviteRequired => "invite_required",
            RegistrationError::DealerPhone => "dealer_phone",
            RegistrationError::Rejected => "rejected",
            RegistrationError::NotFound => "not_found",
            RegistrationError::RateLimited { .. } => "rate_limited",
            RegistrationError::AlreadyExists(_) => "already_exists",
            RegistrationError::AlreadyDecided(_) => "already_decided",
            RegistrationError::Unavailable(_) => "unavailable",
            RegistrationError::Internal(_) => "internal",
        }
    }

    /// The field at fault, if one is.
    pub fn field(&self) -> Option<&'static str> {
        match self {
            RegistrationError::Invalid(f) => f.field,
            RegistrationError::InviteRequired => Some("invite"),
            RegistrationError::DealerPhone => Some("phone"),
            _ => None,
        }
    }
}
