//! The server's modules import each other without a circle (issue 16): a
//! module's `crate::x` paths (outside its tests) name the modules it
//! depends on; items of the crate root (`crate::AppState`, `crate::wall_ms`)
//! are everyone's and count for none. Read from the sources as text.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

/// Top-level module → the files that make it (`x.rs` and `x/**.rs`).
fn modules(src: &Path) -> BTreeMap<String, Vec<std::path::PathBuf>> {
    let mut out: BTreeMap<String, Vec<std::path::PathBuf>> = BTreeMap::new();
    let mut stack = vec![src.to_path_buf()];
    while let Some(dir) = stack.pop() {
        for e in std::fs::read_dir(&dir).expect("read src").flatten() {
            let p = e.path();
            if p.is_dir() {
                stack.push(p);
                continue;
            }
            if p.extension().is_none_or(|x| x != "rs") {
                continue;
            }
            let rel = p.strip_prefix(src).expect("under src");
            let top = rel.components().next().expect("a component");
            let name = top
                .as_os_str()
                .to_string_lossy()
                .trim_end_matches(".rs")
                .to_string();
            if name != "lib" && name != "main" {
                out.entry(name).or_default().push(p);
            }
        }
    }
    out
}

/// Module → modules it names through `crate::`.
fn imports(src: &Path) -> BTreeMap<String, BTreeSet<String>> {
    let mods = modules(src);
    let mut edges = BTreeMap::new();
    for (m, files) in &mods {
        let mut to = BTreeSet::new();
        for f in files {
            let text = std::fs::read_to_string(f).expect("read");
            let code = text.split("#[cfg(test)]").next().unwrap_or("");
            for line in code.lines() {
                let line = line.split("//").next().unwrap_or("");
                let mut rest = line;
                while let Some(i) = rest.find("crate::") {
                    rest = &rest[i + 7..];
                    let names: Vec<&str> = if let Some(group) = rest.strip_prefix('{') {
                        group
                            .split('}')
                            .next()
                            .unwrap_or("")
                            .split(',')
                            .map(|n| n.trim().split("::").next().unwrap_or(""))
                            .collect()
                    } else {
                        vec![
                            rest.split(|c: char| !(c.is_alphanumeric() || c == '_'))
                                .next()
                                .unwrap_or(""),
                        ]
                    };
                    for n in names {
                        if n != m && mods.contains_key(n) {
                            to.insert(n.to_string());
                        }
                    }
                }
            }
        }
        edges.insert(m.clone(), to);
    }
    edges
}

/// A circle through `from`, if there is one (depth-first).
fn circle(edges: &BTreeMap<String, BTreeSet<String>>) -> Option<Vec<String>> {
    fn walk(
        at: &str,
        edges: &BTreeMap<String, BTreeSet<String>>,
        path: &mut Vec<String>,
        done: &mut BTreeSet<String>,
    ) -> Option<Vec<String>> {
        if let Some(i) = path.iter().position(|p| p == at) {
            let mut c = path[i..].to_vec();
            c.push(at.to_string());
            return Some(c);
        }
        if done.contains(at) {
            return None;
        }
        path.push(at.to_string());
        for next in edges.get(at).into_iter().flatten() {
            if let Some(c) = walk(next, edges, path, done) {
                return Some(c);
            }
        }
        path.pop();
        done.insert(at.to_string());
        None
    }
    let mut done = BTreeSet::new();
    for m in edges.keys() {
        if let Some(c) = walk(m, edges, &mut Vec::new(), &mut done) {
            return Some(c);
        }
    }
    None
}

#[test]
fn the_server_modules_import_each_other_without_a_circle() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let edges = imports(&src);
    // The reader sees what it must: the engine uses the clock gate.
    assert!(edges["engine"].contains("clock"), "{edges:?}");
    assert_eq!(circle(&edges), None, "{edges:?}");
    // The forecast task follows the engine's ticks without importing it.
    assert!(!edges["forecast"].contains("engine"), "{edges:?}");
}

#[test]
fn a_circle_is_found() {
    let e = |pairs: &[(&str, &str)]| {
        let mut m: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
        for (a, b) in pairs {
            m.entry(a.to_string()).or_default().insert(b.to_string());
            m.entry(b.to_string()).or_default();
        }
        m
    };
    assert_eq!(
        circle(&e(&[
            ("config", "forecast"),
            ("forecast", "engine"),
            ("engine", "config")
        ])),
        Some(vec![
            "config".into(),
            "forecast".into(),
            "engine".into(),
            "config".into()
        ])
    );
    assert_eq!(circle(&e(&[("a", "b"), ("b", "c"), ("a", "c")])), None);
}
