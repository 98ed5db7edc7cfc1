//! `showfloor ctl --json`: the reply message itself in the proto3 JSON mapping (serde from
//! pbjson for the generated types, see `build.rs`), one object per line.

use super::Reply;
use crate::pb::WatchRoomEvent;

/// The line `--json` prints for `reply`: the reply message as JSON with the proto's field
/// names; a draw record's `record_json` as is (it is JSON already, and what `verify-draw`
/// reads). Fails only on an enum value this build does not know.
pub(super) fn reply(reply: &Reply) -> serde_json::Result<String> {
    use serde_json::to_string;
    let json = match reply {
        Reply::Created(m) => to_string(m),
        Reply::Report(m) => to_string(m),
        Reply::Leads(m) => to_string(m),
        Reply::Referrals(m) => to_string(m),
        Reply::Weights(m) => to_string(m),
        Reply::Export(m) => to_string(m),
        Reply::Webhook(m) => to_string(m),
        Reply::Deliveries(m) => to_string(m),
        Reply::Delivery(m) => to_string(m),
        Reply::Room(m) => to_string(m),
        Reply::Rooms(m) => to_string(m),
        Reply::TokenKey(m) => to_string(m),
        Reply::Brand(m) => to_string(m),
        Reply::Product(m) => to_string(m),
        Reply::Products(m) => to_string(m),
        Reply::ViewerToken(m) => to_string(m),
        Reply::PresenterToken(m) => to_string(m),
        Reply::Dealer(m) => to_string(m),
        Reply::Dealers(m) => to_string(m),
        Reply::Application(m) => to_string(m),
        Reply::Applications(m) => to_string(m),
        Reply::Order(m) => to_string(m),
        Reply::Orders(m) => to_string(m),
        Reply::Sale { sale, .. } => to_string(sale),
        Reply::Sales { sales, .. } => to_string(sales),
        Reply::Draw(m) => to_string(m),
        Reply::Draws(m) => to_string(m),
        Reply::DrawRecordJson(record) => Ok(record.trim_end().to_string()),
        Reply::Packet(m) => to_string(m),
        Reply::Registration(m) => to_string(m),
        Reply::Registrations(m) => to_string(m),
        Reply::Channel(m) => to_string(m),
        Reply::Channels(m) => to_string(m),
        Reply::Import(m) => to_string(m),
        Reply::Catalog(m) => to_string(m),
        Reply::Done(m, _) => to_string(m),
    }?;
    Ok(json + "\n")
}

/// A `watch` event's line: `{"chat": {…}}`, `{"stats": {…}}`, … (the oneof's field).
pub(super) fn event(ev: &WatchRoomEvent) -> serde_json::Result<String> {
    Ok(serde_json::to_string(ev)? + "\n")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pb::*;
    use serde_json::{json, Value};

    fn printed(r: &Reply) -> Value {
        let line = reply(r).expect("prints");
        assert!(
            line.ends_with('\n') && !line.trim_end().contains('\n'),
            "{line}"
        );
        serde_json::from_str(&line).expect("one JSON object")
    }

    fn order() -> Order {
        Order {
            id: "o1".into(),
            room_id: "r1".into(),
            viewer_id: "dealer-7".into(),
            tier: "gold".into(),
            product_id: "p4".into(),
            quantity: 12,
            unit_price_cents: 25_900,
            total_cents: 310_800,
            currency: "CNY".into(),
            status: OrderStatus::Placed.into(),
            created_ms: 1_700_000_000_000,
            ..Default::default()
        }
    }

    #[test]
    fn a_reply_prints_with_proto_names_64_bit_strings_and_enum_names() {
        let v = printed(&Reply::Order(order()));
        assert_eq!(v["viewer_id"], "dealer-7");
        assert_eq!(v["quantity"], 12, "32-bit integers stay numbers");
        assert_eq!(
            v["unit_price_cents"], "25900",
            "64-bit integers are strings"
        );
        assert_eq!(v["created_ms"], "1700000000000");
        assert_eq!(v["status"], "ORDER_STATUS_PLACED");
        assert_eq!(v["sale_id"], "", "fields at their default are printed too");
        assert_eq!(v["updated_ms"], "0");
        // What ctl prints reads back as the message (numbers or strings both parse).
        let back: Order = serde_json::from_value(v).expect("reads back");
        assert_eq!(back, order());
    }

    #[test]
    fn lists_print_as_their_reply_message() {
        let page = ListOrdersResponse {
            orders: vec![order()],
            total_count: 1,
            total_cents: 310_800,
        };
        let v = printed(&Reply::Orders(page));
        assert_eq!(v["total_count"], 1);
        assert_eq!(v["total_cents"], "310800");
        assert_eq!(v["orders"][0]["id"], "o1");
        let empty = printed(&Reply::Orders(ListOrdersResponse::default()));
        assert_eq!(
            empty,
            json!({"orders": [], "total_count": 0, "total_cents": "0"})
        );
        let sales = ListFlashSalesResponse {
            sales: vec![FlashSale {
                id: "s5".into(),
                phase: SalePhase::SoldOut.into(),
                ..Default::default()
            }],
        };
        let v = printed(&Reply::Sales {
            sales,
            currency: "CNY".into(),
        });
        assert_eq!(v["sales"][0]["phase"], "SALE_PHASE_SOLD_OUT");
        assert!(v.get("currency").is_none(), "only the message is printed");
    }

    #[test]
    fn a_oneof_prints_as_the_field_that_is_set() {
        let draw = DrawRecord {
            draw_id: "d6".into(),
            eligibility: Some(DrawEligibility {
                rule: Some(draw_eligibility::Rule::Keyword("lucky".into())),
            }),
            ..Default::default()
        };
        let v = printed(&Reply::Draw(draw));
        assert_eq!(v["eligibility"], json!({"keyword": "lucky"}));
        let everyone = DrawEligibility {
            rule: Some(draw_eligibility::Rule::Everyone(Empty {})),
        };
        assert_eq!(
            serde_json::to_value(&everyone).unwrap(),
            json!({"everyone": {}})
        );

        let chat = WatchRoomEvent {
            event: Some(watch_room_event::Event::Chat(ChatMessage {
                id: "m1".into(),
                text: "hello".into(),
                seq: 46,
                ..Default::default()
            })),
        };
        let line = event(&chat).unwrap();
        let v: Value = serde_json::from_str(&line).unwrap();
        assert_eq!(v["chat"]["text"], "hello");
        assert_eq!(v["chat"]["seq"], "46");
    }

    #[test]
    fn a_room_keeps_its_nested_keys() {
        let created = CreateRoomResponse {
            room: Some(crate::pb::Room {
                id: "r1".into(),
                state: RoomState::Scheduled.into(),
                ..Default::default()
            }),
            token_key: "secret".into(),
        };
        let v = printed(&Reply::Created(created));
        assert_eq!(v["room"]["id"], "r1");
        assert_eq!(v["room"]["state"], "ROOM_STATE_SCHEDULED");
        assert_eq!(v["token_key"], "secret");
        assert!(
            v["room"].get("chat_rate_limit").is_none(),
            "an unset message field is left out"
        );
    }

    #[test]
    fn an_empty_reply_is_an_empty_object_and_a_draw_record_is_printed_as_is() {
        let done = Reply::Done(Empty {}, "pinned".into());
        assert_eq!(reply(&done).unwrap(), "{}\n");
        let record = "{\n  \"draw_id\": \"d6\"\n}\n\n".to_string();
        assert_eq!(
            reply(&Reply::DrawRecordJson(record)).unwrap(),
            "{\n  \"draw_id\": \"d6\"\n}\n"
        );
    }

    #[test]
    fn an_enum_value_this_build_does_not_know_is_an_error() {
        let o = Order {
            status: 99,
            ..order()
        };
        assert!(reply(&Reply::Order(o)).is_err());
    }
}
