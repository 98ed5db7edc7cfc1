//! Registrations and channel links: unique phone, invite code and viewer per room, decisions
//! only from pending, every read by key, and all of it durable.

use super::fixtures::*;
use super::{reopen, Storage};
use crate::model::{
    Channel, Registration, RegistrationKey, RegistrationSource, RegistrationStatus, StoreOp,
};

pub fn registration(id: &str, phone: &str, code: &str) -> Registration {
    Registration {
        id: id.into(),
        viewer_id: format!("v-{id}"),
        name: format!("Name {id}"),
        company: "Acme".into(),
        phone: phone.into(),
        status: RegistrationStatus::Pending,
        source: RegistrationSource::Form,
        invite_code: code.into(),
        secret: format!("secret-{id}").into(),
        inviter_id: Some("v-g0".into()),
        channel: Some("wechat1".into()),
        created_ms: 100,
        decided_ms: None,
        erased_ms: None,
    }
}

pub fn put_registration(room: &str, reg: Registration) -> StoreOp {
    StoreOp::PutRegistration {
        room: room.into(),
        registration: Box::new(reg),
    }
}

fn decide(id: &str, status: RegistrationStatus, at_ms: i64) -> StoreOp {
    StoreOp::DecideRegistration {
        room: r("r1"),
        id: id.into(),
        status,
        at_ms,
    }
}

/// A registration reads back as written by every key, a second one with the same phone (or
/// invite code, or viewer id) writes nothing, and the same phone in another room is another
/// registration; all of it survives a reopen.
pub async fn registrations_are_unique_by_phone_code_and_viewer(storage: &dyn Storage) {
    let store = storage.open().await;
    put(&*store, vec![put_room(room("r1")), put_room(room("r2"))]).await;
    let first = registration("g1", "+8613800138000", "code1");
    let mut approved = registration("g2", "+8613900139000", "code2");
    approved.status = RegistrationStatus::Approved;
    approved.decided_ms = Some(150);
    approved.inviter_id = None;
    approved.channel = None;
    approved.source = RegistrationSource::Import;
    put(
        &*store,
        vec![
            put_registration("r1", first.clone()),
            put_registration("r1", approved.clone()),
            // Same phone, same code, same viewer as g1: each writes nothing, and fails nothing.
            put_registration("r1", registration("g3", "+8613800138000", "code3")),
            put_registration("r1", registration("g4", "+8613700137000", "code1")),
            {
                let mut same_viewer = registration("g5", "+8613600136000", "code5");
                same_viewer.viewer_id = "v-g1".into();
                put_registration("r1", same_viewer)
            },
            // Another room may have the same phone and code.
            put_registration("r2", registration("g1", "+8613800138000", "code1")),
        ],
    )
    .await;
    let store = reopen(storage, store).await;
    let all = store
        .registrations("r1", RegistrationKey::All)
        .await
        .unwrap();
    assert_eq!(all, vec![first.clone(), approved.clone()]);
    for key in [
        RegistrationKey::Id("g1".into()),
        RegistrationKey::Phone("+8613800138000".into()),
        RegistrationKey::InviteCode("code1".into()),
        RegistrationKey::ViewerId("v-g1".into()),
    ] {
        let got = store.registrations("r1", key.clone()).await.unwrap();
        assert_eq!(got, vec![first.clone()], "{key:?}");
    }
    let none = store
        .registrations("r1", RegistrationKey::Phone("+8613700137000".into()))
        .await
        .unwrap();
    assert!(none.is_empty());
    assert_eq!(
        store
            .registrations("r2", RegistrationKey::All)
            .await
            .unwrap()
            .len(),
        1
    );
    // Registrations are not part of a loaded room.
    assert!(store.load_room("r1").await.unwrap().is_some());
}

/// A pending registration is approved or rejected; an approved one may still be rejected
/// (revoked); a rejected one stays rejected.
pub async fn a_registration_is_decided_once_and_may_be_revoked(storage: &dyn Storage) {
    let store = storage.open().await;
    put(&*store, vec![put_room(room("r1"))]).await;
    put(
        &*store,
        vec![
            put_registration("r1", registration("g1", "+8613800138000", "c1")),
            put_registration("r1", registration("g2", "+8613900139000", "c2")),
            put_registration("r1", registration("g3", "+8613700137000", "c3")),
        ],
    )
    .await;
    put(
        &*store,
        vec![
            decide("g1", RegistrationStatus::Approved, 200),
            decide("g1", RegistrationStatus::Approved, 210),
            decide("g2", RegistrationStatus::Rejected, 250),
            decide("g2", RegistrationStatus::Approved, 260),
            decide("g3", RegistrationStatus::Approved, 270),
            decide("g3", RegistrationStatus::Rejected, 300),
            decide("nope", RegistrationStatus::Approved, 260),
        ],
    )
    .await;
    let store = reopen(storage, store).await;
    let all = store
        .registrations("r1", RegistrationKey::All)
        .await
        .unwrap();
    let got: Vec<(&str, RegistrationStatus, Option<i64>)> = all
        .iter()
        .map(|r| (r.id.as_str(), r.status, r.decided_ms))
        .collect();
    assert_eq!(
        got,
        vec![
            ("g1", RegistrationStatus::Approved, Some(200)),
            ("g2", RegistrationStatus::Rejected, Some(250)),
            ("g3", RegistrationStatus::Rejected, Some(300)),
        ]
    );
}

/// Channel links are unique by code and by name in a room, oldest first, and durable.
pub async fn channels_are_unique_by_code_and_name(storage: &dyn Storage) {
    let store = storage.open().await;
    put(&*store, vec![put_room(room("r1")), put_room(room("r2"))]).await;
    let ch = |code: &str, name: &str, at: i64| StoreOp::PutChannel {
        room: r("r1"),
        channel: Box::new(Channel {
            code: code.into(),
            name: name.into(),
            created_ms: at,
        }),
    };
    put(
        &*store,
        vec![
            ch("wechat1", "WeChat group 1", 10),
            ch("news", "Newsletter", 20),
            ch("wechat1", "Another name", 30),
            ch("other", "Newsletter", 40),
        ],
    )
    .await;
    let store = reopen(storage, store).await;
    let got: Vec<(String, String)> = store
        .channels("r1")
        .await
        .unwrap()
        .into_iter()
        .map(|c| (c.code, c.name))
        .collect();
    assert_eq!(
        got,
        vec![
            ("wechat1".to_string(), "WeChat group 1".to_string()),
            ("news".to_string(), "Newsletter".to_string()),
        ]
    );
    assert!(store.channels("r2").await.unwrap().is_empty());
}

/// Erasing a viewer blanks their registration (phone read back empty, erased time kept) and
/// their name on orders and chat and company on the dealer record; other viewers and rooms
/// are untouched; the same phone may register again; all of it survives a reopen.
pub async fn an_erased_registrant_keeps_records_but_no_personal_data(storage: &dyn Storage) {
    use crate::model::ERASED_NAME;
    let store = storage.open().await;
    let mut chat_a = chat("m1", 1);
    chat_a.viewer_id = "v-g1".into();
    chat_a.display_name = "Name g1".into();
    let mut dealer_a = dealer("v-g1");
    dealer_a.company = "Acme".into();
    put(
        &*store,
        vec![
            put_room(room("r1")),
            put_room(room("r2")),
            put_registration("r1", registration("g1", "+8613800138000", "code1")),
            put_registration("r1", registration("g2", "+8613900139000", "code2")),
            put_registration("r2", registration("g1", "+8613800138000", "code1")),
            put_order(order("o1", "v-g1", "k1", None, 100)),
            put_order(order("o2", "v-g2", "k2", None, 100)),
            append_chat("r1", chat_a),
            StoreOp::PutDealer {
                room: r("r1"),
                dealer: Box::new(dealer_a),
            },
        ],
    )
    .await;
    let erase = StoreOp::EraseViewer {
        room: r("r1"),
        viewer_id: "v-g1".into(),
        at_ms: 500,
    };
    put(&*store, vec![erase.clone()]).await;
    // Again: the first erasure's time stays.
    put(
        &*store,
        vec![StoreOp::EraseViewer {
            room: r("r1"),
            viewer_id: "v-g1".into(),
            at_ms: 900,
        }],
    )
    .await;
    // The same phone registers again as someone new.
    put(
        &*store,
        vec![put_registration(
            "r1",
            registration("g3", "+8613800138000", "code3"),
        )],
    )
    .await;
    let store = reopen(storage, store).await;
    let by_id = |id: &str| RegistrationKey::Id(id.into());
    let g1 = store.registrations("r1", by_id("g1")).await.unwrap();
    assert_eq!(
        (
            g1[0].name.as_str(),
            g1[0].company.as_str(),
            g1[0].phone.as_str()
        ),
        ("", "", "")
    );
    assert_eq!(g1[0].erased_ms, Some(500));
    assert_eq!(g1[0].viewer_id, "v-g1");
    let g3 = store.registrations("r1", by_id("g3")).await.unwrap();
    assert_eq!(g3.len(), 1, "the phone is free again");
    let g2 = store.registrations("r1", by_id("g2")).await.unwrap();
    assert_eq!((g2[0].name.as_str(), g2[0].erased_ms), ("Name g2", None));
    let other_room = store.registrations("r2", by_id("g1")).await.unwrap();
    assert_eq!(other_room[0].phone, "+8613800138000");
    let loaded = loaded(&*store, "r1").await;
    let names: Vec<(&str, &str)> = loaded
        .orders
        .iter()
        .map(|o| (o.id.as_str(), o.display_name.as_str()))
        .collect();
    assert_eq!(names, [("o1", ERASED_NAME), ("o2", "Dealer v-g2")]);
    assert_eq!(loaded.orders[0].total_cents, 5_400);
    assert_eq!(loaded.dealers[0].company, "");
    let chat = store.chat_log("r1").await.unwrap();
    assert_eq!(chat[0].display_name, ERASED_NAME);
}
