//! Write coalescing holds broadcast frames to batch them, never the answer to a viewer's own
//! request: with the longest write delay (1 s), a `pong` and a `grab_result` asked for right
//! after a broadcast arrive long before the delay is over (they once waited it out: every
//! grab took the whole window).

mod common;
use common::*;
use serde_json::json;
use std::time::{Duration, Instant};

const WRITE_DELAY_MS: u64 = 1000;
/// Far below the write delay, far above a loopback round trip on a loaded machine.
const PROMPTLY: Duration = Duration::from_millis(WRITE_DELAY_MS / 2);

#[tokio::test]
async fn a_viewers_own_answers_skip_the_coalescing_wait() {
    let server = Server::start_with(|c| c.write_delay_ms = WRITE_DELAY_MS).await;
    let mut c = server.control().await;
    let show = setup_show(&mut c).await;
    let sale = c
        .flash_sale(&show.room, &show.products[0].id, 100, 10, 600)
        .await;
    let mut dealer = connect(
        &server.app().http_addr.to_string(),
        &show.room,
        &dealer_token(&show.room, &show.key, "d1", "gold"),
    )
    .await;
    dealer.expect("welcome").await;

    for round in 0..3 {
        // A broadcast goes out at once (first frame after a quiet spell) and starts the
        // coalescing window; a second one is held in it.
        c.announce(&show.room, &format!("first {round}")).await;
        dealer.expect("announce").await;
        c.announce(&show.room, &format!("held {round}")).await;

        let asked = Instant::now();
        dealer.send(json!({"type": "ping", "t": round})).await;
        dealer.expect("pong").await;
        let pong = asked.elapsed();
        assert!(pong < PROMPTLY, "pong after {pong:?}");

        c.announce(&show.room, &format!("again {round}")).await;
        let asked = Instant::now();
        dealer
            .send(json!({"type": "grab", "sale_id": sale.id, "key": format!("k{round}")}))
            .await;
        assert_eq!(dealer.expect("grab_result").await["result"], "won");
        let grab = asked.elapsed();
        assert!(grab < PROMPTLY, "grab_result after {grab:?}");
        // Let the window close before the next round.
        tokio::time::sleep(Duration::from_millis(WRITE_DELAY_MS + 100)).await;
    }
}
