//! Parsing of viewer → server WebSocket messages: pure functions, apart from any socket.

use crate::model::client::{ClientMessage, ProtocolError};
use crate::room::text;
use serde_json::{Number, Value};
use std::ops::RangeInclusive;

/// Longest chat message, in characters.
pub const MAX_CHAT_CHARS: usize = 500;
/// Most likes one `like` message may carry (clients batch taps).
pub const MAX_LIKES_PER_MESSAGE: u32 = 100;
pub use crate::room::commerce::orders::MAX_ORDER_QUANTITY;
/// Longest idempotency key, in bytes.
pub const MAX_KEY_LEN: usize = 64;

fn bad_json(message: impl Into<String>) -> ProtocolError {
    ProtocolError::new("bad_json", message)
}

fn invalid_field(message: impl Into<String>) -> ProtocolError {
    ProtocolError::new("invalid_field", message)
}

/// The fields some message type reads, by name.
const FIELDS: [&str; 15] = [
    "type",
    "text",
    "count",
    "company",
    "licence_number",
    "contact",
    "last_seq",
    "epoch",
    "t",
    "product_id",
    "quantity",
    "key",
    "sale_id",
    "draw_id",
    "packet_id",
];

/// Every field in [`FIELDS`], as whatever JSON value the client sent (by position); fields no
/// type reads are skipped while parsing (no copy, no map). A key sent twice keeps its last
/// value, as a JSON object read into a map would.
#[derive(Default)]
struct Raw([Option<Value>; FIELDS.len()]);

impl Raw {
    fn slot(&mut self, field: &str) -> Option<&mut Option<Value>> {
        let i = FIELDS.iter().position(|f| *f == field)?;
        Some(&mut self.0[i])
    }
}

/// An object key: its position in [`FIELDS`], or `None` for a key no message reads (read
/// without allocating).
struct Key(Option<usize>);

impl<'de> serde::Deserialize<'de> for Key {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Key, D::Error> {
        struct Visit;
        impl serde::de::Visitor<'_> for Visit {
            type Value = Key;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("a field name")
            }
            fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<Key, E> {
                Ok(Key(FIELDS.iter().position(|f| *f == v)))
            }
        }
        d.deserialize_str(Visit)
    }
}

impl<'de> serde::Deserialize<'de> for Raw {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Raw, D::Error> {
        struct Visit;
        impl<'de> serde::de::Visitor<'de> for Visit {
            type Value = Raw;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("a JSON object with a `type` field")
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(self, mut map: A) -> Result<Raw, A::Error> {
                let mut raw = Raw::default();
                while let Some(Key(key)) = map.next_key::<Key>()? {
                    match key {
                        Some(i) => raw.0[i] = Some(map.next_value()?),
                        None => {
                            map.next_value::<serde::de::IgnoredAny>()?;
                        }
                    }
                }
                Ok(raw)
            }
        }
        d.deserialize_map(Visit)
    }
}

/// A message's fields. Only the fields its type uses are read: any other field is ignored,
/// whatever its value, so a client may send one shape for several types.
struct Fields<'a> {
    kind: &'a str,
    raw: Raw,
}

impl Fields<'_> {
    /// A string field; absent and `null` are the same.
    fn text(&mut self, field: &str) -> Result<Option<String>, ProtocolError> {
        match self.raw.slot(field).and_then(Option::take) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::String(s)) => Ok(Some(s)),
            Some(_) => Err(bad_json(format!("`{field}` must be a string"))),
        }
    }

    fn required<T>(&self, v: Option<T>, field: &str) -> Result<T, ProtocolError> {
        v.ok_or_else(|| {
            ProtocolError::new(
                "missing_field",
                format!("`{}` needs the field `{field}`", self.kind),
            )
        })
    }

    /// An id or idempotency key: 1 to `max` printable ASCII characters, no spaces.
    fn token(&mut self, field: &str, max: usize) -> Result<String, ProtocolError> {
        let v = self.text(field)?;
        let v = self.required(v, field)?;
        if v.is_empty() || v.len() > max || !v.bytes().all(|b| b.is_ascii_graphic()) {
            return Err(invalid_field(format!(
                "`{field}` must be 1 to {max} printable ASCII characters without spaces"
            )));
        }
        Ok(v)
    }

    /// Free text a viewer writes: cleaned (see `room::text`), then 1 to `max` characters
    /// with something visible and no control characters but newlines.
    fn free_text(&mut self, field: &str, max: usize) -> Result<String, ProtocolError> {
        let v = self.text(field)?;
        let v = text::clean(self.required(v, field)?);
        // One pass: length, something visible, no control characters but newlines.
        let (mut n, mut visible, mut control) = (0usize, false, false);
        for c in v.chars() {
            n += 1;
            visible |= !text::is_invisible(c);
            control |= c.is_control() && c != '\n';
        }
        if !visible {
            return Err(invalid_field(format!(
                "`{field}` must contain at least one visible character"
            )));
        }
        if n > max {
            return Err(invalid_field(format!(
                "`{field}` is {n} characters; the limit is {max}"
            )));
        }
        if control {
            return Err(invalid_field(format!(
                "`{field}` contains control characters"
            )));
        }
        Ok(v)
    }

    /// A whole number in `range`; absent and `null` are the same. A number above the range
    /// is refused with `too_large_code`, any other out-of-range value with `invalid_field`;
    /// both messages state the range.
    fn whole_number(
        &mut self,
        field: &str,
        range: RangeInclusive<u64>,
        too_large_code: &'static str,
    ) -> Result<Option<u64>, ProtocolError> {
        let n = match self.raw.slot(field).and_then(|v| v.as_ref()) {
            None | Some(Value::Null) => return Ok(None),
            Some(Value::Number(n)) => n,
            Some(_) => return Err(bad_json(format!("`{field}` must be a number"))),
        };
        let out_of_range = |code| {
            ProtocolError::new(
                code,
                format!(
                    "`{field}` must be a whole number from {} to {} (got {n})",
                    range.start(),
                    range.end()
                ),
            )
        };
        match whole(n) {
            Some(v) if range.contains(&v) => Ok(Some(v)),
            _ if n.as_f64().is_some_and(|f| f > *range.end() as f64) => {
                Err(out_of_range(too_large_code))
            }
            _ => Err(out_of_range("invalid_field")),
        }
    }

    /// A signed whole number; absent and `null` are the same.
    fn signed(&mut self, field: &str) -> Result<Option<i64>, ProtocolError> {
        match self.raw.slot(field).and_then(|v| v.as_ref()) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::Number(n)) => n.as_i64().map(Some).ok_or_else(|| {
                invalid_field(format!(
                    "`{field}` must be a whole number from {} to {} (got {n})",
                    i64::MIN,
                    i64::MAX
                ))
            }),
            Some(_) => Err(bad_json(format!("`{field}` must be a number"))),
        }
    }
}

/// A non-negative whole number as `u64`, also when written with a fraction of zero (`2.0`).
fn whole(n: &Number) -> Option<u64> {
    n.as_u64().or_else(|| {
        n.as_f64()
            .filter(|f| f.fract() == 0.0 && *f >= 0.0 && *f < u64::MAX as f64)
            .map(|f| f as u64)
    })
}

/// Parses one text frame from a viewer.
pub fn parse_client_message(text: &str) -> Result<ClientMessage, ProtocolError> {
    // Anything but an object (an array, a string, a number) is told so, not what the parser
    // expected internally.
    if !text.trim_start().starts_with('{') {
        return Err(match serde_json::from_str::<serde::de::IgnoredAny>(text) {
            Ok(_) => bad_json("a message must be a JSON object with a `type` field"),
            Err(e) => bad_json(format!("the message is not valid JSON ({e})")),
        });
    }
    let mut raw: Raw = serde_json::from_str(text)
        .map_err(|e| bad_json(format!("the message is not valid JSON ({e})")))?;
    let kind = match raw.slot("type").and_then(Option::take) {
        None | Some(Value::Null) => {
            return Err(ProtocolError::new(
                "missing_field",
                "every message needs a `type`",
            ))
        }
        Some(Value::String(kind)) => kind,
        Some(_) => return Err(bad_json("`type` must be a string")),
    };
    let mut f = Fields { kind: &kind, raw };
    match kind.as_str() {
        "chat" => Ok(ClientMessage::Chat {
            text: f.free_text("text", MAX_CHAT_CHARS)?,
        }),
        "like" => {
            let count =
                f.whole_number("count", 1..=MAX_LIKES_PER_MESSAGE as u64, "invalid_field")?;
            Ok(ClientMessage::Like {
                count: count.unwrap_or(1) as u32,
            })
        }
        "dealer_application" => Ok(ClientMessage::DealerApplication {
            company: f.free_text("company", 200)?,
            licence_number: f.free_text("licence_number", 100)?,
            contact: f.free_text("contact", 200)?,
        }),
        "resume" => {
            let last_seq = f.whole_number("last_seq", 0..=u64::MAX, "invalid_field")?;
            Ok(ClientMessage::Resume {
                last_seq: f.required(last_seq, "last_seq")?,
                epoch: f.text("epoch")?,
            })
        }
        "ping" => Ok(ClientMessage::Ping { t: f.signed("t")? }),
        "place_order" => {
            let quantity = f.whole_number(
                "quantity",
                1..=MAX_ORDER_QUANTITY as u64,
                "quantity_too_large",
            )?;
            let quantity = f.required(quantity, "quantity")? as u32;
            Ok(ClientMessage::PlaceOrder {
                product_id: f.token("product_id", 64)?,
                quantity,
                key: f.token("key", MAX_KEY_LEN)?,
            })
        }
        "grab" => Ok(ClientMessage::Grab {
            sale_id: f.token("sale_id", 64)?,
            key: f.token("key", MAX_KEY_LEN)?,
        }),
        "enter_draw" => Ok(ClientMessage::EnterDraw {
            draw_id: f.token("draw_id", 64)?,
        }),
        "grab_red_packet" => Ok(ClientMessage::GrabRedPacket {
            packet_id: f.token("packet_id", 64)?,
        }),
        "product_view" => Ok(ClientMessage::ProductView {
            product_id: f.token("product_id", 64)?,
        }),
        "product_click" => Ok(ClientMessage::ProductClick {
            product_id: f.token("product_id", 64)?,
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
        assert_eq!(
            parse_client_message(r#"{"type":"product_view","product_id":"p3"}"#).unwrap(),
            ClientMessage::ProductView {
                product_id: "p3".into()
            }
        );
        assert_eq!(
            parse_client_message(r#"{"type":"product_click","product_id":"p3"}"#).unwrap(),
            ClientMessage::ProductClick {
                product_id: "p3".into()
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
        assert_eq!(e(r#"{"type":"product_view"}"#), "missing_field");
        assert_eq!(
            e(r#"{"type":"product_click","product_id":"a b"}"#),
            "invalid_field"
        );
        assert_eq!(e(r#"{"type":"product_view","product_id":7}"#), "bad_json");
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
        assert_eq!(e(r#"{"type":"like","count":-1}"#), "invalid_field");
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
            "quantity_too_large"
        );
        assert_eq!(
            e(r#"{"type":"place_order","product_id":"p1","quantity":-3,"key":"k"}"#),
            "invalid_field"
        );
        assert_eq!(e(r#"{"type":"enter_draw"}"#), "missing_field");
    }

    // Defect: a JSON array or a bare string was answered with serde's `expected struct Raw`.
    #[test]
    fn a_message_that_is_not_an_object_is_refused_in_the_clients_terms() {
        for text in ["[1,2]", r#""hello""#, "42", "null", "true"] {
            let err = parse_client_message(text).unwrap_err();
            assert_eq!(err.code, "bad_json", "{text}");
            assert!(
                err.message
                    .contains("a message must be a JSON object with a `type` field"),
                "{text}: {}",
                err.message
            );
            assert!(!err.message.contains("struct"), "{}", err.message);
        }
    }

    // Defect: `quantity` 4294967296 was answered "must be a positive whole number", without
    // the limit; other numeric fields leaked serde's wording.
    #[test]
    fn a_number_out_of_range_is_answered_with_the_fields_actual_range() {
        let refused = |s: &str| parse_client_message(s).unwrap_err();
        let order = |q: &str| {
            format!(r#"{{"type":"place_order","product_id":"p1","quantity":{q},"key":"k"}}"#)
        };
        for q in ["4294967296", "1000001", "99999999999999999999"] {
            let err = refused(&order(q));
            assert_eq!(err.code, "quantity_too_large", "{q}");
            assert!(
                err.message
                    .contains("`quantity` must be a whole number from 1 to 1000000"),
                "{q}: {}",
                err.message
            );
        }
        for q in ["0", "-3", "1.5"] {
            let err = refused(&order(q));
            assert_eq!(err.code, "invalid_field", "{q}");
            assert!(err.message.contains("from 1 to 1000000"), "{}", err.message);
        }
        for c in ["4294967296", "0", "-1", "2.5"] {
            let err = refused(&format!(r#"{{"type":"like","count":{c}}}"#));
            assert_eq!(err.code, "invalid_field", "{c}");
            assert!(
                err.message
                    .contains("`count` must be a whole number from 1 to 100"),
                "{c}: {}",
                err.message
            );
        }
        let err = refused(r#"{"type":"resume","last_seq":-1}"#);
        assert_eq!(err.code, "invalid_field");
        assert!(err.message.contains("`last_seq`"), "{}", err.message);
        let err = refused(r#"{"type":"ping","t":"soon"}"#);
        assert_eq!(err.code, "bad_json");
        assert!(
            err.message.contains("`t` must be a number"),
            "{}",
            err.message
        );
        let err = refused(&order(r#""12""#));
        assert_eq!(err.code, "bad_json");
        assert!(
            err.message.contains("`quantity` must be a number"),
            "{}",
            err.message
        );
    }

    // Defect: `grab` refused a `quantity` it does not use (any value serde could not fit).
    #[test]
    fn fields_a_message_type_does_not_use_are_ignored_whatever_their_value() {
        for extra in [
            r#""quantity":2"#,
            r#""quantity":-1"#,
            r#""quantity":"two""#,
            r#""quantity":4294967296"#,
            r#""count":[1]"#,
            r#""text":{"a":1}"#,
        ] {
            let grab = format!(r#"{{"type":"grab","sale_id":"s1","key":"k-1",{extra}}}"#);
            assert_eq!(
                parse_client_message(&grab),
                Ok(ClientMessage::Grab {
                    sale_id: "s1".into(),
                    key: "k-1".into()
                }),
                "{grab}"
            );
        }
        assert_eq!(
            parse_client_message(r#"{"type":"chat","text":"hi","quantity":-1,"count":"x"}"#),
            Ok(ClientMessage::Chat { text: "hi".into() })
        );
    }

    #[test]
    fn keys_are_read_as_json_says_whatever_their_order_spelling_or_repetition() {
        let chat = |text: &str| Ok(ClientMessage::Chat { text: text.into() });
        // A repeated key keeps its last value; an escaped key is the same key.
        assert_eq!(
            parse_client_message(r#"{"type":"chat","text":"a","text":"b"}"#),
            chat("b")
        );
        assert_eq!(
            parse_client_message(r#"{"t\u0065xt":"c","typ\u0065":"chat"}"#),
            chat("c")
        );
        // Fields no message reads are skipped whatever they hold (1e400 is valid JSON, only
        // too large for a double).
        assert_eq!(
            parse_client_message(
                r#"{"extra":{"deep":[1,{"x":null}]},"type":"chat","text":"d","n":1e400}"#
            ),
            chat("d")
        );
        let err = parse_client_message(r#"{"type":"chat","text":"e""#).unwrap_err();
        assert_eq!(err.code, "bad_json");
        assert!(!err.message.contains("Raw"), "{}", err.message);
    }

    // Defect: chat of invisible characters only was broadcast, and bidi overrides passed.
    #[test]
    fn text_of_only_invisible_characters_is_refused_and_bidi_controls_are_stripped() {
        for text in [
            r"\u200b",
            r"\u200b\u200c\u200d",
            r"\ufeff \u2060",
            r"\u00ad\u180e\u3164",
            r"\u202e\u2066\u2069",
        ] {
            let err =
                parse_client_message(&format!(r#"{{"type":"chat","text":"{text}"}}"#)).unwrap_err();
            assert_eq!(err.code, "invalid_field", "{text}");
            assert!(err.message.contains("visible"), "{}", err.message);
        }
        assert_eq!(
            parse_client_message(r#"{"type":"chat","text":"abc\u202edef\u2066g\u2069"}"#),
            Ok(ClientMessage::Chat {
                text: "abcdefg".into()
            })
        );
        // A joiner inside an emoji sequence stays: it is not the whole message.
        assert_eq!(
            parse_client_message(r#"{"type":"chat","text":"\ud83d\udc68\u200d\ud83d\udc69"}"#),
            Ok(ClientMessage::Chat {
                text: "\u{1F468}\u{200D}\u{1F469}".into()
            })
        );
        let app = |company: &str| {
            parse_client_message(&format!(
                r#"{{"type":"dealer_application","company":"{company}","licence_number":"L1","contact":"c"}}"#
            ))
        };
        assert_eq!(app(r"\u200b\u200b").unwrap_err().code, "invalid_field");
        assert_eq!(
            app(r"Acme\u202e Trading"),
            Ok(ClientMessage::DealerApplication {
                company: "Acme Trading".into(),
                licence_number: "L1".into(),
                contact: "c".into()
            })
        );
    }
}
