//! `showfloor ctl`'s text for registrations, channel links and dealer imports.

use std::fmt::Write as _;

use crate::pb::*;

pub(super) fn mode_name(m: RegistrationMode) -> &'static str {
    match m {
        RegistrationMode::Unspecified | RegistrationMode::TokensOnly => "tokens-only",
        RegistrationMode::Open => "open",
        RegistrationMode::Approval => "approval",
        RegistrationMode::InviteOnly => "invite-only",
    }
}

fn status_name(s: RegistrationStatus) -> &'static str {
    match s {
        RegistrationStatus::Unspecified => "-",
        RegistrationStatus::Pending => "pending",
        RegistrationStatus::Approved => "approved",
        RegistrationStatus::Rejected => "rejected",
    }
}

fn or_dash(v: &str) -> &str {
    if v.is_empty() {
        "-"
    } else {
        v
    }
}

pub(super) fn registration_line(s: &mut String, r: &Registration) {
    let _ = writeln!(
        s,
        "{}  {:<8}  {}  {}  \"{}\" ({})  {}  invited by {}  channel {}  code {}",
        or_dash(&r.id),
        status_name(r.status()),
        or_dash(&r.viewer_id),
        r.phone,
        r.name,
        or_dash(&r.company),
        r.source,
        or_dash(&r.inviter_id),
        or_dash(&r.channel),
        or_dash(&r.invite_code),
    );
    if r.erased_ms > 0 {
        let _ = writeln!(
            s,
            "  personal data erased {}",
            super::text::fmt_ms(r.erased_ms)
        );
    }
    if !r.personal_link.is_empty() {
        let _ = writeln!(s, "  personal link {}", r.personal_link);
    }
}

pub(super) fn channel_line(s: &mut String, c: &Channel) {
    let _ = writeln!(s, "{}  \"{}\"  {}", c.code, c.name, c.link);
}

/// Every bad row of an import on stderr (`line 3: phone: …`), and that nothing was written;
/// false if there are none.
pub(super) fn row_errors(errors: &[ImportRowError]) -> bool {
    for e in errors {
        let field = if e.field.is_empty() {
            String::new()
        } else {
            format!("{}: ", e.field)
        };
        eprintln!("line {}: {field}{}", e.line, e.reason);
    }
    if !errors.is_empty() {
        eprintln!(
            "{} bad row(s): nothing was imported; fix them and import again",
            errors.len()
        );
    }
    !errors.is_empty()
}

/// Every bad row on stderr (nothing was written then), the dealers on stdout.
pub(super) fn import_text(s: &mut String, r: &ImportDealersResponse) {
    if row_errors(&r.errors) {
        return;
    }
    for d in &r.dealers {
        let Some(reg) = &d.registration else { continue };
        let _ = writeln!(
            s,
            "line {}  {}  {}  \"{}\" ({})  tier {}{}  {}",
            d.line,
            or_dash(&reg.viewer_id),
            reg.phone,
            reg.name,
            reg.company,
            d.tier,
            if d.existing {
                "  (registered before)"
            } else {
                ""
            },
            or_dash(&reg.personal_link),
        );
    }
    let verb = if r.dry_run {
        "would be imported (dry run: nothing written)"
    } else {
        "imported and verified"
    };
    let _ = writeln!(s, "{} dealer(s) {verb}", r.dealers.len());
}
