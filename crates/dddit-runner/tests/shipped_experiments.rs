//! Every experiment file shipped in `experiments/` (and `experiments/gpu/`) validates: the only
//! problems allowed are those of the machine running the test — a backend this build lacks
//! (the GPU files need `--features tch`), a data set or pretrained weights not installed.

use dddit_runner::{Experiment, RunnerError};
use std::path::PathBuf;

fn shipped() -> Vec<PathBuf> {
    let root = PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../../experiments"));
    let mut files = Vec::new();
    for dir in [root.clone(), root.join("gpu")] {
        for e in std::fs::read_dir(&dir).unwrap() {
            let p = e.unwrap().path();
            if p.extension().is_some_and(|x| x == "toml") {
                files.push(p);
            }
        }
    }
    files.sort();
    files
}

/// A problem that says something about this machine, not about the file.
fn environmental(key: &str, message: &str) -> bool {
    let m = message.to_lowercase();
    (key == "device" && m.contains("cargo feature"))
        || (key.starts_with("data")
            && (m.contains("not found")
                || m.contains("no such file")
                || m.contains("install")
                || m.contains("missing")))
        || m.contains("not installed")
        || m.contains("assets fetch")
}

#[test]
fn every_shipped_experiment_validates_up_to_what_this_machine_lacks() {
    let files = shipped();
    assert!(files.len() >= 10, "{files:?}");
    let mut bad = Vec::new();
    for f in &files {
        match Experiment::open(f) {
            Ok(exp) => assert!(!exp.runs.is_empty(), "{}: no runs", f.display()),
            Err(RunnerError::Invalid(problems)) => {
                for p in problems.iter().filter(|p| !environmental(&p.key, &p.message)) {
                    bad.push(format!("{}: {p}", f.display()));
                }
            }
            Err(e) => bad.push(format!("{}: {e}", f.display())),
        }
    }
    assert!(bad.is_empty(), "shipped experiment files with problems:\n{}", bad.join("\n"));
}
