//! The floors of DESIGN "Layout": imports run downward only. The machinery that knows no kind
//! never imports the kinds or what sits above them, and the kinds never import the pipeline,
//! the binary's parts or the tools built on them.

use std::fs;
use std::path::{Path, PathBuf};

/// Each floor, bottom up: its sources, and the modules above it that it must not name.
const FLOORS: &[(&[&str], &[&str])] = &[
    (
        &["src/mirror", "src/provision", "src/deploy", "src/reason.rs", "src/free_form.rs", "src/metrics.rs"],
        &["kinds", "reconcile", "admission", "render", "check", "events", "rbac", "validate", "operator", "cli"],
    ),
    (&["src/kinds"], &["reconcile", "admission", "render", "check", "events", "rbac", "validate", "operator", "cli"]),
    (&["src/reconcile", "src/admission", "src/render.rs", "src/check.rs"], &["operator", "cli"]),
];

fn sources(path: &Path, found: &mut Vec<PathBuf>) {
    if path.is_dir() {
        for entry in fs::read_dir(path).expect("a source directory") {
            sources(&entry.expect("an entry").path(), found);
        }
    } else if path.extension().is_some_and(|extension| extension == "rs") {
        found.push(path.to_owned());
    }
}

/// The `crate::<module>` paths a source names outside comments.
fn named_modules(source: &str) -> Vec<String> {
    source
        .lines()
        .map(|line| line.split("//").next().unwrap_or_default())
        .flat_map(|code| code.match_indices("crate::").map(|(at, _)| &code[at + "crate::".len()..]))
        .map(|rest| rest.chars().take_while(|c| c.is_alphanumeric() || *c == '_').collect())
        .collect()
}

#[test]
fn imports_run_downward() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut upward = vec![];
    for (floor, above) in FLOORS {
        let mut files = vec![];
        for path in *floor {
            sources(&root.join(path), &mut files);
        }
        assert!(!files.is_empty(), "no sources in {floor:?}");
        for file in files {
            let source = fs::read_to_string(&file).expect("a source file");
            for module in named_modules(&source) {
                if above.contains(&module.as_str()) {
                    upward
                        .push(format!("{} names crate::{module}", file.strip_prefix(root).unwrap_or(&file).display()));
                }
            }
        }
    }
    assert!(upward.is_empty(), "imports that run upward:\n{}", upward.join("\n"));
}

#[test]
fn a_named_module_is_found_in_code_not_in_comments() {
    let source = "use crate::kinds::Index; // crate::operator\nlet x = crate::reconcile::durations::WAITING;";
    assert_eq!(named_modules(source), ["kinds", "reconcile"]);
}
