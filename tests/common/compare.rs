//! Comparisons that show only what differs, so that a failing test over a tree of many
//! files says which entries are wrong rather than printing both trees.

use std::collections::BTreeMap;

/// Asserts that two maps (trees, listings) are equal; on failure, shows only what differs:
/// each key missing on one side, and each key whose values differ, with both values.
pub fn assert_same_map<K: Ord + std::fmt::Debug, V: PartialEq + std::fmt::Debug>(
    actual: &BTreeMap<K, V>,
    expected: &BTreeMap<K, V>,
    what: &str,
) {
    if actual == expected {
        return;
    }
    let mut diff = Vec::new();
    for (key, want) in expected {
        match actual.get(key) {
            None => diff.push(format!("- {key:?}: {want:?}")),
            Some(got) if got != want => diff.push(format!(
                "~ {key:?}:\n    expected {want:?}\n    found    {got:?}"
            )),
            Some(_) => {}
        }
    }
    for (key, got) in actual {
        if !expected.contains_key(key) {
            diff.push(format!("+ {key:?}: {got:?}"));
        }
    }
    panic!(
        "{what}: {} difference(s) (- expected only, + found only, ~ both):\n{}",
        diff.len(),
        diff.join("\n")
    );
}

/// Asserts that two listings are equal, line for line; on failure, shows a diff.
pub fn assert_same_lines<S: AsRef<str>, T: AsRef<str>>(actual: &[S], expected: &[T], what: &str) {
    let actual: Vec<&str> = actual.iter().map(AsRef::as_ref).collect();
    let expected: Vec<&str> = expected.iter().map(AsRef::as_ref).collect();
    if actual == expected {
        return;
    }
    // A longest-common-subsequence diff: listings here are short.
    let (n, m) = (expected.len(), actual.len());
    let mut common = vec![vec![0usize; m + 1]; n + 1];
    for i in (0..n).rev() {
        for j in (0..m).rev() {
            common[i][j] = if expected[i] == actual[j] {
                common[i + 1][j + 1] + 1
            } else {
                common[i + 1][j].max(common[i][j + 1])
            };
        }
    }
    let (mut i, mut j, mut diff) = (0, 0, Vec::new());
    while i < n || j < m {
        if i < n && j < m && expected[i] == actual[j] {
            diff.push(format!("  {}", expected[i]));
            (i, j) = (i + 1, j + 1);
        } else if j < m && (i == n || common[i][j + 1] >= common[i + 1][j]) {
            diff.push(format!("+ {}", actual[j]));
            j += 1;
        } else {
            diff.push(format!("- {}", expected[i]));
            i += 1;
        }
    }
    panic!("{what} differs (- expected, + found):\n{}", diff.join("\n"));
}
