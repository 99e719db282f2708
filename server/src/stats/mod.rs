//! Download statistics (SPEC §7): what is captured on the hot paths, how daily roll-ups are
//! maintained, and the queries every report (JSON, CSV, HTML) answers from.
//!
//! - Capture: `getAvailableReleases`/`getLatestRelease` send a [`capture::CheckEvent`]; a
//!   counted download sends a [`capture::DownloadEvent`] when its response body ends (or is
//!   dropped), with the bytes it delivered. Both go through the bounded queue of
//!   [`crate::recorder`]; a full queue drops the event and counts it, never blocks.
//! - Roll-ups: each batch is turned into raw rows plus deltas of the daily roll-up tables by
//!   the plain functions of [`rollup`], and written in one transaction.
//! - A download is *counted* once per dedup key (token and file, or key hash and file), on the
//!   day of its first request. Its `bytes` add up across every request of that key (resumes
//!   included). It is *completed* when some request of it delivered the file's last byte,
//!   i.e. a response whose range ends at the end of the file was streamed to the connection
//!   to its end (for a redirect to a presigned URL: a redirect for such a range).
//! - An *installation* is the license key for paid distributions, or the client address
//!   (hashed with the per-install salt in `data_dir/stats-salt`) for free ones, plus CONF.

pub mod capture;
pub mod chart;
pub mod query;
pub mod rollup;
