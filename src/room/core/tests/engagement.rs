//! Engagement capture: product views and clicks, likes and grab attempts are counted per
//! viewer and written as one batch per interval; bad input gets an error; nothing is fanned
//! out; a brand switch closes the batch and goes to the program log.

use super::*;

/// (viewer, kind, target, count, at) of one written record.
type Counted = (String, EngagementKind, String, u32, i64);

/// The records of each engagement write among `out`.
fn engagement(out: &[Output]) -> Vec<Vec<Counted>> {
    out.iter()
        .filter_map(|o| match o {
            Output::Persist(StoreOp::AppendEngagement { records, .. }) => Some(
                records
                    .iter()
                    .map(|e| {
                        (
                            e.viewer_id.clone(),
                            e.kind,
                            e.target.clone(),
                            e.count,
                            e.at_ms,
                        )
                    })
                    .collect(),
            ),
            _ => None,
        })
        .collect()
}

fn send(r: &mut Room, session: u64, msg: ClientMessage, now: i64) -> Vec<Output> {
    let mut out = Vec::new();
    r.client(sid(session), Ok(msg), now, &mut out);
    out
}

fn view(p: &str) -> ClientMessage {
    ClientMessage::ProductView {
        product_id: p.into(),
    }
}

fn click(p: &str) -> ClientMessage {
    ClientMessage::ProductClick {
        product_id: p.into(),
    }
}

#[test]
fn product_views_clicks_and_likes_are_counted_and_written_in_one_batch() {
    use EngagementKind::*;
    let (mut r, p) = live_room();
    let mut out = Vec::new();
    r.join(sid(1), viewer("v1"), 1_000, &mut out).unwrap();
    r.join(sid(2), dealer("d1", "gold"), 1_000, &mut out)
        .unwrap();
    r.tick(1_000, &mut out);
    let mut quiet = Vec::new();
    quiet.extend(send(&mut r, 1, view(&p), 1_100));
    quiet.extend(send(&mut r, 1, view(&p), 1_200));
    quiet.extend(send(&mut r, 2, view(&p), 1_300));
    quiet.extend(send(&mut r, 2, click(&p), 1_400));
    quiet.extend(send(&mut r, 1, ClientMessage::Like { count: 5 }, 1_500));
    // Nothing goes to anyone, and nothing is written per event.
    assert!(quiet.is_empty(), "{quiet:?}");
    assert_eq!(r.next_deadline().map(|d| d <= 3_100), Some(true));
    let mut out = Vec::new();
    r.tick(3_000, &mut out);
    assert!(engagement(&out).is_empty(), "not due before 2 s");
    r.tick(3_100, &mut out);
    assert_eq!(
        engagement(&out),
        vec![vec![
            ("d1".into(), ProductView, p.clone(), 1, 1_300),
            ("d1".into(), ProductClick, p.clone(), 1, 1_400),
            ("v1".into(), ProductView, p.clone(), 2, 1_100),
            ("v1".into(), Like, String::new(), 5, 1_500),
        ]]
    );
    let mut out = Vec::new();
    r.tick(10_000, &mut out);
    assert!(engagement(&out).is_empty(), "written once");
}

#[test]
fn grab_attempts_are_counted_won_or_not() {
    let (mut r, p) = live_room();
    let mut out = Vec::new();
    r.join(sid(1), dealer("d1", "gold"), 0, &mut out).unwrap();
    let sale = match commerce(&mut r, flash_sale(&p, 1, Some(0)), 0, &mut out) {
        HostReply::Sale(s) => s.id,
        other => panic!("{other:?}"),
    };
    r.tick(0, &mut out);
    for (i, at) in [100, 200].into_iter().enumerate() {
        let key = format!("k{i}");
        send(
            &mut r,
            1,
            ClientMessage::Grab {
                sale_id: sale.clone(),
                key,
            },
            at,
        );
    }
    let mut out = Vec::new();
    r.flush_engagement(&mut out);
    assert_eq!(
        engagement(&out),
        vec![vec![(
            "d1".into(),
            EngagementKind::GrabAttempt,
            sale,
            2,
            100
        )]]
    );
}

#[test]
fn bad_product_messages_get_an_error_and_a_flood_is_rate_limited() {
    let (mut r, p) = live_room();
    let mut out = Vec::new();
    r.join(sid(1), viewer("v1"), 0, &mut out).unwrap();
    r.join(sid(2), viewer("v2"), 0, &mut out).unwrap();
    let code = |out: &[Output]| -> Vec<String> {
        out.iter()
            .filter_map(|o| match o {
                Output::Send { session, frame } => {
                    assert_eq!(*session, sid(1), "only the sender hears of it");
                    let v: serde_json::Value = serde_json::from_slice(frame).unwrap();
                    Some(v["code"].as_str().unwrap().to_string())
                }
                _ => None,
            })
            .collect()
    };
    assert_eq!(
        code(&send(&mut r, 1, view("p999"), 10)),
        ["unknown_product"]
    );
    // A public viewer sees no links: a click from one is refused.
    assert_eq!(code(&send(&mut r, 1, click(&p), 20)), ["not_dealer"]);
    for i in 0..PRODUCT_EVENTS_PER_WINDOW {
        assert!(send(&mut r, 1, view(&p), 100 + i64::from(i)).is_empty());
    }
    assert_eq!(code(&send(&mut r, 1, view(&p), 500)), ["rate_limited"]);
    // v2 has its own allowance; v1's comes back after the window.
    assert!(send(&mut r, 2, view(&p), 600).is_empty());
    assert!(send(&mut r, 1, view(&p), 10 + PRODUCT_EVENT_WINDOW_MS).is_empty());
    let mut out = Vec::new();
    r.flush_engagement(&mut out);
    let counted: Vec<(String, u32)> = engagement(&out)[0]
        .iter()
        .map(|e| (e.0.clone(), e.3))
        .collect();
    // The refused messages were not counted: v1's unknown product and click, nor the flood.
    assert_eq!(
        counted,
        vec![
            ("v1".into(), PRODUCT_EVENTS_PER_WINDOW + 1),
            ("v2".into(), 1)
        ]
    );
}

#[test]
fn a_brand_switch_closes_the_batch_and_goes_to_the_program_log() {
    let (mut r, p) = live_room();
    let mut out = Vec::new();
    r.join(sid(1), viewer("v1"), 0, &mut out).unwrap();
    send(&mut r, 1, view(&p), 1_000);
    let brand = match r
        .host(
            HostCommand::AddBrand {
                name: "Bravo".into(),
                logo_url: String::new(),
                position: None,
            },
            1_200,
            &mut out,
        )
        .unwrap()
    {
        HostReply::Brand(b) => b.id,
        _ => unreachable!(),
    };
    let mut out = Vec::new();
    r.host(
        HostCommand::SwitchBrand {
            brand_id: brand.clone(),
        },
        1_500,
        &mut out,
    )
    .unwrap();
    let writes: Vec<&str> = out
        .iter()
        .filter_map(|o| match o {
            Output::Persist(StoreOp::AppendEngagement { .. }) => Some("engagement"),
            Output::Persist(StoreOp::AppendProgram { record, .. }) => {
                assert_eq!(
                    record,
                    &ProgramRecord {
                        brand_id: Some(brand.clone()),
                        at_ms: 1_500
                    }
                );
                Some("program")
            }
            _ => None,
        })
        .collect();
    assert_eq!(writes, ["engagement", "program"]);
}
