//! A caption-conditioned run end to end: `dddit train` with `[model] caption = true` and the
//! `text-budget` router on shapes, then `dddit eval`, whose `eval.json` must carry the caption
//! report (detector adherence to every caption object, compute against object count). The
//! hashed encoder keeps the test independent of the MiniLM download.

use std::path::Path;
use std::process::Command;

const RUN: &str = r#"
device = "flex"
[model]
preset = "DiT-N/4"
caption = true
text_encoder = "hashed"
[router]
kind = "text-budget"
[data]
kind = "shapes"
size = 16
len = 64
max_objects = 4
[train]
steps = 3
batch_size = 4
lr = 1e-3
checkpoint_every = 3
"#;

fn ok(o: &std::process::Output) {
    assert!(
        o.status.success(),
        "stdout:\n{}\nstderr:\n{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    );
}

#[test]
fn a_caption_conditioned_run_trains_and_reports_adherence_and_compute_by_caption() {
    let dir = std::env::temp_dir().join(format!("dddit-caption-cli-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let cfg = dir.join("run.toml");
    let run = dir.join("run");
    std::fs::write(&cfg, RUN).unwrap();
    let o = Command::new(env!("CARGO_BIN_EXE_dddit")).arg("train").arg(&cfg).arg("--out").arg(&run).output().unwrap();
    ok(&o);
    assert!(String::from_utf8_lossy(&o.stderr).contains("conditioning on captions (hashed embeddings)"));
    let state: serde_json::Value =
        serde_json::from_slice(&std::fs::read(run.join("checkpoint/state.json")).unwrap()).unwrap();
    assert_eq!(state["text_encoder"], "hashed", "the checkpoint records the encoder it was trained with");
    let eval_toml = dir.join("eval.toml");
    std::fs::write(&eval_toml, format!("samples = 12\nbatch_size = 6\nreference_samples = 24\ntiming = false\ngrid = 4\nstats_cache = \"{}\"\n[sample]\nsteps = 3\n", dir.join("stats").display())).unwrap();
    let o = Command::new(env!("CARGO_BIN_EXE_dddit"))
        .arg("eval")
        .arg(&run)
        .arg("--config")
        .arg(&eval_toml)
        .output()
        .unwrap();
    ok(&o);
    let report: serde_json::Value = serde_json::from_slice(&std::fs::read(run.join("eval.json")).unwrap()).unwrap();
    let c = &report["captions"];
    assert_eq!(c["encoder"], "hashed");
    assert_eq!(c["samples"], 12);
    for key in [
        "exact_match",
        "object_recall",
        "kind_accuracy",
        "colour_accuracy",
        "size_accuracy",
        "cell_accuracy",
        "count_accuracy",
    ] {
        let v = c[key].as_f64().unwrap_or_else(|| panic!("captions.{key} missing: {c}"));
        assert!((0.0..=1.0).contains(&v), "{key} = {v}");
    }
    let rows = c["by_objects"].as_array().unwrap();
    assert_eq!(rows.iter().map(|r| r["samples"].as_u64().unwrap()).sum::<u64>(), 12);
    assert!(rows.iter().all(|r| (1..=4).contains(&r["objects"].as_u64().unwrap())));
    // At most every block runs (plus the router's own head: a hair above dense).
    assert!(
        rows.iter().all(|r| r["gflops_ratio"].as_f64().unwrap() > 0.0 && r["gflops_ratio"].as_f64().unwrap() < 1.01),
        "{rows:?}"
    );
    assert!(Path::new(&run.join("samples.png")).exists());
    std::fs::remove_dir_all(&dir).ok();
}
