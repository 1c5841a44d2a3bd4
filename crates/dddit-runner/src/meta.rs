//! Provenance of a run: git commit and dirty flag, host, CPU, backend and times, written into
//! every run directory so a number in a table can be traced to the code and machine behind it.

use serde::{Deserialize, Serialize};
use std::path::Path;
use std::process::Command;

/// Where and with what code a run was made.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Provenance {
    /// `git rev-parse HEAD` of the experiment file's repository; outside git, `DDDIT_GIT_COMMIT`
    /// if set (a copied tree), else `unknown`.
    pub git_commit: String,
    /// Whether tracked files differed from that commit.
    pub git_dirty: bool,
    /// Host name.
    pub host: String,
    /// CPU model (from /proc/cpuinfo where available).
    pub cpu: String,
    /// Logical cores available to the process.
    pub cores: usize,
    /// dddit version.
    pub dddit_version: String,
}

impl Provenance {
    /// Collects the provenance for an experiment file at `path`.
    pub fn collect(path: &Path) -> Provenance {
        let dir = path.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(Path::new("."));
        let git = |args: &[&str]| {
            Command::new("git")
                .arg("-C")
                .arg(dir)
                .args(args)
                .output()
                .ok()
                .filter(|o| o.status.success())
                .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
        };
        // A copied tree without `.git` (a cluster node, a lent GPU machine) names the commit
        // it was copied from through DDDIT_GIT_COMMIT (and DDDIT_GIT_DIRTY=1 if it had changes).
        let (git_commit, git_dirty) = match git(&["rev-parse", "HEAD"]) {
            Some(c) => (c, git(&["status", "--porcelain", "--untracked-files=no"]).is_some_and(|s| !s.is_empty())),
            None => match std::env::var("DDDIT_GIT_COMMIT") {
                Ok(c) if !c.trim().is_empty() => {
                    (c.trim().to_string(), std::env::var("DDDIT_GIT_DIRTY").is_ok_and(|d| d.trim() == "1"))
                }
                _ => ("unknown".into(), false),
            },
        };
        let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
            .map(|s| s.trim().to_string())
            .or_else(|_| std::env::var("HOSTNAME"))
            .unwrap_or_else(|_| "unknown".into());
        let cpu = std::fs::read_to_string("/proc/cpuinfo")
            .ok()
            .and_then(|s| {
                s.lines()
                    .find(|l| l.starts_with("model name"))
                    .and_then(|l| l.split(':').nth(1))
                    .map(|s| s.trim().to_string())
            })
            .unwrap_or_else(|| std::env::consts::ARCH.to_string());
        let cores = std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1);
        Provenance { git_commit, git_dirty, host, cpu, cores, dddit_version: env!("CARGO_PKG_VERSION").into() }
    }
}

/// Seconds since the Unix epoch.
pub fn unix_now() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0)
}

/// `YYYY-MM-DDTHH:MM:SSZ` of a Unix time (UTC).
pub fn utc(secs: u64) -> String {
    let days = (secs / 86_400) as i64;
    let rem = secs % 86_400;
    // Civil date from days since 1970-01-01 (Howard Hinnant's algorithm).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!("{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}Z", rem / 3600, rem / 60 % 60, rem % 60)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn utc_formats_known_dates() {
        assert_eq!(utc(0), "1970-01-01T00:00:00Z");
        assert_eq!(utc(951_782_400), "2000-02-29T00:00:00Z");
        assert_eq!(utc(1_795_707_296), "2026-11-26T15:34:56Z");
    }

    #[test]
    fn provenance_of_this_repository() {
        let p = Provenance::collect(Path::new(env!("CARGO_MANIFEST_DIR")).join("Cargo.toml").as_path());
        assert!(p.cores >= 1);
        assert!(!p.host.is_empty());
        // Inside a git checkout the commit is a 40-hex hash; a source tarball says "unknown".
        assert!(
            p.git_commit == "unknown"
                || (p.git_commit.len() == 40 && p.git_commit.chars().all(|c| c.is_ascii_hexdigit())),
            "{}",
            p.git_commit
        );
    }
}
