//! Reusing completed runs of other results directories (`dddit run --reuse DIR`): a run whose
//! settings — its `config.toml` and `eval.toml`, seed included — equal those of a completed run
//! elsewhere is copied instead of trained again. Experiments share runs this way: the dense
//! baseline of one table is the dense baseline of the next, and a sweep trained once on a GPU
//! machine fills several experiments' tables.

use crate::meta::Provenance;
use crate::runner::{same_eval, same_run_file, RunRecord, DONE, RECORD};
use crate::RunnerError;
use dddit_eval::eval::EvalConfig;
use std::path::{Path, PathBuf};

/// Checks that every directory given to `--reuse` exists, before any run starts.
pub fn check_dirs(dirs: &[PathBuf]) -> Result<(), RunnerError> {
    for d in dirs {
        if !d.is_dir() {
            return Err(RunnerError::Usage(format!(
                "--reuse {}: not a results directory (it does not exist or is not a directory)",
                d.display()
            )));
        }
    }
    Ok(())
}

/// The first completed run directory directly below one of `dirs` (in the order given, then by
/// name) whose stored settings equal `config` and `eval`; `target` itself is never returned.
pub fn find(dirs: &[PathBuf], config: &str, eval: &EvalConfig, target: &Path) -> Option<PathBuf> {
    let target = target.canonicalize().ok();
    for dir in dirs {
        let Ok(read) = std::fs::read_dir(dir) else { continue };
        let mut runs: Vec<PathBuf> = read
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.join(DONE).is_file() && p.join(RECORD).is_file())
            .collect();
        runs.sort();
        for run in runs {
            if target.is_some() && run.canonicalize().ok() == target {
                continue;
            }
            let same_config = std::fs::read_to_string(dddit_train::RunDir::new(&run).config())
                .is_ok_and(|stored| same_run_file(&stored, config));
            if same_config
                && std::fs::read_to_string(run.join("eval.toml")).is_ok_and(|stored| same_eval(&stored, eval))
            {
                return Some(run);
            }
        }
    }
    None
}

/// The provenance record of the run being reused (what trained it, where, when).
pub fn source_record(from: &Path) -> Result<RunRecord, RunnerError> {
    let path = from.join(RECORD);
    let bytes = std::fs::read(&path).map_err(|e| RunnerError::io(&path, e))?;
    serde_json::from_slice(&bytes).map_err(|e| RunnerError::io(&path, e))
}

/// What to say about the code of a reused run: `--reuse` matches settings, not code, so a run
/// trained by another commit (or an uncommitted tree) is named as such, e.g.
/// `; trained at 1d7ee0c-dirty, this is 6760f68`; empty when both are the same clean commit.
pub fn code_note(trained: &Provenance, now: &Provenance) -> String {
    let show = |p: &Provenance| {
        let short: String = p.git_commit.chars().take(7).collect();
        if p.git_dirty {
            format!("{short}-dirty")
        } else {
            short
        }
    };
    if trained.git_commit == now.git_commit && !trained.git_dirty && !now.git_dirty {
        String::new()
    } else {
        format!("; trained at {}, this is {}", show(trained), show(now))
    }
}

/// Copies the run directory `from` to `to` through a temporary directory beside `to` and a
/// rename, so that `to` is never seen half-copied; `finish` runs on the temporary copy before
/// the rename (it rewrites `run.json`). An incomplete run already at `to` is replaced.
pub fn copy_run(
    from: &Path,
    to: &Path,
    finish: impl FnOnce(&Path) -> Result<(), RunnerError>,
) -> Result<(), RunnerError> {
    let parent = to.parent().unwrap_or(Path::new("."));
    let name = to.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    let tmp = parent.join(format!(".{name}.reuse.{}.tmp", std::process::id()));
    let _ = std::fs::remove_dir_all(&tmp);
    copy_tree(from, &tmp)?;
    finish(&tmp)?;
    if to.exists() {
        let old = parent.join(format!(".{name}.replaced.{}.tmp", std::process::id()));
        let _ = std::fs::remove_dir_all(&old);
        std::fs::rename(to, &old).map_err(|e| RunnerError::io(to, e))?;
        std::fs::rename(&tmp, to).map_err(|e| RunnerError::io(to, e))?;
        dddit_core::atomic::sync_dir(parent).map_err(|e| RunnerError::io(parent, e))?;
        std::fs::remove_dir_all(&old).map_err(|e| RunnerError::io(&old, e))
    } else {
        std::fs::rename(&tmp, to).map_err(|e| RunnerError::io(to, e))?;
        dddit_core::atomic::sync_dir(parent).map_err(|e| RunnerError::io(parent, e))
    }
}

fn copy_tree(from: &Path, to: &Path) -> Result<(), RunnerError> {
    std::fs::create_dir_all(to).map_err(|e| RunnerError::io(to, e))?;
    for entry in std::fs::read_dir(from).map_err(|e| RunnerError::io(from, e))? {
        let entry = entry.map_err(|e| RunnerError::io(from, e))?;
        let (src, dst) = (entry.path(), to.join(entry.file_name()));
        if entry.file_type().map_err(|e| RunnerError::io(&src, e))?.is_dir() {
            copy_tree(&src, &dst)?;
        } else {
            std::fs::copy(&src, &dst).map_err(|e| RunnerError::io(&src, e))?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run_dir(root: &Path, name: &str, config: &str, eval: &EvalConfig) -> PathBuf {
        let d = root.join(name);
        std::fs::create_dir_all(d.join("checkpoint")).unwrap();
        std::fs::write(d.join("config.toml"), config).unwrap();
        std::fs::write(d.join("eval.toml"), toml::to_string(eval).unwrap()).unwrap();
        std::fs::write(d.join(RECORD), "{}").unwrap();
        std::fs::write(d.join("checkpoint/model.bin"), [1u8, 2, 3]).unwrap();
        d
    }

    #[test]
    fn the_code_of_a_reused_run_is_named_when_it_differs() {
        let p = |commit: &str, dirty: bool| Provenance {
            git_commit: commit.into(),
            git_dirty: dirty,
            host: "h".into(),
            cpu: "c".into(),
            cores: 2,
            dddit_version: "0".into(),
        };
        let head = "6760f68a3d0000000000000000000000000000ff";
        assert_eq!(code_note(&p(head, false), &p(head, false)), "");
        assert_eq!(
            code_note(&p("1d7ee0c9b7000000000000000000000000000000", true), &p(head, false)),
            "; trained at 1d7ee0c-dirty, this is 6760f68"
        );
        // The same commit is not the same code when either tree had uncommitted changes.
        assert_eq!(code_note(&p(head, false), &p(head, true)), "; trained at 6760f68, this is 6760f68-dirty");
    }

    #[test]
    fn finds_only_completed_runs_of_equal_settings_and_copies_them_whole() {
        let root = std::env::temp_dir().join(format!("dddit-reuse-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&root);
        let eval = EvalConfig::default();
        let mut other_eval = EvalConfig::default();
        other_eval.samples += 1;
        let a = run_dir(&root.join("a"), "x-seed0", "seed = 0\n", &eval);
        // Not complete yet: never reused.
        run_dir(&root.join("a"), "y-seed0", "seed = 1\n", &eval);
        let dirs = vec![root.join("a")];
        assert_eq!(
            find(&dirs, "seed = 0\n", &eval, &root.join("b/x-seed0")),
            None,
            "a run without done.json was offered"
        );
        std::fs::write(a.join(DONE), "{}").unwrap();
        assert_eq!(find(&dirs, "seed = 0\n", &eval, &root.join("b/x-seed0")), Some(a.clone()));
        assert_eq!(find(&dirs, "seed = 1\n", &eval, &root.join("b/x")), None, "other settings");
        assert_eq!(find(&dirs, "seed = 0\n", &other_eval, &root.join("b/x")), None, "other eval settings");
        assert_eq!(find(&dirs, "seed = 0\n", &eval, &a), None, "a run is not its own source");

        // An incomplete run at the target is replaced; nested files come along.
        let to = root.join("b/x-seed0");
        std::fs::create_dir_all(&to).unwrap();
        std::fs::write(to.join("stale.txt"), "old").unwrap();
        copy_run(&a, &to, |tmp| {
            std::fs::write(tmp.join(RECORD), "rewritten").unwrap();
            Ok(())
        })
        .unwrap();
        assert!(to.join(DONE).exists() && !to.join("stale.txt").exists());
        assert_eq!(std::fs::read_to_string(to.join(RECORD)).unwrap(), "rewritten");
        assert_eq!(std::fs::read_to_string(a.join(RECORD)).unwrap(), "{}", "the source is untouched");
        assert_eq!(std::fs::read(to.join("checkpoint/model.bin")).unwrap(), [1, 2, 3]);
        let leftovers: Vec<_> = std::fs::read_dir(root.join("b")).unwrap().map(|e| e.unwrap().file_name()).collect();
        assert_eq!(leftovers.len(), 1, "{leftovers:?}");
        assert!(check_dirs(&[root.join("nope")]).is_err() && check_dirs(&dirs).is_ok());
        std::fs::remove_dir_all(&root).ok();
    }
}
