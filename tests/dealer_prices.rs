//! Across a scripted show, a public viewer never receives a price or a product link; dealers
//! see their own tier's prices; verification and revocation apply on the open connection.

mod common;
use common::*;
use serde_json::json;
use showfloor::pb;

#[tokio::test]
async fn public_viewer_never_sees_prices_and_dealers_see_their_tier() {
    let server = Server::start().await;
    let mut c = server.control().await;
    let show = setup_show(&mut c).await;
    price_show::run(&mut c, &show, [&server; 4]).await;
}

#[tokio::test]
async fn verify_and_revoke_apply_live_on_the_same_connection() {
    let server = Server::start().await;
    let mut c = server.control().await;
    let show = setup_show(&mut c).await;
    let t = c.token(&show.room, "dealer-to-be").await;
    let mut v = server.viewer(&show.room, &t).await;
    let w = v.expect("welcome").await;
    assert_eq!(w["you"]["role"], "viewer");

    c.verify(&show.room, "dealer-to-be", "silver").await;
    let rc = v.expect("role_changed").await;
    assert_eq!(rc["you"]["role"], "dealer");
    assert_eq!(rc["you"]["tier"], "silver");
    assert_eq!(rc["shelf"][1]["price_cents"], 14_400);
    assert!(rc["seq"].as_u64().is_some());

    // The next product event carries silver prices on this connection.
    c.product(&show.room, &show.brand_a, "alpha-hat", 500, 600)
        .await;
    let pu = v.expect("product_updated").await;
    assert_eq!(pu["product"]["price_cents"], 600);

    c.client
        .revoke_dealer(authed(pb::ViewerRef {
            room_id: show.room.clone(),
            viewer_id: "dealer-to-be".into(),
        }))
        .await
        .unwrap();
    let rc = v.expect("role_changed").await;
    assert_eq!(rc["you"]["role"], "viewer");
    assert!(rc["shelf"][0].get("price_cents").is_none());
    c.product(&show.room, &show.brand_a, "alpha-scarf", 700, 800)
        .await;
    let pu = v.expect("product_updated").await;
    assert!(pu["product"].get("price_cents").is_none());
    assert!(pu["product"].get("link").is_none());

    // A dealer application over the socket, approved by the host, upgrades the viewer.
    v.send(json!({"type":"dealer_application","company":"Acme","licence_number":"LIC-1","contact":"a@acme.example"}))
        .await;
    let ack = v.expect("dealer_application_received").await;
    let app_id = ack["application_id"].as_str().unwrap().to_string();
    let pending = c
        .client
        .list_dealer_applications(authed(pb::ListDealerApplicationsRequest {
            room_id: show.room.clone(),
            status: pb::ApplicationStatus::Pending as i32,
        }))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(pending.applications.len(), 1);
    assert_eq!(pending.applications[0].company, "Acme");
    c.client
        .approve_dealer_application(authed(pb::ApproveDealerApplicationRequest {
            room_id: show.room.clone(),
            application_id: app_id.clone(),
            tier: "gold".into(),
        }))
        .await
        .unwrap();
    let rc = v.expect("role_changed").await;
    assert_eq!(rc["you"]["tier"], "gold");
    let res = v.expect("application_result").await;
    assert_eq!(res["status"], "approved");
    // Deciding twice is refused.
    let e = c
        .client
        .reject_dealer_application(authed(pb::RejectDealerApplicationRequest {
            room_id: show.room.clone(),
            application_id: app_id,
            reason: "changed my mind".into(),
        }))
        .await
        .unwrap_err();
    assert_eq!(e.code(), tonic::Code::FailedPrecondition);
}
