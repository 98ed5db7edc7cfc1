//! Phone numbers: normalised to E.164 with libphonenumber's metadata (the `phonenumber`
//! crate), a room's default country for numbers typed without `+`.

use phonenumber::country;
use phonenumber::Mode;
use std::str::FromStr;

/// Longer input is refused before it reaches the parser (the longest E.164 number has 15
/// digits; room for spaces, dashes and brackets).
const MAX_INPUT: usize = 32;

/// Checks a room's default phone country: empty, or an ISO 3166 code the metadata knows.
pub fn check_country(code: &str) -> Result<(), String> {
    if code.is_empty() || country_id(code).is_some() {
        Ok(())
    } else {
        Err(format!(
            "phone_country {code:?} is not a country code with phone-number rules (e.g. CN, DE, US)"
        ))
    }
}

fn country_id(code: &str) -> Option<country::Id> {
    if code.len() != 2 || !code.bytes().all(|b| b.is_ascii_uppercase()) {
        return None;
    }
    country::Id::from_str(code).ok()
}

/// The number in E.164 (`+8613800138000`), or why it is not a valid number, in the
/// registrant's terms.
pub fn normalise(raw: &str, default_country: &str) -> Result<String, String> {
    let raw = raw.trim();
    if raw.is_empty() {
        return Err("phone is required".into());
    }
    if raw.chars().count() > MAX_INPUT {
        return Err(format!("phone must be at most {MAX_INPUT} characters"));
    }
    if !raw
        .chars()
        .all(|c| c.is_ascii_digit() || matches!(c, '+' | ' ' | '-' | '(' | ')' | '.'))
    {
        return Err("phone may contain only digits, spaces, + - ( ) and .".into());
    }
    let country = country_id(default_country);
    if country.is_none() && !raw.starts_with('+') && !raw.starts_with("00") {
        return Err(
            "phone must be in international form, starting with + and the country code".into(),
        );
    }
    let refusal = || match country {
        Some(c) if !raw.starts_with('+') && !raw.starts_with("00") => format!(
            "phone is not a valid number for {} (add + and the country code for another country)",
            c.as_ref()
        ),
        _ => "phone is not a valid number".to_string(),
    };
    // The parser is third-party code fed by anyone: a panic in it must not take the request
    // (or a test) down, only refuse the number.
    let parsed = std::panic::catch_unwind(|| phonenumber::parse(country, raw))
        .map_err(|_| refusal())?
        .map_err(|_| refusal())?;
    if !phonenumber::is_valid(&parsed) {
        return Err(refusal());
    }
    Ok(parsed.format().mode(Mode::E164).to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn national_numbers_take_the_room_country() {
        assert_eq!(normalise("138 0013 8000", "CN").unwrap(), "+8613800138000");
        assert_eq!(
            normalise("+86 138-0013-8000", "CN").unwrap(),
            "+8613800138000"
        );
        assert_eq!(normalise("+49 30 901820", "CN").unwrap(), "+4930901820");
        assert_eq!(normalise("030 901820", "DE").unwrap(), "+4930901820");
    }

    #[test]
    fn bad_numbers_are_refused_in_plain_words() {
        assert!(normalise("", "CN").unwrap_err().contains("required"));
        assert!(normalise("12345", "CN")
            .unwrap_err()
            .contains("not a valid number for CN"));
        assert!(normalise("13800138000", "")
            .unwrap_err()
            .contains("international"));
        assert!(normalise("abc", "CN").unwrap_err().contains("only digits"));
        assert!(normalise(&"1".repeat(40), "CN")
            .unwrap_err()
            .contains("at most"));
        assert!(normalise("+999 1234", "CN").is_err());
    }

    #[test]
    fn countries_must_have_phone_rules() {
        assert!(check_country("CN").is_ok());
        assert!(check_country("").is_ok());
        assert!(check_country("XX").is_err());
        assert!(check_country("cn").is_err());
    }
}
