//! Unique users end to end: identities from request headers, counted in a sliding window,
//! shown in every view.
//!
//! Ports: the server listens on a free loopback port. The sliding window is 5 minutes, far longer
//! than the test; the window's own expiry is tested with a controlled clock (`observe_at`) in
//! `monitor-core`.

mod common;

use std::net::IpAddr;
use std::time::Duration;

use monitor_core::UniqueUsers;
use monitor_http::identity::UserIdentity;

#[test]
fn unique_users_from_requests_show_in_every_view() {
    // Wall clock: gauges are read within a time limit; a loaded machine must not make this
    // test's gauges stale, so it gets a long one.
    monitor_core::set_gauge_time_limit(std::time::Duration::from_secs(30));
    let users = UniqueUsers::new(Duration::from_secs(300));
    users.register("web_users_test").unwrap();
    let who = UserIdentity::new().header("x-user-id").unwrap().cookies(&["session"]);
    // 3,000 requests: 200 signed-in users (header), 300 visitors with a session cookie, and
    // 100 anonymous clients known by IP; each comes back several times.
    for round in 0..5 {
        for i in 0..600u32 {
            let mut h = http::HeaderMap::new();
            let peer: IpAddr = format!("10.0.{}.{}", i / 250, i % 250).parse().unwrap();
            match i {
                0..200 => {
                    h.insert("x-user-id", format!("user{i}").parse().unwrap());
                    // The header wins over a cookie.
                    h.insert("cookie", format!("session=s{round}").parse().unwrap());
                }
                200..500 => {
                    h.insert("cookie", format!("theme=x; session=s{i}").parse().unwrap());
                }
                _ => {}
            }
            users.observe(&who.identify(&h, Some(peer)).unwrap());
        }
    }
    let estimate = users.estimate();
    assert!(estimate.abs_diff(600) <= 12, "600 distinct users, estimated {estimate}");

    let server = monitor_http::serve("127.0.0.1:0").unwrap();
    let value = |line: &str| line.rsplit(' ').next().unwrap().parse::<f64>().unwrap();
    let stats = common::get(server.local_addr(), "/stats").body;
    let line = stats
        .lines()
        .find(|l| l.starts_with("unique_users,scope=web_users_test value "))
        .unwrap_or_else(|| panic!("{stats}"));
    assert_eq!(value(line), estimate as f64);
    let metrics = common::get(server.local_addr(), "/metrics").body;
    let line = metrics
        .lines()
        .find(|l| l.starts_with("unique_users{") && l.contains("web_users_test"))
        .unwrap_or_else(|| panic!("{metrics}"));
    assert_eq!(value(line), estimate as f64);
    common::check_with("promtool", &["check", "metrics"], &metrics);
}
