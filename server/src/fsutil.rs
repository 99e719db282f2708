//! Small file helpers for secrets in the data directory.

use std::io::Write;
use std::path::Path;

/// Writes a secret readable by the owner only, replacing any previous file atomically.
pub fn write_private(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let tmp = path.with_extension("tmp");
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    let mut file = options.open(&tmp)?;
    file.write_all(bytes)?;
    file.sync_all()?;
    std::fs::rename(&tmp, path)
}

/// Reads a secret, or creates it with `make` on first use.
pub fn read_or_create_secret(
    path: &Path,
    make: impl FnOnce() -> Vec<u8>,
) -> std::io::Result<Vec<u8>> {
    if path.exists() {
        let bytes = std::fs::read(path)?;
        if !bytes.is_empty() {
            return Ok(bytes);
        }
    }
    let bytes = make();
    write_private(path, &bytes)?;
    Ok(bytes)
}
