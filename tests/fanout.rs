//! 500 connected viewers all receive a brand switch, and none is disconnected by it.

mod common;
use common::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn five_hundred_viewers_all_receive_brand_switched() {
    let server = Server::start().await;
    let mut c = server.control().await;
    let show = setup_show(&mut c).await;
    let mut viewers = Vec::new();
    for i in 0..500 {
        let t = c.token(&show.room, &format!("v{i}")).await;
        let mut v = server.viewer(&show.room, &t).await;
        v.expect("welcome").await;
        viewers.push(v);
    }
    c.switch(&show.room, &show.brand_b).await;
    c.announce(&show.room, "after the switch").await;
    let mut tasks = Vec::new();
    for mut v in viewers {
        tasks.push(tokio::spawn(async move {
            let f = v.expect("brand_switched").await;
            assert_eq!(f["brand"]["name"], "Bravo");
            assert_eq!(f["shelf"].as_array().unwrap().len(), 2);
            // Still connected: the next event arrives on the same socket.
            v.expect("announce").await;
            v
        }));
    }
    let mut alive = Vec::new();
    for t in tasks {
        alive.push(t.await.expect("viewer saw the switch"));
    }
    assert_eq!(alive.len(), 500);
    let room = c.get_room(&show.room).await;
    assert_eq!(room.online, 500);
    assert_eq!(room.brand_on_air, show.brand_b);
}
