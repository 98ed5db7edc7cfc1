//! The room's registration settings: who may register by themselves, and the default
//! country of registrants' phone numbers; a registrant's personal data erased.

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

    /// Erases `viewer`'s name and company from what the room holds (orders, recent chat,
    /// dealer record, applications) and has the store do the same, registration included.
    /// Counts, orders and their amounts stay. The replay window of recent events (frames
    /// already sent) is left to age out.
    pub(super) fn erase_viewer(
        &mut self,
        viewer: String,
        now: i64,
        out: &mut Vec<Output>,
    ) -> Result<HostReply, RoomError> {
        super::validate::check_text("viewer_id", &viewer, 1, 64)?;
        self.commerce.orders.rename_buyer(&viewer, ERASED_NAME);
        for m in self
            .recent_chat
            .iter_mut()
            .filter(|m| m.viewer_id == viewer)
        {
            m.display_name = ERASED_NAME.to_string();
        }
        if let Some(d) = self.dealers.get_mut(&viewer) {
            d.company.clear();
        }
        for a in self
            .applications
            .values_mut()
            .filter(|a| a.viewer_id == viewer)
        {
            a.display_name = ERASED_NAME.to_string();
            a.company.clear();
            a.licence_number.clear();
            a.contact.clear();
        }
        out.push(Output::Persist(StoreOp::EraseViewer {
            room: self.record.id.clone(),
            viewer_id: viewer,
            at_ms: now,
        }));
        Ok(HostReply::Done)
    }
}
