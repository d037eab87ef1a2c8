//! The question set shipped with the project keeps its shape: 80 questions, 10 in each of 8
//! categories, two turns each, reference answers exactly where the judge needs them.

use std::collections::BTreeMap;
use std::path::Path;

use arena_eval::questions::{load, REFERENCE_CATEGORIES};

const CATEGORIES: [&str; 8] = [
    "writing",
    "roleplay",
    "reasoning",
    "math",
    "coding",
    "extraction",
    "stem",
    "humanities",
];

#[test]
fn arena_80_has_ten_two_turn_questions_in_each_category() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("questions/arena-80.jsonl");
    let questions = load(&path).unwrap();
    assert_eq!(questions.len(), 80);
    let mut per_category: BTreeMap<&str, usize> = BTreeMap::new();
    for q in &questions {
        *per_category.entry(q.category.as_str()).or_default() += 1;
        assert_eq!(q.turns.len(), 2, "question {}", q.id);
        let needs_reference = REFERENCE_CATEGORIES.contains(&q.category.as_str());
        match &q.reference {
            Some(r) => {
                assert!(needs_reference, "question {} has an unused reference", q.id);
                assert_eq!(r.len(), 2, "question {}: one reference per turn", q.id);
                assert!(r.iter().all(|t| !t.trim().is_empty()), "question {}", q.id);
            }
            None => assert!(!needs_reference, "question {} lacks its reference", q.id),
        }
    }
    for c in CATEGORIES {
        assert_eq!(per_category.get(c), Some(&10), "{c}: {per_category:?}");
    }
    assert_eq!(per_category.len(), 8, "{per_category:?}");
}
