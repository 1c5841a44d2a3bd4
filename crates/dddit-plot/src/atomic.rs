//! Atomic file writes: a reader (or a crash) never sees a half-written plot, because the bytes go
//! to a temporary file beside the target that is then renamed over it.

use std::ffi::OsString;
use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};

use crate::error::PlotError;

/// `path` with `suffix` appended to its last component (`runs/fd.v2` + `.svg` →
/// `runs/fd.v2.svg`), unlike `Path::with_extension`, which would replace `.v2`.
pub(crate) fn with_suffix(path: &Path, suffix: &str) -> PathBuf {
    let mut s: OsString = path.as_os_str().to_owned();
    s.push(suffix);
    PathBuf::from(s)
}

/// The temporary file `write` uses for `path`: hidden, in the same directory (so the rename stays
/// on one file system), and unique to this process.
fn temp_path(path: &Path) -> PathBuf {
    let name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    path.with_file_name(format!(".{name}.tmp{}", std::process::id()))
}

/// Writes `bytes` to `path` atomically, creating its parent directory if needed.
pub(crate) fn write(path: &Path, bytes: &[u8]) -> Result<(), PlotError> {
    let io = |p: &Path| {
        let p = p.to_path_buf();
        move |source| PlotError::Io { path: p, source }
    };
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        fs::create_dir_all(dir).map_err(io(dir))?;
    }
    let tmp = temp_path(path);
    let written = fs::File::create(&tmp)
        .and_then(|mut f| {
            f.write_all(bytes)?;
            f.sync_all()
        })
        .map_err(io(&tmp))
        .and_then(|()| fs::rename(&tmp, path).map_err(io(path)));
    if written.is_err() {
        // Best effort: the error being reported is the write's, not this clean-up's.
        let _ = fs::remove_file(&tmp);
    }
    written
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scratch(name: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("dddit-plot-atomic-{name}-{}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        dir
    }

    #[test]
    fn suffix_is_appended() {
        assert_eq!(with_suffix(Path::new("a/fd.v2"), ".svg"), PathBuf::from("a/fd.v2.svg"));
        assert_eq!(with_suffix(Path::new("plot"), ".png"), PathBuf::from("plot.png"));
    }

    #[test]
    fn writes_replaces_and_leaves_no_temp() {
        let dir = scratch("write");
        let path = dir.join("nested").join("out.txt");
        write(&path, b"first").unwrap();
        write(&path, b"second").unwrap();
        assert_eq!(fs::read(&path).unwrap(), b"second");
        let names: Vec<_> = fs::read_dir(path.parent().unwrap()).unwrap().map(|e| e.unwrap().file_name()).collect();
        assert_eq!(names, vec![OsString::from("out.txt")]);
        fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn errors_name_the_path() {
        let dir = scratch("err");
        fs::create_dir_all(&dir).unwrap();
        // The parent "directory" is a file, so the directory cannot be created.
        let blocker = dir.join("file");
        fs::write(&blocker, b"x").unwrap();
        let err = write(&blocker.join("out.png"), b"data").unwrap_err();
        assert!(matches!(err, PlotError::Io { .. }));
        assert!(err.to_string().starts_with(&blocker.display().to_string()), "{err}");
        fs::remove_dir_all(&dir).unwrap();
    }
}
