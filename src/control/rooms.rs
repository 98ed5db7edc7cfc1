//! Rooms: create, read, list, open and close them, their token key, announcements, the host console stream.

use super::convert::*;
use super::*;
use crate::auth;
use crate::model::*;

pub(super) async fn create_room(
    hub: Arc<dyn Rooms>,
    r: pb::CreateRoomRequest,
) -> Result<pb::CreateRoomResponse, Status> {
    let registration = super::registration::mode_of(r.registration, "registration")?;
    super::registration::check_phone_country(&r.phone_country)?;
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
            token_key: Secret::new(token_key.clone()),
            registration: registration.unwrap_or_default(),
            phone_country: r.phone_country,
        })
        .await
        .map_err(status_of)?;
    Ok(pb::CreateRoomResponse {
        room: Some(room_pb(&s)),
        token_key,
    })
}

pub(super) async fn get_room(
    hub: Arc<dyn Rooms>,
    r: pb::GetRoomRequest,
) -> Result<pb::Room, Status> {
    Ok(room_pb(&summary(&*hub, &r.room_id).await?))
}

pub(super) async fn list_rooms(
    hub: Arc<dyn Rooms>,
    r: pb::ListRoomsRequest,
) -> Result<pb::ListRoomsResponse, Status> {
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
}

pub(super) async fn open_room(hub: Arc<dyn Rooms>, r: pb::RoomRef) -> Result<pb::Room, Status> {
    room_reply(host(&*hub, &r.room_id, HostCommand::Open).await?)
}

pub(super) async fn close_room(hub: Arc<dyn Rooms>, r: pb::RoomRef) -> Result<pb::Room, Status> {
    room_reply(host(&*hub, &r.room_id, HostCommand::Close).await?)
}

pub(super) async fn get_room_token_key(
    hub: Arc<dyn Rooms>,
    r: pb::RoomRef,
) -> Result<pb::RoomTokenKey, Status> {
    need("room_id", &r.room_id)?;
    let key = hub.token_key(&r.room_id).await.map_err(status_of)?;
    Ok(pb::RoomTokenKey {
        room_id: r.room_id,
        key: key.expose().to_string(),
    })
}

pub(super) async fn announce(
    hub: Arc<dyn Rooms>,
    r: pb::AnnounceRequest,
) -> Result<pb::Empty, Status> {
    done(host(&*hub, &r.room_id, HostCommand::Announce { text: r.text }).await?)
}
