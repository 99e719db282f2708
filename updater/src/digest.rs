//! md5 + sha256 of a stream (placeholder with the pipeline's interface; replaced by the
//! threaded pipeline).

use std::io::Read;
use std::path::Path;

use md5::{Digest, Md5};
use sha2::Sha256;

pub struct Digests {
    pub md5: String,
    pub sha256: String,
}

pub struct Digester {
    md5: Md5,
    sha: Sha256,
}

impl Digester {
    pub fn new() -> Digester {
        Digester {
            md5: Md5::new(),
            sha: Sha256::new(),
        }
    }
    pub fn update(&mut self, chunk: &[u8]) {
        self.md5.update(chunk);
        self.sha.update(chunk);
    }
    pub fn finish(self) -> Digests {
        Digests {
            md5: hex::encode(self.md5.finalize()),
            sha256: hex::encode(self.sha.finalize()),
        }
    }
}

pub fn hash_file(path: &Path) -> std::io::Result<(u64, Digests)> {
    let mut file = std::fs::File::open(path)?;
    let mut d = Digester::new();
    let mut buf = vec![0u8; 256 * 1024];
    let mut len = 0u64;
    loop {
        let n = file.read(&mut buf)?;
        if n == 0 {
            break;
        }
        d.update(&buf[..n]);
        len += n as u64;
    }
    Ok((len, d.finish()))
}
