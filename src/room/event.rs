//! Room events as plain values, and their rendering to JSON frames — once per audience class.

pub use crate::model::event::{RoomEvent, SeqEvent};
use crate::model::{AudienceClass, Brand, FlashSale, Product};
use bytes::Bytes;
use serde::Serialize;
use std::io::Write;

/// The rendered frames of one event: the public bytes, and one per dealer tier when the
/// event shows products. Cloning a `Bytes` is a reference count, so one rendering is shared
/// by every viewer of the class. `F` is the form a frame takes (rendered bytes here; the hub
/// converts them once per class for its sockets with [`Frames::map`]).
#[derive(Debug, Clone)]
pub struct Frames<F = Bytes> {
    pub seq: u64,
    pub public: F,
    pub dealer: Option<Box<[F]>>,
}

impl<F> Frames<F> {
    /// A tier without its own rendering gets the public one.
    pub fn for_class(&self, class: AudienceClass) -> &F {
        match (class, &self.dealer) {
            (AudienceClass::Dealer(i), Some(d)) => d.get(i as usize).unwrap_or(&self.public),
            _ => &self.public,
        }
    }

    /// The same frames in another form, converted once per class.
    pub fn map<G>(&self, mut f: impl FnMut(&F) -> G) -> Frames<G> {
        Frames {
            seq: self.seq,
            public: f(&self.public),
            dealer: self.dealer.as_ref().map(|d| d.iter().map(&mut f).collect()),
        }
    }
}

/// A product as one audience class may see it. Public: no price, no link — the fields are
/// absent, not null. Fields in name order, as the frames have always had them.
#[derive(Serialize)]
pub struct ProductView<'a> {
    pub brand_id: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub currency: Option<&'a str>,
    pub description: &'a str,
    pub id: &'a str,
    pub image_urls: &'a [String],
    #[serde(skip_serializing_if = "Option::is_none")]
    pub link: Option<&'a str>,
    pub min_order_quantity: u32,
    pub name: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub price_cents: Option<i64>,
}

/// A flash sale as one audience class sees it: the sale price only for an eligible tier.
/// Fields in name order, as the frames have always had them.
#[derive(Serialize)]
pub struct SaleView<'a> {
    pub brand_id: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub currency: Option<&'a str>,
    pub eligible: bool,
    pub end_ms: i64,
    pub per_dealer_limit: u32,
    pub phase: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub price_cents: Option<i64>,
    pub product_id: &'a str,
    pub product_name: &'a str,
    pub remaining: u32,
    pub sale_id: &'a str,
    pub server_time_ms: i64,
    pub start_ms: i64,
    pub stock: u32,
}

/// What a class sees of products: the tier name (dealers) and the currency.
#[derive(Clone, Copy)]
pub struct ClassView<'a> {
    pub tier: Option<&'a str>,
    pub currency: &'a str,
}

impl<'a> ClassView<'a> {
    pub fn public(currency: &'a str) -> Self {
        ClassView {
            tier: None,
            currency,
        }
    }

    pub fn product<'p>(&self, p: &'p Product) -> ProductView<'p>
    where
        'a: 'p,
    {
        let price = self.tier.and_then(|t| p.price_for(t));
        ProductView {
            id: &p.id,
            brand_id: &p.brand_id,
            name: &p.name,
            description: &p.description,
            image_urls: &p.image_urls,
            min_order_quantity: p.min_order_quantity,
            price_cents: price,
            currency: price.map(|_| self.currency),
            link: self.tier.map(|_| p.link.as_str()),
        }
    }

    /// A flash sale as this class sees it: the sale price only for an eligible tier.
    pub fn sale<'p>(&self, sale: &'p FlashSale, product_name: &'p str, now: i64) -> SaleView<'p>
    where
        'a: 'p,
    {
        let price = self.tier.and_then(|t| sale.price_for(t));
        SaleView {
            brand_id: &sale.brand_id,
            currency: price.map(|_| self.currency),
            eligible: price.is_some(),
            end_ms: sale.end_ms,
            per_dealer_limit: sale.per_dealer_limit,
            phase: sale.phase(now).as_str(),
            price_cents: price,
            product_id: &sale.product_id,
            product_name,
            remaining: sale.remaining,
            sale_id: &sale.id,
            server_time_ms: now,
            start_ms: sale.start_ms,
            stock: sale.stock,
        }
    }

    pub fn shelf<'p>(&self, products: &'p [Product]) -> Vec<ProductView<'p>>
    where
        'a: 'p,
    {
        products.iter().map(|p| self.product(p)).collect()
    }
}

/// Writes `{"type":KIND,"seq":SEQ,"at":AT, ...body fields}`. `body` must serialise to a JSON
/// object.
pub fn envelope(kind: &str, seq: u64, at_ms: i64, body: &impl Serialize) -> Bytes {
    let mut out = Vec::with_capacity(256);
    // Writing into a Vec cannot fail.
    let _ = write!(out, "{{\"type\":\"{kind}\",\"seq\":{seq},\"at\":{at_ms}");
    // The body's object goes straight after the header: its `{` becomes the `,` joining the
    // two, and an empty body closes the header.
    let start = out.len();
    match serde_json::to_writer(&mut out, body) {
        Ok(()) if out.len() > start + 2 && out[start] == b'{' => out[start] = b',',
        _ => {
            out.truncate(start);
            out.push(b'}');
        }
    }
    Bytes::from(out)
}

/// Renders an event once for the public class, and once per tier if it shows products.
pub fn render(ev: &SeqEvent, tiers: &[String], currency: &str) -> Frames {
    let public = render_for(ev, ClassView::public(currency));
    let dealer = if ev.event.carries_products() {
        Some(
            tiers
                .iter()
                .map(|t| {
                    render_for(
                        ev,
                        ClassView {
                            tier: Some(t),
                            currency,
                        },
                    )
                })
                .collect::<Vec<_>>()
                .into_boxed_slice(),
        )
    } else {
        None
    };
    Frames {
        seq: ev.seq,
        public,
        dealer,
    }
}

fn render_for(ev: &SeqEvent, view: ClassView<'_>) -> Bytes {
    #[derive(Serialize)]
    struct Chat<'a> {
        id: &'a str,
        viewer_id: &'a str,
        display_name: &'a str,
        text: &'a str,
        is_dealer: bool,
    }
    // Product-carrying events are the large ones (a shelf per tier at every brand switch):
    // written straight from borrowed fields, keys in name order as before.
    #[derive(Serialize)]
    struct Switched<'a> {
        brand: &'a Brand,
        pinned_product: &'a Option<String>,
        shelf: Vec<ProductView<'a>>,
    }
    #[derive(Serialize)]
    struct OneProduct<'a> {
        product: ProductView<'a>,
    }
    let kind = ev.event.kind();
    let (seq, at) = (ev.seq, ev.at_ms);
    match &ev.event {
        RoomEvent::Chat { message: m } => envelope(
            kind,
            seq,
            at,
            &Chat {
                id: &m.id,
                viewer_id: &m.viewer_id,
                display_name: &m.display_name,
                text: &m.text,
                is_dealer: m.is_dealer,
            },
        ),
        RoomEvent::ChatDeleted { id } => envelope(kind, seq, at, &serde_json::json!({ "id": id })),
        RoomEvent::Announce { text } => {
            envelope(kind, seq, at, &serde_json::json!({ "text": text }))
        }
        RoomEvent::OnlineCount { online } => {
            envelope(kind, seq, at, &serde_json::json!({ "online": online }))
        }
        RoomEvent::LikeCount { likes } => {
            envelope(kind, seq, at, &serde_json::json!({ "likes": likes }))
        }
        RoomEvent::BrandSwitched {
            brand,
            shelf,
            pinned_product,
        } => envelope(
            kind,
            seq,
            at,
            &Switched {
                brand,
                pinned_product,
                shelf: view.shelf(shelf),
            },
        ),
        RoomEvent::RunningOrder { brands } => {
            envelope(kind, seq, at, &serde_json::json!({ "brands": brands }))
        }
        RoomEvent::ProductPinned { product } => envelope(
            kind,
            seq,
            at,
            &OneProduct {
                product: view.product(product),
            },
        ),
        RoomEvent::ProductUnpinned { product_id } => envelope(
            kind,
            seq,
            at,
            &serde_json::json!({ "product_id": product_id }),
        ),
        RoomEvent::ProductUpdated { product } => envelope(
            kind,
            seq,
            at,
            &OneProduct {
                product: view.product(product),
            },
        ),
        RoomEvent::ProductRemoved { product_id } => envelope(
            kind,
            seq,
            at,
            &serde_json::json!({ "product_id": product_id }),
        ),
        RoomEvent::RoomState { state } => envelope(
            kind,
            seq,
            at,
            &serde_json::json!({ "state": state.as_str() }),
        ),
        RoomEvent::Program { brand_id, live } => envelope(
            kind,
            seq,
            at,
            &serde_json::json!({ "brand_id": brand_id, "live": live }),
        ),
        RoomEvent::SaleScheduled { sale, product_name }
        | RoomEvent::SaleStarted { sale, product_name } => {
            envelope(kind, seq, at, &view.sale(sale, product_name, at))
        }
        RoomEvent::StockLeft {
            sale_id,
            remaining,
            stock,
        } => envelope(
            kind,
            seq,
            at,
            &serde_json::json!({ "sale_id": sale_id, "remaining": remaining, "stock": stock }),
        ),
        RoomEvent::SoldOut { sale_id, stock } => envelope(
            kind,
            seq,
            at,
            &serde_json::json!({ "sale_id": sale_id, "stock": stock }),
        ),
        RoomEvent::SaleEnded {
            sale_id,
            sold,
            stock,
            reason,
        } => envelope(
            kind,
            seq,
            at,
            &serde_json::json!({
                "sale_id": sale_id, "sold": sold, "stock": stock, "reason": reason,
            }),
        ),
        RoomEvent::DrawOpened {
            draw_id,
            prize,
            winners_count,
            eligibility,
            closes_ms,
            commitment,
            beacon_source,
            algorithm,
        } => envelope(
            kind,
            seq,
            at,
            &serde_json::json!({
                "draw_id": draw_id, "prize": prize, "winners_count": winners_count,
                "eligibility": eligibility, "closes_ms": closes_ms,
                "commitment": commitment, "beacon_source": beacon_source,
                "algorithm": algorithm,
            }),
        ),
        RoomEvent::DrawClosed {
            draw_id,
            entrant_count,
            entrants_hash,
            beacon_source,
        } => envelope(
            kind,
            seq,
            at,
            &serde_json::json!({
                "draw_id": draw_id, "entrant_count": entrant_count,
                "entrants_hash": entrants_hash, "beacon_source": beacon_source,
                "awaiting_beacon": !beacon_source.is_empty(),
            }),
        ),
        RoomEvent::DrawResult {
            draw_id,
            prize,
            seed,
            entrants_hash,
            beacon,
            winners,
        } => envelope(
            kind,
            seq,
            at,
            &serde_json::json!({
                "draw_id": draw_id, "prize": prize, "seed": seed,
                "entrants_hash": entrants_hash, "beacon": beacon,
                "winners": winners.iter().map(|(id, name)| serde_json::json!({
                    "viewer_id": id, "display_name": name,
                })).collect::<Vec<_>>(),
            }),
        ),
        RoomEvent::RedPacketDropped {
            packet_id,
            count,
            total_cents,
            currency,
            tiers,
            message,
            expires_ms,
        } => envelope(
            kind,
            seq,
            at,
            &serde_json::json!({
                "packet_id": packet_id, "count": count, "total_cents": total_cents,
                "currency": currency, "tiers": tiers, "message": message,
                "expires_ms": expires_ms,
            }),
        ),
        RoomEvent::RedPacketGone {
            packet_id,
            reason,
            grabbed,
        } => envelope(
            kind,
            seq,
            at,
            &serde_json::json!({ "packet_id": packet_id, "reason": reason, "grabbed": grabbed }),
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn product() -> Product {
        Product {
            id: "p1".into(),
            brand_id: "b1".into(),
            name: "Jacket".into(),
            description: "Warm".into(),
            image_urls: vec!["https://img.example/j.png".into()],
            link: "https://shop.example/secret-link".into(),
            min_order_quantity: 10,
            prices: vec![("gold".into(), 8800), ("silver".into(), 9900)],
        }
    }

    /// The frames of the product-carrying events, byte for byte as they were when they were
    /// built through a `serde_json::Value` (keys in name order), for each class.
    #[test]
    fn product_frames_keep_their_bytes() {
        let brand = Brand {
            id: "b1".into(),
            name: "Alpha".into(),
            logo_url: "https://img.example/a.png".into(),
            position: 2,
        };
        let mut other = product();
        other.id = "p2".into();
        other.prices.truncate(1);
        let shelf = vec![product(), other];
        let ev = |event| SeqEvent {
            room: "r".into(),
            seq: 9,
            at_ms: 5,
            event,
        };
        let tiers = vec!["gold".to_string(), "silver".to_string()];
        let classes = [
            ClassView::public("CNY"),
            ClassView {
                tier: Some("gold"),
                currency: "CNY",
            },
            ClassView {
                tier: Some("silver"),
                currency: "CNY",
            },
        ];
        let frames = render(
            &ev(RoomEvent::BrandSwitched {
                brand: brand.clone(),
                shelf: shelf.clone(),
                pinned_product: Some("p1".into()),
            }),
            &tiers,
            "CNY",
        );
        for (i, view) in classes.iter().enumerate() {
            let got = if i == 0 {
                &frames.public
            } else {
                frames.for_class(AudienceClass::Dealer(i as u8 - 1))
            };
            let shelf: Vec<serde_json::Value> = shelf
                .iter()
                .map(|p| serde_json::to_value(view.product(p)).unwrap())
                .collect();
            let want = envelope(
                "brand_switched",
                9,
                5,
                &serde_json::json!({
                    "brand": brand, "shelf": shelf, "pinned_product": "p1",
                }),
            );
            assert_eq!(got, &want, "class {i}");
        }
        let frames = render(
            &ev(RoomEvent::ProductPinned { product: product() }),
            &tiers,
            "CNY",
        );
        let want = envelope(
            "product_pinned",
            9,
            5,
            &serde_json::json!({ "product": serde_json::to_value(classes[1].product(&product())).unwrap() }),
        );
        assert_eq!(frames.for_class(AudienceClass::Dealer(0)), &want);
    }

    #[test]
    fn public_frame_has_no_price_or_link_and_tiers_see_their_own_price() {
        let ev = SeqEvent {
            room: "r".into(),
            seq: 7,
            at_ms: 1,
            event: RoomEvent::ProductUpdated { product: product() },
        };
        let tiers = vec!["gold".to_string(), "silver".to_string()];
        let f = render(&ev, &tiers, "CNY");
        let public = std::str::from_utf8(&f.public).unwrap();
        assert!(!public.contains("price"), "{public}");
        assert!(!public.contains("secret-link"), "{public}");
        assert!(!public.contains("8800") && !public.contains("9900"));
        let gold = std::str::from_utf8(f.for_class(AudienceClass::Dealer(0))).unwrap();
        assert!(gold.contains("\"price_cents\":8800") && gold.contains("secret-link"));
        assert!(!gold.contains("9900"));
        let silver = std::str::from_utf8(f.for_class(AudienceClass::Dealer(1))).unwrap();
        assert!(silver.contains("\"price_cents\":9900") && !silver.contains("8800"));
        let v: serde_json::Value = serde_json::from_slice(&f.public).unwrap();
        assert_eq!(v["type"], "product_updated");
        assert_eq!(v["seq"], 7);
    }

    #[test]
    fn chat_is_rendered_once_for_all_classes() {
        let ev = SeqEvent {
            room: "r".into(),
            seq: 1,
            at_ms: 2,
            event: RoomEvent::Announce {
                text: "hi \"all\"".into(),
            },
        };
        let f = render(&ev, &["gold".into()], "CNY");
        assert!(f.dealer.is_none());
        let v: serde_json::Value = serde_json::from_slice(&f.public).unwrap();
        assert_eq!(v["text"], "hi \"all\"");
        assert_eq!(v["at"], 2);
    }
}
