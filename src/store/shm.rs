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
use super::{
    conflict, cover_timeout, in_use_token, same_limits, tier_word, InUse, KeyHandle, KeySpec, Store,
};
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
use std::sync::{Arc, Mutex, Weak};

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
    /// A descriptor kept open for the file-wide record of which keys this process uses: an
    /// open-file-description read lock on one byte per key (see `ShmStore::key`).
    lock_file: File,
    /// Which keys a pool of this process uses now, to refuse a conflicting limit in-process.
    users: Mutex<HashMap<KeyId, Weak<InUse>>>,
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
            lock_file: open_file(path)?,
            users: Mutex::default(),
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

    /// Bytes of records in the arena (the sparse file's real footprint is about this plus the
    /// header and the touched part of the tables).
    pub fn used_bytes(&self) -> u64 {
        (self.word(H_ARENA_NEXT).load(Acquire)).saturating_sub(ARENA as u64) * 8
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

    /// The record an entry points to, if it points inside the arena (a reader without the file
    /// lock never builds a slice outside the mapping, whatever it reads).
    fn entry_words(self: &Arc<Self>, entry: usize) -> Option<Words> {
        let offset = self.word(entry + 2).load(Acquire) as usize;
        let len = self.word(entry + 3).load(Acquire) as usize;
        (offset >= ARENA && len > 0 && offset.checked_add(len)? <= FILE_WORDS)
            .then(|| self.words(offset, len))
    }

    /// Finds record `id` in a table: its entry and its words.
    fn find(
        self: &Arc<Self>,
        table: usize,
        count_word: usize,
        id: &[u8; 16],
    ) -> Option<(usize, Words)> {
        let count = self.word(count_word).load(Acquire) as usize;
        (0..count).find_map(|i| {
            let entry = table + i * ENTRY_WORDS;
            if self.entry_id(entry) != *id {
                return None;
            }
            self.entry_words(entry).map(|w| (entry, w))
        })
    }

    /// Allocates `len` zeroed words in the arena. The file lock must be held.
    fn allocate(self: &Arc<Self>, len: usize) -> Result<(usize, Words), Error> {
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
        Ok((offset, words))
    }

    /// Points `entry` at a record, then (for a new entry) publishes it by bumping the count:
    /// readers that see the count see the whole record. The file lock must be held.
    fn publish(
        &self,
        entry: usize,
        id: &[u8; 16],
        offset: usize,
        len: usize,
        count_word: Option<usize>,
    ) {
        self.word(entry)
            .store(u64::from_le_bytes(id[..8].try_into().unwrap()), Relaxed);
        self.word(entry + 1)
            .store(u64::from_le_bytes(id[8..].try_into().unwrap()), Relaxed);
        self.word(entry + 3).store(len as u64, Release);
        self.word(entry + 2).store(offset as u64, Release);
        self.word(H_ARENA_NEXT)
            .store((offset + len) as u64, Release);
        if let Some(count_word) = count_word {
            self.word(count_word).fetch_add(1, Release);
        }
    }

    /// A new entry in a table for `id`, with `len` words set up by `init`. The file lock must be
    /// held.
    fn create(
        self: &Arc<Self>,
        table: usize,
        count_word: usize,
        capacity: usize,
        id: &[u8; 16],
        len: usize,
        what: &str,
        init: impl FnOnce(&Words),
    ) -> Result<Words, Error> {
        let count = self.word(count_word).load(Acquire) as usize;
        if count >= capacity {
            return Err(state_error(
                &self.path,
                format!("is full ({capacity} {what} records); remove it when no process uses it"),
            ));
        }
        let (offset, words) = self.allocate(len)?;
        init(&words);
        self.publish(
            table + count * ENTRY_WORDS,
            id,
            offset,
            len,
            Some(count_word),
        );
        Ok(words)
    }

    /// Takes (`F_RDLCK`, `F_WRLCK`) or drops (`F_UNLCK`) this process's lock on a key's byte.
    /// With `wait` false, a lock held by another process makes it return `Ok(false)`.
    fn key_lock(&self, kind: i32, id: &KeyId, wait: bool) -> Result<bool, Error> {
        // One byte per key, past the end of the data: 40 bits of the identity make a collision
        // (which could only refuse a change of limit, never admit too much) vanishingly rare.
        let at = FILE_BYTES + (u64::from_le_bytes(id[..8].try_into().unwrap()) & ((1 << 40) - 1));
        // SAFETY: a zeroed flock is a valid value; the fields are set below.
        let mut fl: libc::flock = unsafe { std::mem::zeroed() };
        fl.l_type = kind as libc::c_short;
        fl.l_whence = libc::SEEK_SET as libc::c_short;
        fl.l_start = at as libc::off_t;
        fl.l_len = 1;
        let cmd = if wait {
            libc::F_OFD_SETLKW
        } else {
            libc::F_OFD_SETLK
        };
        loop {
            // SAFETY: a valid descriptor and a valid flock.
            if unsafe { libc::fcntl(self.lock_file.as_raw_fd(), cmd, &fl) } == 0 {
                return Ok(true);
            }
            let e = std::io::Error::last_os_error();
            match e.raw_os_error() {
                Some(libc::EINTR) => continue,
                Some(libc::EAGAIN) | Some(libc::EACCES) if !wait => return Ok(false),
                _ => {
                    return Err(state_error(
                        &self.path,
                        format!("cannot lock a key record: {e}"),
                    ))
                }
            }
        }
    }

    /// Every key record in the file, with its identity.
    pub fn keys(self: &Arc<Self>) -> Vec<(KeyId, KeyCell)> {
        let count = self.word(H_KEY_COUNT).load(Acquire) as usize;
        (0..count)
            .filter_map(|i| {
                let entry = KEY_TABLE + i * ENTRY_WORDS;
                let words = self.entry_words(entry)?;
                // A record shorter than its header says is not one to read.
                let cell = KeyCell(words);
                (KeyCell::words_for(cell.limit()) <= cell.0.as_slice().len())
                    .then(|| (self.entry_id(entry), cell))
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
    /// Every process that registers a key holds a read lock on the key's byte for as long as
    /// it runs (the kernel drops it when the process ends, however it ends). A changed limit
    /// can therefore be adopted exactly when no other live process registered the key, which a
    /// non-blocking write lock tells; the record is then made again under that write lock.
    fn key(&self, spec: &KeySpec) -> Result<KeyHandle, Error> {
        let f = &self.file;
        let mut users = f.users.lock().unwrap_or_else(|e| e.into_inner());
        // Blocks only while another process is making this key's record again.
        f.key_lock(libc::F_RDLCK, &spec.id, true)?;
        let slot = users.entry(spec.id).or_default();
        let adopt = |cell: KeyCell, slot: &mut Weak<InUse>| {
            cover_timeout(&cell, spec);
            KeyHandle {
                cell,
                in_use: in_use_token(slot),
            }
        };
        if let Some((_, words)) = f.find(KEY_TABLE, H_KEY_COUNT, &spec.id) {
            if same_limits(&KeyCell(words.clone()), spec) {
                return Ok(adopt(KeyCell(words), slot));
            }
        }
        let _file_lock = FileLock::take(&f.path)?;
        let len = KeyCell::words_for(spec.limit);
        let init =
            |w: &Words| KeyCell(w.clone()).init(spec.limit, spec.window_ms, tier_word(spec.tier));
        let words = match f.find(KEY_TABLE, H_KEY_COUNT, &spec.id) {
            None => f.create(
                KEY_TABLE,
                H_KEY_COUNT,
                KEY_CAPACITY,
                &spec.id,
                len,
                "key",
                init,
            )?,
            Some((_, words)) if same_limits(&KeyCell(words.clone()), spec) => words,
            Some((entry, words)) => {
                let old = KeyCell(words);
                let (limit, window) = (old.limit(), old.window_ms());
                if slot.upgrade().is_some() {
                    return Err(conflict(
                        spec,
                        limit,
                        window,
                        "another pool of this process",
                    ));
                }
                if !f.key_lock(libc::F_WRLCK, &spec.id, false)? {
                    return Err(conflict(
                        spec,
                        limit,
                        window,
                        &format!("another running process ({})", self.describe()),
                    ));
                }
                let made = f.allocate(len).map(|(offset, words)| {
                    init(&words);
                    KeyCell(words.clone()).carry_over(&old, crate::clock::now_ms());
                    f.publish(entry, &spec.id, offset, len, None);
                    words
                });
                f.key_lock(libc::F_RDLCK, &spec.id, true)?; // back to a read lock
                made?
            }
        };
        Ok(adopt(KeyCell(words), slot))
    }

    fn pool(&self, id: &[u8; 16]) -> Result<PoolCell, Error> {
        let f = &self.file;
        if let Some((_, words)) = f.find(POOL_TABLE, H_POOL_COUNT, id) {
            return Ok(PoolCell(words));
        }
        let _file_lock = FileLock::take(&f.path)?;
        let words = match f.find(POOL_TABLE, H_POOL_COUNT, id) {
            Some((_, words)) => words,
            None => f.create(
                POOL_TABLE,
                H_POOL_COUNT,
                POOL_CAPACITY,
                id,
                POOL_WORDS,
                "pool",
                |_| {},
            )?,
        };
        Ok(PoolCell(words))
    }

    fn describe(&self) -> String {
        format!("shm:{}", self.file.path.display())
    }
}
