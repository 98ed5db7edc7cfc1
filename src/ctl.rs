//! `showfloor ctl`: a command-line client for the gRPC control plane (one subcommand per RPC).

use std::fmt::Write as _;
use std::io::Write as _;
use std::process::ExitCode;
use std::time::Duration;

use serde_json::{json, Value};
use tonic::metadata::{Ascii, MetadataValue};
use tonic::service::interceptor::InterceptedService;
use tonic::service::Interceptor;
use tonic::transport::{Channel, Endpoint};
use tonic::{Code, Request, Status};

use crate::pb::control_client::ControlClient;
use crate::pb::watch_room_event::Event;
use crate::pb::*;

const GLOBAL: &str = "Global options";

const EXIT_HELP: &str = "\
Exit status:
  0   success (also when `watch` ends or is stopped with Ctrl-C)
  1   the server answered with a gRPC error, printed as `error: <CODE>: <message>`
  2   usage error (bad flags, no API key, bad server address)
  69  cannot connect to the server

Human output goes to stdout; `issue-token` and `issue-presenter-token` print only the token on
stdout (details on stderr), so `TOKEN=$(showfloor ctl issue-token ROOM VIEWER)` works. With
--json every reply is printed as one JSON object (`watch`: one object per line).
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
    server: String,
    /// Host API key, sent as `authorization: Bearer <key>` (required).
    #[arg(
        long,
        global = true,
        help_heading = GLOBAL,
        env = "SHOWFLOOR_API_KEY",
        hide_env_values = true
    )]
    key: Option<String>,
    /// Print the response message as JSON instead of human text.
    #[arg(long, global = true, help_heading = GLOBAL)]
    json: bool,
    #[command(subcommand)]
    cmd: CtlCommand,
}

#[derive(clap::Subcommand, Debug)]
enum CtlCommand {
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
    },
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
        #[arg(long)]
        name: Option<String>,
        #[arg(long)]
        logo_url: Option<String>,
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
        #[arg(long)]
        name: String,
        #[arg(long)]
        description: Option<String>,
        /// An image URL (repeatable).
        #[arg(long = "image-url", value_name = "URL")]
        image_urls: Vec<String>,
        /// Order link, shown to verified dealers only.
        #[arg(long)]
        link: Option<String>,
        /// Minimum order quantity.
        #[arg(long, default_value_t = 1)]
        moq: u32,
        /// Price of one tier in cents, e.g. gold=129900 (repeatable; one per room tier).
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
        /// Why it is cancelled (required when cancelling; shown to the dealer).
        #[arg(long)]
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
enum StateArg {
    Scheduled,
    Live,
    Ended,
}

#[derive(clap::ValueEnum, Clone, Copy, Debug)]
enum StatusArg {
    Pending,
    Approved,
    Rejected,
}

#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
enum OrderStatusArg {
    Placed,
    Confirmed,
    Shipped,
    Cancelled,
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

/// Adds the host API key to every request.
#[derive(Clone)]
struct Auth(MetadataValue<Ascii>);

impl Interceptor for Auth {
    fn call(&mut self, mut req: Request<()>) -> Result<Request<()>, Status> {
        req.metadata_mut().insert("authorization", self.0.clone());
        Ok(req)
    }
}

type Client = ControlClient<InterceptedService<Channel, Auth>>;

/// Runs one `showfloor ctl` command and returns the process exit status.
pub async fn run(args: CtlArgs) -> ExitCode {
    let key = match args.key.as_deref().map(str::trim) {
        Some(k) if !k.is_empty() => k.to_string(),
        _ => {
            eprintln!("error: no API key: pass --key or set SHOWFLOOR_API_KEY");
            return ExitCode::from(2);
        }
    };
    let Ok(auth) = format!("Bearer {key}").parse::<MetadataValue<Ascii>>() else {
        eprintln!("error: the API key contains characters not allowed in a header");
        return ExitCode::from(2);
    };
    let server = if args.server.contains("://") {
        args.server.clone()
    } else {
        format!("http://{}", args.server)
    };
    let endpoint = match Endpoint::from_shared(server.clone()) {
        Ok(e) => e.connect_timeout(Duration::from_secs(5)),
        Err(_) => {
            eprintln!("error: bad server address `{}`", args.server);
            return ExitCode::from(2);
        }
    };
    let channel = match endpoint.connect().await {
        Ok(c) => c,
        Err(e) => {
            eprintln!("error: cannot connect to {server}: {}", error_chain(&e));
            return ExitCode::from(69);
        }
    };
    let mut client = ControlClient::with_interceptor(channel, Auth(auth));

    if let CtlCommand::Watch { room } = args.cmd {
        return watch(&mut client, room, args.json).await;
    }
    match call(&mut client, args.cmd).await {
        Ok(reply) => {
            // A closed stdout (e.g. `| head`) is not an error worth reporting.
            let _ = match &reply {
                // Already JSON: printed as is, since `verify-draw` checks exactly this text.
                Reply::DrawRecordJson(record) => emit(&format!("{}\n", record.trim_end())),
                _ if args.json => emit(&format!("{}\n", reply_json(&reply))),
                _ => print_human(&reply),
            };
            ExitCode::SUCCESS
        }
        Err(status) => status_exit(&status),
    }
}

fn error_chain(e: &dyn std::error::Error) -> String {
    let mut s = e.to_string();
    let mut src = e.source();
    while let Some(inner) = src {
        let msg = inner.to_string();
        if !s.ends_with(&msg) {
            let _ = write!(s, ": {msg}");
        }
        src = inner.source();
    }
    s
}

fn status_exit(status: &Status) -> ExitCode {
    eprintln!("error: {}: {}", code_name(status.code()), status.message());
    ExitCode::FAILURE
}

fn code_name(code: Code) -> &'static str {
    match code {
        Code::Ok => "OK",
        Code::Cancelled => "CANCELLED",
        Code::Unknown => "UNKNOWN",
        Code::InvalidArgument => "INVALID_ARGUMENT",
        Code::DeadlineExceeded => "DEADLINE_EXCEEDED",
        Code::NotFound => "NOT_FOUND",
        Code::AlreadyExists => "ALREADY_EXISTS",
        Code::PermissionDenied => "PERMISSION_DENIED",
        Code::ResourceExhausted => "RESOURCE_EXHAUSTED",
        Code::FailedPrecondition => "FAILED_PRECONDITION",
        Code::Aborted => "ABORTED",
        Code::OutOfRange => "OUT_OF_RANGE",
        Code::Unimplemented => "UNIMPLEMENTED",
        Code::Internal => "INTERNAL",
        Code::Unavailable => "UNAVAILABLE",
        Code::DataLoss => "DATA_LOSS",
        Code::Unauthenticated => "UNAUTHENTICATED",
    }
}

/// A unary reply; `Done` stands for `Empty` and carries the human confirmation.
enum Reply {
    Created(CreateRoomResponse),
    Room(Room),
    Rooms(Vec<Room>),
    TokenKey(RoomTokenKey),
    Brand(Brand),
    Product(Product),
    Products(Vec<Product>),
    Token(ViewerToken),
    Dealer(Dealer),
    Dealers(Vec<Dealer>),
    Application(DealerApplication),
    Applications(Vec<DealerApplication>),
    Order(Order),
    Orders(ListOrdersResponse),
    /// A flash sale and the room's currency (the sale does not carry it).
    Sale(FlashSale, String),
    Sales(Vec<FlashSale>, String),
    Draw(DrawRecord),
    Draws(Vec<DrawRecord>),
    /// A draw's `record_json`, printed as is in both modes so `verify-draw` can read it.
    DrawRecordJson(String),
    Packet(RedPacket),
    Done(String),
}

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

async fn call(c: &mut Client, cmd: CtlCommand) -> Result<Reply, Status> {
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
            };
            Reply::Created(c.create_room(req).await?.into_inner())
        }
        C::GetRoom { room } => {
            let req = GetRoomRequest { room_id: room };
            Reply::Room(c.get_room(req).await?.into_inner())
        }
        C::ListRooms { state } => {
            let state = match state {
                None => RoomState::Unspecified,
                Some(StateArg::Scheduled) => RoomState::Scheduled,
                Some(StateArg::Live) => RoomState::Live,
                Some(StateArg::Ended) => RoomState::Ended,
            };
            let req = ListRoomsRequest {
                state: state.into(),
            };
            Reply::Rooms(c.list_rooms(req).await?.into_inner().rooms)
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
            c.remove_brand(req).await?;
            Reply::Done(msg)
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
                link: link.unwrap_or_default(),
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
            c.remove_product(req).await?;
            Reply::Done(msg)
        }
        C::ListProducts { room, brand } => {
            let req = ListProductsRequest {
                room_id: room,
                brand_id: brand.unwrap_or_default(),
            };
            Reply::Products(c.list_products(req).await?.into_inner().products)
        }
        C::Pin { room, product } => {
            let msg = format!("pinned product {product} in room {room}");
            let req = ProductRef {
                room_id: room,
                product_id: product,
            };
            c.pin_product(req).await?;
            Reply::Done(msg)
        }
        C::Unpin { room } => {
            let msg = format!("unpinned in room {room}");
            c.unpin_product(room_ref(room)).await?;
            Reply::Done(msg)
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
            Reply::Token(c.issue_viewer_token(req).await?.into_inner())
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
            let t = c.issue_presenter_token(req).await?.into_inner();
            eprintln!("WHIP endpoint: POST {}", t.whip_path);
            Reply::Token(ViewerToken {
                token: t.token,
                jti: t.jti,
                expires_ms: t.expires_ms,
            })
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
            Reply::Dealers(c.list_dealers(room_ref(room)).await?.into_inner().dealers)
        }
        C::ListApplications { room, status } => {
            let status = match status {
                None => ApplicationStatus::Unspecified,
                Some(StatusArg::Pending) => ApplicationStatus::Pending,
                Some(StatusArg::Approved) => ApplicationStatus::Approved,
                Some(StatusArg::Rejected) => ApplicationStatus::Rejected,
            };
            let req = ListDealerApplicationsRequest {
                room_id: room,
                status: status.into(),
            };
            let resp = c.list_dealer_applications(req).await?.into_inner();
            Reply::Applications(resp.applications)
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
            c.mute_viewer(req).await?;
            Reply::Done(msg)
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
            c.kick_viewer(req).await?;
            Reply::Done(msg)
        }
        C::DeleteMessage { room, message } => {
            let msg = format!("deleted message {message} in room {room}");
            let req = DeleteMessageRequest {
                room_id: room,
                message_id: message,
            };
            c.delete_message(req).await?;
            Reply::Done(msg)
        }
        C::Announce { room, text } => {
            let msg = format!("announced in room {room}");
            c.announce(AnnounceRequest {
                room_id: room,
                text,
            })
            .await?;
            Reply::Done(msg)
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
                start_ms: sale_start_ms(start_ms, in_seconds, crate::hub::now_ms()),
                duration_seconds: duration,
                tiers,
            };
            let sale = c.create_flash_sale(req).await?.into_inner();
            Reply::Sale(sale, room_currency(c, &room).await)
        }
        C::GetFlashSale { room, sale } => {
            let req = FlashSaleRef {
                room_id: room.clone(),
                sale_id: sale,
            };
            let sale = c.get_flash_sale(req).await?.into_inner();
            Reply::Sale(sale, room_currency(c, &room).await)
        }
        C::ListFlashSales { room } => {
            let sales = c.list_flash_sales(room_ref(room.clone())).await?;
            Reply::Sales(sales.into_inner().sales, room_currency(c, &room).await)
        }
        C::EndFlashSale { room, sale } => {
            let req = FlashSaleRef {
                room_id: room.clone(),
                sale_id: sale,
            };
            let sale = c.end_flash_sale(req).await?.into_inner();
            Reply::Sale(sale, room_currency(c, &room).await)
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
        C::ListDraws { room } => {
            Reply::Draws(c.list_draws(room_ref(room)).await?.into_inner().draws)
        }
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
        C::Watch { .. } => unreachable!("watch is handled by run()"),
    })
}

async fn watch(c: &mut Client, room: String, json: bool) -> ExitCode {
    let mut stream = match c.watch_room(RoomRef { room_id: room }).await {
        Ok(resp) => resp.into_inner(),
        Err(status) => return status_exit(&status),
    };
    let mut ctrl_c = std::pin::pin!(tokio::signal::ctrl_c());
    let mut ctrl_c_armed = true;
    loop {
        tokio::select! {
            res = &mut ctrl_c, if ctrl_c_armed => match res {
                Ok(()) => return ExitCode::SUCCESS,
                Err(_) => ctrl_c_armed = false,
            },
            msg = stream.message() => match msg {
                Ok(Some(ev)) => {
                    let line = if json { event_json(&ev).to_string() } else { event_line(&ev) };
                    if emit(&format!("{line}\n")).is_err() {
                        return ExitCode::SUCCESS; // stdout closed
                    }
                }
                Ok(None) => return ExitCode::SUCCESS,
                Err(status) => return status_exit(&status),
            },
        }
    }
}

fn emit(text: &str) -> std::io::Result<()> {
    let mut out = std::io::stdout().lock();
    out.write_all(text.as_bytes())?;
    out.flush()
}

// ---- Human output -------------------------------------------------------------------------

fn print_human(reply: &Reply) -> std::io::Result<()> {
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
        Reply::Rooms(rooms) if rooms.is_empty() => s.push_str("no rooms\n"),
        Reply::Rooms(rooms) => {
            for r in rooms {
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
        }
        Reply::TokenKey(k) => {
            let _ = writeln!(s, "{}", k.key);
        }
        Reply::Brand(b) => brand_line(&mut s, b, ""),
        Reply::Product(p) => product_text(&mut s, p),
        Reply::Products(ps) if ps.is_empty() => s.push_str("no products\n"),
        Reply::Products(ps) => ps.iter().for_each(|p| product_text(&mut s, p)),
        Reply::Token(t) => {
            eprintln!("jti {}  expires {}", t.jti, fmt_ms(t.expires_ms));
            let _ = writeln!(s, "{}", t.token);
        }
        Reply::Dealer(d) => dealer_line(&mut s, d),
        Reply::Dealers(ds) if ds.is_empty() => s.push_str("no dealers\n"),
        Reply::Dealers(ds) => ds.iter().for_each(|d| dealer_line(&mut s, d)),
        Reply::Application(a) => application_line(&mut s, a),
        Reply::Applications(xs) if xs.is_empty() => s.push_str("no applications\n"),
        Reply::Applications(xs) => xs.iter().for_each(|a| application_line(&mut s, a)),
        Reply::Order(o) => order_line(&mut s, o),
        Reply::Orders(page) => {
            page.orders.iter().for_each(|o| order_line(&mut s, o));
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
        Reply::Sale(sale, currency) => sale_line(&mut s, sale, currency),
        Reply::Sales(sales, _) if sales.is_empty() => s.push_str("no flash sales\n"),
        Reply::Sales(sales, currency) => sales.iter().for_each(|x| sale_line(&mut s, x, currency)),
        Reply::Draw(d) => draw_line(&mut s, d),
        Reply::Draws(ds) if ds.is_empty() => s.push_str("no draws\n"),
        Reply::Draws(ds) => ds.iter().for_each(|d| draw_line(&mut s, d)),
        Reply::DrawRecordJson(_) => unreachable!("the record is printed by run()"),
        Reply::Packet(p) => packet_text(&mut s, p),
        Reply::Done(msg) => {
            let _ = writeln!(s, "{msg}");
        }
    }
    emit(&s)
}

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
    let _ = writeln!(s, "  online {} (peak {})", r.online, r.peak_online);
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
fn money(cents: i64, currency: &str) -> String {
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
fn prices_text(prices: &[TierPrice]) -> String {
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

fn event_line(ev: &WatchRoomEvent) -> String {
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
fn fmt_ms(ms: i64) -> String {
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

// ---- JSON output --------------------------------------------------------------------------

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

fn order_status_name(s: OrderStatus) -> &'static str {
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

fn reply_json(reply: &Reply) -> Value {
    match reply {
        Reply::Created(r) => json!({
            "room": r.room.as_ref().map(room_json),
            "token_key": r.token_key,
        }),
        Reply::Room(r) => room_json(r),
        Reply::Rooms(rs) => json!({ "rooms": rs.iter().map(room_json).collect::<Vec<_>>() }),
        Reply::TokenKey(k) => json!({ "room_id": k.room_id, "key": k.key }),
        Reply::Brand(b) => brand_json(b),
        Reply::Product(p) => product_json(p),
        Reply::Products(ps) => {
            json!({ "products": ps.iter().map(product_json).collect::<Vec<_>>() })
        }
        Reply::Token(t) => json!({
            "token": t.token,
            "jti": t.jti,
            "expires_ms": t.expires_ms,
        }),
        Reply::Dealer(d) => dealer_json(d),
        Reply::Dealers(ds) => json!({ "dealers": ds.iter().map(dealer_json).collect::<Vec<_>>() }),
        Reply::Application(a) => application_json(a),
        Reply::Applications(xs) => {
            json!({ "applications": xs.iter().map(application_json).collect::<Vec<_>>() })
        }
        Reply::Order(o) => order_json(o),
        Reply::Orders(page) => json!({
            "orders": page.orders.iter().map(order_json).collect::<Vec<_>>(),
            "total_count": page.total_count,
            "total_cents": page.total_cents,
        }),
        Reply::Sale(x, _) => sale_json(x),
        Reply::Sales(xs, _) => json!({ "sales": xs.iter().map(sale_json).collect::<Vec<_>>() }),
        Reply::Draw(d) => draw_json(d),
        Reply::Draws(ds) => json!({ "draws": ds.iter().map(draw_json).collect::<Vec<_>>() }),
        Reply::DrawRecordJson(_) => unreachable!("the record is printed by run()"),
        Reply::Packet(p) => packet_json(p),
        Reply::Done(_) => json!({}),
    }
}

fn tier_prices_json(prices: &[TierPrice]) -> Vec<Value> {
    prices
        .iter()
        .map(|t| json!({ "tier": t.tier, "price_cents": t.price_cents }))
        .collect()
}

fn order_json(o: &Order) -> Value {
    json!({
        "id": o.id,
        "room_id": o.room_id,
        "viewer_id": o.viewer_id,
        "display_name": o.display_name,
        "tier": o.tier,
        "brand_id": o.brand_id,
        "product_id": o.product_id,
        "product_name": o.product_name,
        "quantity": o.quantity,
        "unit_price_cents": o.unit_price_cents,
        "total_cents": o.total_cents,
        "currency": o.currency,
        "status": order_status_name(o.status()),
        "status_reason": o.status_reason,
        "sale_id": o.sale_id,
        "inviter_id": o.inviter_id,
        "idempotency_key": o.idempotency_key,
        "created_ms": o.created_ms,
        "updated_ms": o.updated_ms,
    })
}

fn sale_json(x: &FlashSale) -> Value {
    json!({
        "id": x.id,
        "room_id": x.room_id,
        "product_id": x.product_id,
        "brand_id": x.brand_id,
        "stock": x.stock,
        "remaining": x.remaining,
        "per_dealer_limit": x.per_dealer_limit,
        "prices": tier_prices_json(&x.prices),
        "start_ms": x.start_ms,
        "end_ms": x.end_ms,
        "phase": phase_name(x.phase()),
        "granted": x.granted,
        "created_ms": x.created_ms,
        "ended_ms": x.ended_ms,
    })
}

/// Proto3 JSON shape of the oneof: `{"everyone": {}}`, `{"keyword": "..."}`, ...
fn eligibility_json(e: Option<&DrawEligibility>) -> Value {
    use draw_eligibility::Rule;
    match e.and_then(|e| e.rule.as_ref()) {
        None => Value::Null,
        Some(Rule::Everyone(_)) => json!({ "everyone": {} }),
        Some(Rule::Dealers(_)) => json!({ "dealers": {} }),
        Some(Rule::Tiers(t)) => json!({ "tiers": { "tiers": t.tiers } }),
        Some(Rule::Keyword(k)) => json!({ "keyword": k }),
        Some(Rule::WatchedMinutes(m)) => json!({ "watched_minutes": m }),
    }
}

fn draw_json(d: &DrawRecord) -> Value {
    json!({
        "room_id": d.room_id,
        "draw_id": d.draw_id,
        "prize": d.prize,
        "winners_count": d.winners_count,
        "eligibility": eligibility_json(d.eligibility.as_ref()),
        "opened_ms": d.opened_ms,
        "closes_ms": d.closes_ms,
        "closed_ms": d.closed_ms,
        "drawn_ms": d.drawn_ms,
        "commitment": d.commitment,
        "seed": d.seed,
        "entrants": d.entrants,
        "entrant_count": d.entrant_count,
        "entrants_hash": d.entrants_hash,
        "beacon_source": d.beacon_source,
        "beacon": d.beacon,
        "winners": d.winners,
        "algorithm": d.algorithm,
        "record_json": d.record_json,
    })
}

fn packet_json(p: &RedPacket) -> Value {
    json!({
        "id": p.id,
        "room_id": p.room_id,
        "total_cents": p.total_cents,
        "count": p.count,
        "tiers": p.tiers,
        "message": p.message,
        "created_ms": p.created_ms,
        "expires_ms": p.expires_ms,
        "grabs": p.grabs.iter().map(|g| json!({
            "viewer_id": g.viewer_id,
            "amount_cents": g.amount_cents,
        })).collect::<Vec<_>>(),
        "remaining_cents": p.remaining_cents,
        "currency": p.currency,
    })
}

fn room_json(r: &Room) -> Value {
    json!({
        "id": r.id,
        "title": r.title,
        "state": state_name(r.state()),
        "scheduled_start_ms": r.scheduled_start_ms,
        "chat_rate_limit": r.chat_rate_limit.as_ref().map(|l| json!({
            "messages": l.messages,
            "per_seconds": l.per_seconds,
        })),
        "banned_words": r.banned_words,
        "history_window": r.history_window,
        "tiers": r.tiers,
        "currency": r.currency,
        "brand_on_air": r.brand_on_air,
        "brands": r.brands.iter().map(brand_json).collect::<Vec<_>>(),
        "pinned_product": r.pinned_product,
        "created_ms": r.created_ms,
        "opened_ms": r.opened_ms,
        "ended_ms": r.ended_ms,
        "online": r.online,
        "peak_online": r.peak_online,
    })
}

fn brand_json(b: &Brand) -> Value {
    json!({
        "id": b.id,
        "room_id": b.room_id,
        "name": b.name,
        "logo_url": b.logo_url,
        "position": b.position,
    })
}

fn product_json(p: &Product) -> Value {
    json!({
        "id": p.id,
        "room_id": p.room_id,
        "brand_id": p.brand_id,
        "name": p.name,
        "description": p.description,
        "image_urls": p.image_urls,
        "link": p.link,
        "min_order_quantity": p.min_order_quantity,
        "prices": tier_prices_json(&p.prices),
    })
}

fn dealer_json(d: &Dealer) -> Value {
    json!({
        "room_id": d.room_id,
        "viewer_id": d.viewer_id,
        "tier": d.tier,
        "verified": d.verified,
        "company": d.company,
        "updated_ms": d.updated_ms,
    })
}

fn application_json(a: &DealerApplication) -> Value {
    json!({
        "id": a.id,
        "room_id": a.room_id,
        "viewer_id": a.viewer_id,
        "display_name": a.display_name,
        "company": a.company,
        "licence_number": a.licence_number,
        "contact": a.contact,
        "status": status_name(a.status()),
        "tier": a.tier,
        "reason": a.reason,
        "created_ms": a.created_ms,
        "decided_ms": a.decided_ms,
    })
}

/// Proto3 JSON shape of the oneof: `{"chat": {...}}`, `{"stats": {...}}`, ...
fn event_json(ev: &WatchRoomEvent) -> Value {
    match &ev.event {
        Some(Event::Chat(m)) => json!({ "chat": {
            "id": m.id,
            "viewer_id": m.viewer_id,
            "display_name": m.display_name,
            "text": m.text,
            "at_ms": m.at_ms,
            "seq": m.seq,
            "is_dealer": m.is_dealer,
        }}),
        Some(Event::Application(a)) => json!({ "application": application_json(a) }),
        Some(Event::Stats(s)) => json!({ "stats": {
            "online": s.online,
            "peak_online": s.peak_online,
            "dealers_online": s.dealers_online,
            "chat_per_minute": s.chat_per_minute,
            "likes": s.likes,
            "seq": s.seq,
            "at_ms": s.at_ms,
        }}),
        Some(Event::Order(o)) => json!({ "order": order_json(o) }),
        Some(Event::Action(a)) => json!({ "action": {
            "action": a.action,
            "viewer_id": a.viewer_id,
            "detail": a.detail,
            "at_ms": a.at_ms,
        }}),
        None => json!({}),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_prices() {
        let p = parse_price("gold=129900").expect("valid");
        assert_eq!((p.tier.as_str(), p.price_cents), ("gold", 129_900));
        assert!(parse_price("bad").is_err());
        assert!(parse_price("=5").is_err());
        assert!(parse_price("gold=12.50").is_err());
    }

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

        let both = [
            "create-flash-sale",
            "r",
            "p",
            "--stock",
            "5",
            "--limit",
            "1",
        ];
        let both = [&both[..], &["--price", "gold=1", "--duration", "60"]].concat();
        let err = parse(&[&both[..], &["--start-ms", "1", "--in-seconds", "5"]].concat())
            .expect_err("--start-ms and --in-seconds exclude each other");
        assert_eq!(err.kind(), clap::error::ErrorKind::ArgumentConflict);
        match parse(&[&both[..], &["--in-seconds", "5", "--tier", "gold"]].concat()) {
            Ok(CtlCommand::CreateFlashSale {
                in_seconds, tiers, ..
            }) => assert_eq!((in_seconds, tiers), (Some(5), vec!["gold".to_string()])),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn draw_rules_are_exclusive_and_default_to_everyone() {
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

        let base = [
            "create-draw",
            "r",
            "--prize",
            "Tea",
            "--winners",
            "1",
            "--seconds",
            "60",
        ];
        let err = parse(&[&base[..], &["--dealers", "--keyword", "x"]].concat())
            .expect_err("one rule at most");
        assert_eq!(err.kind(), clap::error::ErrorKind::ArgumentConflict);
        match parse(&[&base[..], &["--tier", "gold", "--tier", "silver"]].concat()) {
            Ok(CtlCommand::CreateDraw { tiers, dealers, .. }) => {
                assert_eq!(tiers, ["gold", "silver"]);
                assert!(!dealers);
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
            let name = order_status_name(status);
            assert!(parse(&["list-orders", "r", "--status", name]).is_ok());
        }
    }

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
