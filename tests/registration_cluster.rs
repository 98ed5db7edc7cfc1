//! Registration in a cluster (issue 15): the endpoint works on any node, whichever owns the
//! room — registrations go through the shared store and the room through the routing seam.

mod common;
use common::cluster::two_nodes_with_a_show;
use common::registration::{json_of, register};
use common::*;
use showfloor::pb;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn any_node_registers_for_a_room_another_node_owns() {
    let nodes = two_nodes_with_a_show().await;
    let (a, b, room) = (&nodes.a.server, &nodes.b.server, nodes.show.room.clone());
    // Set on B: forwarded to A, the owner.
    let mut cb = b.control().await;
    let set = cb
        .client
        .set_registration(authed(pb::SetRegistrationRequest {
            room_id: room.clone(),
            mode: pb::RegistrationMode::Open as i32,
            phone_country: Some("CN".into()),
        }))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(set.owner_node, "node-a");
    assert_eq!(a.control().await.get_room(&room).await.phone_country, "CN");

    // Registered on B (not the owner); the guest registers on A with B's registrant's code.
    let host = register(
        b,
        &room,
        "10.7.0.1",
        r#"{"name":"Ms Chen","phone":"13800138000"}"#,
    )
    .await;
    assert_eq!(host.status, 201, "{}", host.body);
    let host = json_of(&host);
    let body = serde_json::json!({"name": "Mr Li", "phone": "13900139000",
                                  "invite": host["invite_code"]});
    let guest = register(a, &room, "10.7.0.2", &body.to_string()).await;
    assert_eq!(guest.status, 201, "{}", guest.body);
    let guest = json_of(&guest);

    // The same phone on both nodes at once: one viewer.
    let same = r#"{"name":"Wang","phone":"13700137000"}"#;
    let (x, y) = tokio::join!(
        register(a, &room, "10.7.0.3", same),
        register(b, &room, "10.7.0.4", same)
    );
    let (x, y) = (json_of(&x), json_of(&y));
    assert_eq!(x["viewer_id"], y["viewer_id"], "{x} {y}");

    // The guest's token, minted on A, joins on B; the owner's audience log names the inviter.
    let token = guest["token"].as_str().unwrap();
    let (_v, welcome) = nodes.b.join(&room, token).await.expect("joins");
    assert_eq!(welcome["you"]["viewer_id"], guest["viewer_id"]);
    let store = a.app().hub.store().clone();
    let mut inviter = None;
    for _ in 0..100 {
        let log = store.audience_log(&room).await.unwrap();
        if let Some(j) = log.iter().find(|r| r.viewer_id == guest["viewer_id"]) {
            inviter = j.inviter_id.clone();
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    assert_eq!(inviter.as_deref(), host["viewer_id"].as_str());

    // Both nodes list the same three registrations.
    for node in [a, b] {
        let list = node
            .control()
            .await
            .client
            .list_registrations(authed(pb::ListRegistrationsRequest {
                room_id: room.clone(),
                status: 0,
            }))
            .await
            .unwrap()
            .into_inner()
            .registrations;
        assert_eq!(list.len(), 3);
    }
}
