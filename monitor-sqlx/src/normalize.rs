//! A statement's text as a site name: what stays the same across its runs.

/// The longest name a statement's site gets, in bytes; a longer text is cut at a character
/// boundary and ends in `…`.
///
/// ```
/// let long = format!("SELECT {} FROM t", "a, ".repeat(100));
/// assert!(monitor_sqlx::normalize(&long).len() <= monitor_sqlx::MAX_NAME + '…'.len_utf8());
/// ```
pub const MAX_NAME: usize = 200;

/// `sql` with every literal and parameter as `?`, a list of two or more of them as `(…)`,
/// the rows of a `VALUES` list as its first row, comments dropped and each run of whitespace
/// as one space, so that the runs of one statement share one site whatever their values:
///
/// ```
/// use monitor_sqlx::normalize;
/// assert_eq!(normalize("SELECT * FROM orders\n  WHERE id = $1 AND note = 'x''y'"),
///            "SELECT * FROM orders WHERE id = ? AND note = ?");
/// assert_eq!(normalize("select a from t where id in (1, 2, 3) -- hot"),
///            "select a from t where id in (…)");
/// assert_eq!(normalize("INSERT INTO t VALUES (?, ?), (?, ?)"), "INSERT INTO t VALUES (?, ?)");
/// assert_eq!(normalize("UPDATE t2 SET x = -1.5e3 WHERE k = :key"), "UPDATE t2 SET x = ? WHERE k = ?");
/// ```
///
/// Identifiers (quoted ones too), keywords and operators stay as written. At most
/// [`MAX_NAME`] bytes.
pub fn normalize(sql: &str) -> String {
    let tokens = tokens(sql);
    let mut out = String::with_capacity(sql.len().min(MAX_NAME + 4));
    let mut i = 0;
    while i < tokens.len() && out.len() <= MAX_NAME {
        let (tok, spaced) = &tokens[i];
        if *tok == Tok::Open {
            if let Some(end) = value_list(&tokens, i) {
                let n = (end - i) / 2;
                let after_values = i > 0
                    && matches!(tokens[i - 1].0, Tok::Word(w) if w.eq_ignore_ascii_case("VALUES"));
                if after_values {
                    let mut row = String::from("(");
                    for k in 0..n {
                        row.push_str(if k == 0 { "?" } else { ", ?" });
                    }
                    row.push(')');
                    push(&mut out, &row, *spaced);
                    i = end + 1;
                    // The rows after it: the same statement with more rows.
                    while matches!(tokens.get(i), Some((Tok::Comma, _))) {
                        match value_list(&tokens, i + 1) {
                            Some(e) => i = e + 1,
                            None => break,
                        }
                    }
                } else {
                    push(&mut out, if n >= 2 { "(…)" } else { "(?)" }, *spaced);
                    i = end + 1;
                }
                continue;
            }
        }
        let text = match tok {
            Tok::Value => "?",
            Tok::Open => "(",
            Tok::Close => ")",
            Tok::Comma => ",",
            Tok::Word(w) => w,
        };
        push(&mut out, text, *spaced);
        i += 1;
    }
    if out.len() > MAX_NAME {
        let mut cut = MAX_NAME;
        while !out.is_char_boundary(cut) {
            cut -= 1;
        }
        out.truncate(cut);
        out.push('…');
    }
    out
}

#[derive(Debug, PartialEq, Eq)]
enum Tok<'a> {
    Value,
    Open,
    Close,
    Comma,
    Word(&'a str),
}

/// If `(` at `at` opens a list of values only (`( v , v , … )`), the index of its `)`.
fn value_list(tokens: &[(Tok<'_>, bool)], at: usize) -> Option<usize> {
    if !matches!(tokens.get(at), Some((Tok::Open, _))) {
        return None;
    }
    let mut i = at + 1;
    loop {
        if !matches!(tokens.get(i), Some((Tok::Value, _))) {
            return None;
        }
        match tokens.get(i + 1) {
            Some((Tok::Comma, _)) => i += 2,
            Some((Tok::Close, _)) => return Some(i + 1),
            _ => return None,
        }
    }
}

/// Appends `text`, after one space where the statement had whitespace or a comment before it.
fn push(out: &mut String, text: &str, spaced: bool) {
    if spaced && !out.is_empty() {
        out.push(' ');
    }
    out.push_str(text);
}

fn is_keyword(w: &str) -> bool {
    const KEYWORDS: [&str; 16] = [
        "VALUES", "IN", "AND", "OR", "NOT", "ON", "AS", "WHERE", "FROM", "SELECT", "SET", "THEN",
        "ELSE", "WHEN", "LIMIT", "OFFSET",
    ];
    KEYWORDS.iter().any(|k| k.eq_ignore_ascii_case(w))
}

/// The statement's tokens: values (literals, parameters) as one kind, comments dropped.
fn tokens(sql: &str) -> Vec<(Tok<'_>, bool)> {
    let bytes = sql.as_bytes();
    let mut out: Vec<(Tok<'_>, bool)> = Vec::new();
    let mut i = 0;
    // Whether whitespace or a comment came since the last token.
    let mut gap = false;
    while i < bytes.len() {
        let c = bytes[i];
        let start = i;
        let before = out.len();
        match c {
            b' ' | b'\t' | b'\n' | b'\r' => {
                i += 1;
                gap = true;
            }
            b'-' if bytes.get(i + 1) == Some(&b'-') => {
                while i < bytes.len() && bytes[i] != b'\n' {
                    i += 1;
                }
                gap = true;
            }
            b'/' if bytes.get(i + 1) == Some(&b'*') => {
                i += 2;
                while i < bytes.len() && !(bytes[i] == b'*' && bytes.get(i + 1) == Some(&b'/')) {
                    i += 1;
                }
                i = (i + 2).min(bytes.len());
                gap = true;
            }
            b'\'' => {
                i = quoted(bytes, i, b'\'');
                out.push((Tok::Value, false));
            }
            b'"' | b'`' => {
                i = quoted(bytes, i, c);
                out.push((Tok::Word(&sql[start..i]), false));
            }
            b'[' => {
                while i < bytes.len() && bytes[i] != b']' {
                    i += 1;
                }
                i = (i + 1).min(bytes.len());
                out.push((Tok::Word(&sql[start..i]), false));
            }
            b'(' => {
                i += 1;
                out.push((Tok::Open, false));
            }
            b')' => {
                i += 1;
                out.push((Tok::Close, false));
            }
            b',' => {
                i += 1;
                out.push((Tok::Comma, false));
            }
            b'?' => {
                i += 1;
                while i < bytes.len() && bytes[i].is_ascii_digit() {
                    i += 1;
                }
                out.push((Tok::Value, false));
            }
            b'$' | b':' | b'@'
                if bytes.get(i + 1).is_some_and(|b| b.is_ascii_alphanumeric() || *b == b'_') =>
            {
                // `$1`, `:name`, `@p1` (a `::` cast is an operator: its second `:` is not here).
                i += 1;
                while i < bytes.len() && (bytes[i].is_ascii_alphanumeric() || bytes[i] == b'_') {
                    i += 1;
                }
                out.push((Tok::Value, false));
            }
            b'0'..=b'9' => {
                i = number(bytes, i);
                out.push((Tok::Value, false));
            }
            b'-' | b'+'
                if bytes.get(i + 1).is_some_and(u8::is_ascii_digit) && starts_value(&out) =>
            {
                i = number(bytes, i + 1);
                out.push((Tok::Value, false));
            }
            _ if c.is_ascii_alphabetic() || c == b'_' || c >= 0x80 => {
                while i < bytes.len()
                    && (bytes[i].is_ascii_alphanumeric()
                        || bytes[i] == b'_'
                        || bytes[i] == b'.'
                        || bytes[i] >= 0x80)
                {
                    i += 1;
                }
                out.push((Tok::Word(&sql[start..i]), false));
            }
            _ => {
                // Operators: a run of symbol characters.
                i += 1;
                while i < bytes.len()
                    && b"<>=!|&*/%+-~^:;.".contains(&bytes[i])
                    && !starts_comment(bytes, i)
                {
                    i += 1;
                }
                while !sql.is_char_boundary(i) {
                    i += 1;
                }
                out.push((Tok::Word(&sql[start..i]), false));
            }
        }
        if out.len() > before {
            if let Some(last) = out.last_mut() {
                last.1 = gap;
            }
            gap = false;
        }
    }
    out
}

fn starts_comment(bytes: &[u8], i: usize) -> bool {
    (bytes[i] == b'-' && bytes.get(i + 1) == Some(&b'-'))
        || (bytes[i] == b'/' && bytes.get(i + 1) == Some(&b'*'))
}

/// Whether a sign here starts a number (after an operator, `(`, `,` or a keyword), not
/// subtracts from one.
fn starts_value(before: &[(Tok<'_>, bool)]) -> bool {
    match before.last() {
        None | Some((Tok::Open | Tok::Comma, _)) => true,
        Some((Tok::Word(w), _)) => {
            let name = w.chars().next().is_some_and(|c| c.is_alphanumeric() || "_\"`[".contains(c));
            !name || is_keyword(w)
        }
        Some(_) => false,
    }
}

/// The end of a quoted run starting at `i` (a doubled quote is one inside it).
fn quoted(bytes: &[u8], mut i: usize, q: u8) -> usize {
    i += 1;
    while i < bytes.len() {
        if bytes[i] == q {
            if bytes.get(i + 1) == Some(&q) {
                i += 2;
                continue;
            }
            return i + 1;
        }
        i += 1;
    }
    bytes.len()
}

/// The end of a number starting at `i`: digits, a fraction, an exponent, hex.
fn number(bytes: &[u8], mut i: usize) -> usize {
    while i < bytes.len()
        && (bytes[i].is_ascii_alphanumeric() || bytes[i] == b'.' || bytes[i] == b'_')
    {
        let e = bytes[i] == b'e' || bytes[i] == b'E';
        i += 1;
        if e && i < bytes.len() && (bytes[i] == b'-' || bytes[i] == b'+') {
            i += 1;
        }
    }
    i
}

#[cfg(test)]
mod tests {
    use super::normalize;

    #[test]
    fn values_of_every_spelling_fold() {
        for (sql, want) in [
            ("SELECT * FROM t WHERE a = 1", "SELECT * FROM t WHERE a = ?"),
            ("SELECT * FROM t WHERE a = 'it''s'", "SELECT * FROM t WHERE a = ?"),
            (
                "SELECT * FROM t WHERE a = ?1 OR b = $2 OR c = @p3",
                "SELECT * FROM t WHERE a = ? OR b = ? OR c = ?",
            ),
            ("SELECT x::text FROM t", "SELECT x::text FROM t"),
            ("SELECT count(*) FROM t", "SELECT count(*) FROM t"),
            ("SELECT a - 1 FROM t", "SELECT a - ? FROM t"),
            ("SELECT * FROM t WHERE a IN ($1, $2, $3)", "SELECT * FROM t WHERE a IN (…)"),
            ("SELECT * FROM t WHERE a IN ($1)", "SELECT * FROM t WHERE a IN (?)"),
            ("SELECT * FROM t LIMIT -1", "SELECT * FROM t LIMIT ?"),
            (
                "INSERT INTO t (a, b) VALUES (1, 'x'), (2, 'y')",
                "INSERT INTO t (a, b) VALUES (?, ?)",
            ),
            (
                "SELECT \"Weird Name\" FROM t /* c */ WHERE 0x1F = a",
                "SELECT \"Weird Name\" FROM t WHERE ? = a",
            ),
        ] {
            assert_eq!(normalize(sql), want, "{sql}");
        }
    }

    #[test]
    fn names_are_bounded_and_never_panic() {
        let long = format!("SELECT {} FROM t", "é, ".repeat(400));
        let n = normalize(&long);
        assert!(n.len() <= super::MAX_NAME + '…'.len_utf8() && n.ends_with('…'), "{n}");
        for odd in ["'", "\"", "/*", "--", "$", "(", ")", ",,", "?x", "é", "1e", "-", ":", "[x", ""]
        {
            let _ = normalize(odd);
        }
    }
}
