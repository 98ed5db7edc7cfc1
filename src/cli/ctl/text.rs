//! `showfloor ctl`'s human output: each record's text, in one place for replies and `watch`.

use std::fmt::Write as _;

use super::{emit, Reply};
use crate::pb::watch_room_event::Event;
use crate::pb::*;

/// Prints `reply` as text: records as their lines, tokens and keys alone on stdout (so
/// `$(…)` captures them), a draw record as its JSON.
pub(super) fn print(reply: &Reply) -> std::io::Result<()> {
    let mut s = String::new();
    match reply {
        Reply::Created(r) => {
            if let Some(room) = &r.room {
                room_text(&mut s, room);
            }
            let _ = writeln!(
                s,
                "token key: {}  (secret: signs viewer tokens)",
                r.token_key
            );
        }
        Reply::Room(r) => room_text(&mut s, r),
        Reply::Report(r) => super::reports::report_text(&mut s, r),
        Reply::Leads(r) => super::reports::leads_text(&mut s, r),
        Reply::Referrals(r) => super::reports::referrals_text(&mut s, r),
        Reply::Weights(w) => super::reports::weights_text(&mut s, w),
        Reply::Export(r) => s.push_str(&r.csv),
        Reply::Webhook(w) => super::webhooks::webhook_text(&mut s, w),
        Reply::Deliveries(r) => list(
            &mut s,
            &r.deliveries,
            "no deliveries",
            super::webhooks::delivery_text,
        ),
        Reply::Delivery(d) => super::webhooks::delivery_text(&mut s, d),
        Reply::Rooms(r) => list(&mut s, &r.rooms, "no rooms", room_line),
        Reply::TokenKey(k) => {
            let _ = writeln!(s, "{}", k.key);
        }
        Reply::Brand(b) => brand_line(&mut s, b, ""),
        Reply::Product(p) => product_text(&mut s, p),
        Reply::Products(r) => list(&mut s, &r.products, "no products", product_text),
        Reply::ViewerToken(t) => {
            eprintln!("jti {}  expires {}", t.jti, fmt_ms(t.expires_ms));
            let _ = writeln!(s, "{}", t.token);
        }
        Reply::PresenterToken(t) => {
            eprintln!("WHIP endpoint: POST {}", t.whip_path);
            eprintln!("jti {}  expires {}", t.jti, fmt_ms(t.expires_ms));
            let _ = writeln!(s, "{}", t.token);
        }
        Reply::Dealer(d) => dealer_line(&mut s, d),
        Reply::Dealers(r) => list(&mut s, &r.dealers, "no dealers", dealer_line),
        Reply::Application(a) => application_line(&mut s, a),
        Reply::Applications(r) => {
            list(&mut s, &r.applications, "no applications", application_line)
        }
        Reply::Order(o) => order_line(&mut s, o),
        Reply::Orders(page) => orders_text(&mut s, page),
        Reply::Sale { sale, currency } => sale_line(&mut s, sale, currency),
        Reply::Sales { sales, currency } => list(&mut s, &sales.sales, "no flash sales", |s, x| {
            sale_line(s, x, currency)
        }),
        Reply::Draw(d) => draw_line(&mut s, d),
        Reply::Draws(r) => list(&mut s, &r.draws, "no draws", draw_line),
        // Already JSON, and printed as is: `verify-draw` checks exactly this text.
        Reply::DrawRecordJson(record) => {
            let _ = writeln!(s, "{}", record.trim_end());
        }
        Reply::Packet(p) => packet_text(&mut s, p),
        Reply::Registration(r) => super::registration::registration_line(&mut s, r),
        Reply::Registrations(r) => list(
            &mut s,
            &r.registrations,
            "no registrations",
            super::registration::registration_line,
        ),
        Reply::Channel(c) => super::registration::channel_line(&mut s, c),
        Reply::Channels(r) => list(
            &mut s,
            &r.channels,
            "no channels",
            super::registration::channel_line,
        ),
        Reply::Import(r) => super::registration::import_text(&mut s, r),
        Reply::Catalog(r) => super::catalog_import::import_text(&mut s, r),
        Reply::Done(_, msg) => {
            let _ = writeln!(s, "{msg}");
        }
    }
    emit(&s)
}

/// Each item's text, or `none` on a line of its own for an empty list.
fn list<T>(s: &mut String, items: &[T], none: &str, text: impl Fn(&mut String, &T)) {
    if items.is_empty() {
        let _ = writeln!(s, "{none}");
    }
    for item in items {
        text(s, item);
    }
}

/// A room in a list: one line.
fn room_line(s: &mut String, r: &Room) {
    let _ = writeln!(
        s,
        "{}  {:<9}  online {:<4}  start {}  {}",
        r.id,
        state_name(r.state()),
        r.online,
        fmt_ms(r.scheduled_start_ms),
        r.title
    );
}

/// A page of orders, then the count and value of every order that matched.
fn orders_text(s: &mut String, page: &ListOrdersResponse) {
    page.orders.iter().for_each(|o| order_line(s, o));
    // Orders carry the currency; an empty page has none to show.
    let currency = page.orders.first().map_or("", |o| o.currency.as_str());
    let _ = write!(
        s,
        "total {} orders  {}",
        page.total_count,
        money(page.total_cents, currency)
    );
    match page.orders.last() {
        Some(last) if (page.orders.len() as u64) < u64::from(page.total_count) => {
            let _ = write!(
                s,
                "  (showing {}; next page: --before {})",
                page.orders.len(),
                last.id
            );
        }
        _ => {}
    }
    s.push('\n');
}

/// A room in full: several lines, then its brands.
fn room_text(s: &mut String, r: &Room) {
    let _ = writeln!(
        s,
        "room {}  {}  \"{}\"",
        r.id,
        state_name(r.state()),
        r.title
    );
    let _ = writeln!(
        s,
        "  start {}  created {}  opened {}  ended {}",
        fmt_ms(r.scheduled_start_ms),
        fmt_ms(r.created_ms),
        fmt_ms(r.opened_ms),
        fmt_ms(r.ended_ms)
    );
    let chat = r.chat_rate_limit.as_ref().map_or("-".to_string(), |l| {
        format!("{}/{}s", l.messages, l.per_seconds)
    });
    let _ = writeln!(
        s,
        "  currency {}  tiers {}  chat {}  history {}",
        r.currency,
        r.tiers.join(","),
        chat,
        r.history_window
    );
    let _ = writeln!(
        s,
        "  registration {}  phone country {}",
        super::registration::mode_name(r.registration()),
        if r.phone_country.is_empty() {
            "-"
        } else {
            &r.phone_country
        }
    );
    let _ = writeln!(
        s,
        "  online {} (peak {})  node {}",
        r.online,
        r.peak_online,
        or_dash(&r.owner_node)
    );
    if !r.banned_words.is_empty() {
        let _ = writeln!(s, "  banned words: {}", r.banned_words.join(", "));
    }
    let _ = writeln!(
        s,
        "  on air: {}  pinned: {}",
        or_dash(&r.brand_on_air),
        or_dash(&r.pinned_product)
    );
    for b in &r.brands {
        brand_line(s, b, "  ");
    }
}

fn brand_line(s: &mut String, b: &Brand, indent: &str) {
    let _ = writeln!(
        s,
        "{indent}brand {} #{}  {}  {}",
        b.id, b.position, b.name, b.logo_url
    );
}

fn product_text(s: &mut String, p: &Product) {
    let _ = writeln!(
        s,
        "product {}  brand {}  \"{}\"  moq {}  prices(cents) {}",
        p.id,
        p.brand_id,
        p.name,
        p.min_order_quantity,
        prices_text(&p.prices)
    );
    if !p.description.is_empty() {
        let _ = writeln!(s, "  {}", p.description);
    }
    if !p.link.is_empty() {
        let _ = writeln!(s, "  link {}", p.link);
    }
    for url in &p.image_urls {
        let _ = writeln!(s, "  image {url}");
    }
}

fn dealer_line(s: &mut String, d: &Dealer) {
    let status = if d.verified { "verified" } else { "public" };
    let _ = writeln!(
        s,
        "{}  {}  tier {}  company {}  updated {}",
        d.viewer_id,
        status,
        or_dash(&d.tier),
        or_dash(&d.company),
        fmt_ms(d.updated_ms)
    );
}

fn application_line(s: &mut String, a: &DealerApplication) {
    let status = a.status();
    let _ = write!(
        s,
        "application {}  {}  viewer {} ({})  company {}  licence {}  contact {}  at {}",
        a.id,
        status_name(status),
        a.viewer_id,
        a.display_name,
        or_dash(&a.company),
        or_dash(&a.licence_number),
        or_dash(&a.contact),
        fmt_ms(a.created_ms)
    );
    match status {
        ApplicationStatus::Approved => {
            let _ = write!(s, "  tier {}", a.tier);
        }
        ApplicationStatus::Rejected => {
            let _ = write!(s, "  reason {:?}", a.reason);
        }
        _ => {}
    }
    if a.decided_ms != 0 {
        let _ = write!(s, "  decided {}", fmt_ms(a.decided_ms));
    }
    s.push('\n');
}

/// `12345 cents CNY`: money stays in integer cents, as on the wire.
pub(super) fn money(cents: i64, currency: &str) -> String {
    if currency.is_empty() {
        format!("{cents} cents")
    } else {
        format!("{cents} cents {currency}")
    }
}

fn order_line(s: &mut String, o: &Order) {
    let _ = write!(
        s,
        "order {}  {}  {} ({})  {} × {} \"{}\" @ {} = {}  placed {}",
        o.id,
        order_status_name(o.status()),
        o.viewer_id,
        o.tier,
        o.quantity,
        o.product_id,
        o.product_name,
        o.unit_price_cents,
        money(o.total_cents, &o.currency),
        fmt_ms(o.created_ms)
    );
    if !o.sale_id.is_empty() {
        let _ = write!(s, "  flash sale {}", o.sale_id);
    }
    if !o.status_reason.is_empty() {
        let _ = write!(s, "  reason {:?}", o.status_reason);
    }
    s.push('\n');
}

fn sale_line(s: &mut String, x: &FlashSale, currency: &str) {
    let _ = write!(
        s,
        "sale {}  {}  product {}  brand {}  left {}/{}  limit {}/dealer  {} {}  from {} to {}",
        x.id,
        phase_name(x.phase()),
        x.product_id,
        x.brand_id,
        x.remaining,
        x.stock,
        x.per_dealer_limit,
        prices_label(currency),
        prices_text(&x.prices),
        fmt_ms(x.start_ms),
        fmt_ms(x.end_ms)
    );
    if x.ended_ms != 0 {
        let _ = write!(s, "  ended early {}", fmt_ms(x.ended_ms));
    }
    s.push('\n');
}

/// `gold=4900 silver=5900`.
pub(super) fn prices_text(prices: &[TierPrice]) -> String {
    let prices: Vec<String> = prices
        .iter()
        .map(|t| format!("{}={}", t.tier, t.price_cents))
        .collect();
    prices.join(" ")
}

/// `prices(cents CNY)`, the label in front of a `prices_text` list.
fn prices_label(currency: &str) -> String {
    if currency.is_empty() {
        "prices(cents)".to_string()
    } else {
        format!("prices(cents {currency})")
    }
}

fn draw_line(s: &mut String, d: &DrawRecord) {
    let open = d.closed_ms == 0;
    let _ = write!(
        s,
        "draw {}  {}  \"{}\"  winners {}  entry {}  opened {}",
        d.draw_id,
        match (open, d.drawn_ms) {
            (true, _) => "open",
            (false, 0) => "awaiting-beacon",
            (false, _) => "closed",
        },
        d.prize,
        d.winners_count,
        rule_text(d.eligibility.as_ref()),
        fmt_ms(d.opened_ms)
    );
    if open {
        let _ = write!(s, "  closes {}", fmt_ms(d.closes_ms));
    } else {
        let _ = write!(
            s,
            "  closed {}  entrants {}  won by {}",
            fmt_ms(d.closed_ms),
            d.entrant_count,
            if d.winners.is_empty() {
                "-".to_string()
            } else {
                d.winners.join(",")
            }
        );
    }
    if !d.beacon_source.is_empty() {
        let _ = write!(s, "  beacon source {:?}", d.beacon_source);
        if d.closed_ms != 0 && d.drawn_ms == 0 {
            let _ = write!(s, " (awaiting the beacon)");
        }
    }
    if !d.beacon.is_empty() {
        let _ = write!(s, "  beacon {:?}", d.beacon);
    }
    let _ = writeln!(s, "  commitment {}", d.commitment);
}

fn rule_text(e: Option<&DrawEligibility>) -> String {
    use draw_eligibility::Rule;
    match e.and_then(|e| e.rule.as_ref()) {
        None | Some(Rule::Everyone(_)) => "everyone".to_string(),
        Some(Rule::Dealers(_)) => "dealers".to_string(),
        Some(Rule::Tiers(t)) => format!("tiers {}", t.tiers.join(",")),
        Some(Rule::Keyword(k)) => format!("keyword {k:?}"),
        Some(Rule::WatchedMinutes(m)) => format!("watched {m}+ min"),
    }
}

fn packet_text(s: &mut String, p: &RedPacket) {
    let tiers = if p.tiers.is_empty() {
        "everyone".to_string()
    } else {
        format!("tiers {}", p.tiers.join(","))
    };
    let _ = write!(
        s,
        "red packet {}  {} in {} shares  grabbed {}/{}  left {}  for {}  created {}  expires {}",
        p.id,
        money(p.total_cents, &p.currency),
        p.count,
        p.grabs.len(),
        p.count,
        money(p.remaining_cents, &p.currency),
        tiers,
        fmt_ms(p.created_ms),
        fmt_ms(p.expires_ms)
    );
    if !p.message.is_empty() {
        let _ = write!(s, "  {:?}", p.message);
    }
    s.push('\n');
    for g in &p.grabs {
        let _ = writeln!(
            s,
            "  {}  {}",
            g.viewer_id,
            money(g.amount_cents, &p.currency)
        );
    }
}

/// A host-console event: one line, starting with its time of day.
pub(super) fn event_line(ev: &WatchRoomEvent) -> String {
    match &ev.event {
        Some(Event::Chat(m)) => format!(
            "{} chat #{} {} ({}){}: {}  [{}]",
            clock(m.at_ms),
            m.seq,
            m.viewer_id,
            m.display_name,
            if m.is_dealer { " [dealer]" } else { "" },
            m.text,
            m.id
        ),
        Some(Event::Application(a)) => {
            let mut s = String::new();
            application_line(&mut s, a);
            format!("{} {}", clock(a.created_ms), s.trim_end())
        }
        Some(Event::Stats(st)) => format!(
            "{} stats online {} (peak {})  dealers {}  chat/min {}  likes {}  seq {}",
            clock(st.at_ms),
            st.online,
            st.peak_online,
            st.dealers_online,
            st.chat_per_minute,
            st.likes,
            st.seq
        ),
        Some(Event::Order(o)) => {
            let mut s = String::new();
            order_line(&mut s, o);
            format!("{} {}", clock(o.updated_ms), s.trim_end())
        }
        Some(Event::Action(a)) => format!(
            "{} {} {} {}",
            clock(a.at_ms),
            a.action,
            or_dash(&a.viewer_id),
            a.detail
        ),
        Some(Event::LeadHot(l)) => format!(
            "{} lead_hot {} ({}, {}) score {}{}  interest {}",
            clock(crate::model::now_ms()),
            l.viewer_id,
            l.name,
            or_dash(&l.company),
            l.score,
            if l.ordered { "" } else { "  not ordered yet" },
            l.brand_interest.join(",")
        ),
        Some(Event::RegistrationPending(r)) => {
            let mut s = String::new();
            super::registration::registration_line(&mut s, r);
            format!(
                "{} registration_pending {}",
                clock(r.created_ms),
                s.trim_end()
            )
        }
        None => "(empty event)".to_string(),
    }
}

fn or_dash(s: &str) -> &str {
    if s.is_empty() {
        "-"
    } else {
        s
    }
}

/// `HH:MM:SS` (UTC) of a Unix-milliseconds time.
fn clock(ms: i64) -> String {
    let t = fmt_ms(ms);
    t.get(11..19).unwrap_or(&t).to_string()
}

/// ISO 8601 UTC (`2025-01-31T09:00:00Z`) of a Unix-milliseconds time; `-` for 0.
pub(super) fn fmt_ms(ms: i64) -> String {
    if ms == 0 {
        return "-".to_string();
    }
    let secs = ms.div_euclid(1000);
    let (days, sod) = (secs.div_euclid(86_400), secs.rem_euclid(86_400));
    // Civil date from days since 1970-01-01 (H. Hinnant's algorithm).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}Z",
        sod / 3600,
        sod / 60 % 60,
        sod % 60
    )
}

// Enum values as the text shows them: the words `--state` and `--status` take.

fn state_name(s: RoomState) -> &'static str {
    match s {
        RoomState::Unspecified => "unspecified",
        RoomState::Scheduled => "scheduled",
        RoomState::Live => "live",
        RoomState::Ended => "ended",
    }
}

fn status_name(s: ApplicationStatus) -> &'static str {
    match s {
        ApplicationStatus::Unspecified => "unspecified",
        ApplicationStatus::Pending => "pending",
        ApplicationStatus::Approved => "approved",
        ApplicationStatus::Rejected => "rejected",
    }
}

pub(super) fn order_status_name(s: OrderStatus) -> &'static str {
    match s {
        OrderStatus::Unspecified => "unspecified",
        OrderStatus::Placed => "placed",
        OrderStatus::Confirmed => "confirmed",
        OrderStatus::Shipped => "shipped",
        OrderStatus::Cancelled => "cancelled",
    }
}

fn phase_name(p: SalePhase) -> &'static str {
    match p {
        SalePhase::Unspecified => "unspecified",
        SalePhase::Scheduled => "scheduled",
        SalePhase::Live => "live",
        SalePhase::SoldOut => "sold_out",
        SalePhase::Ended => "ended",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_money_in_cents() {
        assert_eq!(money(129_900, "CNY"), "129900 cents CNY");
        assert_eq!(money(0, ""), "0 cents");
        let prices = [
            TierPrice {
                tier: "gold".into(),
                price_cents: 4_900,
            },
            TierPrice {
                tier: "silver".into(),
                price_cents: 5_900,
            },
        ];
        assert_eq!(prices_text(&prices), "gold=4900 silver=5900");
    }

    #[test]
    fn formats_times() {
        assert_eq!(fmt_ms(0), "-");
        assert_eq!(fmt_ms(1_700_000_000_000), "2023-11-14T22:13:20Z");
        assert_eq!(fmt_ms(951_782_400_000), "2000-02-29T00:00:00Z");
        assert_eq!(clock(1_700_000_000_000), "22:13:20");
    }
}
