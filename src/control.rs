//! The gRPC control plane: a thin tonic service over the rooms seam; domain errors become `Status`
//! in one place (`status_of`).

use crate::auth::{self, HostKeys, PresenterClaims, Role, ViewerClaims};
use crate::metrics::Metrics;
use crate::model::now_ms;
use crate::model::{
    ApplicationStatus, Brand, ChatRateLimit, CommerceCommand, DealerApplication, DealerRecord,
    DrawEligibility, FlashSale, HostCommand, HostReply, NewRoom, Order, OrderFilter, OrderStatus,
    Product, ProductInput, RedPacket, RoomError, RoomState, RoomStats, RoomSummary, SalePhase,
    WatchEvent,
};
use crate::pb;
use crate::pb::control_server::Control;
use crate::rooms::{Rooms, RoomsError};
use futures_util::StreamExt;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use tokio_stream::Stream;
use tonic::{Code, Request, Response, Status};

pub struct ControlService {
    hub: Arc<dyn Rooms>,
    keys: HostKeys,
    metrics: Arc<Metrics>,
}

impl ControlService {
    pub fn new(rooms: Arc<dyn Rooms>, metrics: Arc<Metrics>, keys: HostKeys) -> ControlService {
        ControlService {
            hub: rooms,
            keys,
            metrics,
        }
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

/// The one place where domain errors become gRPC statuses.
pub fn status_of(e: RoomsError) -> Status {
    match e {
        RoomsError::Room(RoomError::InvalidArgument(m)) => Status::invalid_argument(m),
        RoomsError::Room(RoomError::NotFound(m)) => Status::not_found(m),
        RoomsError::Room(RoomError::FailedPrecondition(m)) => Status::failed_precondition(m),
        RoomsError::RoomNotFound(id) => Status::not_found(format!("room {id} not found")),
        e @ RoomsError::Unavailable(..) => Status::unavailable(e.to_string()),
        RoomsError::Store(e) => {
            tracing::error!(error = %e, source = ?std::error::Error::source(&*e), "store failure in a control call");
            Status::internal("the store failed to persist the change; it was not applied durably")
        }
    }
}

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

fn state_pb(s: RoomState) -> i32 {
    match s {
        RoomState::Scheduled => pb::RoomState::Scheduled as i32,
        RoomState::Live => pb::RoomState::Live as i32,
        RoomState::Ended => pb::RoomState::Ended as i32,
    }
}

fn room_pb(s: &RoomSummary) -> pb::Room {
    let r = &s.record;
    pb::Room {
        id: r.id.clone(),
        title: r.title.clone(),
        state: state_pb(r.state),
        scheduled_start_ms: r.scheduled_start_ms,
        chat_rate_limit: Some(pb::ChatRateLimit {
            messages: r.chat_rate_limit.messages,
            per_seconds: r.chat_rate_limit.per_seconds,
        }),
        banned_words: r.banned_words.clone(),
        history_window: r.history_window,
        tiers: r.tiers.clone(),
        currency: r.currency.clone(),
        brand_on_air: r.brand_on_air.clone().unwrap_or_default(),
        brands: s.brands.iter().map(|b| brand_pb(&r.id, b)).collect(),
        pinned_product: r.pinned_product.clone().unwrap_or_default(),
        created_ms: r.created_ms,
        opened_ms: r.opened_ms.unwrap_or(0),
        ended_ms: r.ended_ms.unwrap_or(0),
        online: s.online,
        peak_online: s.peak_online,
    }
}

fn brand_pb(room: &str, b: &Brand) -> pb::Brand {
    pb::Brand {
        id: b.id.clone(),
        room_id: room.to_string(),
        name: b.name.clone(),
        logo_url: b.logo_url.clone(),
        position: b.position,
    }
}

fn product_pb(room: &str, p: &Product) -> pb::Product {
    pb::Product {
        id: p.id.clone(),
        room_id: room.to_string(),
        brand_id: p.brand_id.clone(),
        name: p.name.clone(),
        description: p.description.clone(),
        image_urls: p.image_urls.clone(),
        link: p.link.clone(),
        min_order_quantity: p.min_order_quantity,
        prices: p
            .prices
            .iter()
            .map(|(t, c)| pb::TierPrice {
                tier: t.clone(),
                price_cents: *c,
            })
            .collect(),
    }
}

fn dealer_pb(room: &str, d: &DealerRecord) -> pb::Dealer {
    pb::Dealer {
        room_id: room.to_string(),
        viewer_id: d.viewer_id.clone(),
        tier: d.tier.clone().unwrap_or_default(),
        verified: d.tier.is_some(),
        company: d.company.clone(),
        updated_ms: d.updated_ms,
    }
}

fn app_status_pb(s: ApplicationStatus) -> i32 {
    match s {
        ApplicationStatus::Pending => pb::ApplicationStatus::Pending as i32,
        ApplicationStatus::Approved => pb::ApplicationStatus::Approved as i32,
        ApplicationStatus::Rejected => pb::ApplicationStatus::Rejected as i32,
    }
}

fn application_pb(room: &str, a: &DealerApplication) -> pb::DealerApplication {
    pb::DealerApplication {
        id: a.id.clone(),
        room_id: room.to_string(),
        viewer_id: a.viewer_id.clone(),
        display_name: a.display_name.clone(),
        company: a.company.clone(),
        licence_number: a.licence_number.clone(),
        contact: a.contact.clone(),
        status: app_status_pb(a.status),
        tier: a.tier.clone().unwrap_or_default(),
        reason: a.reason.clone().unwrap_or_default(),
        created_ms: a.created_ms,
        decided_ms: a.decided_ms.unwrap_or(0),
    }
}

fn stats_pb(s: &RoomStats) -> pb::RoomStats {
    pb::RoomStats {
        online: s.online,
        peak_online: s.peak_online,
        dealers_online: s.dealers_online,
        chat_per_minute: s.chat_per_minute,
        likes: s.likes,
        seq: s.seq,
        at_ms: s.at_ms,
    }
}

fn watch_pb(room: &str, e: WatchEvent) -> Option<pb::WatchRoomEvent> {
    use pb::watch_room_event::Event;
    let event = match e {
        WatchEvent::Chat(c) => Event::Chat(pb::ChatMessage {
            id: c.id,
            viewer_id: c.viewer_id,
            display_name: c.display_name,
            text: c.text,
            at_ms: c.at_ms,
            seq: c.seq,
            is_dealer: c.is_dealer,
        }),
        WatchEvent::Application(a) => Event::Application(application_pb(room, &a)),
        WatchEvent::Stats(s) => Event::Stats(stats_pb(&s)),
        WatchEvent::Action {
            action,
            viewer_id,
            detail,
            at_ms,
        } => Event::Action(pb::ModerationAction {
            action: action.to_string(),
            viewer_id,
            detail,
            at_ms,
        }),
        WatchEvent::Order(o) => Event::Order(order_pb(room, &o)),
        WatchEvent::Ended => return None,
    };
    Some(pb::WatchRoomEvent { event: Some(event) })
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

fn room_reply(r: HostReply) -> Result<pb::Room, Status> {
    match r {
        HostReply::Room(s) => Ok(room_pb(&s)),
        _ => Err(unexpected()),
    }
}

fn done(r: HostReply) -> Result<pb::Empty, Status> {
    match r {
        HostReply::Done => Ok(pb::Empty {}),
        _ => Err(unexpected()),
    }
}

type WatchStream = Pin<Box<dyn Stream<Item = Result<pb::WatchRoomEvent, Status>> + Send>>;

#[tonic::async_trait]
impl Control for ControlService {
    async fn create_room(
        &self,
        req: Request<pb::CreateRoomRequest>,
    ) -> Result<Response<pb::CreateRoomResponse>, Status> {
        self.call("CreateRoom", req, |hub, r| async move {
            let token_key = auth::generate_key();
            let s = hub
                .create_room(NewRoom {
                    id: format!("r{}", auth::random_id(10)),
                    title: r.title,
                    scheduled_start_ms: r.scheduled_start_ms,
                    chat_rate_limit: r.chat_rate_limit.map(|c| ChatRateLimit {
                        messages: c.messages,
                        per_seconds: c.per_seconds,
                    }),
                    banned_words: r.banned_words,
                    history_window: (r.history_window != 0).then_some(r.history_window),
                    tiers: r.tiers,
                    currency: (!r.currency.is_empty()).then_some(r.currency),
                    token_key: token_key.clone(),
                })
                .await
                .map_err(status_of)?;
            Ok(pb::CreateRoomResponse {
                room: Some(room_pb(&s)),
                token_key,
            })
        })
        .await
    }

    async fn get_room(
        &self,
        req: Request<pb::GetRoomRequest>,
    ) -> Result<Response<pb::Room>, Status> {
        self.call("GetRoom", req, |hub, r| async move {
            Ok(room_pb(&summary(&*hub, &r.room_id).await?))
        })
        .await
    }

    async fn list_rooms(
        &self,
        req: Request<pb::ListRoomsRequest>,
    ) -> Result<Response<pb::ListRoomsResponse>, Status> {
        self.call("ListRooms", req, |hub, r| async move {
            let state = match pb::RoomState::try_from(r.state) {
                Ok(pb::RoomState::Unspecified) => None,
                Ok(pb::RoomState::Scheduled) => Some(RoomState::Scheduled),
                Ok(pb::RoomState::Live) => Some(RoomState::Live),
                Ok(pb::RoomState::Ended) => Some(RoomState::Ended),
                Err(_) => {
                    return Err(Status::invalid_argument(format!(
                    "state {} is not a room state (0 = any, 1 = scheduled, 2 = live, 3 = ended)",
                    r.state
                )))
                }
            };
            let rooms = hub.list_rooms(state).await.map_err(status_of)?;
            Ok(pb::ListRoomsResponse {
                rooms: rooms.iter().map(room_pb).collect(),
            })
        })
        .await
    }

    async fn open_room(&self, req: Request<pb::RoomRef>) -> Result<Response<pb::Room>, Status> {
        self.call("OpenRoom", req, |hub, r| async move {
            room_reply(host(&*hub, &r.room_id, HostCommand::Open).await?)
        })
        .await
    }

    async fn close_room(&self, req: Request<pb::RoomRef>) -> Result<Response<pb::Room>, Status> {
        self.call("CloseRoom", req, |hub, r| async move {
            room_reply(host(&*hub, &r.room_id, HostCommand::Close).await?)
        })
        .await
    }

    async fn get_room_token_key(
        &self,
        req: Request<pb::RoomRef>,
    ) -> Result<Response<pb::RoomTokenKey>, Status> {
        self.call("GetRoomTokenKey", req, |hub, r| async move {
            need("room_id", &r.room_id)?;
            let key = hub.token_key(&r.room_id).await.map_err(status_of)?;
            Ok(pb::RoomTokenKey {
                room_id: r.room_id,
                key: key.to_string(),
            })
        })
        .await
    }

    async fn add_brand(
        &self,
        req: Request<pb::AddBrandRequest>,
    ) -> Result<Response<pb::Brand>, Status> {
        self.call("AddBrand", req, |hub, r| async move {
            let cmd = HostCommand::AddBrand {
                name: r.name,
                logo_url: r.logo_url,
                position: r.position,
            };
            match host(&*hub, &r.room_id, cmd).await? {
                HostReply::Brand(b) => Ok(brand_pb(&r.room_id, &b)),
                _ => Err(unexpected()),
            }
        })
        .await
    }

    async fn update_brand(
        &self,
        req: Request<pb::UpdateBrandRequest>,
    ) -> Result<Response<pb::Brand>, Status> {
        self.call("UpdateBrand", req, |hub, r| async move {
            need("brand_id", &r.brand_id)?;
            let cmd = HostCommand::UpdateBrand {
                brand_id: r.brand_id,
                name: r.name,
                logo_url: r.logo_url,
                position: r.position,
            };
            match host(&*hub, &r.room_id, cmd).await? {
                HostReply::Brand(b) => Ok(brand_pb(&r.room_id, &b)),
                _ => Err(unexpected()),
            }
        })
        .await
    }

    async fn remove_brand(
        &self,
        req: Request<pb::BrandRef>,
    ) -> Result<Response<pb::Empty>, Status> {
        self.call("RemoveBrand", req, |hub, r| async move {
            need("brand_id", &r.brand_id)?;
            done(
                host(
                    &*hub,
                    &r.room_id,
                    HostCommand::RemoveBrand {
                        brand_id: r.brand_id,
                    },
                )
                .await?,
            )
        })
        .await
    }

    async fn switch_brand(&self, req: Request<pb::BrandRef>) -> Result<Response<pb::Room>, Status> {
        self.call("SwitchBrand", req, |hub, r| async move {
            need("brand_id", &r.brand_id)?;
            room_reply(
                host(
                    &*hub,
                    &r.room_id,
                    HostCommand::SwitchBrand {
                        brand_id: r.brand_id,
                    },
                )
                .await?,
            )
        })
        .await
    }

    async fn upsert_product(
        &self,
        req: Request<pb::UpsertProductRequest>,
    ) -> Result<Response<pb::Product>, Status> {
        self.call("UpsertProduct", req, |hub, r| async move {
            need("brand_id", &r.brand_id)?;
            let cmd = HostCommand::UpsertProduct(ProductInput {
                product_id: (!r.product_id.is_empty()).then_some(r.product_id),
                brand_id: r.brand_id,
                name: r.name,
                description: r.description,
                image_urls: r.image_urls,
                link: r.link,
                min_order_quantity: r.min_order_quantity,
                prices: r
                    .prices
                    .into_iter()
                    .map(|p| (p.tier, p.price_cents))
                    .collect(),
            });
            match host(&*hub, &r.room_id, cmd).await? {
                HostReply::Product(p) => Ok(product_pb(&r.room_id, &p)),
                _ => Err(unexpected()),
            }
        })
        .await
    }

    async fn remove_product(
        &self,
        req: Request<pb::ProductRef>,
    ) -> Result<Response<pb::Empty>, Status> {
        self.call("RemoveProduct", req, |hub, r| async move {
            need("product_id", &r.product_id)?;
            done(
                host(
                    &*hub,
                    &r.room_id,
                    HostCommand::RemoveProduct {
                        product_id: r.product_id,
                    },
                )
                .await?,
            )
        })
        .await
    }

    async fn list_products(
        &self,
        req: Request<pb::ListProductsRequest>,
    ) -> Result<Response<pb::ListProductsResponse>, Status> {
        self.call("ListProducts", req, |hub, r| async move {
            let cmd = HostCommand::ListProducts {
                brand_id: (!r.brand_id.is_empty()).then_some(r.brand_id),
            };
            match host(&*hub, &r.room_id, cmd).await? {
                HostReply::Products(ps) => Ok(pb::ListProductsResponse {
                    products: ps.iter().map(|p| product_pb(&r.room_id, p)).collect(),
                }),
                _ => Err(unexpected()),
            }
        })
        .await
    }

    async fn pin_product(
        &self,
        req: Request<pb::ProductRef>,
    ) -> Result<Response<pb::Empty>, Status> {
        self.call("PinProduct", req, |hub, r| async move {
            need("product_id", &r.product_id)?;
            done(
                host(
                    &*hub,
                    &r.room_id,
                    HostCommand::PinProduct {
                        product_id: r.product_id,
                    },
                )
                .await?,
            )
        })
        .await
    }

    async fn unpin_product(
        &self,
        req: Request<pb::RoomRef>,
    ) -> Result<Response<pb::Empty>, Status> {
        self.call("UnpinProduct", req, |hub, r| async move {
            done(host(&*hub, &r.room_id, HostCommand::UnpinProduct).await?)
        })
        .await
    }

    async fn issue_viewer_token(
        &self,
        req: Request<pb::IssueViewerTokenRequest>,
    ) -> Result<Response<pb::ViewerToken>, Status> {
        self.call("IssueViewerToken", req, |hub, r| async move {
            auth::check_viewer_id(&r.viewer_id).map_err(Status::invalid_argument)?;
            if !r.inviter_id.is_empty() {
                auth::check_viewer_id(&r.inviter_id)
                    .map_err(|m| Status::invalid_argument(format!("inviter_id: {m}")))?;
            }
            let name = r.display_name.trim();
            if name.chars().count() > 64 || name.chars().any(char::is_control) {
                return Err(Status::invalid_argument(
                    "display_name must be at most 64 characters, without control characters",
                ));
            }
            let ttl = token_ttl(r.ttl_seconds)?;
            let s = unended_room(&*hub, &r.room_id).await?;
            let now = now_ms() / 1000;
            let claims = ViewerClaims {
                room: r.room_id.clone(),
                sub: r.viewer_id,
                name: name.to_string(),
                role: Role::Viewer,
                tier: None,
                inv: (!r.inviter_id.is_empty()).then_some(r.inviter_id),
                iat: now,
                exp: now + ttl as i64,
                jti: auth::random_id(16),
            };
            let token = auth::issue_viewer_token(&s.record.token_key, &claims)
                .map_err(|e| Status::internal(e.to_string()))?;
            Ok(pb::ViewerToken {
                token,
                jti: claims.jti,
                expires_ms: claims.exp * 1000,
            })
        })
        .await
    }

    async fn issue_presenter_token(
        &self,
        req: Request<pb::IssuePresenterTokenRequest>,
    ) -> Result<Response<pb::PresenterToken>, Status> {
        self.call("IssuePresenterToken", req, |hub, r| async move {
            need("brand_id", &r.brand_id)?;
            let presenter = if r.presenter_id.is_empty() {
                format!("presenter-{}", r.brand_id)
            } else {
                r.presenter_id.clone()
            };
            auth::check_viewer_id(&presenter)
                .map_err(|m| Status::invalid_argument(format!("presenter_id: {m}")))?;
            let ttl = token_ttl(r.ttl_seconds)?;
            let s = unended_room(&*hub, &r.room_id).await?;
            if !s.brands.iter().any(|b| b.id == r.brand_id) {
                return Err(Status::not_found(format!(
                    "brand {} not found in room {}",
                    r.brand_id, r.room_id
                )));
            }
            let now = now_ms() / 1000;
            let claims = PresenterClaims {
                room: r.room_id.clone(),
                brand: r.brand_id.clone(),
                sub: presenter,
                name: String::new(),
                role: Role::Presenter,
                iat: now,
                exp: now + ttl as i64,
                jti: auth::random_id(16),
            };
            let token = auth::issue_presenter_token(&s.record.token_key, &claims)
                .map_err(|e| Status::internal(e.to_string()))?;
            Ok(pb::PresenterToken {
                token,
                jti: claims.jti,
                expires_ms: claims.exp * 1000,
                whip_path: format!("/whip/{}/{}", r.room_id, r.brand_id),
            })
        })
        .await
    }

    async fn verify_dealer(
        &self,
        req: Request<pb::VerifyDealerRequest>,
    ) -> Result<Response<pb::Dealer>, Status> {
        self.call("VerifyDealer", req, |hub, r| async move {
            need("tier", &r.tier)?;
            let cmd = HostCommand::VerifyDealer {
                viewer_id: r.viewer_id,
                tier: r.tier,
                company: r.company,
            };
            match host(&*hub, &r.room_id, cmd).await? {
                HostReply::Dealer(d) => Ok(dealer_pb(&r.room_id, &d)),
                _ => Err(unexpected()),
            }
        })
        .await
    }

    async fn revoke_dealer(
        &self,
        req: Request<pb::ViewerRef>,
    ) -> Result<Response<pb::Dealer>, Status> {
        self.call("RevokeDealer", req, |hub, r| async move {
            need("viewer_id", &r.viewer_id)?;
            let cmd = HostCommand::RevokeDealer {
                viewer_id: r.viewer_id,
            };
            match host(&*hub, &r.room_id, cmd).await? {
                HostReply::Dealer(d) => Ok(dealer_pb(&r.room_id, &d)),
                _ => Err(unexpected()),
            }
        })
        .await
    }

    async fn list_dealers(
        &self,
        req: Request<pb::RoomRef>,
    ) -> Result<Response<pb::ListDealersResponse>, Status> {
        self.call("ListDealers", req, |hub, r| async move {
            match host(&*hub, &r.room_id, HostCommand::ListDealers).await? {
                HostReply::Dealers(ds) => Ok(pb::ListDealersResponse {
                    dealers: ds.iter().map(|d| dealer_pb(&r.room_id, d)).collect(),
                }),
                _ => Err(unexpected()),
            }
        })
        .await
    }

    async fn list_dealer_applications(
        &self,
        req: Request<pb::ListDealerApplicationsRequest>,
    ) -> Result<Response<pb::ListDealerApplicationsResponse>, Status> {
        self.call("ListDealerApplications", req, |hub, r| async move {
            let status = match pb::ApplicationStatus::try_from(r.status) {
                Ok(pb::ApplicationStatus::Unspecified) => None,
                Ok(pb::ApplicationStatus::Pending) => Some(ApplicationStatus::Pending),
                Ok(pb::ApplicationStatus::Approved) => Some(ApplicationStatus::Approved),
                Ok(pb::ApplicationStatus::Rejected) => Some(ApplicationStatus::Rejected),
                Err(_) => {
                    return Err(Status::invalid_argument(format!(
                        "unknown application status {}",
                        r.status
                    )))
                }
            };
            match host(&*hub, &r.room_id, HostCommand::ListApplications { status }).await? {
                HostReply::Applications(a) => Ok(pb::ListDealerApplicationsResponse {
                    applications: a.iter().map(|a| application_pb(&r.room_id, a)).collect(),
                }),
                _ => Err(unexpected()),
            }
        })
        .await
    }

    async fn approve_dealer_application(
        &self,
        req: Request<pb::ApproveDealerApplicationRequest>,
    ) -> Result<Response<pb::DealerApplication>, Status> {
        self.call("ApproveDealerApplication", req, |hub, r| async move {
            need("application_id", &r.application_id)?;
            need("tier", &r.tier)?;
            let cmd = HostCommand::ApproveApplication {
                application_id: r.application_id,
                tier: r.tier,
            };
            match host(&*hub, &r.room_id, cmd).await? {
                HostReply::Application(a) => Ok(application_pb(&r.room_id, &a)),
                _ => Err(unexpected()),
            }
        })
        .await
    }

    async fn reject_dealer_application(
        &self,
        req: Request<pb::RejectDealerApplicationRequest>,
    ) -> Result<Response<pb::DealerApplication>, Status> {
        self.call("RejectDealerApplication", req, |hub, r| async move {
            need("application_id", &r.application_id)?;
            let cmd = HostCommand::RejectApplication {
                application_id: r.application_id,
                reason: r.reason,
            };
            match host(&*hub, &r.room_id, cmd).await? {
                HostReply::Application(a) => Ok(application_pb(&r.room_id, &a)),
                _ => Err(unexpected()),
            }
        })
        .await
    }

    async fn mute_viewer(
        &self,
        req: Request<pb::MuteViewerRequest>,
    ) -> Result<Response<pb::Empty>, Status> {
        self.call("MuteViewer", req, |hub, r| async move {
            let cmd = HostCommand::Mute {
                viewer_id: r.viewer_id,
                duration_seconds: r.duration_seconds,
            };
            done(host(&*hub, &r.room_id, cmd).await?)
        })
        .await
    }

    async fn kick_viewer(
        &self,
        req: Request<pb::KickViewerRequest>,
    ) -> Result<Response<pb::Empty>, Status> {
        self.call("KickViewer", req, |hub, r| async move {
            need("viewer_id", &r.viewer_id)?;
            let cmd = HostCommand::Kick {
                viewer_id: r.viewer_id,
                reason: r.reason,
            };
            done(host(&*hub, &r.room_id, cmd).await?)
        })
        .await
    }

    async fn revoke_token(
        &self,
        req: Request<pb::RevokeTokenRequest>,
    ) -> Result<Response<pb::Empty>, Status> {
        self.call("RevokeToken", req, |hub, r| async move {
            need("jti", &r.jti)?;
            let cmd = HostCommand::RevokeToken {
                jti: r.jti,
                reason: r.reason,
            };
            done(host(&*hub, &r.room_id, cmd).await?)
        })
        .await
    }

    async fn delete_message(
        &self,
        req: Request<pb::DeleteMessageRequest>,
    ) -> Result<Response<pb::Empty>, Status> {
        self.call("DeleteMessage", req, |hub, r| async move {
            need("message_id", &r.message_id)?;
            let cmd = HostCommand::DeleteMessage {
                message_id: r.message_id,
            };
            done(host(&*hub, &r.room_id, cmd).await?)
        })
        .await
    }

    async fn announce(
        &self,
        req: Request<pb::AnnounceRequest>,
    ) -> Result<Response<pb::Empty>, Status> {
        self.call("Announce", req, |hub, r| async move {
            done(host(&*hub, &r.room_id, HostCommand::Announce { text: r.text }).await?)
        })
        .await
    }

    type WatchRoomStream = WatchStream;

    async fn watch_room(
        &self,
        req: Request<pb::RoomRef>,
    ) -> Result<Response<Self::WatchRoomStream>, Status> {
        self.call("WatchRoom", req, |hub, r| async move {
            need("room_id", &r.room_id)?;
            let events = hub.watch(&r.room_id).await.map_err(status_of)?;
            let room = r.room_id;
            let stream: WatchStream = Box::pin(
                events.filter_map(move |ev| std::future::ready(watch_pb(&room, ev).map(Ok))),
            );
            Ok(stream)
        })
        .await
    }

    async fn list_orders(
        &self,
        req: Request<pb::ListOrdersRequest>,
    ) -> Result<Response<pb::ListOrdersResponse>, Status> {
        self.call("ListOrders", req, |hub, r| async move {
            let status = match r.status {
                0 => None,
                s => Some(order_status_of(s)?),
            };
            let opt = |s: String| (!s.is_empty()).then_some(s);
            let f = OrderFilter {
                brand_id: opt(r.brand_id),
                product_id: opt(r.product_id),
                viewer_id: opt(r.viewer_id),
                sale_id: opt(r.sale_id),
                status,
                since_ms: (r.since_ms != 0).then_some(r.since_ms),
                until_ms: (r.until_ms != 0).then_some(r.until_ms),
                limit: (r.limit != 0).then_some(r.limit),
                before_order_id: opt(r.before_order_id),
            };
            let cmd = HostCommand::Commerce(CommerceCommand::ListOrders(f));
            match host(&*hub, &r.room_id, cmd).await? {
                HostReply::Orders(p) => Ok(pb::ListOrdersResponse {
                    orders: p.orders.iter().map(|o| order_pb(&r.room_id, o)).collect(),
                    total_count: p.total_count,
                    total_cents: p.total_cents,
                }),
                _ => Err(unexpected()),
            }
        })
        .await
    }

    async fn get_order(&self, req: Request<pb::OrderRef>) -> Result<Response<pb::Order>, Status> {
        self.call("GetOrder", req, |hub, r| async move {
            need("order_id", &r.order_id)?;
            let cmd = HostCommand::Commerce(CommerceCommand::GetOrder {
                order_id: r.order_id,
            });
            order_reply(&r.room_id, host(&*hub, &r.room_id, cmd).await?)
        })
        .await
    }

    async fn update_order_status(
        &self,
        req: Request<pb::UpdateOrderStatusRequest>,
    ) -> Result<Response<pb::Order>, Status> {
        self.call("UpdateOrderStatus", req, |hub, r| async move {
            need("order_id", &r.order_id)?;
            let cmd = HostCommand::Commerce(CommerceCommand::UpdateOrderStatus {
                order_id: r.order_id,
                status: order_status_of(r.status)?,
                reason: r.reason,
            });
            order_reply(&r.room_id, host(&*hub, &r.room_id, cmd).await?)
        })
        .await
    }

    async fn create_flash_sale(
        &self,
        req: Request<pb::CreateFlashSaleRequest>,
    ) -> Result<Response<pb::FlashSale>, Status> {
        self.call("CreateFlashSale", req, |hub, r| async move {
            need("product_id", &r.product_id)?;
            if r.start_ms < 0 {
                return Err(Status::invalid_argument("start_ms must not be negative"));
            }
            let cmd = HostCommand::Commerce(CommerceCommand::CreateFlashSale {
                product_id: r.product_id,
                stock: r.stock,
                per_dealer_limit: r.per_dealer_limit,
                prices: r
                    .prices
                    .into_iter()
                    .map(|p| (p.tier, p.price_cents))
                    .collect(),
                start_ms: (r.start_ms != 0).then_some(r.start_ms),
                duration_seconds: r.duration_seconds,
                tiers: r.tiers,
            });
            sale_reply(&r.room_id, host(&*hub, &r.room_id, cmd).await?)
        })
        .await
    }

    async fn get_flash_sale(
        &self,
        req: Request<pb::FlashSaleRef>,
    ) -> Result<Response<pb::FlashSale>, Status> {
        self.call("GetFlashSale", req, |hub, r| async move {
            need("sale_id", &r.sale_id)?;
            let cmd = HostCommand::Commerce(CommerceCommand::GetFlashSale { sale_id: r.sale_id });
            sale_reply(&r.room_id, host(&*hub, &r.room_id, cmd).await?)
        })
        .await
    }

    async fn list_flash_sales(
        &self,
        req: Request<pb::RoomRef>,
    ) -> Result<Response<pb::ListFlashSalesResponse>, Status> {
        self.call("ListFlashSales", req, |hub, r| async move {
            let cmd = HostCommand::Commerce(CommerceCommand::ListFlashSales);
            match host(&*hub, &r.room_id, cmd).await? {
                HostReply::Sales(v) => {
                    let now = now_ms();
                    Ok(pb::ListFlashSalesResponse {
                        sales: v.iter().map(|s| sale_pb(&r.room_id, s, now)).collect(),
                    })
                }
                _ => Err(unexpected()),
            }
        })
        .await
    }

    async fn end_flash_sale(
        &self,
        req: Request<pb::FlashSaleRef>,
    ) -> Result<Response<pb::FlashSale>, Status> {
        self.call("EndFlashSale", req, |hub, r| async move {
            need("sale_id", &r.sale_id)?;
            let cmd = HostCommand::Commerce(CommerceCommand::EndFlashSale { sale_id: r.sale_id });
            sale_reply(&r.room_id, host(&*hub, &r.room_id, cmd).await?)
        })
        .await
    }

    async fn create_draw(
        &self,
        req: Request<pb::CreateDrawRequest>,
    ) -> Result<Response<pb::DrawRecord>, Status> {
        self.call("CreateDraw", req, |hub, r| async move {
            let cmd = HostCommand::Commerce(CommerceCommand::CreateDraw {
                prize: r.prize,
                winners: r.winners,
                eligibility: eligibility_of(r.eligibility)?,
                entry_seconds: r.entry_seconds,
                beacon_source: r.beacon_source,
            });
            draw_reply(host(&*hub, &r.room_id, cmd).await?)
        })
        .await
    }

    async fn close_draw(
        &self,
        req: Request<pb::CloseDrawRequest>,
    ) -> Result<Response<pb::DrawRecord>, Status> {
        self.call("CloseDraw", req, |hub, r| async move {
            need("draw_id", &r.draw_id)?;
            let cmd = HostCommand::Commerce(CommerceCommand::CloseDraw {
                draw_id: r.draw_id,
                beacon: r.beacon,
            });
            draw_reply(host(&*hub, &r.room_id, cmd).await?)
        })
        .await
    }

    async fn get_draw_record(
        &self,
        req: Request<pb::DrawRef>,
    ) -> Result<Response<pb::DrawRecord>, Status> {
        self.call("GetDrawRecord", req, |hub, r| async move {
            need("draw_id", &r.draw_id)?;
            let cmd = HostCommand::Commerce(CommerceCommand::GetDrawRecord { draw_id: r.draw_id });
            draw_reply(host(&*hub, &r.room_id, cmd).await?)
        })
        .await
    }

    async fn list_draws(
        &self,
        req: Request<pb::RoomRef>,
    ) -> Result<Response<pb::ListDrawsResponse>, Status> {
        self.call("ListDraws", req, |hub, r| async move {
            let cmd = HostCommand::Commerce(CommerceCommand::ListDraws);
            match host(&*hub, &r.room_id, cmd).await? {
                HostReply::Draws(v) => Ok(pb::ListDrawsResponse {
                    draws: v.iter().map(draw_pb).collect(),
                }),
                _ => Err(unexpected()),
            }
        })
        .await
    }

    async fn drop_red_packet(
        &self,
        req: Request<pb::DropRedPacketRequest>,
    ) -> Result<Response<pb::RedPacket>, Status> {
        self.call("DropRedPacket", req, |hub, r| async move {
            let cmd = HostCommand::Commerce(CommerceCommand::DropRedPacket {
                total_cents: r.total_cents,
                count: r.count,
                tiers: r.tiers,
                message: r.message,
                duration_seconds: (r.duration_seconds != 0).then_some(r.duration_seconds),
            });
            packet_reply(&*hub, &r.room_id, host(&*hub, &r.room_id, cmd).await?).await
        })
        .await
    }

    async fn get_red_packet(
        &self,
        req: Request<pb::RedPacketRef>,
    ) -> Result<Response<pb::RedPacket>, Status> {
        self.call("GetRedPacket", req, |hub, r| async move {
            need("packet_id", &r.packet_id)?;
            let cmd = HostCommand::Commerce(CommerceCommand::GetRedPacket {
                packet_id: r.packet_id,
            });
            packet_reply(&*hub, &r.room_id, host(&*hub, &r.room_id, cmd).await?).await
        })
        .await
    }
}

// ------------------------------------------------------------------------------ commerce

fn order_status_pb(s: OrderStatus) -> i32 {
    match s {
        OrderStatus::Placed => pb::OrderStatus::Placed as i32,
        OrderStatus::Confirmed => pb::OrderStatus::Confirmed as i32,
        OrderStatus::Shipped => pb::OrderStatus::Shipped as i32,
        OrderStatus::Cancelled => pb::OrderStatus::Cancelled as i32,
    }
}

fn order_status_of(v: i32) -> Result<OrderStatus, Status> {
    match pb::OrderStatus::try_from(v) {
        Ok(pb::OrderStatus::Placed) => Ok(OrderStatus::Placed),
        Ok(pb::OrderStatus::Confirmed) => Ok(OrderStatus::Confirmed),
        Ok(pb::OrderStatus::Shipped) => Ok(OrderStatus::Shipped),
        Ok(pb::OrderStatus::Cancelled) => Ok(OrderStatus::Cancelled),
        _ => Err(Status::invalid_argument(format!(
            "status {v} is not an order status (PLACED, CONFIRMED, SHIPPED or CANCELLED)"
        ))),
    }
}

fn order_pb(room: &str, o: &Order) -> pb::Order {
    pb::Order {
        id: o.id.clone(),
        room_id: room.to_string(),
        viewer_id: o.viewer_id.clone(),
        display_name: o.display_name.clone(),
        tier: o.tier.clone(),
        brand_id: o.brand_id.clone(),
        product_id: o.product_id.clone(),
        product_name: o.product_name.clone(),
        quantity: o.quantity,
        unit_price_cents: o.unit_price_cents,
        total_cents: o.total_cents,
        currency: o.currency.clone(),
        status: order_status_pb(o.status),
        status_reason: o.status_reason.clone().unwrap_or_default(),
        sale_id: o.sale_id.clone().unwrap_or_default(),
        inviter_id: o.inviter_id.clone().unwrap_or_default(),
        idempotency_key: o.idempotency_key.clone(),
        created_ms: o.created_ms,
        updated_ms: o.updated_ms,
    }
}

fn order_reply(room: &str, r: HostReply) -> Result<pb::Order, Status> {
    match r {
        HostReply::Order(o) => Ok(order_pb(room, &o)),
        _ => Err(unexpected()),
    }
}

fn sale_pb(room: &str, s: &FlashSale, now: i64) -> pb::FlashSale {
    pb::FlashSale {
        id: s.id.clone(),
        room_id: room.to_string(),
        product_id: s.product_id.clone(),
        brand_id: s.brand_id.clone(),
        stock: s.stock,
        remaining: s.remaining,
        per_dealer_limit: s.per_dealer_limit,
        prices: s
            .prices
            .iter()
            .map(|(t, c)| pb::TierPrice {
                tier: t.clone(),
                price_cents: *c,
            })
            .collect(),
        start_ms: s.start_ms,
        end_ms: s.end_ms,
        phase: match s.phase(now) {
            SalePhase::Scheduled => pb::SalePhase::Scheduled as i32,
            SalePhase::Live => pb::SalePhase::Live as i32,
            SalePhase::SoldOut => pb::SalePhase::SoldOut as i32,
            SalePhase::Ended => pb::SalePhase::Ended as i32,
        },
        granted: s.stock - s.remaining,
        created_ms: s.created_ms,
        ended_ms: s.ended_ms.unwrap_or(0),
    }
}

fn sale_reply(room: &str, r: HostReply) -> Result<pb::FlashSale, Status> {
    match r {
        HostReply::Sale(s) => Ok(sale_pb(room, &s, now_ms())),
        _ => Err(unexpected()),
    }
}

fn eligibility_of(e: Option<pb::DrawEligibility>) -> Result<DrawEligibility, Status> {
    use pb::draw_eligibility::Rule;
    Ok(match e.and_then(|e| e.rule) {
        None | Some(Rule::Everyone(_)) => DrawEligibility::Everyone,
        Some(Rule::Dealers(_)) => DrawEligibility::Dealers,
        Some(Rule::Tiers(t)) => DrawEligibility::Tiers { tiers: t.tiers },
        Some(Rule::Keyword(keyword)) => DrawEligibility::Keyword { keyword },
        Some(Rule::WatchedMinutes(minutes)) => DrawEligibility::WatchedMinutes { minutes },
    })
}

fn eligibility_pb(e: &serde_json::Value) -> Option<pb::DrawEligibility> {
    use pb::draw_eligibility::Rule;
    let e: DrawEligibility = serde_json::from_value(e.clone()).ok()?;
    let rule = match e {
        DrawEligibility::Everyone => Rule::Everyone(pb::Empty {}),
        DrawEligibility::Dealers => Rule::Dealers(pb::Empty {}),
        DrawEligibility::Tiers { tiers } => Rule::Tiers(pb::TierList { tiers }),
        DrawEligibility::Keyword { keyword } => Rule::Keyword(keyword),
        DrawEligibility::WatchedMinutes { minutes } => Rule::WatchedMinutes(minutes),
    };
    Some(pb::DrawEligibility { rule: Some(rule) })
}

fn draw_pb(d: &crate::model::DrawRecord) -> pb::DrawRecord {
    pb::DrawRecord {
        room_id: d.room_id.clone(),
        draw_id: d.draw_id.clone(),
        prize: d.prize.clone(),
        winners_count: d.winners_count,
        eligibility: eligibility_pb(&d.eligibility),
        opened_ms: d.opened_ms,
        closes_ms: d.closes_ms,
        closed_ms: d.closed_ms.unwrap_or(0),
        commitment: d.commitment.clone(),
        seed: d.seed.clone().unwrap_or_default(),
        entrants: d.entrants.clone(),
        entrant_count: d.entrants.len() as u32,
        entrants_hash: d.entrants_hash.clone().unwrap_or_default(),
        beacon: d.beacon.clone(),
        beacon_source: d.beacon_source.clone(),
        drawn_ms: d.drawn_ms.unwrap_or(0),
        winners: d.winners.clone(),
        algorithm: d.algorithm.clone(),
        record_json: serde_json::to_string_pretty(d).unwrap_or_default(),
    }
}

fn draw_reply(r: HostReply) -> Result<pb::DrawRecord, Status> {
    match r {
        HostReply::Draw(d) => Ok(draw_pb(&d)),
        _ => Err(unexpected()),
    }
}

async fn packet_reply(hub: &dyn Rooms, room: &str, r: HostReply) -> Result<pb::RedPacket, Status> {
    let p: Box<RedPacket> = match r {
        HostReply::RedPacket(p) => p,
        _ => return Err(unexpected()),
    };
    let currency = summary(hub, room).await?.record.currency;
    let grabbed: i64 = p.grabs.iter().map(|g| g.amount_cents).sum();
    Ok(pb::RedPacket {
        id: p.id.clone(),
        room_id: room.to_string(),
        total_cents: p.total_cents,
        count: p.count,
        tiers: p.tiers.clone(),
        message: p.message.clone(),
        created_ms: p.created_ms,
        expires_ms: p.expires_ms,
        grabs: p
            .grabs
            .iter()
            .map(|g| pb::RedPacketGrab {
                viewer_id: g.viewer_id.clone(),
                amount_cents: g.amount_cents,
            })
            .collect(),
        remaining_cents: p.total_cents - grabbed,
        currency,
    })
}
