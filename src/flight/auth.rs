//! Token authentication: every call carries the token, compared in constant time.
//!
//! A call is let in when its `authorization` header is `Bearer <token>`, or `Basic` with
//! base64 `user:<token>` (any user name): what pyarrow's `authenticate_basic_token(user,
//! token)` sends in its `Handshake`. The server answers that `Handshake` with the header
//! `authorization: Bearer <token>`, which pyarrow hands back for the caller to send on every
//! later call, so both pyarrow's flows work: a bearer header from the start, or the basic
//! handshake first.

use base64::Engine as _;
use tonic::metadata::{MetadataMap, MetadataValue};
use tonic::Status;

/// The token a server wants, if any.
#[derive(Clone, Default)]
pub(crate) struct Auth {
    token: Option<Vec<u8>>,
}

impl std::fmt::Debug for Auth {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Auth")
            .field("token", &self.token.as_ref().map(|_| "<set>"))
            .finish()
    }
}

/// Whether `a` and `b` are equal, in time that depends on their lengths only.
fn equal(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

impl Auth {
    pub(crate) fn new(token: Option<String>) -> Self {
        Self {
            token: token.map(String::into_bytes),
        }
    }

    /// Lets a call in, or refuses it with `UNAUTHENTICATED`.
    #[allow(clippy::result_large_err)] // tonic's interceptor signature
    pub(crate) fn check(&self, metadata: &MetadataMap) -> Result<(), Status> {
        let Some(token) = &self.token else {
            return Ok(());
        };
        let Some(header) = metadata.get("authorization").map(MetadataValue::as_bytes) else {
            return Err(Status::unauthenticated(
                "missing authorization header (Bearer token)",
            ));
        };
        if let Some(given) = header.strip_prefix(b"Bearer ") {
            if equal(given, token) {
                return Ok(());
            }
        } else if let Some(encoded) = header.strip_prefix(b"Basic ") {
            let decoded = base64::engine::general_purpose::STANDARD
                .decode(encoded)
                .unwrap_or_default();
            if let Some(colon) = decoded.iter().position(|&b| b == b':') {
                if equal(&decoded[colon + 1..], token) {
                    return Ok(());
                }
            }
        }
        Err(Status::unauthenticated("invalid token"))
    }

    /// The header a successful `Handshake` answers with: the bearer token.
    pub(crate) fn bearer(&self) -> Option<MetadataValue<tonic::metadata::Ascii>> {
        let token = std::str::from_utf8(self.token.as_ref()?).ok()?;
        format!("Bearer {token}").parse().ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn with(header: &str) -> MetadataMap {
        let mut m = MetadataMap::new();
        m.insert("authorization", header.parse().unwrap());
        m
    }

    #[test]
    fn smoke() {
        let auth = Auth::new(Some("s3cret".into()));
        assert!(auth.check(&with("Bearer s3cret")).is_ok());
        assert!(auth.check(&with("Bearer s3cre")).is_err());
        assert!(auth.check(&MetadataMap::new()).is_err());
        assert!(Auth::new(None).check(&MetadataMap::new()).is_ok());
    }

    #[test]
    fn basic_credentials_with_the_token_as_password_are_let_in() {
        let auth = Auth::new(Some("s3cret".into()));
        let basic = base64::engine::general_purpose::STANDARD.encode("anyone:s3cret");
        assert!(auth.check(&with(&format!("Basic {basic}"))).is_ok());
        let wrong = base64::engine::general_purpose::STANDARD.encode("anyone:nope");
        assert!(auth.check(&with(&format!("Basic {wrong}"))).is_err());
        assert!(auth.check(&with("Basic !!!not-base64")).is_err());
        assert_eq!(auth.bearer().unwrap().to_str().unwrap(), "Bearer s3cret");
    }

    #[test]
    fn comparison_is_by_bytes_and_length() {
        assert!(equal(b"abc", b"abc"));
        assert!(!equal(b"abc", b"abd"));
        assert!(!equal(b"abc", b"abcd"));
    }
}
