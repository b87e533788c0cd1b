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
#[derive(Debug)]
pub struct Table {
    pub rows: Vec<Row>,
    pub form: TimeForm,
    /// Rows that could not be read (a bad timestamp or value, too few columns), in file
    /// order. [`read`] and [`parse`] fail on the first; [`read_lenient`] leaves them out.
    pub bad_rows: Vec<CsvError>,
}

/// Splits one CSV line at `delimiter`, honouring double quotes (`""` inside quotes is a
/// quote).
fn split_line(line: &str, delimiter: char) -> Vec<String> {
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
            (c, false) if c == delimiter => out.push(std::mem::take(&mut cur)),
            _ => cur.push(c),
        }
    }
    out.push(cur);
    out
}

/// Other names for the timestamp column, tried in order when there is no `timestamp`:
/// InfluxDB's CSV export (`_time`), Prophet's (`ds`) and the usual spreadsheet headers.
const TIME_ALIASES: &[&str] = &["_time", "ds", "time", "datetime", "date"];
/// Other names for the default `value` column: InfluxDB's `_value`, Prophet's `y`.
const VALUE_ALIASES: &[&str] = &["_value", "y"];

/// Reads a CSV with a header naming `timestamp` and `value_column` (case-insensitive; see
/// [`TIME_ALIASES`] and [`VALUE_ALIASES`] for the other names taken), plus any
/// `tag_columns`. Fields are separated by commas, or by semicolons or tabs when the header
/// has no comma (spreadsheets in many locales write `;`). Empty, `NaN` or `null` values are kept as missing (NaN); any other
/// non-number is an error. A `path` of `-` is standard input.
pub fn read(path: &Path, value_column: &str, tag_columns: &[String]) -> Result<Table, CsvError> {
    read_with(path, value_column, tag_columns, true)
}

/// [`read`], except that rows it cannot read are left out and listed in
/// [`Table::bad_rows`] instead of failing the whole file: a daemon watching an export
/// keeps every good row when one line is mangled. The header must still be readable.
pub fn read_lenient(
    path: &Path,
    value_column: &str,
    tag_columns: &[String],
) -> Result<Table, CsvError> {
    read_with(path, value_column, tag_columns, false)
}

/// [`read`] when `strict` (the first bad row is the error), else [`read_lenient`].
fn read_with(
    path: &Path,
    value_column: &str,
    tag_columns: &[String],
    strict: bool,
) -> Result<Table, CsvError> {
    parse_with(&read_text(path)?, path, value_column, tag_columns, strict)
}

/// The text of `path` (`-`: standard input).
fn read_text(path: &Path) -> Result<String, CsvError> {
    if path == Path::new("-") {
        std::io::read_to_string(std::io::stdin())
    } else {
        std::fs::read_to_string(path)
    }
    .map_err(|source| CsvError::Io {
        path: path.to_path_buf(),
        source,
    })
}

/// Parses CSV `text` read from `path` (see [`read`]).
pub fn parse(
    text: &str,
    path: &Path,
    value_column: &str,
    tag_columns: &[String],
) -> Result<Table, CsvError> {
    parse_with(text, path, value_column, tag_columns, true)
}

/// The lines of `text` that hold a header or data, numbered from 0: `#` lines are comments
/// (InfluxDB's annotated CSV puts its datatypes there).
fn data_lines(text: &str) -> impl Iterator<Item = (usize, &str)> {
    text.lines()
        .enumerate()
        .filter(|(_, l)| !l.trim().is_empty() && !l.starts_with('#'))
}

/// A header line's delimiter (a comma, else a semicolon or tab when it has one) and its
/// column names, trimmed and lower-cased.
fn split_header(header: &str) -> (char, Vec<String>) {
    let header = header.trim_start_matches('\u{feff}');
    let delimiter = [',', ';', '\t']
        .into_iter()
        .find(|d| header.contains(*d))
        .unwrap_or(',');
    let names = split_line(header, delimiter)
        .iter()
        .map(|h| h.trim().to_ascii_lowercase())
        .collect();
    (delimiter, names)
}

/// [`read_lenient`] of one file of a folder of exports: a long-format file (its header names
/// every one of `tag_columns`) is read with them, any other as one series without tags
/// (`timestamp,value`, named by the file). The flag says whether it was read as long format.
pub fn read_lenient_any(
    path: &Path,
    value_column: &str,
    tag_columns: &[String],
) -> Result<(Table, bool), CsvError> {
    let text = read_text(path)?;
    let long = !tag_columns.is_empty()
        && data_lines(&text).next().is_some_and(|(_, h)| {
            let names = split_header(h).1;
            tag_columns
                .iter()
                .all(|t| names.contains(&t.to_ascii_lowercase()))
        });
    let tags = if long { tag_columns } else { &[] };
    Ok((parse_with(&text, path, value_column, tags, false)?, long))
}

/// Parses `text`; a row that cannot be read is the error when `strict`, else it goes to
/// [`Table::bad_rows`].
fn parse_with(
    text: &str,
    path: &Path,
    value_column: &str,
    tag_columns: &[String],
    strict: bool,
) -> Result<Table, CsvError> {
    let bad = |line: usize, problem: String| CsvError::Bad {
        path: path.to_path_buf(),
        line,
        problem,
    };
    let mut lines = data_lines(text);
    let (_, header) = lines.next().ok_or_else(|| {
        bad(
            1,
            "the file is empty: expected a header with `timestamp` and `value`".into(),
        )
    })?;
    let (delimiter, header) = split_header(header);
    let col = |name: &str| header.iter().position(|h| h == &name.to_ascii_lowercase());
    let ts_col = std::iter::once("timestamp")
        .chain(TIME_ALIASES.iter().copied())
        .find_map(&col);
    let val_col = if value_column.eq_ignore_ascii_case("value") {
        std::iter::once("value")
            .chain(VALUE_ALIASES.iter().copied())
            .find_map(&col)
    } else {
        col(value_column)
    };
    let ts_col = ts_col.ok_or_else(|| {
        bad(
            1,
            format!(
                "no `timestamp` column (nor {}) in the header (found: {})",
                TIME_ALIASES.join(", "),
                header.join(", ")
            ),
        )
    })?;
    let val_col = val_col.ok_or_else(|| {
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
    let layout = Layout {
        delimiter,
        ts: ts_col,
        value: val_col,
        tags: tag_cols,
    };
    let mut rows = Vec::new();
    let mut bad_rows = Vec::new();
    let mut form = None;
    for (i, line) in lines {
        let n = i + 1;
        match layout.row(line, n, &bad) {
            Ok((row, f)) => {
                // The latest row's form: a forecast continues from it (after a change to
                // summer time, at the summer offset).
                if form.is_none_or(|(latest, _)| row.point.ts >= latest) {
                    form = Some((row.point.ts, f));
                }
                rows.push(row);
            }
            Err(e) if strict => return Err(e),
            Err(e) => bad_rows.push(e),
        }
    }
    Ok(Table {
        rows,
        form: form.map_or(TimeForm::Plain { t: false, frac: 0 }, |(_, f)| f),
        bad_rows,
    })
}

/// Where a file's fields are: its delimiter and the columns of the timestamp, the value and
/// the tags.
struct Layout {
    delimiter: char,
    ts: usize,
    value: usize,
    tags: Vec<usize>,
}

impl Layout {
    /// One data line (line number `n`) as a row and the form of its timestamp.
    fn row(
        &self,
        line: &str,
        n: usize,
        bad: &impl Fn(usize, String) -> CsvError,
    ) -> Result<(Row, TimeForm), CsvError> {
        let cells = split_line(line, self.delimiter);
        let cell = |c: usize| {
            cells.get(c).map(|s| s.trim()).ok_or_else(|| {
                bad(
                    n,
                    format!("expected at least {} columns, found {}", c + 1, cells.len()),
                )
            })
        };
        let raw_ts = cell(self.ts)?;
        let (ts, f) = parse_timestamp(raw_ts).ok_or_else(|| {
            bad(
                n,
                format!("`{raw_ts}` is not a timestamp (YYYY-MM-DD[ HH:MM[:SS]], RFC 3339 or Unix time)"),
            )
        })?;
        let raw_val = cell(self.value)?;
        let value = match raw_val.to_ascii_lowercase().as_str() {
            "" | "nan" | "null" | "na" => f64::NAN,
            _ => raw_val
                .parse::<f64>()
                .or_else(|e| match self.delimiter {
                    // Where `;` separates fields, `,` is the decimal mark.
                    ';' => raw_val.replace(',', ".").parse::<f64>(),
                    _ => Err(e),
                })
                .map_err(|_| bad(n, format!("`{raw_val}` is not a number")))?,
        };
        let tags = self
            .tags
            .iter()
            .map(|&c| cell(c).map(str::to_string))
            .collect::<Result<Vec<_>, _>>()?;
        let row = Row {
            raw_ts: raw_ts.to_string(),
            point: Point { ts, value },
            tags,
        };
        Ok((row, f))
    }
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
        let e = parse("when,value\n", p, "value", &[])
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
    fn other_exports_are_read() {
        let p = Path::new("x.csv");
        let read = |text: &str| {
            let t = parse(text, p, "value", &[]).unwrap_or_else(|e| panic!("{e}\n{text}"));
            t.rows
                .iter()
                .map(|r| (r.point.ts, r.point.value))
                .collect::<Vec<_>>()
        };
        let want = vec![(1_577_836_800, 1.5), (1_577_840_400, 2.0)];
        // Prophet's columns.
        assert_eq!(
            read("ds,y\n2020-01-01 00:00:00,1.5\n2020-01-01 01:00:00,2\n"),
            want
        );
        // InfluxDB 2's annotated CSV export.
        assert_eq!(
            read(
                "#datatype,string,long,dateTime:RFC3339,double,string\n\
                 #group,false,false,false,false,true\n\
                 ,result,table,_time,_value,_field\n\
                 ,_result,0,2020-01-01T00:00:00Z,1.5,viewers\n\
                 ,_result,0,2020-01-01T01:00:00Z,2,viewers\n"
            ),
            want
        );
        // Output follows the latest row's offset (here summer time's).
        let t = parse(
            "timestamp,value\n2024-03-31T01:00:00+01:00,1\n2024-03-31T03:00:00+02:00,2\n",
            p,
            "value",
            &[],
        )
        .unwrap();
        assert_eq!(
            crate::timefmt::format_timestamp(t.rows[1].point.ts + 3600, t.form),
            "2024-03-31T04:00:00+02:00"
        );
        // A spreadsheet in a locale with decimal commas, and a tab-separated file.
        assert_eq!(
            read("Date;Value\n2020-01-01 00:00;1,5\n2020-01-01 01:00;2\n"),
            want
        );
        assert_eq!(
            read("time\tvalue\n2020-01-01 00:00:00\t1.5\n2020-01-01 01:00:00\t2\n"),
            want
        );
        // `timestamp` and `value` come first when there are several candidates.
        assert_eq!(
            read(
                "date,timestamp,y,value\nx,2020-01-01 00:00:00,9,1.5\ny,2020-01-01 01:00:00,9,2\n"
            ),
            want
        );
    }

    #[test]
    fn split_handles_quotes() {
        assert_eq!(
            split_line(r#"a,"b,""c""",d"#, ','),
            vec!["a", "b,\"c\"", "d"]
        );
    }
}
