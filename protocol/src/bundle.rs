//! Offline bundles (issue 10): one file that carries a release to a machine without network
//! access, with everything needed to verify it there as an online install would.
//!
//! A bundle is an uncompressed POSIX tar (GNU long names for paths over 100 bytes) whose entries
//! come in this order, and only these:
//!
//! ```text
//! vypusk-bundle.json   BundleHeader: format, TYPE, version, the QueryID and the signature
//! answer.json          a getAvailableReleases answer, byte for byte as the server signed it
//! files/<name>         each file of that version, in the order of the answer's `files`
//! ```
//!
//! Trust comes from `answer.json` alone: its signature (`Licence-Signature` over QueryID bytes +
//! body, SPEC §4.7) is checked against the pinned key, its `server_time` says how old it is, and
//! the module whose `uniqid` is the header's `version` declares every file's size, md5 and
//! sha256. The header is not signed; it only says which signed module the bundle carries.
//! Files are streamed: an installer reads the entries in order and never holds a file in memory.

use serde::{Deserialize, Serialize};

/// Version of this layout; a reader refuses other values.
pub const FORMAT: u32 = 1;
/// Path of the header entry (first).
pub const HEADER_ENTRY: &str = "vypusk-bundle.json";
/// Path of the signed answer (second).
pub const ANSWER_ENTRY: &str = "answer.json";
/// Directory of the release's files (the rest).
pub const FILES_DIR: &str = "files/";
/// Largest header entry a reader accepts.
pub const MAX_HEADER: u64 = 64 * 1024;
/// Largest answer entry a reader accepts (the same cap as an answer read from the network).
pub const MAX_ANSWER: u64 = 16 << 20;
/// Tar block size: entries start on block boundaries.
pub const BLOCK: u64 = 512;
/// Two zero blocks end a tar archive.
pub const END_OF_ARCHIVE: [u8; 1024] = [0; 1024];
/// Media type of a bundle over HTTP.
pub const CONTENT_TYPE: &str = "application/x-tar";

/// `vypusk-bundle.json`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BundleHeader {
    pub format: u32,
    /// The distribution code (`TYPE`).
    #[serde(rename = "type")]
    pub distribution: String,
    /// The release version (`uniqid`) the bundle carries.
    pub version: String,
    /// The `Licence-QueryID` the answer was signed for.
    pub query_id: String,
    /// The answer's `Licence-Signature` (base64).
    pub signature: String,
    /// Who made the bundle: `vypusk-update/VERSION` or `vypusk/VERSION`.
    pub made_by: String,
}

/// What an entry path of a bundle is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EntryPath<'a> {
    Header,
    Answer,
    /// `files/<name>`; the name still has to pass `FileName::parse`.
    File(&'a str),
    Other,
}

impl<'a> EntryPath<'a> {
    pub fn classify(path: &'a str) -> EntryPath<'a> {
        match path {
            HEADER_ENTRY => EntryPath::Header,
            ANSWER_ENTRY => EntryPath::Answer,
            _ => match path.strip_prefix(FILES_DIR) {
                Some(name) => EntryPath::File(name),
                None => EntryPath::Other,
            },
        }
    }
}

/// Path of a release file's entry.
pub fn file_entry(name: &str) -> String {
    format!("{FILES_DIR}{name}")
}

/// The header block(s) of an entry of `size` bytes at `path`: one 512-byte block, preceded by a
/// GNU long-name entry when the path does not fit the header. The entry's bytes follow, then
/// [`padding`] zero bytes. For writers that stream entries themselves (the server).
pub fn entry_header(path: &str, size: u64, mtime: u64) -> std::io::Result<Vec<u8>> {
    let mut header = tar::Header::new_gnu();
    header.set_size(size);
    header.set_mode(0o644);
    header.set_mtime(mtime);
    header.set_entry_type(tar::EntryType::Regular);
    let mut builder = tar::Builder::new(Vec::with_capacity(1024));
    // With an empty reader the builder writes the header blocks only (the long-name entry
    // included) and no padding: exactly the bytes that precede the entry's content.
    builder.append_data(&mut header, path, std::io::empty())?;
    Ok(builder.get_ref().clone())
}

/// Zero bytes after an entry of `size` bytes, up to the next block.
pub fn padding(size: u64) -> usize {
    ((BLOCK - size % BLOCK) % BLOCK) as usize
}

/// Total length of a bundle whose file entries have these paths and sizes, for a
/// `Content-Length`: header and answer entries, files, end of archive.
pub fn bundle_len(header: &[u8], answer: &[u8], files: &[(String, u64)]) -> std::io::Result<u64> {
    let mut total = 0u64;
    let mut add = |path: &str, size: u64| -> std::io::Result<()> {
        total += entry_header(path, size, 0)?.len() as u64 + size + padding(size) as u64;
        Ok(())
    };
    add(HEADER_ENTRY, header.len() as u64)?;
    add(ANSWER_ENTRY, answer.len() as u64)?;
    for (name, size) in files {
        add(&file_entry(name), *size)?;
    }
    Ok(total + END_OF_ARCHIVE.len() as u64)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Read;

    /// Writes a bundle the way a streaming writer does and reads it back with the tar crate.
    #[test]
    fn streamed_entries_read_back_in_order_with_long_names() {
        let long = format!("{}.zip", "ы".repeat(100));
        let files = [
            ("PT40.zip".to_owned(), b"zip bytes".to_vec()),
            (long.clone(), vec![7u8; 513]),
        ];
        let header = br#"{"format":1}"#.to_vec();
        let answer = br#"{"modules":[],"result":""}"#.to_vec();
        let mut out = Vec::new();
        let mut put = |path: &str, bytes: &[u8]| {
            out.extend(entry_header(path, bytes.len() as u64, 1_700_000_000).unwrap());
            out.extend_from_slice(bytes);
            out.extend(std::iter::repeat_n(0u8, padding(bytes.len() as u64)));
        };
        put(HEADER_ENTRY, &header);
        put(ANSWER_ENTRY, &answer);
        for (name, bytes) in &files {
            put(&file_entry(name), bytes);
        }
        out.extend_from_slice(&END_OF_ARCHIVE);
        let sizes: Vec<(String, u64)> = files
            .iter()
            .map(|(n, b)| (n.clone(), b.len() as u64))
            .collect();
        assert_eq!(
            bundle_len(&header, &answer, &sizes).unwrap(),
            out.len() as u64
        );

        let mut archive = tar::Archive::new(&out[..]);
        let mut seen = Vec::new();
        for entry in archive.entries().unwrap() {
            let mut entry = entry.unwrap();
            let path = entry.path().unwrap().to_str().unwrap().to_owned();
            let mut bytes = Vec::new();
            entry.read_to_end(&mut bytes).unwrap();
            seen.push((path, bytes));
        }
        assert_eq!(seen.len(), 4);
        assert_eq!(EntryPath::classify(&seen[0].0), EntryPath::Header);
        assert_eq!(seen[0].1, header);
        assert_eq!(EntryPath::classify(&seen[1].0), EntryPath::Answer);
        assert_eq!(EntryPath::classify(&seen[2].0), EntryPath::File("PT40.zip"));
        assert_eq!(seen[2].1, b"zip bytes");
        assert_eq!(
            EntryPath::classify(&seen[3].0),
            EntryPath::File(long.as_str())
        );
        assert_eq!(seen[3].1, vec![7u8; 513]);
    }

    #[test]
    fn padding_reaches_the_next_block() {
        assert_eq!(padding(0), 0);
        assert_eq!(padding(1), 511);
        assert_eq!(padding(512), 0);
        assert_eq!(padding(513), 511);
    }
}
