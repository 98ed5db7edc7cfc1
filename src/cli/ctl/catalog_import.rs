//! `showfloor ctl import-catalog`'s text: bad rows on stderr, else the brands and products.

use std::fmt::Write as _;

use super::registration::row_errors;
use super::text::prices_text;
use crate::pb::*;

/// Every bad row on stderr (nothing was written then); else a line per new brand and per
/// product, and a count.
pub(super) fn import_text(s: &mut String, r: &ImportCatalogResponse) {
    if row_errors(&r.errors) {
        return;
    }
    let dry = r.dry_run;
    for b in &r.new_brands {
        let id = if b.id.is_empty() { "-" } else { b.id.as_str() };
        let _ = writeln!(
            s,
            "{} brand {id}  \"{}\"  position {}",
            if dry { "would add" } else { "added" },
            b.name,
            b.position
        );
    }
    let mut updated = 0;
    for p in &r.products {
        let Some(product) = &p.product else { continue };
        updated += usize::from(p.existing);
        let id = if product.id.is_empty() {
            "-"
        } else {
            product.id.as_str()
        };
        let _ = writeln!(
            s,
            "line {}  {id}  brand \"{}\"  \"{}\"  moq {}  images {}  prices(cents) {}{}",
            p.line,
            p.brand_name,
            product.name,
            product.min_order_quantity,
            product.image_urls.len(),
            prices_text(&product.prices),
            if p.existing { "  (updated)" } else { "" },
        );
    }
    let verb = if dry {
        "would be imported (dry run: nothing written)"
    } else {
        "imported"
    };
    let _ = writeln!(
        s,
        "{} product(s) {verb}: {} new, {updated} updated; {} new brand(s)",
        r.products.len(),
        r.products.len() - updated,
        r.new_brands.len()
    );
}
