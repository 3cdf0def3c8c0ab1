//! Just enough lexical knowledge of Mangle text to rewrite it before the real parser sees
//! it: which bytes are code (not strings or `#` comments), where statements begin, and the
//! IVCAP `:load_aspect(/name, "<schema>", ["<path>", …]).` declarations, which are not Mangle
//! and are cut out (blanked, so line and column numbers stay right).

use crate::error::{Error, Result};

/// `true` for each byte of `text` that is code: outside string literals and comments.
pub fn code_mask(text: &str) -> Vec<bool> {
    let bytes = text.as_bytes();
    let mut mask = vec![true; bytes.len()];
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'#' => {
                while i < bytes.len() && bytes[i] != b'\n' {
                    mask[i] = false;
                    i += 1;
                }
            }
            q @ (b'"' | b'\'' | b'`') => {
                mask[i] = false;
                i += 1;
                while i < bytes.len() && bytes[i] != q {
                    mask[i] = false;
                    if bytes[i] == b'\\' && i + 1 < bytes.len() {
                        i += 1;
                        mask[i] = false;
                    }
                    i += 1;
                }
                if i < bytes.len() {
                    mask[i] = false;
                    i += 1;
                }
            }
            _ => i += 1,
        }
    }
    mask
}

/// Byte offsets where `needle` starts a statement: in code, and preceded only by
/// whitespace and comments since the start of the text or the previous statement's `.`.
pub fn statement_starts(text: &str, mask: &[bool], needle: &str) -> Vec<usize> {
    let bytes = text.as_bytes();
    let mut out = Vec::new();
    let mut at_start = true;
    let mut depth = 0i32;
    for (i, &b) in bytes.iter().enumerate() {
        if !mask.get(i).copied().unwrap_or(false) {
            continue;
        }
        if at_start && depth == 0 && text[i..].starts_with(needle) {
            out.push(i);
        }
        match b {
            b'(' | b'[' | b'{' => depth += 1,
            b')' | b']' | b'}' => depth -= 1,
            _ => {}
        }
        if !b.is_ascii_whitespace() {
            // A `.` ends a statement unless it is part of a number or a qualified name.
            let next = bytes.get(i + 1).copied().unwrap_or(b' ');
            at_start = b == b'.' && depth == 0 && !next.is_ascii_alphanumeric();
        }
    }
    out
}

/// 1-based line and column of byte `offset`.
pub fn line_col(text: &str, offset: usize) -> (usize, usize) {
    let before = &text[..offset.min(text.len())];
    let line = before.matches('\n').count() + 1;
    let col = before.rfind('\n').map_or(before.chars().count(), |nl| before[nl + 1..].chars().count()) + 1;
    (line, col)
}

/// A `:load_aspect(/name, "<schema>", ["<path>", …])` declaration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LoadAspect {
    /// The predicate it defines (the name without its `/`).
    pub predicate: String,
    pub schema: String,
    /// Column paths, `a|b` already split into two.
    pub paths: Vec<String>,
}

/// Cuts the `:load_aspect` declarations out of `query` (replaced by spaces, newlines kept).
pub fn extract_load_aspects(query: &str) -> Result<(String, Vec<LoadAspect>)> {
    const KEYWORD: &str = ":load_aspect";
    let mask = code_mask(query);
    let mut text = query.as_bytes().to_vec();
    let mut decls = Vec::new();
    for start in statement_starts(query, &mask, KEYWORD) {
        let (line, col) = line_col(query, start);
        let bad = |what: &str| {
            Error::invalid(
                "query",
                format!(
                    "line {line}, column {col}: {what}; write it as :load_aspect(/name, \"<schema urn>\", [\".path\", \".list[*]\", \".a|.b\"])."
                ),
            )
        };
        // The declaration ends at the first code `.` after its closing parenthesis.
        let mut depth = 0i32;
        let mut close = None;
        for (i, &b) in query.as_bytes().iter().enumerate().skip(start + KEYWORD.len()) {
            if !mask[i] {
                continue;
            }
            match b {
                b'(' | b'[' => depth += 1,
                b')' | b']' => {
                    depth -= 1;
                    if depth == 0 && b == b')' {
                        close = Some(i);
                        break;
                    }
                }
                _ => {}
            }
        }
        let close = close.ok_or_else(|| bad(":load_aspect has no closing parenthesis"))?;
        let rest = &query[close + 1..];
        let dot = rest.find(|c: char| !c.is_whitespace()).filter(|&j| rest[j..].starts_with('.'));
        let end = close + 1 + dot.ok_or_else(|| bad(":load_aspect must end with '.'"))? + 1;
        let args = query[start + KEYWORD.len()..=close].trim();
        decls.push(parse_load_args(args).map_err(|m| bad(&m))?);
        for b in &mut text[start..end] {
            if *b != b'\n' {
                *b = b' ';
            }
        }
    }
    let text = String::from_utf8(text)
        .map_err(|_| Error::invalid("query", "the query is not valid UTF-8 after removing :load_aspect"))?;
    Ok((text, decls))
}

/// `(/name, "schema", ["p1", "p2|p3"])` → the declaration.
fn parse_load_args(args: &str) -> std::result::Result<LoadAspect, String> {
    let inner =
        args.strip_prefix('(').and_then(|a| a.strip_suffix(')')).ok_or("expected (/name, \"schema\", [paths])")?.trim();
    let name_end = inner.find(',').ok_or("expected three arguments")?;
    let name = inner[..name_end].trim();
    let predicate = name
        .strip_prefix('/')
        .filter(|n| n.chars().next().is_some_and(|c| c.is_ascii_lowercase()))
        .filter(|n| n.chars().all(|c| c.is_ascii_alphanumeric() || c == '_'))
        .ok_or_else(|| {
            format!("the first argument '{name}' must be a name such as /collection (lowercase letters, digits, _)")
        })?;
    let rest = inner[name_end + 1..].trim();
    let (schema, rest) = string_literal(rest).ok_or("the second argument must be the schema URN as a \"string\"")?;
    let rest = rest.trim_start().strip_prefix(',').ok_or("expected a third argument: a list of paths")?.trim();
    let mut list = rest
        .strip_prefix('[')
        .and_then(|r| r.strip_suffix(']'))
        .ok_or("the third argument must be a list of path strings, e.g. [\".name\"]")?
        .trim();
    let mut paths = Vec::new();
    while !list.is_empty() {
        let (p, after) = string_literal(list).ok_or("each path must be a \"string\" such as \".name\"")?;
        paths.extend(p.split('|').map(|s| s.trim().to_string()));
        list = after.trim_start();
        list = list.strip_prefix(',').unwrap_or(list).trim_start();
    }
    if paths.is_empty() || paths.iter().any(String::is_empty) {
        return Err("give at least one non-empty path".into());
    }
    Ok(LoadAspect { predicate: predicate.to_string(), schema, paths })
}

/// A leading `"…"` literal (with `\"` and `\\` escapes) and the text after it.
fn string_literal(s: &str) -> Option<(String, &str)> {
    let body = s.strip_prefix('"')?;
    let mut out = String::new();
    let mut chars = body.char_indices();
    while let Some((i, c)) = chars.next() {
        match c {
            '"' => return Some((out, &body[i + 1..])),
            '\\' => out.push(chars.next()?.1),
            c => out.push(c),
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn strings_and_comments_are_not_code() {
        let text = "p(\"a#b\"). # c\nq('x').";
        let mask = code_mask(text);
        let code: String = text.chars().zip(&mask).filter(|(_, m)| **m).map(|(c, _)| c).collect();
        assert_eq!(code, "p(). \nq().");
    }

    #[test]
    fn statement_starts_skip_bodies_and_strings() {
        let text = "p(1.5). :- p(X).\nq(X) :- p(X). # :- no\n\":- no\"";
        let starts = statement_starts(text, &code_mask(text), ":-");
        assert_eq!(starts, vec![8]);
        let text = "a.b(X) :- c(X).";
        assert!(statement_starts(text, &code_mask(text), "b").is_empty());
    }

    #[test]
    fn load_aspect_is_cut_out_keeping_positions() {
        let q =
            ":load_aspect(/coll, \"urn:s:1\", [\".collection\", \".artifacts[*]|.n\"]).\nquery(A) :- coll(_, A, _).";
        let (text, decls) = extract_load_aspects(q).unwrap();
        assert_eq!(text.lines().next().unwrap().trim(), "");
        assert_eq!(text.lines().nth(1).unwrap(), "query(A) :- coll(_, A, _).");
        assert_eq!(text.len(), q.len());
        assert_eq!(
            decls,
            vec![LoadAspect {
                predicate: "coll".into(),
                schema: "urn:s:1".into(),
                paths: vec![".collection".into(), ".artifacts[*]".into(), ".n".into()],
            }]
        );
    }

    #[test]
    fn bad_load_aspect_says_where_and_how() {
        let err = extract_load_aspects("p(1).\n:load_aspect(coll, \"s\", [\".a\"]).").unwrap_err().to_string();
        assert!(err.contains("line 2, column 1") && err.contains("/collection"), "{err}");
        assert!(extract_load_aspects(":load_aspect(/c, \"s\", [\".a\"])").is_err());
    }

    #[test]
    fn line_and_column_are_one_based() {
        assert_eq!(line_col("ab\ncd", 4), (2, 2));
        assert_eq!(line_col("ab", 0), (1, 1));
    }
}
