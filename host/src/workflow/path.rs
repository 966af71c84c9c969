//! JSON paths that name a place in a workflow file (`workflows.x.steps[2].response.body`),
//! and the small text helpers the problem messages share.

/// `parent.key`, or `parent["odd key"]` when the key is not a plain name.
pub(crate) fn key(parent: &str, key: &str) -> String {
    let plain = !key.is_empty() && key.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'$'));
    match (parent.is_empty(), plain) {
        (true, true) => key.to_string(),
        (false, true) => format!("{parent}.{key}"),
        (_, false) => format!("{parent}[{}]", serde_json::Value::from(key)),
    }
}

/// `parent.kind`: step kinds are written as they are (`steps[0].sheets.appendValues`).
pub(crate) fn kind(parent: &str, kind: &str) -> String {
    format!("{parent}.{kind}")
}

/// `parent[index]`.
pub(crate) fn index(parent: &str, index: usize) -> String {
    format!("{parent}[{index}]")
}

/// `parent.relative`, where `relative` is already a path (e.g. `steps[0].if`).
pub(crate) fn join(parent: &str, relative: &str) -> String {
    if parent.is_empty() { relative.to_string() } else { format!("{parent}.{relative}") }
}

/// `[A-Za-z_][A-Za-z0-9_]*`: names that templates can reach with `a.b` attribute syntax.
pub fn is_identifier(name: &str) -> bool {
    let mut bytes = name.bytes();
    bytes.next().is_some_and(|b| b.is_ascii_alphabetic() || b == b'_')
        && bytes.all(|b| b.is_ascii_alphanumeric() || b == b'_')
}

/// `a`, `b`, `c` — names in backticks, comma-separated.
pub(crate) fn quoted_list<'a>(names: impl IntoIterator<Item = &'a str>) -> String {
    names.into_iter().map(|name| format!("`{name}`")).collect::<Vec<_>>().join(", ")
}

/// The candidate closest to `word` when it is plausibly a typo of it: a case-insensitive
/// edit distance of at most a third of the longer name (rounded up), and less than the
/// candidate's length so that short names are not "suggested" by replacing them whole.
pub(crate) fn closest<'a>(word: &str, candidates: impl IntoIterator<Item = &'a str>) -> Option<&'a str> {
    let word = word.to_ascii_lowercase();
    candidates
        .into_iter()
        .map(|candidate| (edit_distance(&word, &candidate.to_ascii_lowercase()), candidate))
        .filter(|(distance, candidate)| {
            let budget = word.chars().count().max(candidate.chars().count()).div_ceil(3);
            *distance <= budget && *distance < candidate.chars().count()
        })
        .min_by_key(|(distance, _)| *distance)
        .map(|(_, candidate)| candidate)
}

/// `; did you mean `x`?` when a close candidate exists, else nothing.
pub(crate) fn did_you_mean<'a>(word: &str, candidates: impl IntoIterator<Item = &'a str>) -> String {
    closest(word, candidates).map(|candidate| format!("; did you mean `{candidate}`?")).unwrap_or_default()
}

fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut previous: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut current = vec![i + 1; b.len() + 1];
        for (j, cb) in b.iter().enumerate() {
            let substitution = previous[j] + usize::from(ca != *cb);
            current[j + 1] = substitution.min(previous[j + 1] + 1).min(current[j] + 1);
        }
        previous = current;
    }
    previous[b.len()]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_quoted_only_when_needed() {
        assert_eq!(key("", "workflows"), "workflows");
        assert_eq!(key("workflows", "appendWebhookRow"), "workflows.appendWebhookRow");
        assert_eq!(key("a", "x-api-key"), "a.x-api-key");
        assert_eq!(key("a", "b.c"), r#"a["b.c"]"#);
        assert_eq!(key("a", "say \"hi\""), r#"a["say \"hi\""]"#);
        assert_eq!(key("", ""), r#"[""]"#);
        assert_eq!(index(&kind("steps[0]", "sheets.appendValues"), 1), "steps[0].sheets.appendValues[1]");
        assert_eq!(join("workflows.w", "steps[0].if"), "workflows.w.steps[0].if");
    }

    #[test]
    fn identifiers() {
        for good in ["a", "_", "row_2", "appendWebhookRow"] {
            assert!(is_identifier(good), "{good}");
        }
        for bad in ["", "2row", "row-2", "a.b", "é"] {
            assert!(!is_identifier(bad), "{bad}");
        }
    }

    #[test]
    fn suggestions() {
        assert_eq!(closest("timeout", ["id", "if", "retry", "timeoutMs", "continueOnError"]), Some("timeoutMs"));
        assert_eq!(closest("kind", ["id", "if", "retry", "timeoutMs", "continueOnError"]), None);
        assert_eq!(closest("timoutMs", ["id", "if", "retry", "timeoutMs"]), Some("timeoutMs"));
        assert_eq!(closest("timout", ["id", "if", "retry", "timeoutMs"]), Some("timeoutMs"));
        assert_eq!(closest("INPUT", ["input", "auth"]), Some("input"));
        assert_eq!(closest("b", ["a"]), None);
        assert_eq!(did_you_mean("inptu", ["input", "auth"]), "; did you mean `input`?");
        assert_eq!(did_you_mean("zzz", ["input"]), "");
    }
}
