//! Files that hold secrets or users' data (the store and its side files, copied media, the
//! Matrix registration) are created readable by Causeway's user only, and files found with
//! wider permissions (from an older version) are narrowed at start-up.

use std::io;
use std::path::{Path, PathBuf};

#[cfg(unix)]
fn set_mode(path: &Path, mode: u32) -> io::Result<()> {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode))
}

#[cfg(not(unix))]
fn set_mode(_path: &Path, _mode: u32) -> io::Result<()> {
    Ok(())
}

/// Create `path` empty if missing (mode 0600), else narrow it to 0600.
pub fn file(path: &Path) -> io::Result<()> {
    let mut open = std::fs::OpenOptions::new();
    open.create(true).append(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut open, 0o600);
    open.open(path)?;
    set_mode(path, 0o600)
}

/// Write `bytes` to `path`, readable by this user only from the first byte on.
pub fn write(path: &Path, bytes: &[u8]) -> io::Result<()> {
    use std::io::Write;
    file(path)?;
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .truncate(true)
        .open(path)?;
    f.write_all(bytes)?;
    f.sync_all()
}

/// Create the directory (and its parents) if missing; narrow it to 0700.
pub fn dir(path: &Path) -> io::Result<()> {
    std::fs::create_dir_all(path)?;
    set_mode(path, 0o700)
}

/// The file of a SQLite store URL (`sqlite://path?...`, `sqlite:path`); None in memory.
pub fn sqlite_path(url: &str) -> Option<PathBuf> {
    let rest = url
        .strip_prefix("sqlite://")
        .or_else(|| url.strip_prefix("sqlite:"))?;
    let path = rest.split('?').next()?;
    (!path.is_empty() && !path.contains(":memory:")).then(|| PathBuf::from(path))
}

/// The SQLite store and its side files (`-wal`, `-shm`, which SQLite creates with the
/// database file's mode), readable by this user only.
pub fn sqlite_store(url: &str) -> io::Result<()> {
    let Some(path) = sqlite_path(url) else {
        return Ok(());
    };
    file(&path)?;
    for side in ["-wal", "-shm", "-journal"] {
        let mut p = path.clone().into_os_string();
        p.push(side);
        let p = PathBuf::from(p);
        if p.exists() {
            set_mode(&p, 0o600)?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn store_urls_name_their_file() {
        for (url, path) in [
            ("sqlite://causeway.db?mode=rwc", Some("causeway.db")),
            (
                "sqlite:///var/lib/cw/cw.db?mode=rwc",
                Some("/var/lib/cw/cw.db"),
            ),
            ("sqlite:cw.db", Some("cw.db")),
            ("sqlite::memory:", None),
            ("sqlite://:memory:", None),
            ("postgres://u:p@h/db", None),
        ] {
            assert_eq!(sqlite_path(url), path.map(PathBuf::from), "{url}");
        }
    }

    #[cfg(unix)]
    #[test]
    fn files_and_dirs_are_private() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().expect("tempdir");
        let mode = |p: &Path| std::fs::metadata(p).expect("meta").permissions().mode() & 0o777;
        let db = dir.path().join("cw.db");
        let wal = dir.path().join("cw.db-wal");
        std::fs::write(&db, b"x").expect("db");
        std::fs::write(&wal, b"x").expect("wal");
        set_mode(&db, 0o644).expect("chmod");
        set_mode(&wal, 0o666).expect("chmod");
        sqlite_store(&format!("sqlite://{}?mode=rwc", db.display())).expect("narrowed");
        assert_eq!((mode(&db), mode(&wal)), (0o600, 0o600));
        assert_eq!(std::fs::read(&db).expect("kept"), b"x");
        let media = dir.path().join("a/media");
        super::dir(&media).expect("dir");
        assert_eq!(mode(&media), 0o700);
        let reg = dir.path().join("reg.yaml");
        write(&reg, b"as_token: t").expect("write");
        assert_eq!(mode(&reg), 0o600);
        write(&reg, b"short").expect("again");
        assert_eq!(std::fs::read(&reg).expect("read"), b"short");
    }
}
