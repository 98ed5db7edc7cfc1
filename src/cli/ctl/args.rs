//! `showfloor ctl`'s command line: global options and one subcommand per control-plane RPC.

use crate::pb::{ApplicationStatus, OrderStatus, RoomState, TierPrice};

const GLOBAL: &str = "Global options";

const EXIT_HELP: &str = "\
Exit status:
  0   success (also when `watch` ends or is stopped with Ctrl-C)
  1   the server answered with a gRPC error, printed as `error: <CODE>: <message>`
  2   usage error (bad flags, no API key, bad server address)
  69  cannot connect to the server

Human output goes to stdout; `issue-token` and `issue-presenter-token` print only the token on
stdout (details on stderr), so `TOKEN=$(showfloor ctl issue-token ROOM VIEWER)` works. With
--json every reply is printed as one JSON object: the reply message in the proto3 JSON mapping
with the proto's field names (64-bit integers as strings, enums by their proto names, fields at
their default value included); `watch` prints one object per line.
`get-draw-record` prints the draw's record JSON as is in both modes, so
`showfloor ctl get-draw-record ROOM DRAW > record.json` feeds `showfloor verify-draw record.json`.";

/// Talk to a running Showfloor server's control plane.
#[derive(clap::Args, Debug)]
#[command(after_help = EXIT_HELP)]
pub struct CtlArgs {
    /// Control-plane address.
    #[arg(
        long,
        global = true,
        help_heading = GLOBAL,
        env = "SHOWFLOOR_SERVER",
        default_value = "http://127.0.0.1:7881"
    )]
    pub(super) server: String,
    /// PEM file of a certificate authority to trust for an `https://` server (besides the
    /// system's), e.g. a private CA.
    #[arg(long, global = true, help_heading = GLOBAL, env = "SHOWFLOOR_CA")]
    pub(super) ca: Option<std::path::PathBuf>,
    /// Host API key, sent as `authorization: Bearer <key>` (required).
    #[arg(
        long,
        global = true,
        help_heading = GLOBAL,
        env = "SHOWFLOOR_API_KEY",
        hide_env_values = true
    )]
    pub(super) key: Option<String>,
    /// Print the reply message as JSON (proto3 JSON mapping, the proto's field names) instead
    /// of human text.
    #[arg(long, global = true, help_heading = GLOBAL)]
    pub(super) json: bool,
    #[command(subcommand)]
    pub(super) cmd: CtlCommand,
}

#[derive(clap::Subcommand, Debug)]
pub(super) enum CtlCommand {
    /// Create a room (state scheduled); prints the room and its token-signing key.
    CreateRoom {
        /// Room title.
        #[arg(long)]
        title: String,
        /// Planned start, Unix milliseconds.
        #[arg(long)]
        scheduled_start_ms: Option<i64>,
        /// Chat rate limit: at most this many messages... (server default 5)
        #[arg(long, requires = "chat_per_seconds")]
        chat_messages: Option<u32>,
        /// ...per this many seconds (server default 10).
        #[arg(long, requires = "chat_messages")]
        chat_per_seconds: Option<u32>,
        /// A banned chat word (repeatable).
        #[arg(long = "banned-word", value_name = "WORD")]
        banned_words: Vec<String>,
        /// Past events kept for resume (server default 1000).
        #[arg(long)]
        history_window: Option<u32>,
        /// A dealer tier, best first (repeatable; server default gold, silver, bronze).
        #[arg(long = "tier", value_name = "TIER")]
        tiers: Vec<String>,
        /// ISO 4217 code (server default CNY).
        #[arg(long)]
        currency: Option<String>,
        /// Who may register by themselves (default tokens-only: the host's backend mints
        /// tokens).
        #[arg(long, value_enum)]
        registration: Option<RegistrationArg>,
        /// ISO 3166 country (e.g. CN) for registrants' phone numbers typed without +.
        #[arg(long)]
        phone_country: Option<String>,
    },
    /// Set who may register by themselves (and the phones' default country).
    SetRegistration {
        room: String,
        #[arg(value_enum)]
        mode: RegistrationArg,
        /// ISO 3166 country for phone numbers typed without + ("" for none); unchanged if
        /// not given.
        #[arg(long)]
        phone_country: Option<String>,
    },
    /// List a room's registrations (name, company, phone, inviter, channel).
    Registrations {
        room: String,
        #[arg(long, value_enum)]
        status: Option<StatusArg>,
    },
    /// Approve a pending registration (approval mode).
    ApproveRegistration { room: String, registration: String },
    /// Reject a pending registration.
    RejectRegistration { room: String, registration: String },
    /// Create a channel link (a WeChat group, a newsletter, a sales rep).
    CreateChannel { room: String, name: String },
    /// List a room's channel links.
    Channels { room: String },
    /// Import dealers from a CSV file (name,company,phone,tier): each becomes a verified
    /// dealer with a personal link. Every bad row is listed (line and reason) and then
    /// nothing is written; --dry-run writes nothing in any case.
    ImportDealers {
        room: String,
        file: std::path::PathBuf,
        #[arg(long)]
        dry_run: bool,
    },
    /// Import a product catalogue from a CSV file
    /// (brand,name,description,image_urls,link,min_order_quantity and one price_<tier> column
    /// per tier; prices like 12.50). Brands are matched by name and added if new; a product
    /// with the same brand and name is updated. Every bad row is listed (line, column, reason) and then nothing is written;
    /// --dry-run writes nothing in any case (docs/catalog.md).
    ImportCatalog {
        room: String,
        file: std::path::PathBuf,
        #[arg(long)]
        dry_run: bool,
    },
    /// The room report: audience, concurrency per minute, watch time, brand segments,
    /// products, funnel, channels (docs/reports.md).
    Report { room: String },
    /// Leads with score, stage and the breakdown behind it; companies; follow-ups per brand.
    Leads {
        room: String,
        /// Only leads with at least this score.
        #[arg(long)]
        min_score: Option<f64>,
        #[arg(long, value_enum)]
        stage: Option<StageArg>,
        /// Only companies whose name contains this (any case).
        #[arg(long)]
        company: Option<String>,
        /// Only viewers interested in this brand.
        #[arg(long)]
        brand: Option<String>,
        #[arg(long, value_enum, default_value = "score")]
        sort: LeadSortArg,
        /// At most this many leads.
        #[arg(long)]
        limit: Option<u32>,
    },
    /// One report as CSV on stdout (or into --out FILE): leads, orders, products, segments,
    /// referrals.
    Export {
        room: String,
        #[arg(value_enum)]
        kind: ExportArg,
        #[arg(long)]
        out: Option<std::path::PathBuf>,
    },
    /// The referral tree (who invited whom, orders attributed) and the invite ranking.
    Referrals { room: String },
    /// Change a room's lead-score weights: --weight ACTIVITY=POINTS:CAP (repeatable),
    /// --half-life-hours, --warm-at, --hot-at; --reset starts from the defaults.
    SetLeadWeights {
        room: String,
        #[arg(long = "weight", value_name = "ACTIVITY=POINTS:CAP")]
        weights: Vec<String>,
        #[arg(long)]
        half_life_hours: Option<u32>,
        #[arg(long)]
        warm_at: Option<f64>,
        #[arg(long)]
        hot_at: Option<f64>,
        #[arg(long)]
        reset: bool,
    },
    /// Erase a registrant's personal data (name, company, phone; their name on orders and
    /// chat); orders and counts stay, anonymised.
    EraseRegistrant { room: String, registration: String },
    /// Set the room's CRM webhook (docs/webhooks.md): signed POSTs to URL for the events
    /// chosen (--event, repeatable: registration, lead.stage, order.placed, order.status;
    /// default all). Without --secret the current secret is kept, or one is generated and
    /// printed once; --rotate-secret generates a new one.
    SetWebhook {
        room: String,
        url: String,
        #[arg(long = "event", value_name = "EVENT")]
        events: Vec<String>,
        #[arg(long)]
        secret: Option<String>,
        #[arg(long)]
        rotate_secret: bool,
        /// Keep the webhook but queue and send nothing.
        #[arg(long)]
        disabled: bool,
    },
    /// Show the room's webhook (its secret's last four characters only).
    Webhook { room: String },
    /// Remove the room's webhook; what is still queued fails, the log stays.
    DeleteWebhook { room: String },
    /// The webhook delivery log, newest first, with every attempt.
    WebhookDeliveries {
        room: String,
        #[arg(long, value_enum)]
        status: Option<DeliveryArg>,
        #[arg(long)]
        limit: Option<u32>,
    },
    /// Try a failed (or pending) webhook delivery again now.
    RetryWebhook { room: String, delivery: String },
    /// Show one room.
    GetRoom { room: String },
    /// List rooms, optionally only those in one state.
    ListRooms {
        #[arg(long, value_enum)]
        state: Option<StateArg>,
    },
    /// scheduled -> live.
    OpenRoom { room: String },
    /// End a room (final; closes every viewer).
    CloseRoom { room: String },
    /// Print the room's viewer-token signing key (secret).
    RoomKey { room: String },
    /// Add a brand to the running order.
    AddBrand {
        room: String,
        /// Brand name (1 to 100 characters).
        #[arg(long)]
        name: String,
        /// Logo image (http or https URL); optional.
        #[arg(long, default_value = "")]
        logo_url: String,
        /// Place in the running order, 0 first (default: last).
        #[arg(long)]
        position: Option<u32>,
    },
    /// Change a brand's name, logo or position.
    UpdateBrand {
        room: String,
        brand: String,
        /// New name (1 to 100 characters).
        #[arg(long)]
        name: Option<String>,
        /// New logo image (http or https URL; "" removes the logo).
        #[arg(long)]
        logo_url: Option<String>,
        /// New place in the running order, 0 first.
        #[arg(long)]
        position: Option<u32>,
    },
    /// Remove a brand and its products (refused while on air).
    RemoveBrand { room: String, brand: String },
    /// Put a brand on air.
    SwitchBrand { room: String, brand: String },
    /// Create (no --id) or replace (--id) a product.
    UpsertProduct {
        room: String,
        /// Brand id.
        #[arg(long)]
        brand: String,
        /// Product to replace; omit to create.
        #[arg(long)]
        id: Option<String>,
        /// Product name (1 to 200 characters).
        #[arg(long)]
        name: String,
        /// Shown with the product (at most 5000 characters).
        #[arg(long)]
        description: Option<String>,
        /// An image URL (repeatable).
        #[arg(long = "image-url", value_name = "URL")]
        image_urls: Vec<String>,
        /// Order link (required; an http or https URL), shown to verified dealers only.
        #[arg(long)]
        link: String,
        /// Minimum order quantity.
        #[arg(long, default_value_t = 1)]
        moq: u32,
        /// Price of one tier in cents, e.g. gold=129900 (repeatable; one for every tier of the
        /// room).
        #[arg(long = "price", value_name = "TIER=CENTS", required = true, value_parser = parse_price)]
        prices: Vec<TierPrice>,
    },
    /// Remove a product.
    RemoveProduct { room: String, product: String },
    /// List a room's products, optionally of one brand.
    ListProducts {
        room: String,
        /// Only this brand (id).
        #[arg(long)]
        brand: Option<String>,
    },
    /// Pin a product of the brand on air (replaces any pin).
    Pin { room: String, product: String },
    /// Remove the pin.
    Unpin { room: String },
    /// Mint a viewer token; human mode prints only the token on stdout (details on stderr).
    IssueToken {
        room: String,
        viewer: String,
        /// Display name.
        #[arg(long)]
        name: Option<String>,
        /// Who invited this viewer.
        #[arg(long)]
        inviter: Option<String>,
        /// Lifetime in seconds (server default 86400).
        #[arg(long)]
        ttl: Option<u32>,
    },
    /// A presenter token: BRAND's presenter publishes by WHIP to /whip/ROOM/BRAND with
    /// `Authorization: Bearer <token>` (OBS: service WHIP, bearer token). Prints the token.
    IssuePresenterToken {
        room: String,
        brand: String,
        /// Who presents (for logs) [server default: presenter-BRAND].
        #[arg(long)]
        presenter: Option<String>,
        /// Lifetime in seconds (server default 86400).
        #[arg(long)]
        ttl: Option<u32>,
    },
    /// Make a viewer a verified dealer of a tier (or change the tier).
    VerifyDealer {
        room: String,
        viewer: String,
        #[arg(long)]
        tier: String,
        #[arg(long)]
        company: Option<String>,
    },
    /// Turn a dealer back into a public viewer.
    RevokeDealer { room: String, viewer: String },
    /// List a room's dealers.
    ListDealers { room: String },
    /// List dealer applications, optionally of one status.
    ListApplications {
        room: String,
        #[arg(long, value_enum)]
        status: Option<StatusArg>,
    },
    /// Approve a dealer application with a tier.
    ApproveApplication {
        room: String,
        app: String,
        #[arg(long)]
        tier: String,
    },
    /// Reject a dealer application (the reason is shown to the applicant).
    RejectApplication {
        room: String,
        app: String,
        #[arg(long)]
        reason: String,
    },
    /// Mute a viewer's chat; --seconds 0 lifts a mute.
    Mute {
        room: String,
        viewer: String,
        #[arg(long)]
        seconds: u32,
    },
    /// Disconnect a viewer and refuse the tokens they used.
    Kick {
        room: String,
        viewer: String,
        #[arg(long)]
        reason: Option<String>,
    },
    /// Refuse one token (viewer or presenter) by its id from then on, ending every session
    /// that uses it (WebSocket, WHIP, WHEP): cuts off a leaked token.
    RevokeToken {
        room: String,
        /// The token's id (printed by issue-token / issue-presenter-token as `jti`).
        jti: String,
        #[arg(long)]
        reason: Option<String>,
    },
    /// Delete a chat message.
    DeleteMessage { room: String, message: String },
    /// Send an announcement to the room.
    Announce { room: String, text: String },
    /// List orders, newest first, with the total count and value of all that match.
    ListOrders {
        room: String,
        /// Only this brand (id).
        #[arg(long)]
        brand: Option<String>,
        /// Only this product (id).
        #[arg(long)]
        product: Option<String>,
        /// Only this viewer (id).
        #[arg(long)]
        viewer: Option<String>,
        /// Only wins of this flash sale (id).
        #[arg(long)]
        sale: Option<String>,
        #[arg(long, value_enum)]
        status: Option<OrderStatusArg>,
        /// Created at or after, Unix milliseconds.
        #[arg(long)]
        since_ms: Option<i64>,
        /// Created before, Unix milliseconds.
        #[arg(long)]
        until_ms: Option<i64>,
        /// Page size (server default 100, at most 1000).
        #[arg(long)]
        limit: Option<u32>,
        /// Only orders older than this one (the last id of the previous page).
        #[arg(long, value_name = "ORDER")]
        before: Option<String>,
    },
    /// Show one order.
    GetOrder { room: String, order: String },
    /// Advance an order: placed -> confirmed -> shipped, or cancel it (with --reason).
    OrderStatus {
        room: String,
        order: String,
        #[arg(value_enum)]
        status: OrderStatusArg,
        /// Why it is cancelled (required when cancelling, refused otherwise; shown to the
        /// dealer).
        #[arg(long, required_if_eq("status", "cancelled"))]
        reason: Option<String>,
    },
    /// Schedule a flash sale of a product (starts now unless --start-ms or --in-seconds).
    CreateFlashSale {
        room: String,
        product: String,
        /// Units for sale (1 to 1000000).
        #[arg(long)]
        stock: u32,
        /// Units one dealer may win.
        #[arg(long)]
        limit: u32,
        /// Sale price of a tier in cents, e.g. gold=4900 (repeatable; one per tier taking part).
        #[arg(long = "price", value_name = "TIER=CENTS", required = true, value_parser = parse_price)]
        prices: Vec<TierPrice>,
        /// Start time, Unix milliseconds (default: now).
        #[arg(long)]
        start_ms: Option<i64>,
        /// Start this many seconds from now (by this machine's clock).
        #[arg(long, value_name = "SECONDS", conflicts_with = "start_ms")]
        in_seconds: Option<u32>,
        /// How long the sale runs, in seconds (1 to 86400).
        #[arg(long, value_name = "SECONDS")]
        duration: u32,
        /// A tier that may take part (repeatable; default every tier of the room).
        #[arg(long = "tier", value_name = "TIER")]
        tiers: Vec<String>,
    },
    /// Show one flash sale.
    GetFlashSale { room: String, sale: String },
    /// List a room's flash sales.
    ListFlashSales { room: String },
    /// End a flash sale now (remaining stock is no longer sold).
    EndFlashSale { room: String, sale: String },
    /// Open a provably fair lucky draw; without a rule everyone connected may enter.
    #[command(group(
        clap::ArgGroup::new("rule").args(["dealers", "tiers", "keyword", "watched_minutes"])
    ))]
    CreateDraw {
        room: String,
        /// What the winners get (1 to 200 characters).
        #[arg(long)]
        prize: String,
        /// How many winners (1 to 10000).
        #[arg(long)]
        winners: u32,
        /// Entry window in seconds (5 to 86400).
        #[arg(long)]
        seconds: u32,
        /// Verified dealers of any tier only.
        #[arg(long)]
        dealers: bool,
        /// Verified dealers of this tier only (repeatable).
        #[arg(long = "tier", value_name = "TIER")]
        tiers: Vec<String>,
        /// Viewers who chat a message containing this keyword (the chat is the entry).
        #[arg(long)]
        keyword: Option<String>,
        /// Viewers who have watched at least this many minutes (1 to 1440).
        #[arg(long, value_name = "MINUTES")]
        watched_minutes: Option<u32>,
        /// Where the beacon will come from, a public value known only after entry closes
        /// (e.g. "drand quicknet, first round after close"): the draw then closes in two
        /// steps, and its winners are drawn by `close-draw --beacon VALUE`.
        #[arg(long, value_name = "SOURCE")]
        beacon_source: Option<String>,
    },
    /// Close entry of a draw now (a draw without a beacon source is drawn at once), or give
    /// a closed draw its beacon and draw the winners.
    CloseDraw {
        room: String,
        draw: String,
        /// The value from the draw's declared beacon source, once published.
        #[arg(long)]
        beacon: Option<String>,
    },
    /// Print a draw's record JSON (also with --json), the input of `showfloor verify-draw`.
    GetDrawRecord { room: String, draw: String },
    /// List a room's lucky draws.
    ListDraws { room: String },
    /// Drop a red packet split into --count shares for the first viewers who grab.
    DropRedPacket {
        room: String,
        /// The whole amount in cents (at least --count).
        #[arg(long)]
        total_cents: i64,
        /// How many shares (1 to 10000).
        #[arg(long)]
        count: u32,
        /// Dealers of this tier only (repeatable; default everyone connected).
        #[arg(long = "tier", value_name = "TIER")]
        tiers: Vec<String>,
        /// Shown to viewers (at most 200 characters).
        #[arg(long)]
        message: Option<String>,
        /// Unclaimed shares lapse after this many seconds (10 to 86400; server default 300).
        #[arg(long)]
        seconds: Option<u32>,
    },
    /// Show one red packet and who grabbed what.
    GetRedPacket { room: String, packet: String },
    /// Follow chat, applications, orders, moderation and stats, one line per event (Ctrl-C stops).
    Watch { room: String },
}

#[derive(clap::ValueEnum, Clone, Copy, Debug)]
pub(super) enum ExportArg {
    Leads,
    Orders,
    Products,
    Segments,
    Referrals,
}

#[derive(clap::ValueEnum, Clone, Copy, Debug)]
pub(super) enum StageArg {
    Cold,
    Warm,
    Hot,
}

#[derive(clap::ValueEnum, Clone, Copy, Debug)]
pub(super) enum LeadSortArg {
    Score,
    WatchTime,
    OrderValue,
    Name,
}

#[derive(clap::ValueEnum, Clone, Copy, Debug)]
pub(super) enum StateArg {
    Scheduled,
    Live,
    Ended,
}

#[derive(clap::ValueEnum, Clone, Copy, Debug)]
pub(super) enum DeliveryArg {
    Pending,
    Delivered,
    Failed,
}

#[derive(Clone, Copy, Debug, clap::ValueEnum)]
pub(super) enum RegistrationArg {
    #[value(alias = "tokens_only")]
    TokensOnly,
    Open,
    Approval,
    #[value(alias = "invite_only")]
    InviteOnly,
}

impl From<RegistrationArg> for crate::pb::RegistrationMode {
    fn from(m: RegistrationArg) -> Self {
        use crate::pb::RegistrationMode as M;
        match m {
            RegistrationArg::TokensOnly => M::TokensOnly,
            RegistrationArg::Open => M::Open,
            RegistrationArg::Approval => M::Approval,
            RegistrationArg::InviteOnly => M::InviteOnly,
        }
    }
}

#[derive(clap::ValueEnum, Clone, Copy, Debug)]
pub(super) enum StatusArg {
    Pending,
    Approved,
    Rejected,
}

#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum OrderStatusArg {
    Placed,
    Confirmed,
    Shipped,
    Cancelled,
}

impl From<StateArg> for RoomState {
    fn from(s: StateArg) -> Self {
        match s {
            StateArg::Scheduled => RoomState::Scheduled,
            StateArg::Live => RoomState::Live,
            StateArg::Ended => RoomState::Ended,
        }
    }
}

impl From<StatusArg> for ApplicationStatus {
    fn from(s: StatusArg) -> Self {
        match s {
            StatusArg::Pending => ApplicationStatus::Pending,
            StatusArg::Approved => ApplicationStatus::Approved,
            StatusArg::Rejected => ApplicationStatus::Rejected,
        }
    }
}

impl From<OrderStatusArg> for OrderStatus {
    fn from(s: OrderStatusArg) -> Self {
        match s {
            OrderStatusArg::Placed => OrderStatus::Placed,
            OrderStatusArg::Confirmed => OrderStatus::Confirmed,
            OrderStatusArg::Shipped => OrderStatus::Shipped,
            OrderStatusArg::Cancelled => OrderStatus::Cancelled,
        }
    }
}

fn parse_price(s: &str) -> Result<TierPrice, String> {
    let (tier, cents) = s
        .split_once('=')
        .ok_or_else(|| format!("expected TIER=CENTS (e.g. gold=129900), got `{s}`"))?;
    let tier = tier.trim();
    if tier.is_empty() {
        return Err(format!("missing tier name in `{s}` (expected TIER=CENTS)"));
    }
    let price_cents = cents.trim().parse::<i64>().map_err(|_| {
        format!("bad price `{cents}` for tier `{tier}`: a whole number of cents is expected")
    })?;
    Ok(TierPrice {
        tier: tier.to_string(),
        price_cents,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The `showfloor ctl` part of the command line, as `main.rs` mounts it.
    #[derive(clap::Parser, Debug)]
    struct Cli {
        #[command(flatten)]
        ctl: CtlArgs,
    }

    fn parse(args: &[&str]) -> Result<CtlCommand, clap::Error> {
        use clap::Parser as _;
        let argv = ["ctl", "--key", "k"].iter().chain(args);
        Cli::try_parse_from(argv).map(|cli| cli.ctl.cmd)
    }

    /// The help text of one subcommand.
    fn help(subcommand: &str) -> String {
        match parse(&[subcommand, "--help"]) {
            Err(e) if e.kind() == clap::error::ErrorKind::DisplayHelp => e.to_string(),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn parses_prices() {
        let p = parse_price("gold=129900").expect("valid");
        assert_eq!((p.tier.as_str(), p.price_cents), ("gold", 129_900));
        assert!(parse_price("bad").is_err());
        assert!(parse_price("=5").is_err());
        assert!(parse_price("gold=12.50").is_err());
    }

    #[test]
    fn a_product_needs_a_link_as_the_server_does() {
        let product = [
            "upsert-product",
            "r",
            "--brand",
            "b1",
            "--name",
            "Down jacket",
            "--price",
            "gold=25900",
        ];
        let err = parse(&product).expect_err("no --link");
        assert_eq!(err.kind(), clap::error::ErrorKind::MissingRequiredArgument);
        assert!(err.to_string().contains("--link <LINK>"), "{err}");
        match parse(&[&product[..], &["--link", "https://shop.example/jacket"]].concat()) {
            Ok(CtlCommand::UpsertProduct { link, moq, .. }) => {
                assert_eq!((link.as_str(), moq), ("https://shop.example/jacket", 1));
            }
            other => panic!("{other:?}"),
        }
        let help = help("upsert-product");
        let usage = help.lines().find(|l| l.starts_with("Usage:")).unwrap();
        assert!(usage.contains(" --link <LINK>"), "{usage}");
        assert!(!usage.contains("[--link"), "{usage}");
    }

    #[test]
    fn a_cancellation_needs_a_reason_as_the_server_does() {
        let err = parse(&["order-status", "r", "o1", "cancelled"]).expect_err("no --reason");
        assert_eq!(err.kind(), clap::error::ErrorKind::MissingRequiredArgument);
        assert!(err.to_string().contains("--reason <REASON>"), "{err}");
        match parse(&["order-status", "r", "o1", "confirmed"]) {
            Ok(CtlCommand::OrderStatus { status, reason, .. }) => {
                assert_eq!((status, reason), (OrderStatusArg::Confirmed, None));
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn order_statuses_parse_as_lowercase_words() {
        match parse(&[
            "order-status",
            "r",
            "o",
            "cancelled",
            "--reason",
            "no stock",
        ]) {
            Ok(CtlCommand::OrderStatus { status, reason, .. }) => {
                assert_eq!(status, OrderStatusArg::Cancelled);
                assert_eq!(reason.as_deref(), Some("no stock"));
            }
            other => panic!("{other:?}"),
        }
        assert!(parse(&["order-status", "r", "o", "lost"]).is_err());
        for (arg, status) in [
            (OrderStatusArg::Placed, OrderStatus::Placed),
            (OrderStatusArg::Confirmed, OrderStatus::Confirmed),
            (OrderStatusArg::Shipped, OrderStatus::Shipped),
            (OrderStatusArg::Cancelled, OrderStatus::Cancelled),
        ] {
            assert_eq!(OrderStatus::from(arg), status);
            // The word the text output shows is the word the flag takes.
            let name = super::super::text::order_status_name(status);
            assert!(parse(&["list-orders", "r", "--status", name]).is_ok());
        }
    }

    #[test]
    fn a_sale_starts_at_a_time_or_in_seconds_not_both() {
        let sale = [
            "create-flash-sale",
            "r",
            "p",
            "--stock",
            "5",
            "--limit",
            "1",
            "--price",
            "gold=1",
            "--duration",
            "60",
        ];
        let err = parse(&[&sale[..], &["--start-ms", "1", "--in-seconds", "5"]].concat())
            .expect_err("--start-ms and --in-seconds exclude each other");
        assert_eq!(err.kind(), clap::error::ErrorKind::ArgumentConflict);
        match parse(&[&sale[..], &["--in-seconds", "5", "--tier", "gold"]].concat()) {
            Ok(CtlCommand::CreateFlashSale {
                in_seconds, tiers, ..
            }) => assert_eq!((in_seconds, tiers), (Some(5), vec!["gold".to_string()])),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn a_draw_takes_one_rule_at_most() {
        let draw = [
            "create-draw",
            "r",
            "--prize",
            "Tea",
            "--winners",
            "1",
            "--seconds",
            "60",
        ];
        let err = parse(&[&draw[..], &["--dealers", "--keyword", "x"]].concat())
            .expect_err("one rule at most");
        assert_eq!(err.kind(), clap::error::ErrorKind::ArgumentConflict);
        match parse(&[&draw[..], &["--tier", "gold", "--tier", "silver"]].concat()) {
            Ok(CtlCommand::CreateDraw { tiers, dealers, .. }) => {
                assert_eq!(tiers, ["gold", "silver"]);
                assert!(!dealers);
            }
            other => panic!("{other:?}"),
        }
    }
}
