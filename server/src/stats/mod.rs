//! Download statistics (SPEC §7): what is captured on the hot paths, how daily roll-ups are
//! maintained, and the queries every report (JSON, CSV, HTML) answers from.
//!
//! - Capture: `getAvailableReleases`/`getLatestRelease` send a [`capture::CheckEvent`]; a
//!   counted download sends a [`capture::DownloadEvent`] when its response body ends (or is
//!   dropped), with the bytes it delivered. Both go through the bounded queue of
//!   [`crate::recorder`]; a full queue drops the event and counts it, never blocks.
//! - Roll-ups: each batch is turned into raw rows plus deltas of the daily roll-up tables by
//!   the plain functions of [`rollup`], and written in one transaction.
//! - A download is *counted* when a request for the file's first byte is served through a
//!   counted link (no `Range`, a range from 0, or a range ignored for a stale `If-Range`);
//!   a request that starts later continues a download and never counts anew. So separate
//!   downloads through one link count separately, and a download resumed in many ranges counts
//!   once. HEAD never counts. Each link (token and file; key hash, file and UTC day for
//!   `getModuleFile` with a key hash) has one raw row with its `starts` and `completions`;
//!   every request adds its `bytes`, and everything is attributed to the day and attributes of
//!   the link's first recorded request. A response *completes* a download when it delivered
//!   the file's last byte, i.e. a response whose range ends at the end of the file was
//!   streamed to the connection to its end (for a redirect to a presigned URL: a redirect for
//!   such a range); a link counts `min(completions, starts)` completed downloads, never more
//!   than its downloads. The roll-ups get the difference a batch makes to those counts, so the
//!   totals do not depend on the order in which the requests of a download are written.
//! - An *installation* is the license key for paid distributions, or the client address
//!   (hashed with the per-install salt in `data_dir/stats-salt`) for free ones, plus CONF.

pub mod audience;
pub mod capture;
pub mod chart;
pub mod query;
pub mod rollup;
