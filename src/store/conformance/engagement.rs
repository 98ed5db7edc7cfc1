//! Conformance: engagement batches, the program log, the chat log and lead weights.

use super::fixtures::*;
use super::{reopen, Storage};
use crate::model::{EngagementKind, EngagementRecord, LeadWeights, ProgramRecord};
use crate::store::StoreOp;

fn batch(room: &str, records: &[(&str, EngagementKind, &str, u32, i64)]) -> StoreOp {
    StoreOp::AppendEngagement {
        room: r(room),
        records: records
            .iter()
            .map(|&(viewer, kind, target, count, at_ms)| EngagementRecord {
                viewer_id: viewer.into(),
                kind,
                target: target.into(),
                count,
                at_ms,
            })
            .collect(),
    }
}

fn program(room: &str, brand: Option<&str>, at_ms: i64) -> StoreOp {
    StoreOp::AppendProgram {
        room: r(room),
        record: ProgramRecord {
            brand_id: brand.map(String::from),
            at_ms,
        },
    }
}

/// Engagement comes back oldest first (a batch's records in their order), every kind; the
/// program log in order with "no brand" kept; the chat log without deleted messages; the
/// last lead weights put. All durable, and per room.
pub async fn engagement_program_and_weights_round_trip(storage: &dyn Storage) {
    use EngagementKind::*;
    let store = storage.open().await;
    put(&*store, vec![put_room(room("r1")), put_room(room("r2"))]).await;
    let mut weights = LeadWeights::default();
    weights.product_click.points = 7.5;
    weights.hot_at = 80.0;
    put(
        &*store,
        vec![
            batch(
                "r1",
                &[("v1", ProductView, "p1", 3, 100), ("v2", Like, "", 40, 100)],
            ),
            batch("r1", &[]),
            program("r1", Some("b1"), 50),
            program("r1", None, 150),
            program("r1", Some("b2"), 200),
            batch("r2", &[("v9", GrabAttempt, "s1", 1, 120)]),
            batch(
                "r1",
                &[
                    ("v1", ProductClick, "p1", 2, 210),
                    ("v3", GrabAttempt, "s4", 1, 205),
                ],
            ),
            append_chat("r1", chat("m1", 1)),
            append_chat("r1", chat("m2", 2)),
            append_chat("r1", chat("m3", 3)),
            StoreOp::DeleteChat {
                room: r("r1"),
                message_id: r("m2"),
                at_ms: 500,
            },
            StoreOp::PutLeadWeights {
                room: r("r1"),
                weights: Box::new(LeadWeights::default()),
                at_ms: 10,
            },
            StoreOp::PutLeadWeights {
                room: r("r1"),
                weights: Box::new(weights.clone()),
                at_ms: 20,
            },
        ],
    )
    .await;
    let store = reopen(storage, store).await;
    let got: Vec<(String, EngagementKind, String, u32, i64)> = store
        .engagement("r1")
        .await
        .unwrap()
        .into_iter()
        .map(|e| (e.viewer_id, e.kind, e.target, e.count, e.at_ms))
        .collect();
    assert_eq!(
        got,
        vec![
            (r("v1"), ProductView, r("p1"), 3, 100),
            (r("v2"), Like, r(""), 40, 100),
            (r("v3"), GrabAttempt, r("s4"), 1, 205),
            (r("v1"), ProductClick, r("p1"), 2, 210),
        ]
    );
    assert_eq!(store.engagement("r2").await.unwrap().len(), 1);
    let log: Vec<(Option<String>, i64)> = store
        .program_log("r1")
        .await
        .unwrap()
        .into_iter()
        .map(|p| (p.brand_id, p.at_ms))
        .collect();
    assert_eq!(
        log,
        vec![(Some(r("b1")), 50), (None, 150), (Some(r("b2")), 200)]
    );
    assert!(store.program_log("r2").await.unwrap().is_empty());
    let chat: Vec<String> = store
        .chat_log("r1")
        .await
        .unwrap()
        .into_iter()
        .map(|c| c.id)
        .collect();
    assert_eq!(chat, vec![r("m1"), r("m3")]);
    assert_eq!(store.lead_weights("r1").await.unwrap(), Some(weights));
    assert_eq!(store.lead_weights("r2").await.unwrap(), None);
}
