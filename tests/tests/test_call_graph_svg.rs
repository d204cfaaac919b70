//! `/funcs/svg`: the call graph the monitor lays out itself. Checked as XML, in headless
//! Chromium (nodes and edges in the DOM, a picture), by following a node's link to its
//! function's page, and collapsed by module past 200 functions.

mod common;

use monitor_core::{monitored, registry, Outcome, Span};

#[monitored(name = "graphsvg::leaf")]
fn leaf(i: u32) -> Result<u32, std::fmt::Error> {
    if i % 5 == 0 {
        Err(std::fmt::Error)
    } else {
        Ok(i)
    }
}

#[monitored(name = "graphsvg::walk")]
fn walk(depth: u32) -> u32 {
    // Recursion: an edge from the function to itself.
    if depth > 0 {
        walk(depth - 1) + leaf(depth).unwrap_or(0)
    } else {
        0
    }
}

#[monitored(name = "graphsvg::handle")]
fn handle(i: u32) -> u32 {
    walk(3) + leaf(i).unwrap_or(0)
}

#[test]
fn the_graph_is_laid_out_linked_and_drawn() {
    for i in 0..10 {
        handle(i);
    }
    let server = monitor_http::serve("127.0.0.1:0").unwrap();
    let addr = server.local_addr();
    let reply = common::get(addr, "/funcs/svg?filter=graphsvg%3A%3A");
    assert_eq!(reply.status, 200);
    assert!(reply.header("content-type").starts_with("image/svg+xml"));
    let doc = roxmltree::Document::parse(&reply.body).unwrap();
    let class =
        |c: &str| doc.descendants().filter(|n| n.attribute("class") == Some(c)).collect::<Vec<_>>();
    // entry and the three functions; edges entry→handle, handle→walk, walk→walk, walk→leaf,
    // handle→leaf.
    assert_eq!(class("node").len(), 4, "{}", reply.body);
    assert_eq!(class("edge").len(), 5, "{}", reply.body);
    // Entry on the left, callees to the right of their first caller.
    let x_of = |name: &str| {
        let node = class("node")
            .into_iter()
            .find(|n| n.descendants().any(|t| t.text() == Some(name)))
            .unwrap_or_else(|| panic!("no node {name}"));
        let rect = node.descendants().find(|n| n.has_tag_name("rect")).unwrap();
        rect.attribute("x").unwrap().parse::<f64>().unwrap()
    };
    assert!(x_of("entry") < x_of("graphsvg::handle"));
    assert!(x_of("graphsvg::handle") < x_of("graphsvg::walk"));
    assert!(x_of("graphsvg::walk") < x_of("graphsvg::leaf"));
    // A node is a link to its function's page.
    let href = doc
        .descendants()
        .filter(|n| n.has_tag_name("a"))
        .filter_map(|n| n.attribute("href"))
        .find(|h| h.ends_with("graphsvg%3A%3Awalk"))
        .expect("walk links to its page");
    let page = common::get(addr, &format!("/{href}"));
    assert_eq!(page.status, 200);
    assert!(page.body.contains("<h1>graphsvg::walk</h1>"));
    // The index embeds it.
    assert!(common::get(addr, "/").body.contains("data=\"funcs/svg\""));

    let url = format!("http://{addr}/funcs/svg?filter=graphsvg%3A%3A");
    let dom = common::chromium(&["--dump-dom"], &url);
    let png = common::screenshot(&url, 1200, 500);
    server.shutdown();
    let (Some(dom), Some(png)) = (dom, png) else { return };
    let dom = String::from_utf8_lossy(&dom.stdout);
    assert_eq!(dom.matches("class=\"node\"").count(), 4, "{dom}");
    assert!(dom.matches("class=\"edge\"").count() == 5);
    assert!(png.starts_with(b"\x89PNG") && png.len() > 5_000, "a real picture of the graph");
}

#[test]
fn past_two_hundred_functions_one_node_per_module() {
    // 250 run-time sites, each called under one root: 251 functions.
    let root = registry().site("bulkgraph root", None).unwrap();
    let call = root.open_call(Span::none());
    for i in 0..250 {
        let site = registry().site(&format!("bulkgraph f{i}"), None).unwrap();
        site.open_call(call.span()).finish(Outcome::Success);
    }
    call.finish(Outcome::Success);
    let snap = {
        let mut s = registry().snapshot();
        s.functions.retain(|f| f.name.starts_with("bulkgraph"));
        s
    };
    let mut out = String::new();
    monitor_http::write_graph_svg(&snap, &mut out);
    let doc = roxmltree::Document::parse(&out).unwrap();
    let nodes = doc.descendants().filter(|n| n.attribute("class") == Some("node")).count();
    assert!(out.contains("251 functions called, shown by module"), "{out}");
    assert!(nodes < 10, "{nodes} nodes");
    // With a higher limit, every function is drawn.
    out.clear();
    monitor_http::write_graph_svg_limited(&snap, 1000, &mut out);
    let doc = roxmltree::Document::parse(&out).unwrap();
    let nodes = doc.descendants().filter(|n| n.attribute("class") == Some("node")).count();
    assert_eq!(nodes, 252);
}
