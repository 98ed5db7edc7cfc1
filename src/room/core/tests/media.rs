//! Media sessions as the room knows them: admission, kicks, revocation, the room's end.

use super::*;

#[test]
fn attaching_media_is_refused_like_a_join() {
    let mut r = room();
    let mut out = Vec::new();
    r.attach_media(media("m1", "v1", "j1"), 0).unwrap();
    r.host(
        HostCommand::RevokeToken {
            jti: "j2".into(),
            reason: String::new(),
        },
        1,
        &mut out,
    )
    .unwrap();
    assert_eq!(
        r.attach_media(media("m2", "v2", "j2"), 2)
            .unwrap_err()
            .reason,
        EndReason::Revoked
    );
    r.host(HostCommand::Close, 3, &mut out).unwrap();
    assert_eq!(
        r.attach_media(media("m3", "v3", "j3"), 4)
            .unwrap_err()
            .reason,
        EndReason::RoomEnded
    );
}

#[test]
fn a_kick_ends_the_identitys_websocket_and_media_sessions_and_refuses_their_tokens() {
    let mut r = room();
    let mut out = Vec::new();
    r.join(sid(1), viewer("troll"), 0, &mut out).unwrap();
    r.join(sid(2), viewer("other"), 0, &mut out).unwrap();
    r.attach_media(media("whep-1", "troll", "jti-media"), 0)
        .unwrap();
    r.attach_media(media("whep-2", "other", "jti-other"), 0)
        .unwrap();
    out.clear();
    r.host(
        HostCommand::Kick {
            viewer_id: "troll".into(),
            reason: "spam".into(),
        },
        1,
        &mut out,
    )
    .unwrap();
    assert_eq!(frames_of(&out, "kicked")[0]["reason"], "kicked: spam");
    assert_eq!(closed(&out), [(sid(1), EndReason::Revoked)]);
    assert_eq!(
        ended_media(&out),
        [(
            vec!["whep-1".to_string()],
            Refusal::new(EndReason::Revoked, "kicked: spam")
        )]
    );
    assert_eq!(kicked_jtis(&out), ["jti-troll", "jti-media"]);
    for jti in ["jti-troll", "jti-media"] {
        assert_eq!(r.admits(jti).unwrap_err().reason, EndReason::Revoked);
    }
    assert!(r.admits("jti-other").is_ok());
    // An identity with media sessions only is found too; one with neither is not.
    r.attach_media(
        MediaSession {
            role: MediaRole::Presenter {
                brand_id: "b1".into(),
            },
            ..media("whip-1", "presenter-7", "jti-p")
        },
        2,
    )
    .unwrap();
    out.clear();
    r.host(
        HostCommand::Kick {
            viewer_id: "presenter-7".into(),
            reason: String::new(),
        },
        3,
        &mut out,
    )
    .unwrap();
    assert_eq!(ended_media(&out)[0].0, ["whip-1"]);
    assert!(closed(&out).is_empty());
    let err = r
        .host(
            HostCommand::Kick {
                viewer_id: "presenter-7".into(),
                reason: String::new(),
            },
            4,
            &mut out,
        )
        .unwrap_err();
    assert!(matches!(err, RoomError::NotFound(m) if m.contains("presenter-7")));
}

#[test]
fn revoking_a_token_ends_the_media_sessions_that_use_it() {
    let mut r = room();
    let mut out = Vec::new();
    r.join(sid(1), viewer("v1"), 0, &mut out).unwrap();
    r.attach_media(media("whep-1", "v1", "jti-v1"), 0).unwrap();
    r.attach_media(media("whep-2", "v1", "jti-other"), 0)
        .unwrap();
    out.clear();
    r.host(
        HostCommand::RevokeToken {
            jti: "jti-v1".into(),
            reason: String::new(),
        },
        1,
        &mut out,
    )
    .unwrap();
    assert_eq!(closed(&out), [(sid(1), EndReason::Revoked)]);
    assert_eq!(
        ended_media(&out),
        [(
            vec!["whep-1".to_string()],
            Refusal::new(EndReason::Revoked, "kicked: this token was revoked")
        )]
    );
    // A media-only token's expiry comes from its media session.
    r.attach_media(
        MediaSession {
            expires_ms: 77_000,
            ..media("whep-3", "v3", "jti-v3")
        },
        2,
    )
    .unwrap();
    out.clear();
    r.host(
        HostCommand::RevokeToken {
            jti: "jti-v3".into(),
            reason: "leaked".into(),
        },
        3,
        &mut out,
    )
    .unwrap();
    assert_eq!(ended_media(&out)[0].0, ["whep-3"]);
    assert!(out.iter().any(|o| matches!(
        o,
        Output::Persist(StoreOp::KickToken { jti, expires_ms: 77_000, .. }) if jti == "jti-v3"
    )));
}

#[test]
fn closing_the_room_ends_every_media_session() {
    let mut r = room();
    let mut out = Vec::new();
    r.join(sid(1), viewer("v1"), 0, &mut out).unwrap();
    r.attach_media(media("whep-1", "v1", "jti-v1"), 0).unwrap();
    r.attach_media(media("whip-1", "p1", "jti-p1"), 0).unwrap();
    r.attach_media(media("gone", "p2", "jti-p2"), 0).unwrap();
    r.detach_media("gone");
    out.clear();
    r.host(HostCommand::Close, 1, &mut out).unwrap();
    assert_eq!(closed(&out), [(sid(1), EndReason::RoomEnded)]);
    assert_eq!(
        ended_media(&out),
        [(
            vec!["whep-1".to_string(), "whip-1".to_string()],
            Refusal::new(EndReason::RoomEnded, "room ended")
        )]
    );
}
