//! Registration and invitations: the room's mode, registrations and their approval, channel
//! links, dealer imports (the work is `crate::registration::Registrar`'s).

use super::*;
use crate::model::*;
use crate::registration::host::ImportReport;
use crate::registration::{self, phone, Registrar, RegistrationError};

/// The one place where a registration error becomes a `Status`.
pub(super) fn status_of_registration(e: RegistrationError) -> Status {
    let m = e.to_string();
    match e {
        RegistrationError::Invalid(f) => Status::invalid_argument(f.message),
        RegistrationError::RoomNotFound(_) | RegistrationError::NotFound => Status::not_found(m),
        RegistrationError::AlreadyExists(_) => Status::already_exists(m),
        RegistrationError::Ended
        | RegistrationError::AlreadyDecided(_)
        | RegistrationError::Closed
        | RegistrationError::InviteRequired
        | RegistrationError::DealerPhone
        | RegistrationError::Rejected => Status::failed_precondition(m),
        RegistrationError::RateLimited { .. } => Status::resource_exhausted(m),
        RegistrationError::Unavailable(_) => Status::unavailable(m),
        RegistrationError::Internal(_) => Status::internal(m),
    }
}

pub(super) fn mode_of(mode: i32, field: &str) -> Result<Option<RegistrationMode>, Status> {
    match pb::RegistrationMode::try_from(mode) {
        Ok(pb::RegistrationMode::Unspecified) => Ok(None),
        Ok(pb::RegistrationMode::TokensOnly) => Ok(Some(RegistrationMode::TokensOnly)),
        Ok(pb::RegistrationMode::Open) => Ok(Some(RegistrationMode::Open)),
        Ok(pb::RegistrationMode::Approval) => Ok(Some(RegistrationMode::Approval)),
        Ok(pb::RegistrationMode::InviteOnly) => Ok(Some(RegistrationMode::InviteOnly)),
        Err(_) => Err(Status::invalid_argument(format!(
            "{field} {mode} is not a registration mode (1 tokens_only, 2 open, 3 approval, \
             4 invite_only)"
        ))),
    }
}

pub(super) fn mode_pb(mode: RegistrationMode) -> i32 {
    (match mode {
        RegistrationMode::TokensOnly => pb::RegistrationMode::TokensOnly,
        RegistrationMode::Open => pb::RegistrationMode::Open,
        RegistrationMode::Approval => pb::RegistrationMode::Approval,
        RegistrationMode::InviteOnly => pb::RegistrationMode::InviteOnly,
    }) as i32
}

fn status_pb(s: RegistrationStatus) -> i32 {
    (match s {
        RegistrationStatus::Pending => pb::RegistrationStatus::Pending,
        RegistrationStatus::Approved => pb::RegistrationStatus::Approved,
        RegistrationStatus::Rejected => pb::RegistrationStatus::Rejected,
    }) as i32
}

/// Checks a room's phone country against the phone-number metadata.
pub(super) fn check_phone_country(country: &str) -> Result<(), Status> {
    phone::check_country(country).map_err(Status::invalid_argument)
}

pub(super) fn registration_pb(room: &str, r: &Registration) -> pb::Registration {
    let has_id = !r.id.is_empty();
    pb::Registration {
        id: r.id.clone(),
        room_id: room.to_string(),
        viewer_id: r.viewer_id.clone(),
        name: r.name.clone(),
        company: r.company.clone(),
        phone: r.phone.clone(),
        status: status_pb(r.status),
        source: r.source.as_str().to_string(),
        invite_code: r.invite_code.clone(),
        inviter_id: r.inviter_id.clone().unwrap_or_default(),
        channel: r.channel.clone().unwrap_or_default(),
        created_ms: r.created_ms,
        decided_ms: r.decided_ms.unwrap_or(0),
        erased_ms: r.erased_ms.unwrap_or(0),
        personal_link: if has_id && r.erased_ms.is_none() {
            registration::personal_link(room, r)
        } else {
            String::new()
        },
        invite_link: if has_id && r.erased_ms.is_none() {
            registration::invite_link(room, r)
        } else {
            String::new()
        },
    }
}

fn channel_pb(room: &str, c: &Channel) -> pb::Channel {
    pb::Channel {
        room_id: room.to_string(),
        code: c.code.clone(),
        name: c.name.clone(),
        created_ms: c.created_ms,
        link: format!("/r/{room}?ch={}", c.code),
    }
}

pub(super) async fn set_registration(
    hub: Arc<dyn Rooms>,
    r: pb::SetRegistrationRequest,
) -> Result<pb::Room, Status> {
    let mode = mode_of(r.mode, "mode")?.ok_or_else(|| {
        Status::invalid_argument("mode is required: tokens_only, open, approval or invite_only")
    })?;
    if let Some(c) = &r.phone_country {
        check_phone_country(c)?;
    }
    let cmd = HostCommand::SetRegistration {
        mode,
        phone_country: r.phone_country,
    };
    match host(&*hub, &r.room_id, cmd).await? {
        HostReply::Room(s) => Ok(super::convert::room_pb(&s)),
        _ => Err(unexpected()),
    }
}

pub(super) async fn list_registrations(
    reg: Arc<Registrar>,
    r: pb::ListRegistrationsRequest,
) -> Result<pb::ListRegistrationsResponse, Status> {
    need("room_id", &r.room_id)?;
    let status = match pb::RegistrationStatus::try_from(r.status) {
        Ok(pb::RegistrationStatus::Unspecified) => None,
        Ok(pb::RegistrationStatus::Pending) => Some(RegistrationStatus::Pending),
        Ok(pb::RegistrationStatus::Approved) => Some(RegistrationStatus::Approved),
        Ok(pb::RegistrationStatus::Rejected) => Some(RegistrationStatus::Rejected),
        Err(_) => {
            return Err(Status::invalid_argument(format!(
                "status {} is not a registration status (0 any, 1 pending, 2 approved, 3 rejected)",
                r.status
            )))
        }
    };
    let list = reg
        .list(&r.room_id, status)
        .await
        .map_err(status_of_registration)?;
    Ok(pb::ListRegistrationsResponse {
        registrations: list
            .iter()
            .map(|x| registration_pb(&r.room_id, x))
            .collect(),
    })
}

pub(super) async fn erase_registrant(
    reg: Arc<Registrar>,
    r: pb::RegistrationRef,
) -> Result<pb::Registration, Status> {
    need("room_id", &r.room_id)?;
    need("registration_id", &r.registration_id)?;
    let erased = reg
        .erase(&r.room_id, &r.registration_id)
        .await
        .map_err(|e| match e {
            RegistrationError::NotFound => Status::not_found(format!(
                "registration {:?} not found in room {}",
                r.registration_id, r.room_id
            )),
            e => status_of_registration(e),
        })?;
    Ok(registration_pb(&r.room_id, &erased))
}

pub(super) async fn decide_registration(
    reg: Arc<Registrar>,
    r: pb::RegistrationRef,
    to: RegistrationStatus,
) -> Result<pb::Registration, Status> {
    need("room_id", &r.room_id)?;
    need("registration_id", &r.registration_id)?;
    let decided = reg
        .decide(&r.room_id, &r.registration_id, to)
        .await
        .map_err(|e| match e {
            RegistrationError::Invalid(f) => Status::not_found(f.message),
            e => status_of_registration(e),
        })?;
    Ok(registration_pb(&r.room_id, &decided))
}

pub(super) async fn create_channel(
    reg: Arc<Registrar>,
    r: pb::CreateChannelRequest,
) -> Result<pb::Channel, Status> {
    need("room_id", &r.room_id)?;
    let c = reg
        .create_channel(&r.room_id, &r.name)
        .await
        .map_err(status_of_registration)?;
    Ok(channel_pb(&r.room_id, &c))
}

pub(super) async fn list_channels(
    reg: Arc<Registrar>,
    r: pb::RoomRef,
) -> Result<pb::ListChannelsResponse, Status> {
    need("room_id", &r.room_id)?;
    let list = reg
        .channels(&r.room_id)
        .await
        .map_err(status_of_registration)?;
    Ok(pb::ListChannelsResponse {
        channels: list.iter().map(|c| channel_pb(&r.room_id, c)).collect(),
    })
}

pub(super) async fn import_dealers(
    reg: Arc<Registrar>,
    r: pb::ImportDealersRequest,
) -> Result<pb::ImportDealersResponse, Status> {
    need("room_id", &r.room_id)?;
    let ImportReport { errors, dealers } = reg
        .import_dealers(&r.room_id, &r.csv, r.dry_run)
        .await
        .map_err(status_of_registration)?;
    Ok(pb::ImportDealersResponse {
        errors: errors
            .into_iter()
            .map(|e| pb::ImportRowError {
                line: e.line,
                field: e.field,
                reason: e.reason,
            })
            .collect(),
        dealers: dealers
            .iter()
            .map(|d| pb::ImportedDealer {
                line: d.line,
                registration: Some(registration_pb(&r.room_id, &d.registration)),
                tier: d.tier.clone(),
                existing: d.existing,
            })
            .collect(),
        dry_run: r.dry_run,
    })
}
