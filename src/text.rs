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

#[cfg(test)]
mod tests {
    #[test]
    fn cuts_on_char_boundaries() {
        assert_eq!(super::truncate("héllo", 2), "h…");
        assert_eq!(super::truncate("abc", 3), "abc");
    }
}
