//! Reading `timestamp,value` CSV files (wide or long format) with errors that name the file,
//! the line and the problem.

use std::path::{Path, PathBuf};

use crate::series::Point;
use crate::timefmt::{parse_timestamp, TimeForm};

#[derive(Debug, thiserror::Error)]
pub enum CsvError {
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path}:{line}: {problem}")]
    Bad {
        path: PathBuf,
        line: usize,
        problem: String,
    },
}

/// One row of a CSV series.
#[derive(Debug, Clone, PartialEq)]
pub struct Row {
    /// The timestamp as written, echoed back in outputs.
    pub raw_ts: String,
    pub point: Point,
    /// Values of the requested tag columns, in order.
    pub tags: Vec<String>,
}

/// A parsed CSV file.
#[derive(Debug, Clone)]
pub struct Table {
    pub rows: Vec<Row>,
    pub form: TimeForm,
}

/// Splits one CSV line, honouring double quotes (`""` inside quotes is a quote).
pub fn split_line(line: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut cur = String::new();
    let mut quoted = false;
    let mut chars = line.chars().peekable();
    while let Some(c) = chars.next() {
        match (c, quoted) {
            ('"', true) if chars.peek() == Some(&'"') => {
                cur.push('"');
                chars.next();
            }
            ('"', _) => quoted = !quoted,
            (',', false) => out.push(std::mem::take(&mut cur)),
            _ => cur.push(c),
        }
    }
    out.push(cur);
    out
}

/// Reads a CSV with a header naming `timestamp` and `value_column` (case-insensitive),
/// plus any `tag_columns`. Empty, `NaN` or `null` values are kept as missing (NaN); any other
/// non-number is an error.
pub fn read(path: &Path, value_column: &str, tag_columns: &[String]) -> Result<Table, CsvError> {
    let text = std::fs::read_to_string(path).map_err(|source| CsvError::Io {
        path: path.to_path_buf(),
        source,
    })?;
    parse(&text, path, value_column, tag_columns)
}

pub fn parse(
    text: &str,
    path: &Path,
    value_column: &str,
    tag_columns: &[String],
) -> Result<Table, CsvError> {
    let bad = |line: usize, problem: String| CsvError::Bad {
        path: path.to_path_buf(),
        line,
        problem,
    };
    let mut lines = text
        .lines()
        .enumerate()
        .filter(|(_, l)| !l.trim().is_empty());
    let (_, header) = lines.next().ok_or_else(|| {
        bad(
            1,
            "the file is empty: expected a header with `timestamp` and `value`".into(),
        )
    })?;
    let header: Vec<String> = split_line(header.trim_start_matches('\u{feff}'))
        .iter()
        .map(|h| h.trim().to_ascii_lowercase())
        .collect();
    let col = |name: &str| header.iter().position(|h| h == &name.to_ascii_lowercase());
    let ts_col = col("timestamp").ok_or_else(|| {
        bad(
            1,
            format!(
                "no `timestamp` column in the header (found: {})",
                header.join(", ")
            ),
        )
    })?;
    let val_col = col(value_column).ok_or_else(|| {
        bad(
            1,
            format!(
                "no `{value_column}` column in the header (found: {})",
                header.join(", ")
            ),
        )
    })?;
    let tag_cols = tag_columns
        .iter()
        .map(|t| {
            col(t).ok_or_else(|| {
                bad(
                    1,
                    format!(
                        "no `{t}` column in the header (found: {})",
                        header.join(", ")
                    ),
                )
            })
        })
        .collect::<Result<Vec<_>, _>>()?;
    let mut rows = Vec::new();
    let mut form = None;
    for (i, line) in lines {
        let n = i + 1;
        let cells = split_line(line);
        let cell = |c: usize| {
            cells.get(c).map(|s| s.trim()).ok_or_else(|| {
                bad(
                    n,
                    format!("expected at least {} columns, found {}", c + 1, cells.len()),
                )
            })
        };
        let raw_ts = cell(ts_col)?;
        let (ts, f) = parse_timestamp(raw_ts).ok_or_else(|| {
            bad(
                n,
                format!("`{raw_ts}` is not a timestamp (YYYY-MM-DD[ HH:MM[:SS]], RFC 3339 or Unix time)"),
            )
        })?;
        form.get_or_insert(f);
        let raw_val = cell(val_col)?;
        let value = match raw_val.to_ascii_lowercase().as_str() {
            "" | "nan" | "null" | "na" => f64::NAN,
            _ => raw_val
                .parse::<f64>()
                .map_err(|_| bad(n, format!("`{raw_val}` is not a number")))?,
        };
        let tags = tag_cols
            .iter()
            .map(|&c| cell(c).map(str::to_string))
            .collect::<Result<Vec<_>, _>>()?;
        rows.push(Row {
            raw_ts: raw_ts.to_string(),
            point: Point { ts, value },
            tags,
        });
    }
    Ok(Table {
        rows,
        form: form.unwrap_or(TimeForm::Plain { t: false, frac: 0 }),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_names_bad_lines() {
        let p = Path::new("x.csv");
        let t = parse(
            "timestamp,value,other\n2020-01-01 00:00:00,1.5,\"a,b\"\n2020-01-01 01:00:00,,x\n",
            p,
            "value",
            &[],
        )
        .unwrap();
        assert_eq!(t.rows.len(), 2);
        assert_eq!(t.rows[0].point.value, 1.5);
        assert!(t.rows[1].point.value.is_nan());
        let e = parse(
            "timestamp,value\n2020-01-01 00:00:00,abc\n",
            p,
            "value",
            &[],
        )
        .unwrap_err()
        .to_string();
        assert_eq!(e, "x.csv:2: `abc` is not a number");
        let e = parse("time,value\n", p, "value", &[])
            .unwrap_err()
            .to_string();
        assert!(e.contains("x.csv:1: no `timestamp` column"), "{e}");
        let e = parse("timestamp,value\nnot-a-time,1\n", p, "value", &[])
            .unwrap_err()
            .to_string();
        assert!(
            e.starts_with("x.csv:2: `not-a-time` is not a timestamp"),
            "{e}"
        );
        assert!(parse("", p, "value", &[]).is_err());
    }

    #[test]
    fn split_handles_quotes() {
        assert_eq!(split_line(r#"a,"b,""c""",d"#), vec!["a", "b,\"c\"", "d"]);
    }
}
