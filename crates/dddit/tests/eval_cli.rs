//! `dddit sample` and `dddit eval` on a run trained by `dddit train`: a PNG grid, and an
//! `eval.json` with every field filled.

use std::path::Path;
use std::process::Command;

const RUN: &str = r#"
device = "flex"
[model]
preset = "DiT-N/4"
[router]
kind = "topk"
experts = 4
k = 1
[data]
kind = "shapes"
size = 32
len = 64
[train]
steps = 3
batch_size = 4
lr = 1e-3
checkpoint_every = 3
snapshots = [2]
"#;

fn dddit(args: &[&str], extra: &[&Path]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_dddit")).args(args).args(extra).output().unwrap()
}

fn ok(o: &std::process::Output) {
    assert!(
        o.status.success(),
        "stdout:\n{}\nstderr:\n{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    );
}

#[test]
fn sample_and_eval_a_trained_run() {
    let dir = std::env::temp_dir().join(format!("dddit-eval-cli-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let cfg = dir.join("run.toml");
    let run = dir.join("run");
    std::fs::write(&cfg, RUN).unwrap();
    ok(&dddit(&["train"], &[&cfg, Path::new("--out"), &run]));

    // Evaluating before training is refused with the reason.
    let o = dddit(&["eval"], &[&dir]);
    assert!(!o.status.success() && String::from_utf8_lossy(&o.stderr).contains("config.toml"));

    let png = dir.join("grid.png");
    ok(&dddit(&["sample", "--n", "6", "--steps", "3"], &[&run, Path::new("--out"), &png]));
    assert!(std::fs::metadata(&png).unwrap().len() > 100);

    // Inception joins when its weights are present (CI fetches them; see the crate README).
    let inception = dddit_eval::assets::asset("inception").unwrap().is_present().unwrap_or(false);
    let features = if inception { "classifier,inception" } else { "classifier" };
    let eval_toml = dir.join("eval.toml");
    std::fs::write(
        &eval_toml,
        format!(
            "samples = 12\nbatch_size = 6\nreference_samples = 24\ntiming_batch = 4\ntiming_batch1_runs = 1\ngrid = 12\nstats_cache = \"{}\"\n[sample]\nsteps = 4\n",
            dir.join("stats").display()
        ),
    )
    .unwrap();
    let o = dddit(&["eval", "--features", features, "--config"], &[&eval_toml, &run]);
    ok(&o);
    let stdout = String::from_utf8_lossy(&o.stdout);
    assert!(stdout.contains("GFLOPs per sample") && stdout.contains("ms per image"), "{stdout}");

    let v: serde_json::Value = serde_json::from_slice(&std::fs::read(run.join("eval.json")).unwrap()).unwrap();
    assert_eq!(v["router"], "topk");
    assert_eq!(v["settings"]["samples"], 12);
    let feats = v["features"].as_array().unwrap();
    assert_eq!(feats.len(), if inception { 2 } else { 1 });
    for f in feats {
        assert!(f["fd"].as_f64().unwrap().is_finite() && f["fd"].as_f64().unwrap() >= 0.0, "{f}");
        for k in ["precision", "recall"] {
            let x = f["precision_recall"][k].as_f64().unwrap();
            assert!((0.0..=1.0).contains(&x), "{f}");
        }
        assert_eq!(f["generated"], 12);
        assert_eq!(f["reference"], 24);
        assert!(!f["extractor"].as_str().unwrap().is_empty());
    }
    // The classifier and the shapes detector both judge the class; the detector also reports
    // adherence.
    assert_eq!(v["class_accuracy"].as_array().unwrap().len(), 2);
    assert!(v["adherence"]["mean_objects"].as_f64().is_some());
    let c = &v["compute"];
    assert_eq!(c["samples"], 12);
    assert!(c["gflops_per_sample"]["mean"].as_f64().unwrap() > 0.0);
    // Relative to the plain dense DiT: top-1 of 4 full-width experts costs about dense, plus
    // its router; with every expert on it would cost far more.
    let ratio = c["gflops_ratio"].as_f64().unwrap();
    assert!(ratio > 1.0 && ratio < 1.1, "{ratio}");
    assert!(c["full_gflops_per_sample"].as_f64().unwrap() > 2.0 * c["dense_gflops_per_sample"].as_f64().unwrap());
    let by_t = c["by_t"].as_array().unwrap();
    assert_eq!(by_t.len(), 3);
    assert!(by_t.iter().any(|r| r["routing"]["experts"].as_f64().is_some()), "{c}");
    assert!(c["timing"]["batch1_ms_per_image"].as_f64().unwrap() > 0.0);
    assert!(c["timing"]["batch_ms_per_image"].as_f64().unwrap() > 0.0);
    assert!(run.join("samples.png").exists());
    // The reference statistics were cached for the next evaluation.
    assert!(std::fs::read_dir(dir.join("stats")).unwrap().count() >= 1);

    // The snapshot of step 2 (`train.snapshots`) evaluates beside the checkpoint's evaluation.
    let o =
        dddit(&["eval", "--features", "classifier", "--no-timing", "--snapshot", "2", "--config"], &[&eval_toml, &run]);
    ok(&o);
    let v: serde_json::Value = serde_json::from_slice(&std::fs::read(run.join("eval-step-2.json")).unwrap()).unwrap();
    assert_eq!(v["train_step"], 2);
    assert!(run.join("samples-step-2.png").exists());
    let o = dddit(&["eval", "--snapshot", "1"], &[&run]);
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(!o.status.success() && err.contains("no snapshot of step 1") && err.contains("[2]"), "{err}");
    std::fs::remove_dir_all(&dir).unwrap();
}
