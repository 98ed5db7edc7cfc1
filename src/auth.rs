//! Host API keys for the control plane, room-scoped viewer tokens and brand-scoped presenter
//! tokens (HS256 JWT).

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use rand::RngCore;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

/// Allowed clock skew when checking `exp`, in seconds.
const LEEWAY_SECS: u64 = 5;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    Viewer,
    Dealer,
    /// A brand's presenter: may publish that brand's feed by WHIP (and watch like a viewer).
    Presenter,
}

/// Claims of a viewer token. A host's backend may mint these itself with the room key
/// (docs/protocol.md, "Viewer tokens").
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ViewerClaims {
    /// Room id the token is valid for.
    pub room: String,
    /// The viewer's id in the host's own system.
    pub sub: String,
    /// Display name shown in chat.
    #[serde(default)]
    pub name: String,
    pub role: Role,
    /// Dealer tier, with `role: dealer`. A dealer record in the room overrides it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tier: Option<String>,
    /// Inviter's viewer id, for referral reports.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub inv: Option<String>,
    pub iat: i64,
    pub exp: i64,
    /// Token id; kicking a viewer refuses it from then on.
    pub jti: String,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AuthError {
    #[error("no token given")]
    Missing,
    #[error("token is malformed")]
    Malformed,
    #[error("token is for another room")]
    WrongRoom,
    #[error("token signature is invalid")]
    BadSignature,
    #[error("token has expired")]
    Expired,
    #[error("token is signed with {0}; tokens are signed with HS256 and the room's key")]
    WrongAlgorithm(String),
    #[error("token is invalid: {0}")]
    Invalid(String),
    #[error("token is not a presenter token")]
    NotPresenter,
    #[error("token is for another brand")]
    WrongBrand,
}

/// Claims of a presenter token: a viewer token's claims plus the brand it may publish.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PresenterClaims {
    pub room: String,
    /// Brand id whose feed this token may publish.
    pub brand: String,
    pub sub: String,
    #[serde(default)]
    pub name: String,
    /// Always `presenter`.
    pub role: Role,
    pub iat: i64,
    pub exp: i64,
    pub jti: String,
}

/// A fresh 256-bit signing key, base64url without padding.
pub fn generate_key() -> String {
    let mut k = [0u8; 32];
    rand::rng().fill_bytes(&mut k);
    URL_SAFE_NO_PAD.encode(k)
}

/// A random id of `n` bytes, base32-ish lowercase (for room ids and token ids).
pub fn random_id(n: usize) -> String {
    const ALPHABET: &[u8] = b"abcdefghijkmnpqrstuvwxyz23456789";
    let mut bytes = vec![0u8; n];
    rand::rng().fill_bytes(&mut bytes);
    bytes
        .iter()
        .map(|b| ALPHABET[(*b as usize) % ALPHABET.len()] as char)
        .collect()
}

fn key_bytes(key: &str) -> Vec<u8> {
    URL_SAFE_NO_PAD
        .decode(key)
        .unwrap_or_else(|_| key.as_bytes().to_vec())
}

/// Viewer ids are the host's own: 1 to 64 characters of `[A-Za-z0-9_.@:-]`.
pub fn check_viewer_id(id: &str) -> Result<(), String> {
    if id.is_empty() || id.len() > 64 {
        return Err(format!(
            "viewer_id must be 1 to 64 characters (got {})",
            id.len()
        ));
    }
    if !id
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || b"_.@:-".contains(&b))
    {
        return Err(format!(
            "viewer_id {id:?} may only contain A-Z, a-z, 0-9 and _ . @ : -"
        ));
    }
    Ok(())
}

pub fn issue_viewer_token(key: &str, claims: &ViewerClaims) -> Result<String, AuthError> {
    jsonwebtoken::encode(
        &Header::new(Algorithm::HS256),
        claims,
        &EncodingKey::from_secret(&key_bytes(key)),
    )
    .map_err(|e| AuthError::Invalid(e.to_string()))
}

/// The room a token claims, read before its signature is checked (to tell "another room"
/// from "bad signature").
pub fn claimed_room(token: &str) -> Result<String, AuthError> {
    #[derive(Deserialize)]
    struct RoomOnly {
        room: Option<String>,
    }
    let payload = token.split('.').nth(1).ok_or(AuthError::Malformed)?;
    let bytes = URL_SAFE_NO_PAD
        .decode(payload.trim_end_matches('='))
        .map_err(|_| AuthError::Malformed)?;
    let r: RoomOnly = serde_json::from_slice(&bytes).map_err(|_| AuthError::Malformed)?;
    r.room.ok_or(AuthError::Invalid("no `room` claim".into()))
}

pub fn issue_presenter_token(key: &str, claims: &PresenterClaims) -> Result<String, AuthError> {
    jsonwebtoken::encode(
        &Header::new(Algorithm::HS256),
        claims,
        &EncodingKey::from_secret(&key_bytes(key)),
    )
    .map_err(|e| AuthError::Invalid(e.to_string()))
}

/// Checks a presenter token for `room` and `brand` signed with the room's `key`. A viewer or
/// dealer token is refused with `NotPresenter`.
pub fn verify_presenter_token(
    token: &str,
    room: &str,
    brand: &str,
    key: &str,
) -> Result<PresenterClaims, AuthError> {
    let c = verify_viewer_token(token, room, key)?;
    if c.role != Role::Presenter {
        return Err(AuthError::NotPresenter);
    }
    // The signature was checked above; read the brand claim from the same payload.
    let payload = token.split('.').nth(1).ok_or(AuthError::Malformed)?;
    let bytes = URL_SAFE_NO_PAD
        .decode(payload.trim_end_matches('='))
        .map_err(|_| AuthError::Malformed)?;
    let p: PresenterClaims = serde_json::from_slice(&bytes)
        .map_err(|_| AuthError::Invalid("presenter token needs a `brand` claim".into()))?;
    if p.brand != brand {
        return Err(AuthError::WrongBrand);
    }
    Ok(p)
}

/// Checks a viewer token for `room` signed with the room's `key`.
pub fn verify_viewer_token(token: &str, room: &str, key: &str) -> Result<ViewerClaims, AuthError> {
    if token.is_empty() {
        return Err(AuthError::Missing);
    }
    if token.len() > 4096 {
        return Err(AuthError::Malformed);
    }
    if claimed_room(token)? != room {
        return Err(AuthError::WrongRoom);
    }
    let mut v = Validation::new(Algorithm::HS256);
    v.leeway = LEEWAY_SECS;
    v.set_required_spec_claims(&["exp", "sub"]);
    v.validate_aud = false;
    let data =
        jsonwebtoken::decode::<ViewerClaims>(token, &DecodingKey::from_secret(&key_bytes(key)), &v)
            .map_err(|e| {
                use jsonwebtoken::errors::ErrorKind;
                match e.kind() {
                    ErrorKind::InvalidSignature => AuthError::BadSignature,
                    ErrorKind::ExpiredSignature => AuthError::Expired,
                    ErrorKind::InvalidToken | ErrorKind::Base64(_) => AuthError::Malformed,
                    // A readable token whose claims do not fit (a missing `exp`, a string
                    // where a number belongs): serde says which, in the client's terms.
                    ErrorKind::Json(e) => AuthError::Invalid(format!("its claims do not fit: {e}")),
                    ErrorKind::InvalidAlgorithm | ErrorKind::InvalidAlgorithmName => {
                        match jsonwebtoken::decode_header(token) {
                            Ok(h) => AuthError::WrongAlgorithm(format!("{:?}", h.alg)),
                            Err(_) => AuthError::WrongAlgorithm("an unknown algorithm".into()),
                        }
                    }
                    ErrorKind::MissingRequiredClaim(claim) => {
                        AuthError::Invalid(format!("the `{claim}` claim is missing"))
                    }
                    ErrorKind::ImmatureSignature => AuthError::Invalid(
                        "it is not valid yet (its `nbf` is in the future)".into(),
                    ),
                    // The rest cannot come from a token checked this way; say so plainly
                    // rather than name the library's internals.
                    _ => AuthError::Invalid("its claims could not be checked".into()),
                }
            })?;
    let c = data.claims;
    check_viewer_id(&c.sub).map_err(AuthError::Invalid)?;
    if c.role == Role::Dealer && c.tier.is_none() {
        return Err(AuthError::Invalid(
            "role dealer needs a `tier` claim".into(),
        ));
    }
    Ok(c)
}

/// The host API keys, kept as SHA-256 digests and compared in constant time.
#[derive(Clone)]
pub struct HostKeys {
    digests: Vec<[u8; 32]>,
}

impl HostKeys {
    pub fn new(keys: &[crate::model::Secret]) -> HostKeys {
        HostKeys {
            digests: keys
                .iter()
                .map(|k| Sha256::digest(k.expose().as_bytes()).into())
                .collect(),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.digests.is_empty()
    }

    pub fn check(&self, presented: &str) -> bool {
        let d: [u8; 32] = Sha256::digest(presented.as_bytes()).into();
        let mut ok = false;
        for k in &self.digests {
            let diff = k
                .iter()
                .zip(d.iter())
                .fold(0u8, |acc, (a, b)| acc | (a ^ b));
            ok |= diff == 0;
        }
        ok
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn claims(room: &str, exp: i64) -> ViewerClaims {
        ViewerClaims {
            room: room.into(),
            sub: "v1".into(),
            name: "Ann".into(),
            role: Role::Viewer,
            tier: None,
            inv: None,
            iat: 0,
            exp,
            jti: "j1".into(),
        }
    }

    fn far() -> i64 {
        4_000_000_000
    }

    #[test]
    fn round_trip_and_refusals() {
        let key = generate_key();
        let t = issue_viewer_token(&key, &claims("r1", far())).unwrap();
        assert_eq!(verify_viewer_token(&t, "r1", &key).unwrap().sub, "v1");
        assert_eq!(
            verify_viewer_token(&t, "r2", &key).unwrap_err(),
            AuthError::WrongRoom
        );
        assert_eq!(
            verify_viewer_token(&t, "r1", &generate_key()).unwrap_err(),
            AuthError::BadSignature
        );
        let old = issue_viewer_token(&key, &claims("r1", 1000)).unwrap();
        assert_eq!(
            verify_viewer_token(&old, "r1", &key).unwrap_err(),
            AuthError::Expired
        );
        assert_eq!(
            verify_viewer_token("garbage", "r1", &key).unwrap_err(),
            AuthError::Malformed
        );
        assert_eq!(
            verify_viewer_token("", "r1", &key).unwrap_err(),
            AuthError::Missing
        );
    }

    #[test]
    fn a_token_signed_with_another_algorithm_is_refused_in_plain_words() {
        let key = generate_key();
        let hs384 = jsonwebtoken::encode(
            &Header::new(Algorithm::HS384),
            &claims("r1", far()),
            &EncodingKey::from_secret(&key_bytes(&key)),
        )
        .unwrap();
        let e = verify_viewer_token(&hs384, "r1", &key).unwrap_err();
        assert_eq!(e, AuthError::WrongAlgorithm("HS384".into()));
        let text = e.to_string();
        assert!(text.contains("HS384") && text.contains("HS256"), "{text}");
        // No token refusal names the library's internals.
        let mut no_exp = serde_json::to_value(claims("r1", far())).unwrap();
        no_exp.as_object_mut().unwrap().remove("exp");
        let t = jsonwebtoken::encode(
            &Header::new(Algorithm::HS256),
            &no_exp,
            &EncodingKey::from_secret(&key_bytes(&key)),
        )
        .unwrap();
        let text = verify_viewer_token(&t, "r1", &key).unwrap_err().to_string();
        assert!(
            text.starts_with("token is invalid: its claims do not fit: missing field `exp`"),
            "{text}"
        );
    }

    #[test]
    fn presenter_tokens_are_bound_to_room_and_brand() {
        let key = generate_key();
        let p = PresenterClaims {
            room: "r1".into(),
            brand: "b1".into(),
            sub: "cam-1".into(),
            name: String::new(),
            role: Role::Presenter,
            iat: 0,
            exp: far(),
            jti: "j2".into(),
        };
        let t = issue_presenter_token(&key, &p).unwrap();
        assert_eq!(verify_presenter_token(&t, "r1", "b1", &key).unwrap(), p);
        assert_eq!(
            verify_presenter_token(&t, "r1", "b2", &key).unwrap_err(),
            AuthError::WrongBrand
        );
        assert_eq!(
            verify_presenter_token(&t, "r2", "b1", &key).unwrap_err(),
            AuthError::WrongRoom
        );
        let v = issue_viewer_token(&key, &claims("r1", far())).unwrap();
        assert_eq!(
            verify_presenter_token(&v, "r1", "b1", &key).unwrap_err(),
            AuthError::NotPresenter
        );
    }

    #[test]
    fn host_keys_match_exactly() {
        let k = HostKeys::new(&["alpha".into(), "beta".into()]);
        assert!(k.check("beta"));
        assert!(!k.check("bet"));
        assert!(!k.check(""));
    }
}
