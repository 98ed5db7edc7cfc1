//! A product catalogue as CSV, checked apart from any room or store: each row becomes the
//! `UpsertProduct` it stands for and is judged by the room's own product checks
//! (`room::core::product_problems`), so a file that passes here passes in the room. Every bad
//! row is reported with its line, column and reason.

use crate::model::{Brand, Product, ProductInput};
use crate::registration::import::{line_at, row_error, RowError};
use crate::room::core::{
    check_brand_name, product_problems, ProductField, MAX_BRANDS, MAX_PRODUCTS,
};
use std::collections::HashMap;

/// Largest file accepted, in bytes (under the gRPC message limit of 4 MiB) and rows.
pub const MAX_BYTES: usize = 3 << 20;
pub const MAX_ROWS: usize = MAX_PRODUCTS;

/// The columns every catalogue has, besides one `price_<tier>` per tier of the room.
pub const COLUMNS: [&str; 6] = [
    "brand",
    "name",
    "description",
    "image_urls",
    "link",
    "min_order_quantity",
];
const PRICE_PREFIX: &str = "price_";
const BRAND: usize = 0;
const NAME: usize = 1;
const DESCRIPTION: usize = 2;
const IMAGE_URLS: usize = 3;
const LINK: usize = 4;
const MOQ: usize = 5;

/// The brand a row goes to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BrandOf {
    /// A brand of the room, by id.
    Existing(String),
    /// The brand at this index of [`CatalogPlan::new_brands`], to be added first.
    New(usize),
}

/// One good row: the product it makes or updates.
#[derive(Debug, Clone)]
pub struct PlannedProduct {
    pub line: u32,
    pub brand: BrandOf,
    /// The brand's name as the room has it (or as the file spells a new one).
    pub brand_name: String,
    /// What to send as `UpsertProduct`: `product_id` is set when the row updates a product
    /// of the room; `brand_id` is empty for a new brand. Prices in the room's tier order.
    pub input: ProductInput,
}

/// A checked catalogue: usable only if `errors` is empty.
#[derive(Debug, Clone, Default)]
pub struct CatalogPlan {
    pub products: Vec<PlannedProduct>,
    /// Brands the file names that the room does not have, in order of first appearance: they
    /// are added at the end of the running order.
    pub new_brands: Vec<String>,
    pub errors: Vec<RowError>,
}

/// How names are matched: trimmed, in any case.
fn key(name: &str) -> String {
    name.trim().to_lowercase()
}

/// Parses and checks a catalogue for a room with `tiers`, `brands` and `products`.
pub fn plan_catalog(
    csv_text: &str,
    tiers: &[String],
    brands: &[Brand],
    products: &[Product],
) -> CatalogPlan {
    let mut plan = CatalogPlan::default();
    if csv_text.len() > MAX_BYTES {
        plan.errors.push(row_error(
            0,
            "",
            format!("the file is larger than {} MiB", MAX_BYTES >> 20),
        ));
        return plan;
    }
    let mut reader = csv::ReaderBuilder::new()
        .has_headers(true)
        .flexible(true)
        .trim(csv::Trim::All)
        .from_reader(csv_text.as_bytes());
    let header = match Header::read(&mut reader, tiers) {
        Ok(h) => h,
        Err(errors) => {
            plan.errors = errors;
            return plan;
        }
    };
    let brand_by_name: HashMap<String, &Brand> =
        brands.iter().rev().map(|b| (key(&b.name), b)).collect();
    let product_by_name: HashMap<(String, String), &Product> = products
        .iter()
        .rev()
        .map(|p| ((p.brand_id.clone(), key(&p.name)), p))
        .collect();
    let mut new_brand_index: HashMap<String, usize> = HashMap::new();
    let mut first_line_of: HashMap<(String, String), u32> = HashMap::new();
    let mut rows = 0;
    for record in reader.records() {
        let record = match record {
            Ok(r) => r,
            Err(e) => {
                let line = e.position().map(|p| line_at(csv_text, p)).unwrap_or(0);
                plan.errors
                    .push(row_error(line, "", format!("not readable as CSV: {e}")));
                continue;
            }
        };
        let line = record.position().map(|p| line_at(csv_text, p)).unwrap_or(0);
        if record.iter().all(str::is_empty) {
            continue;
        }
        rows += 1;
        if rows > MAX_ROWS {
            plan.errors.push(row_error(
                line,
                "",
                format!("more than {MAX_ROWS} product rows: split the catalogue"),
            ));
            break;
        }
        if record.len() != header.width {
            plan.errors.push(row_error(
                line,
                "",
                format!(
                    "has {} columns, expected {} (as the header)",
                    record.len(),
                    header.width
                ),
            ));
            continue;
        }
        let errors_before = plan.errors.len();
        let get = |c: usize| record.get(header.fixed[c]).unwrap_or("");
        let mut input = ProductInput {
            product_id: None,
            brand_id: String::new(),
            name: get(NAME).to_string(),
            description: get(DESCRIPTION).replace("\r\n", "\n"),
            image_urls: get(IMAGE_URLS)
                .split(|c: char| c == '|' || c.is_whitespace())
                .filter(|u| !u.is_empty())
                .map(str::to_string)
                .collect(),
            link: get(LINK).to_string(),
            min_order_quantity: 1,
            prices: Vec::with_capacity(tiers.len()),
        };
        // Fields that did not parse: the room's checks of them would only repeat that.
        let mut unparsed: Vec<ProductField> = Vec::new();
        match parse_quantity(get(MOQ)) {
            Ok(q) => input.min_order_quantity = q,
            Err(m) => {
                plan.errors.push(row_error(line, COLUMNS[MOQ], m));
                unparsed.push(ProductField::MinOrderQuantity);
            }
        }
        for (tier, at) in &header.prices {
            match parse_cents(record.get(*at).unwrap_or("")) {
                Ok(c) => input.prices.push((tier.clone(), c)),
                Err(m) => {
                    plan.errors
                        .push(row_error(line, &format!("{PRICE_PREFIX}{tier}"), m));
                    unparsed.push(ProductField::Price(tier.clone()));
                }
            }
        }
        for p in product_problems(&input, tiers) {
            if !unparsed.contains(&p.field) {
                plan.errors
                    .push(row_error(line, &column_of(&p.field), p.message));
            }
        }
        let brand_name = get(BRAND);
        let brand = match check_brand_name("brand", brand_name) {
            Err(e) => {
                plan.errors.push(row_error(line, "brand", e.to_string()));
                None
            }
            Ok(()) => match brand_by_name.get(&key(brand_name)) {
                Some(b) => Some((BrandOf::Existing(b.id.clone()), b.name.clone())),
                None => {
                    let next = plan.new_brands.len();
                    let i = *new_brand_index.entry(key(brand_name)).or_insert(next);
                    if i == next {
                        if brands.len() + next >= MAX_BRANDS {
                            plan.errors.push(row_error(
                                line,
                                "brand",
                                format!(
                                    "brand {:?} would be brand {} of the room; a room has at \
                                     most {MAX_BRANDS} brands",
                                    brand_name.trim(),
                                    brands.len() + next + 1
                                ),
                            ));
                        }
                        plan.new_brands.push(brand_name.trim().to_string());
                    }
                    Some((BrandOf::New(i), plan.new_brands[i].clone()))
                }
            },
        };
        let Some((brand, brand_name)) = brand else {
            continue;
        };
        let same = (key(&brand_name), key(&input.name));
        if let Some(first) = first_line_of.get(&same) {
            plan.errors.push(row_error(
                line,
                "name",
                format!("the same brand and name as line {first}"),
            ));
        } else {
            first_line_of.insert(same, line);
        }
        if plan.errors.len() > errors_before {
            continue;
        }
        if let BrandOf::Existing(id) = &brand {
            input.brand_id = id.clone();
            input.product_id = product_by_name
                .get(&(id.clone(), key(&input.name)))
                .map(|p| p.id.clone());
        }
        input.name = input.name.trim().to_string();
        plan.products.push(PlannedProduct {
            line,
            brand,
            brand_name,
            input,
        });
    }
    if rows == 0 && plan.errors.is_empty() {
        plan.errors
            .push(row_error(0, "", "the file has no product rows"));
    }
    let added = plan
        .products
        .iter()
        .filter(|p| p.input.product_id.is_none())
        .count();
    if products.len() + added > MAX_PRODUCTS {
        plan.errors.push(row_error(
            0,
            "",
            format!(
                "the room has {} products and the file adds {added}; a room has at most \
                 {MAX_PRODUCTS}",
                products.len()
            ),
        ));
    }
    plan
}

/// The CSV column of a product field.
fn column_of(f: &ProductField) -> String {
    match f {
        ProductField::Name => "name".into(),
        ProductField::Description => "description".into(),
        ProductField::ImageUrls => "image_urls".into(),
        ProductField::Link => "link".into(),
        ProductField::MinOrderQuantity => "min_order_quantity".into(),
        ProductField::Price(t) => format!("{PRICE_PREFIX}{t}"),
    }
}

/// The positions of the columns in the header.
struct Header {
    fixed: [usize; 6],
    /// (tier, column) in the room's tier order.
    prices: Vec<(String, usize)>,
    width: usize,
}

impl Header {
    /// Reads the header: every problem with it (unknown, repeated or missing columns).
    fn read(reader: &mut csv::Reader<&[u8]>, tiers: &[String]) -> Result<Header, Vec<RowError>> {
        let header = reader
            .headers()
            .map_err(|e| {
                vec![row_error(
                    1,
                    "",
                    format!("the header is not readable as CSV: {e}"),
                )]
            })?
            .clone();
        let names: Vec<String> = header
            .iter()
            .map(|h| h.trim_start_matches('\u{feff}').to_ascii_lowercase())
            .collect();
        let expected = || {
            let prices: Vec<String> = tiers.iter().map(|t| format!("{PRICE_PREFIX}{t}")).collect();
            format!("{},{}", COLUMNS.join(","), prices.join(","))
        };
        let mut errors = Vec::new();
        for (i, h) in names.iter().enumerate() {
            let known = COLUMNS.contains(&h.as_str())
                || h.strip_prefix(PRICE_PREFIX)
                    .is_some_and(|t| tiers.iter().any(|x| x == t));
            if !known {
                let why = match h.strip_prefix(PRICE_PREFIX) {
                    Some(t) => format!(
                        "column {h:?}: {t:?} is not a tier of this room ({})",
                        tiers.join(", ")
                    ),
                    None => format!("unknown column {h:?}: the header must be {}", expected()),
                };
                errors.push(row_error(1, h, why));
            } else if names[..i].contains(h) {
                errors.push(row_error(1, h, format!("column {h:?} appears twice")));
            }
        }
        let position = |c: &str| names.iter().position(|h| h == c);
        let mut fixed = [0; 6];
        for (i, c) in COLUMNS.iter().enumerate() {
            match position(c) {
                Some(at) => fixed[i] = at,
                None => errors.push(row_error(
                    1,
                    c,
                    format!("the header has no {c} column: it must be {}", expected()),
                )),
            }
        }
        let mut prices = Vec::with_capacity(tiers.len());
        for t in tiers {
            let c = format!("{PRICE_PREFIX}{t}");
            match position(&c) {
                Some(at) => prices.push((t.clone(), at)),
                None => errors.push(row_error(
                    1,
                    &c,
                    format!("the header has no {c} column: one price column per tier of the room"),
                )),
            }
        }
        if errors.is_empty() {
            Ok(Header {
                fixed,
                prices,
                width: names.len(),
            })
        } else {
            Err(errors)
        }
    }
}

/// A minimum order quantity: a whole number (the room checks its range).
fn parse_quantity(v: &str) -> Result<u32, String> {
    if v.is_empty() {
        return Err("min_order_quantity is required (a whole number, at least 1)".into());
    }
    if !v.bytes().all(|b| b.is_ascii_digit()) {
        return Err(format!("{v:?} is not a whole number"));
    }
    // Too many digits for u32: beyond the room's limit anyway, which says so.
    Ok(v.parse().unwrap_or(u32::MAX))
}

/// A price in currency units with at most two decimals (`12.50`, `12.5`, `12`) to cents.
pub fn parse_cents(v: &str) -> Result<i64, String> {
    if v.is_empty() {
        return Err("a price is required (like 12.50)".into());
    }
    let bad = || {
        format!("{v:?} is not a price: write it like 12.50 (digits, a dot, at most two decimals, no currency sign)")
    };
    let (whole, frac) = match v.split_once('.') {
        Some((w, f)) if !f.is_empty() => (w, f),
        Some(_) => return Err(bad()),
        None => (v, ""),
    };
    if whole.is_empty()
        || frac.len() > 2
        || !whole
            .bytes()
            .chain(frac.bytes())
            .all(|b| b.is_ascii_digit())
    {
        return Err(bad());
    }
    let frac_cents = match frac.len() {
        0 => 0,
        1 => frac.parse::<i64>().map_err(|_| bad())? * 10,
        _ => frac.parse::<i64>().map_err(|_| bad())?,
    };
    whole
        .parse::<i64>()
        .ok()
        .and_then(|w| w.checked_mul(100))
        .and_then(|c| c.checked_add(frac_cents))
        .ok_or_else(|| format!("{v:?} is too large a price"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tiers() -> Vec<String> {
        vec!["gold".into(), "silver".into()]
    }

    fn brands() -> Vec<Brand> {
        vec![Brand {
            id: "b1".into(),
            logo_url: String::new(),
            name: "Acme".into(),
            position: 0,
        }]
    }

    fn jacket() -> Product {
        Product {
            id: "p2".into(),
            brand_id: "b1".into(),
            name: "Down Jacket".into(),
            description: String::new(),
            image_urls: Vec::new(),
            link: "https://shop.example/j".into(),
            min_order_quantity: 1,
            prices: vec![("gold".into(), 100), ("silver".into(), 200)],
        }
    }

    const HEADER: &str =
        "brand,name,description,image_urls,link,min_order_quantity,price_gold,price_silver\n";

    #[test]
    fn prices_are_decimal_currency() {
        assert_eq!(parse_cents("12.50"), Ok(1250));
        assert_eq!(parse_cents("12.5"), Ok(1250));
        assert_eq!(parse_cents("12"), Ok(1200));
        assert_eq!(parse_cents("0.07"), Ok(7));
        for bad in ["", "12.", ".5", "12.505", "-1", "1,200", "¥12", "1e3"] {
            assert!(parse_cents(bad).is_err(), "{bad}");
        }
        assert!(parse_cents("99999999999999999999").is_err());
    }

    #[test]
    fn good_rows_match_brands_and_products_by_name() {
        let csv = format!(
            "{HEADER}acme , down jacket,Warm,https://i.example/1.jpg | https://i.example/2.jpg,https://shop.example/j,10,259,279.9\n\
             \n\
             Nova,Scarf,\"Two\r\nlines\",,https://shop.example/s,1,12.50,13\n\
             nova,Hat,,https://i.example/h.jpg https://i.example/h2.jpg,https://shop.example/h,2,5,6\n"
        );
        let plan = plan_catalog(&csv, &tiers(), &brands(), &[jacket()]);
        assert!(plan.errors.is_empty(), "{:?}", plan.errors);
        assert_eq!(plan.new_brands, vec!["Nova".to_string()]);
        let p = &plan.products;
        assert_eq!(p.len(), 3);
        // The scarf's description spans lines 4 and 5.
        assert_eq!((p[0].line, p[1].line, p[2].line), (2, 4, 6));
        assert_eq!(p[0].brand, BrandOf::Existing("b1".into()));
        assert_eq!(p[0].brand_name, "Acme");
        assert_eq!(p[0].input.product_id.as_deref(), Some("p2"));
        assert_eq!(p[0].input.image_urls.len(), 2);
        assert_eq!(
            p[0].input.prices,
            vec![("gold".into(), 25900), ("silver".into(), 27990)]
        );
        assert_eq!(
            (&p[1].brand, &p[2].brand),
            (&BrandOf::New(0), &BrandOf::New(0))
        );
        assert_eq!(p[1].input.description, "Two\nlines");
        assert_eq!(p[1].input.product_id, None);
        assert_eq!(p[2].input.image_urls.len(), 2);
    }

    #[test]
    fn every_bad_row_is_reported_with_its_line_and_column() {
        let csv = format!(
            "{HEADER}Acme,Ok,,,https://shop.example/ok,1,1,2\n\
             Acme,Cheap,,,https://shop.example/c,1,abc,2\n\
             Acme,,,,https://shop.example/n,1,1,2\n\
             Acme,Url,,ftp://x,https://shop.example/u,1,1,2\n\
             Acme,Moq,,,https://shop.example/m,0,1,2\n\
             ,NoBrand,,,https://shop.example/b,1,1,2\n\
             Acme,ok,,,https://shop.example/ok,1,1,2\n\
             Acme,Short,1\n\
             Acme,Two,,,not a url,x,,2\n"
        );
        let plan = plan_catalog(&csv, &tiers(), &brands(), &[]);
        let got: Vec<(u32, &str)> = plan
            .errors
            .iter()
            .map(|e| (e.line, e.field.as_str()))
            .collect();
        assert_eq!(
            got,
            vec![
                (3, "price_gold"),
                (4, "name"),
                (5, "image_urls"),
                (6, "min_order_quantity"),
                (7, "brand"),
                (8, "name"),
                (9, ""),
                (10, "min_order_quantity"),
                (10, "price_gold"),
                (10, "link"),
            ]
        );
        assert!(plan.errors[1].reason.contains("name must be 1 to 200"));
        assert!(plan.errors[5].reason.contains("line 2"));
    }

    #[test]
    fn the_header_names_every_problem() {
        let plan = plan_catalog(
            "brand,name,link,colour,price_gold,price_platinum,price_gold\n",
            &tiers(),
            &[],
            &[],
        );
        let fields: Vec<&str> = plan.errors.iter().map(|e| e.field.as_str()).collect();
        assert_eq!(
            fields,
            vec![
                "colour",
                "price_platinum",
                "price_gold",
                "description",
                "image_urls",
                "min_order_quantity",
                "price_silver"
            ]
        );
        assert!(plan.errors.iter().all(|e| e.line == 1));
    }

    #[test]
    fn limits_are_checked_before_anything_is_written() {
        let mut csv = HEADER.to_string();
        for i in 0..=MAX_ROWS {
            csv.push_str(&format!("Acme,P{i},,,https://s.example/{i},1,1,1\n"));
        }
        let plan = plan_catalog(&csv, &tiers(), &brands(), &[]);
        assert_eq!(plan.errors.len(), 1, "{:?}", plan.errors);
        assert_eq!(plan.errors[0].line, MAX_ROWS as u32 + 2);

        let many: Vec<Brand> = (0..MAX_BRANDS - 1)
            .map(|i| Brand {
                id: format!("b{i}"),
                logo_url: String::new(),
                name: format!("B{i}"),
                position: i as u32,
            })
            .collect();
        let csv = format!(
            "{HEADER}New1,A,,,https://s.example/a,1,1,1\nNew2,B,,,https://s.example/b,1,1,1\n"
        );
        let plan = plan_catalog(&csv, &tiers(), &many, &[]);
        assert_eq!(plan.errors.len(), 1, "{:?}", plan.errors);
        assert_eq!(
            (plan.errors[0].line, plan.errors[0].field.as_str()),
            (3, "brand")
        );
        assert!(plan_catalog(HEADER, &tiers(), &[], &[]).errors[0]
            .reason
            .contains("no product rows"));
    }
}
