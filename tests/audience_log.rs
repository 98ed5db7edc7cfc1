//! The audience log records join, periodic heartbeats and leave per viewer, with the inviter,
//! durably in the store (the raw material of watch-time and referral reports).

mod common;
use common::*;
use showfloor::model::AudienceKind;
use showfloor::pb;
use std::time::Duration;

#[tokio::test]
async fn join_heartbeat_and_leave_are_logged_with_the_inviter() {
    let server = Server::start_with(|c| c.heartbeat_secs = 1).await;
    let mut c = server.control().await;
    let show = setup_show(&mut c).await;
    let token = c
        .client
        .issue_viewer_token(authed(pb::IssueViewerTokenRequest {
            room_id: show.room.clone(),
            viewer_id: "invited-1".into(),
            display_name: "Invited".into(),
            inviter_id: "sales-rep-9".into(),
            ttl_seconds: 600,
        }))
        .await
        .unwrap()
        .into_inner()
        .token;
    let mut v = server.viewer(&show.room, &token).await;
    v.expect("welcome").await;
    let store = server.app().hub.store().clone();
    // Wait (bounded) for at least one heartbeat to be written.
    let mut beats = 0;
    for _ in 0..100 {
        tokio::time::sleep(Duration::from_millis(100)).await;
        let log = store.audience_log(&show.room).await.unwrap();
        beats = log
            .iter()
            .filter(|r| r.kind == AudienceKind::Heartbeat)
            .count();
        if beats > 0 {
            break;
        }
    }
    assert!(beats > 0, "no heartbeat was logged");
    drop(v);
    let mut log = Vec::new();
    for _ in 0..100 {
        tokio::time::sleep(Duration::from_millis(50)).await;
        log = store.audience_log(&show.room).await.unwrap();
        if log.iter().any(|r| r.kind == AudienceKind::Leave) {
            break;
        }
    }
    let mine: Vec<_> = log.iter().filter(|r| r.viewer_id == "invited-1").collect();
    assert_eq!(mine.first().unwrap().kind, AudienceKind::Join);
    assert_eq!(mine.last().unwrap().kind, AudienceKind::Leave);
    assert!(mine
        .iter()
        .all(|r| r.inviter_id.as_deref() == Some("sales-rep-9")));
    assert!(mine.windows(2).all(|w| w[0].at_ms <= w[1].at_ms));
}
