//! What hosts do with registrations: list, approve or reject them, make channel links,
//! import dealer lists.

use super::import::{self, DealerRow, RowError};
use super::{phone, Registrar, RegistrationError};
use crate::auth;
use crate::model::*;

/// Channel links a room may have.
const MAX_CHANNELS: usize = 1000;

/// One row of an import as written (or as it would be, on a dry run).
#[derive(Debug, Clone)]
pub struct ImportedDealer {
    pub line: u32,
    pub tier: String,
    /// The registration; on a dry run a new row's has no id, code or secret yet.
    pub registration: Registration,
    /// The phone was registered before: its viewer is kept.
    pub existing: bool,
}

/// What an import came to: the bad rows (then nothing was written), or the dealers.
#[derive(Debug, Clone, Default)]
pub struct ImportReport {
    pub errors: Vec<RowError>,
    pub dealers: Vec<ImportedDealer>,
}

impl Registrar {
    /// A room's registrations, oldest first, optionally of one status.
    pub async fn list(
        &self,
        room: &str,
        status: Option<RegistrationStatus>,
    ) -> Result<Vec<Registration>, RegistrationError> {
        self.room(room).await?;
        let all = self.store.registrations(room, RegistrationKey::All).await?;
        Ok(all
            .into_iter()
            .filter(|r| status.is_none_or(|s| r.status == s))
            .collect())
    }

    /// The host approves (`Approved`) or rejects (`Rejected`) a pending registration, or
    /// rejects an approved one: revoked, it gets no more tokens, and its viewer's sessions
    /// are kicked (tokens handed out before stay valid until they expire, 24 h at most,
    /// unless kicked when in use).
    /// Erases a registrant's personal data (docs/registration.md): the registration's name,
    /// company and phone, and their name and company on the room's orders, chat, dealer
    /// record and applications; the records, counts and amounts stay. Also after the room
    /// ended. Erasing twice is the same as once.
    pub async fn erase(&self, room: &str, id: &str) -> Result<Registration, RegistrationError> {
        self.room(room).await?;
        let find = || async {
            self.by(room, RegistrationKey::Id(id.to_string()))
                .await?
                .ok_or(RegistrationError::NotFound)
        };
        let before = find().await?;
        if before.erased_ms.is_none() {
            let erase = HostCommand::EraseViewer {
                viewer_id: before.viewer_id.clone(),
            };
            self.rooms
                .host(room, erase)
                .await
                .map_err(|e| RegistrationError::Unavailable(crate::error_chain(&e)))?;
        }
        find().await
    }

    pub async fn decide(
        &self,
        room: &str,
        id: &str,
        to: RegistrationStatus,
    ) -> Result<Registration, RegistrationError> {
        let record = self.room(room).await?;
        let find = || async {
            self.by(room, RegistrationKey::Id(id.to_string()))
                .await?
                .ok_or_else(|| {
                    RegistrationError::Invalid(super::FieldError::new(
                        "registration_id",
                        format!("registration {id:?} not found in room {room}"),
                    ))
                })
        };
        let before = find().await?;
        let revoking =
            before.status == RegistrationStatus::Approved && to == RegistrationStatus::Rejected;
        if before.status == RegistrationStatus::Pending || revoking {
            if record.state == RoomState::Ended {
                return Err(RegistrationError::Ended);
            }
            self.store
                .submit(vec![StoreOp::DecideRegistration {
                    room: room.to_string(),
                    id: id.to_string(),
                    status: to,
                    at_ms: now_ms(),
                }])
                .wait()
                .await?;
        }
        let after = find().await?;
        if after.status != to {
            return Err(RegistrationError::AlreadyDecided(format!(
                "registration {id} was {} already",
                after.status.as_str()
            )));
        }
        if revoking {
            let kick = HostCommand::Kick {
                viewer_id: after.viewer_id.clone(),
                reason: "registration revoked by the organiser".into(),
            };
            match self.rooms.host(room, kick).await {
                // Not connected: nothing to end.
                Ok(_) | Err(crate::rooms::RoomsError::Room(RoomError::NotFound(_))) => {}
                Err(e) => return Err(RegistrationError::Unavailable(crate::error_chain(&e))),
            }
        }
        Ok(after)
    }

    /// A new channel link named `name`.
    pub async fn create_channel(
        &self,
        room: &str,
        name: &str,
    ) -> Result<Channel, RegistrationError> {
        let name = name.trim();
        super::input::check_text("name", name, 1, 64).map_err(RegistrationError::Invalid)?;
        let record = self.room(room).await?;
        if record.state == RoomState::Ended {
            return Err(RegistrationError::Ended);
        }
        let existing = self.store.channels(room).await?;
        if existing.iter().any(|c| c.name == name) {
            return Err(RegistrationError::AlreadyExists(format!(
                "room {room} has a channel named {name:?} already"
            )));
        }
        if existing.len() >= MAX_CHANNELS {
            return Err(RegistrationError::AlreadyExists(format!(
                "room {room} has {MAX_CHANNELS} channels, the most it may have"
            )));
        }
        let channel = Channel {
            code: auth::random_id(8),
            name: name.to_string(),
            created_ms: now_ms(),
        };
        self.store
            .submit(vec![StoreOp::PutChannel {
                room: room.to_string(),
                channel: Box::new(channel.clone()),
            }])
            .wait()
            .await?;
        // Nothing is written if the name (or the code) was taken meanwhile.
        match self
            .store
            .channels(room)
            .await?
            .into_iter()
            .find(|c| c.name == name)
        {
            Some(c) if c.code == channel.code => Ok(c),
            _ => Err(RegistrationError::AlreadyExists(format!(
                "room {room} has a channel named {name:?} already"
            ))),
        }
    }

    pub async fn channels(&self, room: &str) -> Result<Vec<Channel>, RegistrationError> {
        self.room(room).await?;
        Ok(self.store.channels(room).await?)
    }

    /// Imports a dealer list: every row checked first; with any bad row (or `dry_run`)
    /// nothing is written. Otherwise the new registrations are written in one submission
    /// (all or none), then each dealer is verified in the room at its tier.
    pub async fn import_dealers(
        &self,
        room: &str,
        csv_text: &str,
        dry_run: bool,
    ) -> Result<ImportReport, RegistrationError> {
        let record = self.room(room).await?;
        if record.state == RoomState::Ended {
            return Err(RegistrationError::Ended);
        }
        phone::check_country(&record.phone_country).map_err(RegistrationError::Internal)?;
        let (rows, errors) = import::parse_dealers(csv_text, &record.tiers, &record.phone_country);
        if !errors.is_empty() {
            return Ok(ImportReport {
                errors,
                dealers: Vec::new(),
            });
        }
        let now = now_ms();
        let mut by_phone: std::collections::HashMap<String, Registration> = self
            .store
            .registrations(room, RegistrationKey::All)
            .await?
            .into_iter()
            .map(|r| (r.phone.clone(), r))
            .collect();
        let mut dealers = Vec::with_capacity(rows.len());
        let mut writes = Vec::new();
        for row in rows {
            let (registration, existing) = match by_phone.remove(&row.phone) {
                Some(r) => (r, true),
                None => (new_dealer(&row, now, dry_run), false),
            };
            if !existing {
                writes.push(StoreOp::PutRegistration {
                    room: room.to_string(),
                    registration: Box::new(registration.clone()),
                });
            } else if registration.status == RegistrationStatus::Pending {
                // The host lists them as a dealer: that approves them.
                writes.push(StoreOp::DecideRegistration {
                    room: room.to_string(),
                    id: registration.id.clone(),
                    status: RegistrationStatus::Approved,
                    at_ms: now,
                });
            }
            dealers.push(ImportedDealer {
                line: row.line,
                tier: row.tier.clone(),
                registration,
                existing,
            });
        }
        if dry_run {
            return Ok(ImportReport { errors, dealers });
        }
        self.store.submit(writes).wait().await?;
        for d in &mut dealers {
            // What stands is what the store has (a registration made meanwhile wins).
            if let Some(r) = self
                .by(room, RegistrationKey::Phone(d.registration.phone.clone()))
                .await?
            {
                d.existing |= r.id != d.registration.id;
                d.registration = r;
            }
            let cmd = HostCommand::VerifyDealer {
                viewer_id: d.registration.viewer_id.clone(),
                tier: d.tier.clone(),
                company: d.registration.company.clone(),
            };
            self.rooms
                .host(room, cmd)
                .await
                .map_err(|e| RegistrationError::Unavailable(crate::error_chain(&e)))?;
        }
        Ok(ImportReport { errors, dealers })
    }
}

/// A registration for an imported dealer: approved, from the import. On a dry run it gets
/// no id, code or secret.
fn new_dealer(row: &DealerRow, now: i64, dry_run: bool) -> Registration {
    let random = |n: usize| {
        if dry_run {
            String::new()
        } else {
            auth::random_id(n)
        }
    };
    Registration {
        id: if dry_run {
            String::new()
        } else {
            format!("g{}", random(12))
        },
        viewer_id: if dry_run {
            String::new()
        } else {
            format!("v-{}", random(12))
        },
        name: row.name.clone(),
        company: row.company.clone(),
        phone: row.phone.clone(),
        status: RegistrationStatus::Approved,
        source: RegistrationSource::Import,
        invite_code: random(8),
        secret: Secret::new(random(24)),
        inviter_id: None,
        channel: None,
        created_ms: now,
        decided_ms: Some(now),
        erased_ms: None,
    }
}
