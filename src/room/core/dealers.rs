//! Verified dealers and their tiers, the audience class each viewer gets, dealer applications.

use super::validate::{check_text, invalid};
use super::{Output, Room};
use crate::model::*;
use serde_json::json;

/// Dealer applications a room keeps.
const MAX_APPLICATIONS: usize = 100_000;

impl Room {
    /// The class a viewer gets: a dealer record decides; without one, a host-minted
    /// token's tier.
    pub(super) fn class_for(&self, viewer_id: &str, token_tier: Option<&str>) -> AudienceClass {
        let tier = match self.dealers.get(viewer_id) {
            Some(rec) => rec.tier.as_deref(),
            None => token_tier,
        };
        tier.and_then(|t| self.record.tier_index(t))
            .map(AudienceClass::Dealer)
            .unwrap_or(AudienceClass::Public)
    }

    /// The dealer tier of a session, if it is a verified dealer's.
    pub(super) fn dealer_tier(&self, session: SessionId) -> Option<String> {
        self.tier_name(self.sessions.get(&session)?.class)
    }

    /// Re-evaluates a viewer's class on every open connection after a dealer change.
    pub(super) fn reclassify(&mut self, viewer_id: &str, out: &mut Vec<Output>) {
        for id in self.sessions_of(viewer_id) {
            let s = &self.sessions[&id];
            let class = self.class_for(viewer_id, s.token_tier.as_deref());
            if class == s.class {
                continue;
            }
            self.sessions.get_mut(&id).expect("listed").class = class;
            let s = &self.sessions[&id];
            let shelf = self.shelf();
            let view = self.class_view(class);
            let frame = self.private(
                "role_changed",
                json!({
                    "you": self.you(s),
                    "shelf": view.shelf(&shelf),
                    "pinned_product": self.record.pinned_product,
                }),
            );
            out.push(Output::ClassChanged { session: id, class });
            out.push(Output::Send { session: id, frame });
        }
    }

    pub(super) fn set_dealer(
        &mut self,
        viewer_id: &str,
        tier: Option<String>,
        company: String,
        now: i64,
        out: &mut Vec<Output>,
    ) -> DealerRecord {
        let dealer = DealerRecord {
            viewer_id: viewer_id.to_string(),
            tier,
            company,
            updated_ms: now,
        };
        self.dealers.insert(viewer_id.to_string(), dealer.clone());
        out.push(Output::Persist(StoreOp::PutDealer {
            room: self.record.id.clone(),
            dealer: Box::new(dealer.clone()),
        }));
        self.reclassify(viewer_id, out);
        dealer
    }

    pub(super) fn list_dealers(&self) -> HostReply {
        let mut d: Vec<DealerRecord> = self.dealers.values().cloned().collect();
        d.sort_by(|a, b| a.viewer_id.cmp(&b.viewer_id));
        HostReply::Dealers(d)
    }

    pub(super) fn list_applications(&self, status: Option<ApplicationStatus>) -> HostReply {
        let mut a: Vec<DealerApplication> = self
            .applications
            .values()
            .filter(|a| status.is_none_or(|s| a.status == s))
            .cloned()
            .collect();
        a.sort_by_key(|a| a.created_ms);
        HostReply::Applications(a)
    }

    pub(super) fn verify_dealer(
        &mut self,
        viewer_id: String,
        tier: String,
        company: String,
        now: i64,
        out: &mut Vec<Output>,
    ) -> Result<HostReply, RoomError> {
        crate::auth::check_viewer_id(&viewer_id).map_err(invalid)?;
        self.check_tier(&tier)?;
        check_text("company", &company, 0, 200)?;
        let dealer = self.set_dealer(&viewer_id, Some(tier.clone()), company, now, out);
        out.push(self.action("dealer_verified", &viewer_id, tier, now));
        Ok(HostReply::Dealer(dealer))
    }

    pub(super) fn revoke_dealer(
        &mut self,
        viewer_id: String,
        now: i64,
        out: &mut Vec<Output>,
    ) -> Result<HostReply, RoomError> {
        let known = match self.dealers.get(&viewer_id) {
            Some(d) => d.tier.is_some(),
            // A dealer by its token only.
            None => self
                .sessions_of(&viewer_id)
                .iter()
                .any(|id| self.sessions[id].class != AudienceClass::Public),
        };
        if !known {
            return Err(RoomError::NotFound(format!(
                "viewer {viewer_id} is not a verified dealer of room {}",
                self.record.id
            )));
        }
        let company = self
            .dealers
            .get(&viewer_id)
            .map(|d| d.company.clone())
            .unwrap_or_default();
        let dealer = self.set_dealer(&viewer_id, None, company, now, out);
        out.push(self.action("dealer_revoked", &viewer_id, String::new(), now));
        Ok(HostReply::Dealer(dealer))
    }

    /// A viewer applies to be verified as a dealer (fields already cleaned by the parser).
    pub(super) fn apply_as_dealer(
        &mut self,
        session: SessionId,
        company: String,
        licence_number: String,
        contact: String,
        now: i64,
        out: &mut Vec<Output>,
    ) -> Result<(), ProtocolError> {
        let s = &self.sessions[&session];
        if s.class != AudienceClass::Public {
            return Err(ProtocolError::new(
                "already_dealer",
                "you are already a verified dealer in this room",
            ));
        }
        let viewer_id = s.viewer_id.clone();
        let display_name = s.display_name.clone();
        if self
            .applications
            .values()
            .any(|a| a.viewer_id == viewer_id && a.status == ApplicationStatus::Pending)
        {
            return Err(ProtocolError::new(
                "already_pending",
                "your dealer application is already waiting for review",
            ));
        }
        if self.applications.len() >= MAX_APPLICATIONS {
            return Err(ProtocolError::new(
                "not_allowed",
                "this room accepts no more applications",
            ));
        }
        let id = self.next_id("a");
        let app = DealerApplication {
            id: id.clone(),
            viewer_id,
            display_name,
            company,
            licence_number,
            contact,
            status: ApplicationStatus::Pending,
            tier: None,
            reason: None,
            created_ms: now,
            decided_ms: None,
        };
        self.applications.insert(id.clone(), app.clone());
        self.persist_room(out);
        out.push(Output::Persist(StoreOp::PutApplication {
            room: self.record.id.clone(),
            application: Box::new(app.clone()),
        }));
        out.push(Output::Watch(WatchEvent::Application(Box::new(app))));
        let frame = self.private(
            "dealer_application_received",
            json!({ "application_id": id, "status": "pending" }),
        );
        out.push(Output::Send { session, frame });
        Ok(())
    }

    pub(super) fn decide(
        &mut self,
        id: &str,
        status: ApplicationStatus,
        tier: Option<String>,
        reason: Option<String>,
        now: i64,
    ) -> Result<DealerApplication, RoomError> {
        let room = &self.record.id;
        let app = self.applications.get_mut(id).ok_or_else(|| {
            RoomError::NotFound(format!("dealer application {id} not found in room {room}"))
        })?;
        if app.status != ApplicationStatus::Pending {
            return Err(RoomError::FailedPrecondition(format!(
                "dealer application {id} was already {}",
                app.status.as_str()
            )));
        }
        app.status = status;
        app.tier = tier;
        app.reason = reason;
        app.decided_ms = Some(now);
        Ok(app.clone())
    }

    pub(super) fn notify_application(&self, app: &DealerApplication, out: &mut Vec<Output>) {
        for session in self.sessions_of(&app.viewer_id) {
            let frame = self.private(
                "application_result",
                json!({
                    "application_id": app.id,
                    "status": app.status.as_str(),
                    "tier": app.tier,
                    "reason": app.reason,
                }),
            );
            out.push(Output::Send { session, frame });
        }
    }

    pub(super) fn approve_application(
        &mut self,
        application_id: String,
        tier: String,
        now: i64,
        out: &mut Vec<Output>,
    ) -> Result<HostReply, RoomError> {
        self.check_tier(&tier)?;
        let app = self.decide(
            &application_id,
            ApplicationStatus::Approved,
            Some(tier.clone()),
            None,
            now,
        )?;
        out.push(Output::Persist(StoreOp::PutApplication {
            room: self.record.id.clone(),
            application: Box::new(app.clone()),
        }));
        self.set_dealer(
            &app.viewer_id,
            Some(tier.clone()),
            app.company.clone(),
            now,
            out,
        );
        self.notify_application(&app, out);
        out.push(self.action("dealer_verified", &app.viewer_id, tier, now));
        Ok(HostReply::Application(app))
    }

    pub(super) fn reject_application(
        &mut self,
        application_id: String,
        reason: String,
        now: i64,
        out: &mut Vec<Output>,
    ) -> Result<HostReply, RoomError> {
        check_text("reason", reason.trim(), 1, 500)?;
        let app = self.decide(
            &application_id,
            ApplicationStatus::Rejected,
            None,
            Some(reason.trim().to_string()),
            now,
        )?;
        out.push(Output::Persist(StoreOp::PutApplication {
            room: self.record.id.clone(),
            application: Box::new(app.clone()),
        }));
        self.notify_application(&app, out);
        Ok(HostReply::Application(app))
    }
}
