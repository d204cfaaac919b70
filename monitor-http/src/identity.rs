//! Who a request's user is, for counting unique users: a named header, else the first present
//! of a list of cookies, else the client's IP address (from a trusted forwarded-for header
//! when one is configured).

use std::fmt::Write as _;
use std::net::IpAddr;

use http::header::{HeaderMap, HeaderName, COOKIE};

/// Why an identity rule was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum IdentityError {
    /// Not a valid HTTP header name.
    #[error("`{0}` is not a header name; give e.g. `x-user-id`")]
    BadHeader(String),
}

/// How to tell users apart, in order: the value of a header, else the first present of a list of
/// cookies (searched in the order given), else the client IP.
///
/// ```
/// use monitor_http::identity::UserIdentity;
/// let who = UserIdentity::new()
///     .header("x-user-id").unwrap()
///     .cookies(&["session", "visitor"])
///     .trusted_forwarded_for("x-forwarded-for").unwrap();
/// let mut h = http::HeaderMap::new();
/// h.insert("cookie", "theme=dark; visitor=v42".parse().unwrap());
/// assert_eq!(who.identify(&h, None).as_deref(), Some("v42"));
/// ```
#[derive(Debug, Clone, Default)]
pub struct UserIdentity {
    header: Option<HeaderName>,
    cookies: Vec<String>,
    forwarded_for: Option<HeaderName>,
}

fn header_name(name: &str) -> Result<HeaderName, IdentityError> {
    HeaderName::from_bytes(name.as_bytes()).map_err(|_| IdentityError::BadHeader(name.to_string()))
}

impl UserIdentity {
    /// Users told apart by client IP alone (the peer address).
    pub fn new() -> UserIdentity {
        UserIdentity::default()
    }

    /// First, the value of this request header (e.g. set by an authenticating proxy).
    pub fn header(mut self, name: &str) -> Result<UserIdentity, IdentityError> {
        self.header = Some(header_name(name)?);
        Ok(self)
    }

    /// Then, the first of these cookies the request has, in this order.
    pub fn cookies(mut self, names: &[&str]) -> UserIdentity {
        self.cookies = names.iter().map(|n| n.to_string()).collect();
        self
    }

    /// For the client IP, trust this header set by your proxy (`x-forwarded-for`: the leftmost
    /// address; `forwarded`: the first `for=`) over the peer address. Only configure it behind a
    /// proxy that sets it: clients can send anything.
    pub fn trusted_forwarded_for(mut self, name: &str) -> Result<UserIdentity, IdentityError> {
        self.forwarded_for = Some(header_name(name)?);
        Ok(self)
    }

    /// The user's id for this request, if any rule gives one.
    ///
    /// ```
    /// use std::net::{IpAddr, Ipv4Addr};
    /// let who = monitor_http::identity::UserIdentity::new();
    /// let peer = IpAddr::V4(Ipv4Addr::new(10, 0, 0, 7));
    /// assert_eq!(who.identify(&http::HeaderMap::new(), Some(peer)).as_deref(), Some("10.0.0.7"));
    /// ```
    pub fn identify(&self, headers: &HeaderMap, peer: Option<IpAddr>) -> Option<String> {
        self.identify_with(headers, peer, str::to_string)
    }

    /// [`identify`](Self::identify) without allocating: `with` gets the identity, borrowed
    /// from the headers or an address written on the stack. What `ServerLayer` counts each
    /// request with.
    pub(crate) fn identify_with<R>(
        &self,
        headers: &HeaderMap,
        peer: Option<IpAddr>,
        with: impl FnOnce(&str) -> R,
    ) -> Option<R> {
        if let Some(name) = &self.header {
            let v = headers.get(name).and_then(|v| v.to_str().ok()).map(str::trim);
            if let Some(v) = v.filter(|v| !v.is_empty()) {
                return Some(with(v));
            }
        }
        for wanted in &self.cookies {
            for line in headers.get_all(COOKIE).iter().filter_map(|v| v.to_str().ok()) {
                for pair in line.split(';') {
                    if let Some((k, v)) = pair.trim().split_once('=') {
                        let v = v.trim().trim_matches('"');
                        if k.trim() == wanted && !v.is_empty() {
                            return Some(with(v));
                        }
                    }
                }
            }
        }
        let mut ip = peer;
        if let Some(name) = &self.forwarded_for {
            let forwarded = headers.get(name).and_then(|v| v.to_str().ok()).and_then(|v| {
                if name.as_str() == "forwarded" {
                    first_forwarded_for(v)
                } else {
                    v.split(',').next().and_then(|a| a.trim().parse::<IpAddr>().ok())
                }
            });
            ip = forwarded.or(ip);
        }
        let mut text = AddressText::default();
        write!(text, "{}", ip?).ok()?;
        Some(with(text.as_str()))
    }
}

/// An IP address written out on the stack (the longest, an IPv6 address with an embedded IPv4
/// one, is 45 bytes).
struct AddressText {
    bytes: [u8; 48],
    len: usize,
}

impl Default for AddressText {
    fn default() -> Self {
        AddressText { bytes: [0; 48], len: 0 }
    }
}

impl AddressText {
    fn as_str(&self) -> &str {
        std::str::from_utf8(&self.bytes[..self.len]).unwrap_or("")
    }
}

impl std::fmt::Write for AddressText {
    fn write_str(&mut self, s: &str) -> std::fmt::Result {
        let end = self.len + s.len();
        self.bytes.get_mut(self.len..end).ok_or(std::fmt::Error)?.copy_from_slice(s.as_bytes());
        self.len = end;
        Ok(())
    }
}

/// The first `for=` of an RFC 7239 `Forwarded` header (`for=192.0.2.60`, `for="[2001:db8::1]:80"`).
fn first_forwarded_for(v: &str) -> Option<IpAddr> {
    let first = v.split(',').next()?;
    let value = first.split(';').find_map(|p| {
        let (k, v) = p.trim().split_once('=')?;
        k.trim().eq_ignore_ascii_case("for").then_some(v.trim().trim_matches('"'))
    })?;
    if let Some(rest) = value.strip_prefix('[') {
        return rest.split(']').next()?.parse().ok();
    }
    let host = match value.rsplit_once(':') {
        Some((h, port)) if port.bytes().all(|b| b.is_ascii_digit()) && !h.contains(':') => h,
        _ => value,
    };
    host.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Generated cookies and forwarded headers: identifying never panics, and an identity is
    /// never empty.
    #[test]
    fn any_header_is_safe_to_identify_by() {
        let mut gen = crate::fuzz::Inputs(0x853c_49e6_748f_ea9b);
        let id = UserIdentity::new().header("x-user").unwrap().cookies(&["session", "sid"]);
        for _ in 0..20_000 {
            let mut m = HeaderMap::new();
            for name in ["cookie", "x-user", "forwarded", "x-forwarded-for"] {
                if gen.next_u64() % 2 == 0 {
                    if let Ok(v) = gen.string(10).parse() {
                        m.append(HeaderName::from_static(name), v);
                    }
                }
            }
            if let Some(who) = id.identify(&m, None) {
                assert!(!who.is_empty());
            }
        }
    }

    fn h(pairs: &[(&str, &str)]) -> HeaderMap {
        let mut m = HeaderMap::new();
        for (k, v) in pairs {
            m.append(HeaderName::from_bytes(k.as_bytes()).unwrap(), v.parse().unwrap());
        }
        m
    }

    #[test]
    fn rules_apply_in_order() {
        let peer: Option<IpAddr> = "10.1.1.1".parse().ok();
        let who = UserIdentity::new()
            .header("x-user")
            .unwrap()
            .cookies(&["sid", "vid"])
            .trusted_forwarded_for("x-forwarded-for")
            .unwrap();
        let id = |pairs: &[(&str, &str)]| who.identify(&h(pairs), peer);
        assert_eq!(id(&[("x-user", "ann"), ("cookie", "sid=s1")]).as_deref(), Some("ann"));
        assert_eq!(id(&[("x-user", " "), ("cookie", "vid=v1; sid=s1")]).as_deref(), Some("s1"));
        assert_eq!(id(&[("cookie", "a=1"), ("cookie", "vid=\"v2\"")]).as_deref(), Some("v2"));
        assert_eq!(
            id(&[("x-forwarded-for", "203.0.113.9, 10.0.0.1")]).as_deref(),
            Some("203.0.113.9")
        );
        assert_eq!(id(&[("x-forwarded-for", "not-an-ip")]).as_deref(), Some("10.1.1.1"));
        assert_eq!(id(&[]).as_deref(), Some("10.1.1.1"));
        assert_eq!(UserIdentity::new().identify(&HeaderMap::new(), None), None);
        assert!(UserIdentity::new().header("bad header").is_err());
    }

    #[test]
    fn rfc7239_forwarded() {
        for (v, want) in [
            ("for=192.0.2.60;proto=http;by=203.0.113.43", "192.0.2.60"),
            ("For=\"[2001:db8:cafe::17]:4711\"", "2001:db8:cafe::17"),
            ("for=198.51.100.17:8080, for=10.0.0.1", "198.51.100.17"),
        ] {
            assert_eq!(
                first_forwarded_for(v).map(|ip| ip.to_string()).as_deref(),
                Some(want),
                "{v}"
            );
        }
        assert_eq!(first_forwarded_for("for=unknown"), None);
        let who = UserIdentity::new().trusted_forwarded_for("forwarded").unwrap();
        assert_eq!(
            who.identify(&h(&[("forwarded", "for=192.0.2.1")]), None).as_deref(),
            Some("192.0.2.1")
        );
    }
}
