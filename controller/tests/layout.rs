//! The controller's import rules (see its lib.rs and the README's layout): `gateway` imports
//! none of `openai`, `site`, `http` or the store; `openai` and `site` never import each other.
//! Read from the sources, so that a new import that breaks a rule fails here.

use std::path::Path;

/// Every `.rs` file under `controller/src/{module}`, with its text.
fn sources(module: &str) -> Vec<(String, String)> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("src")
        .join(module);
    let mut out = Vec::new();
    for entry in std::fs::read_dir(&dir).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_some_and(|e| e == "rs") {
            let text = std::fs::read_to_string(&path).unwrap();
            out.push((path.display().to_string(), text));
        }
    }
    assert!(!out.is_empty(), "no sources in {}", dir.display());
    out
}

fn assert_never_imports(module: &str, forbidden: &[&str]) {
    for (path, text) in sources(module) {
        for f in forbidden {
            assert!(
                !text.contains(f),
                "{path} uses {f}, which {module} must not import"
            );
        }
    }
}

#[test]
fn the_gateway_reaches_models_without_the_apis_the_site_or_the_store() {
    assert_never_imports(
        "gateway",
        &[
            "crate::openai",
            "crate::site",
            "crate::http",
            "crate::app",
            "arena_store",
        ],
    );
}

#[test]
fn the_openai_api_and_the_site_do_not_import_each_other() {
    assert_never_imports("openai", &["crate::site", "crate::app"]);
    assert_never_imports("site", &["crate::openai", "crate::app"]);
}
