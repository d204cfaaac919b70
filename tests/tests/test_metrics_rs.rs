//! The `metrics` facade through the monitor: a library module that counts with
//! `metrics::counter!`, `gauge!` and `histogram!` (and describes them), the monitor's recorder
//! installed as the process's, and the values read back over HTTP from the monitor's own
//! server in `/stats/json`, `/metrics` (checked with promtool) and `/debug/vars`.
//!
//! Also: the monitor's recorder beside another (metrics-util's debugging recorder) in a fanout.
//!
//! Ports: the monitor listens on a free loopback port. The first test installs the process's
//! global recorder; the fanout test uses a recorder local to its thread, and names of its own.

mod common;

use serde_json::Value;

/// A library that knows nothing of the monitor.
mod mailer {
    pub fn describe() {
        metrics::describe_counter!("mails_sent_total", "Mails handed to the relay.");
        metrics::describe_histogram!(
            "mail_send_seconds",
            metrics::Unit::Seconds,
            "Time to hand a mail over."
        );
    }

    pub fn send(queue: &'static str, seconds: f64) {
        metrics::counter!("mails_sent_total", "queue" => queue).increment(1);
        metrics::histogram!("mail_send_seconds").record(seconds);
    }

    pub fn backlog(n: f64) {
        metrics::gauge!("mail_backlog").set(n);
    }
}

#[test]
fn metrics_facade_values_show_in_every_view() {
    monitor_core::recorder::MonitorRecorder::new().install().unwrap();
    mailer::describe();
    for i in 0..7 {
        mailer::send(if i < 5 { "bulk" } else { "urgent" }, f64::from(i) / 10.0);
    }
    mailer::backlog(12.0);
    mailer::backlog(3.0);

    let server = monitor_http::serve("127.0.0.1:0").unwrap();
    let addr = server.local_addr();

    let r = common::get(addr, "/stats/json");
    assert_eq!(r.status, 200);
    let rows: Value = serde_json::from_str(&r.body).unwrap();
    let rows = rows.as_array().unwrap();
    let value = |name: &str, queue: Option<&str>, field: &str| {
        rows.iter()
            .find(|r| {
                r[0] == name
                    && r[1]["scope"] == "test_metrics_rs::mailer"
                    && queue.is_none_or(|q| r[1]["queue"] == q)
                    && r[2] == field
            })
            .unwrap_or_else(|| panic!("{name} {queue:?} {field} not in /stats/json: {rows:#?}"))[3]
            .clone()
    };
    assert_eq!(value("mails_sent", Some("bulk"), "total"), 5);
    assert_eq!(value("mails_sent", Some("urgent"), "total"), 2);
    assert_eq!(value("mail_backlog", None, "value"), 3.0);
    assert_eq!(value("mail_send_seconds", None, "count"), 7);
    assert_eq!(value("mail_send_seconds", None, "max"), 0.6);

    let r = common::get(addr, "/metrics");
    assert_eq!(r.status, 200);
    let prom = &r.body;
    assert!(prom.contains("# HELP mails_sent_total Mails handed to the relay.\n"), "{prom}");
    assert!(prom.contains("# TYPE mails_sent_total counter\n"), "{prom}");
    assert!(
        prom.contains("mails_sent_total{queue=\"bulk\",scope=\"test_metrics_rs::mailer\"} 5\n"),
        "{prom}"
    );
    assert!(prom.contains("# HELP mail_send_seconds Time to hand a mail over. [seconds]\n"));
    assert!(prom.contains("mail_backlog{scope=\"test_metrics_rs::mailer\"} 3\n"), "{prom}");
    common::check_with("promtool", &["check", "metrics"], prom);

    let r = common::get(addr, "/debug/vars");
    let vars: Value = serde_json::from_str(&r.body).unwrap();
    let key = "mails_sent,queue=urgent,scope=test_metrics_rs::mailer";
    assert_eq!(vars[key]["total"], 2, "{}", r.body);
}

/// Beside another recorder, through metrics-util's fanout (a team that keeps the exporter it
/// runs): both receive every value, and the monitor's are exact.
#[test]
fn beside_another_recorder_in_a_fanout() {
    use metrics_util::debugging::{DebugValue, DebuggingRecorder};

    let other = DebuggingRecorder::new();
    let snapshotter = other.snapshotter();
    let fanout = metrics_util::layers::FanoutBuilder::default()
        .add_recorder(monitor_core::recorder::MonitorRecorder::new())
        .add_recorder(other)
        .build();
    metrics::with_local_recorder(&fanout, || {
        for i in 0..9u32 {
            metrics::counter!("fanout_jobs_total", "queue" => "a").increment(u64::from(i % 2) + 1);
            metrics::histogram!("fanout_job_seconds").record(f64::from(i));
        }
        metrics::gauge!("fanout_depth").set(4.0);
    });

    let theirs = snapshotter.snapshot().into_vec();
    let find = |name: &str| {
        theirs
            .iter()
            .find(|(k, ..)| k.key().name() == name)
            .map(|(.., v)| v)
            .unwrap_or_else(|| panic!("{name} not seen by the other recorder"))
    };
    assert_eq!(find("fanout_jobs_total"), &DebugValue::Counter(13));
    assert!(matches!(find("fanout_job_seconds"), DebugValue::Histogram(v) if v.len() == 9));

    let snap = monitor_core::registry().snapshot();
    let ours = |name: &str| {
        snap.metrics
            .iter()
            .find(|m| m.name == name && m.scope == "test_metrics_rs")
            .unwrap_or_else(|| panic!("{name} not in the snapshot"))
            .value
            .clone()
    };
    match ours("fanout_jobs") {
        monitor_core::MetricValue::Meter { total, .. } => assert_eq!(total, 13),
        other => panic!("{other:?}"),
    }
    match ours("fanout_job_seconds") {
        monitor_core::MetricValue::FloatVal(v) => assert_eq!((v.count, v.max), (9, 8.0)),
        other => panic!("{other:?}"),
    }
    assert_eq!(ours("fanout_depth"), monitor_core::MetricValue::Gauge(4.0));
}
