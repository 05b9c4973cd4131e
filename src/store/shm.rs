//! State shared by every process on the host: key and pool records in a memory-mapped file.
//!
//! The file is created with mode 0600 by its first user and holds fingerprints (key identities)
//! and counters, never keys. Its layout:
//!
//! - a header of `HEADER_WORDS` words: magic, layout version, file size, the boot it was made in,
//!   the arena's fill mark, and the number of entries in each table;
//! - the key table (`KEY_CAPACITY` entries of [id, id, location]), the pool table and the
//!   quota table (one record per quota group and model, `group`), then the pin table (`pins`),
//!   where a location packs a record's offset and length into one word, so that a reader never pairs
//!   one record's offset with another's length;
//! - the arena, where the records live (see `layout`).
//!
//! The hot path (admission, counters) is lock-free atomics on the mapping, the same code as the
//! in-process store. Only creating a record takes a lock: `flock` on a descriptor opened for the
//! occasion, which the kernel drops when its holder dies. Every wait for a lock is bounded: a
//! holder that is stopped (a debugger, SIGSTOP) makes new pools fail with an error that says
//! so, never hang. A record is published by bumping its table's count after it is written, so
//! readers never see half a record; every page is allocated (`posix_fallocate`) before it is
//! touched, so a full file system is an error, never a SIGBUS.
//!
//! Times in the records come from `CLOCK_MONOTONIC`, which restarts at boot: a file made in an
//! earlier boot is rebuilt. A file of another layout version, another owner, a loose mode, a bad
//! size or contents it cannot trust is an error that says what to do, never undefined
//! behaviour: every offset read from the file is checked against the mapping before use.

mod pins;

use super::group::{QuotaCell, QUOTA_HEADER_WORDS};
use super::layout::{KeyCell, PoolCell, Words, KEY_WORDS, POOL_WORDS};
use super::{
    conflict, in_use_token, same_limits, Enabled, InUse, KeyHandle, KeySpec, Moment, PoolRecord,
    QuotaHandle, QuotaSnapshot, QuotaSpec, Store, StoredKey,
};
use crate::clock::Clock;
use crate::error::Error;
use crate::key::{fingerprint_of_id, KeyId};
use once_cell::sync::Lazy;
use std::collections::HashMap;
use std::fs::{File, OpenOptions};
use std::os::unix::fs::{MetadataExt, OpenOptionsExt};
use std::os::unix::io::AsRawFd;
use std::path::{Path, PathBuf};
use std::ptr::NonNull;
use std::sync::atomic::{AtomicU64, Ordering::Acquire, Ordering::Relaxed, Ordering::Release};
use std::sync::{Arc, Mutex, Weak};
use std::time::{Duration, Instant};

/// "GRSTATE1" read as a little-endian u64.
const MAGIC: u64 = u64::from_le_bytes(*b"GRSTATE1");
/// Bumped whenever the meaning of any word changes (2: quotas per quota group and model; 3:
/// the pin table).
pub const LAYOUT_VERSION: u64 = 3;

const HEADER_WORDS: usize = 512; // 4 KiB
const H_MAGIC: usize = 0;
const H_VERSION: usize = 1;
const H_FILE_BYTES: usize = 2;
const H_BOOT_ID: usize = 3; // two words
const H_ARENA_NEXT: usize = 5;
const H_KEY_COUNT: usize = 6;
const H_POOL_COUNT: usize = 7;
const H_QUOTA_COUNT: usize = 8;

const ENTRY_WORDS: usize = 4; // id, id, location (offset | length << 32), reserved
const KEY_CAPACITY: usize = 65_536;
const POOL_CAPACITY: usize = 4_096;
const QUOTA_CAPACITY: usize = 65_536;
const KEY_TABLE: usize = HEADER_WORDS;
const POOL_TABLE: usize = KEY_TABLE + KEY_CAPACITY * ENTRY_WORDS;
const QUOTA_TABLE: usize = POOL_TABLE + POOL_CAPACITY * ENTRY_WORDS;
/// The pins of resources to quota groups (`pins`): a fixed-size table.
pub const PIN_CAPACITY: usize = 4_096;
const PIN_ENTRY_WORDS: usize = 6;
const PIN_TABLE: usize = QUOTA_TABLE + QUOTA_CAPACITY * ENTRY_WORDS;
const ARENA: usize = PIN_TABLE + PIN_CAPACITY * PIN_ENTRY_WORDS;
/// The file's size. It is sparse: only the pages records touch take memory (about 130 bytes
/// per key, and per quota group and model 300 bytes plus 8 per unit of its rate limit and per
/// slot of its token window).
const FILE_BYTES: u64 = 256 << 20;
const FILE_WORDS: usize = (FILE_BYTES / 8) as usize;

/// How long registering a key may wait for another process's lock before it gives up.
const LOCK_WAIT: Duration = Duration::from_secs(10);

/// The default place of the state file: `/dev/shm`, one file per user.
pub fn default_path() -> PathBuf {
    // SAFETY: geteuid cannot fail.
    let uid = unsafe { libc::geteuid() };
    PathBuf::from(format!("/dev/shm/gemini-rotator-{uid}.state"))
}

/// This process's record of which keys it uses: the descriptor that carries its key locks
/// (an open-file-description read lock on one byte per key, see `ShmStore::key`), and the keys
/// its pools use now.
struct Registry {
    /// The process that opened `lock_file`. A forked child shares its parent's open file
    /// description, hence its locks, so it opens its own before taking any.
    pid: u32,
    lock_file: File,
    users: HashMap<KeyId, Weak<InUse>>,
}

/// A mapped state file.
pub struct ShmFile {
    path: PathBuf,
    base: NonNull<AtomicU64>,
    registry: Mutex<Registry>,
}

// SAFETY: the mapping is only accessed through atomics.
unsafe impl Send for ShmFile {}
unsafe impl Sync for ShmFile {}

impl Drop for ShmFile {
    fn drop(&mut self) {
        // SAFETY: we mapped exactly this range in `map`.
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

/// This boot's identity (`/proc/sys/kernel/random/boot_id`), as two words. Without it a file
/// from an earlier boot could not be told from a live one, so its absence is an error.
fn boot_id(path: &Path) -> Result<[u64; 2], Error> {
    let text = std::fs::read_to_string("/proc/sys/kernel/random/boot_id").map_err(|e| {
        state_error(
            path,
            format!("cannot read /proc/sys/kernel/random/boot_id ({e}), which tells a state file of this boot from an older one; use GEMINI_ROTATOR_STATE=memory where /proc is missing"),
        )
    })?;
    let digest = crate::key::key_id(text.trim());
    Ok([
        u64::from_le_bytes(digest[..8].try_into().unwrap()),
        u64::from_le_bytes(digest[8..].try_into().unwrap()),
    ])
}

/// Retries `attempt` (which says whether it got the lock) until `LOCK_WAIT` has passed.
fn with_patience(
    path: &Path,
    what: &str,
    mut attempt: impl FnMut() -> Result<bool, Error>,
) -> Result<(), Error> {
    let started = Instant::now();
    let mut pause = Duration::from_micros(100);
    loop {
        if attempt()? {
            return Ok(());
        }
        if started.elapsed() >= LOCK_WAIT {
            return Err(state_error(
                path,
                format!("another process has held {what} for over {} s; is a process using this state file stopped (SIGSTOP, a debugger)?", LOCK_WAIT.as_secs()),
            ));
        }
        std::thread::sleep(pause);
        pause = (pause * 2).min(Duration::from_millis(20));
    }
}

/// An exclusive `flock` on a descriptor of its own, released when dropped.
struct FileLock(File);

impl FileLock {
    fn take(path: &Path) -> Result<FileLock, Error> {
        let file = open_file(path)?;
        with_patience(path, "the state file's lock", || {
            // SAFETY: a valid descriptor.
            if unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) } == 0 {
                return Ok(true);
            }
            let e = std::io::Error::last_os_error();
            match e.raw_os_error() {
                Some(libc::EWOULDBLOCK) | Some(libc::EINTR) => Ok(false),
                _ => Err(state_error(path, format!("cannot lock: {e}"))),
            }
        })?;
        Ok(FileLock(file))
    }
}

impl Drop for FileLock {
    fn drop(&mut self) {
        // SAFETY: a valid descriptor; closing would release it too.
        unsafe { libc::flock(self.0.as_raw_fd(), libc::LOCK_UN) };
    }
}

/// Allocates the file's pages under `bytes` before they are touched, so that a full file
/// system (a small /dev/shm) is an error here rather than a SIGBUS later.
fn reserve(file: &File, path: &Path, offset_words: usize, len_words: usize) -> Result<(), Error> {
    // SAFETY: a valid descriptor; offsets within the file's size.
    let rc = unsafe {
        libc::posix_fallocate(
            file.as_raw_fd(),
            (offset_words * 8) as libc::off_t,
            (len_words * 8) as libc::off_t,
        )
    };
    match rc {
        0 => Ok(()),
        libc::ENOSPC => Err(state_error(
            path,
            "no space left on its file system (a small /dev/shm, such as a container's 64 MiB default?): \
             give it more room (docker --shm-size) or choose another place with GEMINI_ROTATOR_STATE=shm:/path",
        )),
        e => Err(state_error(path, format!("cannot allocate space: {}", std::io::Error::from_raw_os_error(e)))),
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
        let boot = boot_id(path)?;
        // New: just created (empty), or sized by a maker that died before writing anything.
        let fresh = size == 0 || (size == FILE_BYTES && header.iter().all(|&b| b == 0));
        let mut rebuild = fresh;
        if !fresh {
            if got < header.len() || word(H_MAGIC) != MAGIC {
                return Err(state_error(
                    path,
                    "is not a gemini-rotator state file (no magic number): it is left alone; remove it or choose another path",
                ));
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
                    format!(
                        "is corrupt: its header says {} bytes, the file has {size}, layout {LAYOUT_VERSION} uses {FILE_BYTES}; remove it",
                        word(H_FILE_BYTES)
                    ),
                ));
            }
            // Made in an earlier boot: its monotonic times mean nothing now.
            if [word(H_BOOT_ID), word(H_BOOT_ID + 1)] != boot {
                rebuild = true;
            }
        }
        if rebuild {
            // Zero it all: nobody of this boot can be using a file that is new or of a past boot.
            file.set_len(0)
                .and_then(|_| file.set_len(FILE_BYTES))
                .map_err(|e| state_error(path, format!("cannot size the state file: {e}")))?;
            reserve(file, path, 0, HEADER_WORDS)?;
        }
        let lock_file = open_file(path)?;
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
            registry: Mutex::new(Registry {
                pid: std::process::id(),
                lock_file,
                users: HashMap::new(),
            }),
        };
        if rebuild {
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
        assert!(i < FILE_WORDS, "a state file word out of range");
        // SAFETY: `i` is within the mapping, which lives as long as `self`.
        unsafe { &*self.base.as_ptr().add(i) }
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The arena's fill mark, as far as it can be trusted.
    fn arena_next(&self) -> usize {
        (self.word(H_ARENA_NEXT).load(Acquire) as usize).clamp(ARENA, FILE_WORDS)
    }

    /// A table's number of entries, as far as it can be trusted.
    fn count(&self, count_word: usize, capacity: usize) -> usize {
        (self.word(count_word).load(Acquire) as usize).min(capacity)
    }

    /// Bytes of records in the arena (the sparse file's real footprint is about this plus the
    /// header and the touched part of the tables).
    pub fn used_bytes(&self) -> u64 {
        ((self.arena_next() - ARENA) * 8) as u64
    }

    fn words(self: &Arc<Self>, offset: usize, len: usize) -> Words {
        assert!(offset >= ARENA && len > 0 && offset + len <= FILE_WORDS);
        // SAFETY: `offset..offset+len` is inside the mapping (just checked), aligned, and the
        // Arc keeps the mapping alive.
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

    /// The record an entry points to, if it points inside the used arena and is at least
    /// `min_len` words long: whatever the file holds, no slice ever leaves the mapping.
    fn entry_words(self: &Arc<Self>, entry: usize, min_len: usize) -> Option<Words> {
        let location = self.word(entry + 2).load(Acquire);
        let (offset, len) = ((location & 0xffff_ffff) as usize, (location >> 32) as usize);
        (offset >= ARENA && len >= min_len && offset + len <= self.arena_next())
            .then(|| self.words(offset, len))
    }

    /// Finds record `id` in a table: its entry and its words.
    fn find(self: &Arc<Self>, table: Table, id: &[u8; 16]) -> Option<(usize, Words)> {
        (0..self.count(table.count_word, table.capacity)).find_map(|i| {
            let entry = table.start + i * ENTRY_WORDS;
            if self.entry_id(entry) != *id {
                return None;
            }
            self.entry_words(entry, table.min_len).map(|w| (entry, w))
        })
    }

    /// Allocates `len` zeroed words in the arena. The file lock (`file`) must be held.
    fn allocate(self: &Arc<Self>, file: &File, len: usize) -> Result<(usize, Words), Error> {
        let offset = self.arena_next();
        if offset + len > FILE_WORDS {
            return Err(state_error(
                &self.path,
                format!(
                    "is full ({} MiB of records); remove it when no process uses it",
                    FILE_BYTES >> 20
                ),
            ));
        }
        reserve(file, &self.path, offset, len)?;
        let words = self.words(offset, len);
        // A writer that died here before publishing may have left words behind.
        for w in words.as_slice() {
            w.store(0, Relaxed);
        }
        Ok((offset, words))
    }

    /// Points `entry` at a record (one word: a reader sees the old location or the new one,
    /// never half of each). The file lock must be held.
    fn publish(&self, entry: usize, id: &[u8; 16], offset: usize, len: usize) {
        self.word(entry)
            .store(u64::from_le_bytes(id[..8].try_into().unwrap()), Relaxed);
        self.word(entry + 1)
            .store(u64::from_le_bytes(id[8..].try_into().unwrap()), Relaxed);
        self.word(H_ARENA_NEXT)
            .store((offset + len) as u64, Release);
        self.word(entry + 2)
            .store(offset as u64 | (len as u64) << 32, Release);
    }

    /// A new entry in a table for `id`, with `len` words set up by `init`, published by bumping
    /// the table's count once the record is whole. The file lock (`file`) must be held.
    fn create(
        self: &Arc<Self>,
        file: &File,
        table: Table,
        id: &[u8; 16],
        len: usize,
        init: impl FnOnce(&Words),
    ) -> Result<Words, Error> {
        let count = self.count(table.count_word, table.capacity);
        if count >= table.capacity {
            return Err(state_error(
                &self.path,
                format!(
                    "is full ({} {} records); remove it when no process uses it",
                    table.capacity, table.what
                ),
            ));
        }
        let entry = table.start + count * ENTRY_WORDS;
        reserve(file, &self.path, entry, ENTRY_WORDS)?;
        let (offset, words) = self.allocate(file, len)?;
        init(&words);
        self.publish(entry, id, offset, len);
        self.word(table.count_word).store(count as u64 + 1, Release);
        Ok(words)
    }

    /// Every key record in the file, with its identity.
    pub fn keys(self: &Arc<Self>) -> Vec<(KeyId, KeyCell)> {
        (0..self.count(H_KEY_COUNT, KEY_CAPACITY))
            .filter_map(|i| {
                let entry = KEY_TABLE + i * ENTRY_WORDS;
                let cell = KeyCell(self.entry_words(entry, KEYS.min_len)?);
                Some((self.entry_id(entry), cell))
            })
            .collect()
    }

    /// Every quota record in the file that fits its limits.
    pub fn quotas(self: &Arc<Self>) -> Vec<QuotaCell> {
        (0..self.count(H_QUOTA_COUNT, QUOTA_CAPACITY))
            .filter_map(|i| {
                let entry = QUOTA_TABLE + i * ENTRY_WORDS;
                let cell = QuotaCell(self.entry_words(entry, QUOTAS.min_len)?);
                cell.fits().then_some(cell)
            })
            .collect()
    }
}

impl Registry {
    /// Takes (`F_RDLCK`, `F_WRLCK`) this process's lock on a key's byte, waiting (boundedly)
    /// when `wait`, else saying whether it got it.
    fn key_lock(&mut self, path: &Path, kind: i32, id: &KeyId, wait: bool) -> Result<bool, Error> {
        if self.pid != std::process::id() {
            self.reopen_after_fork(path)?;
        }
        let fd = self.lock_file.as_raw_fd();
        let try_once = || ofd_lock(fd, path, kind, id);
        if !wait {
            return try_once();
        }
        with_patience(path, "a key record's lock", try_once)?;
        Ok(true)
    }

    /// In a forked child: a descriptor of its own, holding read locks on every key the process
    /// inherited a use of, so that its locks are its own from now on.
    fn reopen_after_fork(&mut self, path: &Path) -> Result<(), Error> {
        self.lock_file = open_file(path)?;
        self.pid = std::process::id();
        let fd = self.lock_file.as_raw_fd();
        for (id, users) in &self.users {
            if users.strong_count() > 0 {
                with_patience(path, "a key record's lock", || {
                    ofd_lock(fd, path, libc::F_RDLCK, id)
                })?;
            }
        }
        Ok(())
    }
}

/// One attempt at an open-file-description lock on a key's byte: `Ok(false)` when another
/// process's lock is in the way.
fn ofd_lock(fd: i32, path: &Path, kind: i32, id: &KeyId) -> Result<bool, Error> {
    // One byte per key, past the end of the data: 40 bits of the identity make a collision
    // (which could only refuse a change of limit, never admit too much) vanishingly rare.
    let at = FILE_BYTES + (u64::from_le_bytes(id[..8].try_into().unwrap()) & ((1 << 40) - 1));
    // SAFETY: a zeroed flock is a valid value; the fields are set below.
    let mut fl: libc::flock = unsafe { std::mem::zeroed() };
    fl.l_type = kind as libc::c_short;
    fl.l_whence = libc::SEEK_SET as libc::c_short;
    fl.l_start = at as libc::off_t;
    fl.l_len = 1;
    // SAFETY: a valid descriptor and a valid flock.
    if unsafe { libc::fcntl(fd, libc::F_OFD_SETLK, &fl) } == 0 {
        return Ok(true);
    }
    let e = std::io::Error::last_os_error();
    match e.raw_os_error() {
        Some(libc::EAGAIN) | Some(libc::EACCES) | Some(libc::EINTR) => Ok(false),
        _ => Err(state_error(path, format!("cannot lock a key record: {e}"))),
    }
}

/// A table of the file: where it starts, its capacity, its count's word, and the least length
/// of a record it points to.
#[derive(Clone, Copy)]
struct Table {
    start: usize,
    capacity: usize,
    count_word: usize,
    min_len: usize,
    what: &'static str,
}

const KEYS: Table = Table {
    start: KEY_TABLE,
    capacity: KEY_CAPACITY,
    count_word: H_KEY_COUNT,
    min_len: KEY_WORDS,
    what: "key",
};
const QUOTAS: Table = Table {
    start: QUOTA_TABLE,
    capacity: QUOTA_CAPACITY,
    count_word: H_QUOTA_COUNT,
    min_len: QUOTA_HEADER_WORDS + 1,
    what: "quota group and model",
};
const POOLS: Table = Table {
    start: POOL_TABLE,
    capacity: POOL_CAPACITY,
    count_word: H_POOL_COUNT,
    min_len: POOL_WORDS,
    what: "pool",
};

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

/// The shared store: records in a state file mapped by every process that uses it. Its time
/// is the clock it is given: `CLOCK_MONOTONIC`, which every process on the host reads alike,
/// unless a test gives it a fake one.
#[derive(Clone)]
pub struct ShmStore {
    file: Arc<ShmFile>,
    clock: Arc<dyn Clock>,
}

impl ShmStore {
    pub fn open(path: &Path, clock: Arc<dyn Clock>) -> Result<ShmStore, Error> {
        Ok(ShmStore {
            file: ShmFile::open(path)?,
            clock,
        })
    }
}

impl Store for ShmStore {
    fn key(&self, spec: &KeySpec) -> Result<KeyHandle, Error> {
        let f = &self.file;
        let found = match f.find(KEYS, &spec.id) {
            Some((_, words)) => words,
            None => {
                let file_lock = FileLock::take(&f.path)?;
                match f.find(KEYS, &spec.id) {
                    Some((_, words)) => words,
                    None => f.create(&file_lock.0, KEYS, &spec.id, KEY_WORDS, |w| {
                        KeyCell(w.clone()).init(spec.tier, &spec.group)
                    })?,
                }
            }
        };
        Ok(KeyHandle {
            record: Arc::new(KeyCell(found)),
            in_use: Arc::new(InUse),
        })
    }

    /// Every process that registers a quota record holds a read lock on the record's byte for
    /// as long as it runs (the kernel drops it when the process ends, however it ends). Changed
    /// limits can therefore be adopted exactly when no other live process registered the
    /// record, which a non-blocking write lock tells; the record is then made again under that
    /// write lock, carrying the old state on.
    fn quota(&self, spec: &QuotaSpec) -> Result<QuotaHandle, Error> {
        let f = &self.file;
        let mut registry = f.registry.lock().unwrap_or_else(|e| e.into_inner());
        // Waits only while another process is making this key's record again.
        registry.key_lock(&f.path, libc::F_RDLCK, &spec.id, true)?;
        let usable = |w: &Words| {
            let cell = QuotaCell(w.clone());
            cell.fits().then_some(cell)
        };
        if let Some(cell) = f.find(QUOTAS, &spec.id).and_then(|(_, w)| usable(&w)) {
            if same_limits(cell.configured(), spec) {
                cell.cover_timeout(spec.max_inflight_ms);
                let in_use = in_use_token(registry.users.entry(spec.id).or_default());
                return Ok(QuotaHandle {
                    record: Arc::new(cell),
                    in_use,
                });
            }
        }
        let file_lock = FileLock::take(&f.path)?;
        let len = QuotaCell::words_for(&spec.limits);
        let init = |w: &Words| {
            let cell = QuotaCell(w.clone());
            cell.init(&spec.limits, spec.tier, &spec.group, &spec.model);
            cell.cover_timeout(spec.max_inflight_ms);
        };
        let cell = match f.find(QUOTAS, &spec.id) {
            None => QuotaCell(f.create(&file_lock.0, QUOTAS, &spec.id, len, init)?),
            Some((entry, words)) => {
                let old = usable(&words).ok_or_else(|| {
                    state_error(
                        &f.path,
                        format!(
                            "is corrupt: the record of quota group {} and model {} does not fit its limits; remove it",
                            spec.group_name, spec.model
                        ),
                    )
                })?;
                if same_limits(old.configured(), spec) {
                    old
                } else {
                    let existing = old.configured();
                    let in_use_here = registry
                        .users
                        .get(&spec.id)
                        .is_some_and(|u| u.strong_count() > 0);
                    if in_use_here {
                        return Err(conflict(spec, existing, "another pool of this process"));
                    }
                    if !registry.key_lock(&f.path, libc::F_WRLCK, &spec.id, false)? {
                        return Err(conflict(
                            spec,
                            existing,
                            &format!("another running process ({})", self.describe()),
                        ));
                    }
                    let made = f.allocate(&file_lock.0, len).map(|(offset, words)| {
                        init(&words);
                        QuotaCell(words.clone()).carry_over(&old, self.now());
                        f.publish(entry, &spec.id, offset, len);
                        QuotaCell(words)
                    });
                    registry.key_lock(&f.path, libc::F_RDLCK, &spec.id, true)?; // back to a read lock
                    made?
                }
            }
        };
        cell.cover_timeout(spec.max_inflight_ms);
        let in_use = in_use_token(registry.users.entry(spec.id).or_default());
        Ok(QuotaHandle {
            record: Arc::new(cell),
            in_use,
        })
    }

    fn pool(&self, id: &[u8; 16]) -> Result<Arc<dyn PoolRecord>, Error> {
        let f = &self.file;
        if let Some((_, words)) = f.find(POOLS, id) {
            return Ok(Arc::new(PoolCell(words)));
        }
        let file_lock = FileLock::take(&f.path)?;
        let words = match f.find(POOLS, id) {
            Some((_, words)) => words,
            None => f.create(&file_lock.0, POOLS, id, POOL_WORDS, |_| {})?,
        };
        Ok(Arc::new(PoolCell(words)))
    }

    fn now(&self) -> u64 {
        self.clock.now_ms()
    }

    fn all_keys(&self) -> Result<Vec<StoredKey>, Error> {
        Ok(self
            .file
            .keys()
            .into_iter()
            .map(|(id, cell)| StoredKey {
                id,
                fingerprint: fingerprint_of_id(&id),
                snapshot: cell.snapshot(),
            })
            .collect())
    }

    fn all_quotas(&self, at: &Moment) -> Result<Vec<QuotaSnapshot>, Error> {
        Ok(self
            .file
            .quotas()
            .iter()
            .map(|cell| cell.snapshot(at))
            .collect())
    }

    fn enable(&self, fingerprint: &str) -> Result<Enabled, Error> {
        Ok(self
            .file
            .keys()
            .into_iter()
            .find(|(id, _)| fingerprint_of_id(id) == fingerprint)
            .map_or(Enabled::NoSuchKey, |(_, cell)| Enabled::Enabled {
                was: cell.enable(),
            }))
    }

    fn used_bytes(&self) -> Option<u64> {
        Some(self.file.used_bytes())
    }

    fn describe(&self) -> String {
        format!("shm:{}", self.file.path.display())
    }

    fn pins(&self) -> Arc<dyn super::PinRecord> {
        self.shm_pins()
    }
}
