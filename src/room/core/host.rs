//! Dispatch of the two kinds of input: host commands (control plane) and viewer messages.

use super::{Output, Room};
use crate::model::*;
use serde_json::json;

/// Errors (bad messages) per minute after which a viewer is closed for abuse.
const ERROR_STRIKES: u32 = 30;

impl Room {
    /// A host command. Reads change nothing; writes emit events and store writes.
    pub fn host(
        &mut self,
        cmd: HostCommand,
        now: i64,
        out: &mut Vec<Output>,
    ) -> Result<HostReply, RoomError> {
        self.now = now;
        if !cmd.is_read() && !cmd.allowed_after_end() {
            self.require_not_ended()?;
        }
        match cmd {
            HostCommand::GetRoom => Ok(HostReply::Room(Box::new(self.summary()))),
            HostCommand::ListProducts { brand_id } => self.list_products(brand_id),
            HostCommand::ListDealers => Ok(self.list_dealers()),
            HostCommand::ListApplications { status } => Ok(self.list_applications(status)),
            HostCommand::Open => self.open_room(now, out),
            HostCommand::Close => self.close_room(now, out),
            HostCommand::AddBrand {
                name,
                logo_url,
                position,
            } => self.add_brand(name, logo_url, position, now, out),
            HostCommand::UpdateBrand {
                brand_id,
                name,
                logo_url,
                position,
            } => self.update_brand(brand_id, name, logo_url, position, now, out),
            HostCommand::RemoveBrand { brand_id } => self.remove_brand(brand_id, now, out),
            HostCommand::SwitchBrand { brand_id } => self.switch_brand(brand_id, now, out),
            HostCommand::UpsertProduct(input) => self.upsert_product(input, now, out),
            HostCommand::RemoveProduct { product_id } => self.remove_product(product_id, now, out),
            HostCommand::PinProduct { product_id } => self.pin_product(product_id, now, out),
            HostCommand::UnpinProduct => self.unpin_product(now, out),
            HostCommand::VerifyDealer {
                viewer_id,
                tier,
                company,
            } => self.verify_dealer(viewer_id, tier, company, now, out),
            HostCommand::RevokeDealer { viewer_id } => self.revoke_dealer(viewer_id, now, out),
            HostCommand::ApproveApplication {
                application_id,
                tier,
            } => self.approve_application(application_id, tier, now, out),
            HostCommand::RejectApplication {
                application_id,
                reason,
            } => self.reject_application(application_id, reason, now, out),
            HostCommand::Mute {
                viewer_id,
                duration_seconds,
            } => self.mute(viewer_id, duration_seconds, now, out),
            HostCommand::Kick { viewer_id, reason } => self.kick(viewer_id, reason, now, out),
            HostCommand::RevokeToken { jti, reason } => self.revoke_token(jti, reason, now, out),
            HostCommand::DeleteMessage { message_id } => self.delete_message(message_id, now, out),
            HostCommand::Announce { text } => self.announce(text, now, out),
            HostCommand::SetRegistration {
                mode,
                phone_country,
            } => self.set_registration(mode, phone_country, now, out),
            HostCommand::Commerce(c) => self.commerce_command(c, now, out),
            HostCommand::EraseViewer { viewer_id } => self.erase_viewer(viewer_id, now, out),
        }
    }

    /// A message from a viewer's connection. A refused message gets an `error` frame; a
    /// stream of them closes the connection.
    pub fn client(
        &mut self,
        session: SessionId,
        msg: Result<ClientMessage, ProtocolError>,
        now: i64,
        out: &mut Vec<Output>,
    ) {
        self.now = now;
        if !self.sessions.contains_key(&session) {
            return;
        }
        let Err(e) = msg.and_then(|m| self.client_message(session, m, now, out)) else {
            return;
        };
        let frame = self.error_frame(&e.code, &e.message);
        out.push(Output::Send { session, frame });
        let s = self.sessions.get_mut(&session).expect("checked above");
        if now - s.strike_window_start > 60_000 {
            s.strike_window_start = now;
            s.error_strikes = 0;
        }
        s.error_strikes += 1;
        if s.error_strikes > ERROR_STRIKES {
            out.push(Output::Close {
                session,
                why: Refusal::new(EndReason::Abuse, "too many invalid messages"),
            });
        }
    }

    pub(super) fn client_message(
        &mut self,
        session: SessionId,
        msg: ClientMessage,
        now: i64,
        out: &mut Vec<Output>,
    ) -> Result<(), ProtocolError> {
        match msg {
            ClientMessage::Ping { t } => {
                let frame = self.private("pong", json!({ "t": t, "server_time_ms": now }));
                out.push(Output::Send { session, frame });
                Ok(())
            }
            ClientMessage::Like { count } => {
                self.like(count);
                let viewer_id = self.sessions[&session].viewer_id.clone();
                self.count_engagement(&viewer_id, EngagementKind::Like, "", count, now, out);
                Ok(())
            }
            ClientMessage::ProductView { product_id } => {
                self.product_event(session, &product_id, EngagementKind::ProductView, now, out)
            }
            ClientMessage::ProductClick { product_id } => {
                self.product_event(session, &product_id, EngagementKind::ProductClick, now, out)
            }
            ClientMessage::Chat { text } => self.chat(session, text, now, out),
            ClientMessage::Resume { last_seq, epoch } => {
                self.resume(session, last_seq, epoch.as_deref(), now, out);
                Ok(())
            }
            ClientMessage::DealerApplication {
                company,
                licence_number,
                contact,
            } => self.apply_as_dealer(session, company, licence_number, contact, now, out),
            ClientMessage::PlaceOrder {
                product_id,
                quantity,
                key,
            } => self.place_order(session, &product_id, quantity, &key, now, out),
            ClientMessage::Grab { sale_id, key } => self.grab(session, &sale_id, &key, now, out),
            ClientMessage::EnterDraw { draw_id } => self.enter_draw(session, &draw_id, now, out),
            ClientMessage::GrabRedPacket { packet_id } => {
                self.grab_red_packet(session, &packet_id, now, out)
            }
        }
    }
}
