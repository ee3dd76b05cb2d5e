//! Who may read the data directory.
//!
//! The database holds TSIG secrets and DNSSEC private keys, in plaintext
//! unless a key-encryption key seals them (sealed.rs), and the first admin
//! token is written beside it. So the data directory is 0700 and every file sixgate
//! keeps in it 0600, whatever the process umask. The modes are set at every
//! [`Store::open`](crate::Store::open), not only when the files are
//! created: a directory made by an older sixgate, by hand, or by systemd's
//! `StateDirectory=` (0755 by default) is tightened on the next start.
//!
//! SQLite creates the `-wal`, `-shm` and `-journal` files with the mode of
//! the database file, so the database file is created 0600 here, before
//! SQLite opens it; left to SQLite it would be 0644 under the usual umask,
//! and so would its WAL.

use std::fs::{self, OpenOptions, Permissions};
use std::io::Write as _;
use std::os::unix::fs::{OpenOptionsExt as _, PermissionsExt as _};
use std::path::{Path, PathBuf};

use crate::{DB_FILE, StoreError};

/// Mode of the data directory: only its owner may list or enter it.
pub const DIR_MODE: u32 = 0o700;
/// Mode of every file in the data directory.
pub const FILE_MODE: u32 = 0o600;
/// The first admin token, written by `serve` on a store without tokens.
pub const ADMIN_TOKEN_FILE: &str = "admin-token";
/// The datagram socket through which CLI commands tell a running server
/// that the store changed.
pub const NOTIFY_SOCKET: &str = "notify.sock";
/// The lock a running server holds (shared) and a restore takes
/// (exclusive), so that no store is replaced under a server.
pub const LOCK_FILE: &str = "serve.lock";
/// What SQLite keeps beside the database file, by suffix.
const SQLITE_COMPANIONS: [&str; 3] = ["-wal", "-shm", "-journal"];

fn io_error(path: &Path) -> impl FnOnce(std::io::Error) -> StoreError + '_ {
    move |source| StoreError::Io { path: path.to_path_buf(), source }
}

/// Creates the data directory if needed, makes it 0700, creates the
/// database file 0600 if it does not exist, and makes every file sixgate
/// keeps there 0600. Returns the database file's path.
pub(crate) fn prepare(dir: &Path) -> Result<PathBuf, StoreError> {
    fs::create_dir_all(dir).map_err(io_error(dir))?;
    fs::set_permissions(dir, Permissions::from_mode(DIR_MODE)).map_err(io_error(dir))?;
    let db = dir.join(DB_FILE);
    // Opened without truncating: an existing database is left as it is,
    // only its mode is set (through the handle, so it is this file's).
    let file = open_private(&db)?;
    file.set_permissions(Permissions::from_mode(FILE_MODE)).map_err(io_error(&db))?;
    drop(file);
    let companions = SQLITE_COMPANIONS.iter().map(|suffix| dir.join(format!("{DB_FILE}{suffix}")));
    let ours = [ADMIN_TOKEN_FILE, NOTIFY_SOCKET, LOCK_FILE].iter().map(|name| dir.join(name));
    for path in companions.chain(ours) {
        restrict(&path)?;
    }
    Ok(db)
}

/// Opens `path` for reading and writing, creating it 0600 if it does not
/// exist and never truncating it.
fn open_private(path: &Path) -> Result<fs::File, StoreError> {
    OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .mode(FILE_MODE)
        .open(path)
        .map_err(io_error(path))
}

/// A lock on a data directory, held until dropped.
pub struct DirLock {
    _lock: nix::fcntl::Flock<fs::File>,
}

impl std::fmt::Debug for DirLock {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("DirLock")
    }
}

fn lock(dir: &Path, arg: nix::fcntl::FlockArg) -> Result<Result<DirLock, nix::errno::Errno>, StoreError> {
    let path = dir.join(LOCK_FILE);
    let file = open_private(&path)?;
    Ok(nix::fcntl::Flock::lock(file, arg).map(|l| DirLock { _lock: l }).map_err(|(_, errno)| errno))
}

/// What a running server holds on its data directory: many servers may
/// share a store, but no restore replaces it under them. The lock goes
/// with the process, however it ends.
pub fn lock_shared(dir: &Path) -> Result<DirLock, StoreError> {
    lock(dir, nix::fcntl::FlockArg::LockSharedNonblock)?.map_err(|_| {
        StoreError::Conflict(format!(
            "{} is being restored; start the server when that is done",
            dir.display()
        ))
    })
}

/// What a restore holds: refused while a server runs on `dir`.
pub fn lock_exclusive(dir: &Path) -> Result<DirLock, StoreError> {
    lock(dir, nix::fcntl::FlockArg::LockExclusiveNonblock)?.map_err(|_| {
        StoreError::Conflict(format!(
            "a sixgate server is running on {}; stop it before restoring over its store",
            dir.display()
        ))
    })
}

/// Makes `path` 0600 if it exists.
pub fn restrict(path: &Path) -> Result<(), StoreError> {
    match fs::set_permissions(path, Permissions::from_mode(FILE_MODE)) {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        other => other.map_err(io_error(path)),
    }
}

/// Writes `contents` to `path` so that no other user can read it at any
/// moment: into a new 0600 file beside it, synced, then renamed over
/// `path`. A file that was there before is replaced, never widened.
pub fn write_private(path: &Path, contents: &[u8]) -> Result<(), StoreError> {
    let mut name = path.file_name().map(|n| n.to_os_string()).unwrap_or_default();
    name.push(".tmp");
    let tmp = path.with_file_name(name);
    // A leftover from a crash would make `create_new` fail.
    match fs::remove_file(&tmp) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => return Err(io_error(&tmp)(e)),
        _ => {}
    }
    let mut file =
        OpenOptions::new().write(true).create_new(true).mode(FILE_MODE).open(&tmp).map_err(io_error(&tmp))?;
    // The umask can only take bits away from 0600; set it exactly anyway.
    file.set_permissions(Permissions::from_mode(FILE_MODE)).map_err(io_error(&tmp))?;
    file.write_all(contents).and_then(|()| file.sync_all()).map_err(io_error(&tmp))?;
    drop(file);
    fs::rename(&tmp, path).map_err(io_error(path))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Store;

    /// Runs `f` with the process umask set to `mask`, then restores it.
    /// nextest runs every test in a process of its own, so no other test
    /// sees the change.
    fn with_umask<T>(mask: u32, f: impl FnOnce() -> T) -> T {
        use nix::sys::stat::{Mode, umask};
        let old = umask(Mode::from_bits_truncate(mask));
        let out = f();
        umask(old);
        out
    }

    fn mode(path: &Path) -> u32 {
        fs::metadata(path).unwrap().permissions().mode() & 0o7777
    }

    fn assert_private(dir: &Path) {
        assert_eq!(mode(dir), 0o700, "{}", dir.display());
        for suffix in ["", "-wal", "-shm"] {
            let path = dir.join(format!("{DB_FILE}{suffix}"));
            assert_eq!(mode(&path), 0o600, "{}", path.display());
        }
    }

    fn write_something(s: &mut Store) {
        let apex = sixgate_dns::name::from_text("example.com.", None).unwrap();
        let records = sixgate_dns::zonefile::parse(
            "@ 300 SOA ns hm 1 2 3 4 5\n@ 300 NS ns\nns 300 A 192.0.2.1\n",
            &apex,
        )
        .unwrap();
        s.by(crate::Actor::Task("test")).replace_zone(&apex, records).unwrap();
    }

    #[test]
    fn the_database_is_not_readable_by_other_users() {
        with_umask(0o022, || {
            let parent = tempfile::tempdir().unwrap();
            let dir = parent.path().join("data");
            let mut s = Store::open(&dir).unwrap();
            write_something(&mut s);
            assert_private(&dir);
        });
    }

    #[test]
    fn an_existing_data_directory_is_made_private_at_open() {
        with_umask(0o022, || {
            let parent = tempfile::tempdir().unwrap();
            let dir = parent.path().join("data");
            {
                let mut s = Store::open(&dir).unwrap();
                write_something(&mut s);
                // What an older sixgate left: the umask's modes. The store
                // stays open, so the WAL and shared-memory files exist.
                fs::set_permissions(&dir, Permissions::from_mode(0o755)).unwrap();
                for suffix in ["", "-wal", "-shm"] {
                    let path = dir.join(format!("{DB_FILE}{suffix}"));
                    fs::set_permissions(&path, Permissions::from_mode(0o644)).unwrap();
                }
                fs::write(dir.join(ADMIN_TOKEN_FILE), "sgt_old\n").unwrap();
                fs::set_permissions(dir.join(ADMIN_TOKEN_FILE), Permissions::from_mode(0o644)).unwrap();
                let mut again = Store::open(&dir).unwrap();
                write_something(&mut again);
                assert_private(&dir);
                assert_eq!(mode(&dir.join(ADMIN_TOKEN_FILE)), 0o600);
            }
        });
    }

    #[test]
    fn deleted_key_material_is_overwritten() {
        let dir = tempfile::tempdir().unwrap();
        let s = Store::open(dir.path()).unwrap();
        let on: i64 = s.conn.query_row("PRAGMA secure_delete", [], |r| r.get(0)).unwrap();
        assert_eq!(on, 1);
    }

    #[test]
    fn a_private_file_is_never_readable_by_others() {
        with_umask(0o000, || {
            let dir = tempfile::tempdir().unwrap();
            let path = dir.path().join("secret");
            fs::write(&path, "old").unwrap();
            fs::set_permissions(&path, Permissions::from_mode(0o666)).unwrap();
            fs::write(dir.path().join("secret.tmp"), "leftover").unwrap();
            write_private(&path, b"new\n").unwrap();
            assert_eq!(fs::read_to_string(&path).unwrap(), "new\n");
            assert_eq!(mode(&path), 0o600);
            assert!(!dir.path().join("secret.tmp").exists());
        });
    }
}
