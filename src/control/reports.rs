//! Reports over gRPC: the room report, leads, the referral tree, lead weights, and the
//! "dealer turned hot" notices mixed into `WatchRoom`.

use super::*;
use crate::model::{ActivityWeight, LeadWeights, Registration, WatchEvent};
use crate::report::{self as r, LeadQuery, LeadSort, LeadStage};
use crate::reports::{ReportError, Reports};
use std::collections::BTreeSet;
use std::time::Duration;

/// How often a watched room's leads are checked for dealers who turned hot.
const HOT_CHECK: Duration = Duration::from_secs(5);

fn status(e: ReportError) -> Status {
    match e {
        ReportError::NotFound(_) => Status::not_found(e.to_string()),
        ReportError::Invalid(m) => Status::invalid_argument(m),
        ReportError::Store(e) => {
            tracing::error!(error = %e, "store failure in a report");
            Status::unavailable("the store did not answer; try again")
        }
        ReportError::Failed(m) => Status::internal(m),
    }
}

pub(super) async fn room_report(
    reports: Arc<Reports>,
    q: pb::GetRoomReportRequest,
) -> Result<pb::RoomReport, Status> {
    need("room_id", &q.room_id)?;
    let x = reports.room_report(&q.room_id).await.map_err(status)?;
    Ok(pb::RoomReport {
        room_id: x.room_id,
        currency: x.currency,
        generated_ms: x.generated_ms,
        start_ms: x.start_ms,
        end_ms: x.end_ms,
        registered: x.registered,
        unique_viewers: x.unique_viewers,
        peak_concurrency: x.peak_concurrency,
        concurrency_per_minute: x.concurrency_per_minute,
        watch_ms_total: x.watch_ms_total,
        watch_distribution: x
            .watch_distribution
            .into_iter()
            .map(|b| pb::WatchBucket {
                min_ms: b.min_ms,
                max_ms: b.max_ms,
                viewers: b.viewers,
            })
            .collect(),
        segments: x
            .segments
            .into_iter()
            .map(|s| pb::SegmentReport {
                brand_id: s.brand_id,
                brand_name: s.brand_name,
                start_ms: s.start_ms,
                end_ms: s.end_ms,
                viewers: s.viewers,
                watch_ms: s.watch_ms,
                product_views: s.product_views,
                product_clicks: s.product_clicks,
                orders: s.orders,
                quantity: s.quantity,
                value_cents: s.value_cents,
                buyers: s.buyers,
                conversion: s.conversion,
            })
            .collect(),
        products: x
            .products
            .into_iter()
            .map(|p| pb::ProductReport {
                product_id: p.product_id,
                brand_id: p.brand_id,
                name: p.name,
                views: p.views,
                clicks: p.clicks,
                orders: p.orders,
                quantity: p.quantity,
                value_cents: p.value_cents,
            })
            .collect(),
        funnel: Some(pb::Funnel {
            registered: x.funnel.registered,
            watched: x.funnel.watched,
            applied: x.funnel.applied,
            verified_dealers: x.funnel.verified_dealers,
            ordered: x.funnel.ordered,
        }),
        channels: x
            .channels
            .into_iter()
            .map(|c| pb::ChannelReport {
                code: c.code,
                name: c.name,
                registrations: c.registrations,
                attended: c.attended,
                orders: c.orders,
                value_cents: c.value_cents,
            })
            .collect(),
        flash_sales: super::reports_commerce::flash_sales_pb(x.flash_sales),
        draws: super::reports_commerce::draws_pb(x.draws),
        red_packets: super::reports_commerce::red_packets_pb(x.red_packets),
    })
}

fn stage_pb(s: LeadStage) -> i32 {
    match s {
        LeadStage::Cold => pb::LeadStage::Cold as i32,
        LeadStage::Warm => pb::LeadStage::Warm as i32,
        LeadStage::Hot => pb::LeadStage::Hot as i32,
    }
}

fn lead_pb(l: r::Lead) -> pb::Lead {
    pb::Lead {
        viewer_id: l.viewer_id,
        name: l.name,
        company: l.company,
        phone: l.phone,
        dealer_tier: l.dealer_tier.unwrap_or_default(),
        watch_ms: l.watch_ms,
        orders: l.orders,
        order_value_cents: l.order_value_cents,
        score: l.score,
        stage: stage_pb(l.stage),
        breakdown: l
            .breakdown
            .into_iter()
            .map(|a| pb::ActivityPoints {
                activity: a.activity.to_string(),
                count: a.count,
                raw: a.raw,
                points: a.points,
            })
            .collect(),
        brand_interest: l.brand_interest,
    }
}

fn weight_pb(w: ActivityWeight) -> Option<pb::ActivityWeight> {
    Some(pb::ActivityWeight {
        points: w.points,
        cap: w.cap,
    })
}

fn weights_pb(w: &LeadWeights) -> pb::LeadWeights {
    pb::LeadWeights {
        registered: weight_pb(w.registered),
        watch_minute: weight_pb(w.watch_minute),
        chat: weight_pb(w.chat),
        like: weight_pb(w.like),
        product_view: weight_pb(w.product_view),
        product_click: weight_pb(w.product_click),
        draw_entry: weight_pb(w.draw_entry),
        grab_attempt: weight_pb(w.grab_attempt),
        red_packet: weight_pb(w.red_packet),
        application: weight_pb(w.application),
        order: weight_pb(w.order),
        half_life_hours: w.half_life_hours,
        warm_at: w.warm_at,
        hot_at: w.hot_at,
    }
}

fn query(q: &pb::ListLeadsRequest) -> Result<LeadQuery, Status> {
    let stage = match pb::LeadStage::try_from(q.stage) {
        Ok(pb::LeadStage::Unspecified) => None,
        Ok(pb::LeadStage::Cold) => Some(LeadStage::Cold),
        Ok(pb::LeadStage::Warm) => Some(LeadStage::Warm),
        Ok(pb::LeadStage::Hot) => Some(LeadStage::Hot),
        Err(_) => {
            return Err(Status::invalid_argument(format!(
                "stage: unknown value {}",
                q.stage
            )))
        }
    };
    let sort = match pb::LeadSort::try_from(q.sort) {
        Ok(pb::LeadSort::Score) => LeadSort::Score,
        Ok(pb::LeadSort::WatchTime) => LeadSort::WatchTime,
        Ok(pb::LeadSort::OrderValue) => LeadSort::OrderValue,
        Ok(pb::LeadSort::Name) => LeadSort::Name,
        Err(_) => {
            return Err(Status::invalid_argument(format!(
                "sort: unknown value {}",
                q.sort
            )))
        }
    };
    if !q.min_score.is_finite() || q.min_score < 0.0 {
        return Err(Status::invalid_argument(
            "min_score must be a number from 0",
        ));
    }
    let text = |s: &str| (!s.trim().is_empty()).then(|| s.trim().to_string());
    Ok(LeadQuery {
        min_score: (q.min_score > 0.0).then_some(q.min_score),
        stage,
        company: text(&q.company),
        brand_id: text(&q.brand_id),
        sort,
        limit: (q.limit > 0).then_some(q.limit),
    })
}

pub(super) async fn list_leads(
    reports: Arc<Reports>,
    q: pb::ListLeadsRequest,
) -> Result<pb::ListLeadsResponse, Status> {
    need("room_id", &q.room_id)?;
    let selected = query(&q)?;
    let all = reports.leads(&q.room_id).await.map_err(status)?;
    Ok(pb::ListLeadsResponse {
        generated_ms: all.generated_ms,
        leads: r::filter_leads(&all.leads, &selected)
            .into_iter()
            .map(lead_pb)
            .collect(),
        companies: all
            .companies
            .into_iter()
            .map(|c| pb::CompanyLead {
                company: c.company,
                score: c.score,
                stage: stage_pb(c.stage),
                viewer_ids: c.viewer_ids,
                orders: c.orders,
                order_value_cents: c.order_value_cents,
            })
            .collect(),
        follow_ups: all
            .follow_ups
            .into_iter()
            .map(|f| pb::FollowUp {
                brand_id: f.brand_id,
                brand_name: f.brand_name,
                viewer_ids: f.viewer_ids,
            })
            .collect(),
        weights: Some(weights_pb(&all.weights)),
    })
}

fn node_pb(n: r::ReferralNode) -> pb::ReferralNode {
    pb::ReferralNode {
        viewer_id: n.viewer_id,
        name: n.name,
        company: n.company,
        channel: n.channel.unwrap_or_default(),
        depth: n.depth,
        own_orders: n.own_orders,
        own_value_cents: n.own_value_cents,
        direct_invitees: n.direct_invitees,
        direct_orders: n.direct_orders,
        direct_value_cents: n.direct_value_cents,
        subtree_size: n.subtree_size,
        subtree_orders: n.subtree_orders,
        subtree_value_cents: n.subtree_value_cents,
        children: n.children.into_iter().map(node_pb).collect(),
    }
}

pub(super) async fn referral_tree(
    reports: Arc<Reports>,
    q: pb::GetReferralTreeRequest,
) -> Result<pb::ReferralTree, Status> {
    need("room_id", &q.room_id)?;
    let t = reports.referral_tree(&q.room_id).await.map_err(status)?;
    Ok(pb::ReferralTree {
        roots: t.roots.into_iter().map(node_pb).collect(),
        ranking: t
            .ranking
            .into_iter()
            .map(|x| pb::InviteRank {
                viewer_id: x.viewer_id,
                name: x.name,
                direct_invitees: x.direct_invitees,
                subtree_size: x.subtree_size,
                subtree_orders: x.subtree_orders,
                subtree_value_cents: x.subtree_value_cents,
            })
            .collect(),
    })
}

pub(super) async fn export_report(
    reports: Arc<Reports>,
    q: pb::ExportReportRequest,
) -> Result<pb::ExportReportResponse, Status> {
    need("room_id", &q.room_id)?;
    let kind = match pb::ExportKind::try_from(q.kind) {
        Ok(pb::ExportKind::Leads) => r::ExportKind::Leads,
        Ok(pb::ExportKind::Orders) => r::ExportKind::Orders,
        Ok(pb::ExportKind::Products) => r::ExportKind::Products,
        Ok(pb::ExportKind::Segments) => r::ExportKind::Segments,
        Ok(pb::ExportKind::Referrals) => r::ExportKind::Referrals,
        _ => {
            return Err(Status::invalid_argument(
                "kind: one of leads, orders, products, segments, referrals",
            ))
        }
    };
    let csv = reports.export(&q.room_id, kind).await.map_err(status)?;
    Ok(pb::ExportReportResponse {
        filename: format!("{}-{}.csv", q.room_id, kind.as_str()),
        csv,
    })
}

pub(super) async fn set_lead_weights(
    reports: Arc<Reports>,
    q: pb::SetLeadWeightsRequest,
) -> Result<pb::LeadWeights, Status> {
    need("room_id", &q.room_id)?;
    let weights = reports
        .set_weights(&q.room_id, q.reset, |w| {
            for a in &q.activities {
                let Some(slot) = w.activity_mut(a.activity.trim()) else {
                    return Err(format!(
                        "activities: unknown activity {:?} (known: {})",
                        a.activity,
                        LeadWeights::default()
                            .activities()
                            .map(|(n, _)| n)
                            .join(", ")
                    ));
                };
                let Some(v) = &a.weight else {
                    return Err(format!("activities: {} has no weight", a.activity));
                };
                *slot = ActivityWeight {
                    points: v.points,
                    cap: v.cap,
                };
            }
            if let Some(h) = q.half_life_hours {
                w.half_life_hours = h;
            }
            if let Some(x) = q.warm_at {
                w.warm_at = x;
            }
            if let Some(x) = q.hot_at {
                w.hot_at = x;
            }
            Ok(())
        })
        .await
        .map_err(status)?;
    Ok(weights_pb(&weights))
}

/// `WatchRoom`: the room's events, plus a `lead_hot` event whenever a verified dealer's
/// score reaches the hot threshold (checked every [`HOT_CHECK`]; dealers hot when the watch
/// starts are not announced). Ends when the room's events end or the client goes away.
pub(super) async fn watch_room(
    hub: Arc<dyn Rooms>,
    reports: Arc<Reports>,
    q: pb::RoomRef,
) -> Result<WatchStream, Status> {
    use tokio_stream::StreamExt as _;
    need("room_id", &q.room_id)?;
    let mut events = hub.watch(&q.room_id).await.map_err(status_of)?;
    let room = q.room_id;
    let (tx, rx) = tokio::sync::mpsc::channel::<Result<pb::WatchRoomEvent, Status>>(64);
    tokio::spawn(async move {
        let mut hot: Option<BTreeSet<String>> = None;
        let mut pending: Option<BTreeSet<String>> = None;
        let mut check = tokio::time::interval(HOT_CHECK);
        loop {
            tokio::select! {
                ev = events.next() => {
                    let item = match ev {
                        None => break,
                        // A stream that lost its room ends with UNAVAILABLE (watch again).
                        Some(WatchEvent::Lost { why }) => Some(Err(Status::unavailable(why))),
                        Some(ev) => super::convert::watch_pb(&room, ev).map(Ok),
                    };
                    let lost = matches!(item, Some(Err(_)));
                    if let Some(item) = item {
                        if tx.send(item).await.is_err() {
                            break;
                        }
                    }
                    if lost {
                        break;
                    }
                }
                _ = check.tick() => {
                    if let Ok(log) = reports.show_log(&room).await {
                        let now: Vec<&Registration> = log
                            .registrations
                            .iter()
                            .filter(|r| r.status == RegistrationStatus::Pending)
                            .collect();
                        let seen = pending
                            .get_or_insert_with(|| now.iter().map(|r| r.id.clone()).collect());
                        for r in now {
                            if seen.insert(r.id.clone()) {
                                let ev = pb::WatchRoomEvent {
                                    event: Some(pb::watch_room_event::Event::RegistrationPending(
                                        super::registration::registration_pb(&room, r),
                                    )),
                                };
                                if tx.send(Ok(ev)).await.is_err() {
                                    return;
                                }
                            }
                        }
                    }
                    let Ok(leads) = reports.leads(&room).await else { continue };
                    let now: Vec<&r::Lead> = r::hot_dealers(&leads);
                    let seen = hot.get_or_insert_with(|| {
                        now.iter().map(|l| l.viewer_id.clone()).collect()
                    });
                    for l in now {
                        if seen.insert(l.viewer_id.clone()) {
                            let ev = pb::WatchRoomEvent {
                                event: Some(pb::watch_room_event::Event::LeadHot(pb::LeadTurnedHot {
                                    viewer_id: l.viewer_id.clone(),
                                    name: l.name.clone(),
                                    company: l.company.clone(),
                                    score: l.score,
                                    ordered: l.orders > 0,
                                    brand_interest: l.brand_interest.clone(),
                                })),
                            };
                            if tx.send(Ok(ev)).await.is_err() {
                                return;
                            }
                        }
                    }
                }
                _ = tx.closed() => break,
            }
        }
    });
    Ok(Box::pin(tokio_stream::wrappers::ReceiverStream::new(rx)))
}
