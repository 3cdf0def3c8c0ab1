//! The layers hold (docs/architecture.md): requests flow transport → server → tools → backend,
//! and imports follow the same direction only. A module may import from its own layer, the
//! layers below it and the foundation modules (config, error, files, …), never from a layer
//! above; the foundation imports from no layer; the backend never names rmcp; and the
//! crate's top-level modules import each other in no circle.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// The layers, lowest first; every other top-level module is foundation (rank 0).
const LAYERS: [&str; 5] = ["backend", "tools", "server", "transport", "command"];

fn rank(module: &str) -> usize {
    LAYERS.iter().position(|l| *l == module).map_or(0, |i| i + 1)
}

/// The crate's top-level modules a source text refers to: `crate::x` paths (also inside
/// `use crate::{x::…, y}` groups) and, in the crate root, `use x::…`. Comment lines are skipped.
fn referenced_modules(source: &str, is_root: bool) -> BTreeSet<String> {
    let mut found = BTreeSet::new();
    let code: Vec<&str> = source.lines().filter(|l| !l.trim_start().starts_with("//")).collect();
    let code = code.join("\n");
    let ident = |s: &str| s.chars().take_while(|c| c.is_ascii_alphanumeric() || *c == '_').collect::<String>();
    for (i, _) in code.match_indices("crate::") {
        let rest = &code[i + "crate::".len()..];
        if let Some(group) = rest.strip_prefix('{') {
            let inner = &group[..group.find('}').unwrap_or(group.len())];
            for item in inner.split(',') {
                let name = ident(item.trim());
                if !name.is_empty() {
                    found.insert(name);
                }
            }
        } else {
            let name = ident(rest);
            if !name.is_empty() {
                found.insert(name);
            }
        }
    }
    if is_root {
        for line in code.lines() {
            if let Some(rest) = line.trim().strip_prefix("use ") {
                let name = ident(rest);
                if !name.is_empty() && !["std", "crate", "super", "self"].contains(&name.as_str()) {
                    found.insert(name);
                }
            }
        }
    }
    found
}

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

/// Every file of `src/`: (its path under src, its top-level module, its text).
fn sources() -> Vec<(String, String, String)> {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    rust_files(&src, &mut files);
    files.sort();
    files
        .into_iter()
        .map(|path| {
            let rel = path.strip_prefix(&src).unwrap().to_string_lossy().into_owned();
            let first = rel.split('/').next().unwrap().trim_end_matches(".rs").to_string();
            let module = if first == "lib" || first == "main" { "(root)".to_string() } else { first };
            (rel, module, std::fs::read_to_string(&path).unwrap())
        })
        .collect()
}

/// Each import that goes up a layer, as `file: from → to`.
fn upward_imports(files: &[(String, String, String)]) -> Vec<String> {
    let mut problems = Vec::new();
    for (rel, module, text) in files {
        for target in referenced_modules(text, module == "(root)") {
            if target != *module && rank(&target) > rank(module) {
                problems.push(format!("{rel}: {module} imports {target}, a layer above it"));
            }
        }
    }
    problems
}

#[test]
fn imports_never_go_up_a_layer() {
    let problems = upward_imports(&sources());
    assert!(problems.is_empty(), "imports against the layers (docs/architecture.md):\n{}", problems.join("\n"));
}

#[test]
fn the_backend_knows_nothing_of_mcp() {
    for (rel, module, text) in sources() {
        if module == "backend" {
            let code: Vec<&str> = text.lines().filter(|l| !l.trim_start().starts_with("//")).collect();
            assert!(!code.join("\n").contains("rmcp"), "src/{rel} names rmcp; the backend must not know MCP");
        }
    }
}

#[test]
fn top_level_modules_import_each_other_in_no_circle() {
    let mut graph: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for (_, module, text) in sources() {
        let targets = referenced_modules(&text, module == "(root)");
        graph.entry(module.clone()).or_default().extend(targets.into_iter().filter(|t| *t != module));
    }
    // Depth-first search; a node met again while still on the path closes a circle.
    fn visit(
        node: &str,
        graph: &BTreeMap<String, BTreeSet<String>>,
        path: &mut Vec<String>,
        done: &mut BTreeSet<String>,
    ) -> Option<Vec<String>> {
        if let Some(i) = path.iter().position(|n| n == node) {
            let mut circle = path[i..].to_vec();
            circle.push(node.to_string());
            return Some(circle);
        }
        if !done.insert(node.to_string()) {
            return None;
        }
        path.push(node.to_string());
        for next in graph.get(node).into_iter().flatten() {
            if let Some(circle) = visit(next, graph, path, done) {
                return Some(circle);
            }
        }
        path.pop();
        None
    }
    let mut done = BTreeSet::new();
    for node in graph.keys() {
        if let Some(circle) = visit(node, &graph, &mut Vec::new(), &mut done) {
            panic!("import circle between top-level modules: {}", circle.join(" → "));
        }
    }
}

/// The checks see what they must: a synthetic upward import is caught, a downward one is not.
#[test]
fn the_layer_check_catches_an_upward_import() {
    let file = |rel: &str, module: &str, text: &str| (rel.to_string(), module.to_string(), text.to_string());
    let bad = [
        file("backend/x.rs", "backend", "use crate::tools::ToolContext;\n"),
        file("tools/y.rs", "tools", "use crate::{backend::Backend, server::IvcapMcp};\n"),
        file("config/z.rs", "config", "fn f() { crate::backend::local::x(); }\n"),
    ];
    assert_eq!(upward_imports(&bad).len(), 3, "{:?}", upward_imports(&bad));
    let fine = [
        file("server/a.rs", "server", "use crate::tools::ToolContext;\n// crate::transport in a comment\n"),
        file("tools/b.rs", "tools", "use crate::{backend::Backend, error::Error};\n"),
    ];
    assert!(upward_imports(&fine).is_empty());
}
