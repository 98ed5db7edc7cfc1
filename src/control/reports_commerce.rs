//! The room report's flash sales, draws and red packets as protobuf.

use crate::pb;
use crate::report as r;

fn person_pb(p: r::Person) -> Option<pb::ReportPerson> {
    Some(pb::ReportPerson {
        viewer_id: p.viewer_id,
        name: p.name,
        company: p.company,
    })
}

pub(super) fn flash_sales_pb(sales: Vec<r::FlashSaleReport>) -> Vec<pb::FlashSaleReport> {
    sales
        .into_iter()
        .map(|s| pb::FlashSaleReport {
            sale_id: s.sale_id,
            product_id: s.product_id,
            product_name: s.product_name,
            brand_id: s.brand_id,
            stock: s.stock,
            sold: s.sold,
            attempts: s.attempts,
            attempters: s.attempters,
            start_ms: s.start_ms,
            end_ms: s.end_ms,
            sold_out_ms: s.sold_out_ms.unwrap_or(0),
            revenue_cents: s.revenue_cents,
            winners: s
                .winners
                .into_iter()
                .map(|w| pb::SaleWinner {
                    person: person_pb(w.person),
                    units: w.units,
                })
                .collect(),
            missed: s
                .missed
                .into_iter()
                .map(|m| pb::SaleMiss {
                    person: person_pb(m.person),
                    attempts: m.attempts,
                })
                .collect(),
        })
        .collect()
}

pub(super) fn draws_pb(draws: Vec<r::DrawReport>) -> Vec<pb::DrawReport> {
    draws
        .into_iter()
        .map(|d| pb::DrawReport {
            draw_id: d.draw_id,
            prize: d.prize,
            opened_ms: d.opened_ms,
            closed_ms: d.closed_ms.unwrap_or(0),
            drawn_ms: d.drawn_ms.unwrap_or(0),
            entrants: d.entrants,
            winners: d.winners.into_iter().filter_map(person_pb).collect(),
        })
        .collect()
}

pub(super) fn red_packets_pb(packets: Vec<r::RedPacketReport>) -> Vec<pb::RedPacketReport> {
    packets
        .into_iter()
        .map(|p| pb::RedPacketReport {
            packet_id: p.packet_id,
            message: p.message,
            total_cents: p.total_cents,
            count: p.count,
            grabbed: p.grabbed,
            grabbed_cents: p.grabbed_cents,
            created_ms: p.created_ms,
            expires_ms: p.expires_ms,
            grabs: p
                .grabs
                .into_iter()
                .map(|(who, amount_cents)| pb::RedPacketGrabReport {
                    person: person_pb(who),
                    amount_cents,
                })
                .collect(),
        })
        .collect()
}
