//! The one atomic file write of the workspace: results, checkpoints, caches and plots all go
//! through it. The bytes go to a temporary file beside the target (same file system), which is
//! flushed to disk, renamed over the target and the directory flushed too, so that after a crash
//! or a kill the target holds either its old content or the new one, never a part. A temporary
//! left by a kill between writing and renaming is named `.<name>.<random>.<pid>.tmp`, which
//! `dddit run` removes once its process is gone.

use std::fs::File;
use std::io::Write;
use std::path::Path;

/// Writes `bytes` to `path` atomically, creating its parent directory if needed.
pub fn write(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    write_with(path, |f| f.write_all(bytes))
}

/// Writes `value` as pretty JSON to `path` atomically.
pub fn write_json<T: serde::Serialize>(path: &Path, value: &T) -> std::io::Result<()> {
    let bytes = serde_json::to_vec_pretty(value).map_err(std::io::Error::other)?;
    write(path, &bytes)
}

/// Writes `path` atomically through `fill`, which writes the content into the open temporary
/// file.
pub fn write_with(path: &Path, fill: impl FnOnce(&mut File) -> std::io::Result<()>) -> std::io::Result<()> {
    let dir = parent(path)?;
    let mut tmp = temp_in(dir, path)?;
    fill(tmp.as_file_mut())?;
    tmp.as_file().sync_all()?;
    tmp.persist(path).map_err(|e| e.error)?;
    sync_dir(dir)
}

/// Writes `path` atomically through `fill`, which writes the content to the temporary path it
/// is given (for writers that take a path, such as burn's stores). The file `fill` finds there
/// exists and is empty.
pub fn write_via_path<E: From<std::io::Error>>(
    path: &Path,
    fill: impl FnOnce(&Path) -> Result<(), E>,
) -> Result<(), E> {
    let dir = parent(path)?;
    let tmp = temp_in(dir, path)?.into_temp_path();
    fill(&tmp)?;
    File::open(&tmp)?.sync_all()?;
    tmp.persist(path).map_err(|e| e.error)?;
    sync_dir(dir)?;
    Ok(())
}

/// An error of a writer given to [`write_via_path`]: the file system's, or the writer's own.
#[derive(Debug, thiserror::Error)]
pub enum AtomicError {
    /// Creating, flushing or renaming the file.
    #[error("{0}")]
    Io(#[from] std::io::Error),
    /// The writer's own failure (e.g. a store that cannot serialise).
    #[error("{0}")]
    Write(String),
}

/// Flushes a directory's entries (a rename in it) to disk; a no-op where directories cannot be
/// opened as files.
pub fn sync_dir(dir: &Path) -> std::io::Result<()> {
    #[cfg(unix)]
    File::open(dir)?.sync_all()?;
    #[cfg(not(unix))]
    let _ = dir;
    Ok(())
}

/// The target's directory, created if missing (`.` for a bare file name).
fn parent(path: &Path) -> std::io::Result<&Path> {
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    std::fs::create_dir_all(dir)?;
    Ok(dir)
}

/// A temporary next to `path`, created with the permissions a plain `File::create` would give
/// (`0o666` less the umask), not `tempfile`'s private `0o600`: results and checkpoints are
/// read by other users and jobs.
fn temp_in(dir: &Path, path: &Path) -> std::io::Result<tempfile::NamedTempFile> {
    let name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    let prefix = format!(".{name}.");
    let suffix = format!(".{}.tmp", std::process::id());
    let mut builder = tempfile::Builder::new();
    builder.prefix(&prefix).suffix(&suffix);
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        builder.permissions(std::fs::Permissions::from_mode(0o666));
    }
    builder.tempfile_in(dir)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn writes_replace_whole_files_and_leave_no_temporaries() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("sub").join("a.json");
        write(&p, b"old").unwrap();
        write_json(&p, &serde_json::json!({ "x": 1 })).unwrap();
        assert_eq!(std::fs::read_to_string(&p).unwrap(), "{\n  \"x\": 1\n}");
        write_via_path::<std::io::Error>(&p, |tmp| std::fs::write(tmp, b"via path")).unwrap();
        assert_eq!(std::fs::read(&p).unwrap(), b"via path");
        // A failing writer leaves the old content and no temporary.
        let err = write_with(&p, |_| Err(std::io::Error::other("disk full")));
        assert!(err.is_err());
        assert_eq!(std::fs::read(&p).unwrap(), b"via path");
        let names: Vec<String> = std::fs::read_dir(p.parent().unwrap())
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        assert_eq!(names, ["a.json"]);
    }

    #[cfg(unix)]
    #[test]
    fn files_get_the_permissions_of_a_plain_create() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let plain = dir.path().join("plain");
        std::fs::write(&plain, b"x").unwrap();
        let atomic = dir.path().join("atomic");
        write(&atomic, b"x").unwrap();
        let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode(&atomic), mode(&plain));
    }

    #[test]
    fn temporary_names_carry_the_process_for_tidying() {
        let dir = tempfile::tempdir().unwrap();
        let t = temp_in(dir.path(), &dir.path().join("table.png")).unwrap();
        let name = t.path().file_name().unwrap().to_string_lossy().into_owned();
        assert!(name.starts_with(".table.png.") && name.ends_with(&format!(".{}.tmp", std::process::id())), "{name}");
    }
}
