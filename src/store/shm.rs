//! State shared by every process on the host: key and pool records in a memory-mapped file.
//!
//! The file is created with mode 0600 by its first user and holds fingerprints (key identities)
//! and counters, never keys. Its layout:
//!
//! - a header of `HEADER_WORDS` words: magic, layout version, file size, the boot it was made in,
//!   the arena's fill mark, and the two tables' sizes;
//! - the key table (`KEY_CAPACITY` entries of [id, id, offset, length]) and the pool table;
//! - the arena, where the records live (see `layout`).
//!
//! The hot path (admission, counters) is lock-free atomics on the mapping, the same code as the
//! in-process store. Only creating a record takes a lock: `flock` on a descriptor opened for the
//! occasion (a lock the kernel drops when its holder dies, and that a forked child never
//! inherits half-held). A record is published by bumping its table's count after it is written,
//! so readers never see half a record.
//!
//! Times in the records come from `CLOCK_MONOTONIC`, which restarts at boot: a file made in an
//! earlier boot is rebuilt. A file of another layout version, another owner, a loose mode or a
//! bad size is an error that says what to do, never undefined behaviour.

use super::layout::{KeyCell, PoolCell, Words, POOL_WORDS};
use super::{adopt, tier_word, KeySpec, Store};
use crate::error::Error;
use crate::key::KeyId;
use once_cell::sync::Lazy;
use std::collections::HashMap;
use std::fs::{File, OpenOptions};
use std::os::unix::fs::{MetadataExt, OpenOptionsExt};
use std::os::unix::io::AsRawFd;
use std::path::{Path, PathBuf};
use std::ptr::NonNull;
use std::sync::atomic::{AtomicU64, Ordering::Acquire, Ordering::Relaxed, Ordering::Release};
use std::sync::{Arc, Mutex};

/// "GRSTATE1" read as a little-endian u64.
const MAGIC: u64 = u64::from_le_bytes(*b"GRSTATE1");
/// Bumped whenever the meaning of any word changes.
pub const LAYOUT_VERSION: u64 = 1;

const HEADER_WORDS: usize = 512; // 4 KiB
const H_MAGIC: usize = 0;
const H_VERSION: usize = 1;
const H_FILE_BYTES: usize = 2;
const H_BOOT_ID: usize = 3; // two words
const H_ARENA_NEXT: usize = 5;
const H_KEY_COUNT: usize = 6;
const H_POOL_COUNT: usize = 7;

const ENTRY_WORDS: usize = 4;
const KEY_CAPACITY: usize = 65_536;
const POOL_CAPACITY: usize = 4_096;
const KEY_TABLE: usize = HEADER_WORDS;
const POOL_TABLE: usize = KEY_TABLE + KEY_CAPACITY * ENTRY_WORDS;
const ARENA: usize = POOL_TABLE + POOL_CAPACITY * ENTRY_WORDS;
/// The file's size. It is sparse: only the pages records touch take memory (about 8 bytes per
/// unit of a key's limit plus 160 bytes per key).
const FILE_BYTES: u64 = 256 << 20;
const FILE_WORDS: usize = (FILE_BYTES / 8) as usize;

/// The default place of the state file: `/dev/shm`, one file per user.
pub fn default_path() -> PathBuf {
    // SAFETY: geteuid cannot fail.
    let uid = unsafe { libc::geteuid() };
    PathBuf::from(format!("/dev/shm/gemini-rotator-{uid}.state"))
}

/// A mapped state file.
pub struct ShmFile {
    path: PathBuf,
    base: NonNull<AtomicU64>,
}

// SAFETY: the mapping is only accessed through atomics.
unsafe impl Send for ShmFile {}
unsafe impl Sync for ShmFile {}

impl Drop for ShmFile {
    fn drop(&mut self) {
        // SAFETY: we mapped exactly this range in `open`.
        unsafe { libc::munmap(self.base.as_ptr().cast(), FILE_BYTES as usize) };
    }
}

/// One mapping per file per process, shared by every pool that uses it.
static OPEN: Lazy<Mutex<HashMap<PathBuf, Arc<ShmFile>>>> = Lazy::new(Default::default);

fn state_error(path: &Path, what: impl std::fmt::Display) -> Error {
    Error::State {
        message: format!("{}: {what}", path.display()),
    }
}

/// This boot's identity (`/proc/sys/kernel/random/boot_id`), as two words.
fn boot_id() -> [u64; 2] {
    let text = std::fs::read_to_string("/proc/sys/kernel/random/boot_id").unwrap_or_default();
    let digest = crate::key::key_id(text.trim());
    [
        u64::from_le_bytes(digest[..8].try_into().unwrap()),
        u64::from_le_bytes(digest[8..].try_into().unwrap()),
    ]
}

/// An exclusive `flock` on a descriptor of its own, released when dropped.
struct FileLock(File);

impl FileLock {
    fn take(path: &Path) -> Result<FileLock, Error> {
        let file = open_file(path)?;
        loop {
            // SAFETY: a valid descriptor.
            if unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX) } == 0 {
                return Ok(FileLock(file));
            }
            let e = std::io::Error::last_os_error();
            if e.kind() != std::io::ErrorKind::Interrupted {
                return Err(state_error(path, format!("cannot lock: {e}")));
            }
        }
    }
}

impl Drop for FileLock {
    fn drop(&mut self) {
        // SAFETY: a valid descriptor; closing would release it too.
        unsafe { libc::flock(self.0.as_raw_fd(), libc::LOCK_UN) };
    }
}

/// Opens (creating with mode 0600) the state file and checks that it is ours to use.
fn open_file(path: &Path) -> Result<File, Error> {
    let file = OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .mode(0o600)
        .custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC)
        .open(path)
        .map_err(|e| {
            let hint = match e.raw_os_error() {
                Some(libc::ENOENT) => " (does its directory exist?)",
                Some(libc::EACCES) | Some(libc::EROFS) | Some(libc::EPERM) => {
                    " (the directory or file is not writable: choose another place with GEMINI_ROTATOR_STATE=shm:/path, or GEMINI_ROTATOR_STATE=memory)"
                }
                Some(libc::ELOOP) => " (it is a symbolic link, which is refused)",
                _ => "",
            };
            state_error(path, format!("cannot open the state file: {e}{hint}"))
        })?;
    let meta = file
        .metadata()
        .map_err(|e| state_error(path, format!("cannot stat: {e}")))?;
    // SAFETY: geteuid cannot fail.
    let me = unsafe { libc::geteuid() };
    if meta.uid() != me {
        return Err(state_error(
            path,
            format!("belongs to uid {}, not to this user (uid {me}): refusing to share state with another user", meta.uid()),
        ));
    }
    if !meta.is_file() {
        return Err(state_error(path, "is not a regular file"));
    }
    if meta.mode() & 0o077 != 0 {
        return Err(state_error(
            path,
            format!(
                "has mode {:04o}; a state file must be private to its user (0600)",
                meta.mode() & 0o7777
            ),
        ));
    }
    Ok(file)
}

impl ShmFile {
    /// The mapping of `path`, opened once per process.
    pub fn open(path: &Path) -> Result<Arc<ShmFile>, Error> {
        let mut open = OPEN.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(f) = open.get(path) {
            return Ok(f.clone());
        }
        let f = Arc::new(ShmFile::map(path)?);
        open.insert(path.to_path_buf(), f.clone());
        Ok(f)
    }

    fn map(path: &Path) -> Result<ShmFile, Error> {
        let lock = FileLock::take(path)?;
        let file = &lock.0;
        let size = file
            .metadata()
            .map_err(|e| state_error(path, format!("cannot stat: {e}")))?
            .len();
        // Read the header without mapping a file of unknown size.
        let mut header = [0u8; 64];
        let got = read_at(file, &mut header)
            .map_err(|e| state_error(path, format!("cannot read: {e}")))?;
        let word = |i: usize| u64::from_le_bytes(header[i * 8..i * 8 + 8].try_into().unwrap());
        let fresh = got < 64 || word(H_MAGIC) == 0;
        let mut rebuild = fresh;
        if !fresh {
            if word(H_MAGIC) != MAGIC {
                return Err(state_error(path, "is not a gemini-rotator state file (bad magic number); remove it or choose another path"));
            }
            if word(H_VERSION) != LAYOUT_VERSION {
                return Err(state_error(
                    path,
                    format!(
                        "has state layout version {}, and this library uses version {LAYOUT_VERSION}: \
                         another version of gemini-rotator uses it; stop those processes and remove the file, \
                         or give this one another path with GEMINI_ROTATOR_STATE=shm:/path",
                        word(H_VERSION)
                    ),
                ));
            }
            if word(H_FILE_BYTES) != FILE_BYTES || size != FILE_BYTES {
                return Err(state_error(
                    path,
                    format!("is corrupt: its header says {} bytes, the file has {size}, layout {LAYOUT_VERSION} uses {FILE_BYTES}; remove it", word(H_FILE_BYTES)),
                ));
            }
            // Made in an earlier boot: its monotonic times mean nothing now.
            let boot = boot_id();
            if [word(H_BOOT_ID), word(H_BOOT_ID + 1)] != boot {
                rebuild = true;
            }
        }
        if rebuild {
            // Zero it all: nobody of this boot can be using a file that is new or of a past boot.
            file.set_len(0)
                .and_then(|_| file.set_len(FILE_BYTES))
                .map_err(|e| state_error(path, format!("cannot size the state file: {e}")))?;
        }
        // SAFETY: mapping a file we hold open, of the size we just checked or set.
        let ptr = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                FILE_BYTES as usize,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_SHARED,
                file.as_raw_fd(),
                0,
            )
        };
        if ptr == libc::MAP_FAILED {
            return Err(state_error(
                path,
                format!("cannot map: {}", std::io::Error::last_os_error()),
            ));
        }
        let shm = ShmFile {
            path: path.to_path_buf(),
            base: NonNull::new(ptr.cast()).expect("mmap does not return NULL on success"),
        };
        if rebuild {
            let boot = boot_id();
            let w = |i: usize| shm.word(i);
            w(H_VERSION).store(LAYOUT_VERSION, Relaxed);
            w(H_FILE_BYTES).store(FILE_BYTES, Relaxed);
            w(H_BOOT_ID).store(boot[0], Relaxed);
            w(H_BOOT_ID + 1).store(boot[1], Relaxed);
            w(H_ARENA_NEXT).store(ARENA as u64, Relaxed);
            // The magic number last: a file whose maker died before here is made again.
            w(H_MAGIC).store(MAGIC, Release);
        }
        Ok(shm)
    }

    fn word(&self, i: usize) -> &AtomicU64 {
        debug_assert!(i < FILE_WORDS);
        // SAFETY: `i` is within the mapping, which lives as long as `self`.
        unsafe { &*self.base.as_ptr().add(i) }
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Bytes of the arena in use (the sparse file's real footprint is about this plus the
    /// header and the touched part of the tables).
    pub fn used_bytes(&self) -> u64 {
        self.word(H_ARENA_NEXT).load(Acquire) * 8
    }

    fn words(self: &Arc<Self>, offset: usize, len: usize) -> Words {
        // SAFETY: `offset..offset+len` is inside the mapping (checked at allocation), aligned,
        // and the Arc keeps the mapping alive.
        unsafe {
            Words::new(
                NonNull::new_unchecked(self.base.as_ptr().add(offset)),
                len,
                self.clone() as Arc<dyn Send + Sync>,
            )
        }
    }

    fn entry_id(&self, entry: usize) -> [u8; 16] {
        let mut id = [0u8; 16];
        id[..8].copy_from_slice(&self.word(entry).load(Relaxed).to_le_bytes());
        id[8..].copy_from_slice(&self.word(entry + 1).load(Relaxed).to_le_bytes());
        id
    }

    /// Finds the record `id` in a table, or allocates one of `len` words with `init`, under
    /// the file lock.
    fn find_or_create(
        self: &Arc<Self>,
        table: usize,
        count_word: usize,
        capacity: usize,
        id: &[u8; 16],
        len: usize,
        what: &str,
        init: impl FnOnce(&Words),
    ) -> Result<(Words, bool), Error> {
        if let Some(found) = self.find(table, count_word, id) {
            return Ok((found, false));
        }
        let _lock = FileLock::take(&self.path)?;
        if let Some(found) = self.find(table, count_word, id) {
            return Ok((found, false));
        }
        let count = self.word(count_word).load(Acquire) as usize;
        if count >= capacity {
            return Err(state_error(
                &self.path,
                format!("is full ({capacity} {what} records); remove it when no process uses it"),
            ));
        }
        let offset = self.word(H_ARENA_NEXT).load(Acquire) as usize;
        if offset + len > FILE_WORDS {
            return Err(state_error(
                &self.path,
                format!(
                    "is full ({} MiB of records); remove it when no process uses it",
                    FILE_BYTES >> 20
                ),
            ));
        }
        let words = self.words(offset, len);
        // A writer that died here before publishing may have left words behind.
        for w in words.as_slice() {
            w.store(0, Relaxed);
        }
        init(&words);
        let entry = table + count * ENTRY_WORDS;
        self.word(entry)
            .store(u64::from_le_bytes(id[..8].try_into().unwrap()), Relaxed);
        self.word(entry + 1)
            .store(u64::from_le_bytes(id[8..].try_into().unwrap()), Relaxed);
        self.word(entry + 2).store(offset as u64, Relaxed);
        self.word(entry + 3).store(len as u64, Relaxed);
        self.word(H_ARENA_NEXT)
            .store((offset + len) as u64, Release);
        // Publish: readers that see the new count see the whole record.
        self.word(count_word).store(count as u64 + 1, Release);
        Ok((words, true))
    }

    fn find(self: &Arc<Self>, table: usize, count_word: usize, id: &[u8; 16]) -> Option<Words> {
        let count = self.word(count_word).load(Acquire) as usize;
        (0..count).find_map(|i| {
            let entry = table + i * ENTRY_WORDS;
            (self.entry_id(entry) == *id).then(|| {
                let offset = self.word(entry + 2).load(Relaxed) as usize;
                let len = self.word(entry + 3).load(Relaxed) as usize;
                self.words(offset, len)
            })
        })
    }

    /// Every key record in the file, with its identity.
    pub fn keys(self: &Arc<Self>) -> Vec<(KeyId, KeyCell)> {
        let count = self.word(H_KEY_COUNT).load(Acquire) as usize;
        (0..count)
            .map(|i| {
                let entry = KEY_TABLE + i * ENTRY_WORDS;
                let offset = self.word(entry + 2).load(Relaxed) as usize;
                let len = self.word(entry + 3).load(Relaxed) as usize;
                (self.entry_id(entry), KeyCell(self.words(offset, len)))
            })
            .collect()
    }
}

fn read_at(file: &File, buf: &mut [u8]) -> std::io::Result<usize> {
    use std::os::unix::fs::FileExt;
    let mut done = 0;
    while done < buf.len() {
        match file.read_at(&mut buf[done..], done as u64)? {
            0 => break,
            n => done += n,
        }
    }
    Ok(done)
}

/// The shared store: records in a state file mapped by every process that uses it.
#[derive(Clone)]
pub struct ShmStore {
    file: Arc<ShmFile>,
}

impl ShmStore {
    pub fn open(path: &Path) -> Result<ShmStore, Error> {
        Ok(ShmStore {
            file: ShmFile::open(path)?,
        })
    }

    pub fn file(&self) -> &Arc<ShmFile> {
        &self.file
    }
}

impl Store for ShmStore {
    fn key(&self, spec: &KeySpec) -> Result<KeyCell, Error> {
        let len = KeyCell::words_for(spec.limit);
        let (words, _) = self.file.find_or_create(
            KEY_TABLE,
            H_KEY_COUNT,
            KEY_CAPACITY,
            &spec.id,
            len,
            "key",
            |w| KeyCell(w.clone()).init(spec.limit, spec.window_ms, tier_word(spec.tier)),
        )?;
        let cell = KeyCell(words);
        adopt(&cell, spec, &self.describe())?;
        Ok(cell)
    }

    fn pool(&self, id: &[u8; 16]) -> Result<PoolCell, Error> {
        let (words, _) = self.file.find_or_create(
            POOL_TABLE,
            H_POOL_COUNT,
            POOL_CAPACITY,
            id,
            POOL_WORDS,
            "pool",
            |_| {},
        )?;
        Ok(PoolCell(words))
    }

    fn describe(&self) -> String {
        format!("shm:{}", self.file.path.display())
    }
}
