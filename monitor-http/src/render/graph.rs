//! `/funcs/svg`: the call graph laid out by the monitor itself, no Graphviz needed. A layered
//! (Sugiyama-style) layout: cycles broken by a depth-first search, each function in the layer
//! of its longest call path from `entry` (entry on the left), the order within each layer
//! improved by barycentre sweeps, edges drawn as curves whose width grows with the calls. Each
//! node is a link to the function's page and is coloured by its error ratio; its border
//! thickens with its calls.
//!
//! Past [`MAX_NODES`] functions the graph collapses them by module: one node per module, its
//! counts summed, edges between modules. `?filter=` narrows the functions first.

use std::collections::HashMap;
use std::fmt::Write;

use monitor_core::{Caller, FunctionStats, Snapshot};

use super::html::percent;
use super::util::{html, Nanos};

/// The most nodes drawn one per function; more are collapsed by module.
pub(crate) const MAX_NODES: usize = 200;

const NODE_W: f64 = 262.0;
const NODE_H: f64 = 44.0;
const COL: f64 = 320.0;
const ROW: f64 = 60.0;
const MARGIN: f64 = 20.0;
/// The most characters of a name a node shows (the whole name is in its tooltip).
const SHOWN: usize = 36;
/// Barycentre sweeps (down and up make two).
const SWEEPS: usize = 8;

/// One node: a function, a module, or `entry`.
struct Node {
    label: String,
    /// The page it links to, if any (a function's).
    link: Option<String>,
    calls: u64,
    failures: u64,
    p99_ns: u64,
}

/// The graph to lay out: nodes, then edges `(from, to, calls)` (node 0 is `entry`).
struct Graph {
    nodes: Vec<Node>,
    edges: Vec<(usize, usize, u64)>,
}

fn entry() -> Node {
    Node { label: "entry".into(), link: None, calls: 0, failures: 0, p99_ns: 0 }
}

/// One node per called function.
fn by_function(called: &[&FunctionStats]) -> Graph {
    let index: HashMap<usize, usize> =
        called.iter().enumerate().map(|(i, f)| (f.id, i + 1)).collect();
    let mut nodes = vec![entry()];
    let mut edges = Vec::new();
    for (i, f) in called.iter().enumerate() {
        nodes.push(Node {
            label: f.name.to_string(),
            link: Some(format!("function?name={}", percent(f.name))),
            calls: f.calls(),
            failures: f.failures(),
            p99_ns: f.success_times.quantile(0.99),
        });
        for c in &f.callers {
            let from = match c.caller {
                Caller::Entry => Some(0),
                Caller::Function { id, .. } => index.get(&id).copied(),
                _ => None,
            };
            if let Some(from) = from {
                edges.push((from, i + 1, c.count));
            }
        }
    }
    Graph { nodes, edges }
}

/// One node per module of the called functions.
fn by_module(called: &[&FunctionStats]) -> Graph {
    let mut module_of: HashMap<usize, usize> = HashMap::new();
    let mut modules: HashMap<&str, usize> = HashMap::new();
    let mut nodes = vec![entry()];
    for f in called {
        let next = nodes.len();
        let m = *modules.entry(f.module).or_insert(next);
        if m == next {
            nodes.push(Node {
                label: format!("{} (module)", f.module),
                link: None,
                calls: 0,
                failures: 0,
                p99_ns: 0,
            });
        }
        let n = &mut nodes[m];
        n.calls += f.calls();
        n.failures += f.failures();
        n.p99_ns = n.p99_ns.max(f.success_times.quantile(0.99));
        module_of.insert(f.id, m);
    }
    let mut summed: HashMap<(usize, usize), u64> = HashMap::new();
    for f in called {
        let to = module_of[&f.id];
        for c in &f.callers {
            let from = match c.caller {
                Caller::Entry => Some(0),
                Caller::Function { id, .. } => module_of.get(&id).copied(),
                _ => None,
            };
            if let Some(from) = from.filter(|&from| from != to) {
                *summed.entry((from, to)).or_default() += c.count;
            }
        }
    }
    let mut edges: Vec<(usize, usize, u64)> =
        summed.into_iter().map(|((a, b), n)| (a, b, n)).collect();
    edges.sort_unstable();
    Graph { nodes, edges }
}

/// Which edges go back (close a cycle): found by a depth-first search from `entry`, then from
/// every node not reached. Iterative, so a long call chain cannot overflow the stack.
fn back_edges(n: usize, out: &[Vec<(usize, usize)>]) -> Vec<bool> {
    let edges: usize = out.iter().map(Vec::len).sum();
    let mut back = vec![false; edges];
    // 0 unvisited, 1 on the stack, 2 done.
    let mut state = vec![0u8; n];
    for start in 0..n {
        if state[start] != 0 {
            continue;
        }
        let mut stack = vec![(start, 0usize)];
        state[start] = 1;
        while let Some(&mut (v, ref mut next)) = stack.last_mut() {
            if let Some(&(w, e)) = out[v].get(*next) {
                *next += 1;
                match state[w] {
                    0 => {
                        state[w] = 1;
                        stack.push((w, 0));
                    }
                    1 => back[e] = true,
                    _ => {}
                }
            } else {
                state[v] = 2;
                stack.pop();
            }
        }
    }
    back
}

/// Positions: each node's (layer, row), and the number of layers and of rows in the largest.
struct Layout {
    layer: Vec<usize>,
    row: Vec<usize>,
    layers: usize,
    rows: usize,
}

fn layout(g: &Graph) -> Layout {
    let n = g.nodes.len();
    let mut out: Vec<Vec<(usize, usize)>> = vec![Vec::new(); n];
    for (e, &(a, b, _)) in g.edges.iter().enumerate() {
        out[a].push((b, e));
    }
    let back = back_edges(n, &out);
    // Longest path over the forward edges, in topological order (Kahn).
    let forward: Vec<(usize, usize)> = g
        .edges
        .iter()
        .enumerate()
        .filter(|&(e, &(a, b, _))| !back[e] && a != b)
        .map(|(_, &(a, b, _))| (a, b))
        .collect();
    let mut indegree = vec![0usize; n];
    let mut succ: Vec<Vec<usize>> = vec![Vec::new(); n];
    let mut pred: Vec<Vec<usize>> = vec![Vec::new(); n];
    for &(a, b) in &forward {
        indegree[b] += 1;
        succ[a].push(b);
        pred[b].push(a);
    }
    let mut layer = vec![0usize; n];
    let mut queue: Vec<usize> = (0..n).filter(|&v| indegree[v] == 0).collect();
    while let Some(v) = queue.pop() {
        for &w in &succ[v] {
            layer[w] = layer[w].max(layer[v] + 1);
            indegree[w] -= 1;
            if indegree[w] == 0 {
                queue.push(w);
            }
        }
    }
    // Functions nobody calls (a filter left their callers out) start beside entry's callees.
    for v in 1..n {
        if pred[v].is_empty() && layer[v] == 0 {
            layer[v] = 1;
        }
    }
    let layers = layer.iter().copied().max().unwrap_or(0) + 1;
    let mut by_layer: Vec<Vec<usize>> = vec![Vec::new(); layers];
    for v in 0..n {
        by_layer[layer[v]].push(v);
    }
    let mut row = vec![0usize; n];
    let place = |by_layer: &[Vec<usize>], row: &mut [usize]| {
        for l in by_layer {
            for (i, &v) in l.iter().enumerate() {
                row[v] = i;
            }
        }
    };
    place(&by_layer, &mut row);
    // Barycentre sweeps: each node moves to the mean row of its neighbours in the layers
    // already placed (callers going right, callees going left).
    for sweep in 0..SWEEPS {
        let down = sweep % 2 == 0;
        let order: Vec<usize> = if down {
            (1..layers).collect()
        } else {
            (0..layers.saturating_sub(1)).rev().collect()
        };
        for l in order {
            let mut keyed: Vec<(f64, usize)> = by_layer[l]
                .iter()
                .map(|&v| {
                    let near = if down { &pred[v] } else { &succ[v] };
                    let key = if near.is_empty() {
                        row[v] as f64
                    } else {
                        near.iter().map(|&u| row[u] as f64).sum::<f64>() / near.len() as f64
                    };
                    (key, v)
                })
                .collect();
            keyed.sort_by(|a, b| a.0.total_cmp(&b.0).then(a.1.cmp(&b.1)));
            by_layer[l] = keyed.into_iter().map(|(_, v)| v).collect();
            for (i, &v) in by_layer[l].iter().enumerate() {
                row[v] = i;
            }
        }
    }
    let rows = by_layer.iter().map(Vec::len).max().unwrap_or(1);
    // Centre each layer on the tallest.
    for l in &by_layer {
        let offset = (rows - l.len()) / 2;
        for &v in l {
            row[v] += offset;
        }
    }
    Layout { layer, row, layers, rows }
}

/// `name` in at most [`SHOWN`] characters, the whole in the tooltip: a path keeps its end (the
/// function; the crate and module are what goes), other names (SQL, routes) their start.
fn cut(name: &str) -> String {
    let chars = name.chars().count();
    if chars <= SHOWN {
        return name.to_string();
    }
    if name.contains("::") {
        let tail: String = name.chars().skip(chars - (SHOWN - 1)).collect();
        format!("…{tail}")
    } else {
        let head: String = name.chars().take(SHOWN - 1).collect();
        format!("{head}…")
    }
}

/// `/funcs/svg`: the call graph as an SVG the monitor lays out itself (see the module docs).
///
/// ```
/// let mut out = String::new();
/// monitor_http::write_graph_svg(&monitor_core::registry().snapshot(), &mut out);
/// assert!(out.starts_with("<svg"));
/// ```
pub fn write_graph_svg(snapshot: &Snapshot, out: &mut String) {
    write_graph_svg_limited(snapshot, MAX_NODES, out);
}

/// [`write_graph_svg`] with another limit: past `max_nodes` called functions, one node per
/// module.
///
/// ```
/// let mut out = String::new();
/// monitor_http::write_graph_svg_limited(&monitor_core::registry().snapshot(), 1000, &mut out);
/// assert!(out.ends_with("</svg>\n"));
/// ```
pub fn write_graph_svg_limited(snapshot: &Snapshot, max_nodes: usize, out: &mut String) {
    let called: Vec<&FunctionStats> = snapshot.iter_called().collect();
    let collapsed = called.len() > max_nodes;
    let g = if collapsed { by_module(&called) } else { by_function(&called) };
    let l = layout(&g);
    let width = MARGIN * 2.0 + (l.layers - 1) as f64 * COL + NODE_W;
    let height = MARGIN * 2.0 + (l.rows.max(1) - 1) as f64 * ROW + NODE_H + 16.0;
    let pos = |v: usize| (MARGIN + l.layer[v] as f64 * COL, MARGIN + 16.0 + l.row[v] as f64 * ROW);
    let _ = write!(
        out,
        "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{width:.0}\" height=\"{height:.0}\" \
         viewBox=\"0 0 {width:.0} {height:.0}\" font-family=\"ui-monospace,monospace\" font-size=\"11\">\
         <text x=\"{MARGIN}\" y=\"14\" fill=\"#666\">{} functions called{}; width of an edge: calls, \
         colour of a node: error ratio</text>",
        called.len(),
        if collapsed { ", shown by module" } else { "" }
    );
    let max_edge = g.edges.iter().map(|e| e.2).max().unwrap_or(1).max(1) as f64;
    out.push_str("<g class=\"edges\" fill=\"none\">");
    for &(a, b, n) in &g.edges {
        let (ax, ay) = pos(a);
        let (bx, by) = pos(b);
        let w = 1.0 + 5.0 * ((n as f64).ln_1p() / max_edge.ln_1p());
        let (x1, y1) = (ax + NODE_W, ay + NODE_H / 2.0);
        let (x2, y2) = (bx, by + NODE_H / 2.0);
        let path = if x2 > x1 {
            let mid = (x1 + x2) / 2.0;
            format!("M{x1:.1},{y1:.1} C{mid:.1},{y1:.1} {mid:.1},{y2:.1} {x2:.1},{y2:.1}")
        } else {
            // Back to the same or an earlier layer (recursion, a cycle): a loop below.
            let (bx1, bx2) = (x1 + 30.0, x2 - 30.0);
            let low = y1.max(y2) + NODE_H;
            format!("M{x1:.1},{y1:.1} C{bx1:.1},{low:.1} {bx2:.1},{low:.1} {x2:.1},{y2:.1}")
        };
        let _ = write!(
            out,
            "<path class=\"edge\" d=\"{path}\" stroke=\"#8a9bb5\" stroke-width=\"{w:.1}\"><title>"
        );
        html(&g.nodes[a].label, out);
        out.push_str(" → ");
        html(&g.nodes[b].label, out);
        let _ = write!(out, ": {n} calls</title></path>");
    }
    out.push_str("</g><g class=\"nodes\">");
    let max_calls = g.nodes.iter().map(|n| n.calls).max().unwrap_or(1).max(1) as f64;
    for (v, node) in g.nodes.iter().enumerate() {
        let (x, y) = pos(v);
        let ratio = if node.calls == 0 { 0.0 } else { node.failures as f64 / node.calls as f64 };
        // White to red with the error ratio (a tenth of calls failing is already deep).
        let heat = (ratio * 10.0).min(1.0);
        let (r, gr, b) = (255.0, 255.0 - 150.0 * heat, 255.0 - 170.0 * heat);
        let border = 1.0 + 3.0 * ((node.calls as f64).ln_1p() / max_calls.ln_1p());
        if let Some(link) = &node.link {
            // `_top`: from the index, where the graph is an embedded object, the page opens whole.
            out.push_str("<a target=\"_top\" href=\"");
            html(link, out);
            out.push_str("\">");
        }
        let _ = write!(out, "<g class=\"node\"><title>");
        html(&node.label, out);
        let _ = write!(
            out,
            "\n{} calls, {} failed ({:.2}%), p99 {}</title>\
             <rect x=\"{x:.1}\" y=\"{y:.1}\" width=\"{NODE_W}\" height=\"{NODE_H}\" rx=\"5\" \
             fill=\"rgb({r:.0},{gr:.0},{b:.0})\" stroke=\"#35517a\" stroke-width=\"{border:.1}\"/>\
             <text x=\"{:.1}\" y=\"{:.1}\">",
            node.calls,
            node.failures,
            100.0 * ratio,
            Nanos(u128::from(node.p99_ns)),
            x + 6.0,
            y + 17.0
        );
        html(&cut(&node.label), out);
        if v == 0 {
            out.push_str("</text>");
        } else {
            let _ = write!(
                out,
                "</text><text x=\"{:.1}\" y=\"{:.1}\" fill=\"#444\" font-size=\"10\">{} calls · {:.1}% failed · p99 {}</text>",
                x + 6.0,
                y + 34.0,
                node.calls,
                100.0 * ratio,
                Nanos(u128::from(node.p99_ns))
            );
        }
        out.push_str("</g>");
        if node.link.is_some() {
            out.push_str("</a>");
        }
    }
    out.push_str("</g></svg>\n");
}

#[cfg(test)]
mod tests {
    use super::*;

    fn node(label: &str) -> Node {
        Node { label: label.into(), link: None, calls: 1, failures: 0, p99_ns: 0 }
    }

    #[test]
    fn layers_follow_the_longest_call_path_and_survive_cycles() {
        // entry → a → b → c, entry → c, and c → a closing a cycle; d calls itself.
        let g = Graph {
            nodes: ["entry", "a", "b", "c", "d"].into_iter().map(node).collect(),
            edges: vec![
                (0, 1, 5),
                (1, 2, 5),
                (2, 3, 5),
                (0, 3, 1),
                (3, 1, 1),
                (0, 4, 1),
                (4, 4, 9),
            ],
        };
        let l = layout(&g);
        assert_eq!(&l.layer[..4], &[0, 1, 2, 3]);
        assert_eq!(l.layer[4], 1);
        // No two nodes share a place.
        let mut places: Vec<(usize, usize)> = (0..5).map(|v| (l.layer[v], l.row[v])).collect();
        places.sort_unstable();
        places.dedup();
        assert_eq!(places.len(), 5);
    }

    #[test]
    fn a_long_chain_does_not_overflow_the_stack() {
        let n = 100_000;
        let g = Graph {
            nodes: (0..n).map(|i| node(&i.to_string())).collect(),
            edges: (0..n - 1).map(|i| (i, i + 1, 1)).chain([(n - 1, 0, 1)]).collect(),
        };
        let l = layout(&g);
        assert_eq!(l.layers, n);
    }
}
