//! A dealer list as CSV (`name,company,phone,tier`), checked row by row apart from any
//! store: every bad row is reported with its line number and reason.

use super::input::check_text;
use super::phone;
use std::collections::HashMap;

/// Largest list accepted, in bytes and rows.
pub const MAX_BYTES: usize = 4 << 20;
pub const MAX_ROWS: usize = 10_000;

const COLUMNS: [&str; 4] = ["name", "company", "phone", "tier"];

/// One good row: the phone in E.164.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DealerRow {
    pub line: u32,
    pub name: String,
    pub company: String,
    pub phone: String,
    pub tier: String,
}

/// One bad row (or the file as a whole, at line 0 or 1).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RowError {
    pub line: u32,
    /// The column at fault; empty for the row or the file.
    pub field: String,
    pub reason: String,
}

pub(crate) fn row_error(line: u32, field: &str, reason: impl Into<String>) -> RowError {
    RowError {
        line,
        field: field.into(),
        reason: reason.into(),
    }
}

/// Parses and checks a dealer list for a room with `tiers` and `phone_country`: the good
/// rows, and every bad one (the list is usable only if there are none).
pub fn parse_dealers(
    csv_text: &str,
    tiers: &[String],
    phone_country: &str,
) -> (Vec<DealerRow>, Vec<RowError>) {
    let mut rows = Vec::new();
    let mut errors = Vec::new();
    if csv_text.len() > MAX_BYTES {
        errors.push(row_error(
            0,
            "",
            format!("the file is larger than {} MiB", MAX_BYTES >> 20),
        ));
        return (rows, errors);
    }
    let mut reader = csv::ReaderBuilder::new()
        .has_headers(true)
        .flexible(true)
        .trim(csv::Trim::All)
        .from_reader(csv_text.as_bytes());
    let index = match header_index(&mut reader) {
        Ok(i) => i,
        Err(e) => return (rows, vec![e]),
    };
    let mut first_line_of_phone: HashMap<String, u32> = HashMap::new();
    for (n, record) in reader.records().enumerate() {
        if n >= MAX_ROWS {
            errors.push(row_error(0, "", format!("more than {MAX_ROWS} rows")));
            break;
        }
        let record = match record {
            Ok(r) => r,
            Err(e) => {
                let line = e.position().map(|p| line_at(csv_text, p)).unwrap_or(0);
                errors.push(row_error(line, "", format!("not readable as CSV: {e}")));
                continue;
            }
        };
        let line = record.position().map(|p| line_at(csv_text, p)).unwrap_or(0);
        if record.iter().all(str::is_empty) {
            continue;
        }
        if record.len() != COLUMNS.len() {
            errors.push(row_error(
                line,
                "",
                format!("has {} columns, expected {}", record.len(), COLUMNS.len()),
            ));
            continue;
        }
        let get = |c: usize| record.get(index[c]).unwrap_or("").to_string();
        let (name, company, raw_phone, tier) = (get(0), get(1), get(2), get(3));
        let mut bad = false;
        for (field, value, min, max) in [("name", &name, 1, 64), ("company", &company, 1, 200)] {
            if let Err(e) = check_text(field, value, min, max) {
                errors.push(row_error(line, field, e.message));
                bad = true;
            }
        }
        let phone = match phone::normalise(&raw_phone, phone_country) {
            Ok(p) => Some(p),
            Err(m) => {
                errors.push(row_error(line, "phone", m));
                bad = true;
                None
            }
        };
        if !tiers.contains(&tier) {
            errors.push(row_error(
                line,
                "tier",
                format!(
                    "tier {tier:?} is not a tier of this room ({})",
                    tiers.join(", ")
                ),
            ));
            bad = true;
        }
        if let Some(p) = &phone {
            if let Some(first) = first_line_of_phone.get(p) {
                errors.push(row_error(
                    line,
                    "phone",
                    format!("phone {p} is already on line {first}"),
                ));
                bad = true;
            } else {
                first_line_of_phone.insert(p.clone(), line);
            }
        }
        if let (false, Some(phone)) = (bad, phone) {
            rows.push(DealerRow {
                line,
                name,
                company,
                phone,
                tier,
            });
        }
    }
    if rows.is_empty() && errors.is_empty() {
        errors.push(row_error(0, "", "the file has no dealer rows"));
    }
    (rows, errors)
}

/// The 1-based line of the file where a record starts. Counted from its byte offset (past
/// any blank lines before it, which the reader's offset and own line count leave out).
pub(crate) fn line_at(text: &str, p: &csv::Position) -> u32 {
    let bytes = text.as_bytes();
    let mut start = (p.byte() as usize).min(bytes.len());
    while start < bytes.len() && matches!(bytes[start], b'\n' | b'\r') {
        start += 1;
    }
    1 + bytes[..start].iter().filter(|&&b| b == b'\n').count() as u32
}

/// The position of each expected column in the header.
fn header_index(reader: &mut csv::Reader<&[u8]>) -> Result<[usize; 4], RowError> {
    let header = reader
        .headers()
        .map_err(|e| row_error(1, "", format!("the header is not readable as CSV: {e}")))?
        .clone();
    let names: Vec<String> = header
        .iter()
        .map(|h| h.trim_start_matches('\u{feff}').to_ascii_lowercase())
        .collect();
    if let Some(extra) = names.iter().find(|h| !COLUMNS.contains(&h.as_str())) {
        return Err(row_error(
            1,
            "",
            format!("unknown column {extra:?}: the header must be name,company,phone,tier"),
        ));
    }
    let mut index = [0; 4];
    for (i, c) in COLUMNS.iter().enumerate() {
        index[i] = names.iter().position(|h| h == c).ok_or_else(|| {
            row_error(
                1,
                "",
                format!("the header has no {c} column: it must be name,company,phone,tier"),
            )
        })?;
    }
    Ok(index)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tiers() -> Vec<String> {
        vec!["gold".into(), "silver".into()]
    }

    #[test]
    fn good_rows_are_normalised() {
        let (rows, errors) = parse_dealers(
            "name,company,phone,tier\nWang,Wang Trading,138 0013 8000,gold\n\nLi,Li Co,+86 139 0013 9000,silver\n",
            &tiers(),
            "CN",
        );
        assert!(errors.is_empty(), "{errors:?}");
        assert_eq!(rows.len(), 2);
        assert_eq!(rows[0].phone, "+8613800138000");
        assert_eq!((rows[0].line, rows[1].line), (2, 4));
    }

    #[test]
    fn every_bad_row_is_reported_with_its_line() {
        let (_, errors) = parse_dealers(
            "phone,name,company,tier\n\
             12,A,B,gold\n\
             13800138000,,B,gold\n\
             13800138001,A,B,platinum\n\
             13800138001,A,B,gold\n\
             1,2\n",
            &tiers(),
            "CN",
        );
        let got: Vec<(u32, &str)> = errors.iter().map(|e| (e.line, e.field.as_str())).collect();
        assert_eq!(
            got,
            vec![
                (2, "phone"),
                (3, "name"),
                (4, "tier"),
                (5, "phone"),
                (6, "")
            ]
        );
    }

    #[test]
    fn a_wrong_header_is_one_error() {
        let (rows, errors) = parse_dealers("name,phone\nA,1\n", &tiers(), "CN");
        assert!(rows.is_empty());
        assert_eq!(errors.len(), 1);
        assert!(errors[0].reason.contains("company"), "{errors:?}");
        let (_, errors) = parse_dealers("name,company,phone,tier,email\n", &tiers(), "CN");
        assert!(errors[0].reason.contains("email"));
    }
}
