//! md5 and sha256 of a stream, each on its own thread, beside whatever produces the bytes.
//!
//! Why threads: md5 is serial by construction (every block depends on the one before), so one
//! core hashing md5 at its full speed is the floor of a verified download; sha256 (SHA-NI where
//! the CPU has it) runs on another core instead of after md5 on the same one, and the reading
//! and writing stay on the caller's thread. Done in one thread, the three add up; done like
//! this, the slowest of them (md5) sets the pace.
//!
//! The bytes are handed over without copying: the caller fills a buffer taken from
//! [`Digester::buffer`] and gives it back with [`Digester::push`]; both hash threads share it
//! (`Arc`), and whichever finishes with it last sends it back for reuse. At most [`BUFFERS`]
//! buffers of [`CHUNK`] bytes exist, so memory stays bounded and a slow hash thread holds the
//! caller back instead of letting data pile up (the channels need no bound of their own: the
//! buffers are the bound). The buffers are page-aligned, so the caller can write them to a file
//! opened for direct I/O. Below [`INLINE_LIMIT`] bytes nothing is spawned: a small file is
//! hashed inline, where threads would cost more than they save.

use std::fs::File;
use std::io::{self, Read, Seek, SeekFrom};
use std::ops::{Deref, DerefMut};
use std::path::Path;
use std::sync::Arc;
use std::sync::mpsc::{self, Receiver, Sender};
use std::thread::{self, JoinHandle};

use md5::{Digest, Md5};
use sha2::Sha256;

/// Size of one buffer handed to the hash threads.
pub const CHUNK: usize = 1 << 20;
/// Buffers in flight at most (between the caller, the channels and the two hash threads).
pub const BUFFERS: usize = 4;
/// Up to this many bytes are hashed on the caller's thread; the threads start past it.
pub const INLINE_LIMIT: u64 = 1 << 20;
/// Alignment of a [`Buffer`]'s bytes in memory: a page, what direct I/O wants.
pub const ALIGN: usize = 4096;

/// The digests of everything pushed, lowercase hex.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Digests {
    pub md5: String,
    pub sha256: String,
}

/// md5 and sha256 of a stream of buffers; see the module documentation.
pub struct Digester {
    state: State,
    /// Buffers ready for reuse.
    spare: Vec<Buffer>,
    /// Buffers allocated so far (never more than [`BUFFERS`]).
    allocated: usize,
}

enum State {
    Inline { md5: Md5, sha256: Sha256, fed: u64 },
    Threads(Pipeline),
}

/// [`CHUNK`] bytes at an [`ALIGN`]-aligned address (so the caller may write them to a file
/// opened for direct I/O), from [`Digester::buffer`].
pub struct Buffer {
    vec: Vec<u8>,
    start: usize,
}

impl Buffer {
    fn new() -> Buffer {
        let vec = vec![0u8; CHUNK + ALIGN];
        // Moving the `Vec` does not move its bytes, so the offset stays right.
        let start = match vec.as_ptr().align_offset(ALIGN) {
            o if o < ALIGN => o,
            _ => 0,
        };
        Buffer { vec, start }
    }
}

impl Deref for Buffer {
    type Target = [u8];
    fn deref(&self) -> &[u8] {
        &self.vec[self.start..self.start + CHUNK]
    }
}

impl DerefMut for Buffer {
    fn deref_mut(&mut self) -> &mut [u8] {
        &mut self.vec[self.start..self.start + CHUNK]
    }
}

/// One filled buffer, shared by the two hash threads.
struct Chunk {
    buf: Buffer,
    len: usize,
}

struct Pipeline {
    md5: Sender<Arc<Chunk>>,
    sha256: Sender<Arc<Chunk>>,
    returned: Receiver<Buffer>,
    md5_thread: JoinHandle<Md5>,
    sha256_thread: JoinHandle<Sha256>,
}

impl Default for Digester {
    fn default() -> Digester {
        Digester::new()
    }
}

impl Digester {
    /// A digester of nothing yet; no thread is started before [`INLINE_LIMIT`] bytes arrived.
    pub fn new() -> Digester {
        Digester {
            state: State::Inline {
                md5: Md5::new(),
                sha256: Sha256::new(),
                fed: 0,
            },
            spare: Vec::new(),
            allocated: 0,
        }
    }

    /// A buffer of [`CHUNK`] bytes to fill and give back with [`push`](Self::push). Its
    /// contents are whatever an earlier chunk left. Blocks while all [`BUFFERS`] are in use,
    /// i.e. until a hash thread is done with one (so hold one buffer at a time).
    pub fn buffer(&mut self) -> Buffer {
        if let Some(buf) = self.spare.pop() {
            return buf;
        }
        if let State::Threads(p) = &self.state {
            if let Ok(buf) = p.returned.try_recv() {
                return buf;
            }
            if self.allocated >= BUFFERS
                && let Ok(buf) = p.returned.recv()
            {
                return buf;
            }
            // Both hash threads are gone (only a panic does that): `finish` reports it.
        }
        self.allocated += 1;
        Buffer::new()
    }

    /// Hashes `buf[..len]`; `buf` came from [`buffer`](Self::buffer).
    pub fn push(&mut self, buf: Buffer, len: usize) {
        assert!(
            len <= buf.len(),
            "push of {len} bytes from a {}-byte buffer",
            buf.len()
        );
        if len == 0 {
            self.spare.push(buf);
            return;
        }
        if let State::Inline { md5, sha256, fed } = &mut self.state {
            if *fed + len as u64 <= INLINE_LIMIT {
                md5.update(&buf[..len]);
                sha256.update(&buf[..len]);
                *fed += len as u64;
                self.spare.push(buf);
                return;
            }
            match Pipeline::start(md5, sha256) {
                Some(p) => self.state = State::Threads(p),
                None => {
                    // No thread could be started: hash here, slower but right.
                    md5.update(&buf[..len]);
                    sha256.update(&buf[..len]);
                    self.spare.push(buf);
                    return;
                }
            }
        }
        if let State::Threads(p) = &self.state {
            let chunk = Arc::new(Chunk { buf, len });
            // A send fails only when that hash thread panicked: `finish` reports it.
            let _ = p.md5.send(Arc::clone(&chunk));
            let _ = p.sha256.send(chunk);
        }
    }

    /// Hashes up to `limit` bytes read from `reader` (to its end if it has fewer) and returns
    /// how many it read.
    pub fn read_from(&mut self, reader: &mut impl Read, limit: u64) -> io::Result<u64> {
        let mut total = 0u64;
        while total < limit {
            let mut buf = self.buffer();
            let want = usize::try_from(limit - total).map_or(buf.len(), |r| r.min(buf.len()));
            let n = fill(reader, &mut buf[..want]);
            let len = match n {
                Ok(n) => n,
                Err(e) => {
                    self.spare.push(buf);
                    return Err(e);
                }
            };
            self.push(buf, len);
            total += len as u64;
            if len < want {
                break;
            }
        }
        Ok(total)
    }

    /// Waits for the hash threads and returns the digests of everything pushed.
    pub fn finish(self) -> Digests {
        let (md5, sha256) = match self.state {
            State::Inline { md5, sha256, .. } => (md5, sha256),
            State::Threads(p) => {
                drop((p.md5, p.sha256, p.returned));
                let md5 = p.md5_thread.join();
                let sha256 = p.sha256_thread.join();
                match (md5, sha256) {
                    (Ok(md5), Ok(sha256)) => (md5, sha256),
                    (Err(panic), _) | (_, Err(panic)) => std::panic::resume_unwind(panic),
                }
            }
        };
        Digests {
            md5: hex::encode(md5.finalize()),
            sha256: hex::encode(sha256.finalize()),
        }
    }
}

impl Pipeline {
    /// Moves the hashing so far onto two threads; `None` if a thread cannot be started.
    fn start(md5: &Md5, sha256: &Sha256) -> Option<Pipeline> {
        let (back, returned) = mpsc::channel();
        let (md5_tx, md5_rx) = mpsc::channel();
        let (sha256_tx, sha256_rx) = mpsc::channel();
        let md5_thread = spawn("md5", md5.clone(), md5_rx, back.clone())?;
        let sha256_thread = spawn("sha256", sha256.clone(), sha256_rx, back)?;
        Some(Pipeline {
            md5: md5_tx,
            sha256: sha256_tx,
            returned,
            md5_thread,
            sha256_thread,
        })
    }
}

fn spawn<H: Digest + Send + 'static>(
    name: &str,
    mut hasher: H,
    chunks: Receiver<Arc<Chunk>>,
    back: Sender<Buffer>,
) -> Option<JoinHandle<H>> {
    thread::Builder::new()
        .name(format!("vypusk-{name}"))
        .spawn(move || {
            for chunk in chunks {
                hasher.update(&chunk.buf[..chunk.len]);
                // Exactly one of the two threads gets the buffer back out of the `Arc`.
                if let Some(chunk) = Arc::into_inner(chunk) {
                    let _ = back.send(chunk.buf);
                }
            }
            hasher
        })
        .ok()
}

/// Reads until `buf` is full or the reader ends; returns how many bytes it read.
fn fill(reader: &mut impl Read, buf: &mut [u8]) -> io::Result<usize> {
    let mut n = 0;
    while n < buf.len() {
        match reader.read(&mut buf[n..]) {
            Ok(0) => break,
            Ok(k) => n += k,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(n)
}

/// Length and digests of the whole file at `path`.
pub fn hash_file(path: &Path) -> io::Result<(u64, Digests)> {
    let mut file = File::open(path)?;
    let mut digester = Digester::new();
    let len = digester.read_from(&mut file, u64::MAX)?;
    Ok((len, digester.finish()))
}

/// A digester fed with the first `len` bytes of `file` (the part kept from an interrupted
/// download); the file's position is then `len`. Fails if the file is shorter.
pub fn hash_prefix(file: &mut File, len: u64) -> io::Result<Digester> {
    file.seek(SeekFrom::Start(0))?;
    let mut digester = Digester::new();
    if digester.read_from(file, len)? != len {
        return Err(io::Error::new(
            io::ErrorKind::UnexpectedEof,
            "partial file shrank",
        ));
    }
    Ok(digester)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    fn one_shot(data: &[u8]) -> Digests {
        Digests {
            md5: hex::encode(Md5::digest(data)),
            sha256: hex::encode(Sha256::digest(data)),
        }
    }

    /// Pushes `data` in pieces of `piece` bytes (each through its own buffer).
    fn pushed(data: &[u8], piece: usize) -> Digests {
        let mut d = Digester::new();
        for part in data.chunks(piece) {
            let mut buf = d.buffer();
            assert_eq!(buf.len(), CHUNK);
            assert_eq!(buf.as_ptr().align_offset(ALIGN), 0);
            buf[..part.len()].copy_from_slice(part);
            d.push(buf, part.len());
        }
        d.finish()
    }

    /// Bytes that are not all alike, so a misplaced chunk changes the digests.
    fn bytes(len: usize) -> Vec<u8> {
        let mut x = 0x9e37_79b9_u32;
        (0..len)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 17;
                x ^= x << 5;
                x as u8
            })
            .collect()
    }

    #[test]
    fn empty() {
        assert_eq!(Digester::new().finish(), one_shot(b""));
        assert_eq!(
            Digester::new().finish(),
            Digests {
                md5: "d41d8cd98f00b204e9800998ecf8427e".into(),
                sha256: "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855".into(),
            }
        );
        let mut d = Digester::new();
        let buf = d.buffer();
        d.push(buf, 0);
        assert_eq!(d.finish(), one_shot(b""));
    }

    #[test]
    fn tiny() {
        assert_eq!(pushed(b"abc", 1), one_shot(b"abc"));
        assert_eq!(
            pushed(b"abc", 3).md5,
            "900150983cd24fb0d6963f7d28e17f72" // RFC 1321
        );
    }

    #[test]
    fn pieces_that_do_not_divide_the_total() {
        let data = bytes(3 * CHUNK + 12_345);
        let want = one_shot(&data);
        for piece in [7, 4_093, 65_537, CHUNK - 1, CHUNK] {
            assert_eq!(pushed(&data, piece), want, "pieces of {piece} bytes");
        }
    }

    #[test]
    fn several_mib_through_the_threads() {
        // Past INLINE_LIMIT and past BUFFERS × CHUNK, so buffers are reused.
        let data = bytes(13 * CHUNK + 1);
        let want = one_shot(&data);
        assert_eq!(pushed(&data, CHUNK), want);
        let mut d = Digester::new();
        assert_eq!(
            d.read_from(&mut &data[..], u64::MAX).unwrap(),
            data.len() as u64
        );
        assert_eq!(d.finish(), want);
        let mut d = Digester::new();
        assert_eq!(d.read_from(&mut &data[..], 5_000_000).unwrap(), 5_000_000);
        assert_eq!(d.finish(), one_shot(&data[..5_000_000]));
    }

    #[test]
    fn right_at_the_inline_limit() {
        let limit = INLINE_LIMIT as usize;
        for len in [limit - 1, limit, limit + 1] {
            let data = bytes(len);
            assert_eq!(pushed(&data, 1000), one_shot(&data), "{len} bytes");
        }
    }

    #[test]
    fn files() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("f");
        let data = bytes(5 * CHUNK + 3);
        std::fs::File::create(&path)
            .unwrap()
            .write_all(&data)
            .unwrap();
        assert_eq!(
            hash_file(&path).unwrap(),
            (data.len() as u64, one_shot(&data))
        );

        let mut file = File::open(&path).unwrap();
        let mut d = hash_prefix(&mut file, 2 * CHUNK as u64 + 1).unwrap();
        assert_eq!(file.stream_position().unwrap(), 2 * CHUNK as u64 + 1);
        // The rest of the stream continues the same digests.
        d.read_from(&mut file, u64::MAX).unwrap();
        assert_eq!(d.finish(), one_shot(&data));

        let err = hash_prefix(&mut file, data.len() as u64 + 1).err().unwrap();
        assert_eq!(err.kind(), io::ErrorKind::UnexpectedEof);

        let empty = dir.path().join("empty");
        std::fs::File::create(&empty).unwrap();
        assert_eq!(hash_file(&empty).unwrap(), (0, one_shot(b"")));
        assert!(hash_file(&dir.path().join("missing")).is_err());
    }
}
