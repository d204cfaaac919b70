//! Routing: from a request's method, path and query to a rendered response.

use bytes::Bytes;
use http::header::{HeaderValue, ACCEPT, ALLOW, CONTENT_TYPE, LOCATION};
use http::{HeaderMap, Method, Response, StatusCode};
use http_body_util::Full;

use crate::render;
use crate::render::prometheus::{Buckets, Format};

/// The monitor's pages, answerable under any path prefix.
///
/// [`Routes::respond`] is a pure function of the request line and headers; [`crate::serve`]
/// runs it in its own server, and [`crate::MonitorService`] mounts it in yours.
///
/// ```
/// use monitor_http::Routes;
/// let routes = Routes::new("/monitor").unwrap();
/// let resp = routes.respond(&http::Method::GET, "/monitor/funcs/json", None, &http::HeaderMap::new());
/// assert_eq!(resp.status(), 200);
/// assert_eq!(resp.headers()["content-type"], "application/json");
/// ```
#[derive(Debug, Clone)]
pub struct Routes {
    prefix: String,
    buckets: Buckets,
}

/// Why a path prefix was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PrefixError {
    /// The prefix does not start with `/`, or contains `?`, `#` or white space.
    #[error(
        "route prefix `{0}` must start with `/` and hold no `?`, `#` or spaces, e.g. `/monitor`"
    )]
    Invalid(String),
}

/// A query string that was refused.
struct BadQuery(String);

/// The query parameters the views understand.
#[derive(Default)]
struct Query {
    filter: Option<String>,
}

fn parse_query(raw: Option<&str>) -> Result<Query, BadQuery> {
    let mut q = Query::default();
    let Some(raw) = raw else { return Ok(q) };
    for pair in raw.split('&').filter(|p| !p.is_empty()) {
        let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
        let key = decode(k)?;
        let value = decode(v)?;
        match key.as_str() {
            "filter" if q.filter.is_some() => {
                return Err(BadQuery("query parameter `filter` given twice".into()))
            }
            "filter" => q.filter = Some(value),
            other => {
                return Err(BadQuery(format!(
                    "unknown query parameter `{other}`; the views accept `filter=<part of a \
                     function name>`"
                )))
            }
        }
    }
    Ok(q)
}

/// Percent-decoding of a query component (`+` is a space), as UTF-8.
fn decode(s: &str) -> Result<String, BadQuery> {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'%' => {
                let hex = bytes.get(i + 1..i + 3).and_then(|h| std::str::from_utf8(h).ok());
                match hex.and_then(|h| u8::from_str_radix(h, 16).ok()) {
                    Some(b) => out.push(b),
                    None => return Err(BadQuery(format!("bad percent-encoding in `{s}`"))),
                }
                i += 3;
            }
            b'+' => {
                out.push(b' ');
                i += 1;
            }
            b => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8(out).map_err(|_| BadQuery(format!("query `{s}` is not UTF-8")))
}

fn text(status: StatusCode, content_type: &'static str, body: String) -> Response<Full<Bytes>> {
    let mut resp = Response::new(Full::new(Bytes::from(body)));
    *resp.status_mut() = status;
    resp.headers_mut().insert(CONTENT_TYPE, HeaderValue::from_static(content_type));
    resp
}

const PLAIN: &str = "text/plain; charset=utf-8";

fn wants_openmetrics(headers: &HeaderMap) -> bool {
    headers
        .get_all(ACCEPT)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .any(|v| v.contains("application/openmetrics-text"))
}

impl Routes {
    /// Routes under `prefix` (`""` or `"/"` for the root; a trailing `/` is ignored).
    ///
    /// ```
    /// assert!(monitor_http::Routes::new("monitor").is_err());
    /// ```
    pub fn new(prefix: &str) -> Result<Routes, PrefixError> {
        let trimmed = prefix.trim_end_matches('/');
        let bad = |c: char| c == '?' || c == '#' || c.is_whitespace();
        if (!trimmed.is_empty() && !trimmed.starts_with('/')) || trimmed.contains(bad) {
            return Err(PrefixError::Invalid(prefix.to_string()));
        }
        Ok(Routes { prefix: trimmed.to_string(), buckets: Buckets::default() })
    }

    /// Routes at the root of the server.
    pub(crate) fn root() -> Routes {
        Routes { prefix: String::new(), buckets: Buckets::default() }
    }

    /// The same routes with other latency buckets for `/metrics`.
    ///
    /// ```
    /// use monitor_http::{Buckets, Routes};
    /// let r = Routes::new("").unwrap().with_buckets(Buckets::new(vec![0.01, 1.0]).unwrap());
    /// # drop(r);
    /// ```
    pub fn with_buckets(mut self, buckets: Buckets) -> Routes {
        self.buckets = buckets;
        self
    }

    /// Answers one request: `GET` (or `HEAD`) of a view under the prefix, 404 naming the path
    /// otherwise, 405 for other methods, 400 for bad query parameters.
    ///
    /// ```
    /// use http::{HeaderMap, Method};
    /// let routes = monitor_http::Routes::new("").unwrap();
    /// let resp = routes.respond(&Method::GET, "/nope", None, &HeaderMap::new());
    /// assert_eq!(resp.status(), 404);
    /// ```
    pub fn respond(
        &self,
        method: &Method,
        path: &str,
        query: Option<&str>,
        headers: &HeaderMap,
    ) -> Response<Full<Bytes>> {
        let mut resp = self.respond_get(method, path, query, headers);
        if method == Method::HEAD {
            *resp.body_mut() = Full::new(Bytes::new());
        }
        resp
    }

    fn respond_get(
        &self,
        method: &Method,
        path: &str,
        query: Option<&str>,
        headers: &HeaderMap,
    ) -> Response<Full<Bytes>> {
        let Some(rest) = path.strip_prefix(&self.prefix) else {
            return not_found(path);
        };
        if rest.is_empty() {
            // `/monitor` → `/monitor/`, so the index's relative links resolve under the prefix.
            let mut resp = text(StatusCode::PERMANENT_REDIRECT, PLAIN, String::new());
            if let Ok(loc) = HeaderValue::from_str(&format!("{}/", self.prefix)) {
                resp.headers_mut().insert(LOCATION, loc);
            }
            return resp;
        }
        if !rest.starts_with('/') {
            return not_found(path);
        }
        if method != Method::GET && method != Method::HEAD {
            let mut resp = text(
                StatusCode::METHOD_NOT_ALLOWED,
                PLAIN,
                format!(
                    "method {method} is not allowed: the monitor's pages answer GET and HEAD\n"
                ),
            );
            resp.headers_mut().insert(ALLOW, HeaderValue::from_static("GET, HEAD"));
            return resp;
        }
        let query = match parse_query(query) {
            Ok(q) => q,
            Err(BadQuery(msg)) => return text(StatusCode::BAD_REQUEST, PLAIN, format!("{msg}\n")),
        };
        let view = match rest {
            "/" => View::Html,
            "/funcs" | "/funcs/" | "/funcs/text" => View::FuncsText,
            "/funcs/json" => View::FuncsJson,
            "/funcs/dot" => View::Dot,
            "/stats" | "/stats/" | "/stats/text" => View::StatsText,
            "/stats/json" => View::StatsJson,
            "/metrics" => View::Metrics,
            "/debug/vars" => View::Expvar,
            _ => return not_found(path),
        };
        let mut snapshot = monitor_core::registry().snapshot();
        if let Some(filter) = &query.filter {
            snapshot.functions.retain(|f| f.name.contains(filter.as_str()));
        }
        let mut body = String::new();
        let content_type = match view {
            View::Html => {
                render::html::write_html(&snapshot, &mut body);
                "text/html; charset=utf-8"
            }
            View::FuncsText => {
                render::text::write_text(&snapshot, &mut body);
                PLAIN
            }
            View::FuncsJson => {
                render::json::write_funcs_json(&snapshot, &mut body);
                "application/json"
            }
            View::Dot => {
                render::dot::write_dot(&snapshot, &mut body);
                "text/vnd.graphviz; charset=utf-8"
            }
            View::StatsText => {
                render::stats::write_stats_text(&snapshot, &mut body);
                PLAIN
            }
            View::StatsJson => {
                render::stats::write_stats_json(&snapshot, &mut body);
                "application/json"
            }
            View::Metrics => {
                let format = if wants_openmetrics(headers) {
                    Format::OpenMetrics
                } else {
                    Format::Prometheus
                };
                render::prometheus::write_prometheus(&snapshot, &self.buckets, format, &mut body);
                format.content_type()
            }
            View::Expvar => {
                render::expvar::write_expvar(&snapshot, &mut body);
                "application/json"
            }
        };
        text(StatusCode::OK, content_type, body)
    }
}

enum View {
    Html,
    FuncsText,
    FuncsJson,
    Dot,
    StatsText,
    StatsJson,
    Metrics,
    Expvar,
}

fn not_found(path: &str) -> Response<Full<Bytes>> {
    let shown: String = path.chars().take(200).collect();
    text(StatusCode::NOT_FOUND, PLAIN, format!("no page at {shown}; the index lists every view\n"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn queries() {
        assert_eq!(
            parse_query(Some("filter=a%20b+c")).ok().and_then(|q| q.filter).as_deref(),
            Some("a b c")
        );
        assert!(parse_query(Some("filter=%zz")).is_err());
        assert!(parse_query(Some("filter=%ff")).is_err());
        assert!(parse_query(Some("x=1")).is_err());
        assert!(parse_query(Some("filter=a&filter=b")).is_err());
        assert!(parse_query(Some("&&")).is_ok());
    }

    #[test]
    fn prefixes() {
        assert!(Routes::new("").is_ok());
        assert!(Routes::new("/").is_ok());
        assert!(Routes::new("/a/b/").is_ok());
        assert!(Routes::new("a").is_err());
        assert!(Routes::new("/a b").is_err());
        let r = Routes::new("/m").unwrap();
        let h = HeaderMap::new();
        let resp = r.respond(&Method::GET, "/m", None, &h);
        assert_eq!(resp.status(), 308);
        assert_eq!(resp.headers()[LOCATION], "/m/");
        assert_eq!(r.respond(&Method::GET, "/mx/funcs", None, &h).status(), 404);
        assert_eq!(r.respond(&Method::GET, "/funcs", None, &h).status(), 404);
        assert_eq!(r.respond(&Method::POST, "/m/funcs", None, &h).status(), 405);
        assert_eq!(r.respond(&Method::GET, "/m/funcs", Some("bad=1"), &h).status(), 400);
    }
}
