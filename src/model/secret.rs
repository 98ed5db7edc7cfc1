//! A secret value (a room's token key, a host API key) that never shows in `Debug` output,
//! and so never in a log line or an error message by accident.

use serde::{Deserialize, Serialize};
use std::fmt;

/// The value is reachable only through [`Secret::expose`], which makes every use visible.
/// There is no `Display`: a secret cannot end up in a formatted string without `expose`.
#[derive(Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Secret(String);

impl Secret {
    pub fn new(value: impl Into<String>) -> Secret {
        Secret(value.into())
    }

    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(…)")
    }
}

impl From<String> for Secret {
    fn from(s: String) -> Secret {
        Secret(s)
    }
}

impl From<&str> for Secret {
    fn from(s: &str) -> Secret {
        Secret(s.to_string())
    }
}

impl std::str::FromStr for Secret {
    type Err = std::convert::Infallible;

    fn from_str(s: &str) -> Result<Secret, Self::Err> {
        Ok(Secret(s.to_string()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_hides_the_value_and_serde_keeps_it() {
        let s = Secret::new("hunter2-very-secret");
        assert_eq!(format!("{s:?}"), "Secret(…)");
        assert!(!format!("{:?}", vec![s.clone()]).contains("hunter2"));
        let json = serde_json::to_string(&s).unwrap();
        assert_eq!(json, "\"hunter2-very-secret\"");
        assert_eq!(serde_json::from_str::<Secret>(&json).unwrap(), s);
    }
}
