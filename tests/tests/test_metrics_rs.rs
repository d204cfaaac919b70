//! The `metrics` facade through the monitor: a library module that counts with
//! `metrics::counter!`, `gauge!` and `histogram!` (and describes them), the monitor's recorder
//! installed as the process's, and the values read back over HTTP from the monitor's own
//! server in `/stats/json`, `/metrics` (checked with promtool) and `/debug/vars`.
//!
//! Ports: the monitor listens on a free loopback port. One test in this binary: the recorder
//! is the process's global one.

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
