//! Removing the temporary files that atomic writes leave behind when a process is killed
//! between writing and renaming (`.table.svg.tmp1234`, `.run.json.1234.tmp`,
//! `.name.reuse.1234.tmp/`), so that a rerun leaves a results directory clean.

use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

/// A temporary file whose writer's process is gone (on this machine) is removed once it is
/// this old: no atomic write of dddit keeps its file open for a minute, and the margin keeps a
/// file that another machine is writing into a shared results directory (Slurm shards) safe
/// from a process number that happens to be free here.
const DEAD_WRITER_AGE: Duration = Duration::from_secs(60);

/// Any temporary file this old is removed, whoever wrote it.
const ANY_AGE: Duration = Duration::from_secs(3600);

/// Removes stale temporaries directly in `dir` and in its subdirectories (the run
/// directories); returns what was removed. Errors (a directory that cannot be read, a file
/// removed by someone else meanwhile) are skipped: tidying never fails a run.
pub fn remove_stale_temps(dir: &Path) -> Vec<PathBuf> {
    let mut removed = Vec::new();
    let Ok(entries) = std::fs::read_dir(dir) else { return removed };
    for e in entries.flatten() {
        let path = e.path();
        let Ok(meta) = e.metadata() else { continue };
        let name = e.file_name().to_string_lossy().into_owned();
        if let Some(pid) = temp_pid(&name) {
            if stale(&meta, pid) {
                let gone = if meta.is_dir() { std::fs::remove_dir_all(&path) } else { std::fs::remove_file(&path) };
                if gone.is_ok() {
                    removed.push(path);
                }
            }
        } else if meta.is_dir() && !name.starts_with('.') {
            removed.extend(remove_stale_temps_here(&path));
        }
    }
    removed
}

/// The same, in `dir` only.
fn remove_stale_temps_here(dir: &Path) -> Vec<PathBuf> {
    let mut removed = Vec::new();
    let Ok(entries) = std::fs::read_dir(dir) else { return removed };
    for e in entries.flatten() {
        let name = e.file_name().to_string_lossy().into_owned();
        let (Some(pid), Ok(meta)) = (temp_pid(&name), e.metadata()) else { continue };
        if stale(&meta, pid) {
            let gone = if meta.is_dir() { std::fs::remove_dir_all(e.path()) } else { std::fs::remove_file(e.path()) };
            if gone.is_ok() {
                removed.push(e.path());
            }
        }
    }
    removed
}

/// Whether `name` is one of dddit's temporary names: `Some(pid)` with the writer's process
/// number where the name holds one (`.x.tmp<pid>`, `.x.<pid>.tmp`), `Some(None)` for a
/// temporary without one (`x.json.tmp`), `None` for anything else.
fn temp_pid(name: &str) -> Option<Option<u32>> {
    if let Some((_, digits)) = name.rsplit_once(".tmp") {
        if !digits.is_empty() && digits.bytes().all(|b| b.is_ascii_digit()) && name.starts_with('.') {
            return Some(digits.parse().ok());
        }
    }
    let stem = name.strip_suffix(".tmp")?;
    Some(stem.rsplit_once('.').and_then(|(_, pid)| pid.parse().ok()))
}

fn stale(meta: &std::fs::Metadata, pid: Option<u32>) -> bool {
    let age = meta.modified().ok().and_then(|m| SystemTime::now().duration_since(m).ok()).unwrap_or_default();
    age >= ANY_AGE || (age >= DEAD_WRITER_AGE && pid.is_some_and(|p| !running_here(p)))
}

/// Whether process `pid` exists on this machine; `true` where that cannot be told (no `/proc`).
fn running_here(pid: u32) -> bool {
    if !Path::new("/proc/self").exists() {
        return true;
    }
    Path::new(&format!("/proc/{pid}")).exists()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn temporary_names() {
        assert_eq!(temp_pid(".table.svg.tmp1234"), Some(Some(1234)));
        assert_eq!(temp_pid(".run.json.77.tmp"), Some(Some(77)));
        assert_eq!(temp_pid(".a.reuse.9.tmp"), Some(Some(9)));
        assert_eq!(temp_pid("eval.json.tmp"), Some(None));
        assert_eq!(temp_pid("table.md"), None);
        assert_eq!(temp_pid("dense-seed0"), None);
        assert_eq!(temp_pid(".tmpdir"), None);
    }

    #[test]
    fn stale_temporaries_go_and_live_ones_stay() {
        let dir = std::env::temp_dir().join(format!("dddit-tidy-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(dir.join("run-seed0")).unwrap();
        let old = SystemTime::now() - Duration::from_secs(120);
        let make = |p: PathBuf, when: SystemTime| {
            std::fs::write(&p, b"x").unwrap();
            std::fs::File::options().write(true).open(&p).unwrap().set_modified(when).unwrap();
            p
        };
        // A process number above Linux's limit (2^22) never runs.
        let dead = make(dir.join(".table.png.tmp4999999"), old);
        let dead_in_run = make(dir.join("run-seed0").join(".run.json.4999999.tmp"), old);
        let mine = make(dir.join(format!(".table.svg.tmp{}", std::process::id())), old);
        let fresh = make(dir.join(".fd.png.tmp4999999"), SystemTime::now());
        let kept = make(dir.join("table.md"), old);
        let removed = remove_stale_temps(&dir);
        assert!(!dead.exists() && !dead_in_run.exists(), "{removed:?}");
        assert!(mine.exists() && fresh.exists() && kept.exists());
        assert_eq!(removed.len(), 2);
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
