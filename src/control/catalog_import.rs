//! `ImportCatalog`: a catalogue CSV checked whole against the room (`crate::catalog_import`),
//! then written through the room's own commands (`AddBrand`, `UpsertProduct`).

use super::convert::*;
use super::*;
use crate::catalog_import::{plan_catalog, BrandOf};
use crate::model::*;

pub(super) async fn import_catalog(
    hub: Arc<dyn Rooms>,
    r: pb::ImportCatalogRequest,
) -> Result<pb::ImportCatalogResponse, Status> {
    need("room_id", &r.room_id)?;
    if r.csv.trim().is_empty() {
        return Err(Status::invalid_argument(
            "csv is required: the text of the catalogue file, its header first",
        ));
    }
    let room = r.room_id.as_str();
    let s = summary(&*hub, room).await?;
    if s.record.state == RoomState::Ended {
        return Err(Status::failed_precondition(format!(
            "room {room} has ended; its catalogue can no longer be changed"
        )));
    }
    let products = match host(&*hub, room, HostCommand::ListProducts { brand_id: None }).await? {
        HostReply::Products(ps) => ps,
        _ => return Err(unexpected()),
    };
    let plan = plan_catalog(&r.csv, &s.record.tiers, &s.brands, &products);
    let mut response = pb::ImportCatalogResponse {
        errors: plan
            .errors
            .iter()
            .map(|e| pb::ImportRowError {
                line: e.line,
                field: e.field.clone(),
                reason: e.reason.clone(),
            })
            .collect(),
        products: Vec::new(),
        new_brands: Vec::new(),
        dry_run: r.dry_run,
    };
    if !plan.errors.is_empty() {
        return Ok(response);
    }
    if r.dry_run {
        let first_new = s.brands.len() as u32;
        response.new_brands = plan
            .new_brands
            .iter()
            .enumerate()
            .map(|(i, name)| pb::Brand {
                id: String::new(),
                room_id: room.to_string(),
                name: name.clone(),
                logo_url: String::new(),
                position: first_new + i as u32,
            })
            .collect();
        response.products = plan
            .products
            .iter()
            .map(|p| {
                let as_product = Product {
                    id: p.input.product_id.clone().unwrap_or_default(),
                    brand_id: p.input.brand_id.clone(),
                    name: p.input.name.clone(),
                    description: p.input.description.clone(),
                    image_urls: p.input.image_urls.clone(),
                    link: p.input.link.clone(),
                    min_order_quantity: p.input.min_order_quantity,
                    prices: p.input.prices.clone(),
                };
                pb::ImportedProduct {
                    line: p.line,
                    product: Some(product_pb(room, &as_product)),
                    brand_name: p.brand_name.clone(),
                    existing: p.input.product_id.is_some(),
                }
            })
            .collect();
        return Ok(response);
    }
    // Checked whole, so the room accepts each write unless the room changed meanwhile (a
    // product deleted, the room ended): then the error says which row stopped the import.
    // Rows update what they wrote, so running the same file again finishes the job.
    let mut new_brand_ids = Vec::with_capacity(plan.new_brands.len());
    for name in &plan.new_brands {
        let cmd = HostCommand::AddBrand {
            name: name.clone(),
            logo_url: String::new(),
            position: None,
        };
        match host(&*hub, room, cmd)
            .await
            .map_err(|e| stopped(e, &format!("adding brand {name:?}")))?
        {
            HostReply::Brand(b) => {
                new_brand_ids.push(b.id.clone());
                response.new_brands.push(brand_pb(room, &b));
            }
            _ => return Err(unexpected()),
        }
    }
    for p in plan.products {
        let existing = p.input.product_id.is_some();
        let mut input = p.input;
        if let BrandOf::New(i) = p.brand {
            input.brand_id = new_brand_ids[i].clone();
        }
        let written = match host(&*hub, room, HostCommand::UpsertProduct(input))
            .await
            .map_err(|e| stopped(e, &format!("writing the product of line {}", p.line)))?
        {
            HostReply::Product(w) => w,
            _ => return Err(unexpected()),
        };
        response.products.push(pb::ImportedProduct {
            line: p.line,
            product: Some(product_pb(room, &written)),
            brand_name: p.brand_name,
            existing,
        });
    }
    Ok(response)
}

/// A write the room refused part-way through (`at`: what it was doing) and what to do.
fn stopped(e: Status, at: &str) -> Status {
    Status::new(
        e.code(),
        format!(
            "the import stopped {at}: {}; the rows before it were written (importing the \
             same file again updates them rather than adding them twice)",
            e.message()
        ),
    )
}
