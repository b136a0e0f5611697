//! `docs/configuration.md` cannot go stale: every key the parser knows has a row with
//! its environment variable and its default, every row is a key the parser knows, and
//! every TOML example in it is accepted.

use std::collections::BTreeSet;
use std::path::Path;

use tern::app::config::{Layered, schema};

const DOC: &str = include_str!("../../docs/configuration.md");

/// The table's rows by key: `| `section.key` | type | default | environment | meaning |`.
fn rows() -> Vec<(String, Vec<String>)> {
    DOC.lines()
        .filter_map(|line| {
            let cells: Vec<String> = line
                .trim()
                .strip_prefix('|')?
                .strip_suffix('|')?
                .split('|')
                .map(|c| c.trim().to_owned())
                .collect();
            let key = cells.first()?.strip_prefix('`')?.strip_suffix('`')?;
            Some((key.to_owned(), cells.clone()))
        })
        .collect()
}

/// Every key of the schema, dotted (`peers.<name>` for the peers table).
fn schema_keys() -> BTreeSet<String> {
    schema()
        .lines()
        .filter_map(|l| l.split_once(':').map(|(k, _)| k.trim().to_owned()))
        .collect()
}

fn env_var(key: &str) -> String {
    let (section, key) = key.split_once('.').expect("a dotted key");
    format!("TERN_{}__{}", section.to_uppercase(), key.to_uppercase())
}

#[test]
fn every_key_of_the_parser_has_a_row_with_its_variable() {
    let rows = rows();
    let documented: BTreeSet<String> = rows.iter().map(|(k, _)| k.clone()).collect();
    let keys = schema_keys();
    assert!(keys.len() >= 20, "the schema lists only {keys:?}");
    for key in &keys {
        let (_, cells) = rows
            .iter()
            .find(|(k, _)| k == key)
            .unwrap_or_else(|| panic!("docs/configuration.md has no row for `{key}`"));
        assert_eq!(cells.len(), 5, "the row of {key} has {} cells", cells.len());
        let var = env_var(key);
        assert_eq!(
            cells[3],
            format!("`{var}`"),
            "environment variable of {key}"
        );
    }
    assert_eq!(
        documented, keys,
        "the rows of docs/configuration.md and the parser's keys differ"
    );
}

#[test]
fn every_default_in_the_doc_is_the_parser_default() {
    let rows = rows();
    let defaults = Layered::load(None, Vec::new()).unwrap().describe();
    let mut checked = 0;
    for line in defaults.lines() {
        let (key, rest) = line.split_once(" = ").unwrap();
        let value = rest.split("    #").next().unwrap().trim();
        let (_, cells) = rows
            .iter()
            .find(|(k, _)| k == key)
            .unwrap_or_else(|| panic!("no row for `{key}`"));
        assert!(
            cells[2].starts_with(&format!("`{value}`")),
            "docs/configuration.md gives `{key}` the default {:?}, the parser {value}",
            cells[2]
        );
        checked += 1;
    }
    assert!(checked >= 14, "only {checked} defaults checked");
    // And a key without a default in the parser says so in the doc.
    for (key, cells) in &rows {
        if !defaults
            .lines()
            .any(|l| l.starts_with(&format!("{key} = ")))
        {
            assert!(
                !cells[2].starts_with('`'),
                "`{key}` has no parser default but the doc gives {:?}",
                cells[2]
            );
        }
    }
}

#[test]
fn every_toml_example_in_the_doc_is_accepted() {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("config_doc");
    std::fs::create_dir_all(&dir).unwrap();
    let mut examples = 0;
    for (i, block) in DOC.split("```toml\n").skip(1).enumerate() {
        let text = block.split("```").next().unwrap();
        let path = dir.join(format!("example-{i}.toml"));
        std::fs::write(&path, text).unwrap();
        let layered = Layered::load(Some(&path), Vec::new())
            .unwrap_or_else(|e| panic!("example {i} of docs/configuration.md: {e}\n{text}"));
        // Examples with placeholders (`<64 hex digits>`) only pass the schema.
        if !text.contains('<') {
            layered
                .node(1)
                .unwrap_or_else(|e| panic!("example {i} of docs/configuration.md: {e}\n{text}"));
        }
        examples += 1;
    }
    assert_eq!(examples, 5);
}

#[test]
fn the_first_example_is_the_committed_demo_config() {
    let committed = include_str!("../../examples/cluster_demo/w1.toml");
    let block = DOC.split("```toml\n").nth(1).unwrap();
    let block = block.split("```").next().unwrap();
    let settings = |text: &str| {
        let path = Path::new(env!("CARGO_TARGET_TMPDIR")).join("config_doc_w1.toml");
        std::fs::write(&path, text).unwrap();
        Layered::load(Some(&path), Vec::new())
            .unwrap()
            .node(1)
            .unwrap()
    };
    assert_eq!(settings(block), settings(committed));
}
