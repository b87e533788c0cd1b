//! viewcast: forecasts audience traffic per channel and flags anomalies.
//!
//! The modules follow the data's path through the daemon:
//! `config → scheduler → source → model → detect → sink / store → api, metrics`.
//! The command line (`cli`) drives the same code for one-off forecasts and replays.

pub mod api;
pub mod cli;
pub mod clock;
pub mod config;
pub mod csvio;
pub mod daemon;
pub mod detect;
pub mod engine;
pub mod influx;
pub mod metrics;
pub mod model;
pub mod scheduler;
pub mod series;
pub mod sink;
pub mod source;
pub mod store;
pub mod telemetry;
pub mod timefmt;
