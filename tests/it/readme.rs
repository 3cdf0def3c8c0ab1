//! The README's tool table is the server's tool list: every tool the server offers has one
//! row with its toolset and its read-only mark, and every row names a tool the server offers.

use std::collections::BTreeMap;
use std::sync::Arc;

use ivcap_mcp::backend::local::LocalBackend;
use ivcap_mcp::server::{IvcapMcp, ServerOptions};

/// `tool → (toolset, read-only)` from the rows of the README's feature table
/// (`| toolset | \`tool\` | yes/no | … |`).
fn readme_tools() -> BTreeMap<String, (String, bool)> {
    let readme = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/README.md")).unwrap();
    let table = readme.split("| Toolset | Tool | Read-only | What it does |").nth(1).expect("the tool table header");
    let mut rows = BTreeMap::new();
    for line in table.lines().skip(2).take_while(|l| l.starts_with('|')) {
        let cells: Vec<&str> = line.split('|').map(str::trim).collect();
        let (toolset, tool, read_only) = (cells[1], cells[2].trim_matches('`'), cells[3]);
        assert!(matches!(read_only, "yes" | "no"), "read-only mark of {tool}: '{read_only}' (write yes or no)");
        let previous = rows.insert(tool.to_string(), (toolset.to_string(), read_only == "yes"));
        assert!(previous.is_none(), "{tool} has two rows in the README");
    }
    rows
}

/// The same map from the server: one server per toolset, so each tool's toolset is known.
fn server_tools() -> BTreeMap<String, (String, bool)> {
    let dir = tempfile::tempdir().unwrap();
    let backend: Arc<dyn ivcap_mcp::backend::Backend> = Arc::new(LocalBackend::new(dir.path()).unwrap());
    let mut tools = BTreeMap::new();
    for toolset in IvcapMcp::toolset_names() {
        let options = ServerOptions { toolsets: Some(vec![toolset.to_string()]), ..ServerOptions::default() };
        for tool in IvcapMcp::new(backend.clone(), &options).unwrap().tools() {
            let read_only = tool.annotations.as_ref().and_then(|a| a.read_only_hint) == Some(true);
            tools.insert(tool.name.to_string(), (toolset.to_string(), read_only));
        }
    }
    tools
}

#[test]
fn the_readme_tool_table_matches_the_tool_list() {
    let (readme, server) = (readme_tools(), server_tools());
    for (tool, (toolset, read_only)) in &server {
        let row = readme.get(tool).unwrap_or_else(|| panic!("{tool} ({toolset}) has no row in the README tool table"));
        assert_eq!(row, &(toolset.clone(), *read_only), "README row of {tool}: (toolset, read-only)");
    }
    for tool in readme.keys() {
        assert!(server.contains_key(tool), "the README lists {tool}, which the server does not offer");
    }
}

/// GitHub's anchor for a heading: lower case, punctuation dropped, spaces as `-`.
fn anchor(heading: &str) -> String {
    heading
        .trim()
        .to_lowercase()
        .chars()
        .filter(|c| c.is_alphanumeric() || matches!(c, ' ' | '-' | '_'))
        .map(|c| if c == ' ' { '-' } else { c })
        .collect()
}

/// The anchors of a Markdown file's headings (outside code blocks).
fn anchors(text: &str) -> Vec<String> {
    let mut in_code = false;
    let mut found = Vec::new();
    for line in text.lines() {
        if line.trim_start().starts_with("```") {
            in_code = !in_code;
        } else if !in_code && line.starts_with('#') {
            found.push(anchor(line.trim_start_matches('#')));
        }
    }
    found
}

#[test]
fn every_relative_link_in_the_readme_and_docs_resolves() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut files = vec![root.join("README.md"), root.join("AGENTS.md")];
    for entry in std::fs::read_dir(root.join("docs")).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_some_and(|e| e == "md") {
            files.push(path);
        }
    }
    let mut checked = 0;
    for file in &files {
        let text = std::fs::read_to_string(file).unwrap();
        for link in text.split("](").skip(1).filter_map(|rest| rest.split(')').next()) {
            if link.starts_with("http://") || link.starts_with("https://") {
                continue;
            }
            let (path, fragment) = link.split_once('#').unwrap_or((link, ""));
            let target = if path.is_empty() { file.clone() } else { file.parent().unwrap().join(path) };
            assert!(
                target.exists(),
                "{}: the link ({link}) points to {}, which does not exist",
                file.display(),
                target.display()
            );
            assert!(
                target.canonicalize().unwrap().starts_with(root.canonicalize().unwrap()),
                "{}: ({link}) points outside the repository; cite the repository's own files",
                file.display()
            );
            if !fragment.is_empty() {
                let heads = anchors(&std::fs::read_to_string(&target).unwrap());
                assert!(
                    heads.iter().any(|h| h == fragment),
                    "{}: ({link}): no heading #{fragment} in {}",
                    file.display(),
                    target.display()
                );
            }
            checked += 1;
        }
    }
    assert!(checked >= 20, "only {checked} relative links found: is the link syntax still `](…)`?");
}
