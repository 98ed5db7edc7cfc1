//! `showfloor ctl`: each subcommand as its control-plane request, and the reply it gets.

use tonic::Status;

use super::args::{CtlCommand, StatusArg};
use super::{Client, Reply};
use crate::pb::*;

/// The room's currency, to label flash-sale prices; empty if the lookup fails, which only
/// costs the label (the sale itself was created or read already).
async fn room_currency(c: &mut Client, room: &str) -> String {
    let req = GetRoomRequest {
        room_id: room.to_string(),
    };
    c.get_room(req)
        .await
        .map(|r| r.into_inner().currency)
        .unwrap_or_default()
}

/// Sends `cmd`'s request and returns the reply; `watch` is a stream, run by `watch::run`.
pub(super) async fn call(c: &mut Client, cmd: CtlCommand) -> Result<Reply, Status> {
    use CtlCommand as C;
    let room_ref = |room_id: String| RoomRef { room_id };
    Ok(match cmd {
        C::CreateRoom {
            title,
            scheduled_start_ms,
            chat_messages,
            chat_per_seconds,
            banned_words,
            history_window,
            tiers,
            currency,
            registration,
            phone_country,
        } => {
            let chat_rate_limit = match (chat_messages, chat_per_seconds) {
                (Some(messages), Some(per_seconds)) => Some(ChatRateLimit {
                    messages,
                    per_seconds,
                }),
                _ => None,
            };
            let req = CreateRoomRequest {
                title,
                scheduled_start_ms: scheduled_start_ms.unwrap_or_default(),
                chat_rate_limit,
                banned_words,
                history_window: history_window.unwrap_or_default(),
                tiers,
                currency: currency.unwrap_or_default(),
                registration: registration.map_or(0, |m| RegistrationMode::from(m) as i32),
                phone_country: phone_country.unwrap_or_default(),
            };
            Reply::Created(c.create_room(req).await?.into_inner())
        }
        C::SetRegistration {
            room,
            mode,
            phone_country,
        } => {
            let req = SetRegistrationRequest {
                room_id: room,
                mode: RegistrationMode::from(mode) as i32,
                phone_country,
            };
            Reply::Room(c.set_registration(req).await?.into_inner())
        }
        C::Registrations { room, status } => {
            let status = status.map_or(0, |s| match s {
                StatusArg::Pending => RegistrationStatus::Pending as i32,
                StatusArg::Approved => RegistrationStatus::Approved as i32,
                StatusArg::Rejected => RegistrationStatus::Rejected as i32,
            });
            let req = ListRegistrationsRequest {
                room_id: room,
                status,
            };
            Reply::Registrations(c.list_registrations(req).await?.into_inner())
        }
        C::ApproveRegistration { room, registration } => {
            let req = RegistrationRef {
                room_id: room,
                registration_id: registration,
            };
            Reply::Registration(c.approve_registration(req).await?.into_inner())
        }
        C::RejectRegistration { room, registration } => {
            let req = RegistrationRef {
                room_id: room,
                registration_id: registration,
            };
            Reply::Registration(c.reject_registration(req).await?.into_inner())
        }
        C::CreateChannel { room, name } => {
            let req = CreateChannelRequest {
                room_id: room,
                name,
            };
            Reply::Channel(c.create_channel(req).await?.into_inner())
        }
        C::Channels { room } => {
            Reply::Channels(c.list_channels(room_ref(room)).await?.into_inner())
        }
        C::Report { room } => {
            let req = GetRoomReportRequest { room_id: room };
            Reply::Report(c.get_room_report(req).await?.into_inner())
        }
        C::Leads {
            room,
            min_score,
            stage,
            company,
            brand,
            sort,
            limit,
        } => Reply::Leads(
            c.list_leads(super::reports::leads_request(
                room, min_score, stage, company, brand, sort, limit,
            ))
            .await?
            .into_inner(),
        ),
        C::Export { room, kind, out } => {
            let req = ExportReportRequest {
                room_id: room,
                kind: super::reports::export_kind(kind) as i32,
            };
            let reply = c.export_report(req).await?.into_inner();
            if let Some(path) = out {
                std::fs::write(&path, &reply.csv).map_err(|e| {
                    Status::internal(format!("cannot write {}: {e}", path.display()))
                })?;
                Reply::Done(Empty {}, format!("wrote {}", path.display()))
            } else {
                Reply::Export(reply)
            }
        }
        C::Referrals { room } => {
            let req = GetReferralTreeRequest { room_id: room };
            Reply::Referrals(c.get_referral_tree(req).await?.into_inner())
        }
        C::SetLeadWeights {
            room,
            weights,
            half_life_hours,
            warm_at,
            hot_at,
            reset,
        } => {
            let req = SetLeadWeightsRequest {
                room_id: room,
                activities: super::reports::parse_weights(&weights)?,
                half_life_hours,
                warm_at,
                hot_at,
                reset,
            };
            Reply::Weights(c.set_lead_weights(req).await?.into_inner())
        }
        C::EraseRegistrant { room, registration } => {
            let req = RegistrationRef {
                room_id: room,
                registration_id: registration,
            };
            Reply::Registration(c.erase_registrant(req).await?.into_inner())
        }
        C::SetWebhook {
            room,
            url,
            events,
            secret,
            rotate_secret,
            disabled,
        } => {
            let req = SetWebhookRequest {
                room_id: room,
                url,
                secret: secret.unwrap_or_default(),
                events,
                disabled,
                rotate_secret,
            };
            Reply::Webhook(c.set_webhook(req).await?.into_inner())
        }
        C::Webhook { room } => Reply::Webhook(c.get_webhook(room_ref(room)).await?.into_inner()),
        C::DeleteWebhook { room } => Reply::Done(
            c.delete_webhook(room_ref(room)).await?.into_inner(),
            "webhook removed".into(),
        ),
        C::WebhookDeliveries {
            room,
            status,
            limit,
        } => {
            let req = ListWebhookDeliveriesRequest {
                room_id: room,
                status: status
                    .and_then(|s| clap::ValueEnum::to_possible_value(&s))
                    .map(|v| v.get_name().to_string())
                    .unwrap_or_default(),
                limit: limit.unwrap_or_default(),
            };
            Reply::Deliveries(c.list_webhook_deliveries(req).await?.into_inner())
        }
        C::RetryWebhook { room, delivery } => {
            let req = WebhookDeliveryRef {
                room_id: room,
                delivery_id: delivery,
            };
            Reply::Delivery(c.retry_webhook_delivery(req).await?.into_inner())
        }
        C::ImportDealers {
            room,
            file,
            dry_run,
        } => {
            let csv = std::fs::read_to_string(&file).map_err(|e| {
                Status::invalid_argument(format!("cannot read {}: {e}", file.display()))
            })?;
            let req = ImportDealersRequest {
                room_id: room,
                csv,
                dry_run,
            };
            Reply::Import(c.import_dealers(req).await?.into_inner())
        }
        C::ImportCatalog {
            room,
            file,
            dry_run,
        } => {
            let csv = std::fs::read_to_string(&file).map_err(|e| {
                Status::invalid_argument(format!("cannot read {}: {e}", file.display()))
            })?;
            let req = ImportCatalogRequest {
                room_id: room,
                csv,
                dry_run,
            };
            Reply::Catalog(c.import_catalog(req).await?.into_inner())
        }
        C::GetRoom { room } => {
            let req = GetRoomRequest { room_id: room };
            Reply::Room(c.get_room(req).await?.into_inner())
        }
        C::ListRooms { state } => {
            let state = state.map_or(RoomState::Unspecified, RoomState::from);
            let req = ListRoomsRequest {
                state: state.into(),
            };
            Reply::Rooms(c.list_rooms(req).await?.into_inner())
        }
        C::OpenRoom { room } => Reply::Room(c.open_room(room_ref(room)).await?.into_inner()),
        C::CloseRoom { room } => Reply::Room(c.close_room(room_ref(room)).await?.into_inner()),
        C::RoomKey { room } => {
            Reply::TokenKey(c.get_room_token_key(room_ref(room)).await?.into_inner())
        }
        C::AddBrand {
            room,
            name,
            logo_url,
            position,
        } => {
            let req = AddBrandRequest {
                room_id: room,
                name,
                logo_url,
                position,
            };
            Reply::Brand(c.add_brand(req).await?.into_inner())
        }
        C::UpdateBrand {
            room,
            brand,
            name,
            logo_url,
            position,
        } => {
            let req = UpdateBrandRequest {
                room_id: room,
                brand_id: brand,
                name,
                logo_url,
                position,
            };
            Reply::Brand(c.update_brand(req).await?.into_inner())
        }
        C::RemoveBrand { room, brand } => {
            let msg = format!("removed brand {brand} from room {room}");
            let req = BrandRef {
                room_id: room,
                brand_id: brand,
            };
            Reply::Done(c.remove_brand(req).await?.into_inner(), msg)
        }
        C::SwitchBrand { room, brand } => {
            let req = BrandRef {
                room_id: room,
                brand_id: brand,
            };
            Reply::Room(c.switch_brand(req).await?.into_inner())
        }
        C::UpsertProduct {
            room,
            brand,
            id,
            name,
            description,
            image_urls,
            link,
            moq,
            prices,
        } => {
            let req = UpsertProductRequest {
                room_id: room,
                product_id: id.unwrap_or_default(),
                brand_id: brand,
                name,
                description: description.unwrap_or_default(),
                image_urls,
                link,
                min_order_quantity: moq,
                prices,
            };
            Reply::Product(c.upsert_product(req).await?.into_inner())
        }
        C::RemoveProduct { room, product } => {
            let msg = format!("removed product {product} from room {room}");
            let req = ProductRef {
                room_id: room,
                product_id: product,
            };
            Reply::Done(c.remove_product(req).await?.into_inner(), msg)
        }
        C::ListProducts { room, brand } => {
            let req = ListProductsRequest {
                room_id: room,
                brand_id: brand.unwrap_or_default(),
            };
            Reply::Products(c.list_products(req).await?.into_inner())
        }
        C::Pin { room, product } => {
            let msg = format!("pinned product {product} in room {room}");
            let req = ProductRef {
                room_id: room,
                product_id: product,
            };
            Reply::Done(c.pin_product(req).await?.into_inner(), msg)
        }
        C::Unpin { room } => {
            let msg = format!("unpinned in room {room}");
            Reply::Done(c.unpin_product(room_ref(room)).await?.into_inner(), msg)
        }
        C::IssueToken {
            room,
            viewer,
            name,
            inviter,
            ttl,
        } => {
            let req = IssueViewerTokenRequest {
                room_id: room,
                viewer_id: viewer,
                display_name: name.unwrap_or_default(),
                inviter_id: inviter.unwrap_or_default(),
                ttl_seconds: ttl.unwrap_or_default(),
            };
            Reply::ViewerToken(c.issue_viewer_token(req).await?.into_inner())
        }
        C::IssuePresenterToken {
            room,
            brand,
            presenter,
            ttl,
        } => {
            let req = IssuePresenterTokenRequest {
                room_id: room,
                brand_id: brand,
                presenter_id: presenter.unwrap_or_default(),
                ttl_seconds: ttl.unwrap_or_default(),
            };
            Reply::PresenterToken(c.issue_presenter_token(req).await?.into_inner())
        }
        C::VerifyDealer {
            room,
            viewer,
            tier,
            company,
        } => {
            let req = VerifyDealerRequest {
                room_id: room,
                viewer_id: viewer,
                tier,
                company: company.unwrap_or_default(),
            };
            Reply::Dealer(c.verify_dealer(req).await?.into_inner())
        }
        C::RevokeDealer { room, viewer } => {
            let req = ViewerRef {
                room_id: room,
                viewer_id: viewer,
            };
            Reply::Dealer(c.revoke_dealer(req).await?.into_inner())
        }
        C::ListDealers { room } => {
            Reply::Dealers(c.list_dealers(room_ref(room)).await?.into_inner())
        }
        C::ListApplications { room, status } => {
            let status = status.map_or(ApplicationStatus::Unspecified, ApplicationStatus::from);
            let req = ListDealerApplicationsRequest {
                room_id: room,
                status: status.into(),
            };
            Reply::Applications(c.list_dealer_applications(req).await?.into_inner())
        }
        C::ApproveApplication { room, app, tier } => {
            let req = ApproveDealerApplicationRequest {
                room_id: room,
                application_id: app,
                tier,
            };
            Reply::Application(c.approve_dealer_application(req).await?.into_inner())
        }
        C::RejectApplication { room, app, reason } => {
            let req = RejectDealerApplicationRequest {
                room_id: room,
                application_id: app,
                reason,
            };
            Reply::Application(c.reject_dealer_application(req).await?.into_inner())
        }
        C::Mute {
            room,
            viewer,
            seconds,
        } => {
            let msg = if seconds == 0 {
                format!("unmuted {viewer} in room {room}")
            } else {
                format!("muted {viewer} in room {room} for {seconds}s")
            };
            let req = MuteViewerRequest {
                room_id: room,
                viewer_id: viewer,
                duration_seconds: seconds,
            };
            Reply::Done(c.mute_viewer(req).await?.into_inner(), msg)
        }
        C::Kick {
            room,
            viewer,
            reason,
        } => {
            let msg = format!("kicked {viewer} from room {room}");
            let req = KickViewerRequest {
                room_id: room,
                viewer_id: viewer,
                reason: reason.unwrap_or_default(),
            };
            Reply::Done(c.kick_viewer(req).await?.into_inner(), msg)
        }
        C::RevokeToken { room, jti, reason } => {
            let msg = format!("revoked token {jti} in room {room}");
            let req = RevokeTokenRequest {
                room_id: room,
                jti,
                reason: reason.unwrap_or_default(),
            };
            Reply::Done(c.revoke_token(req).await?.into_inner(), msg)
        }
        C::DeleteMessage { room, message } => {
            let msg = format!("deleted message {message} in room {room}");
            let req = DeleteMessageRequest {
                room_id: room,
                message_id: message,
            };
            Reply::Done(c.delete_message(req).await?.into_inner(), msg)
        }
        C::Announce { room, text } => {
            let msg = format!("announced in room {room}");
            let req = AnnounceRequest {
                room_id: room,
                text,
            };
            Reply::Done(c.announce(req).await?.into_inner(), msg)
        }
        C::ListOrders {
            room,
            brand,
            product,
            viewer,
            sale,
            status,
            since_ms,
            until_ms,
            limit,
            before,
        } => {
            let status = status.map_or(OrderStatus::Unspecified, OrderStatus::from);
            let req = ListOrdersRequest {
                room_id: room,
                brand_id: brand.unwrap_or_default(),
                product_id: product.unwrap_or_default(),
                viewer_id: viewer.unwrap_or_default(),
                status: status.into(),
                since_ms: since_ms.unwrap_or_default(),
                until_ms: until_ms.unwrap_or_default(),
                limit: limit.unwrap_or_default(),
                before_order_id: before.unwrap_or_default(),
                sale_id: sale.unwrap_or_default(),
            };
            Reply::Orders(c.list_orders(req).await?.into_inner())
        }
        C::GetOrder { room, order } => {
            let req = OrderRef {
                room_id: room,
                order_id: order,
            };
            Reply::Order(c.get_order(req).await?.into_inner())
        }
        C::OrderStatus {
            room,
            order,
            status,
            reason,
        } => {
            let req = UpdateOrderStatusRequest {
                room_id: room,
                order_id: order,
                status: OrderStatus::from(status).into(),
                reason: reason.unwrap_or_default(),
            };
            Reply::Order(c.update_order_status(req).await?.into_inner())
        }
        C::CreateFlashSale {
            room,
            product,
            stock,
            limit,
            prices,
            start_ms,
            in_seconds,
            duration,
            tiers,
        } => {
            let req = CreateFlashSaleRequest {
                room_id: room.clone(),
                product_id: product,
                stock,
                per_dealer_limit: limit,
                prices,
                start_ms: sale_start_ms(start_ms, in_seconds, crate::model::now_ms()),
                duration_seconds: duration,
                tiers,
            };
            let sale = c.create_flash_sale(req).await?.into_inner();
            let currency = room_currency(c, &room).await;
            Reply::Sale { sale, currency }
        }
        C::GetFlashSale { room, sale } => {
            let req = FlashSaleRef {
                room_id: room.clone(),
                sale_id: sale,
            };
            let sale = c.get_flash_sale(req).await?.into_inner();
            let currency = room_currency(c, &room).await;
            Reply::Sale { sale, currency }
        }
        C::ListFlashSales { room } => {
            let sales = c
                .list_flash_sales(room_ref(room.clone()))
                .await?
                .into_inner();
            let currency = room_currency(c, &room).await;
            Reply::Sales { sales, currency }
        }
        C::EndFlashSale { room, sale } => {
            let req = FlashSaleRef {
                room_id: room.clone(),
                sale_id: sale,
            };
            let sale = c.end_flash_sale(req).await?.into_inner();
            let currency = room_currency(c, &room).await;
            Reply::Sale { sale, currency }
        }
        C::CreateDraw {
            room,
            prize,
            winners,
            seconds,
            dealers,
            tiers,
            keyword,
            watched_minutes,
            beacon_source,
        } => {
            let req = CreateDrawRequest {
                room_id: room,
                prize,
                winners,
                eligibility: draw_rule(dealers, tiers, keyword, watched_minutes),
                entry_seconds: seconds,
                beacon_source: beacon_source.unwrap_or_default(),
            };
            Reply::Draw(c.create_draw(req).await?.into_inner())
        }
        C::CloseDraw { room, draw, beacon } => {
            let req = CloseDrawRequest {
                room_id: room,
                draw_id: draw,
                beacon: beacon.unwrap_or_default(),
            };
            Reply::Draw(c.close_draw(req).await?.into_inner())
        }
        C::GetDrawRecord { room, draw } => {
            let req = DrawRef {
                room_id: room,
                draw_id: draw,
            };
            Reply::DrawRecordJson(c.get_draw_record(req).await?.into_inner().record_json)
        }
        C::ListDraws { room } => Reply::Draws(c.list_draws(room_ref(room)).await?.into_inner()),
        C::DropRedPacket {
            room,
            total_cents,
            count,
            tiers,
            message,
            seconds,
        } => {
            let req = DropRedPacketRequest {
                room_id: room,
                total_cents,
                count,
                tiers,
                message: message.unwrap_or_default(),
                duration_seconds: seconds.unwrap_or_default(),
            };
            Reply::Packet(c.drop_red_packet(req).await?.into_inner())
        }
        C::GetRedPacket { room, packet } => {
            let req = RedPacketRef {
                room_id: room,
                packet_id: packet,
            };
            Reply::Packet(c.get_red_packet(req).await?.into_inner())
        }
        C::Watch { .. } => unreachable!("watch is a stream, run by watch::run"),
    })
}

/// The sale's `start_ms`: `--start-ms` as given, `--in-seconds` from `now_ms`, else 0 (now).
fn sale_start_ms(start_ms: Option<i64>, in_seconds: Option<u32>, now_ms: i64) -> i64 {
    match (start_ms, in_seconds) {
        (Some(ms), _) => ms,
        // 0 seconds is "now" on the server's clock, not on ours.
        (None, Some(0)) | (None, None) => 0,
        (None, Some(secs)) => now_ms + i64::from(secs) * 1000,
    }
}

/// The draw's rule from the (mutually exclusive) flags; `None` means everyone connected.
fn draw_rule(
    dealers: bool,
    tiers: Vec<String>,
    keyword: Option<String>,
    watched_minutes: Option<u32>,
) -> Option<DrawEligibility> {
    use draw_eligibility::Rule;
    let rule = if dealers {
        Rule::Dealers(Empty {})
    } else if !tiers.is_empty() {
        Rule::Tiers(TierList { tiers })
    } else if let Some(keyword) = keyword {
        Rule::Keyword(keyword)
    } else if let Some(minutes) = watched_minutes {
        Rule::WatchedMinutes(minutes)
    } else {
        return None;
    };
    Some(DrawEligibility { rule: Some(rule) })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sale_start_is_explicit_relative_or_now() {
        let now = 1_700_000_000_000;
        assert_eq!(sale_start_ms(None, None, now), 0);
        assert_eq!(
            sale_start_ms(Some(1_700_000_500_000), None, now),
            1_700_000_500_000
        );
        assert_eq!(sale_start_ms(None, Some(90), now), now + 90_000);
        assert_eq!(
            sale_start_ms(None, Some(0), now),
            0,
            "0 s is the server's now"
        );
    }

    #[test]
    fn draw_rules_default_to_everyone() {
        use draw_eligibility::Rule;
        assert_eq!(draw_rule(false, vec![], None, None), None);
        let rule = |d| draw_rule(d, vec![], None, None).and_then(|e| e.rule);
        assert_eq!(rule(true), Some(Rule::Dealers(Empty {})));
        let tiers = vec!["gold".to_string(), "silver".to_string()];
        assert_eq!(
            draw_rule(false, tiers.clone(), None, None).and_then(|e| e.rule),
            Some(Rule::Tiers(TierList { tiers }))
        );
        assert_eq!(
            draw_rule(false, vec![], Some("lucky".into()), None).and_then(|e| e.rule),
            Some(Rule::Keyword("lucky".into()))
        );
        assert_eq!(
            draw_rule(false, vec![], None, Some(15)).and_then(|e| e.rule),
            Some(Rule::WatchedMinutes(15))
        );
    }
}
