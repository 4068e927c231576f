//! Request authentication: basic auth, a secret header, and an HMAC of the raw body.
//!
//! Every comparison of a secret runs in constant time. Messages never contain secrets.

use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, STANDARD_NO_PAD};
use hmac::{Hmac, Mac};
use http::HeaderMap;
use subtle::ConstantTimeEq;

use crate::config::HmacAlgorithm;

/// Checks `Authorization: Basic ...` against the configured user and password.
pub(crate) fn check_basic_auth(
    headers: &HeaderMap,
    user: &str,
    password: &str,
) -> Result<(), &'static str> {
    let denied = "incorrect username or password";
    let value = headers.get(http::header::AUTHORIZATION).ok_or(denied)?;
    let encoded = value
        .to_str()
        .ok()
        .and_then(|v| v.strip_prefix("Basic "))
        .ok_or(denied)?;
    let decoded = STANDARD.decode(encoded.trim()).map_err(|_| denied)?;
    let (given_user, given_password) = match decoded.iter().position(|&b| b == b':') {
        Some(colon) => (&decoded[..colon], &decoded[colon + 1..]),
        None => return Err(denied),
    };
    // Both compared, always, so timing does not tell which one was wrong.
    let user_ok = given_user.ct_eq(user.as_bytes());
    let password_ok = given_password.ct_eq(password.as_bytes());
    if bool::from(user_ok & password_ok) {
        Ok(())
    } else {
        Err(denied)
    }
}

/// Checks a shared-secret header.
pub(crate) fn check_secret(
    headers: &HeaderMap,
    header: &str,
    secret: &str,
) -> Result<(), &'static str> {
    let denied = "incorrect header or header secret";
    let value = headers.get(header).ok_or(denied)?;
    if bool::from(value.as_bytes().ct_eq(secret.as_bytes())) {
        Ok(())
    } else {
        Err(denied)
    }
}

/// Checks the HMAC signature in `header` over `body` (the bytes as received). The signature
/// after `prefix` may be hex or base64 (padded or not).
pub(crate) fn check_hmac(
    headers: &HeaderMap,
    header: &str,
    prefix: &str,
    key: &[u8],
    algorithm: HmacAlgorithm,
    body: &[u8],
) -> Result<(), &'static str> {
    let value = headers.get(header).ok_or("missing HMAC header")?;
    let value = value
        .to_str()
        .map_err(|_| "invalid HMAC signature encoding")?
        .trim();
    let signature = value.strip_prefix(prefix).unwrap_or(value).trim();
    if signature.is_empty() {
        return Err("invalid HMAC signature encoding: unexpected empty header value");
    }
    let candidates = [
        hex::decode(signature).ok(),
        STANDARD_NO_PAD.decode(signature).ok(),
        STANDARD.decode(signature).ok(),
    ];
    if candidates.iter().all(Option::is_none) {
        return Err("invalid HMAC signature encoding");
    }
    let matches = candidates
        .iter()
        .flatten()
        .any(|tag| verify(key, algorithm, body, tag));
    if matches {
        Ok(())
    } else {
        Err("invalid HMAC signature")
    }
}

/// `verify_slice` compares in constant time and refuses a tag of the wrong length.
fn verify(key: &[u8], algorithm: HmacAlgorithm, body: &[u8], tag: &[u8]) -> bool {
    match algorithm {
        HmacAlgorithm::Sha256 => Hmac::<sha2::Sha256>::new_from_slice(key)
            .map(|mut mac| {
                mac.update(body);
                mac.verify_slice(tag).is_ok()
            })
            .unwrap_or(false),
        HmacAlgorithm::Sha1 => Hmac::<sha1::Sha1>::new_from_slice(key)
            .map(|mut mac| {
                mac.update(body);
                mac.verify_slice(tag).is_ok()
            })
            .unwrap_or(false),
    }
}

/// The hex HMAC-SHA256 of `body`: what a sender puts after `sha256=`.
pub fn sign_sha256_hex(key: &[u8], body: &[u8]) -> String {
    // HMAC takes keys of every length, so this never returns the empty string in practice.
    let Ok(mut mac) = Hmac::<sha2::Sha256>::new_from_slice(key) else {
        return String::new();
    };
    mac.update(body);
    hex::encode(mac.finalize().into_bytes())
}

#[cfg(test)]
mod tests {
    use http::HeaderValue;

    use super::*;

    fn headers(name: &'static str, value: &str) -> HeaderMap {
        let mut map = HeaderMap::new();
        map.insert(name, HeaderValue::from_str(value).unwrap());
        map
    }

    #[test]
    fn hmac_hex_and_base64_are_accepted() {
        let body = b"{\"id\":1}\n";
        let hex_signature = sign_sha256_hex(b"key", body);
        let raw = hex::decode(&hex_signature).unwrap();
        let check = |value: &str| {
            check_hmac(
                &headers("x-sig", value),
                "x-sig",
                "sha256=",
                b"key",
                HmacAlgorithm::Sha256,
                body,
            )
        };
        assert_eq!(check(&format!("sha256={hex_signature}")), Ok(()));
        assert_eq!(check(&format!("sha256={}", STANDARD.encode(&raw))), Ok(()));
        assert_eq!(
            check(&format!("sha256={}", STANDARD_NO_PAD.encode(&raw))),
            Ok(())
        );
        assert_eq!(check(&hex_signature), Ok(()), "the prefix is optional");
        assert_eq!(
            check(&format!("sha256={}", &hex_signature[..62])),
            Err("invalid HMAC signature")
        );
        assert_eq!(
            check("sha256="),
            Err("invalid HMAC signature encoding: unexpected empty header value")
        );
        assert_eq!(check("sha256=!!!"), Err("invalid HMAC signature encoding"));
        let other = sign_sha256_hex(b"other key", body);
        assert_eq!(
            check(&format!("sha256={other}")),
            Err("invalid HMAC signature")
        );
        let missing = check_hmac(
            &HeaderMap::new(),
            "x-sig",
            "sha256=",
            b"key",
            HmacAlgorithm::Sha256,
            body,
        );
        assert_eq!(missing, Err("missing HMAC header"));
    }

    #[test]
    fn hmac_sha1() {
        let mut mac = Hmac::<sha1::Sha1>::new_from_slice(b"k").unwrap();
        mac.update(b"body");
        let signature = hex::encode(mac.finalize().into_bytes());
        let map = headers("x-sig", &format!("sha1={signature}"));
        assert_eq!(
            check_hmac(&map, "x-sig", "sha1=", b"k", HmacAlgorithm::Sha1, b"body"),
            Ok(())
        );
        assert!(check_hmac(&map, "x-sig", "sha1=", b"k", HmacAlgorithm::Sha256, b"body").is_err());
    }

    #[test]
    fn basic_auth_and_secret() {
        let good = headers(
            "authorization",
            &format!("Basic {}", STANDARD.encode("user:pa:ss")),
        );
        assert_eq!(check_basic_auth(&good, "user", "pa:ss"), Ok(()));
        assert!(check_basic_auth(&good, "user", "pa").is_err());
        assert!(check_basic_auth(&headers("authorization", "Basic !!"), "user", "pa:ss").is_err());
        assert!(check_basic_auth(&HeaderMap::new(), "user", "pa:ss").is_err());
        assert_eq!(
            check_secret(&headers("x-secret", "s3"), "x-secret", "s3"),
            Ok(())
        );
        assert!(check_secret(&headers("x-secret", "s4"), "x-secret", "s3").is_err());
        assert!(check_secret(&HeaderMap::new(), "x-secret", "s3").is_err());
    }
}
