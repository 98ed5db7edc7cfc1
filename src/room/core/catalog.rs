//! The catalog: brands in their running order, products with a price per tier, the shelf, pinning.

use super::validate::{
    check_brand_name, check_url, invalid, one_price_per_tier, product_problems, MAX_BRANDS,
    MAX_PRODUCTS,
};
use super::{Output, Room};
use crate::model::*;
use crate::room::event::RoomEvent;

impl Room {
    /// The products of the brand on air.
    pub(super) fn shelf(&self) -> Vec<Product> {
        match &self.record.brand_on_air {
            Some(b) => self
                .products
                .iter()
                .filter(|p| &p.brand_id == b)
                .cloned()
                .collect(),
            None => Vec::new(),
        }
    }

    pub(super) fn brand(&self, id: &str) -> Result<&Brand, RoomError> {
        self.brands.iter().find(|b| b.id == id).ok_or_else(|| {
            RoomError::NotFound(format!("brand {id} not found in room {}", self.record.id))
        })
    }

    pub(super) fn product_index(&self, id: &str) -> Result<usize, RoomError> {
        self.products
            .iter()
            .position(|p| p.id == id)
            .ok_or_else(|| {
                RoomError::NotFound(format!("product {id} not found in room {}", self.record.id))
            })
    }

    pub(super) fn product_name(&self, product_id: &str) -> &str {
        self.products
            .iter()
            .find(|p| p.id == product_id)
            .map_or("", |p| p.name.as_str())
    }

    pub(super) fn list_products(&self, brand_id: Option<String>) -> Result<HostReply, RoomError> {
        if let Some(b) = &brand_id {
            self.brand(b)?;
        }
        Ok(HostReply::Products(
            self.products
                .iter()
                .filter(|p| brand_id.as_ref().is_none_or(|b| &p.brand_id == b))
                .cloned()
                .collect(),
        ))
    }

    /// Reorders the running order after a change and persists every moved brand.
    pub(super) fn renumber_brands(&mut self, out: &mut Vec<Output>) {
        for (i, b) in self.brands.iter_mut().enumerate() {
            if b.position != i as u32 {
                b.position = i as u32;
                out.push(Output::Persist(StoreOp::PutBrand {
                    room: self.record.id.clone(),
                    brand: Box::new(b.clone()),
                }));
            }
        }
    }

    pub(super) fn running_order_changed(&mut self, now: i64, out: &mut Vec<Output>) {
        self.renumber_brands(out);
        let brands = self.brands.clone();
        self.broadcast(RoomEvent::RunningOrder { brands }, now, out);
    }

    pub(super) fn add_brand(
        &mut self,
        name: String,
        logo_url: String,
        position: Option<u32>,
        now: i64,
        out: &mut Vec<Output>,
    ) -> Result<HostReply, RoomError> {
        check_brand_name("name", &name)?;
        check_url("logo_url", &logo_url, false)?;
        if self.brands.len() >= MAX_BRANDS {
            return Err(invalid(format!("a room has at most {MAX_BRANDS} brands")));
        }
        let brand = Brand {
            id: self.next_id("b"),
            name: name.trim().to_string(),
            logo_url,
            position: 0,
        };
        let at = position
            .map(|p| (p as usize).min(self.brands.len()))
            .unwrap_or(self.brands.len());
        self.brands.insert(at, brand.clone());
        self.persist_room(out);
        out.push(Output::Persist(StoreOp::PutBrand {
            room: self.record.id.clone(),
            brand: Box::new(Brand {
                position: at as u32,
                ..brand
            }),
        }));
        self.running_order_changed(now, out);
        Ok(HostReply::Brand(self.brands[at].clone()))
    }

    pub(super) fn update_brand(
        &mut self,
        brand_id: String,
        name: Option<String>,
        logo_url: Option<String>,
        position: Option<u32>,
        now: i64,
        out: &mut Vec<Output>,
    ) -> Result<HostReply, RoomError> {
        let idx = self
            .brands
            .iter()
            .position(|b| b.id == brand_id)
            .ok_or_else(|| {
                RoomError::NotFound(format!(
                    "brand {brand_id} not found in room {}",
                    self.record.id
                ))
            })?;
        if let Some(n) = &name {
            check_brand_name("name", n)?;
        }
        if let Some(u) = &logo_url {
            check_url("logo_url", u, false)?;
        }
        let mut brand = self.brands.remove(idx);
        if let Some(n) = name {
            brand.name = n.trim().to_string();
        }
        if let Some(u) = logo_url {
            brand.logo_url = u;
        }
        let at = position
            .map(|p| (p as usize).min(self.brands.len()))
            .unwrap_or(idx);
        self.brands.insert(at, brand);
        out.push(Output::Persist(StoreOp::PutBrand {
            room: self.record.id.clone(),
            brand: Box::new(self.brands[at].clone()),
        }));
        self.running_order_changed(now, out);
        Ok(HostReply::Brand(self.brands[at].clone()))
    }

    pub(super) fn remove_brand(
        &mut self,
        brand_id: String,
        now: i64,
        out: &mut Vec<Output>,
    ) -> Result<HostReply, RoomError> {
        self.brand(&brand_id)?;
        if self.record.brand_on_air.as_deref() == Some(brand_id.as_str()) {
            return Err(RoomError::FailedPrecondition(format!(
                "brand {brand_id} is on air; switch to another brand first"
            )));
        }
        self.brands.retain(|b| b.id != brand_id);
        self.products.retain(|p| p.brand_id != brand_id);
        out.push(Output::Persist(StoreOp::DeleteBrand {
            room: self.record.id.clone(),
            brand_id,
        }));
        self.running_order_changed(now, out);
        Ok(HostReply::Done)
    }

    pub(super) fn validate_product(
        &self,
        p: &ProductInput,
    ) -> Result<Vec<(String, i64)>, RoomError> {
        self.brand(&p.brand_id)?;
        if let Some(first) = product_problems(p, &self.record.tiers).into_iter().next() {
            return Err(invalid(first.message));
        }
        one_price_per_tier("price", &p.prices, &self.record.tiers)
    }

    pub(super) fn upsert_product(
        &mut self,
        input: ProductInput,
        now: i64,
        out: &mut Vec<Output>,
    ) -> Result<HostReply, RoomError> {
        let prices = self.validate_product(&input)?;
        let (id, old_brand) = match &input.product_id {
            Some(id) => {
                let i = self.product_index(id)?;
                (id.clone(), Some(self.products[i].brand_id.clone()))
            }
            None => {
                if self.products.len() >= MAX_PRODUCTS {
                    return Err(invalid(format!(
                        "a room has at most {MAX_PRODUCTS} products"
                    )));
                }
                (self.next_id("p"), None)
            }
        };
        let product = Product {
            id: id.clone(),
            brand_id: input.brand_id,
            name: input.name.trim().to_string(),
            description: input.description,
            image_urls: input.image_urls,
            link: input.link,
            min_order_quantity: input.min_order_quantity,
            prices,
        };
        match self.products.iter_mut().find(|p| p.id == id) {
            Some(p) => *p = product.clone(),
            None => self.products.push(product.clone()),
        }
        self.persist_room(out);
        out.push(Output::Persist(StoreOp::PutProduct {
            room: self.record.id.clone(),
            product: Box::new(product.clone()),
        }));
        let on_air = self.record.brand_on_air.clone();
        let now_on_shelf = on_air.as_ref() == Some(&product.brand_id);
        let was_on_shelf = old_brand.is_some() && on_air.as_ref() == old_brand.as_ref();
        if now_on_shelf {
            self.broadcast(
                RoomEvent::ProductUpdated {
                    product: product.clone(),
                },
                now,
                out,
            );
        } else if was_on_shelf {
            self.take_off_shelf(&id, now, out);
        }
        Ok(HostReply::Product(product))
    }

    pub(super) fn remove_product(
        &mut self,
        product_id: String,
        now: i64,
        out: &mut Vec<Output>,
    ) -> Result<HostReply, RoomError> {
        let i = self.product_index(&product_id)?;
        let p = self.products.remove(i);
        out.push(Output::Persist(StoreOp::DeleteProduct {
            room: self.record.id.clone(),
            product_id: product_id.clone(),
        }));
        if self.record.brand_on_air.as_ref() == Some(&p.brand_id) {
            self.take_off_shelf(&product_id, now, out);
        }
        Ok(HostReply::Done)
    }

    pub(super) fn take_off_shelf(&mut self, product_id: &str, now: i64, out: &mut Vec<Output>) {
        if self.record.pinned_product.as_deref() == Some(product_id) {
            self.record.pinned_product = None;
            self.persist_room(out);
            self.broadcast(
                RoomEvent::ProductUnpinned {
                    product_id: product_id.to_string(),
                },
                now,
                out,
            );
        }
        self.broadcast(
            RoomEvent::ProductRemoved {
                product_id: product_id.to_string(),
            },
            now,
            out,
        );
    }

    pub(super) fn pin_product(
        &mut self,
        product_id: String,
        now: i64,
        out: &mut Vec<Output>,
    ) -> Result<HostReply, RoomError> {
        let i = self.product_index(&product_id)?;
        if self.record.brand_on_air.as_ref() != Some(&self.products[i].brand_id) {
            return Err(RoomError::FailedPrecondition(format!(
                "product {product_id} belongs to a brand that is not on air"
            )));
        }
        self.record.pinned_product = Some(product_id);
        self.persist_room(out);
        let product = self.products[i].clone();
        self.broadcast(RoomEvent::ProductPinned { product }, now, out);
        Ok(HostReply::Done)
    }

    pub(super) fn unpin_product(
        &mut self,
        now: i64,
        out: &mut Vec<Output>,
    ) -> Result<HostReply, RoomError> {
        let Some(p) = self.record.pinned_product.take() else {
            return Err(RoomError::FailedPrecondition(format!(
                "room {} has no pinned product",
                self.record.id
            )));
        };
        self.persist_room(out);
        self.broadcast(RoomEvent::ProductUnpinned { product_id: p }, now, out);
        Ok(HostReply::Done)
    }
}
