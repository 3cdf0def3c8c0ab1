//! Small text helpers shared by the backends and the tools.

/// The first `max` bytes of `s`, cut on a character boundary, with `…` when cut.
pub fn truncate(s: &str, max: usize) -> String {
    if s.len() <= max {
        return s.to_string();
    }
    let mut end = max;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}…", &s[..end])
}

/// A JSON value as an error message names it: `the string "ten"`, `the integer 5`, `an
/// object` … (long strings by their length only).
pub fn describe_json(value: &serde_json::Value) -> String {
    use serde_json::Value;
    match value {
        Value::Null => "null".into(),
        Value::Bool(b) => format!("the boolean {b}"),
        Value::Number(n) if n.is_f64() => format!("the number {n}"),
        Value::Number(n) => format!("the integer {n}"),
        Value::String(s) if s.chars().count() > 40 => format!("a string of {} characters", s.chars().count()),
        Value::String(s) => format!("the string {}", Value::String(s.clone())),
        Value::Array(a) => format!("an array of {} items", a.len()),
        Value::Object(_) => "an object".into(),
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn cuts_on_char_boundaries() {
        assert_eq!(super::truncate("héllo", 2), "h…");
        assert_eq!(super::truncate("abc", 3), "abc");
    }
}
