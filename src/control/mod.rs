//! The gRPC control plane: a thin tonic service over the rooms seam. Each RPC is one line
//! here, its work in the module of its topic (rooms, catalog, audience, commerce); protobuf ↔
//! domain conversions live in `convert`; domain errors become `Status` in one place
//! (`convert::status_of`).

mod audience;
mod catalog;
mod catalog_import;
mod commerce;
mod convert;
mod registration;
mod reports;
mod reports_commerce;
mod rooms;
mod webhooks;

use crate::auth::HostKeys;
use crate::metrics::Metrics;
use crate::model::{HostCommand, HostReply, RegistrationStatus, RoomState, RoomSummary};
use crate::pb;
use crate::pb::control_server::Control;
use crate::registration::Registrar;
use crate::reports::Reports;
use crate::rooms::Rooms;
pub use convert::status_of;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use tokio_stream::Stream;
use tonic::{Code, Request, Response, Status};

pub struct ControlService {
    hub: Arc<dyn Rooms>,
    registrar: Arc<Registrar>,
    reports: Arc<Reports>,
    hooks: Arc<crate::webhooks::host::Hooks>,
    keys: HostKeys,
    metrics: Arc<Metrics>,
}

impl ControlService {
    pub fn new(
        rooms: Arc<dyn Rooms>,
        registrar: Arc<Registrar>,
        reports: Arc<Reports>,
        hooks: Arc<crate::webhooks::host::Hooks>,
        metrics: Arc<Metrics>,
        keys: HostKeys,
    ) -> ControlService {
        ControlService {
            hub: rooms,
            registrar,
            reports,
            hooks,
            keys,
            metrics,
        }
    }

    /// `call` for the registration RPCs, whose work is the registrar's.
    async fn call_registrar<T, R, Fut>(
        &self,
        method: &'static str,
        req: Request<T>,
        f: impl FnOnce(Arc<Registrar>, T) -> Fut,
    ) -> Result<Response<R>, Status>
    where
        Fut: Future<Output = Result<R, Status>>,
    {
        let registrar = self.registrar.clone();
        self.call(method, req, move |_, r| f(registrar, r)).await
    }

    /// `call` for the report RPCs, whose work is the reports service's.
    async fn call_reports<T, R, Fut>(
        &self,
        method: &'static str,
        req: Request<T>,
        f: impl FnOnce(Arc<Reports>, T) -> Fut,
    ) -> Result<Response<R>, Status>
    where
        Fut: Future<Output = Result<R, Status>>,
    {
        let reports = self.reports.clone();
        self.call(method, req, move |_, r| f(reports, r)).await
    }

    /// `call` for the webhook RPCs, whose work is the store's.
    async fn call_hooks<T, R, Fut>(
        &self,
        method: &'static str,
        req: Request<T>,
        f: impl FnOnce(Arc<crate::webhooks::host::Hooks>, T) -> Fut,
    ) -> Result<Response<R>, Status>
    where
        Fut: Future<Output = Result<R, Status>>,
    {
        let hooks = self.hooks.clone();
        self.call(method, req, move |_, r| f(hooks, r)).await
    }

    fn authorize(&self, md: &tonic::metadata::MetadataMap) -> Result<(), Status> {
        let value = md
            .get("authorization")
            .ok_or_else(|| {
                Status::unauthenticated("missing `authorization: Bearer <host API key>` metadata")
            })?
            .to_str()
            .map_err(|_| Status::unauthenticated("authorization metadata is not ASCII"))?;
        let key = value.strip_prefix("Bearer ").ok_or_else(|| {
            Status::unauthenticated("authorization must be `Bearer <host API key>`")
        })?;
        if self.keys.check(key.trim()) {
            Ok(())
        } else {
            Err(Status::unauthenticated("unknown host API key"))
        }
    }

    /// Authenticates, runs the call, counts it by method and code.
    async fn call<T, R, Fut>(
        &self,
        method: &'static str,
        req: Request<T>,
        f: impl FnOnce(Arc<dyn Rooms>, T) -> Fut,
    ) -> Result<Response<R>, Status>
    where
        Fut: Future<Output = Result<R, Status>>,
    {
        let res = match self.authorize(req.metadata()) {
            Err(s) => Err(s),
            Ok(()) => f(self.hub.clone(), req.into_inner()).await,
        };
        self.metrics.grpc(
            method,
            res.as_ref().err().map(|s| s.code()).unwrap_or(Code::Ok),
        );
        res.map(Response::new)
    }
}

/// A required string field of a request.
fn need(field: &str, v: &str) -> Result<(), Status> {
    if v.is_empty() {
        Err(Status::invalid_argument(format!("{field} is required")))
    } else {
        Ok(())
    }
}

async fn host(hub: &dyn Rooms, room: &str, cmd: HostCommand) -> Result<HostReply, Status> {
    need("room_id", room)?;
    hub.host(room, cmd).await.map_err(status_of)
}

fn unexpected() -> Status {
    Status::internal("unexpected reply from the room")
}

async fn summary(hub: &dyn Rooms, room: &str) -> Result<RoomSummary, Status> {
    match host(hub, room, HostCommand::GetRoom).await? {
        HostReply::Room(s) => Ok(*s),
        _ => Err(unexpected()),
    }
}

/// A room that has not ended (tokens are issued only for those).
async fn unended_room(hub: &dyn Rooms, room: &str) -> Result<RoomSummary, Status> {
    let s = summary(hub, room).await?;
    if s.record.state == RoomState::Ended {
        return Err(Status::failed_precondition(format!(
            "room {room} has ended"
        )));
    }
    Ok(s)
}

/// A token's lifetime in seconds: 0 means one day; at most 30 days.
fn token_ttl(ttl_seconds: u32) -> Result<u32, Status> {
    let ttl = if ttl_seconds == 0 {
        86_400
    } else {
        ttl_seconds
    };
    if ttl > 30 * 86_400 {
        return Err(Status::invalid_argument(
            "ttl_seconds must be at most 30 days (2592000)",
        ));
    }
    Ok(ttl)
}

type WatchStream = Pin<Box<dyn Stream<Item = Result<pb::WatchRoomEvent, Status>> + Send>>;

#[tonic::async_trait]
impl Control for ControlService {
    async fn create_room(
        &self,
        req: Request<pb::CreateRoomRequest>,
    ) -> Result<Response<pb::CreateRoomResponse>, Status> {
        self.call("CreateRoom", req, rooms::create_room).await
    }

    async fn get_room(
        &self,
        req: Request<pb::GetRoomRequest>,
    ) -> Result<Response<pb::Room>, Status> {
        self.call("GetRoom", req, rooms::get_room).await
    }

    async fn list_rooms(
        &self,
        req: Request<pb::ListRoomsRequest>,
    ) -> Result<Response<pb::ListRoomsResponse>, Status> {
        self.call("ListRooms", req, rooms::list_rooms).await
    }

    async fn open_room(&self, req: Request<pb::RoomRef>) -> Result<Response<pb::Room>, Status> {
        self.call("OpenRoom", req, rooms::open_room).await
    }

    async fn close_room(&self, req: Request<pb::RoomRef>) -> Result<Response<pb::Room>, Status> {
        self.call("CloseRoom", req, rooms::close_room).await
    }

    async fn get_room_token_key(
        &self,
        req: Request<pb::RoomRef>,
    ) -> Result<Response<pb::RoomTokenKey>, Status> {
        self.call("GetRoomTokenKey", req, rooms::get_room_token_key)
            .await
    }

    async fn announce(
        &self,
        req: Request<pb::AnnounceRequest>,
    ) -> Result<Response<pb::Empty>, Status> {
        self.call("Announce", req, rooms::announce).await
    }

    async fn set_registration(
        &self,
        req: Request<pb::SetRegistrationRequest>,
    ) -> Result<Response<pb::Room>, Status> {
        self.call("SetRegistration", req, registration::set_registration)
            .await
    }

    async fn list_registrations(
        &self,
        req: Request<pb::ListRegistrationsRequest>,
    ) -> Result<Response<pb::ListRegistrationsResponse>, Status> {
        self.call_registrar("ListRegistrations", req, registration::list_registrations)
            .await
    }

    async fn erase_registrant(
        &self,
        req: Request<pb::RegistrationRef>,
    ) -> Result<Response<pb::Registration>, Status> {
        self.call_registrar("EraseRegistrant", req, registration::erase_registrant)
            .await
    }

    async fn approve_registration(
        &self,
        req: Request<pb::RegistrationRef>,
    ) -> Result<Response<pb::Registration>, Status> {
        self.call_registrar("ApproveRegistration", req, |reg, r| {
            registration::decide_registration(reg, r, RegistrationStatus::Approved)
        })
        .await
    }

    async fn reject_registration(
        &self,
        req: Request<pb::RegistrationRef>,
    ) -> Result<Response<pb::Registration>, Status> {
        self.call_registrar("RejectRegistration", req, |reg, r| {
            registration::decide_registration(reg, r, RegistrationStatus::Rejected)
        })
        .await
    }

    async fn create_channel(
        &self,
        req: Request<pb::CreateChannelRequest>,
    ) -> Result<Response<pb::Channel>, Status> {
        self.call_registrar("CreateChannel", req, registration::create_channel)
            .await
    }

    async fn list_channels(
        &self,
        req: Request<pb::RoomRef>,
    ) -> Result<Response<pb::ListChannelsResponse>, Status> {
        self.call_registrar("ListChannels", req, registration::list_channels)
            .await
    }

    async fn import_dealers(
        &self,
        req: Request<pb::ImportDealersRequest>,
    ) -> Result<Response<pb::ImportDealersResponse>, Status> {
        self.call_registrar("ImportDealers", req, registration::import_dealers)
            .await
    }

    async fn import_catalog(
        &self,
        req: Request<pb::ImportCatalogRequest>,
    ) -> Result<Response<pb::ImportCatalogResponse>, Status> {
        self.call("ImportCatalog", req, catalog_import::import_catalog)
            .await
    }

    type WatchRoomStream = WatchStream;

    async fn get_room_report(
        &self,
        req: Request<pb::GetRoomReportRequest>,
    ) -> Result<Response<pb::RoomReport>, Status> {
        self.call_reports("GetRoomReport", req, reports::room_report)
            .await
    }

    async fn list_leads(
        &self,
        req: Request<pb::ListLeadsRequest>,
    ) -> Result<Response<pb::ListLeadsResponse>, Status> {
        self.call_reports("ListLeads", req, reports::list_leads)
            .await
    }

    async fn get_referral_tree(
        &self,
        req: Request<pb::GetReferralTreeRequest>,
    ) -> Result<Response<pb::ReferralTree>, Status> {
        self.call_reports("GetReferralTree", req, reports::referral_tree)
            .await
    }

    async fn export_report(
        &self,
        req: Request<pb::ExportReportRequest>,
    ) -> Result<Response<pb::ExportReportResponse>, Status> {
        self.call_reports("ExportReport", req, reports::export_report)
            .await
    }

    async fn set_lead_weights(
        &self,
        req: Request<pb::SetLeadWeightsRequest>,
    ) -> Result<Response<pb::LeadWeights>, Status> {
        self.call_reports("SetLeadWeights", req, reports::set_lead_weights)
            .await
    }

    async fn set_webhook(
        &self,
        req: Request<pb::SetWebhookRequest>,
    ) -> Result<Response<pb::Webhook>, Status> {
        self.call_hooks("SetWebhook", req, webhooks::set_webhook)
            .await
    }

    async fn get_webhook(
        &self,
        req: Request<pb::RoomRef>,
    ) -> Result<Response<pb::Webhook>, Status> {
        self.call_hooks("GetWebhook", req, webhooks::get_webhook)
            .await
    }

    async fn delete_webhook(
        &self,
        req: Request<pb::RoomRef>,
    ) -> Result<Response<pb::Empty>, Status> {
        self.call_hooks("DeleteWebhook", req, webhooks::delete_webhook)
            .await
    }

    async fn list_webhook_deliveries(
        &self,
        req: Request<pb::ListWebhookDeliveriesRequest>,
    ) -> Result<Response<pb::ListWebhookDeliveriesResponse>, Status> {
        self.call_hooks("ListWebhookDeliveries", req, webhooks::list_deliveries)
            .await
    }

    async fn retry_webhook_delivery(
        &self,
        req: Request<pb::WebhookDeliveryRef>,
    ) -> Result<Response<pb::WebhookDelivery>, Status> {
        self.call_hooks("RetryWebhookDelivery", req, webhooks::retry_delivery)
            .await
    }

    async fn watch_room(
        &self,
        req: Request<pb::RoomRef>,
    ) -> Result<Response<Self::WatchRoomStream>, Status> {
        let reports = self.reports.clone();
        self.call("WatchRoom", req, move |hub, r| {
            reports::watch_room(hub, reports, r)
        })
        .await
    }

    async fn add_brand(
        &self,
        req: Request<pb::AddBrandRequest>,
    ) -> Result<Response<pb::Brand>, Status> {
        self.call("AddBrand", req, catalog::add_brand).await
    }

    async fn update_brand(
        &self,
        req: Request<pb::UpdateBrandRequest>,
    ) -> Result<Response<pb::Brand>, Status> {
        self.call("UpdateBrand", req, catalog::update_brand).await
    }

    async fn remove_brand(
        &self,
        req: Request<pb::BrandRef>,
    ) -> Result<Response<pb::Empty>, Status> {
        self.call("RemoveBrand", req, catalog::remove_brand).await
    }

    async fn switch_brand(&self, req: Request<pb::BrandRef>) -> Result<Response<pb::Room>, Status> {
        self.call("SwitchBrand", req, catalog::switch_brand).await
    }

    async fn upsert_product(
        &self,
        req: Request<pb::UpsertProductRequest>,
    ) -> Result<Response<pb::Product>, Status> {
        self.call("UpsertProduct", req, catalog::upsert_product)
            .await
    }

    async fn remove_product(
        &self,
        req: Request<pb::ProductRef>,
    ) -> Result<Response<pb::Empty>, Status> {
        self.call("RemoveProduct", req, catalog::remove_product)
            .await
    }

    async fn list_products(
        &self,
        req: Request<pb::ListProductsRequest>,
    ) -> Result<Response<pb::ListProductsResponse>, Status> {
        self.call("ListProducts", req, catalog::list_products).await
    }

    async fn pin_product(
        &self,
        req: Request<pb::ProductRef>,
    ) -> Result<Response<pb::Empty>, Status> {
        self.call("PinProduct", req, catalog::pin_product).await
    }

    async fn unpin_product(
        &self,
        req: Request<pb::RoomRef>,
    ) -> Result<Response<pb::Empty>, Status> {
        self.call("UnpinProduct", req, catalog::unpin_product).await
    }

    async fn issue_viewer_token(
        &self,
        req: Request<pb::IssueViewerTokenRequest>,
    ) -> Result<Response<pb::ViewerToken>, Status> {
        self.call("IssueViewerToken", req, audience::issue_viewer_token)
            .await
    }

    async fn issue_presenter_token(
        &self,
        req: Request<pb::IssuePresenterTokenRequest>,
    ) -> Result<Response<pb::PresenterToken>, Status> {
        self.call("IssuePresenterToken", req, audience::issue_presenter_token)
            .await
    }

    async fn verify_dealer(
        &self,
        req: Request<pb::VerifyDealerRequest>,
    ) -> Result<Response<pb::Dealer>, Status> {
        self.call("VerifyDealer", req, audience::verify_dealer)
            .await
    }

    async fn revoke_dealer(
        &self,
        req: Request<pb::ViewerRef>,
    ) -> Result<Response<pb::Dealer>, Status> {
        self.call("RevokeDealer", req, audience::revoke_dealer)
            .await
    }

    async fn list_dealers(
        &self,
        req: Request<pb::RoomRef>,
    ) -> Result<Response<pb::ListDealersResponse>, Status> {
        self.call("ListDealers", req, audience::list_dealers).await
    }

    async fn list_dealer_applications(
        &self,
        req: Request<pb::ListDealerApplicationsRequest>,
    ) -> Result<Response<pb::ListDealerApplicationsResponse>, Status> {
        self.call(
            "ListDealerApplications",
            req,
            audience::list_dealer_applications,
        )
        .await
    }

    async fn approve_dealer_application(
        &self,
        req: Request<pb::ApproveDealerApplicationRequest>,
    ) -> Result<Response<pb::DealerApplication>, Status> {
        self.call(
            "ApproveDealerApplication",
            req,
            audience::approve_dealer_application,
        )
        .await
    }

    async fn reject_dealer_application(
        &self,
        req: Request<pb::RejectDealerApplicationRequest>,
    ) -> Result<Response<pb::DealerApplication>, Status> {
        self.call(
            "RejectDealerApplication",
            req,
            audience::reject_dealer_application,
        )
        .await
    }

    async fn mute_viewer(
        &self,
        req: Request<pb::MuteViewerRequest>,
    ) -> Result<Response<pb::Empty>, Status> {
        self.call("MuteViewer", req, audience::mute_viewer).await
    }

    async fn kick_viewer(
        &self,
        req: Request<pb::KickViewerRequest>,
    ) -> Result<Response<pb::Empty>, Status> {
        self.call("KickViewer", req, audience::kick_viewer).await
    }

    async fn revoke_token(
        &self,
        req: Request<pb::RevokeTokenRequest>,
    ) -> Result<Response<pb::Empty>, Status> {
        self.call("RevokeToken", req, audience::revoke_token).await
    }

    async fn delete_message(
        &self,
        req: Request<pb::DeleteMessageRequest>,
    ) -> Result<Response<pb::Empty>, Status> {
        self.call("DeleteMessage", req, audience::delete_message)
            .await
    }

    async fn list_orders(
        &self,
        req: Request<pb::ListOrdersRequest>,
    ) -> Result<Response<pb::ListOrdersResponse>, Status> {
        self.call("ListOrders", req, commerce::list_orders).await
    }

    async fn get_order(&self, req: Request<pb::OrderRef>) -> Result<Response<pb::Order>, Status> {
        self.call("GetOrder", req, commerce::get_order).await
    }

    async fn update_order_status(
        &self,
        req: Request<pb::UpdateOrderStatusRequest>,
    ) -> Result<Response<pb::Order>, Status> {
        self.call("UpdateOrderStatus", req, commerce::update_order_status)
            .await
    }

    async fn create_flash_sale(
        &self,
        req: Request<pb::CreateFlashSaleRequest>,
    ) -> Result<Response<pb::FlashSale>, Status> {
        self.call("CreateFlashSale", req, commerce::create_flash_sale)
            .await
    }

    async fn get_flash_sale(
        &self,
        req: Request<pb::FlashSaleRef>,
    ) -> Result<Response<pb::FlashSale>, Status> {
        self.call("GetFlashSale", req, commerce::get_flash_sale)
            .await
    }

    async fn list_flash_sales(
        &self,
        req: Request<pb::RoomRef>,
    ) -> Result<Response<pb::ListFlashSalesResponse>, Status> {
        self.call("ListFlashSales", req, commerce::list_flash_sales)
            .await
    }

    async fn end_flash_sale(
        &self,
        req: Request<pb::FlashSaleRef>,
    ) -> Result<Response<pb::FlashSale>, Status> {
        self.call("EndFlashSale", req, commerce::end_flash_sale)
            .await
    }

    async fn create_draw(
        &self,
        req: Request<pb::CreateDrawRequest>,
    ) -> Result<Response<pb::DrawRecord>, Status> {
        self.call("CreateDraw", req, commerce::create_draw).await
    }

    async fn close_draw(
        &self,
        req: Request<pb::CloseDrawRequest>,
    ) -> Result<Response<pb::DrawRecord>, Status> {
        self.call("CloseDraw", req, commerce::close_draw).await
    }

    async fn get_draw_record(
        &self,
        req: Request<pb::DrawRef>,
    ) -> Result<Response<pb::DrawRecord>, Status> {
        self.call("GetDrawRecord", req, commerce::get_draw_record)
            .await
    }

    async fn list_draws(
        &self,
        req: Request<pb::RoomRef>,
    ) -> Result<Response<pb::ListDrawsResponse>, Status> {
        self.call("ListDraws", req, commerce::list_draws).await
    }

    async fn drop_red_packet(
        &self,
        req: Request<pb::DropRedPacketRequest>,
    ) -> Result<Response<pb::RedPacket>, Status> {
        self.call("DropRedPacket", req, commerce::drop_red_packet)
            .await
    }

    async fn get_red_packet(
        &self,
        req: Request<pb::RedPacketRef>,
    ) -> Result<Response<pb::RedPacket>, Status> {
        self.call("GetRedPacket", req, commerce::get_red_packet)
            .await
    }
}
