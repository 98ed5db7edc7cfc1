//! `showfloor ctl`: a command-line client for the gRPC control plane (one subcommand per RPC).
//!
//! `args` is the command line, `call` turns a subcommand into its request and reply, `text`
//! and `json` print the reply, `watch` follows the host console stream.

mod args;
mod call;
mod catalog_import;
mod json;
mod registration;
mod reports;
mod text;
mod watch;
mod webhooks;

use std::fmt::Write as _;
use std::io::Write as _;
use std::process::ExitCode;
use std::time::Duration;

use tonic::metadata::{Ascii, MetadataValue};
use tonic::service::interceptor::InterceptedService;
use tonic::service::Interceptor;
use tonic::transport::Endpoint;
use tonic::{Code, Request, Status};

use crate::pb::control_client::ControlClient;
use crate::pb::*;
pub use args::CtlArgs;
use args::CtlCommand;

/// Adds the host API key to every request.
#[derive(Clone)]
struct Auth(MetadataValue<Ascii>);

impl Interceptor for Auth {
    fn call(&mut self, mut req: Request<()>) -> Result<Request<()>, Status> {
        req.metadata_mut().insert("authorization", self.0.clone());
        Ok(req)
    }
}

type Client = ControlClient<InterceptedService<tonic::transport::Channel, Auth>>;

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
    let mut endpoint = match Endpoint::from_shared(server.clone()) {
        Ok(e) => e.connect_timeout(Duration::from_secs(5)),
        Err(_) => {
            eprintln!("error: bad server address `{}`", args.server);
            return ExitCode::from(2);
        }
    };
    if server.starts_with("https://") {
        let mut tls = tonic::transport::ClientTlsConfig::new().with_native_roots();
        if let Some(ca) = &args.ca {
            match std::fs::read(ca) {
                Ok(pem) => tls = tls.ca_certificate(tonic::transport::Certificate::from_pem(pem)),
                Err(e) => {
                    eprintln!("error: cannot read --ca {}: {e}", ca.display());
                    return ExitCode::from(2);
                }
            }
        }
        endpoint = match endpoint.tls_config(tls) {
            Ok(e) => e,
            Err(e) => {
                eprintln!("error: TLS for {server}: {}", error_chain(&e));
                return ExitCode::from(2);
            }
        };
    } else if args.ca.is_some() {
        eprintln!("error: --ca is for an https:// server, not {server}");
        return ExitCode::from(2);
    }
    let channel = match endpoint.connect().await {
        Ok(c) => c,
        Err(e) => {
            eprintln!("error: cannot connect to {server}: {}", error_chain(&e));
            return ExitCode::from(69);
        }
    };
    let mut client = ControlClient::with_interceptor(channel, Auth(auth));

    if let CtlCommand::Watch { room } = args.cmd {
        return watch::run(&mut client, room, args.json).await;
    }
    let reply = match call::call(&mut client, args.cmd).await {
        Ok(reply) => reply,
        Err(status) => return status_exit(&status),
    };
    // A closed stdout (e.g. `| head`) is not an error worth reporting.
    let _ = if args.json {
        match json::reply(&reply) {
            Ok(line) => emit(&line),
            Err(e) => return json_exit(&e),
        }
    } else {
        text::print(&reply)
    };
    match &reply {
        Reply::Import(r) if !r.errors.is_empty() => ExitCode::FAILURE,
        Reply::Catalog(r) if !r.errors.is_empty() => ExitCode::FAILURE,
        _ => ExitCode::SUCCESS,
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

/// A reply this build cannot print as proto3 JSON: only an enum value it does not know, from
/// a newer server.
fn json_exit(e: &serde_json::Error) -> ExitCode {
    eprintln!(
        "error: cannot print the server's reply as JSON ({e}); is this ctl older than the server?"
    );
    ExitCode::FAILURE
}

/// Writes `text` to stdout at once; an error means stdout is closed.
fn emit(text: &str) -> std::io::Result<()> {
    let mut out = std::io::stdout().lock();
    out.write_all(text.as_bytes())?;
    out.flush()
}

/// A unary reply: the reply message as the server sent it (what `--json` prints), with what
/// the text output needs besides.
enum Reply {
    Report(RoomReport),
    Leads(ListLeadsResponse),
    Referrals(ReferralTree),
    Weights(LeadWeights),
    Export(ExportReportResponse),
    Webhook(Webhook),
    Deliveries(ListWebhookDeliveriesResponse),
    Delivery(WebhookDelivery),
    Created(CreateRoomResponse),
    Room(Room),
    Rooms(ListRoomsResponse),
    TokenKey(RoomTokenKey),
    Brand(Brand),
    Product(Product),
    Products(ListProductsResponse),
    ViewerToken(ViewerToken),
    PresenterToken(PresenterToken),
    Dealer(Dealer),
    Dealers(ListDealersResponse),
    Application(DealerApplication),
    Applications(ListDealerApplicationsResponse),
    Order(Order),
    Orders(ListOrdersResponse),
    /// A flash sale and the room's currency, to label its prices (the sale does not carry it).
    Sale {
        sale: FlashSale,
        currency: String,
    },
    Sales {
        sales: ListFlashSalesResponse,
        currency: String,
    },
    Draw(DrawRecord),
    Draws(ListDrawsResponse),
    /// A draw's `record_json`, printed as is in both modes so `verify-draw` can read it.
    DrawRecordJson(String),
    Packet(RedPacket),
    Registration(Registration),
    Registrations(ListRegistrationsResponse),
    Channel(Channel),
    Channels(ListChannelsResponse),
    /// A dealer import; with errors, ctl exits 1.
    Import(ImportDealersResponse),
    /// A catalogue import; with errors, ctl exits 1.
    Catalog(ImportCatalogResponse),
    /// An `Empty` reply and the confirmation the text output prints.
    Done(Empty, String),
}
