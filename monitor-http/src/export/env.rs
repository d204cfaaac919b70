//! Exporters from OpenTelemetry's standard environment variables.

use std::fmt;
use std::time::Duration;

use super::{ExportConfig, ExportError, ExportStats, Exporter};

/// A variable of the environment that cannot be used: its name, its value, and why.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum EnvError {
    /// A value that does not parse, or names what the monitor does not do.
    #[error("{variable}={value:?}: {reason}")]
    Invalid {
        /// The variable.
        variable: String,
        /// Its value.
        value: String,
        /// What is wrong, and what would do.
        reason: String,
    },
    /// An endpoint or header the exporter refuses.
    #[error("{variable}: {error}")]
    Export {
        /// The variable it came from.
        variable: String,
        /// Why the exporter refused it.
        error: ExportError,
    },
}

/// The exporters the environment asked for, each `None` if not asked for.
#[derive(Debug, Default)]
#[non_exhaustive]
pub struct Exporters {
    /// Spans, to `…/v1/traces`.
    pub traces: Option<Exporter>,
    /// Metrics, to `…/v1/metrics`.
    pub metrics: Option<Exporter>,
    /// Log records, to `…/v1/logs`, through the exporter's `logger()` once it is installed
    /// (features `otlp` and `log`).
    pub logs: Option<Exporter>,
}

impl Exporters {
    /// Whether the environment asked for none.
    pub fn is_empty(&self) -> bool {
        self.traces.is_none() && self.metrics.is_none() && self.logs.is_none()
    }

    /// Shuts every one down (each within its shutdown timeout): what each did, traces,
    /// metrics then logs.
    pub fn shutdown(self) -> Vec<(&'static str, ExportStats)> {
        [("traces", self.traces), ("metrics", self.metrics), ("logs", self.logs)]
            .into_iter()
            .filter_map(|(name, e)| Some((name, e?.shutdown())))
            .collect()
    }
}

impl fmt::Display for Exporters {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let names: Vec<&str> = [
            ("traces", self.traces.is_some()),
            ("metrics", self.metrics.is_some()),
            ("logs", self.logs.is_some()),
        ]
        .into_iter()
        .filter_map(|(n, on)| on.then_some(n))
        .collect();
        if names.is_empty() {
            f.write_str("no exporters")
        } else {
            write!(f, "OTLP exporters of {}", names.join(", "))
        }
    }
}

/// The exporters OpenTelemetry's standard environment variables ask for, started; none when
/// no endpoint is set or `OTEL_SDK_DISABLED=true`. Also applies `OTEL_TRACES_SAMPLER`.
///
/// | variable | what it does |
/// | --- | --- |
/// | `OTEL_EXPORTER_OTLP_ENDPOINT` | base URL of every signal (`…/v1/traces`, `…/v1/metrics`, `…/v1/logs`) |
/// | `OTEL_EXPORTER_OTLP_{TRACES,METRICS,LOGS}_ENDPOINT` | one signal's full URL |
/// | `OTEL_EXPORTER_OTLP[_{SIGNAL}]_PROTOCOL` | `http/protobuf` (default), `http/json`, or `grpc` (feature `grpc`; the endpoint is then the collector's gRPC address) |
/// | `OTEL_EXPORTER_OTLP[_{SIGNAL}]_HEADERS` | `key=value,…`, values percent-decoded |
/// | `OTEL_EXPORTER_OTLP[_{SIGNAL}]_TIMEOUT` | per request, in milliseconds (default 10000) |
/// | `OTEL_{TRACES,METRICS,LOGS}_EXPORTER` | `otlp` (default) or `none` |
/// | `OTEL_SERVICE_NAME` | `service.name` |
/// | `OTEL_RESOURCE_ATTRIBUTES` | `key=value,…` resource attributes |
/// | `OTEL_METRIC_EXPORT_INTERVAL` | milliseconds between metrics snapshots (default 60000) |
/// | `OTEL_EXPORTER_OTLP_METRICS_TEMPORALITY_PREFERENCE` | `cumulative` (default), `delta` or `lowmemory` (both: deltas) |
/// | `OTEL_BSP_MAX_EXPORT_BATCH_SIZE`, `OTEL_BSP_SCHEDULE_DELAY` | spans per request (512), and milliseconds a batch waits to fill (5000) |
/// | `OTEL_EXPORTER_OTLP[_{SIGNAL}]_COMPRESSION` | `gzip` or `none` |
/// | `OTEL_EXPORTER_OTLP[_{SIGNAL}]_CERTIFICATE` | a PEM file of certificates to trust for `https://` (feature `tls`) |
/// | `OTEL_TRACES_SAMPLER`, `OTEL_TRACES_SAMPLER_ARG` | `always_on`, `always_off`, `traceidratio` and their `parentbased_` forms |
/// | `OTEL_SDK_DISABLED` | `true`: no exporter |
///
/// # Errors
///
/// [`EnvError`] naming the variable whose value cannot be used (`grpc` without the feature
/// `grpc` is one).
///
/// ```
/// let exporters = monitor_http::export::from_env().unwrap();
/// // ... at exit:
/// exporters.shutdown();
/// ```
pub fn from_env() -> Result<Exporters, EnvError> {
    from_vars(|name| std::env::var(name).ok())
}

/// [`from_env`] with the variables from `lookup` instead of the process's environment (a
/// configuration file's, a test's).
///
/// # Errors
///
/// As [`from_env`].
///
/// ```
/// use monitor_http::export::{from_vars, EnvError};
/// let vars = |name: &str| match name {
///     "OTEL_EXPORTER_OTLP_ENDPOINT" => Some("http://127.0.0.1:9".to_string()),
///     "OTEL_EXPORTER_OTLP_PROTOCOL" => Some("carrier-pigeon".to_string()),
///     _ => None,
/// };
/// let err = from_vars(vars).unwrap_err();
/// assert!(err.to_string().starts_with("OTEL_EXPORTER_OTLP_PROTOCOL=\"carrier-pigeon\""));
/// ```
pub fn from_vars(lookup: impl Fn(&str) -> Option<String>) -> Result<Exporters, EnvError> {
    let var = |name: &str| lookup(name).map(|v| v.trim().to_string()).filter(|v| !v.is_empty());
    if var("OTEL_SDK_DISABLED").is_some_and(|v| v.eq_ignore_ascii_case("true")) {
        return Ok(Exporters::default());
    }
    sampler(&var)?;
    let base = var("OTEL_EXPORTER_OTLP_ENDPOINT");
    let mut configs = Vec::new();
    for signal in ["TRACES", "METRICS", "LOGS"] {
        let exporter_var = format!("OTEL_{signal}_EXPORTER");
        match var(&exporter_var).as_deref() {
            None | Some("otlp") => {}
            Some("none") => continue,
            Some(other) => return Err(invalid(&exporter_var, other, "use otlp or none")),
        }
        let own = format!("OTEL_EXPORTER_OTLP_{signal}_ENDPOINT");
        let protocol = var(&format!("OTEL_EXPORTER_OTLP_{signal}_PROTOCOL"))
            .or_else(|| var("OTEL_EXPORTER_OTLP_PROTOCOL"));
        let (url, from) = match (var(&own), &base) {
            (Some(url), _) => (url, own),
            // gRPC has one address for every signal; the method names the signal.
            (None, Some(base)) if protocol.as_deref() == Some("grpc") => {
                (base.clone(), "OTEL_EXPORTER_OTLP_ENDPOINT".into())
            }
            (None, Some(base)) => {
                let path = format!("/v1/{}", signal.to_ascii_lowercase());
                (
                    format!("{}{path}", base.trim_end_matches('/')),
                    "OTEL_EXPORTER_OTLP_ENDPOINT".into(),
                )
            }
            (None, None) => continue,
        };
        configs.push((signal, config(signal, &url, &from, &var)?));
    }
    // Started only once every variable is known to be good.
    let mut out = Exporters::default();
    for (signal, config) in configs {
        let started = Some(config.start());
        match signal {
            "TRACES" => out.traces = started,
            "METRICS" => out.metrics = started,
            _ => out.logs = started,
        }
    }
    Ok(out)
}

fn invalid(variable: &str, value: &str, reason: &str) -> EnvError {
    EnvError::Invalid {
        variable: variable.to_string(),
        value: value.to_string(),
        reason: reason.to_string(),
    }
}

/// One signal's exporter, configured from the variables.
fn config(
    signal: &str,
    url: &str,
    from: &str,
    var: &dyn Fn(&str) -> Option<String>,
) -> Result<ExportConfig, EnvError> {
    let export_err = |variable: &str, error| EnvError::Export { variable: variable.into(), error };
    let made = match signal {
        "TRACES" => ExportConfig::otlp(url),
        "METRICS" => ExportConfig::otlp_metrics(url),
        _ => logs_config(url, from)?,
    };
    let mut c = made.map_err(|e| export_err(from, e))?;
    // The signal's own variable first, then the general one.
    let pick = |suffix: &str| {
        let own = format!("OTEL_EXPORTER_OTLP_{signal}_{suffix}");
        let general = format!("OTEL_EXPORTER_OTLP_{suffix}");
        var(&own).map(|v| (own, v)).or_else(|| var(&general).map(|v| (general, v)))
    };
    if let Some((name, protocol)) = pick("PROTOCOL") {
        match protocol.as_str() {
            "http/protobuf" => {}
            "http/json" => c = c.json(),
            "grpc" => c = grpc(c, &name, &protocol)?,
            _ => return Err(invalid(&name, &protocol, "use grpc, http/protobuf or http/json")),
        }
    }
    if let Some((name, headers)) = pick("HEADERS") {
        for pair in headers.split(',').filter(|p| !p.trim().is_empty()) {
            let Some((k, v)) = pair.split_once('=') else {
                return Err(invalid(&name, &headers, "write key=value pairs separated by commas"));
            };
            let v = percent_decode(v.trim())
                .ok_or_else(|| invalid(&name, &headers, "a value has a bad %-escape"))?;
            c = c.header(k.trim(), &v).map_err(|e| export_err(&name, e))?;
        }
    }
    if let Some((name, ms)) = pick("TIMEOUT") {
        let ms: u64 = ms.parse().map_err(|_| invalid(&name, &ms, "write milliseconds"))?;
        c = c.timeout(Duration::from_millis(ms));
    }
    if let Some((name, path)) = pick("CERTIFICATE") {
        c = certificate(c, &name, &path)?;
    }
    if let Some(compression) = pick("COMPRESSION") {
        c = compressed(c, compression)?;
    }
    if let Some(name) = var("OTEL_SERVICE_NAME") {
        c = c.service_name(name);
    }
    if let Some(attrs) = var("OTEL_RESOURCE_ATTRIBUTES") {
        for pair in attrs.split(',').filter(|p| !p.trim().is_empty()) {
            let bad = || invalid("OTEL_RESOURCE_ATTRIBUTES", &attrs, "write key=value pairs");
            let (k, v) = pair.split_once('=').ok_or_else(bad)?;
            let v = percent_decode(v.trim()).ok_or_else(bad)?;
            if k.trim() == "service.name" && var("OTEL_SERVICE_NAME").is_none() {
                c = c.service_name(v);
            } else {
                c = c.resource_attribute(k.trim(), v);
            }
        }
    }
    if signal == "TRACES" {
        let number = |name: &str| -> Result<Option<u64>, EnvError> {
            var(name)
                .map(|v| v.parse().map_err(|_| invalid(name, &v, "write a whole number")))
                .transpose()
        };
        let size = number("OTEL_BSP_MAX_EXPORT_BATCH_SIZE")?;
        let delay = number("OTEL_BSP_SCHEDULE_DELAY")?;
        if size.is_some() || delay.is_some() {
            let size = usize::try_from(size.unwrap_or(512)).unwrap_or(usize::MAX);
            c = c.batch(size, Duration::from_millis(delay.unwrap_or(5000)));
        }
    }
    if signal == "METRICS" {
        let name = "OTEL_EXPORTER_OTLP_METRICS_TEMPORALITY_PREFERENCE";
        match var(name).map(|v| v.to_ascii_lowercase()).as_deref() {
            None | Some("cumulative") => {}
            Some("delta" | "lowmemory") => c = c.delta(),
            Some(other) => return Err(invalid(name, other, "use cumulative, delta or lowmemory")),
        }
        if let Some(ms) = var("OTEL_METRIC_EXPORT_INTERVAL") {
            let n: u64 = ms
                .parse()
                .map_err(|_| invalid("OTEL_METRIC_EXPORT_INTERVAL", &ms, "write milliseconds"))?;
            c = c.interval(Duration::from_millis(n));
        }
    }
    Ok(c)
}

/// `OTEL_EXPORTER_OTLP_CERTIFICATE`: a PEM file of certificates to trust.
#[cfg(feature = "tls")]
fn certificate(c: ExportConfig, name: &str, path: &str) -> Result<ExportConfig, EnvError> {
    let pem = std::fs::read(path)
        .map_err(|e| invalid(name, path, &format!("cannot read the file: {e}")))?;
    c.tls_root_certificates(&pem).map_err(|error| EnvError::Export { variable: name.into(), error })
}

#[cfg(not(feature = "tls"))]
fn certificate(_: ExportConfig, name: &str, path: &str) -> Result<ExportConfig, EnvError> {
    Err(invalid(name, path, "certificates need monitor-http's feature `tls`; enable it"))
}

#[cfg(feature = "grpc")]
#[allow(clippy::unnecessary_wraps)]
fn grpc(c: ExportConfig, _name: &str, _value: &str) -> Result<ExportConfig, EnvError> {
    Ok(c.grpc())
}

#[cfg(not(feature = "grpc"))]
fn grpc(_: ExportConfig, name: &str, value: &str) -> Result<ExportConfig, EnvError> {
    Err(invalid(
        name,
        value,
        "OTLP/gRPC needs monitor-http's feature `grpc`; enable it, or use http/protobuf (the \
         collector's port 4318)",
    ))
}

#[cfg(feature = "log")]
fn logs_config(url: &str, _from: &str) -> Result<Result<ExportConfig, ExportError>, EnvError> {
    Ok(ExportConfig::otlp_logs(url))
}

#[cfg(not(feature = "log"))]
fn logs_config(_url: &str, from: &str) -> Result<Result<ExportConfig, ExportError>, EnvError> {
    Err(invalid(
        "OTEL_LOGS_EXPORTER",
        "otlp",
        &format!(
            "{from} asks for logs, which need monitor-http's feature `log`; set \
             OTEL_LOGS_EXPORTER=none, or enable the feature"
        ),
    ))
}

/// `OTEL_EXPORTER_OTLP_COMPRESSION`: `none`, or `gzip`.
fn compressed(c: ExportConfig, (name, value): (String, String)) -> Result<ExportConfig, EnvError> {
    match value.as_str() {
        "none" => Ok(c),
        "gzip" => Ok(c.gzip()),
        _ => Err(invalid(&name, &value, "use gzip or none")),
    }
}

/// Applies `OTEL_TRACES_SAMPLER` (and its argument) to the monitor's sampling.
fn sampler(var: &dyn Fn(&str) -> Option<String>) -> Result<(), EnvError> {
    let Some(name) = var("OTEL_TRACES_SAMPLER") else { return Ok(()) };
    let ratio = || -> Result<f64, EnvError> {
        match var("OTEL_TRACES_SAMPLER_ARG") {
            None => Ok(1.0),
            Some(arg) => {
                arg.parse::<f64>().ok().filter(|r| (0.0..=1.0).contains(r)).ok_or_else(|| {
                    invalid("OTEL_TRACES_SAMPLER_ARG", &arg, "write a ratio from 0 to 1")
                })
            }
        }
    };
    // Parent-based or not, the monitor follows a remote parent's sampled flag.
    let r = match name.trim_start_matches("parentbased_") {
        "always_on" => 1.0,
        "always_off" => 0.0,
        "traceidratio" => ratio()?,
        _ => {
            return Err(invalid(
                "OTEL_TRACES_SAMPLER",
                &name,
                "use always_on, always_off, traceidratio or their parentbased_ forms",
            ))
        }
    };
    monitor_core::trace::set_sample_ratio(r)
        .map_err(|e| invalid("OTEL_TRACES_SAMPLER_ARG", &r.to_string(), &e.to_string()))
}

/// `%XX` escapes decoded (W3C baggage's octet encoding, which these variables use).
fn percent_decode(s: &str) -> Option<String> {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = s.get(i + 1..i + 3)?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vars(pairs: &'static [(&'static str, &'static str)]) -> impl Fn(&str) -> Option<String> {
        move |name| pairs.iter().find(|(k, _)| *k == name).map(|(_, v)| v.to_string())
    }

    #[test]
    fn nothing_set_is_no_exporter() {
        assert!(from_vars(vars(&[])).unwrap().is_empty());
        let off = &[("OTEL_SDK_DISABLED", "true"), ("OTEL_EXPORTER_OTLP_ENDPOINT", "http://h:1")];
        assert!(from_vars(vars(off)).unwrap().is_empty());
    }

    #[test]
    fn bad_values_name_their_variable() {
        let cases: &[(&[(&str, &str)], &str)] = &[
            (&[("OTEL_EXPORTER_OTLP_ENDPOINT", "h:4318")], "OTEL_EXPORTER_OTLP_ENDPOINT:"),
            (
                &[
                    ("OTEL_EXPORTER_OTLP_ENDPOINT", "http://h:1"),
                    ("OTEL_EXPORTER_OTLP_PROTOCOL", "http/xml"),
                ],
                "OTEL_EXPORTER_OTLP_PROTOCOL=\"http/xml\": use grpc, http/protobuf or http/json",
            ),
            (
                &[
                    ("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "http://h:1/t"),
                    ("OTEL_EXPORTER_OTLP_TIMEOUT", "soon"),
                ],
                "OTEL_EXPORTER_OTLP_TIMEOUT=\"soon\"",
            ),
            (
                &[
                    ("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "http://h:1/t"),
                    ("OTEL_EXPORTER_OTLP_HEADERS", "novalue"),
                ],
                "OTEL_EXPORTER_OTLP_HEADERS=\"novalue\"",
            ),
            (&[("OTEL_TRACES_SAMPLER", "sometimes")], "OTEL_TRACES_SAMPLER=\"sometimes\""),
            (
                &[
                    ("OTEL_EXPORTER_OTLP_METRICS_ENDPOINT", "http://h:1/m"),
                    ("OTEL_EXPORTER_OTLP_METRICS_TEMPORALITY_PREFERENCE", "sideways"),
                ],
                "OTEL_EXPORTER_OTLP_METRICS_TEMPORALITY_PREFERENCE=\"sideways\"",
            ),
            (
                &[("OTEL_TRACES_SAMPLER", "traceidratio"), ("OTEL_TRACES_SAMPLER_ARG", "2")],
                "OTEL_TRACES_SAMPLER_ARG=\"2\"",
            ),
            (
                &[
                    ("OTEL_EXPORTER_OTLP_METRICS_ENDPOINT", "http://h:1/m"),
                    ("OTEL_EXPORTER_OTLP_COMPRESSION", "zstd"),
                ],
                "OTEL_EXPORTER_OTLP_COMPRESSION=\"zstd\"",
            ),
        ];
        for (set, want) in cases {
            let set: Vec<(String, String)> =
                set.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
            let lookup = |name: &str| set.iter().find(|(k, _)| k == name).map(|(_, v)| v.clone());
            let err = from_vars(lookup).unwrap_err().to_string();
            assert!(err.starts_with(want), "{err} should start with {want}");
        }
    }

    #[test]
    fn percent_escapes() {
        assert_eq!(percent_decode("Bearer%20abc").as_deref(), Some("Bearer abc"));
        assert_eq!(percent_decode("a%2Cb").as_deref(), Some("a,b"));
        assert_eq!(percent_decode("bad%2"), None);
        assert_eq!(percent_decode("bad%zz"), None);
    }
}
