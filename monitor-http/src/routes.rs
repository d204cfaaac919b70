//! Routing: from a request's method, path and query to a rendered response.

use std::time::Duration;

use http::header::{HeaderValue, ACCEPT, ALLOW, CONTENT_TYPE, LOCATION, RETRY_AFTER};
use http::{HeaderMap, Method, Response, StatusCode};

use crate::body::Body;
use crate::render;
use crate::render::json::FunctionsJsonWriter;
use crate::render::prometheus::{Buckets, ExpositionFormat, MetricsWriter};
use crate::render::Parts;
use crate::views::{self, Draw, TraceFormat, PLAIN, SVG};
use monitor_core::trace::{failed_traces, slow_traces, Trace, Watch, WatchError, WatchFilter};
use monitor_core::TraceId;

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
#[non_exhaustive]
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
    name: Option<String>,
    regex: Option<String>,
    trace_id: Option<String>,
    preselect: Option<String>,
    timeout: Option<String>,
}

/// The longest a trace view waits (`timeout=`), and how long it waits unless told.
pub(crate) const TRACE_TIMEOUT_CAP: Duration = Duration::from_secs(120);
pub(crate) const TRACE_TIMEOUT_DEFAULT: Duration = Duration::from_secs(30);

fn parse_query(raw: Option<&str>) -> Result<Query, BadQuery> {
    let mut q = Query::default();
    let Some(raw) = raw else { return Ok(q) };
    for pair in raw.split('&').filter(|p| !p.is_empty()) {
        let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
        let key = decode(k)?;
        let value = decode(v)?;
        let slot = match key.as_str() {
            "filter" => &mut q.filter,
            "name" => &mut q.name,
            "regex" => &mut q.regex,
            "trace_id" => &mut q.trace_id,
            "preselect" => &mut q.preselect,
            "timeout" => &mut q.timeout,
            other => {
                return Err(BadQuery(format!(
                    "unknown query parameter `{other}`; the function views accept \
                     `filter=<part of a function name>`, /function `name=<the monitored name>`, \
                     the trace views `regex=`, `trace_id=`, `timeout=` and `preselect=false`"
                )))
            }
        };
        if slot.is_some() {
            return Err(BadQuery(format!("query parameter `{key}` given twice")));
        }
        *slot = Some(value);
    }
    Ok(q)
}

/// `500ms`, `5s`, `2m`, or a number of seconds.
fn parse_timeout(s: &str) -> Result<Duration, BadQuery> {
    let bad = || {
        BadQuery(format!(
            "timeout `{s}` is not a duration; give e.g. `timeout=500ms`, `timeout=10s` or \
             `timeout=2m` (at most {}s)",
            TRACE_TIMEOUT_CAP.as_secs()
        ))
    };
    let (num, unit) = match s.find(|c: char| c.is_ascii_alphabetic()) {
        Some(i) => s.split_at(i),
        None => (s, "s"),
    };
    // Digits with at most one point: no sign, no spaces, no exponent (`f64`'s parser takes
    // `-0`, `+1` and `1e3`).
    let digits = num.bytes().filter(u8::is_ascii_digit).count();
    let points = num.bytes().filter(|&b| b == b'.').count();
    if digits == 0 || points > 1 || digits + points != num.len() {
        return Err(bad());
    }
    let n: f64 = num.parse().map_err(|_| bad())?;
    let secs = match unit {
        "ms" => n / 1000.0,
        "s" => n,
        "m" => n * 60.0,
        _ => return Err(bad()),
    };
    if !secs.is_finite() || secs < 0.0 {
        return Err(bad());
    }
    let d = Duration::from_secs_f64(secs.min(1e9));
    if d > TRACE_TIMEOUT_CAP {
        return Err(BadQuery(format!(
            "timeout {s} is above the cap of {}s; a shorter wait keeps watches free for others",
            TRACE_TIMEOUT_CAP.as_secs()
        )));
    }
    Ok(d)
}

/// The longest `regex=` a capture takes.
const MAX_REGEX: usize = 1024;

/// Views rendered at once by [`Routes::handle`]; more wait their turn.
const RENDERS: usize = 4;

/// What a trace view waits for, with how to answer.
struct TraceWait {
    /// Every wait holds a watch, so every wait counts against the cap of waiting watches, even one that
    /// nothing can match yet (`preselect=false` with a regex that names no function).
    watch: Watch,
    timeout: Duration,
    format: TraceFormat,
    what: String,
}

enum Prepared {
    Done(Response<Body>),
    Wait(TraceWait),
}

impl TraceWait {
    fn answer(self, trace: Option<Trace>) -> Response<Body> {
        let Some(trace) = trace else {
            return text(
                StatusCode::GATEWAY_TIMEOUT,
                PLAIN,
                format!(
                    "no call {} finished within {:?}; trigger one while waiting, or pass a longer \
                     timeout= (at most {}s)\n",
                    self.what,
                    self.timeout,
                    TRACE_TIMEOUT_CAP.as_secs()
                ),
            );
        };
        trace_answer(self.format, &trace)
    }
}

/// A trace in `format`.
fn trace_answer(format: TraceFormat, trace: &Trace) -> Response<Body> {
    let mut body = String::new();
    let mut resp = match format {
        TraceFormat::Svg => {
            render::trace::write_trace_svg(trace, &mut body);
            text(StatusCode::OK, SVG, body)
        }
        TraceFormat::Json => {
            render::trace::write_trace_json(trace, &mut body);
            text(StatusCode::OK, views::JSON, body)
        }
        TraceFormat::Text => {
            render::trace::write_trace_text(trace, &mut body);
            text(StatusCode::OK, PLAIN, body)
        }
    };
    if let Ok(v) = HeaderValue::from_str(&trace.trace_id.to_string()) {
        resp.headers_mut().insert("x-monitor-trace-id", v);
    }
    resp
}

/// `trace_id=`: 32 lower-case hex digits (as W3C trace context writes them), not all zero.
fn parse_trace_id(t: &str) -> Result<TraceId, String> {
    let ok = t.len() == 32 && t.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'));
    match u128::from_str_radix(t, 16) {
        Ok(v) if ok && v != 0 => Ok(TraceId::from_u128(v)),
        _ => Err(format!(
            "trace_id `{t}` is not a trace id: give 32 lower-case hex digits, not all zero"
        )),
    }
}

fn trace_wait(q: &Query, format: TraceFormat) -> Prepared {
    // A trace an exemplar (or the failed-trace keeper) holds is answered at once.
    if q.regex.is_none() {
        if let Some(Ok(id)) = q.trace_id.as_deref().map(parse_trace_id) {
            if let Some(trace) = monitor_core::trace::exemplar_trace(id) {
                return Prepared::Done(trace_answer(format, &trace));
            }
        }
    }
    match trace_watch(q, format) {
        Ok(wait) => Prepared::Wait(wait),
        Err(resp) => Prepared::Done(*resp),
    }
}

fn trace_watch(q: &Query, format: TraceFormat) -> Result<TraceWait, Box<Response<Body>>> {
    let bad = |msg: String| Box::new(text(StatusCode::BAD_REQUEST, PLAIN, format!("{msg}\n")));
    let timeout = match &q.timeout {
        Some(t) => parse_timeout(t).map_err(|BadQuery(m)| bad(m))?,
        None => TRACE_TIMEOUT_DEFAULT,
    };
    let preselect = match q.preselect.as_deref() {
        None | Some("true") => true,
        Some("false") => false,
        Some(other) => return Err(bad(format!("preselect=`{other}`: give true or false"))),
    };
    let trace_id = match q.trace_id.as_deref().map(parse_trace_id) {
        None => None,
        Some(Ok(id)) => Some(id),
        Some(Err(m)) => return Err(bad(m)),
    };
    let mut what = String::new();
    let filter = match &q.regex {
        Some(r) => {
            // Bounded work for any pattern a client sends: its length, and the size of what
            // it compiles to (the crate's default allows 10 MB, seconds of compiling).
            if r.len() > MAX_REGEX {
                return Err(bad(format!(
                    "regex of {} bytes is longer than the {MAX_REGEX} allowed",
                    r.len()
                )));
            }
            let re = regex::RegexBuilder::new(r)
                .size_limit(1 << 20)
                .build()
                .map_err(|e| bad(format!("regex `{r}` is invalid: {e}")))?;
            // Routes, hosts and statements made after the capture starts count too.
            let f = WatchFilter::matching(move |s| re.is_match(s.name()));
            what = format!("of a function matching `{r}`");
            if preselect && f.matched_functions() == Some(0) {
                return Err(bad(format!(
                    "regex `{r}` matches 0 functions; the index lists them (or pass \
                     preselect=false to wait anyway)"
                )));
            }
            match trace_id {
                Some(id) => f.in_trace(id),
                None => f,
            }
        }
        None => match trace_id {
            Some(id) => WatchFilter::trace(id),
            None => {
                return Err(bad("the trace views need `regex=<function name pattern>` and/or \
                     `trace_id=<32 hex digits>`, e.g. /trace/svg?regex=handle"
                    .into()))
            }
        },
    };
    if let Some(id) = trace_id {
        what = if what.is_empty() {
            format!("in trace {id}")
        } else {
            format!("{what} in trace {id}")
        };
    }
    let filter = filter.described(&format!("capture {what}"));
    match Watch::start_waiting(filter) {
        Ok(watch) => Ok(TraceWait { watch, timeout, format, what }),
        Err(e @ WatchError::TooMany { .. }) => {
            let mut resp = text(StatusCode::SERVICE_UNAVAILABLE, PLAIN, format!("{e}\n"));
            resp.headers_mut().insert(RETRY_AFTER, HeaderValue::from_static("1"));
            Err(Box::new(resp))
        }
        Err(e) => Err(bad(e.to_string())),
    }
}

/// Percent-decoding of a query component (`+` is a space), as UTF-8.
fn decode(s: &str) -> Result<String, BadQuery> {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'%' => {
                // Two hex digits exactly: `from_str_radix` alone would take `%+f` as 0x0f.
                let hex = bytes
                    .get(i + 1..i + 3)
                    .filter(|h| h.iter().all(u8::is_ascii_hexdigit))
                    .and_then(|h| std::str::from_utf8(h).ok());
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

fn text(status: StatusCode, content_type: &'static str, body: String) -> Response<Body> {
    let mut resp = Response::new(Body::from(body));
    *resp.status_mut() = status;
    resp.headers_mut().insert(CONTENT_TYPE, HeaderValue::from_static(content_type));
    resp
}

/// 200 with a body written while it is sent.
fn streamed(writer: impl Parts + 'static, content_type: &'static str) -> Response<Body> {
    let mut resp = Response::new(Body::parts(writer));
    resp.headers_mut().insert(CONTENT_TYPE, HeaderValue::from_static(content_type));
    resp
}

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
        // The index draws the history: keep it from now on.
        monitor_core::enable_history();
        monitor_core::enable_objective_history();
        Ok(Routes { prefix: trimmed.to_string(), buckets: Buckets::default() })
    }

    /// The path prefix, without a trailing `/` (`""` at the root).
    #[cfg(feature = "axum")]
    pub(crate) fn prefix(&self) -> &str {
        &self.prefix
    }

    /// Routes at the root of the server.
    pub(crate) fn root() -> Routes {
        monitor_core::enable_history();
        monitor_core::enable_objective_history();
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
    ///
    /// The trace views (`/trace/json`, `/trace/svg`) wait for a matching call: here, by
    /// blocking the calling thread up to the request's timeout. Async servers use
    /// [`Routes::handle`], which waits without blocking.
    pub fn respond(
        &self,
        method: &Method,
        path: &str,
        query: Option<&str>,
        headers: &HeaderMap,
    ) -> Response<Body> {
        let resp = match self.respond_get(method, path, query, headers) {
            Prepared::Done(resp) => resp,
            Prepared::Wait(wait) => {
                let trace = wait.watch.wait(wait.timeout).ok();
                wait.answer(trace)
            }
        };
        head(method, resp)
    }

    /// Answers one request like [`Routes::respond`], waiting for traces asynchronously (on
    /// tokio's timer).
    ///
    /// ```
    /// use http::{HeaderMap, Method};
    /// # tokio::runtime::Builder::new_current_thread().enable_time().build().unwrap().block_on(async {
    /// let routes = monitor_http::Routes::new("").unwrap();
    /// let resp = routes.handle(&Method::GET, "/trace/json", Some("regex=nothing-has-this-name"), &HeaderMap::new()).await;
    /// assert_eq!(resp.status(), 400);
    /// # });
    /// ```
    pub async fn handle(
        &self,
        method: &Method,
        path: &str,
        query: Option<&str>,
        headers: &HeaderMap,
    ) -> Response<Body> {
        let resp = match self.prepare_aside(method, path, query, headers).await {
            Prepared::Done(resp) => resp,
            Prepared::Wait(wait) => {
                let trace = tokio::time::timeout(wait.timeout, wait.watch.wait_async()).await.ok();
                wait.answer(trace)
            }
        };
        head(method, resp)
    }

    /// [`Routes::respond_get`] on tokio's blocking threads, at most [`RENDERS`] at once: a
    /// large view, a gauge that is slow to answer or an expensive regex then holds neither
    /// the thread serving the other requests (the monitor server's only one, or a worker of
    /// the application's runtime) nor more than its share of render threads.
    async fn prepare_aside(
        &self,
        method: &Method,
        path: &str,
        query: Option<&str>,
        headers: &HeaderMap,
    ) -> Prepared {
        static RENDER_PERMITS: tokio::sync::Semaphore = tokio::sync::Semaphore::const_new(RENDERS);
        // Trace waits compile their regex here: their own permits, so that expensive regexes
        // queue behind each other and never before a page or a scrape.
        static WATCH_PERMITS: tokio::sync::Semaphore = tokio::sync::Semaphore::const_new(2);
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            return self.respond_get(method, path, query, headers);
        };
        let permits = if path.contains("/trace/") { &WATCH_PERMITS } else { &RENDER_PERMITS };
        let Ok(_permit) = permits.acquire().await else {
            return self.respond_get(method, path, query, headers);
        };
        let (routes, method, path) = (self.clone(), method.clone(), path.to_owned());
        let (query, headers) = (query.map(str::to_owned), headers.clone());
        let render = runtime
            .spawn_blocking(move || routes.respond_get(&method, &path, query.as_deref(), &headers));
        match render.await {
            Ok(prepared) => prepared,
            Err(_) => Prepared::Done(text(
                StatusCode::INTERNAL_SERVER_ERROR,
                PLAIN,
                "the view failed while it was rendered; the monitor goes on serving\n".into(),
            )),
        }
    }

    fn respond_get(
        &self,
        method: &Method,
        path: &str,
        query: Option<&str>,
        headers: &HeaderMap,
    ) -> Prepared {
        let Some(rest) = path.strip_prefix(&self.prefix) else {
            return Prepared::Done(not_found(path));
        };
        // Before anything that answers with a page or a redirect: a `CONNECT` (whose target is
        // an authority, so its path is empty) or a `POST` is refused whatever its path.
        if method != Method::GET && method != Method::HEAD {
            let mut resp = text(
                StatusCode::METHOD_NOT_ALLOWED,
                PLAIN,
                format!(
                    "method {method} is not allowed: the monitor's pages answer GET and HEAD\n"
                ),
            );
            resp.headers_mut().insert(ALLOW, HeaderValue::from_static("GET, HEAD"));
            return Prepared::Done(resp);
        }
        if rest.is_empty() {
            // `/monitor` → `/monitor/`, so the index's relative links resolve under the prefix.
            let mut resp = text(StatusCode::PERMANENT_REDIRECT, PLAIN, String::new());
            if let Ok(loc) = HeaderValue::from_str(&format!("{}/", self.prefix)) {
                resp.headers_mut().insert(LOCATION, loc);
            }
            return Prepared::Done(resp);
        }
        if !rest.starts_with('/') {
            return Prepared::Done(not_found(path));
        }
        let query = match parse_query(query) {
            Ok(q) => q,
            Err(BadQuery(msg)) => {
                return Prepared::Done(text(StatusCode::BAD_REQUEST, PLAIN, format!("{msg}\n")))
            }
        };
        let Some(view) = views::find(rest) else {
            return Prepared::Done(not_found(path));
        };
        let capture = matches!(view.draw, Draw::Capture(_));
        if let Some(resp) =
            query.misplaced(view.filter, capture, matches!(view.draw, Draw::Function))
        {
            return Prepared::Done(resp);
        }
        let mut body = String::new();
        match view.draw {
            Draw::Capture(format) => return trace_wait(&query, format),
            Draw::Live(draw) => draw(&mut body),
            Draw::Index => render::html::write_index(
                &self.snapshot(&query),
                &monitor_core::objective_status(),
                &mut body,
            ),
            Draw::Snapshot(draw) => draw(&self.snapshot(&query), &mut body),
            Draw::Function => {
                let Some(name) = &query.name else {
                    let msg = "give the function: /function?name=<the monitored name>\n";
                    return Prepared::Done(text(StatusCode::BAD_REQUEST, PLAIN, msg.into()));
                };
                let (failed, slow) = (failed_traces(), slow_traces());
                let snapshot = monitor_core::registry().snapshot_around(name);
                let trend = monitor_core::function_history(name);
                let page = render::function::write_function_html;
                if !page(&snapshot, name, &trend, &failed, &slow, &mut body) {
                    let shown: String = name.chars().take(200).collect();
                    let msg =
                        format!("no monitored function is named `{shown}`; /funcs lists them\n");
                    return Prepared::Done(text(StatusCode::NOT_FOUND, PLAIN, msg));
                }
            }
            // Written while they are sent.
            Draw::FunctionsJson => {
                let writer = FunctionsJsonWriter::new(self.snapshot(&query));
                return Prepared::Done(streamed(writer, view.content_type));
            }
            Draw::Metrics => {
                let format = if wants_openmetrics(headers) {
                    ExpositionFormat::OpenMetrics
                } else {
                    ExpositionFormat::Prometheus
                };
                // With the objectives' latency bounds, which their rules read.
                let buckets = self.buckets.including(&monitor_core::objective_latency_bounds());
                let writer = MetricsWriter::new(self.snapshot(&query), &buckets, format);
                return Prepared::Done(streamed(writer, format.content_type()));
            }
        }
        Prepared::Done(text(StatusCode::OK, view.content_type, body))
    }

    /// A snapshot of the registry, its functions filtered by `?filter=`.
    fn snapshot(&self, query: &Query) -> monitor_core::Snapshot {
        let mut snapshot = monitor_core::registry().snapshot();
        if let Some(filter) = &query.filter {
            snapshot.functions.retain(|f| f.name.contains(filter.as_str()));
        }
        snapshot
    }
}

fn bad_param(name: &str, views: &str) -> Response<Body> {
    text(
        StatusCode::BAD_REQUEST,
        PLAIN,
        format!("query parameter `{name}` applies to {views} only\n"),
    )
}

/// HEAD answers carry the headers of GET and no body.
fn head(method: &Method, mut resp: Response<Body>) -> Response<Body> {
    if method == Method::HEAD {
        *resp.body_mut() = Body::empty();
    }
    resp
}

impl Query {
    /// A 400 for parameters the view does not take: `filter` belongs to the function views,
    /// the trace parameters to `/trace/json` and `/trace/svg`.
    fn misplaced(&self, filter_ok: bool, trace_ok: bool, name_ok: bool) -> Option<Response<Body>> {
        if !filter_ok && self.filter.is_some() {
            return Some(bad_param("filter", "the function views"));
        }
        if !name_ok && self.name.is_some() {
            return Some(bad_param("name", "/function"));
        }
        if trace_ok {
            return None;
        }
        [
            ("regex", &self.regex),
            ("trace_id", &self.trace_id),
            ("preselect", &self.preselect),
            ("timeout", &self.timeout),
        ]
        .into_iter()
        .find(|(_, v)| v.is_some())
        .map(|(name, _)| bad_param(name, "/trace/json, /trace/svg and /trace/text"))
    }
}

fn not_found(path: &str) -> Response<Body> {
    let shown: String = path.chars().take(200).collect();
    text(StatusCode::NOT_FOUND, PLAIN, format!("no page at {shown}; the index lists every view\n"))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Twenty thousand generated queries, timeouts and trace ids: no panic, and every
    /// rejection says what was wrong.
    #[test]
    fn parsers_take_any_input() {
        let mut gen = crate::fuzz::Inputs(0x2545_f491_4f6c_dd1d);
        for _ in 0..20_000 {
            let raw = gen.string(12);
            match parse_query(Some(&raw)) {
                Ok(q) => {
                    for t in q.timeout.iter() {
                        if let Ok(d) = parse_timeout(t) {
                            assert!(d <= TRACE_TIMEOUT_CAP, "{t}");
                            assert!(
                                t.bytes().next().is_some_and(|b| b.is_ascii_digit() || b == b'.'),
                                "{t}"
                            );
                        }
                    }
                }
                Err(BadQuery(msg)) => assert!(!msg.is_empty(), "{raw}"),
            }
            let t = gen.string(3);
            if let Err(BadQuery(msg)) = parse_timeout(&t) {
                assert!(msg.contains("timeout"), "{t}: {msg}");
            }
        }
        // Through the router, with views that answer at once: only 200, 400 or 404.
        let routes = Routes::root();
        let h = HeaderMap::new();
        for _ in 0..2_000 {
            let q = gen.string(8);
            let path = ["/funcs", "/funcs/json", "/stats", "/metrics", "/x", "/funcs/dot"]
                [(gen.next_u64() % 6) as usize];
            let status = routes.respond(&Method::GET, path, Some(&q), &h).status().as_u16();
            assert!(matches!(status, 200 | 400 | 404), "{path}?{q}: {status}");
        }
    }

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
