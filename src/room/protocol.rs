//! Parsing of viewer → server WebSocket messages: pure functions, apart from any socket.

use crate::model::client::{ClientMessage, ProtocolError};
use serde::Deserialize;

/// Longest chat message, in characters.
pub const MAX_CHAT_CHARS: usize = 500;
/// Most likes one `like` message may carry (clients batch taps).
pub const MAX_LIKES_PER_MESSAGE: u32 = 100;

#[derive(Deserialize)]
struct Raw {
    #[serde(rename = "type")]
    kind: Option<String>,
    text: Option<String>,
    count: Option<u32>,
    company: Option<String>,
    licence_number: Option<String>,
    contact: Option<String>,
    last_seq: Option<u64>,
    epoch: Option<String>,
    t: Option<i64>,
    product_id: Option<String>,
    quantity: Option<u64>,
    key: Option<String>,
    sale_id: Option<String>,
    draw_id: Option<String>,
    packet_id: Option<String>,
}

/// Longest idempotency key, in bytes.
pub const MAX_KEY_LEN: usize = 64;

/// An id or idempotency key: 1 to `max` printable ASCII characters, no spaces.
fn token(v: Option<String>, field: &str, kind: &str, max: usize) -> Result<String, ProtocolError> {
    let v = required(v, field, kind)?;
    if v.is_empty() || v.len() > max || !v.bytes().all(|b| b.is_ascii_graphic()) {
        return Err(ProtocolError::new(
            "invalid_field",
            format!("`{field}` must be 1 to {max} printable ASCII characters without spaces"),
        ));
    }
    Ok(v)
}

fn required(v: Option<String>, field: &str, kind: &str) -> Result<String, ProtocolError> {
    v.ok_or_else(|| {
        ProtocolError::new(
            "missing_field",
            format!("`{kind}` needs the field `{field}`"),
        )
    })
}

fn bounded(v: String, field: &str, max: usize) -> Result<String, ProtocolError> {
    let v = v.trim().to_string();
    let n = v.chars().count();
    if n == 0 {
        return Err(ProtocolError::new(
            "invalid_field",
            format!("`{field}` must not be empty"),
        ));
    }
    if n > max {
        return Err(ProtocolError::new(
            "invalid_field",
            format!("`{field}` is {n} characters; the limit is {max}"),
        ));
    }
    if v.chars().any(|c| c.is_control() && c != '\n') {
        return Err(ProtocolError::new(
            "invalid_field",
            format!("`{field}` contains control characters"),
        ));
    }
    Ok(v)
}

/// Parses one text frame from a viewer.
pub fn parse_client_message(text: &str) -> Result<ClientMessage, ProtocolError> {
    let raw: Raw = serde_json::from_str(text).map_err(|e| {
        ProtocolError::new(
            "bad_json",
            format!("message is not a JSON object of the protocol: {e}"),
        )
    })?;
    let kind = raw
        .kind
        .ok_or_else(|| ProtocolError::new("missing_field", "every message needs a `type`"))?;
    match kind.as_str() {
        "chat" => Ok(ClientMessage::Chat {
            text: bounded(required(raw.text, "text", "chat")?, "text", MAX_CHAT_CHARS)?,
        }),
        "like" => {
            let count = raw.count.unwrap_or(1);
            if count == 0 || count > MAX_LIKES_PER_MESSAGE {
                return Err(ProtocolError::new(
                    "invalid_field",
                    format!("`count` must be 1..={MAX_LIKES_PER_MESSAGE}"),
                ));
            }
            Ok(ClientMessage::Like { count })
        }
        "dealer_application" => Ok(ClientMessage::DealerApplication {
            company: bounded(required(raw.company, "company", &kind)?, "company", 200)?,
            licence_number: bounded(
                required(raw.licence_number, "licence_number", &kind)?,
                "licence_number",
                100,
            )?,
            contact: bounded(required(raw.contact, "contact", &kind)?, "contact", 200)?,
        }),
        "resume" => Ok(ClientMessage::Resume {
            last_seq: raw.last_seq.ok_or_else(|| {
                ProtocolError::new("missing_field", "`resume` needs the field `last_seq`")
            })?,
            epoch: raw.epoch,
        }),
        "ping" => Ok(ClientMessage::Ping { t: raw.t }),
        "place_order" => {
            let quantity = raw.quantity.ok_or_else(|| {
                ProtocolError::new("missing_field", "`place_order` needs the field `quantity`")
            })?;
            if quantity == 0 || quantity > u32::MAX as u64 {
                return Err(ProtocolError::new(
                    "invalid_field",
                    "`quantity` must be a positive whole number",
                ));
            }
            Ok(ClientMessage::PlaceOrder {
                product_id: token(raw.product_id, "product_id", &kind, 64)?,
                quantity: quantity as u32,
                key: token(raw.key, "key", &kind, MAX_KEY_LEN)?,
            })
        }
        "grab" => Ok(ClientMessage::Grab {
            sale_id: token(raw.sale_id, "sale_id", &kind, 64)?,
            key: token(raw.key, "key", &kind, MAX_KEY_LEN)?,
        }),
        "enter_draw" => Ok(ClientMessage::EnterDraw {
            draw_id: token(raw.draw_id, "draw_id", &kind, 64)?,
        }),
        "grab_red_packet" => Ok(ClientMessage::GrabRedPacket {
            packet_id: token(raw.packet_id, "packet_id", &kind, 64)?,
        }),
        other => Err(ProtocolError::new(
            "unknown_type",
            format!(
                "unknown message type `{}`",
                other.chars().take(40).collect::<String>()
            ),
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_each_message() {
        assert_eq!(
            parse_client_message(r#"{"type":"chat","text":"  hello "}"#).unwrap(),
            ClientMessage::Chat {
                text: "hello".into()
            }
        );
        assert_eq!(
            parse_client_message(r#"{"type":"like"}"#).unwrap(),
            ClientMessage::Like { count: 1 }
        );
        assert_eq!(
            parse_client_message(r#"{"type":"resume","last_seq":41}"#).unwrap(),
            ClientMessage::Resume {
                last_seq: 41,
                epoch: None
            }
        );
        assert!(matches!(
            parse_client_message(
                r#"{"type":"dealer_application","company":"A","licence_number":"L","contact":"c"}"#
            ),
            Ok(ClientMessage::DealerApplication { .. })
        ));
        assert_eq!(
            parse_client_message(r#"{"type":"ping","t":5}"#).unwrap(),
            ClientMessage::Ping { t: Some(5) }
        );
        assert_eq!(
            parse_client_message(r#"{"type":"grab","sale_id":"s1","key":"k-1"}"#).unwrap(),
            ClientMessage::Grab {
                sale_id: "s1".into(),
                key: "k-1".into()
            }
        );
        assert_eq!(
            parse_client_message(
                r#"{"type":"place_order","product_id":"p1","quantity":12,"key":"k"}"#
            )
            .unwrap(),
            ClientMessage::PlaceOrder {
                product_id: "p1".into(),
                quantity: 12,
                key: "k".into()
            }
        );
    }

    #[test]
    fn refuses_bad_input_with_a_reason() {
        let e = |s: &str| parse_client_message(s).unwrap_err().code;
        assert_eq!(e("not json"), "bad_json");
        assert_eq!(e("[1,2]"), "bad_json");
        assert_eq!(e(r#"{"text":"x"}"#), "missing_field");
        assert_eq!(e(r#"{"type":"dance"}"#), "unknown_type");
        assert_eq!(e(r#"{"type":"chat"}"#), "missing_field");
        assert_eq!(e(r#"{"type":"chat","text":"   "}"#), "invalid_field");
        assert_eq!(
            e(&format!(
                r#"{{"type":"chat","text":"{}"}}"#,
                "x".repeat(501)
            )),
            "invalid_field"
        );
        assert_eq!(e(r#"{"type":"like","count":0}"#), "invalid_field");
        assert_eq!(e(r#"{"type":"like","count":-1}"#), "bad_json");
        assert_eq!(e(r#"{"type":"chat","text":"a\u0007b"}"#), "invalid_field");
        assert_eq!(e(r#"{"type":"resume"}"#), "missing_field");
        assert_eq!(e(r#"{"type":"grab","sale_id":"s1"}"#), "missing_field");
        assert_eq!(
            e(r#"{"type":"grab","sale_id":"s1","key":""}"#),
            "invalid_field"
        );
        assert_eq!(
            e(r#"{"type":"grab","sale_id":"s1","key":"a b"}"#),
            "invalid_field"
        );
        assert_eq!(
            e(&format!(
                r#"{{"type":"grab","sale_id":"s1","key":"{}"}}"#,
                "k".repeat(65)
            )),
            "invalid_field"
        );
        assert_eq!(
            e(r#"{"type":"place_order","product_id":"p1","quantity":0,"key":"k"}"#),
            "invalid_field"
        );
        assert_eq!(
            e(r#"{"type":"place_order","product_id":"p1","quantity":99999999999,"key":"k"}"#),
            "invalid_field"
        );
        assert_eq!(
            e(r#"{"type":"place_order","product_id":"p1","quantity":-3,"key":"k"}"#),
            "bad_json"
        );
        assert_eq!(e(r#"{"type":"enter_draw"}"#), "missing_field");
    }
}
