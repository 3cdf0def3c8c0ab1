//! The filter expressions of IVCAP lists (docs/ivcap-wire.md §3), parsed and evaluated:
//! `name ~= 'hello%'`, `status = 'succeeded' and finished-at > '2026-01-01T00:00:00Z'`,
//! `(a = 'x' or b != 'y') and c ~= '%z'`.
//!
//! ```text
//! expr       := conjunction ("or" conjunction)*
//! conjunction:= atom ("and" atom)*
//! atom       := "(" expr ")" | field op value
//! op         := "~=" (LIKE, `%` wildcard, case-insensitive) | "=" | "!=" | "<" | "<=" | ">" | ">="
//! value      := 'text' ('' is a quote) | number | true | false
//! ```
//! Comparisons are numeric when both sides are numbers, by instant when both are RFC 3339
//! times, else by text. A field the record lacks matches nothing.
//!
//! Only `std` is used, so the stand-in IVCAP server (tests/standin) evaluates filters with
//! this same file, the grammar the tools check arguments against.

use std::cmp::Ordering;

/// A comparison operator.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op {
    Like,
    Eq,
    Ne,
    Lt,
    Le,
    Gt,
    Ge,
}

/// A parsed filter expression.
#[derive(Debug, Clone, PartialEq)]
pub enum Expr {
    Or(Vec<Expr>),
    And(Vec<Expr>),
    Compare { field: String, op: Op, value: String },
}

impl Expr {
    /// Parses `text`; the error says where and what was expected.
    pub fn parse(text: &str) -> Result<Expr, String> {
        let tokens = tokenize(text)?;
        let mut parser = Parser { tokens: &tokens, at: 0 };
        let expr = parser.expr()?;
        match parser.tokens.get(parser.at) {
            None => Ok(expr),
            Some(t) => Err(format!("unexpected {} after a complete expression", t.describe())),
        }
    }

    /// Every field the expression names, in order of appearance.
    pub fn fields(&self) -> Vec<&str> {
        match self {
            Expr::Or(parts) | Expr::And(parts) => parts.iter().flat_map(Expr::fields).collect(),
            Expr::Compare { field, .. } => vec![field.as_str()],
        }
    }

    /// `Err` naming the first field not in `allowed`, and the ones that are.
    pub fn check_fields(&self, allowed: &[&str]) -> Result<(), String> {
        match self.fields().into_iter().find(|f| !allowed.contains(f)) {
            None => Ok(()),
            Some(f) => Err(format!("unknown field '{f}'; the fields you can filter on are {}", allowed.join(", "))),
        }
    }

    /// Does the record whose fields `get` reads match?
    pub fn matches(&self, get: &dyn Fn(&str) -> Option<String>) -> bool {
        match self {
            Expr::Or(parts) => parts.iter().any(|p| p.matches(get)),
            Expr::And(parts) => parts.iter().all(|p| p.matches(get)),
            Expr::Compare { field, op, value } => get(field).is_some_and(|actual| compare(&actual, *op, value)),
        }
    }
}

fn compare(actual: &str, op: Op, value: &str) -> bool {
    match op {
        Op::Like => like_match(value, actual, true),
        Op::Eq => order(actual, value) == Ordering::Equal,
        Op::Ne => order(actual, value) != Ordering::Equal,
        Op::Lt => order(actual, value) == Ordering::Less,
        Op::Le => order(actual, value) != Ordering::Greater,
        Op::Gt => order(actual, value) == Ordering::Greater,
        Op::Ge => order(actual, value) != Ordering::Less,
    }
}

/// How two field values compare: as numbers, as RFC 3339 instants, or as text.
pub fn order(a: &str, b: &str) -> Ordering {
    if let (Ok(x), Ok(y)) = (a.parse::<f64>(), b.parse::<f64>()) {
        return x.partial_cmp(&y).unwrap_or(Ordering::Equal);
    }
    if let (Some(x), Some(y)) = (instant(a), instant(b)) {
        return x.cmp(&y);
    }
    a.cmp(b)
}

/// An RFC 3339 time as a sortable key: the UTC instant, in nanoseconds. `None` for other text.
fn instant(s: &str) -> Option<i128> {
    let b = s.as_bytes();
    let num = |r: std::ops::Range<usize>| -> Option<i64> {
        let part = s.get(r)?;
        if part.bytes().all(|c| c.is_ascii_digit()) { part.parse().ok() } else { None }
    };
    if b.len() < 20 || b[4] != b'-' || b[7] != b'-' || !matches!(b[10], b'T' | b't' | b' ') || b[13] != b':' {
        return None;
    }
    let (y, mo, d, h, mi, sec) = (num(0..4)?, num(5..7)?, num(8..10)?, num(11..13)?, num(14..16)?, num(17..19)?);
    let mut rest = &s[19..];
    let mut nanos: i64 = 0;
    if let Some(frac) = rest.strip_prefix('.') {
        let digits = frac.bytes().take_while(u8::is_ascii_digit).count();
        let text = frac.get(..digits.min(9))?;
        nanos = format!("{text:0<9}").parse().ok()?;
        rest = &frac[digits..];
    }
    let offset_secs = match rest {
        "Z" | "z" => 0,
        _ => {
            let sign = match rest.as_bytes().first()? {
                b'+' => 1,
                b'-' => -1,
                _ => return None,
            };
            let (oh, om) = (rest.get(1..3)?.parse::<i64>().ok()?, rest.get(4..6)?.parse::<i64>().ok()?);
            if rest.len() != 6 || rest.as_bytes()[3] != b':' {
                return None;
            }
            sign * (oh * 3600 + om * 60)
        }
    };
    // Days from the civil date (Howard Hinnant's algorithm).
    let (yy, m) = if mo <= 2 { (y - 1, mo + 9) } else { (y, mo - 3) };
    let era = yy.div_euclid(400);
    let yoe = yy - era * 400;
    let doy = (153 * m + 2) / 5 + d - 1;
    let days = era * 146_097 + yoe * 365 + yoe / 4 - yoe / 100 + doy - 719_468;
    let secs = days * 86_400 + h * 3600 + mi * 60 + sec - offset_secs;
    Some(i128::from(secs) * 1_000_000_000 + i128::from(nanos))
}

/// SQL `LIKE` matching with `%` as the only wildcard (IVCAP's filters and schema prefixes).
pub fn like_match(pattern: &str, text: &str, ignore_case: bool) -> bool {
    let (p, t): (Vec<char>, Vec<char>) = if ignore_case {
        (pattern.to_lowercase().chars().collect(), text.to_lowercase().chars().collect())
    } else {
        (pattern.chars().collect(), text.chars().collect())
    };
    // Greedy match with back-tracking to the last `%`: linear in practice.
    let (mut pi, mut ti, mut star, mut mark) = (0, 0, None, 0);
    while ti < t.len() {
        if pi < p.len() && p[pi] == '%' {
            star = Some(pi);
            mark = ti;
            pi += 1;
        } else if pi < p.len() && p[pi] == t[ti] {
            pi += 1;
            ti += 1;
        } else if let Some(s) = star {
            pi = s + 1;
            mark += 1;
            ti = mark;
        } else {
            return false;
        }
    }
    p[pi..].iter().all(|c| *c == '%')
}

#[derive(Debug, Clone, PartialEq)]
enum Token {
    Word(String),
    Text(String),
    Op(Op),
    Open,
    Close,
}

impl Token {
    fn describe(&self) -> String {
        match self {
            Token::Word(w) => format!("'{w}'"),
            Token::Text(t) => format!("the text '{t}'"),
            Token::Op(_) => "an operator".into(),
            Token::Open => "'('".into(),
            Token::Close => "')'".into(),
        }
    }
}

fn tokenize(text: &str) -> Result<Vec<Token>, String> {
    let chars: Vec<char> = text.chars().collect();
    let mut out = Vec::new();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        let next = chars.get(i + 1).copied();
        match c {
            _ if c.is_whitespace() => i += 1,
            '(' => {
                out.push(Token::Open);
                i += 1;
            }
            ')' => {
                out.push(Token::Close);
                i += 1;
            }
            '\'' => {
                let mut s = String::new();
                i += 1;
                loop {
                    match chars.get(i) {
                        None => return Err("a quoted value is not closed; end it with '".into()),
                        Some('\'') if chars.get(i + 1) == Some(&'\'') => {
                            s.push('\'');
                            i += 2;
                        }
                        Some('\'') => {
                            i += 1;
                            break;
                        }
                        Some(ch) => {
                            s.push(*ch);
                            i += 1;
                        }
                    }
                }
                out.push(Token::Text(s));
            }
            '~' if next == Some('=') => {
                out.push(Token::Op(Op::Like));
                i += 2;
            }
            '!' if next == Some('=') => {
                out.push(Token::Op(Op::Ne));
                i += 2;
            }
            '<' | '>' => {
                let eq = next == Some('=');
                out.push(Token::Op(match (c, eq) {
                    ('<', true) => Op::Le,
                    ('<', false) => Op::Lt,
                    (_, true) => Op::Ge,
                    _ => Op::Gt,
                }));
                i += if eq { 2 } else { 1 };
            }
            '=' => {
                out.push(Token::Op(Op::Eq));
                i += if next == Some('=') { 2 } else { 1 };
            }
            _ if c.is_alphanumeric() || matches!(c, '_' | '-' | '.' | '+') => {
                let start = i;
                while i < chars.len() && (chars[i].is_alphanumeric() || matches!(chars[i], '_' | '-' | '.' | '+')) {
                    i += 1;
                }
                out.push(Token::Word(chars[start..i].iter().collect()));
            }
            _ => return Err(format!("unexpected character '{c}'")),
        }
    }
    if out.is_empty() {
        return Err("is empty".into());
    }
    Ok(out)
}

struct Parser<'a> {
    tokens: &'a [Token],
    at: usize,
}

impl Parser<'_> {
    fn keyword(&mut self, kw: &str) -> bool {
        match self.tokens.get(self.at) {
            Some(Token::Word(w)) if w.eq_ignore_ascii_case(kw) => {
                self.at += 1;
                true
            }
            _ => false,
        }
    }

    fn expr(&mut self) -> Result<Expr, String> {
        let mut parts = vec![self.conjunction()?];
        while self.keyword("or") {
            parts.push(self.conjunction()?);
        }
        Ok(if parts.len() == 1 { parts.remove(0) } else { Expr::Or(parts) })
    }

    fn conjunction(&mut self) -> Result<Expr, String> {
        let mut parts = vec![self.atom()?];
        while self.keyword("and") {
            parts.push(self.atom()?);
        }
        Ok(if parts.len() == 1 { parts.remove(0) } else { Expr::And(parts) })
    }

    fn atom(&mut self) -> Result<Expr, String> {
        let token = self.tokens.get(self.at).cloned();
        self.at += 1;
        match token {
            Some(Token::Open) => {
                let inner = self.expr()?;
                match self.tokens.get(self.at) {
                    Some(Token::Close) => {
                        self.at += 1;
                        Ok(inner)
                    }
                    _ => Err("a '(' is not closed; add ')'".into()),
                }
            }
            Some(Token::Word(field)) => {
                let op = match self.tokens.get(self.at) {
                    Some(Token::Op(op)) => *op,
                    other => {
                        return Err(format!(
                            "expected an operator (~=, =, !=, <, <=, >, >=) after '{field}', found {}",
                            other.map_or("the end".into(), Token::describe)
                        ));
                    }
                };
                self.at += 1;
                let value = match self.tokens.get(self.at) {
                    Some(Token::Text(t)) => t.clone(),
                    Some(Token::Word(w)) if w.parse::<f64>().is_ok() || w == "true" || w == "false" => w.clone(),
                    other => {
                        return Err(format!(
                            "expected a quoted value such as 'x%', a number, true or false after '{field}', found {}",
                            other.map_or("the end".into(), Token::describe)
                        ));
                    }
                };
                self.at += 1;
                Ok(Expr::Compare { field, op, value })
            }
            other => {
                Err(format!("expected a field name or '(', found {}", other.map_or("the end".into(), |t| t.describe())))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(field: &str) -> Option<String> {
        match field {
            "name" => Some("Hello World".into()),
            "size" => Some("120".into()),
            "created-at" => Some("2026-01-31T12:00:00Z".into()),
            "status" => Some("ready".into()),
            _ => None,
        }
    }

    fn matches(filter: &str) -> bool {
        Expr::parse(filter).unwrap().matches(&record)
    }

    #[test]
    fn comparisons_and_logic() {
        assert!(matches("name ~= 'hello%'"));
        assert!(matches("name~='%WORLD'"));
        assert!(!matches("name = 'hello world'"));
        assert!(matches("name = 'Hello World' and size > 100"));
        assert!(!matches("size >= 121"));
        assert!(matches("size < 1000 and (status = 'x' or status != 'y')"));
        assert!(matches("status = 'x' or status = 'ready' and size = 120"));
        assert!(matches("created-at > '2026-01-31T12:59:59+01:00'"));
        assert!(!matches("created-at < '2026-01-31T00:00:00Z'"));
        assert!(!matches("missing = 'x'") && !matches("missing != 'x'"));
        assert!(matches("name = 'Hello World' OR name = 'x'"));
    }

    #[test]
    fn quotes_double_inside_values() {
        let e = Expr::parse("name ~= 'O''Brien%'").unwrap();
        assert_eq!(e, Expr::Compare { field: "name".into(), op: Op::Like, value: "O'Brien%".into() });
    }

    #[test]
    fn errors_say_what_was_expected() {
        assert!(Expr::parse("").unwrap_err().contains("empty"));
        assert!(Expr::parse("name").unwrap_err().contains("expected an operator"));
        assert!(Expr::parse("name ~= 'x").unwrap_err().contains("not closed"));
        assert!(Expr::parse("name = x").unwrap_err().contains("quoted value"));
        assert!(Expr::parse("(name = 'x'").unwrap_err().contains("')'"));
        assert!(Expr::parse("name = 'x' name = 'y'").unwrap_err().contains("unexpected"));
        assert!(Expr::parse("name ; 'x'").unwrap_err().contains("';'"));
        let e = Expr::parse("nam = 'x' and name = 'y'").unwrap();
        let err = e.check_fields(&["name", "description"]).unwrap_err();
        assert!(err.contains("'nam'") && err.contains("name, description"), "{err}");
    }

    #[test]
    fn values_order_as_numbers_times_or_text() {
        assert_eq!(order("9", "10"), Ordering::Less);
        assert_eq!(order("2026-01-31T12:00:00.5Z", "2026-01-31T13:00:00+01:00"), Ordering::Greater);
        assert_eq!(order("b", "a"), Ordering::Greater);
    }

    #[test]
    fn like_has_one_wildcard() {
        assert!(like_match("urn:x:%", "urn:x:schema.1", false));
        assert!(like_match("%alpha%", "The Alpha service", true));
        assert!(!like_match("%alpha%", "The Alpha service", false));
        assert!(like_match("a%c%e", "abcde", false));
        assert!(!like_match("a%c", "abd", false));
        assert!(like_match("exact", "exact", false));
        assert!(!like_match("exact", "exactly", false));
    }
}
