//! Escaping for line protocol and InfluxQL, so any tag value (quotes, commas, spaces, `=`,
//! non-ASCII text) round-trips exactly.

/// Measurement names in line protocol: commas and spaces.
pub fn measurement(s: &str) -> String {
    escape_with(s, &[',', ' '])
}

/// Tag keys, tag values and field keys in line protocol: commas, `=` and spaces.
///
/// A backslash stays as it is: InfluxDB 1.x keeps a backslash literally unless it precedes
/// one of those characters (it has no `\\` escape), so that is the only form 1.x and 2.x
/// both read back exactly. Newlines cannot be represented and become spaces.
pub fn tag(s: &str) -> String {
    escape_with(&s.replace(['\n', '\r'], " "), &[',', '=', ' '])
}

fn escape_with(s: &str, special: &[char]) -> String {
    let mut out = String::with_capacity(s.len() + 4);
    for c in s.chars() {
        if special.contains(&c) {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

/// The inverse of [`tag`], following InfluxDB's line protocol parser: a backslash before
/// `,`, `=` or a space is dropped, any other backslash is kept.
pub fn unescape_tag(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut chars = s.chars().peekable();
    while let Some(c) = chars.next() {
        if c == '\\' && matches!(chars.peek(), Some(',' | '=' | ' ')) {
            continue;
        }
        out.push(c);
    }
    out
}

/// A double-quoted InfluxQL identifier.
pub fn ident(s: &str) -> String {
    format!("\"{}\"", s.replace('\\', "\\\\").replace('"', "\\\""))
}

/// A single-quoted InfluxQL string literal.
pub fn string(s: &str) -> String {
    format!("'{}'", s.replace('\\', "\\\\").replace('\'', "\\'"))
}

/// Whether a tag value survives line protocol unchanged on every InfluxDB version: no
/// backslash directly before a special character or at the very end, and no newline.
pub fn representable(s: &str) -> bool {
    let b: Vec<char> = s.chars().collect();
    !s.contains(['\n', '\r'])
        && b.last().is_none_or(|c| *c != '\\')
        && !b
            .windows(2)
            .any(|w| w[0] == '\\' && matches!(w[1], ',' | '=' | ' ' | '\\'))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn known_cases() {
        assert_eq!(tag("a b,c=d"), "a\\ b\\,c\\=d");
        assert_eq!(measurement("m x,y=z"), "m\\ x\\,y=z");
        assert_eq!(ident("a\"b"), "\"a\\\"b\"");
        assert_eq!(string("it's \\ here"), "'it\\'s \\\\ here'");
        assert_eq!(
            unescape_tag(&tag("Kanal \"Eins\", Süd\\Nord = ñ")),
            "Kanal \"Eins\", Süd\\Nord = ñ"
        );
    }

    /// Splits an escaped tag set the way a line-protocol reader does: on unescaped commas.
    fn split_unescaped(s: &str, sep: char) -> Vec<String> {
        let mut parts = vec![String::new()];
        let mut chars = s.chars().peekable();
        while let Some(c) = chars.next() {
            if c == '\\' {
                if let Some(&n) = chars.peek() {
                    if matches!(n, ',' | '=' | ' ') {
                        parts.last_mut().unwrap().push(c);
                        parts.last_mut().unwrap().push(n);
                        chars.next();
                        continue;
                    }
                }
            }
            if c == sep {
                parts.push(String::new());
            } else {
                parts.last_mut().unwrap().push(c);
            }
        }
        parts
    }

    proptest! {
        #[test]
        fn tag_values_round_trip(v in "[a-zA-Z0-9 ,=\"'üñ€\\\\]{0,24}") {
            prop_assume!(representable(&v));
            let line = format!("m,channel={},other={} y=1", tag(&v), tag(&v));
            // The key ends at the first unescaped space; tags split on unescaped commas.
            let key = split_unescaped(&line, ' ').remove(0);
            let parts = split_unescaped(&key, ',');
            prop_assert_eq!(parts.len(), 3);
            for p in &parts[1..] {
                let kv = split_unescaped(p, '=');
                prop_assert_eq!(kv.len(), 2);
                prop_assert_eq!(unescape_tag(&kv[1]), v.clone());
            }
        }

        #[test]
        fn influxql_strings_round_trip(v in "\\PC{0,24}") {
            let lit = string(&v);
            prop_assert!(lit.starts_with('\'') && lit.ends_with('\''));
            // Undo the escaping as InfluxQL's scanner does.
            let inner = &lit[1..lit.len() - 1];
            let mut out = String::new();
            let mut chars = inner.chars();
            while let Some(c) = chars.next() {
                if c == '\\' { out.push(chars.next().unwrap()); } else { prop_assert!(c != '\''); out.push(c); }
            }
            prop_assert_eq!(out, v);
        }
    }
}
