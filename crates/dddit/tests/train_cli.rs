//! `dddit train`: runs from a TOML file, writes metrics and checkpoints, resumes, and names
//! the file and key of a bad setting.

use std::path::Path;
use std::process::Command;

const RUN: &str = r#"
device = "flex"
[model]
preset = "DiT-N/4"
[router]
kind = "dynamic-width"
[data]
kind = "shapes"
size = 16
len = 64
[train]
steps = STEPS
batch_size = 4
lr = 1e-3
checkpoint_every = 2
"#;

fn train(cfg: &Path, out: &Path, extra: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_dddit"))
        .args(["train"])
        .arg(cfg)
        .arg("--out")
        .arg(out)
        .args(extra)
        .output()
        .unwrap()
}

#[test]
fn trains_resumes_and_reports_errors() {
    let dir = std::env::temp_dir().join(format!("dddit-cli-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let cfg = dir.join("run.toml");
    let out = dir.join("run");
    std::fs::write(&cfg, RUN.replace("STEPS", "4")).unwrap();
    let o = train(&cfg, &out, &[]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let lines = |p: &Path| std::fs::read_to_string(p.join("metrics.jsonl")).unwrap().lines().count();
    assert_eq!(lines(&out), 4);
    assert!(out.join("checkpoint/state.json").exists() && out.join("config.toml").exists());
    // More steps: without --resume the existing run is not touched; with it, the run resumes
    // at step 4 and logs only the new steps.
    std::fs::write(&cfg, RUN.replace("STEPS", "6")).unwrap();
    let o = train(&cfg, &out, &[]);
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(!o.status.success() && err.contains("--resume"), "{err}");
    assert_eq!(lines(&out), 4);
    let o = train(&cfg, &out, &["--resume"]);
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(o.status.success() && err.contains("resumed") && err.contains("at step 4"), "{err}");
    assert_eq!(lines(&out), 6);
    // A misspelt key is reported with the file and the line.
    std::fs::write(&cfg, RUN.replace("STEPS", "6").replace("lr = 1e-3", "lrr = 1e-3")).unwrap();
    let o = train(&cfg, &dir.join("bad"), &[]);
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(!o.status.success() && err.contains("run.toml") && err.contains("line 14") && err.contains("lrr"), "{err}");
    std::fs::remove_dir_all(&dir).unwrap();
}
