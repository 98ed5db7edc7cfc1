//! Store ops as PostgreSQL statements: prepared once per connection, planned per batch (a run
//! of flash-sale grants becomes two statements, however long), and run pipelined.

use super::error::classify;
use super::rows::{insert_sql, refs, unnest_sql, values, Arrays, Param, Stored};
use super::webhooks::{self, QueueRows};
use crate::model::{
    AudienceRecord, Brand, ChatRecord, DealerApplication, DealerRecord, Draw, FlashSale, Order,
    Product, RedPacket, RoomRecord,
};
use crate::model::{Channel, EngagementRecord, Registration};
use crate::store::{StoreError, StoreOp, Violation};
use futures_util::future::join_all;
use std::collections::HashSet;
use tokio_postgres::{Client, GenericClient, Statement};

/// Upserts that replace every column but the key.
fn upsert<T: Stored>(key: &str) -> String {
    insert_sql::<T>(&crate::store::columns::upsert_tail(T::COLUMNS, key))
}

/// Every write statement, prepared on the writer's connection.
pub(super) struct Statements {
    fence: Statement,
    put_room: Statement,
    put_brand: Statement,
    delete_brand_products: Statement,
    delete_brand: Statement,
    put_product: Statement,
    delete_product: Statement,
    put_dealer: Statement,
    put_application: Statement,
    kick_token: Statement,
    put_mute: Statement,
    append_chat: Bulk,
    delete_chat: Statement,
    append_audience: Bulk,
    put_order: Bulk,
    put_sale: Statement,
    take_sale_units: Statement,
    insert_orders: Bulk,
    put_draw: Statement,
    add_draw_entrants: Statement,
    put_red_packet: Statement,
    grab_red_packet: Statement,
    put_registration: Statement,
    decide_registration: Statement,
    put_channel: Statement,
    append_engagement: Statement,
    append_program: Statement,
    put_lead_weights: Statement,
    erase_viewer: Statement,
    queue_webhooks: Statement,
    put_webhook: Statement,
    delete_webhook: Statement,
    log_webhook_attempt: Statement,
    after_webhook_attempt: Statement,
    retry_webhook: Statement,
}

impl Statements {
    pub(super) async fn prepare(c: &Client) -> Result<Statements, tokio_postgres::Error> {
        Ok(Statements {
            // The token is recorded unless a higher one is stored (then no row changes).
            fence: c
                .prepare(
                    "INSERT INTO room_fences (room, token) VALUES ($1, $2)
                     ON CONFLICT (room) DO UPDATE SET token = excluded.token
                     WHERE room_fences.token <= excluded.token",
                )
                .await?,
            put_room: c.prepare(&upsert::<RoomRecord>("id")).await?,
            put_brand: c.prepare(&upsert::<Brand>("room, id")).await?,
            delete_brand_products: c
                .prepare("DELETE FROM products WHERE room = $1 AND brand_id = $2")
                .await?,
            delete_brand: c
                .prepare("DELETE FROM brands WHERE room = $1 AND id = $2")
                .await?,
            put_product: c.prepare(&upsert::<Product>("room, id")).await?,
            delete_product: c
                .prepare("DELETE FROM products WHERE room = $1 AND id = $2")
                .await?,
            put_dealer: c
                .prepare(&upsert::<DealerRecord>("room, viewer_id"))
                .await?,
            put_application: c.prepare(&upsert::<DealerApplication>("room, id")).await?,
            kick_token: c
                .prepare(
                    "INSERT INTO kicked_tokens (room, jti, expires_ms) VALUES ($1, $2, $3)
                     ON CONFLICT (room, jti) DO UPDATE SET expires_ms = excluded.expires_ms",
                )
                .await?,
            put_mute: c
                .prepare(
                    "INSERT INTO mutes (room, viewer_id, until_ms) VALUES ($1, $2, $3)
                     ON CONFLICT (room, viewer_id) DO UPDATE SET until_ms = excluded.until_ms",
                )
                .await?,
            append_chat: Bulk::prepare::<ChatRecord>(c, "").await?,
            delete_chat: c
                .prepare(
                    "UPDATE chat SET deleted_ms = $3
                     WHERE room = $1 AND id = $2 AND deleted_ms IS NULL",
                )
                .await?,
            append_audience: Bulk::prepare::<AudienceRecord>(c, "").await?,
            // Only the status moves after an order is created.
            put_order: Bulk::prepare::<Order>(
                c,
                "ON CONFLICT (room, id) DO UPDATE SET status = excluded.status,
                 status_reason = excluded.status_reason, updated_ms = excluded.updated_ms",
            )
            .await?,
            // Stock is owned by `take_sale_units` once the sale exists; a later put only
            // ends it.
            put_sale: c
                .prepare(&insert_sql::<FlashSale>(
                    "ON CONFLICT (room, id) DO UPDATE SET ended_ms = excluded.ended_ms",
                ))
                .await?,
            // A run of grants: each sale loses as many units as it has grants in the run,
            // only if it has them all; the caller counts the sales updated.
            take_sale_units: c
                .prepare(
                    "UPDATE flash_sales f SET remaining = f.remaining - g.n
                     FROM (SELECT room, id, count(*) AS n
                           FROM UNNEST($1::text[], $2::text[]) AS t(room, id)
                           GROUP BY room, id) g
                     WHERE f.room = g.room AND f.id = g.id AND f.remaining >= g.n",
                )
                .await?,
            // Flash-sale wins: a duplicate must fail, not update.
            insert_orders: Bulk::prepare::<Order>(c, "").await?,
            // The seed, commitment and beacon source are fixed at open; closing and drawing
            // fill in the rest.
            put_draw: c
                .prepare(&insert_sql::<Draw>(
                    "ON CONFLICT (room, id) DO UPDATE SET closed_ms = excluded.closed_ms,
                     beacon = excluded.beacon, entrants_hash = excluded.entrants_hash,
                     winners = excluded.winners, drawn_ms = excluded.drawn_ms",
                ))
                .await?,
            add_draw_entrants: c
                .prepare(
                    "INSERT INTO draw_entrants (room, draw_id, viewer_id, at_ms)
                     SELECT $1, $2, v, $4 FROM UNNEST($3::text[]) AS v
                     ON CONFLICT (room, draw_id, viewer_id) DO NOTHING",
                )
                .await?,
            // The split is fixed when the packet is dropped.
            put_red_packet: c
                .prepare(&insert_sql::<RedPacket>(
                    "ON CONFLICT (room, id) DO NOTHING",
                ))
                .await?,
            grab_red_packet: c
                .prepare(
                    "INSERT INTO red_packet_grabs
                         (room, packet_id, viewer_id, idx, amount_cents, at_ms)
                     VALUES ($1, $2, $3, $4, $5, $6)",
                )
                .await?,
            // A phone, invite code or viewer id already registered in the room keeps its
            // registration.
            put_registration: c
                .prepare(&insert_sql::<Registration>("ON CONFLICT DO NOTHING"))
                .await?,
            decide_registration: c
                .prepare(
                    "UPDATE registrations SET status = $3, decided_ms = $4
                     WHERE room = $1 AND id = $2
                       AND (status = 'pending' OR (status = 'approved' AND $3 = 'rejected'))",
                )
                .await?,
            put_channel: c
                .prepare(&insert_sql::<Channel>("ON CONFLICT DO NOTHING"))
                .await?,
            append_engagement: c.prepare(super::engagement::APPEND_ENGAGEMENT).await?,
            append_program: c.prepare(super::engagement::APPEND_PROGRAM).await?,
            put_lead_weights: c.prepare(super::engagement::PUT_LEAD_WEIGHTS).await?,
            // A registrant's personal data erased ($3 the time, $4 the name left on records).
            erase_viewer: c
                .prepare(
                    "WITH r AS (UPDATE registrations SET name = '', company = '',
                                    phone = 'erased:' || id, erased_ms = $3
                                WHERE room = $1 AND viewer_id = $2 AND erased_ms IS NULL),
                          o AS (UPDATE orders SET display_name = $4
                                WHERE room = $1 AND viewer_id = $2),
                          c AS (UPDATE chat SET display_name = $4
                                WHERE room = $1 AND viewer_id = $2),
                          a AS (UPDATE applications SET display_name = $4, company = '',
                                    licence_number = '', contact = ''
                                WHERE room = $1 AND viewer_id = $2)
                     UPDATE dealers SET company = '' WHERE room = $1 AND viewer_id = $2",
                )
                .await?,
            queue_webhooks: c.prepare(webhooks::QUEUE).await?,
            put_webhook: c.prepare(webhooks::PUT_WEBHOOK).await?,
            delete_webhook: c.prepare(webhooks::DELETE_WEBHOOK).await?,
            log_webhook_attempt: c.prepare(webhooks::LOG_ATTEMPT).await?,
            after_webhook_attempt: c.prepare(webhooks::AFTER_ATTEMPT).await?,
            retry_webhook: c.prepare(webhooks::RETRY).await?,
        })
    }
}

/// The `UNNEST` insert of a record type: any number of rows in one statement.
pub(super) struct Bulk(Statement);

impl Bulk {
    async fn prepare<T: Stored>(c: &Client, tail: &str) -> Result<Bulk, tokio_postgres::Error> {
        // PostgreSQL infers each column's type for the single-row form; the arrays take the
        // same types.
        let one = c.prepare(&insert_sql::<T>("")).await?;
        let types: Vec<&str> = one.params().iter().map(|t| t.name()).collect();
        Ok(Bulk(c.prepare(&unnest_sql::<T>(&types, tail)).await?))
    }
}

/// Consecutive ops of one kind, gathered to be inserted with one statement.
struct Run<'s> {
    op: &'static str,
    bulk: &'s Bulk,
    rows: Arrays,
    /// The ids in the run, for kinds that upsert by id: an `ON CONFLICT DO UPDATE` cannot
    /// touch one row twice in a statement, so a repeated id starts a new run.
    ids: HashSet<String>,
}

impl<'s> Run<'s> {
    fn new(bulk: &'s Bulk) -> Run<'s> {
        Run {
            op: "",
            bulk,
            rows: Arrays::default(),
            ids: HashSet::new(),
        }
    }

    /// Whether a row of `op` (with `id`) can join this run.
    fn accepts(&self, op: &'static str, id: Option<&str>) -> bool {
        self.rows.rows() == 0 || (self.op == op && !id.is_some_and(|id| self.ids.contains(id)))
    }

    /// Adds a row it [`Run::accepts`].
    fn add<T: Stored>(
        &mut self,
        op: &'static str,
        bulk: &'s Bulk,
        id: Option<&str>,
        room: &str,
        record: &T,
    ) {
        debug_assert!(self.accepts(op, id));
        self.op = op;
        self.bulk = bulk;
        self.ids.extend(id.map(str::to_string));
        self.rows.push(Some(room), record);
    }

    /// Its statement, leaving it empty.
    fn flush(&mut self, steps: &mut Vec<Step<'s>>) {
        if self.rows.rows() == 0 {
            return;
        }
        steps.push(Step {
            op: self.op,
            statement: &self.bulk.0,
            params: std::mem::take(&mut self.rows).into_params(),
            expect: Expect::Any,
        });
        self.ids.clear();
    }
}

/// What a statement's count of affected rows must be.
enum Expect {
    Any,
    /// Exactly this many, or the submission is refused for the violation.
    Rows(u64, Violation),
}

/// One statement of a planned batch.
struct Step<'s> {
    op: &'static str,
    statement: &'s Statement,
    params: Vec<Param>,
    expect: Expect,
}

fn s(v: &str) -> Param {
    Box::new(v.to_string())
}

/// The statements that apply `ops` in order. A fence already checked in this batch is not
/// checked again (its row stays locked until the commit), consecutive grants share their two
/// statements, and the webhook deliveries the ops queue are inserted by one statement last.
fn plan<'s, 'o>(st: &'s Statements, ops: impl Iterator<Item = &'o StoreOp>) -> Vec<Step<'s>> {
    let mut steps = Vec::new();
    let mut fenced: HashSet<(&str, u64)> = HashSet::new();
    let mut grants: Vec<(&str, &str, &Order)> = Vec::new();
    let step = |op, statement, params, expect| Step {
        op,
        statement,
        params,
        expect,
    };
    let mut run = Run::new(&st.append_chat);
    let mut queued = QueueRows::default();
    // Adds a row to the run, first flushing whatever cannot share its statement.
    macro_rules! gather {
        ($name:literal, $bulk:expr, $id:expr, $room:expr, $record:expr) => {{
            flush_grants(st, &mut grants, &mut steps);
            if !run.accepts($name, $id) {
                run.flush(&mut steps);
            }
            run.add($name, $bulk, $id, $room, $record);
            continue;
        }};
    }
    for op in ops {
        if let Some(q) = crate::store::outbox::queued(op) {
            queued.push(q);
        }
        match op {
            StoreOp::GrantSale {
                room,
                sale_id,
                order,
            } => {
                run.flush(&mut steps);
                grants.push((room, sale_id, order));
                continue;
            }
            StoreOp::AppendChat { room, chat } => {
                gather!("AppendChat", &st.append_chat, None, room, chat.as_ref())
            }
            StoreOp::AppendAudience { room, record } => gather!(
                "AppendAudience",
                &st.append_audience,
                None,
                room,
                record.as_ref()
            ),
            StoreOp::PutOrder { room, order } => gather!(
                "PutOrder",
                &st.put_order,
                Some(order.id.as_str()),
                room,
                order.as_ref()
            ),
            _ => {
                flush_grants(st, &mut grants, &mut steps);
                run.flush(&mut steps);
            }
        }
        let any = Expect::Any;
        let next = match op {
            StoreOp::Fence { room, token } => {
                if !fenced.insert((room, *token)) {
                    continue;
                }
                // A revision never reaches 2^63; if one did, refuse rather than wrap.
                let Ok(token) = i64::try_from(*token) else {
                    steps.push(step(
                        "Fence",
                        &st.fence,
                        vec![s(room), Box::new(-1i64)],
                        Expect::Rows(u64::MAX, Violation::Other),
                    ));
                    continue;
                };
                step(
                    "Fence",
                    &st.fence,
                    vec![s(room), Box::new(token)],
                    Expect::Rows(1, Violation::Fenced),
                )
            }
            StoreOp::PutRoom(r) => step("PutRoom", &st.put_room, values(None, r.as_ref()), any),
            StoreOp::PutBrand { room, brand } => step(
                "PutBrand",
                &st.put_brand,
                values(Some(room), brand.as_ref()),
                any,
            ),
            StoreOp::DeleteBrand { room, brand_id } => {
                steps.push(step(
                    "DeleteBrand",
                    &st.delete_brand_products,
                    vec![s(room), s(brand_id)],
                    Expect::Any,
                ));
                step(
                    "DeleteBrand",
                    &st.delete_brand,
                    vec![s(room), s(brand_id)],
                    any,
                )
            }
            StoreOp::PutProduct { room, product } => step(
                "PutProduct",
                &st.put_product,
                values(Some(room), product.as_ref()),
                any,
            ),
            StoreOp::DeleteProduct { room, product_id } => step(
                "DeleteProduct",
                &st.delete_product,
                vec![s(room), s(product_id)],
                any,
            ),
            StoreOp::PutDealer { room, dealer } => step(
                "PutDealer",
                &st.put_dealer,
                values(Some(room), dealer.as_ref()),
                any,
            ),
            StoreOp::PutApplication { room, application } => step(
                "PutApplication",
                &st.put_application,
                values(Some(room), application.as_ref()),
                any,
            ),
            StoreOp::KickToken {
                room,
                jti,
                expires_ms,
            } => step(
                "KickToken",
                &st.kick_token,
                vec![s(room), s(jti), Box::new(*expires_ms)],
                any,
            ),
            StoreOp::PutMute {
                room,
                viewer_id,
                until_ms,
            } => step(
                "PutMute",
                &st.put_mute,
                vec![s(room), s(viewer_id), Box::new(*until_ms)],
                any,
            ),
            StoreOp::DeleteChat {
                room,
                message_id,
                at_ms,
            } => step(
                "DeleteChat",
                &st.delete_chat,
                vec![s(room), s(message_id), Box::new(*at_ms)],
                any,
            ),
            StoreOp::PutSale { room, sale } => step(
                "PutSale",
                &st.put_sale,
                values(Some(room), sale.as_ref()),
                any,
            ),
            StoreOp::GrantSale { .. }
            | StoreOp::AppendChat { .. }
            | StoreOp::AppendAudience { .. }
            | StoreOp::PutOrder { .. } => unreachable!("gathered above"),
            StoreOp::PutDraw { room, draw } => {
                steps.push(step(
                    "PutDraw",
                    &st.put_draw,
                    values(Some(room), draw.as_ref()),
                    Expect::Any,
                ));
                // Entrants normally arrive one by one (`AddDrawEntrant`); recording the ones
                // a put carries keeps the stored set equal to the one `entrants_hash` covers
                // even if an earlier entry write was lost. Empty at open.
                if draw.entrants.is_empty() {
                    continue;
                }
                step(
                    "PutDraw",
                    &st.add_draw_entrants,
                    vec![
                        s(room),
                        s(&draw.id),
                        Box::new(draw.entrants.clone()),
                        Box::new(draw.closed_ms.unwrap_or(draw.opened_ms)),
                    ],
                    any,
                )
            }
            StoreOp::AddDrawEntrant {
                room,
                draw_id,
                viewer_id,
                at_ms,
            } => step(
                "AddDrawEntrant",
                &st.add_draw_entrants,
                vec![
                    s(room),
                    s(draw_id),
                    Box::new(vec![viewer_id.clone()]),
                    Box::new(*at_ms),
                ],
                any,
            ),
            StoreOp::PutRedPacket { room, packet } => step(
                "PutRedPacket",
                &st.put_red_packet,
                values(Some(room), packet.as_ref()),
                any,
            ),
            StoreOp::GrabRedPacket {
                room,
                packet_id,
                viewer_id,
                index,
                amount_cents,
                at_ms,
            } => step(
                "GrabRedPacket",
                &st.grab_red_packet,
                vec![
                    s(room),
                    s(packet_id),
                    s(viewer_id),
                    Box::new(i64::from(*index)),
                    Box::new(*amount_cents),
                    Box::new(*at_ms),
                ],
                any,
            ),
            StoreOp::PutRegistration { room, registration } => step(
                "PutRegistration",
                &st.put_registration,
                values(Some(room), registration.as_ref()),
                any,
            ),
            StoreOp::DecideRegistration {
                room,
                id,
                status,
                at_ms,
            } => step(
                "DecideRegistration",
                &st.decide_registration,
                vec![s(room), s(id), s(status.as_str()), Box::new(*at_ms)],
                any,
            ),
            StoreOp::PutChannel { room, channel } => step(
                "PutChannel",
                &st.put_channel,
                values(Some(room), channel.as_ref()),
                any,
            ),
            StoreOp::AppendEngagement { room, records } => {
                if records.is_empty() {
                    continue;
                }
                let column = |f: fn(&EngagementRecord) -> String| -> Param {
                    Box::new(records.iter().map(f).collect::<Vec<String>>())
                };
                let ints = |f: fn(&EngagementRecord) -> i64| -> Param {
                    Box::new(records.iter().map(f).collect::<Vec<i64>>())
                };
                step(
                    "AppendEngagement",
                    &st.append_engagement,
                    vec![
                        s(room),
                        column(|r| r.viewer_id.clone()),
                        column(|r| r.kind.as_str().to_string()),
                        column(|r| r.target.clone()),
                        ints(|r| i64::from(r.count)),
                        ints(|r| r.at_ms),
                    ],
                    any,
                )
            }
            StoreOp::AppendProgram { room, record } => step(
                "AppendProgram",
                &st.append_program,
                vec![
                    s(room),
                    Box::new(record.brand_id.clone()),
                    Box::new(record.at_ms),
                ],
                any,
            ),
            StoreOp::PutLeadWeights {
                room,
                weights,
                at_ms,
            } => step(
                "PutLeadWeights",
                &st.put_lead_weights,
                vec![
                    s(room),
                    Box::new(tokio_postgres::types::Json(
                        serde_json::to_value(weights.as_ref()).expect("weights serialise"),
                    )),
                    Box::new(*at_ms),
                ],
                any,
            ),
            StoreOp::EraseViewer {
                room,
                viewer_id,
                at_ms,
            } => step(
                "EraseViewer",
                &st.erase_viewer,
                vec![
                    s(room),
                    s(viewer_id),
                    Box::new(*at_ms),
                    s(crate::model::ERASED_NAME),
                ],
                any,
            ),
            StoreOp::PutWebhook { room, webhook } => step(
                "PutWebhook",
                &st.put_webhook,
                vec![
                    s(room),
                    s(&webhook.url),
                    s(webhook.secret.expose()),
                    Box::new(crate::model::WebhookEvent::join(&webhook.events)),
                    Box::new(webhook.enabled),
                    Box::new(webhook.updated_ms),
                ],
                any,
            ),
            StoreOp::DeleteWebhook { room, .. } => {
                step("DeleteWebhook", &st.delete_webhook, vec![s(room)], any)
            }
            // Queued with the others, last.
            StoreOp::QueueWebhook { .. } => continue,
            StoreOp::RecordWebhookAttempt {
                room,
                attempt,
                outcome,
            } => {
                use crate::model::{AttemptOutcome, DeliveryStatus};
                let code = || -> Param { Box::new(attempt.code.map(i64::from)) };
                steps.push(step(
                    "RecordWebhookAttempt",
                    &st.log_webhook_attempt,
                    vec![
                        s(room),
                        s(&attempt.delivery_id),
                        Box::new(attempt.at_ms),
                        Box::new(attempt.duration_ms),
                        code(),
                        s(&attempt.error),
                    ],
                    Expect::Any,
                ));
                let (status, next, delivered) = match outcome {
                    AttemptOutcome::Delivered => {
                        (DeliveryStatus::Delivered, None, Some(attempt.at_ms))
                    }
                    AttemptOutcome::RetryAt(t) => (DeliveryStatus::Pending, Some(*t), None),
                    AttemptOutcome::Failed => (DeliveryStatus::Failed, None, None),
                };
                step(
                    "RecordWebhookAttempt",
                    &st.after_webhook_attempt,
                    vec![
                        s(room),
                        s(&attempt.delivery_id),
                        s(status.as_str()),
                        Box::new(next),
                        Box::new(attempt.at_ms),
                        code(),
                        s(&attempt.error),
                        Box::new(delivered),
                    ],
                    any,
                )
            }
            StoreOp::RetryWebhook {
                room,
                delivery_id,
                at_ms,
            } => step(
                "RetryWebhook",
                &st.retry_webhook,
                vec![s(room), s(delivery_id), Box::new(*at_ms)],
                any,
            ),
        };
        steps.push(next);
    }
    flush_grants(st, &mut grants, &mut steps);
    run.flush(&mut steps);
    if !queued.is_empty() {
        steps.push(Step {
            op: "QueueWebhook",
            statement: &st.queue_webhooks,
            params: queued.into_params(),
            expect: Expect::Any,
        });
    }
    steps
}

/// A run of grants as two statements: take the units (every sale of the run must have
/// enough, or the run is sold out), then insert the orders.
fn flush_grants<'s>(
    st: &'s Statements,
    grants: &mut Vec<(&str, &str, &Order)>,
    steps: &mut Vec<Step<'s>>,
) {
    if grants.is_empty() {
        return;
    }
    let sales: HashSet<(&str, &str)> = grants.iter().map(|(r, s, _)| (*r, *s)).collect();
    let rooms: Vec<String> = grants.iter().map(|(r, _, _)| r.to_string()).collect();
    let ids: Vec<String> = grants.iter().map(|(_, s, _)| s.to_string()).collect();
    let mut orders = Run::new(&st.insert_orders);
    for (room, _, order) in grants.drain(..) {
        orders.add("GrantSale", &st.insert_orders, None, room, order);
    }
    steps.push(Step {
        op: "GrantSale",
        statement: &st.take_sale_units,
        params: vec![Box::new(rooms), Box::new(ids)],
        expect: Expect::Rows(sales.len() as u64, Violation::SoldOut),
    });
    orders.flush(steps);
}

/// Applies `ops` on `client` (inside a transaction the caller opened) with every statement
/// in flight at once; the first statement that fails or breaks its expectation is the error.
pub(super) async fn apply<'o>(
    client: &impl GenericClient,
    st: &Statements,
    ops: impl Iterator<Item = &'o StoreOp>,
) -> Result<(), StoreError> {
    let steps = plan(st, ops);
    let params: Vec<_> = steps.iter().map(|s| refs(&s.params)).collect();
    let results = join_all(
        steps
            .iter()
            .zip(&params)
            .map(|(step, params)| client.execute(step.statement, params)),
    )
    .await;
    for (step, result) in steps.iter().zip(results) {
        let rows = result.map_err(|e| classify(step.op, e))?;
        if let Expect::Rows(want, violation) = step.expect {
            if rows != want {
                return Err(StoreError::Refused {
                    op: step.op,
                    violation,
                    source: None,
                });
            }
        }
    }
    Ok(())
}
