//! The registration request body, parsed apart from the sockets: every refusal names the
//! field at fault.

use serde_json::{Map, Value};

/// Largest registration body accepted (larger: 413).
pub const MAX_BODY: usize = 4096;

/// What a registrant sent, trimmed; the phone is as typed (normalised later, with the
/// room's country).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RegistrationInput {
    pub name: String,
    pub company: String,
    pub phone: String,
    pub invite: Option<String>,
    pub channel: Option<String>,
}

/// A refusal of the body: the field at fault (`None`: the body as a whole) and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FieldError {
    pub field: Option<&'static str>,
    pub message: String,
}

impl FieldError {
    pub fn new(field: &'static str, message: impl Into<String>) -> FieldError {
        FieldError {
            field: Some(field),
            message: message.into(),
        }
    }

    fn body(message: impl Into<String>) -> FieldError {
        FieldError {
            field: None,
            message: message.into(),
        }
    }
}

const FIELDS: [&str; 5] = ["name", "company", "phone", "invite", "channel"];

/// Parses a body of `{name, company, phone, invite, channel}`.
pub fn parse(body: &[u8]) -> Result<RegistrationInput, FieldError> {
    let value: Value = serde_json::from_slice(body)
        .map_err(|e| FieldError::body(format!("the body is not JSON: {e}")))?;
    let Value::Object(obj) = value else {
        return Err(FieldError::body(
            "the body must be a JSON object {name, company, phone, invite, channel}",
        ));
    };
    if let Some(unknown) = obj.keys().find(|k| !FIELDS.contains(&k.as_str())) {
        return Err(FieldError::body(format!(
            "unknown field {unknown:?} (expected name, company, phone, invite, channel)"
        )));
    }
    let name = text(&obj, "name")?.unwrap_or_default();
    check_text("name", &name, 1, 64)?;
    let company = text(&obj, "company")?.unwrap_or_default();
    check_text("company", &company, 0, 128)?;
    let phone = text(&obj, "phone")?.unwrap_or_default();
    if phone.is_empty() {
        return Err(FieldError::new("phone", "phone is required"));
    }
    let invite = code(&obj, "invite")?;
    let channel = code(&obj, "channel")?;
    Ok(RegistrationInput {
        name,
        company,
        phone,
        invite,
        channel,
    })
}

/// A string field, trimmed; absent or null is `None`.
fn text(obj: &Map<String, Value>, field: &'static str) -> Result<Option<String>, FieldError> {
    match obj.get(field) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s.trim().to_string())),
        Some(_) => Err(FieldError::new(field, format!("{field} must be a string"))),
    }
}

/// Checks a display text: `min` to `max` characters, no control characters.
pub fn check_text(field: &'static str, v: &str, min: usize, max: usize) -> Result<(), FieldError> {
    let n = v.chars().count();
    if n < min {
        return Err(FieldError::new(field, format!("{field} is required")));
    }
    if n > max {
        return Err(FieldError::new(
            field,
            format!("{field} must be at most {max} characters"),
        ));
    }
    if v.chars().any(char::is_control) {
        return Err(FieldError::new(
            field,
            format!("{field} must not contain control characters"),
        ));
    }
    Ok(())
}

/// An invite or channel code: optional, 1 to 32 characters of a-z and 0-9.
fn code(obj: &Map<String, Value>, field: &'static str) -> Result<Option<String>, FieldError> {
    let Some(v) = text(obj, field)? else {
        return Ok(None);
    };
    if v.is_empty() {
        return Ok(None);
    }
    if !is_code(&v) {
        return Err(FieldError::new(
            field,
            format!("{field} must be a code of 1 to 32 letters and digits"),
        ));
    }
    Ok(Some(v.to_ascii_lowercase()))
}

/// Whether `v` has the shape of an invite or channel code.
pub fn is_code(v: &str) -> bool {
    (1..=32).contains(&v.len()) && v.bytes().all(|b| b.is_ascii_alphanumeric())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn field_of(body: &str) -> Option<&'static str> {
        parse(body.as_bytes()).unwrap_err().field
    }

    #[test]
    fn a_good_body_is_trimmed() {
        let r = parse(br#"{"name":" Ann ","company":"Acme","phone":"138 0013 8000","invite":"AbC12","channel":null}"#).unwrap();
        assert_eq!(r.name, "Ann");
        assert_eq!(r.invite.as_deref(), Some("abc12"));
        assert_eq!(r.channel, None);
    }

    #[test]
    fn each_bad_field_is_named() {
        assert_eq!(field_of(r#"{"phone":"1"}"#), Some("name"));
        assert_eq!(field_of(r#"{"name":"A"}"#), Some("phone"));
        assert_eq!(field_of(r#"{"name":5,"phone":"1"}"#), Some("name"));
        assert_eq!(
            field_of(r#"{"name":"A","phone":"1","invite":"no spaces"}"#),
            Some("invite")
        );
        let long = format!(
            r#"{{"name":"A","phone":"1","channel":"{}"}}"#,
            "x".repeat(40)
        );
        assert_eq!(field_of(&long), Some("channel"));
        assert_eq!(
            field_of(&format!(r#"{{"name":"{}","phone":"1"}}"#, "n".repeat(65))),
            Some("name")
        );
        assert_eq!(field_of(r#"{"name":"A\u0007","phone":"1"}"#), Some("name"));
        assert_eq!(field_of(r#"{"name":"A","phone":"1","extra":1}"#), None);
        assert_eq!(field_of("[1]"), None);
        assert_eq!(field_of("not json"), None);
    }
}
