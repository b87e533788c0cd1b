//! Query-string parsing: known parameters are validated, every other key is a tag filter.

use super::ApiError;
use crate::timefmt::{parse_duration, parse_time};

#[derive(Debug, Default)]
pub struct Params {
    pub known: Vec<(String, String)>,
    pub filters: Vec<(String, String)>,
    pub format: Option<String>,
}

impl Params {
    pub fn parse(q: Option<&str>, known: &[&str]) -> Result<Self, ApiError> {
        let pairs: Vec<(String, String)> = serde_urlencoded::from_str(q.unwrap_or(""))
            .map_err(|e| ApiError::bad("query", e.to_string()))?;
        let mut p = Params::default();
        for (k, v) in pairs {
            if known.contains(&k.as_str()) {
                if p.known.iter().any(|(x, _)| *x == k) {
                    return Err(ApiError::bad(&k, "given more than once".into()));
                }
                if k == "format" {
                    p.format = Some(v.clone());
                }
                p.known.push((k, v));
            } else {
                p.filters.push((k, v));
            }
        }
        Ok(p)
    }

    fn get(&self, k: &str) -> Option<&str> {
        self.known
            .iter()
            .find(|(x, _)| x == k)
            .map(|(_, v)| v.as_str())
    }

    pub fn duration(&self, k: &str) -> Result<Option<i64>, ApiError> {
        self.get(k)
            .map(|v| parse_duration(v).map_err(|e| ApiError::bad(k, e)))
            .transpose()
    }

    pub fn number(&self, k: &str) -> Result<Option<f64>, ApiError> {
        self.get(k)
            .map(|v| {
                v.parse::<f64>()
                    .ok()
                    .filter(|x| x.is_finite())
                    .ok_or_else(|| ApiError::bad(k, format!("`{v}` is not a number")))
            })
            .transpose()
    }

    /// An RFC 3339 time, or a duration meaning that long before `now` (`since=24h`).
    pub fn time(&self, k: &str, now: i64) -> Result<Option<i64>, ApiError> {
        self.get(k)
            .map(|v| {
                parse_time(v)
                    .or_else(|e| parse_duration(v).map(|d| now - d).map_err(|_| e))
                    .map_err(|e| ApiError::bad(k, e))
            })
            .transpose()
    }

    pub fn format_ok(&self) -> Result<(), ApiError> {
        match self.format.as_deref() {
            None | Some("json") | Some("csv") => Ok(()),
            Some(f) => Err(ApiError::bad("format", format!("`{f}` is not json or csv"))),
        }
    }
}
