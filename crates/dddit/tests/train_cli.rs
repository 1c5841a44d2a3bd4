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
    // Not a terminal: whole lines (the first step and the last), no `\r` updates.
    assert!(!err.contains('\r') && err.contains("step 5/6") && err.contains("step 6/6"), "{err:?}");
    assert_eq!(lines(&out), 6);
    // A misspelt key is reported with the file and the line.
    std::fs::write(&cfg, RUN.replace("STEPS", "6").replace("lr = 1e-3", "lrr = 1e-3")).unwrap();
    let o = train(&cfg, &dir.join("bad"), &[]);
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(!o.status.success() && err.contains("run.toml:14: train.lrr: unknown field"), "{err}");
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn train_refuses_out_of_range_settings_like_run_does() {
    // `dddit train` once trained these and exited 0: one validation path for both commands,
    // every problem at once with file, line and key, nothing started.
    let dir = std::env::temp_dir().join(format!("dddit-cli-range-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let cfg = dir.join("run.toml");
    let text = RUN.replace("STEPS", "0").replace("lr = 1e-3", "lr = -1e-3\nema_decay = 5.0")
        + "[train.loss]\nflops_target = 3.0\nbalance = -1.0\n";
    std::fs::write(&cfg, text).unwrap();
    let o = train(&cfg, &dir.join("run"), &[]);
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(!o.status.success(), "{err}");
    let path = cfg.display();
    for want in [
        format!("{path}:12: train.steps: must be ≥ 1"),
        format!("{path}:14: train.lr: must be a positive number"),
        format!("{path}:15: train.ema_decay: must be in [0, 1]"),
        format!("{path}:18: train.loss.flops_target"),
        format!("{path}:19: train.loss.balance: a loss weight must be ≥ 0"),
    ] {
        assert!(err.contains(&want), "missing `{want}` in:\n{err}");
    }
    assert!(!dir.join("run").exists(), "a refused run must not create its directory");
    // A batch larger than the data and a NaN router bias, by key and line.
    let text = RUN
        .replace("STEPS", "2")
        .replace("batch_size = 4", "batch_size = 65")
        .replace("kind = \"dynamic-width\"", "kind = \"dynamic-width\"\ninit_bias = nan");
    std::fs::write(&cfg, text).unwrap();
    let o = train(&cfg, &dir.join("run"), &[]);
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains(&format!("{path}:7: router.init_bias: must be a finite number")), "{err}");
    assert!(err.contains(&format!("{path}:14: train.batch_size: 65 is more than the 64 samples")), "{err}");
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn output_to_a_closed_pipe_ends_quietly() {
    // `dddit routers | head -1`: the reader is gone before the listing is written. The
    // process must end without a panic message (it once exited 101 with one).
    use std::process::Stdio;
    let mut child = Command::new(env!("CARGO_BIN_EXE_dddit"))
        .arg("routers")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    drop(child.stdout.take());
    let o = child.wait_with_output().unwrap();
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(!err.contains("panicked") && !err.contains("Broken pipe"), "{err}");
    assert_ne!(o.status.code(), Some(101), "{err}");
}
