//! The top-level modules depend on each other one way: the core (config, provider, router,
//! cache, metrics, store, …) knows nothing of the front ends (tui, serve, cli, monitor,
//! startup) nor of what they share (the `/llmux/events` protocol, the widgets); a front end
//! imports another only where [`FRONT_END_IMPORTS`] says so (monitor reads serve's feed
//! through `protocol` and draws the TUI's panes from `widgets`, never their internals); and
//! no two modules import each other, directly or around a loop. Read from the `crate::…`
//! paths in src/, so a new edge fails here before it sets.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// The front ends: clients of the core, never imported by it.
const FRONT_ENDS: &[&str] = &["cli", "monitor", "serve", "startup", "tui"];

/// What front ends share without importing each other: the wire types of serve's event feed
/// (written by serve, read by monitor) and the panes both the TUI and monitor draw. The core
/// imports neither.
const SHARED_BY_FRONT_ENDS: &[&str] = &["protocol", "widgets"];

/// The only imports from one front end into another: `cli` dispatches to each, and the
/// long-running ones load the config and build the router through `startup`.
const FRONT_END_IMPORTS: &[(&str, &str)] = &[
    ("cli", "monitor"),
    ("cli", "serve"),
    ("cli", "startup"),
    ("cli", "tui"),
    ("serve", "startup"),
    ("tui", "startup"),
];

/// Cycles still to pay back (issue 20: the router should publish to its sink and the request
/// log subscribe). A cycle that goes away must leave this list, so it cannot come back.
const KNOWN_CYCLES: &[&[&str]] = &[];

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// Top-level module → the top-level modules its files name as `crate::module`.
fn import_graph() -> BTreeMap<String, BTreeSet<String>> {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    rust_files(&src, &mut files);
    let module_of = |path: &Path| -> Option<String> {
        let first = path.strip_prefix(&src).ok()?.components().next()?;
        let name = first.as_os_str().to_str()?.trim_end_matches(".rs");
        (name != "lib" && name != "main").then(|| name.to_string())
    };
    let modules: BTreeSet<String> = files.iter().filter_map(|f| module_of(f)).collect();
    let mut graph: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for file in &files {
        let Some(from) = module_of(file) else {
            continue;
        };
        let text = std::fs::read_to_string(file).unwrap();
        let edges = graph.entry(from.clone()).or_default();
        for (at, _) in text.match_indices("crate::") {
            let name: String = text[at + "crate::".len()..]
                .chars()
                .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                .collect();
            if name != from && modules.contains(&name) {
                edges.insert(name);
            }
        }
    }
    graph
}

/// Each group of modules that reach each other (Tarjan's strongly connected components),
/// sorted, keeping only groups of two or more.
fn cycles(graph: &BTreeMap<String, BTreeSet<String>>) -> Vec<Vec<String>> {
    struct Search<'g> {
        graph: &'g BTreeMap<String, BTreeSet<String>>,
        index: BTreeMap<&'g str, usize>,
        low: BTreeMap<&'g str, usize>,
        stack: Vec<&'g str>,
        found: Vec<Vec<String>>,
    }
    fn visit<'g>(s: &mut Search<'g>, node: &'g str) {
        let n = s.index.len();
        s.index.insert(node, n);
        s.low.insert(node, n);
        s.stack.push(node);
        for next in s.graph.get(node).into_iter().flatten() {
            let next = next.as_str();
            if !s.index.contains_key(next) {
                visit(s, next);
                let low = s.low[node].min(s.low[next]);
                s.low.insert(node, low);
            } else if s.stack.contains(&next) {
                let low = s.low[node].min(s.index[next]);
                s.low.insert(node, low);
            }
        }
        if s.low[node] == s.index[node] {
            let mut group = Vec::new();
            while let Some(top) = s.stack.pop() {
                group.push(top.to_string());
                if top == node {
                    break;
                }
            }
            if group.len() > 1 {
                group.sort();
                s.found.push(group);
            }
        }
    }
    let mut search = Search {
        graph,
        index: BTreeMap::new(),
        low: BTreeMap::new(),
        stack: Vec::new(),
        found: Vec::new(),
    };
    for node in graph.keys() {
        if !search.index.contains_key(node.as_str()) {
            visit(&mut search, node);
        }
    }
    search.found.sort();
    search.found
}

/// `from → to` for each import of `graph` where `from` is one of `importers` and `to` one of
/// `imported`, except the `allowed` ones.
fn edges_between(
    graph: &BTreeMap<String, BTreeSet<String>>,
    importers: impl Fn(&str) -> bool,
    imported: impl Fn(&str) -> bool,
    allowed: &[(&str, &str)],
) -> Vec<String> {
    graph
        .iter()
        .filter(|(module, _)| importers(module))
        .flat_map(|(module, uses)| {
            uses.iter()
                .filter(|u| imported(u) && !allowed.contains(&(module.as_str(), u.as_str())))
                .map(move |u| format!("{module} → {u}"))
        })
        .collect()
}

fn is_front_end(module: &str) -> bool {
    FRONT_ENDS.contains(&module)
}

fn is_core(module: &str) -> bool {
    !is_front_end(module) && !SHARED_BY_FRONT_ENDS.contains(&module)
}

/// Imports from one front end into another that [`FRONT_END_IMPORTS`] does not allow.
fn front_ends_importing_each_other(graph: &BTreeMap<String, BTreeSet<String>>) -> Vec<String> {
    edges_between(graph, is_front_end, is_front_end, FRONT_END_IMPORTS)
}

#[test]
fn the_core_imports_no_front_end() {
    let graph = import_graph();
    assert!(graph.len() > 8, "only {} modules found", graph.len());
    for shared in SHARED_BY_FRONT_ENDS {
        assert!(graph.contains_key(*shared), "no src/{shared}");
    }
    let wrong = edges_between(&graph, |m| !is_front_end(m), is_front_end, &[]);
    assert!(wrong.is_empty(), "the core imports a front end: {wrong:?}");
    let wrong = edges_between(&graph, is_core, |m| SHARED_BY_FRONT_ENDS.contains(&m), &[]);
    assert!(
        wrong.is_empty(),
        "the core imports what only front ends share: {wrong:?}"
    );
}

#[test]
fn front_ends_import_each_other_only_where_allowed() {
    let wrong = front_ends_importing_each_other(&import_graph());
    assert!(
        wrong.is_empty(),
        "a front end imports another's internals: {wrong:?} (share them through \
         {SHARED_BY_FRONT_ENDS:?} instead)"
    );
}

#[test]
fn monitor_importing_the_tui_or_serve_is_caught() {
    let mut graph = import_graph();
    for front_end in ["serve", "tui"] {
        graph
            .entry("monitor".to_string())
            .or_default()
            .insert(front_end.to_string());
    }
    assert_eq!(
        front_ends_importing_each_other(&graph),
        ["monitor → serve", "monitor → tui"]
    );
}

#[test]
fn no_two_top_level_modules_import_each_other() {
    let found = cycles(&import_graph());
    let known: Vec<Vec<String>> = KNOWN_CYCLES
        .iter()
        .map(|c| c.iter().map(|m| m.to_string()).collect())
        .collect();
    let new: Vec<_> = found.iter().filter(|c| !known.contains(c)).collect();
    assert!(new.is_empty(), "modules that import each other: {new:?}");
    let gone: Vec<_> = known.iter().filter(|c| !found.contains(c)).collect();
    assert!(
        gone.is_empty(),
        "{gone:?} no longer import each other: take them off KNOWN_CYCLES"
    );
}

#[test]
fn the_cycle_finder_finds_loops_of_any_length() {
    let graph: BTreeMap<String, BTreeSet<String>> = [
        ("a", &["b"][..]),
        ("b", &["c"]),
        ("c", &["a"]),
        ("d", &["a", "e"]),
        ("e", &["d"]),
        ("f", &[]),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v.iter().map(|s| s.to_string()).collect()))
    .collect();
    assert_eq!(cycles(&graph), [vec!["a", "b", "c"], vec!["d", "e"]]);
}
