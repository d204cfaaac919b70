//! The index page in a real browser: headless Chromium loads it from the server and the
//! function table is there, with the numbers of known calls; and while traffic runs, the page
//! refreshes its numbers in place.
//!
//! Ports: the server listens on a free loopback port; Chromium loads it (skipped outside CI when
//! Chromium is missing).
//!
//! Wall clock: Chromium runs the page's refresh timer in virtual time (`--virtual-time-budget`)
//! while a thread keeps calling a function; the test checks that the count shown grew from the
//! one the page came with, not by how much.

mod common;

use monitor_core::monitored;

#[monitored(category = "render")]
fn shown(i: u32) -> Result<u32, std::fmt::Error> {
    if i % 4 == 0 {
        Err(std::fmt::Error)
    } else {
        Ok(i)
    }
}

#[test]
fn chromium_renders_the_function_table() {
    for i in 0..8 {
        let _ = shown(i);
    }
    let server = monitor_http::serve("127.0.0.1:0").unwrap();
    let url = format!("http://{}/", server.local_addr());
    let Some(out) = common::chromium(&["--dump-dom"], &url) else { return };
    assert!(out.status.success(), "chromium failed: {}", String::from_utf8_lossy(&out.stderr));
    // The DOM as the browser built it: the table parsed into rows and cells.
    let dom = String::from_utf8_lossy(&out.stdout);
    assert!(dom.contains("<title>monitor</title>"), "{dom}");
    let row = dom
        .split("<tr")
        .find(|r| r.contains(">test_browser::shown<"))
        .unwrap_or_else(|| panic!("no row for the function in:\n{dom}"));
    assert!(row.contains("<td class=\"name\">render</td>"), "{row}");
    assert!(
        row.contains("<td>6</td><td class=\"errors\" title=\"core::fmt::Error: 2\">2</td>"),
        "{row}"
    );

    let Some(png) = common::screenshot(&url, 1200, 600) else { return };
    assert!(png.starts_with(b"\x89PNG") && png.len() > 10_000, "a real picture of the page");
    server.shutdown();
}

#[monitored(name = "live_index::busy")]
fn busy(i: u64) -> u64 {
    i.wrapping_mul(31)
}

#[test]
fn the_index_refreshes_its_numbers_in_place() {
    busy(0);
    let server = monitor_http::serve("127.0.0.1:0").unwrap();
    let traffic = common::Calling::start(1, |i| {
        busy(i);
    });
    let url = format!("http://{}/", server.local_addr());
    let out = common::chromium(&["--dump-dom", "--virtual-time-budget=7000"], &url);
    drop(traffic);
    server.shutdown();
    let Some(out) = out else { return };
    let dom = String::from_utf8_lossy(&out.stdout);
    assert!(dom.contains("data-refreshed="), "the refresh never ran:\n{dom}");
    let row = dom
        .split("<tr")
        .find(|r| r.contains(">live_index::busy<"))
        .unwrap_or_else(|| panic!("no row for the function in:\n{dom}"));
    // The success cell (the fifth) changed: marked, the old count beside the new one.
    let cells: Vec<&str> = row.split("<td").skip(1).collect();
    let success = cells[4];
    let was = success.split("data-was=\"").nth(1).unwrap_or_else(|| panic!("unchanged: {row}"));
    let (was, now) = was.split_once("\">").unwrap();
    let was: u64 = was.parse().unwrap();
    let now: u64 = now.split('<').next().unwrap().parse().unwrap();
    assert!(success.contains("class=\"changed\""), "{success}");
    assert!(now > was, "the count did not move: {was} then {now}");
}
