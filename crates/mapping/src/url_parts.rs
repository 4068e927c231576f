//! URL parts (rule 17), matching Elasticsearch's `uri_parts` processor.
//!
//! Like `uri_parts`: explicit ports only, `path`, `query` and `fragment` percent-decoded, the
//! `extension` taken from the last path segment, `user_info` split at the first `:`. Deviations
//! (bugs or gaps there): hosts with `_` keep their `domain` (Java's URI drops it), a URL without
//! a scheme such as `evil.example/x.exe` gets its `domain` (Java reads it as a relative path), and
//! `username` is set when the user info has no `:`.

use anomali_model::UrlFields;
use thiserror::Error;

/// Why a URL could not be parsed.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[error("{reason}")]
pub struct UrlError {
    /// What was wrong.
    pub reason: &'static str,
}

fn fail(reason: &'static str) -> UrlError {
    UrlError { reason }
}

/// Splits a URL into ECS `url.*` parts. `original` and `full` are the input.
pub fn parse_url(text: &str) -> Result<UrlFields, UrlError> {
    if text.trim().is_empty() {
        return Err(fail("empty URL"));
    }
    let blank = |c: char| c.is_whitespace() || c.is_control();
    let has_blank = if text.is_ascii() {
        text.bytes().any(|b| b <= b' ' || b == 0x7f)
    } else {
        text.chars().any(blank)
    };
    if has_blank {
        return Err(fail("white space or control characters in the URL"));
    }
    let mut parts = UrlFields {
        original: Some(text.to_owned()),
        full: Some(text.to_owned()),
        ..UrlFields::default()
    };

    // Fragment and query first: neither may contain the delimiters before them.
    let (rest, fragment) = match text.split_once('#') {
        Some((rest, fragment)) => (rest, Some(fragment)),
        None => (text, None),
    };
    let (rest, query) = match rest.split_once('?') {
        Some((rest, query)) => (rest, Some(query)),
        None => (rest, None),
    };
    parts.fragment = fragment.map(percent_decode);
    parts.query = query.map(percent_decode);

    let (scheme, after_scheme) = split_scheme(rest)?;
    parts.scheme = scheme.map(str::to_owned);
    let hierarchical = after_scheme.strip_prefix("//");
    match (scheme, hierarchical) {
        (_, Some(authority_and_path)) => {
            let (authority, path) = match authority_and_path.find('/') {
                Some(index) => authority_and_path.split_at(index),
                None => (authority_and_path, ""),
            };
            parse_authority(authority, &mut parts)?;
            set_path(path, &mut parts);
        }
        // An opaque URI such as `mailto:a@b.example`: only the scheme, as Java's URI gives.
        (Some(_), None) if !after_scheme.starts_with('/') => {}
        (Some(_), None) => set_path(after_scheme, &mut parts),
        // deviation: no scheme. `host/path` gets its host; a bare path stays a path.
        (None, None) => {
            if after_scheme.starts_with('/') {
                set_path(after_scheme, &mut parts);
            } else {
                let (authority, path) = match after_scheme.find('/') {
                    Some(index) => after_scheme.split_at(index),
                    None => (after_scheme, ""),
                };
                parse_authority(authority, &mut parts)?;
                set_path(path, &mut parts);
            }
        }
    }
    Ok(parts)
}

/// `scheme:` when the text starts with one. `host:8080/...` is not a scheme.
fn split_scheme(text: &str) -> Result<(Option<&str>, &str), UrlError> {
    let Some(colon) = text.find(':') else {
        return Ok((None, text));
    };
    let (candidate, after) = (&text[..colon], &text[colon + 1..]);
    if candidate.contains('/') {
        return Ok((None, text));
    }
    let looks_like_port = !after.starts_with("//")
        && after.bytes().take_while(u8::is_ascii_digit).count() > 0
        && after
            .trim_start_matches(|c: char| c.is_ascii_digit())
            .chars()
            .next()
            .is_none_or(|c| c == '/');
    if looks_like_port {
        return Ok((None, text));
    }
    let mut chars = candidate.chars();
    let valid = chars.next().is_some_and(|c| c.is_ascii_alphabetic())
        && chars.all(|c| c.is_ascii_alphanumeric() || matches!(c, '+' | '-' | '.'));
    if !valid {
        return Err(fail("invalid scheme name"));
    }
    Ok((Some(candidate), after))
}

fn parse_authority(authority: &str, parts: &mut UrlFields) -> Result<(), UrlError> {
    let (user_info, host_port) = match authority.rfind('@') {
        Some(index) => (Some(&authority[..index]), &authority[index + 1..]),
        None => (None, authority),
    };
    if let Some(user_info) = user_info.filter(|u| !u.is_empty()) {
        let decoded = percent_decode(user_info);
        match decoded.split_once(':') {
            Some((username, password)) => {
                parts.username = Some(username.to_owned());
                parts.password = Some(password.to_owned());
            }
            // deviation: uri_parts sets no username without a `:`.
            None => parts.username = Some(decoded.clone()),
        }
        parts.user_info = Some(decoded);
    }
    let (host, port) = if let Some(bracketed) = host_port.strip_prefix('[') {
        let end = bracketed
            .find(']')
            .ok_or_else(|| fail("unterminated IPv6 address"))?;
        let literal = &bracketed[..end];
        if literal.parse::<std::net::Ipv6Addr>().is_err() {
            return Err(fail("invalid IPv6 address"));
        }
        let after = &bracketed[end + 1..];
        let port = match after.strip_prefix(':') {
            Some(port) => Some(port),
            None if after.is_empty() => None,
            None => return Err(fail("unexpected text after the IPv6 address")),
        };
        // ECS keeps the brackets of an IPv6 literal in url.domain.
        (&host_port[..end + 2], port)
    } else {
        match host_port.rsplit_once(':') {
            Some((host, port)) => (host, Some(port)),
            None => (host_port, None),
        }
    };
    if let Some(port) = port.filter(|p| !p.is_empty()) {
        let number: u16 = port
            .parse()
            .ok()
            .filter(|_| port.bytes().all(|b| b.is_ascii_digit()))
            .ok_or_else(|| fail("invalid port"))?;
        parts.port = Some(number);
    }
    if host.contains(['<', '>', '"', '\\', '^', '`', '{', '|', '}', '%']) {
        return Err(fail("invalid character in the host"));
    }
    if !host.is_empty() {
        parts.domain = Some(host.to_owned());
    }
    Ok(())
}

fn set_path(path: &str, parts: &mut UrlFields) {
    if path.is_empty() {
        return;
    }
    let decoded = percent_decode(path);
    // The extension comes from the last segment only, as uri_parts does.
    if let Some(slash) = decoded.rfind('/') {
        let last_segment = &decoded[slash..];
        if let Some(dot) = last_segment.rfind('.') {
            parts.extension = Some(last_segment[dot + 1..].to_owned());
        }
    }
    parts.path = Some(decoded);
}

/// Decodes `%XX` escapes as UTF-8 (invalid sequences become U+FFFD, as in Java); a `%` not
/// followed by two hex digits is kept as it is.
fn percent_decode(text: &str) -> String {
    if !text.contains('%') {
        return text.to_owned();
    }
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut index = 0;
    while index < bytes.len() {
        if bytes[index] == b'%' {
            let high = bytes.get(index + 1).and_then(|&b| (b as char).to_digit(16));
            let low = bytes.get(index + 2).and_then(|&b| (b as char).to_digit(16));
            if let (Some(high), Some(low)) = (high, low) {
                out.push((high * 16 + low) as u8);
                index += 3;
                continue;
            }
        }
        out.push(bytes[index]);
        index += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parts(text: &str) -> UrlFields {
        parse_url(text).unwrap()
    }

    #[test]
    fn conformance_style_url() {
        let p = parts("https://oy72c.example.net/k4v7f/rsny?6idia=vus11f-6v");
        assert_eq!(p.scheme.as_deref(), Some("https"));
        assert_eq!(p.domain.as_deref(), Some("oy72c.example.net"));
        assert_eq!(p.path.as_deref(), Some("/k4v7f/rsny"));
        assert_eq!(p.query.as_deref(), Some("6idia=vus11f-6v"));
        assert_eq!(p.extension, None);
        assert_eq!(p.port, None);
    }

    #[test]
    fn port_fragment_user_info_and_decoding() {
        let p = parts("http://user:p%40ss@h.example:8080/a%20b/c.tar.gz?q=%41#frag%21");
        assert_eq!(p.port, Some(8080));
        assert_eq!(p.path.as_deref(), Some("/a b/c.tar.gz"));
        assert_eq!(p.extension.as_deref(), Some("gz"));
        assert_eq!(p.query.as_deref(), Some("q=A"));
        assert_eq!(p.fragment.as_deref(), Some("frag!"));
        assert_eq!(p.user_info.as_deref(), Some("user:p@ss"));
        assert_eq!(p.username.as_deref(), Some("user"));
        assert_eq!(p.password.as_deref(), Some("p@ss"));
        assert_eq!(
            p.original.as_deref(),
            Some("http://user:p%40ss@h.example:8080/a%20b/c.tar.gz?q=%41#frag%21")
        );
    }

    #[test]
    fn default_ports_are_kept_when_written() {
        assert_eq!(parts("http://h.example:80/").port, Some(80));
        assert_eq!(parts("https://h.example/").port, None);
        assert_eq!(parts("http://h.example:/x").port, None);
    }

    #[test]
    fn ipv6_hosts_keep_their_brackets() {
        let p = parts("http://[2001:db8::1]:8443/x");
        assert_eq!(p.domain.as_deref(), Some("[2001:db8::1]"));
        assert_eq!(p.port, Some(8443));
    }

    #[test]
    fn scheme_less_urls_get_a_domain() {
        let p = parts("evil.example/payload.exe");
        assert_eq!(p.scheme, None);
        assert_eq!(p.domain.as_deref(), Some("evil.example"));
        assert_eq!(p.path.as_deref(), Some("/payload.exe"));
        assert_eq!(p.extension.as_deref(), Some("exe"));
        let p = parts("203.0.113.9:8080/bin.sh");
        assert_eq!(p.domain.as_deref(), Some("203.0.113.9"));
        assert_eq!(p.port, Some(8080));
    }

    #[test]
    fn opaque_uris_only_have_a_scheme() {
        let p = parts("mailto:a@b.example");
        assert_eq!(p.scheme.as_deref(), Some("mailto"));
        assert_eq!(p.domain, None);
        assert_eq!(p.path, None);
    }

    #[test]
    fn extension_only_from_the_last_segment() {
        assert_eq!(parts("http://h.example/a.b/c").extension, None);
        assert_eq!(
            parts("http://h.example/file.").extension.as_deref(),
            Some("")
        );
        assert_eq!(parts("http://h.example").path, None);
    }

    #[test]
    fn broken_urls_are_errors() {
        for bad in [
            "",
            "ht tp://x",
            "1http://x",
            "http://[::1/x",
            "http://h.example:99999/",
            "http://h.example:8a/",
            "http://[zz]/",
            "http://h<x>.example/",
            "http://a b/",
        ] {
            assert!(parse_url(bad).is_err(), "{bad:?} was accepted");
        }
    }

    #[test]
    fn invalid_percent_sequences_are_kept_or_replaced() {
        assert_eq!(
            parts("http://h.example/%zz%4").path.as_deref(),
            Some("/%zz%4")
        );
        assert_eq!(
            parts("http://h.example/%ff").path.as_deref(),
            Some("/\u{fffd}")
        );
    }
}
