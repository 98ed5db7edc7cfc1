//! Registration and invitations: viewers register themselves by phone (as a room's mode
//! allows), every registrant gets a personal invite code, hosts make channel links and import
//! dealer lists (docs/registration.md).
//!
//! Registrations are not a room's in-memory state: any node takes a registration and writes
//! it to the store (`StoreOp::PutRegistration`; the phone is unique per room in the
//! database, so two nodes registering the same phone at once agree on one viewer). The room
//! itself is reached only through the routing seam, for its settings and token key
//! (`GetRoom`) and to verify imported dealers (`VerifyDealer`).

mod error;
pub mod host;
pub mod import;
pub mod input;
pub mod limits;
pub mod phone;

pub use error::RegistrationError;
pub use input::{FieldError, RegistrationInput};
pub use limits::RegistrationLimits;

use crate::auth::{self, Role, ViewerClaims};
use crate::model::*;
use crate::rooms::{Rooms, RoomsError};
use crate::store::Store;
use limits::Buckets;
use std::net::IpAddr;
use std::sync::Arc;

/// Lifetime of a token handed to a registrant (they fetch a fresh one with their personal
/// link whenever they come back).
pub const TOKEN_TTL_SECS: i64 = 86_400;

/// A token for a registrant.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IssuedToken {
    pub token: String,
    pub expires_ms: i64,
}

/// What a registration (or a status poll) came to.
#[derive(Debug, Clone)]
pub enum Outcome {
    /// Let in: a fresh token. `created` is false for a phone registered before.
    Admitted {
        registration: Registration,
        token: IssuedToken,
        created: bool,
    },
    /// Waiting for the host's approval.
    Pending {
        registration: Registration,
        created: bool,
    },
}

/// The registration service one node runs: the HTTP endpoint and the control plane use it.
pub struct Registrar {
    rooms: Arc<dyn Rooms>,
    store: Arc<dyn Store>,
    per_address: Buckets<IpAddr>,
    per_room: Buckets<String>,
    polls: Buckets<IpAddr>,
}

impl Registrar {
    pub fn new(rooms: Arc<dyn Rooms>, store: Arc<dyn Store>, limits: RegistrationLimits) -> Self {
        Registrar {
            rooms,
            store,
            per_address: Buckets::new(limits.per_address),
            per_room: Buckets::new(limits.per_room),
            polls: Buckets::new(limits.polls_per_address),
        }
    }

    /// The room's record, through the seam (its owner answers, wherever it runs).
    async fn room(&self, room: &str) -> Result<RoomRecord, RegistrationError> {
        if room.is_empty() || room.len() > 64 {
            return Err(RegistrationError::RoomNotFound(room.to_string()));
        }
        match self.rooms.host(room, HostCommand::GetRoom).await {
            Ok(HostReply::Room(s)) => Ok(s.record),
            Ok(_) => Err(RegistrationError::Internal(
                "unexpected reply from the room".into(),
            )),
            Err(RoomsError::RoomNotFound(r)) => Err(RegistrationError::RoomNotFound(r)),
            Err(RoomsError::Room(RoomError::NotFound(_))) => {
                Err(RegistrationError::RoomNotFound(room.to_string()))
            }
            Err(e) => Err(RegistrationError::Unavailable(crate::error_chain(&e))),
        }
    }

    /// What the viewer page needs to know before it shows the form (limited per address
    /// like polls: each look may load a room).
    pub async fn settings(
        &self,
        room: &str,
        from: IpAddr,
    ) -> Result<RoomRecord, RegistrationError> {
        by_address(&self.polls, from, now_ms())?;
        self.room(room).await
    }

    /// A registration from the endpoint: checks the limits, the body, the room's mode, the
    /// invite and channel, then stores it (or finds the phone's earlier one).
    pub async fn register(
        &self,
        room: &str,
        from: IpAddr,
        body: &[u8],
    ) -> Result<Outcome, RegistrationError> {
        // Before a bucket is keyed by it: a room id is short.
        if room.is_empty() || room.len() > 64 {
            return Err(RegistrationError::RoomNotFound(room.to_string()));
        }
        let now = now_ms();
        by_address(&self.per_address, from, now)?;
        if let Err(s) = self.per_room.take(&room.to_string(), now) {
            self.per_address.give_back(&from);
            return Err(RegistrationError::RateLimited {
                retry_after_secs: s,
                scope: "room",
            });
        }
        let input = input::parse(body).map_err(RegistrationError::Invalid)?;
        let record = self.room(room).await?;
        check_open(&record)?;
        let phone = phone::normalise(&input.phone, &record.phone_country)
            .map_err(|m| RegistrationError::Invalid(FieldError::new("phone", m)))?;
        if let Some(existing) = self.by(room, RegistrationKey::Phone(phone.clone())).await? {
            return self.again(&record, existing).await;
        }
        let inviter = match &input.invite {
            Some(code) => Some(self.inviter(room, code).await?),
            None if record.registration == RegistrationMode::InviteOnly => {
                return Err(RegistrationError::InviteRequired)
            }
            None => None,
        };
        if let Some(ch) = &input.channel {
            if !self
                .store
                .channels(room)
                .await?
                .iter()
                .any(|c| &c.code == ch)
            {
                return Err(RegistrationError::Invalid(FieldError::new(
                    "channel",
                    format!("channel {ch:?} is not a channel link of this room"),
                )));
            }
        }
        let status = match record.registration {
            RegistrationMode::Approval => RegistrationStatus::Pending,
            _ => RegistrationStatus::Approved,
        };
        let fresh = || Registration {
            id: format!("g{}", auth::random_id(12)),
            viewer_id: format!("v-{}", auth::random_id(12)),
            name: input.name.clone(),
            company: input.company.clone(),
            phone: phone.clone(),
            status,
            source: RegistrationSource::Form,
            invite_code: auth::random_id(8),
            secret: Secret::new(auth::random_id(24)),
            inviter_id: inviter.clone(),
            channel: input.channel.clone(),
            created_ms: now,
            decided_ms: (status == RegistrationStatus::Approved).then_some(now),
            erased_ms: None,
        };
        let (stored, created) = self.insert(room, fresh).await?;
        if !created {
            // The same phone, registered by another request at the same moment.
            return self.again(&record, stored).await;
        }
        self.outcome(&record, stored, true)
    }

    /// Stores a new registration made by `fresh`, unless its phone is registered already:
    /// the registration that stands, and whether it is the new one. A clash of random ids or
    /// codes (never seen in practice) is retried with new ones.
    async fn insert(
        &self,
        room: &str,
        fresh: impl Fn() -> Registration,
    ) -> Result<(Registration, bool), RegistrationError> {
        for _ in 0..3 {
            let reg = fresh();
            self.store
                .submit(vec![StoreOp::PutRegistration {
                    room: room.to_string(),
                    registration: Box::new(reg.clone()),
                }])
                .wait()
                .await?;
            if let Some(stored) = self
                .by(room, RegistrationKey::Phone(reg.phone.clone()))
                .await?
            {
                let created = stored.id == reg.id;
                return Ok((stored, created));
            }
        }
        Err(RegistrationError::Internal(
            "could not find a free registration id".into(),
        ))
    }

    /// A phone registered before: the same viewer, unless that viewer is a dealer (whose
    /// identity a phone number typed by anyone must not open).
    async fn again(
        &self,
        record: &RoomRecord,
        existing: Registration,
    ) -> Result<Outcome, RegistrationError> {
        if existing.source == RegistrationSource::Import
            || self.is_dealer(record, &existing).await?
        {
            return Err(RegistrationError::DealerPhone);
        }
        self.outcome(record, existing, false)
    }

    async fn is_dealer(
        &self,
        record: &RoomRecord,
        reg: &Registration,
    ) -> Result<bool, RegistrationError> {
        match self.rooms.host(&record.id, HostCommand::ListDealers).await {
            Ok(HostReply::Dealers(d)) => Ok(d
                .iter()
                .any(|d| d.viewer_id == reg.viewer_id && d.tier.is_some())),
            Ok(_) => Err(RegistrationError::Internal(
                "unexpected reply from the room".into(),
            )),
            Err(e) => Err(RegistrationError::Unavailable(crate::error_chain(&e))),
        }
    }

    fn outcome(
        &self,
        record: &RoomRecord,
        registration: Registration,
        created: bool,
    ) -> Result<Outcome, RegistrationError> {
        match registration.status {
            RegistrationStatus::Pending => Ok(Outcome::Pending {
                registration,
                created,
            }),
            RegistrationStatus::Rejected => Err(RegistrationError::Rejected),
            RegistrationStatus::Approved => Ok(Outcome::Admitted {
                token: mint(record, &registration)?,
                registration,
                created,
            }),
        }
    }

    /// The inviter's viewer id for an invite code; only an approved registrant invites.
    async fn inviter(&self, room: &str, code: &str) -> Result<String, RegistrationError> {
        match self
            .by(room, RegistrationKey::InviteCode(code.to_string()))
            .await?
        {
            Some(r) if r.status == RegistrationStatus::Approved => Ok(r.viewer_id),
            _ => Err(RegistrationError::Invalid(FieldError::new(
                "invite",
                format!("invite code {code:?} is not a valid invitation to this room"),
            ))),
        }
    }

    /// A registrant's own look at their registration (polling while pending, or opening
    /// their personal link): a fresh token once approved.
    pub async fn fetch(
        &self,
        room: &str,
        id: &str,
        secret: &str,
        from: IpAddr,
    ) -> Result<Outcome, RegistrationError> {
        by_address(&self.polls, from, now_ms())?;
        if id.is_empty() || id.len() > 64 || secret.is_empty() || secret.len() > 128 {
            return Err(RegistrationError::NotFound);
        }
        let Some(reg) = self.by(room, RegistrationKey::Id(id.to_string())).await? else {
            return Err(RegistrationError::NotFound);
        };
        if !constant_time_eq(reg.secret.expose().as_bytes(), secret.as_bytes()) {
            return Err(RegistrationError::NotFound);
        }
        let record = self.room(room).await?;
        if record.state == RoomState::Ended {
            return Err(RegistrationError::Ended);
        }
        self.outcome(&record, reg, false)
    }

    /// The one registration of `room` that `key` selects.
    async fn by(
        &self,
        room: &str,
        key: RegistrationKey,
    ) -> Result<Option<Registration>, RegistrationError> {
        Ok(self
            .store
            .registrations(room, key)
            .await?
            .into_iter()
            .next())
    }
}

/// Takes a token from an address's bucket, or says when to come back.
fn by_address(buckets: &Buckets<IpAddr>, from: IpAddr, now: i64) -> Result<(), RegistrationError> {
    buckets
        .take(&from, now)
        .map_err(|s| RegistrationError::RateLimited {
            retry_after_secs: s,
            scope: "address",
        })
}

/// A room takes registrations in its mode, before it ends.
fn check_open(record: &RoomRecord) -> Result<(), RegistrationError> {
    if !record.registration.accepts_registrations() {
        return Err(RegistrationError::Closed);
    }
    if record.state == RoomState::Ended {
        return Err(RegistrationError::Ended);
    }
    Ok(())
}

/// A viewer token for a registrant, signed with the room's key exactly as `IssueViewerToken`
/// signs one; `inv` carries the inviter, so the audience log records it.
fn mint(record: &RoomRecord, reg: &Registration) -> Result<IssuedToken, RegistrationError> {
    let now = now_ms() / 1000;
    let claims = ViewerClaims {
        room: record.id.clone(),
        sub: reg.viewer_id.clone(),
        name: reg.name.clone(),
        role: Role::Viewer,
        tier: None,
        inv: reg.inviter_id.clone(),
        iat: now,
        exp: now + TOKEN_TTL_SECS,
        jti: auth::random_id(16),
    };
    let token = auth::issue_viewer_token(record.token_key.expose(), &claims)
        .map_err(|e| RegistrationError::Internal(e.to_string()))?;
    Ok(IssuedToken {
        token,
        expires_ms: claims.exp * 1000,
    })
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// The registrant's personal link: opens the room as them, from any device.
pub fn personal_link(room: &str, reg: &Registration) -> String {
    format!("/r/{room}?pass={}.{}", reg.id, reg.secret.expose())
}

/// The link a registrant shares with the people they invite.
pub fn invite_link(room: &str, reg: &Registration) -> String {
    format!("/r/{room}?invite={}", reg.invite_code)
}
