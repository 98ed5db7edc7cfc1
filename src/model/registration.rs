//! Registration: how a room lets viewers in, the registrations (with inviter and channel, for
//! referral and channel reports) and the hosts' channel links.

use crate::model::Secret;
use serde::{Deserialize, Serialize};

/// How viewers get into a room. The default is today's behaviour: only tokens minted by the
/// host (or the host's backend) open it.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RegistrationMode {
    /// No self-registration; the host's backend mints tokens.
    #[default]
    TokensOnly,
    /// Anyone with the room's link registers and gets a token at once.
    Open,
    /// Anyone may register; the host approves each registration before it gets a token.
    Approval,
    /// Only a registered viewer's personal invite code (or an imported dealer's personal
    /// link) registers.
    InviteOnly,
}

impl RegistrationMode {
    pub const ALL: [RegistrationMode; 4] = [
        RegistrationMode::TokensOnly,
        RegistrationMode::Open,
        RegistrationMode::Approval,
        RegistrationMode::InviteOnly,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            RegistrationMode::TokensOnly => "tokens_only",
            RegistrationMode::Open => "open",
            RegistrationMode::Approval => "approval",
            RegistrationMode::InviteOnly => "invite_only",
        }
    }

    /// The value [`RegistrationMode::as_str`] names.
    pub fn parse(s: &str) -> Option<RegistrationMode> {
        Self::ALL.into_iter().find(|v| v.as_str() == s)
    }

    /// Whether the registration form is offered at all.
    pub fn accepts_registrations(self) -> bool {
        self != RegistrationMode::TokensOnly
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RegistrationStatus {
    /// Waiting for the host (approval mode).
    Pending,
    /// May fetch tokens.
    Approved,
    Rejected,
}

impl RegistrationStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            RegistrationStatus::Pending => "pending",
            RegistrationStatus::Approved => "approved",
            RegistrationStatus::Rejected => "rejected",
        }
    }

    pub fn parse(s: &str) -> Option<RegistrationStatus> {
        [
            RegistrationStatus::Pending,
            RegistrationStatus::Approved,
            RegistrationStatus::Rejected,
        ]
        .into_iter()
        .find(|v| v.as_str() == s)
    }
}

/// Where a registration came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RegistrationSource {
    /// The registration endpoint (the viewer page's form).
    Form,
    /// A host's dealer import: a pre-verified dealer.
    Import,
}

impl RegistrationSource {
    pub fn as_str(self) -> &'static str {
        match self {
            RegistrationSource::Form => "form",
            RegistrationSource::Import => "import",
        }
    }

    pub fn parse(s: &str) -> Option<RegistrationSource> {
        [RegistrationSource::Form, RegistrationSource::Import]
            .into_iter()
            .find(|v| v.as_str() == s)
    }
}

/// One registrant of a room: a viewer with a phone number (unique in the room), a personal
/// invite code, and who or what brought them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Registration {
    /// `g…`, unique in the room.
    pub id: String,
    /// The viewer id tokens of this registrant carry (`sub`).
    pub viewer_id: String,
    pub name: String,
    pub company: String,
    /// E.164 (`+8613800138000`).
    pub phone: String,
    pub status: RegistrationStatus,
    pub source: RegistrationSource,
    /// This registrant's own invite code (`?invite=` on the room link), unique in the room.
    pub invite_code: String,
    /// Lets the registrant (and only them) fetch a token later: polling while pending, or
    /// their personal link. Never shown to anyone but the registrant and the host.
    pub secret: Secret,
    /// The viewer id of whoever invited them.
    pub inviter_id: Option<String>,
    /// The code of the channel link they came through.
    pub channel: Option<String>,
    pub created_ms: i64,
    pub decided_ms: Option<i64>,
    /// When a host erased the registrant's personal data (name, company and phone are then
    /// empty; the stored phone becomes `erased:<registration id>`, still unique in the room).
    #[serde(default)]
    pub erased_ms: Option<i64>,
}

/// The name an erased registrant's orders, chat messages and applications carry.
pub const ERASED_NAME: &str = "(erased)";

/// A host's channel link: a name (a WeChat group, a newsletter, a sales rep) and the code
/// used in `?ch=` on the room link.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Channel {
    pub code: String,
    pub name: String,
    pub created_ms: i64,
}

/// Which registrations of a room the store's `registrations` read returns.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RegistrationKey {
    /// Every one, oldest first.
    All,
    Id(String),
    Phone(String),
    InviteCode(String),
    ViewerId(String),
}
