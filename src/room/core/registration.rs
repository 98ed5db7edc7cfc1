//! The room's registration settings: who may register by themselves, and the default
//! country of registrants' phone numbers.

use super::validate::invalid;
use super::{Output, Room};
use crate::model::*;

/// A phone country is empty or two upper-case letters (the caller checks it against the
/// phone-number metadata; the room only keeps its shape).
pub(super) fn check_phone_country(country: &str) -> Result<(), RoomError> {
    if country.is_empty() || (country.len() == 2 && country.bytes().all(|b| b.is_ascii_uppercase()))
    {
        Ok(())
    } else {
        Err(invalid(format!(
            "phone_country {country:?} must be an ISO 3166 country code such as CN, or empty"
        )))
    }
}

impl Room {
    pub(super) fn set_registration(
        &mut self,
        mode: RegistrationMode,
        phone_country: Option<String>,
        now: i64,
        out: &mut Vec<Output>,
    ) -> Result<HostReply, RoomError> {
        if let Some(c) = &phone_country {
            check_phone_country(c)?;
        }
        self.record.registration = mode;
        if let Some(c) = phone_country {
            self.record.phone_country = c;
        }
        self.persist_room(out);
        out.push(self.action("registration", "", mode.as_str().into(), now));
        Ok(HostReply::Room(Box::new(self.summary())))
    }
}
