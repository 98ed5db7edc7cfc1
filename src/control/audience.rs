//! The audience: viewer and presenter tokens, dealers and their applications, moderation.

use super::convert::*;
use super::*;
use crate::auth::{self, PresenterClaims, Role, ViewerClaims};
use crate::model::*;

pub(super) async fn issue_viewer_token(
    hub: Arc<dyn Rooms>,
    r: pb::IssueViewerTokenRequest,
) -> Result<pb::ViewerToken, Status> {
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
    let token = auth::issue_viewer_token(s.record.token_key.expose(), &claims)
        .map_err(|e| Status::internal(e.to_string()))?;
    Ok(pb::ViewerToken {
        token,
        jti: claims.jti,
        expires_ms: claims.exp * 1000,
    })
}

pub(super) async fn issue_presenter_token(
    hub: Arc<dyn Rooms>,
    r: pb::IssuePresenterTokenRequest,
) -> Result<pb::PresenterToken, Status> {
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
    let token = auth::issue_presenter_token(s.record.token_key.expose(), &claims)
        .map_err(|e| Status::internal(e.to_string()))?;
    Ok(pb::PresenterToken {
        token,
        jti: claims.jti,
        expires_ms: claims.exp * 1000,
        whip_path: format!("/whip/{}/{}", r.room_id, r.brand_id),
    })
}

pub(super) async fn verify_dealer(
    hub: Arc<dyn Rooms>,
    r: pb::VerifyDealerRequest,
) -> Result<pb::Dealer, Status> {
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
}

pub(super) async fn revoke_dealer(
    hub: Arc<dyn Rooms>,
    r: pb::ViewerRef,
) -> Result<pb::Dealer, Status> {
    need("viewer_id", &r.viewer_id)?;
    let cmd = HostCommand::RevokeDealer {
        viewer_id: r.viewer_id,
    };
    match host(&*hub, &r.room_id, cmd).await? {
        HostReply::Dealer(d) => Ok(dealer_pb(&r.room_id, &d)),
        _ => Err(unexpected()),
    }
}

pub(super) async fn list_dealers(
    hub: Arc<dyn Rooms>,
    r: pb::RoomRef,
) -> Result<pb::ListDealersResponse, Status> {
    match host(&*hub, &r.room_id, HostCommand::ListDealers).await? {
        HostReply::Dealers(ds) => Ok(pb::ListDealersResponse {
            dealers: ds.iter().map(|d| dealer_pb(&r.room_id, d)).collect(),
        }),
        _ => Err(unexpected()),
    }
}

pub(super) async fn list_dealer_applications(
    hub: Arc<dyn Rooms>,
    r: pb::ListDealerApplicationsRequest,
) -> Result<pb::ListDealerApplicationsResponse, Status> {
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
}

pub(super) async fn approve_dealer_application(
    hub: Arc<dyn Rooms>,
    r: pb::ApproveDealerApplicationRequest,
) -> Result<pb::DealerApplication, Status> {
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
}

pub(super) async fn reject_dealer_application(
    hub: Arc<dyn Rooms>,
    r: pb::RejectDealerApplicationRequest,
) -> Result<pb::DealerApplication, Status> {
    need("application_id", &r.application_id)?;
    let cmd = HostCommand::RejectApplication {
        application_id: r.application_id,
        reason: r.reason,
    };
    match host(&*hub, &r.room_id, cmd).await? {
        HostReply::Application(a) => Ok(application_pb(&r.room_id, &a)),
        _ => Err(unexpected()),
    }
}

pub(super) async fn mute_viewer(
    hub: Arc<dyn Rooms>,
    r: pb::MuteViewerRequest,
) -> Result<pb::Empty, Status> {
    let cmd = HostCommand::Mute {
        viewer_id: r.viewer_id,
        duration_seconds: r.duration_seconds,
    };
    done(host(&*hub, &r.room_id, cmd).await?)
}

pub(super) async fn kick_viewer(
    hub: Arc<dyn Rooms>,
    r: pb::KickViewerRequest,
) -> Result<pb::Empty, Status> {
    need("viewer_id", &r.viewer_id)?;
    let cmd = HostCommand::Kick {
        viewer_id: r.viewer_id,
        reason: r.reason,
    };
    done(host(&*hub, &r.room_id, cmd).await?)
}

pub(super) async fn revoke_token(
    hub: Arc<dyn Rooms>,
    r: pb::RevokeTokenRequest,
) -> Result<pb::Empty, Status> {
    need("jti", &r.jti)?;
    let cmd = HostCommand::RevokeToken {
        jti: r.jti,
        reason: r.reason,
    };
    done(host(&*hub, &r.room_id, cmd).await?)
}

pub(super) async fn delete_message(
    hub: Arc<dyn Rooms>,
    r: pb::DeleteMessageRequest,
) -> Result<pb::Empty, Status> {
    need("message_id", &r.message_id)?;
    let cmd = HostCommand::DeleteMessage {
        message_id: r.message_id,
    };
    done(host(&*hub, &r.room_id, cmd).await?)
}
