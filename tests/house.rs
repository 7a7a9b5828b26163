//! The shape of the library, read from its own source: every module imports only from
//! floors below it, the front ends never import each other, and no function grows past
//! what a reader can hold.

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::path::{Path, PathBuf};

/// The floors, lowest first. A module may import from a lower floor only (and anything
/// inside itself); the front ends, on the top floor, import none of each other.
const FLOORS: &[&[&str]] = &[
    // Vocabulary, no I/O.
    &["naming", "retention"],
    &["schedule"],
    &["timing"],
    // Operating-system primitives: what may be trusted, files opened without following
    // links and the descriptors passed on; then the home's files; then the home.
    &["trust"],
    &["descriptors", "nofollow"],
    &[
        "atomic_file",
        "edit_lock",
        "interrupt",
        "logging",
        "pause",
        "pidfile",
        "write_back",
        "xattrs",
    ],
    &["home"],
    &["running", "state", "schedule_file"],
    &["metrics"],
    // Formats and matchers.
    &["encryption", "tar"],
    &["excludes", "incremental", "index"],
    // The archive engine.
    &["archive"],
    // The backups folder.
    &["generations"],
    // Processes and hooks; then one backup as a unit.
    &["browse", "hooks", "process"],
    &["job"],
    // The backups as a file system.
    &["mount"],
    // Front ends.
    &["manager", "manual", "service", "status", "unit"],
];

/// How many lines a function may have, from its `fn` to its closing brace.
const MAX_FUNCTION_LINES: usize = 80;

fn src() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("src")
}

/// Every `.rs` file under `dir`, sorted.
fn sources(dir: &Path) -> Vec<PathBuf> {
    let mut found = Vec::new();
    let mut todo = vec![dir.to_path_buf()];
    while let Some(dir) = todo.pop() {
        for entry in fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                todo.push(path);
            } else if path.extension().is_some_and(|e| e == "rs") {
                found.push(path);
            }
        }
    }
    found.sort();
    found
}

/// A file's module path: `src/archive/walk/list.rs` is `archive::walk::list`.
fn module_of(path: &Path) -> Vec<String> {
    let rel = path.strip_prefix(src()).unwrap().with_extension("");
    let mut parts: Vec<String> = rel
        .iter()
        .map(|p| p.to_string_lossy().into_owned())
        .collect();
    if matches!(parts.last().map(String::as_str), Some("mod" | "lib")) {
        parts.pop();
    }
    parts
}

/// The source with comments, strings and character literals blanked out (newlines
/// kept), so that braces and paths are only those of the code.
fn code_only(text: &str) -> String {
    let b = text.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    let blank = |out: &mut Vec<u8>, from: &[u8]| {
        out.extend(from.iter().map(|&c| if c == b'\n' { b'\n' } else { b' ' }))
    };
    while i < b.len() {
        let rest = &b[i..];
        let after_word = i > 0 && (b[i - 1].is_ascii_alphanumeric() || b[i - 1] == b'_');
        let end = if rest.starts_with(b"//") {
            rest.iter().position(|&c| c == b'\n').unwrap_or(rest.len())
        } else if rest.starts_with(b"/*") {
            rest.windows(2)
                .position(|w| w == b"*/")
                .map_or(rest.len(), |p| p + 2)
        } else if !after_word && (rest.starts_with(b"r#") || rest.starts_with(b"r\"")) {
            let hashes = rest[1..].iter().take_while(|&&c| c == b'#').count();
            let mut close = vec![b'"'];
            close.extend(std::iter::repeat_n(b'#', hashes));
            let open = 2 + hashes;
            rest[open..]
                .windows(close.len())
                .position(|w| w == close.as_slice())
                .map_or(rest.len(), |p| open + p + close.len())
        } else if rest[0] == b'"' {
            let mut j = 1;
            while j < rest.len() && rest[j] != b'"' {
                j += if rest[j] == b'\\' { 2 } else { 1 };
            }
            j + 1
        } else if rest[0] == b'\'' {
            // A character literal ('x', '\n', '\u{..}'), not a lifetime.
            let close = if rest.get(1) == Some(&b'\\') {
                rest[2..].iter().position(|&c| c == b'\'').map(|p| p + 3)
            } else {
                (rest.get(2) == Some(&b'\'')).then_some(3)
            };
            match close {
                Some(n) => n,
                None => {
                    out.push(b'\'');
                    i += 1;
                    continue;
                }
            }
        } else {
            out.push(rest[0]);
            i += 1;
            continue;
        };
        blank(&mut out, &rest[..end.min(rest.len())]);
        i += end;
    }
    String::from_utf8(out).unwrap()
}

/// The part of a file before its unit tests, which may reach anywhere.
fn without_tests(code: &str) -> &str {
    match code.find("#[cfg(test)]\nmod tests") {
        Some(at) => &code[..at],
        None => code,
    }
}

/// The modules (cut at `depth` parts) that `module`'s code names through `crate::` and
/// `super::` paths.
fn imports(module: &[String], code: &str, depth: usize) -> BTreeSet<String> {
    let cut = |parts: &[String]| parts[..parts.len().min(depth)].join("::");
    let mut found = BTreeSet::new();
    for (prefix, base) in [
        ("crate::", Vec::new()),
        ("super::", module[..module.len().saturating_sub(1)].to_vec()),
    ] {
        for (at, _) in code.match_indices(prefix) {
            let before = code[..at].chars().next_back();
            if before.is_some_and(|c| c.is_alphanumeric() || c == '_' || c == ':') {
                continue;
            }
            let path: Vec<String> = code[at + prefix.len()..]
                .split("::")
                .map(|p| {
                    p.chars()
                        .take_while(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || *c == '_')
                        .collect::<String>()
                })
                .take_while(|p| !p.is_empty())
                .collect();
            let mut target = base.clone();
            target.extend(path);
            if !target.is_empty() {
                found.insert(cut(&target));
            }
        }
    }
    found.remove(&cut(module));
    found
}

/// The import graph between modules, `depth` parts deep, of the library (not the binaries).
fn graph(depth: usize) -> BTreeMap<String, BTreeSet<String>> {
    let mut graph: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for path in sources(&src()) {
        if path.starts_with(src().join("bin")) {
            continue;
        }
        let module = module_of(&path);
        let code = code_only(&fs::read_to_string(&path).unwrap());
        let from = module[..module.len().min(depth)].join("::");
        graph
            .entry(from)
            .or_default()
            .extend(imports(&module, without_tests(&code), depth));
    }
    graph
}

fn floor_of(module: &str) -> Option<usize> {
    let top = module.split("::").next().unwrap();
    FLOORS.iter().position(|floor| floor.contains(&top))
}

#[test]
fn every_module_has_a_floor_and_imports_only_from_floors_below() {
    let mut wrong = Vec::new();
    for (from, targets) in graph(1) {
        if from.is_empty() {
            continue; // lib.rs declares the modules
        }
        let Some(floor) = floor_of(&from) else {
            wrong.push(format!("{from} is on no floor: add it to FLOORS"));
            continue;
        };
        for to in targets {
            match floor_of(&to) {
                Some(below) if below < floor => {}
                _ => wrong.push(format!(
                    "{from} imports {to}, which is not on a floor below it"
                )),
            }
        }
    }
    assert!(wrong.is_empty(), "\n{}\n", wrong.join("\n"));
}

#[test]
fn no_two_modules_import_each_other_even_inside_one_module() {
    let graph = graph(2);
    // Modules on a cycle are those that reach themselves.
    let mut cycles = Vec::new();
    for start in graph.keys() {
        let mut seen = BTreeSet::new();
        let mut todo: Vec<&String> = graph[start].iter().collect();
        while let Some(next) = todo.pop() {
            if next == start {
                cycles.push(start.clone());
                break;
            }
            if seen.insert(next) {
                todo.extend(graph.get(next).into_iter().flatten());
            }
        }
    }
    assert!(cycles.is_empty(), "modules on an import cycle: {cycles:?}");
}

/// Every function of `code` longer than `max` lines, as (first line, lines).
fn long_functions(code: &str, max: usize) -> Vec<(usize, usize)> {
    let lines: Vec<&str> = code.lines().collect();
    let mut long = Vec::new();
    for (start, line) in lines.iter().enumerate() {
        let words: Vec<&str> = line.split_whitespace().collect();
        let Some(fn_at) = words.iter().position(|w| *w == "fn") else {
            continue;
        };
        let qualifiers = [
            "pub",
            "pub(crate)",
            "pub(super)",
            "const",
            "unsafe",
            "async",
        ];
        if !words[..fn_at]
            .iter()
            .all(|w| qualifiers.contains(w) || w.starts_with("extern") || w.starts_with('"'))
        {
            continue;
        }
        let mut depth = 0usize;
        let mut opened = false;
        'body: for (i, line) in lines[start..].iter().enumerate() {
            for c in line.chars() {
                match c {
                    '{' => {
                        depth += 1;
                        opened = true;
                    }
                    '}' => {
                        depth -= 1;
                        if opened && depth == 0 {
                            if i + 1 > max {
                                long.push((start + 1, i + 1));
                            }
                            break 'body;
                        }
                    }
                    ';' if !opened && depth == 0 => break 'body,
                    _ => {}
                }
            }
        }
    }
    long
}

#[test]
fn no_function_is_longer_than_a_reader_can_hold() {
    let mut long = Vec::new();
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let files = sources(&src())
        .into_iter()
        .chain(sources(&root.join("tests")));
    for path in files {
        let code = code_only(&fs::read_to_string(&path).unwrap());
        for (line, count) in long_functions(&code, MAX_FUNCTION_LINES) {
            let shown = path.strip_prefix(root).unwrap().display();
            long.push(format!("{shown}:{line}: {count} lines"));
        }
    }
    assert!(
        long.is_empty(),
        "functions over {MAX_FUNCTION_LINES} lines:\n{}\n",
        long.join("\n")
    );
}

#[test]
fn the_checks_see_what_they_look_for() {
    // A cycle, a long function and comments and strings that hold braces and paths.
    let code = code_only("fn a() { let s = \"}{ crate::x\"; // } crate::y\n let c = '{'; }\n");
    assert!(!code.contains("crate::"), "{code}");
    assert_eq!(long_functions(&code, 1), [(1, 2)]);
    assert!(long_functions(&code, 2).is_empty());
    let module = vec!["archive".to_owned(), "walk".to_owned()];
    let found = imports(&module, "use super::sink; use crate::tar::Header;", 2);
    assert_eq!(
        found.into_iter().collect::<Vec<_>>(),
        ["archive::sink", "tar"]
    );
    assert!(floor_of("archive::walk") > floor_of("tar"));
    assert_eq!(floor_of("nowhere"), None);
}
