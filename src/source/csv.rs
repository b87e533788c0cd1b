//! CSV exports as a source: one long-format file with tag columns, or a folder of files,
//! each either long format (its header has the tag columns) or `timestamp,value` (one
//! series, the file name is the channel). Files are re-read each poll and only rows newer
//! than those returned before are passed on.

use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;
use std::sync::Mutex;

use async_trait::async_trait;

use super::{SeriesUpdate, Source, SourceError};
use crate::csvio;
use crate::series::{infer_step, Point, SeriesKey};

#[derive(Debug)]
pub struct CsvSource {
    path: PathBuf,
    value_column: String,
    tag_columns: Vec<String>,
    cursors: Mutex<HashMap<SeriesKey, i64>>,
    /// The last problem logged per file: files are re-read every poll, and the same bad
    /// line is logged once, not every minute.
    reported: Mutex<HashMap<PathBuf, String>>,
    /// Per series, how many rows are dated after now (logged when that changes).
    early: Mutex<HashMap<SeriesKey, usize>>,
}

impl CsvSource {
    pub fn new(path: PathBuf, value_column: String, tag_columns: Vec<String>) -> Self {
        Self {
            path,
            value_column,
            tag_columns,
            cursors: Mutex::new(HashMap::new()),
            reported: Mutex::new(HashMap::new()),
            early: Mutex::new(HashMap::new()),
        }
    }

    fn read_all(&self) -> Result<BTreeMap<SeriesKey, Vec<Point>>, SourceError> {
        let err = |reason: String| SourceError::Read {
            what: self.path.display().to_string(),
            reason,
        };
        let mut series: BTreeMap<SeriesKey, Vec<Point>> = BTreeMap::new();
        if self.path.is_dir() {
            let mut files: Vec<PathBuf> = std::fs::read_dir(&self.path)
                .map_err(|e| err(e.to_string()))?
                .filter_map(|e| e.ok().map(|e| e.path()))
                .filter(|p| p.extension().is_some_and(|x| x == "csv"))
                .collect();
            files.sort();
            let tag = self.tag_columns.first().map_or("channel", String::as_str);
            for f in files {
                let Some(stem) = f.file_stem().and_then(|s| s.to_str()) else {
                    continue;
                };
                // One bad file never hides the others: it is logged and skipped. A file
                // with the tag columns is long format, like a single file: a folder of daily
                // exports of every channel.
                match csvio::read_lenient_any(&f, &self.value_column, &self.tag_columns) {
                    Ok((t, long)) => {
                        self.report(&f, &t.bad_rows);
                        for r in t.rows {
                            let key = if long {
                                self.key(r.tags)
                            } else {
                                SeriesKey::new([(tag, stem)])
                            };
                            series.entry(key).or_default().push(r.point);
                        }
                    }
                    Err(e) => self.report(&f, &[e]),
                }
            }
        } else {
            let t = csvio::read_lenient(&self.path, &self.value_column, &self.tag_columns)
                .map_err(|e| err(e.to_string()))?;
            self.report(&self.path, &t.bad_rows);
            for r in t.rows {
                series.entry(self.key(r.tags)).or_default().push(r.point);
            }
        }
        Ok(series)
    }

    /// The key of a long-format row with these values of the tag columns.
    fn key(&self, tags: Vec<String>) -> SeriesKey {
        SeriesKey::new(self.tag_columns.iter().cloned().zip(tags))
    }

    /// Logs what could not be read of `file` (a whole file, or rows left out of it), once
    /// until it changes. One mangled line of an export must not stop every series in it.
    fn report(&self, file: &std::path::Path, problems: &[csvio::CsvError]) {
        let summary = match problems {
            [] => String::new(),
            [only] => only.to_string(),
            [first, ..] => format!("{} problems, the first: {first}", problems.len()),
        };
        let mut reported = self.reported.lock().unwrap_or_else(|e| e.into_inner());
        let before = reported.get(file).map_or("", String::as_str);
        if summary != before && !summary.is_empty() {
            tracing::warn!(problem = %summary, "CSV source: left out what could not be read");
        }
        reported.insert(file.to_path_buf(), summary);
    }
}

#[async_trait]
impl Source for CsvSource {
    fn describe(&self) -> String {
        format!("csv ({})", self.path.display())
    }

    fn tag_keys(&self) -> Vec<String> {
        if self.tag_columns.is_empty() {
            vec!["channel".into()]
        } else {
            self.tag_columns.clone()
        }
    }

    /// Rows dated after `now` wait until their time comes: passed on, they would move the
    /// series' cursor past every row still to arrive (a stray year, 2204 for 2024, froze the
    /// series), and the engine has no use for observations from the future.
    async fn poll(&self, now: i64) -> Result<super::Poll, SourceError> {
        let all = self.read_all()?;
        let mut cursors = self.cursors.lock().unwrap_or_else(|e| e.into_inner());
        let mut early = self.early.lock().unwrap_or_else(|e| e.into_inner());
        let mut out = Vec::new();
        for (key, mut points) in all {
            points.sort_by_key(|p| p.ts);
            let due = points.partition_point(|p| p.ts <= now);
            let later = points.len() - due;
            if later == 0 {
                early.remove(&key);
            } else if early.insert(key.clone(), later) != Some(later) {
                tracing::warn!(
                    series = %key,
                    rows = later,
                    first = %crate::clock::rfc3339(points[due].ts),
                    "CSV source: rows dated after now are left out until their time comes"
                );
            }
            points.truncate(due);
            let ts: Vec<i64> = points.iter().map(|p| p.ts).collect();
            let Some(step) = infer_step(&ts) else {
                continue;
            };
            let cursor = cursors.get(&key).copied().unwrap_or(i64::MIN);
            points.retain(|p| p.ts > cursor);
            if let Some(last) = points.last() {
                cursors.insert(key.clone(), last.ts);
                out.push(SeriesUpdate { key, step, points });
            }
        }
        Ok(out.into())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A poll time after every row of the tests (2033).
    const NOW: i64 = 2_000_000_000;

    #[tokio::test]
    async fn folder_of_files_and_incremental_reads() {
        let dir = tempfile::tempdir().unwrap();
        let a = dir.path().join("news.csv");
        std::fs::write(
            &a,
            "timestamp,value\n2020-01-01 00:00:00,1\n2020-01-01 01:00:00,2\n",
        )
        .unwrap();
        std::fs::write(dir.path().join("broken.csv"), "nope\n").unwrap();
        let src = CsvSource::new(
            dir.path().to_path_buf(),
            "value".into(),
            vec!["channel".into()],
        );
        let first = src.poll(NOW).await.unwrap().updates;
        assert_eq!(first.len(), 1);
        assert_eq!(first[0].key.to_string(), "channel=news");
        assert_eq!(first[0].step, 3600);
        std::fs::write(&a, "timestamp,value\n2020-01-01 00:00:00,1\n2020-01-01 01:00:00,2\n2020-01-01 02:00:00,3\n").unwrap();
        let next = src.poll(NOW).await.unwrap().updates;
        assert_eq!(
            next[0].points,
            vec![Point {
                ts: 1_577_844_000,
                value: 3.0
            }]
        );
    }

    #[tokio::test]
    async fn long_format_file_fans_out_by_tag() {
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("all.csv");
        std::fs::write(&f, "timestamp,channel,value\n2020-01-01 00:00:00,a,1\n2020-01-01 00:00:00,b,5\n2020-01-01 01:00:00,a,2\n2020-01-01 01:00:00,b,6\n").unwrap();
        let src = CsvSource::new(f, "value".into(), vec!["channel".into()]);
        let got = src.poll(NOW).await.unwrap().updates;
        assert_eq!(got.len(), 2);
        assert_eq!(got[1].points[1].value, 6.0);
    }

    /// A row dated after now (a stray year: 2204 for 2024) waits for its time instead of
    /// moving the cursor past the rows still to come: it froze the series.
    #[tokio::test]
    async fn rows_dated_after_now_wait_for_their_time() {
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("news.csv");
        let rows = |hours: usize| {
            (0..hours)
                .map(|h| format!("2020-01-01 {h:02}:00:00,{h}\n"))
                .collect::<String>()
        };
        std::fs::write(
            &f,
            format!("timestamp,value\n{}2204-01-01 00:00:00,7\n", rows(2)),
        )
        .unwrap();
        let src = CsvSource::new(dir.path().to_path_buf(), "value".into(), Vec::new());
        let got = src.poll(NOW).await.unwrap().updates;
        assert_eq!(got[0].points.len(), 2);
        assert_eq!(got[0].step, 3600);
        std::fs::write(
            &f,
            format!("timestamp,value\n{}2204-01-01 00:00:00,7\n", rows(3)),
        )
        .unwrap();
        let got = src.poll(NOW).await.unwrap().updates;
        assert_eq!(
            got[0].points,
            vec![Point {
                ts: 1_577_844_000,
                value: 2.0
            }]
        );
    }

    /// A folder may hold long-format files too (a daily export of every channel): each fans
    /// out by its tag columns and the files' rows of one series are joined, beside the
    /// `timestamp,value` files named by their channel. Such a folder was one series per
    /// file: 30 car parks in one export became one series named after the file.
    #[tokio::test]
    async fn long_format_files_in_a_folder_fan_out_and_join() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            dir.path().join("day1.csv"),
            "timestamp,channel,value\n2020-01-01 00:00:00,a,1\n2020-01-01 00:00:00,b,5\n\
             2020-01-01 01:00:00,a,2\n",
        )
        .unwrap();
        std::fs::write(
            dir.path().join("day2.csv"),
            "Timestamp;Channel;Value\n2020-01-01 02:00:00;b;7\n2020-01-01 02:00:00;a;3\n",
        )
        .unwrap();
        std::fs::write(
            dir.path().join("news.csv"),
            "timestamp,value\n2020-01-01 00:00:00,9\n2020-01-01 01:00:00,8\n",
        )
        .unwrap();
        let src = CsvSource::new(
            dir.path().to_path_buf(),
            "value".into(),
            vec!["channel".into()],
        );
        let got = src.poll(NOW).await.unwrap().updates;
        let seen: Vec<(String, Vec<f64>)> = got
            .iter()
            .map(|u| {
                (
                    u.key.to_string(),
                    u.points.iter().map(|p| p.value).collect(),
                )
            })
            .collect();
        assert_eq!(
            seen,
            [
                ("channel=a".to_string(), vec![1.0, 2.0, 3.0]),
                ("channel=b".to_string(), vec![5.0, 7.0]),
                ("channel=news".to_string(), vec![9.0, 8.0]),
            ]
        );
    }

    /// A mangled line (a bad value, a bad timestamp, a cut-off row) is left out and the rest
    /// of the file read: it failed the whole poll, every series of the file with it.
    #[tokio::test]
    async fn bad_rows_are_left_out_and_the_rest_read() {
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("all.csv");
        std::fs::write(
            &f,
            "timestamp,channel,value\n2020-01-01 00:00:00,a,1\n2020-01-01 00:00:00,b,abc\n\
             yesterday,a,3\n2020-01-01 01:00:00\n2020-01-01 01:00:00,a,2\n2020-01-01 01:00:00,b,6\n\
             2020-01-01 02:00:00,b,7\n",
        )
        .unwrap();
        let src = CsvSource::new(f, "value".into(), vec!["channel".into()]);
        let got = src.poll(NOW).await.unwrap().updates;
        let values = |i: usize| got[i].points.iter().map(|p| p.value).collect::<Vec<_>>();
        assert_eq!(got.len(), 2);
        assert_eq!(values(0), [1.0, 2.0]);
        assert_eq!(values(1), [6.0, 7.0]);

        // The same in a folder of files: the file's good rows are kept.
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            dir.path().join("news.csv"),
            "timestamp,value\n2020-01-01 00:00:00,1\n2020-01-01 01:00:00,n/a\n2020-01-01 02:00:00,3\n",
        )
        .unwrap();
        let src = CsvSource::new(dir.path().to_path_buf(), "value".into(), Vec::new());
        let got = src.poll(NOW).await.unwrap().updates;
        assert_eq!(got.len(), 1);
        assert_eq!(got[0].points.len(), 2);
        // A header without the columns is still an error for a single file.
        let f = dir.path().join("bad.csv");
        std::fs::write(&f, "when,what\n1,2\n").unwrap();
        let src = CsvSource::new(f, "value".into(), Vec::new());
        assert!(src.poll(NOW).await.is_err());
    }
}
