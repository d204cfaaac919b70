//! The index page in a real browser: headless Chromium loads it from the server and the
//! function table is there, with the numbers of known calls.
//!
//! Ports: the server listens on a free loopback port; Chromium loads it (skipped outside CI when
//! Chromium is missing).

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
