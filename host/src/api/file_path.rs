//! Session file paths: absolute, normalised, inside the root.

use crate::envelope::ApiError;

/// Normalises a client-given file path to `/a/b/c`.
///
/// A missing leading `/` is added and `.` segments are dropped; `..` is resolved but may
/// not climb above the root. Empty segments (`a//b`, a trailing `/`), NUL and other control
/// characters are refused with 400; a path longer than `max_bytes` with 422.
pub fn normalize(raw: &str, max_bytes: usize) -> Result<String, ApiError> {
    let bad = |why: &str| ApiError::bad_request(format!("invalid path {raw:?}: {why}"));
    if raw.is_empty() {
        return Err(bad("it is empty"));
    }
    if raw.chars().any(char::is_control) {
        return Err(bad("it contains a control character"));
    }
    let relative = raw.strip_prefix('/').unwrap_or(raw);
    let mut segments: Vec<&str> = Vec::new();
    for segment in relative.split('/') {
        match segment {
            "" => return Err(bad("it has an empty segment")),
            "." => {}
            ".." => {
                if segments.pop().is_none() {
                    return Err(bad("it escapes the root"));
                }
            }
            name => segments.push(name),
        }
    }
    if segments.is_empty() {
        return Err(bad("it names no file"));
    }
    let path = format!("/{}", segments.join("/"));
    if path.len() > max_bytes {
        return Err(ApiError::validation(format!(
            "path {:?}… is {} bytes; the limit is {max_bytes}",
            &path[..path.floor_char_boundary(40)],
            path.len()
        )));
    }
    Ok(path)
}

#[cfg(test)]
mod tests {
    use super::normalize;
    use crate::envelope::ErrorCode;

    #[test]
    fn normalises_valid_paths() {
        for (raw, expected) in [
            ("/app/App.tsx", "/app/App.tsx"),
            ("app/App.tsx", "/app/App.tsx"),
            ("/app/./x/../App.tsx", "/app/App.tsx"),
            ("/a b/ünï.txt", "/a b/ünï.txt"),
            ("/..a/b..", "/..a/b.."),
        ] {
            assert_eq!(normalize(raw, 1024).unwrap(), expected, "{raw}");
        }
    }

    #[test]
    fn refuses_bad_paths() {
        for raw in ["", "/", "/..", "/a/../../b", "/a//b", "/a/", "/a\0b", "/a\nb", "/a\u{7f}", "./.."] {
            let error = normalize(raw, 1024).unwrap_err();
            assert_eq!(error.code, ErrorCode::BadRequest, "{raw:?}");
        }
        let long = format!("/{}", "x".repeat(1024));
        assert_eq!(normalize(&long, 1024).unwrap_err().code, ErrorCode::ValidationFailed);
    }
}
