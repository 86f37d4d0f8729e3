//! The source layout keeps dependencies pointing one way (issue 19): no
//! import cycles between files, and no layer importing one above it. Reads
//! every `crate::` and `super::` path in `src/` outside `#[cfg(test)]`
//! code, so inline paths count as much as `use` lines.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

/// Module path of every source file (`ops::graph` for src/ops/graph.rs).
fn modules(dir: &Path, prefix: &[String], out: &mut BTreeMap<String, String>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        let name = path.file_stem().unwrap().to_string_lossy().to_string();
        if path.is_dir() {
            let mut next = prefix.to_vec();
            next.push(name);
            modules(&path, &next, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            let mut parts = prefix.to_vec();
            if name != "mod" && name != "lib" {
                parts.push(name);
            }
            let text = std::fs::read_to_string(&path).unwrap();
            // Unit tests may read anything; they are not part of the layering.
            let code = match text.find("#[cfg(test)]") {
                Some(at) => text[..at].to_string(),
                None => text,
            };
            // Comments name modules without depending on them.
            let code: String = code
                .lines()
                .map(|line| line.split("//").next().unwrap_or(""))
                .collect::<Vec<_>>()
                .join("\n");
            out.insert(parts.join("::"), code);
        }
    }
}

/// The modules `code` (of module `module`) refers to, as known modules.
fn dependencies(module: &str, code: &str, known: &BTreeSet<String>) -> BTreeSet<String> {
    let parent: Vec<&str> = {
        let mut parts: Vec<&str> = module.split("::").filter(|p| !p.is_empty()).collect();
        parts.pop();
        parts
    };
    let mut paths = Vec::new();
    for (root, resolved) in [("crate::", Vec::new()), ("super::", parent.clone())] {
        for (at, _) in code.match_indices(root) {
            let before = code[..at].chars().last();
            if before.is_some_and(|c| c.is_alphanumeric() || c == '_' || c == ':') {
                continue;
            }
            let rest = &code[at + root.len()..];
            let mut heads = Vec::new();
            if let Some(list) = rest.strip_prefix('{') {
                // `use super::{a, b::C}`: one path per item.
                let end = list.find('}').unwrap_or(list.len());
                heads.extend(list[..end].split(',').map(|s| s.trim().to_string()));
            } else {
                heads.push(rest.to_string());
            }
            for head in heads {
                let segments: Vec<String> = head
                    .split("::")
                    .map(|s| {
                        s.chars()
                            .take_while(|c| c.is_alphanumeric() || *c == '_')
                            .collect::<String>()
                    })
                    .take_while(|s| !s.is_empty())
                    .collect();
                let mut full: Vec<String> = resolved.iter().map(|s| s.to_string()).collect();
                full.extend(segments);
                paths.push(full);
            }
        }
    }
    let mut out = BTreeSet::new();
    for path in paths {
        // The longest prefix that is a module.
        for len in (1..=path.len()).rev() {
            let candidate = path[..len].join("::");
            if known.contains(&candidate) {
                if candidate != module {
                    out.insert(candidate);
                }
                break;
            }
        }
    }
    out
}

fn graph() -> BTreeMap<String, BTreeSet<String>> {
    let mut sources = BTreeMap::new();
    modules(
        &Path::new(env!("CARGO_MANIFEST_DIR")).join("src"),
        &[],
        &mut sources,
    );
    let known: BTreeSet<String> = sources.keys().cloned().collect();
    sources
        .iter()
        .map(|(module, code)| (module.clone(), dependencies(module, code, &known)))
        .collect()
}

#[test]
fn no_file_imports_one_that_imports_it_back() {
    let graph = graph();
    assert!(graph.len() > 40, "found only {} modules", graph.len());
    // Depth-first search for a back edge; a parent module (mod.rs) may be
    // used by its children, so a child's edge to an ancestor does not count
    // from the ancestor's side when the ancestor only declares it.
    fn visit(
        node: &str,
        graph: &BTreeMap<String, BTreeSet<String>>,
        stack: &mut Vec<String>,
        done: &mut BTreeSet<String>,
    ) -> Option<Vec<String>> {
        if let Some(at) = stack.iter().position(|n| n == node) {
            let mut cycle = stack[at..].to_vec();
            cycle.push(node.to_string());
            return Some(cycle);
        }
        if done.contains(node) {
            return None;
        }
        stack.push(node.to_string());
        for next in graph.get(node).into_iter().flatten() {
            if let Some(cycle) = visit(next, graph, stack, done) {
                return Some(cycle);
            }
        }
        stack.pop();
        done.insert(node.to_string());
        None
    }
    let mut done = BTreeSet::new();
    for module in graph.keys() {
        if let Some(cycle) = visit(module, &graph, &mut Vec::new(), &mut done) {
            panic!("import cycle: {}", cycle.join(" -> "));
        }
    }
}

#[test]
fn layers_import_only_downwards() {
    // Each layer may import only the layers listed after it.
    let order = [
        "wasm", "engine", "plan", "sql", "ops", "state", "codec", "time",
    ];
    let layer = |module: &str| {
        let top = module.split("::").next().unwrap_or("");
        order.iter().position(|l| *l == top)
    };
    for (module, deps) in graph() {
        let Some(here) = layer(&module) else { continue };
        for dep in deps {
            if let Some(there) = layer(&dep) {
                assert!(
                    there >= here,
                    "{module} (layer {}) imports {dep} (layer {}), which is above it",
                    order[here],
                    order[there]
                );
            }
        }
    }
}
