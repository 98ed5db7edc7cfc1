//! The `Showfloor-Signature` header: HMAC-SHA256 over `"{timestamp}.{body}"` with the
//! webhook's secret, hex-encoded, as `v1=<hex>`. The timestamp (Unix seconds) is sent in
//! `Showfloor-Timestamp`; a receiver refuses one too far from its clock (replays).

use hmac::{Hmac, Mac};
use sha2::Sha256;

/// The header's value for `body` sent at `timestamp`.
pub fn signature(secret: &str, timestamp: i64, body: &[u8]) -> String {
    format!("v1={}", hex::encode(mac(secret, timestamp, body)))
}

fn mac(secret: &str, timestamp: i64, body: &[u8]) -> Vec<u8> {
    let mut mac =
        Hmac::<Sha256>::new_from_slice(secret.as_bytes()).expect("HMAC takes a key of any size");
    mac.update(timestamp.to_string().as_bytes());
    mac.update(b".");
    mac.update(body);
    mac.finalize().into_bytes().to_vec()
}

/// Why a receiver refuses a delivery.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Refusal {
    #[error("the signature header is not v1=<hex>")]
    Malformed,
    #[error("the signature does not match the body")]
    Mismatch,
    #[error("the timestamp is {0} s away from now (at most {1} s)")]
    Stale(i64, i64),
}

/// What a receiver does (here for tests and as the reference of docs/webhooks.md): the
/// signature must match in constant time, and the timestamp be within `tolerance_s` of
/// `now_s`.
pub fn verify(
    secret: &str,
    header: &str,
    timestamp: i64,
    body: &[u8],
    now_s: i64,
    tolerance_s: i64,
) -> Result<(), Refusal> {
    let hex_mac = header.strip_prefix("v1=").ok_or(Refusal::Malformed)?;
    let given = hex::decode(hex_mac).map_err(|_| Refusal::Malformed)?;
    let mut mac =
        Hmac::<Sha256>::new_from_slice(secret.as_bytes()).expect("HMAC takes a key of any size");
    mac.update(timestamp.to_string().as_bytes());
    mac.update(b".");
    mac.update(body);
    mac.verify_slice(&given).map_err(|_| Refusal::Mismatch)?;
    let skew = (now_s - timestamp).abs();
    if skew > tolerance_s {
        return Err(Refusal::Stale(skew, tolerance_s));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_signature_verifies_and_any_change_is_refused() {
        let body = br#"{"id":"order.placed:o1"}"#;
        let sig = signature("whsec-test", 1_700_000_000, body);
        // Known answer: HMAC-SHA256("whsec-test", "1700000000.{body}").
        assert_eq!(sig.len(), 3 + 64);
        assert_eq!(
            verify("whsec-test", &sig, 1_700_000_000, body, 1_700_000_100, 300),
            Ok(())
        );
        assert_eq!(
            verify("whsec-other", &sig, 1_700_000_000, body, 1_700_000_000, 300),
            Err(Refusal::Mismatch)
        );
        assert_eq!(
            verify("whsec-test", &sig, 1_700_000_001, body, 1_700_000_000, 300),
            Err(Refusal::Mismatch)
        );
        assert_eq!(
            verify("whsec-test", &sig, 1_700_000_000, b"{}", 1_700_000_000, 300),
            Err(Refusal::Mismatch)
        );
        assert_eq!(
            verify("whsec-test", &sig, 1_700_000_000, body, 1_700_001_000, 300),
            Err(Refusal::Stale(1_000, 300))
        );
        assert_eq!(
            verify(
                "whsec-test",
                "sha256=00",
                1_700_000_000,
                body,
                1_700_000_000,
                300
            ),
            Err(Refusal::Malformed)
        );
        // The same input signs the same.
        assert_eq!(sig, signature("whsec-test", 1_700_000_000, body));
    }
}
