//! The catalog: brands in running order, products with tier prices, pinning.

use super::convert::*;
use super::*;
use crate::model::*;

pub(super) async fn add_brand(
    hub: Arc<dyn Rooms>,
    r: pb::AddBrandRequest,
) -> Result<pb::Brand, Status> {
    let cmd = HostCommand::AddBrand {
        name: r.name,
        logo_url: r.logo_url,
        position: r.position,
    };
    match host(&*hub, &r.room_id, cmd).await? {
        HostReply::Brand(b) => Ok(brand_pb(&r.room_id, &b)),
        _ => Err(unexpected()),
    }
}

pub(super) async fn update_brand(
    hub: Arc<dyn Rooms>,
    r: pb::UpdateBrandRequest,
) -> Result<pb::Brand, Status> {
    need("brand_id", &r.brand_id)?;
    let cmd = HostCommand::UpdateBrand {
        brand_id: r.brand_id,
        name: r.name,
        logo_url: r.logo_url,
        position: r.position,
    };
    match host(&*hub, &r.room_id, cmd).await? {
        HostReply::Brand(b) => Ok(brand_pb(&r.room_id, &b)),
        _ => Err(unexpected()),
    }
}

pub(super) async fn remove_brand(
    hub: Arc<dyn Rooms>,
    r: pb::BrandRef,
) -> Result<pb::Empty, Status> {
    need("brand_id", &r.brand_id)?;
    done(
        host(
            &*hub,
            &r.room_id,
            HostCommand::RemoveBrand {
                brand_id: r.brand_id,
            },
        )
        .await?,
    )
}

pub(super) async fn switch_brand(hub: Arc<dyn Rooms>, r: pb::BrandRef) -> Result<pb::Room, Status> {
    need("brand_id", &r.brand_id)?;
    room_reply(
        host(
            &*hub,
            &r.room_id,
            HostCommand::SwitchBrand {
                brand_id: r.brand_id,
            },
        )
        .await?,
    )
}

pub(super) async fn upsert_product(
    hub: Arc<dyn Rooms>,
    r: pb::UpsertProductRequest,
) -> Result<pb::Product, Status> {
    need("brand_id", &r.brand_id)?;
    let cmd = HostCommand::UpsertProduct(ProductInput {
        product_id: (!r.product_id.is_empty()).then_some(r.product_id),
        brand_id: r.brand_id,
        name: r.name,
        description: r.description,
        image_urls: r.image_urls,
        link: r.link,
        min_order_quantity: r.min_order_quantity,
        prices: r
            .prices
            .into_iter()
            .map(|p| (p.tier, p.price_cents))
            .collect(),
    });
    match host(&*hub, &r.room_id, cmd).await? {
        HostReply::Product(p) => Ok(product_pb(&r.room_id, &p)),
        _ => Err(unexpected()),
    }
}

pub(super) async fn remove_product(
    hub: Arc<dyn Rooms>,
    r: pb::ProductRef,
) -> Result<pb::Empty, Status> {
    need("product_id", &r.product_id)?;
    done(
        host(
            &*hub,
            &r.room_id,
            HostCommand::RemoveProduct {
                product_id: r.product_id,
            },
        )
        .await?,
    )
}

pub(super) async fn list_products(
    hub: Arc<dyn Rooms>,
    r: pb::ListProductsRequest,
) -> Result<pb::ListProductsResponse, Status> {
    let cmd = HostCommand::ListProducts {
        brand_id: (!r.brand_id.is_empty()).then_some(r.brand_id),
    };
    match host(&*hub, &r.room_id, cmd).await? {
        HostReply::Products(ps) => Ok(pb::ListProductsResponse {
            products: ps.iter().map(|p| product_pb(&r.room_id, p)).collect(),
        }),
        _ => Err(unexpected()),
    }
}

pub(super) async fn pin_product(
    hub: Arc<dyn Rooms>,
    r: pb::ProductRef,
) -> Result<pb::Empty, Status> {
    need("product_id", &r.product_id)?;
    done(
        host(
            &*hub,
            &r.room_id,
            HostCommand::PinProduct {
                product_id: r.product_id,
            },
        )
        .await?,
    )
}

pub(super) async fn unpin_product(
    hub: Arc<dyn Rooms>,
    r: pb::RoomRef,
) -> Result<pb::Empty, Status> {
    done(host(&*hub, &r.room_id, HostCommand::UnpinProduct).await?)
}
