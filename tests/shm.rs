//! The shared state file: what it holds, and how it treats files it did not make or cannot use.

mod common;

use common::*;
use gemini_rotator::{Config, Error, Pool};
use serde_json::json;
use std::os::unix::fs::PermissionsExt;
use std::path::PathBuf;

fn temp_state(name: &str) -> PathBuf {
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("shm-tests");
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join(format!("{name}-{}.state", std::process::id()));
    let _ = std::fs::remove_file(&path);
    path
}

/// The part of a state file that is written: header, tables and the used part of the arena
/// (the rest of the 256 MiB file is a sparse hole).
fn written_part(path: &std::path::Path) -> Vec<u8> {
    use std::io::Read;
    let mut header = [0u8; 48];
    let mut f = std::fs::File::open(path).unwrap();
    f.read_exact(&mut header).unwrap();
    let arena_next = u64::from_le_bytes(header[40..48].try_into().unwrap());
    let mut bytes = vec![0u8; (arena_next * 8) as usize];
    std::fs::File::open(path)
        .unwrap()
        .read_exact(&mut bytes)
        .unwrap();
    bytes
}

/// A copy of a state file's written part, altered by `change`, at a new path (a new path
/// because this process keeps its mapping of the old one), sparse like the original.
fn altered_copy(from: &std::path::Path, name: &str, change: impl FnOnce(&mut Vec<u8>)) -> PathBuf {
    let size = std::fs::metadata(from).unwrap().len();
    let mut bytes = written_part(from);
    change(&mut bytes);
    let to = temp_state(name);
    std::fs::write(&to, &bytes).unwrap();
    std::fs::OpenOptions::new()
        .write(true)
        .open(&to)
        .unwrap()
        .set_len(size)
        .unwrap();
    std::fs::set_permissions(&to, std::fs::Permissions::from_mode(0o600)).unwrap();
    to
}

fn pool_at(w: &World, path: &std::path::Path) -> Result<Pool, Error> {
    Pool::new(Config::from_json(&w.config_json(
        json!({"state": format!("shm:{}", path.display())}),
    ))?)
}

fn state_error(r: Result<Pool, Error>) -> String {
    match r {
        Err(e @ Error::State { .. }) => e.to_string(),
        Err(other) => panic!("expected a state error, got {other}"),
        Ok(_) => panic!("expected a state error, got a pool"),
    }
}

#[test]
fn the_file_is_private_versioned_and_holds_no_key() {
    let w = World::new("shm-file", 2, true, None, 60_000);
    let path = temp_state("private");
    let pool = pool_at(&w, &path).unwrap();
    for _ in 0..5 {
        ask(&pool).unwrap();
    }
    let meta = std::fs::metadata(&path).unwrap();
    assert_eq!(meta.permissions().mode() & 0o777, 0o600);
    let bytes = written_part(&path);
    assert_eq!(&bytes[..8], b"GRSTATE1");
    assert_eq!(
        u64::from_le_bytes(bytes[8..16].try_into().unwrap()),
        3,
        "layout version"
    );
    assert_eq!(
        u64::from_le_bytes(bytes[16..24].try_into().unwrap()),
        meta.len(),
        "size"
    );
    assert!(bytes.len() > 4096, "the records are in the written part");
    for key in w.free.iter().chain(w.paid.iter()) {
        let needle = key.as_bytes();
        assert!(
            !bytes.windows(needle.len()).any(|win| win == needle),
            "a key is in the state file"
        );
    }
    assert!(pool.store().starts_with("shm:"));
}

#[test]
fn pools_on_one_file_share_counts_cooldowns_and_disabled_keys() {
    let w = World::new("shm-share", 2, false, None, 60_000);
    let path = temp_state("share");
    let a = pool_at(&w, &path).unwrap();
    let b = pool_at(&w, &path).unwrap();
    w.fault(json!({"label": "free0", "kind": "invalid_key", "count": 1}));
    ask(&a).unwrap();
    assert_eq!(key_stats(&b, &w.free[0])["disabled"], "API_KEY_INVALID");
    assert_eq!(key_stats(&b, &w.free[1])["in_window"], 1);
    assert_eq!(key_stats(&b, &w.free[1])["admitted"], 1);
}

#[test]
fn a_file_that_is_not_ours_is_refused() {
    let w = World::new("shm-foreign", 1, false, None, 60_000);
    let path = temp_state("foreign");
    for content in [&b"my notes\n"[..], &[b'x'; 100][..]] {
        std::fs::write(&path, content).unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
        let msg = state_error(pool_at(&w, &path));
        assert!(
            msg.contains("not a gemini-rotator state file")
                && msg.contains(&path.display().to_string()),
            "{msg}"
        );
        assert_eq!(
            std::fs::read(&path).unwrap(),
            content,
            "someone else's file is left alone"
        );
    }
}

#[test]
fn a_file_of_another_layout_version_is_refused() {
    let w = World::new("shm-version", 1, false, None, 60_000);
    let path = temp_state("version");
    drop(pool_at(&w, &path).unwrap());
    // A newer library's file, and an older one's (version 2 had no pin table): both are left
    // alone, with a message that says what to do.
    for (version, copy) in [(4u64, "version-copy"), (2, "version-old")] {
        let other = altered_copy(&path, copy, |b| {
            b[8..16].copy_from_slice(&version.to_le_bytes())
        });
        let msg = state_error(pool_at(&w, &other));
        assert!(
            msg.contains(&format!("layout version {version}"))
                && msg.contains("this library uses version 3")
                && msg.contains("remove the file"),
            "{msg}"
        );
    }
}

#[test]
fn a_file_of_the_wrong_size_is_reported_as_corrupt() {
    let w = World::new("shm-size", 1, false, None, 60_000);
    let path = temp_state("size");
    drop(pool_at(&w, &path).unwrap());
    let other = altered_copy(&path, "size-copy", |_| {});
    std::fs::OpenOptions::new()
        .write(true)
        .open(&other)
        .unwrap()
        .set_len(4096)
        .unwrap();
    let msg = state_error(pool_at(&w, &other));
    assert!(msg.contains("corrupt"), "{msg}");
}

#[test]
fn a_file_from_an_earlier_boot_is_rebuilt() {
    let w = World::new("shm-boot", 1, false, None, 60_000);
    let path = temp_state("boot");
    let pool = pool_at(&w, &path).unwrap();
    ask(&pool).unwrap();
    let other = altered_copy(&path, "boot-copy", |b| b[24] ^= 0xff); // the boot id
    let rebuilt = pool_at(&w, &other).unwrap();
    assert_eq!(
        key_stats(&rebuilt, &w.free[0])["admitted"],
        0,
        "stale counts are gone"
    );
    ask(&rebuilt).unwrap();
}

#[test]
fn a_file_others_can_read_is_refused() {
    let w = World::new("shm-mode", 1, false, None, 60_000);
    let path = temp_state("mode");
    std::fs::write(&path, b"").unwrap();
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
    let msg = state_error(pool_at(&w, &path));
    assert!(msg.contains("mode 0644"), "{msg}");
}

#[test]
fn a_missing_or_read_only_directory_is_a_clear_error() {
    let w = World::new("shm-dir", 1, false, None, 60_000);
    let msg = state_error(pool_at(
        &w,
        std::path::Path::new("/nonexistent-dir-gr/x.state"),
    ));
    assert!(
        msg.contains("/nonexistent-dir-gr/x.state") && msg.contains("directory exist"),
        "{msg}"
    );
    // sysfs refuses new files even to root.
    let msg = state_error(pool_at(
        &w,
        std::path::Path::new("/sys/gemini-rotator.state"),
    ));
    assert!(msg.contains("not writable"), "{msg}");
}

#[test]
fn a_symlink_is_refused() {
    let w = World::new("shm-link", 1, false, None, 60_000);
    let target = temp_state("link-target");
    let link = temp_state("link");
    std::os::unix::fs::symlink(&target, &link).unwrap();
    let msg = state_error(pool_at(&w, &link));
    assert!(msg.contains("symbolic link"), "{msg}");
}

/// Unmounts a file system when dropped.
struct Mounted(PathBuf);

impl Drop for Mounted {
    fn drop(&mut self) {
        let _ = std::process::Command::new("umount").arg(&self.0).status();
    }
}

#[test]
fn a_full_file_system_is_an_error_not_a_crash() {
    // A 4 MiB tmpfs (a container's small /dev/shm): a key whose ring needs 8 MB cannot fit.
    // Before, touching the unbacked pages of the sparse file killed the process with SIGBUS.
    let dir =
        PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join(format!("small-fs-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let status = std::process::Command::new("mount")
        .args(["-t", "tmpfs", "-o", "size=4m", "tmpfs"])
        .arg(&dir)
        .status()
        .expect("mount runs");
    assert!(
        status.success(),
        "mounting a tmpfs needs root, as tests/run has in CI"
    );
    let _mounted = Mounted(dir.clone());
    let w = World::new("shm-full", 0, true, None, 60_000);
    let path = dir.join("state");
    let config = w.config_json(json!({
        "paid_rate_limit": 1_000_000,
        "state": format!("shm:{}", path.display()),
    }));
    let msg = state_error(Pool::new(Config::from_json(&config).unwrap()));
    assert!(msg.contains("no space left"), "{msg}");
}
