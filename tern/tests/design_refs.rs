//! References from code and docs to the design notes resolve: nothing points to a folder
//! outside the repository, every `design/NAME.md` cited exists in `docs/design/`,
//! and every label cited next to it (`simulation.md D1`, `gossip.md` 2b, `T4`, tests
//! 20 and 23) is defined there.

use std::path::{Path, PathBuf};

/// The workspace root.
fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("tern/ has a parent")
        .to_owned()
}

/// Every source, doc and manifest file of the repository (not build output).
fn files(dir: &Path, out: &mut Vec<PathBuf>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    let mut entries: Vec<_> = entries.filter_map(Result::ok).map(|e| e.path()).collect();
    entries.sort();
    for path in entries {
        let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("");
        if path.is_dir() {
            if !["target", ".git", "corpus", "artifacts"].contains(&name) {
                files(&path, out);
            }
        } else if [".rs", ".md", ".toml"].iter().any(|e| name.ends_with(e)) || name == "run" {
            out.push(path);
        }
    }
}

/// The labels a design note defines: `**D1**`-style bold labels, `Test 20`, and
/// table rows `| T4 |`, plus its `## 2b.`-style section numbers.
fn defines(note: &str, label: &str) -> bool {
    note.contains(&format!("**{label}**"))
        || note.contains(&format!("| {label} |"))
        || note.contains(&format!("**Test {label},"))
        || note.contains(&format!("## {label}."))
}

#[test]
fn design_references_resolve_inside_the_repository() {
    let root = root();
    let mut all = Vec::new();
    files(&root, &mut all);
    assert!(all.len() > 50, "found only {} files", all.len());
    let mut problems = Vec::new();
    let mut checked = 0;
    for path in &all {
        let Ok(text) = std::fs::read_to_string(path) else {
            continue;
        };
        let shown = path
            .strip_prefix(&root)
            .unwrap_or(path)
            .display()
            .to_string();
        if text.contains(&["..", "/shared"].concat()) {
            problems.push(format!("{shown}: points outside the repository"));
        }
        if shown.starts_with("docs/design/") || shown == "tern/tests/design_refs.rs" {
            continue;
        }
        for (at, _) in text.match_indices("design/") {
            let rest = &text[at + "design/".len()..];
            let Some(name) = rest
                .split(".md")
                .next()
                .filter(|n| !n.is_empty() && n.chars().all(|c| c.is_ascii_lowercase() || c == '_'))
            else {
                continue;
            };
            let note_path = root.join("docs/design").join(format!("{name}.md"));
            let Ok(note) = std::fs::read_to_string(&note_path) else {
                problems.push(format!(
                    "{shown}: cites design/{name}.md, which is not in docs/design/"
                ));
                continue;
            };
            // The labels cited right after it, up to the end of the sentence.
            let tail: String = rest[name.len() + 3..]
                .chars()
                .take_while(|c| !matches!(c, ')' | ':' | ';' | '\n'))
                .collect();
            for word in tail.split(|c: char| c.is_whitespace() || c == ',' || c == '`') {
                let label = word.trim_start_matches('§');
                let is_label = label.len() >= 2
                    && label.len() <= 3
                    && label
                        .chars()
                        .next()
                        .is_some_and(|c| c.is_ascii_alphanumeric())
                    && label.chars().any(|c| c.is_ascii_digit())
                    && label.chars().all(|c| c.is_ascii_alphanumeric());
                if is_label {
                    checked += 1;
                    if !defines(&note, label) {
                        problems.push(format!(
                            "{shown}: cites design/{name}.md {label}, not defined there"
                        ));
                    }
                }
            }
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
    assert!(checked >= 20, "only {checked} labels checked");
}
