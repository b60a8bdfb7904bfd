//! No import cycles: among the top-level modules of `trainer/src` (from `crate::` paths), nor
//! among the files of one module folder (from `super::` paths). Test modules and comments are
//! not imports. `cli/`, `main.rs` and `lib.rs` sit on top and are left out.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

type Graph = BTreeMap<String, BTreeSet<String>>;

/// The code of a file before its test module, without comment lines.
fn code_only(text: &str) -> String {
    let text = text.split("#[cfg(test)]").next().unwrap_or("");
    text.lines()
        .filter(|l| !l.trim_start().starts_with("//"))
        .collect::<Vec<_>>()
        .join("\n")
}

/// The identifiers following each `prefix` in `text` (`crate::x::y` → `x`).
fn names_after<'a>(text: &'a str, prefix: &'a str) -> impl Iterator<Item = String> + 'a {
    text.match_indices(prefix).map(move |(i, _)| {
        text[i + prefix.len()..]
            .chars()
            .take_while(|c| c.is_alphanumeric() || *c == '_')
            .collect()
    })
}

fn rs_files(dir: &Path, out: &mut Vec<std::path::PathBuf>) {
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p.is_dir() {
            rs_files(&p, out);
        } else if p.extension().is_some_and(|x| x == "rs") {
            out.push(p);
        }
    }
}

/// The module graph and the per-folder file graph of `src`.
fn graphs(src: &Path) -> (Graph, Graph) {
    let (mut modules, mut files) = (Graph::new(), Graph::new());
    let mut all = vec![];
    rs_files(src, &mut all);
    for f in all {
        let rel: Vec<String> = f
            .strip_prefix(src)
            .unwrap()
            .with_extension("")
            .iter()
            .map(|c| c.to_string_lossy().into_owned())
            .collect();
        if rel[0] == "cli" || rel[0] == "main" || rel[0] == "lib" {
            continue;
        }
        let text = code_only(&std::fs::read_to_string(&f).unwrap());
        let module = rel[0].clone();
        for m in names_after(&text, "crate::") {
            if m != module && !m.starts_with("__") {
                modules.entry(module.clone()).or_default().insert(m);
            }
        }
        if rel.len() == 2 && rel[1] != "mod" {
            for m in names_after(&text, "super::") {
                if src.join(&module).join(format!("{m}.rs")).exists() {
                    let from = format!("{module}/{}", rel[1]);
                    files.entry(from).or_default().insert(format!("{module}/{m}"));
                }
            }
        }
    }
    (modules, files)
}

fn reaches(g: &Graph, from: &str, to: &str) -> bool {
    let (mut seen, mut todo) = (BTreeSet::new(), vec![from.to_string()]);
    while let Some(n) = todo.pop() {
        for d in g.get(&n).into_iter().flatten() {
            if d == to {
                return true;
            }
            if seen.insert(d.clone()) {
                todo.push(d.clone());
            }
        }
    }
    false
}

fn cycles(g: &Graph) -> BTreeSet<(String, String)> {
    g.iter()
        .flat_map(|(a, ds)| ds.iter().map(move |b| (a, b)))
        .filter(|(a, b)| reaches(g, b, a))
        .map(|(a, b)| (a.clone().min(b.clone()), a.clone().max(b.clone())))
        .collect()
}

#[test]
fn no_import_cycles() {
    let (modules, files) = graphs(&entrl_tests::root().join("trainer/src"));
    assert!(modules.len() > 10 && files.len() > 20, "the scan found the sources");
    assert!(modules["train"].contains("plan") && modules["eval"].contains("plan"));
    let found: Vec<_> = cycles(&modules).into_iter().chain(cycles(&files)).collect();
    assert!(found.is_empty(), "import cycles: {found:?}\nmodules: {modules:#?}");
}

#[test]
fn a_planted_cycle_is_found() {
    let mut g = Graph::new();
    g.entry("a".into()).or_default().insert("b".into());
    g.entry("b".into()).or_default().insert("c".into());
    assert!(cycles(&g).is_empty());
    g.entry("c".into()).or_default().insert("a".into());
    assert_eq!(cycles(&g).len(), 3);
    let text = "use crate::model::x;\n// crate::plots in a comment\n#[cfg(test)]\nuse crate::train;";
    let names: Vec<String> = names_after(&code_only(text), "crate::").collect();
    assert_eq!(names, ["model"]);
}
