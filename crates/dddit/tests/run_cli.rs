//! `dddit run` end to end on a tiny sweep: killed mid-way and re-run, no completed run is
//! recomputed or lost and the interrupted one resumes from its checkpoint; then `dddit table`
//! and `dddit plot` read the results, and validation errors stop everything before it starts.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant, SystemTime};

const EXPERIMENT: &str = r#"name = "tiny"
device = "flex"
seeds = [0]

[model]
preset = "DiT-N/4"

[data]
kind = "shapes"
size = 16
len = 256

[train]
steps = 120
batch_size = 4
lr = 1e-3
checkpoint_every = 4

[eval]
samples = 8
batch_size = 8
reference_samples = 16
timing_batch = 2
timing_batch1_runs = 1
grid = 4

[eval.sample]
sampler = "ddim"
steps = 2

[sweep]
router = [{ kind = "dense" }, { kind = "topk", experts = 2, k = 1 }, { kind = "timestep-gate", policy = "progressive" }]
"#;

fn dddit() -> Command {
    Command::new(env!("CARGO_BIN_EXE_dddit"))
}

fn mtime(p: &Path) -> SystemTime {
    std::fs::metadata(p).unwrap().modified().unwrap()
}

fn metric_steps(dir: &Path) -> Vec<usize> {
    let text = std::fs::read_to_string(dir.join("metrics.jsonl")).unwrap_or_default();
    // A line being written while we read does not parse yet and is not counted.
    text.lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .filter_map(|v| v["step"].as_u64())
        .map(|s| s as usize)
        .collect()
}

#[test]
fn a_killed_sweep_resumes_without_recomputing_or_losing_runs() {
    let root = std::env::temp_dir().join(format!("dddit-run-cli-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&root);
    std::fs::create_dir_all(&root).unwrap();
    let exp = root.join("tiny.toml");
    std::fs::write(&exp, EXPERIMENT).unwrap();
    let out = root.join("results");
    let run_dir = |name: &str| -> PathBuf { out.join(format!("{name}-seed0")) };
    let (first, second, third) =
        (run_dir("dense"), run_dir("topk-experts=2-k=1"), run_dir("timestep-gate-policy=progressive"));

    // 1. Start the sweep and kill it once the second run is part-way through training.
    let mut child = dddit()
        .args(["run"])
        .arg(&exp)
        .arg("--out")
        .arg(&out)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let start = Instant::now();
    loop {
        let steps = metric_steps(&second).len();
        if second.join("checkpoint").exists() && (8..110).contains(&steps) {
            break;
        }
        assert!(child.try_wait().unwrap().is_none(), "the sweep finished before it could be interrupted");
        assert!(start.elapsed() < Duration::from_secs(900), "the sweep made no progress");
        std::thread::sleep(Duration::from_millis(20));
    }
    child.kill().unwrap();
    child.wait().unwrap();
    assert!(first.join("done.json").exists(), "the first run completed before the kill");
    assert!(!second.join("done.json").exists());
    let done_first = mtime(&first.join("done.json"));
    let eval_first = std::fs::read(first.join("eval.json")).unwrap();
    // (A kill between the checkpoint's two renames leaves it in checkpoint.old.)
    let state = if second.join("checkpoint").exists() {
        second.join("checkpoint/state.json")
    } else {
        second.join("checkpoint.old/state.json")
    };
    let ckpt_step: serde_json::Value = serde_json::from_slice(&std::fs::read(state).unwrap()).unwrap();
    let ckpt_step = ckpt_step["step"].as_u64().unwrap() as usize;
    assert!(ckpt_step > 0 && ckpt_step < 120, "checkpoint at step {ckpt_step}");

    // 2. Re-run: the first run is skipped untouched, the second resumes, the third runs.
    let o = dddit().args(["run"]).arg(&exp).arg("--out").arg(&out).output().unwrap();
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(o.status.success(), "{err}");
    assert!(err.contains(&format!("resumed {} at step {ckpt_step}", second.display())), "{err}");
    assert!(err.contains("1 already complete"), "{err}");
    assert_eq!(mtime(&first.join("done.json")), done_first, "a completed run was recomputed");
    assert_eq!(std::fs::read(first.join("eval.json")).unwrap(), eval_first);
    for dir in [&first, &second, &third] {
        assert!(
            dir.join("done.json").exists() && dir.join("eval.json").exists() && dir.join("samples.png").exists(),
            "{}",
            dir.display()
        );
        // Every step logged exactly once, in order, however often the run was interrupted.
        assert_eq!(metric_steps(dir), (0..120).collect::<Vec<_>>(), "{}", dir.display());
        let record: serde_json::Value = serde_json::from_slice(&std::fs::read(dir.join("run.json")).unwrap()).unwrap();
        for key in ["git_commit", "git_dirty", "host", "cpu", "cores"] {
            assert!(!record["provenance"][key].is_null(), "run.json lacks provenance.{key}");
        }
        assert_eq!(record["device"], "flex");
    }
    let record: serde_json::Value = serde_json::from_slice(&std::fs::read(second.join("run.json")).unwrap()).unwrap();
    assert_eq!(record["attempts"], 2);
    // The table printed at the end lists all three routers.
    let table = String::from_utf8_lossy(&o.stdout);
    for r in ["dense", "topk", "timestep-gate"] {
        assert!(table.contains(&format!("| {r}")), "{table}");
    }

    // 3. A third run does nothing.
    let o = dddit().args(["run"]).arg(&exp).arg("--out").arg(&out).output().unwrap();
    assert!(o.status.success() && String::from_utf8_lossy(&o.stderr).contains("0 completed now, 3 already complete"));

    // 4. Table and plots from the results directory.
    let o = dddit().arg("table").arg(&out).output().unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let csv = std::fs::read_to_string(out.join("table.csv")).unwrap();
    assert_eq!(csv.lines().count(), 4, "{csv}");
    let json: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("table.json")).unwrap()).unwrap();
    assert_eq!(json["rows"].as_array().unwrap().len(), 3);
    let o = dddit().arg("plot").arg(&out).output().unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    for f in ["compute-by-t.svg", "compute-by-t.png"] {
        assert!(std::fs::metadata(out.join(f)).unwrap().len() > 500, "{f}");
    }
    assert!(std::fs::read_dir(&out).unwrap().any(|e| e.unwrap().file_name().to_string_lossy().starts_with("pareto-")));
    assert_eq!(json["planned"], true);
    assert_eq!(json["incomplete"].as_array().unwrap().len(), 0);
    assert_eq!(json["baseline"], "dense");
    // A run of the plan that is missing is listed as incomplete; notes.md heads the table.
    std::fs::write(out.join("notes.md"), "**A hand-written note.**\n").unwrap();
    let moved = root.join("moved-away");
    std::fs::rename(&third, &moved).unwrap();
    let o = dddit().arg("table").arg(&out).output().unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let json: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("table.json")).unwrap()).unwrap();
    assert_eq!(json["incomplete"], serde_json::json!(["timestep-gate-policy=progressive-seed0"]));
    let md = std::fs::read_to_string(out.join("table.md")).unwrap();
    assert!(md.lines().nth(2) == Some("**A hand-written note.**"), "{md}");
    assert!(md.contains("Incomplete runs (not in the table): timestep-gate-policy=progressive-seed0"), "{md}");
    std::fs::rename(&moved, &third).unwrap();

    // 5. Shards partition the runs; a changed config is refused before anything runs.
    let o = dddit().args(["run", "--dry-run", "--shard", "1/2"]).arg(&exp).arg("--out").arg(&out).output().unwrap();
    let listing = String::from_utf8_lossy(&o.stdout);
    assert_eq!(listing.lines().count(), 1, "{listing}");
    assert!(listing.contains("topk") && listing.contains("complete"), "{listing}");
    std::fs::write(&exp, EXPERIMENT.replace("steps = 120", "steps = 121")).unwrap();
    let o = dddit().args(["run"]).arg(&exp).arg("--out").arg(&out).output().unwrap();
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(!o.status.success() && err.contains("other settings") && err.contains("config.toml"), "{err}");
    std::fs::remove_dir_all(&root).ok();
}

#[test]
fn an_invalid_experiment_runs_nothing() {
    let root = std::env::temp_dir().join(format!("dddit-run-cli-bad-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&root);
    std::fs::create_dir_all(&root).unwrap();
    let exp = root.join("bad.toml");
    std::fs::write(
        &exp,
        EXPERIMENT.replace("[sweep]\n", "[sweep]\n\"router.k\" = [1, 5]\n").replace("steps = 120", "steps = 0"),
    )
    .unwrap();
    let out = root.join("results");
    let o = dddit().arg("run").arg(&exp).arg("--out").arg(&out).output().unwrap();
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(!o.status.success(), "{err}");
    assert!(err.contains(&format!("{}:14: train.steps", exp.display())), "{err}");
    assert!(err.contains("nothing was run"), "{err}");
    assert!(!out.exists(), "an invalid experiment created {}", out.display());
    std::fs::remove_dir_all(&root).ok();
}

#[test]
fn reuse_copies_completed_runs_of_equal_settings_instead_of_training_them() {
    let root = std::env::temp_dir().join(format!("dddit-run-cli-reuse-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&root);
    std::fs::create_dir_all(&root).unwrap();
    let short = EXPERIMENT.replace("steps = 120", "steps = 8");
    let (a, b) = (root.join("a.toml"), root.join("b.toml"));
    // A trains dense only; B is another experiment (other name) with dense and topk.
    std::fs::write(
        &a,
        short.replace(
            ", { kind = \"topk\", experts = 2, k = 1 }, { kind = \"timestep-gate\", policy = \"progressive\" }",
            "",
        ),
    )
    .unwrap();
    std::fs::write(
        &b,
        short
            .replace("name = \"tiny\"", "name = \"tiny-b\"")
            .replace(", { kind = \"timestep-gate\", policy = \"progressive\" }", ""),
    )
    .unwrap();
    let (out_a, out_b) = (root.join("ra"), root.join("rb"));
    let o = dddit().arg("run").arg(&a).arg("--out").arg(&out_a).output().unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));

    // The dry run says what will be copied and what trained.
    let o = dddit()
        .args(["run", "--dry-run"])
        .arg(&b)
        .arg("--out")
        .arg(&out_b)
        .arg("--reuse")
        .arg(&out_a)
        .output()
        .unwrap();
    let listing = String::from_utf8_lossy(&o.stdout);
    assert!(o.status.success() && listing.lines().count() == 2, "{listing}");
    assert!(listing.lines().any(|l| l.contains("dense-seed0") && l.contains("reuse") && l.contains("ra")), "{listing}");
    assert!(listing.lines().any(|l| l.contains("topk") && l.contains("to do")), "{listing}");

    // --no-train copies and trains nothing; the next invocation trains only what is missing.
    let o = dddit()
        .arg("run")
        .arg(&b)
        .arg("--out")
        .arg(&out_b)
        .arg("--reuse")
        .arg(&out_a)
        .arg("--no-train")
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(o.status.success(), "{err}");
    assert!(
        err.contains("0 completed now, 0 already complete, 1 reused, 0 failed, 1 left to do (--no-train)"),
        "{err}"
    );
    assert!(!out_b.join("topk-experts=2-k=1-seed0").exists());
    let o = dddit().arg("run").arg(&b).arg("--out").arg(&out_b).arg("--reuse").arg(&out_a).output().unwrap();
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(o.status.success(), "{err}");
    assert!(err.contains("1 completed now, 1 already complete, 0 reused"), "{err}");
    let (from, to) = (out_a.join("dense-seed0"), out_b.join("dense-seed0"));
    for f in ["metrics.jsonl", "eval.json", "done.json", "samples.png", "checkpoint/state.json"] {
        assert_eq!(
            std::fs::read(from.join(f)).unwrap(),
            std::fs::read(to.join(f)).unwrap(),
            "{f} differs from the reused run's"
        );
    }
    let record: serde_json::Value = serde_json::from_slice(&std::fs::read(to.join("run.json")).unwrap()).unwrap();
    let source: serde_json::Value = serde_json::from_slice(&std::fs::read(from.join("run.json")).unwrap()).unwrap();
    assert_eq!(record["experiment"], "tiny-b");
    assert_eq!(record["provenance"], source["provenance"]);
    assert_eq!(record["started"], source["started"]);
    assert!(record["reused_from"].as_str().unwrap().ends_with("dense-seed0"), "{record}");
    let topk: serde_json::Value =
        serde_json::from_slice(&std::fs::read(out_b.join("topk-experts=2-k=1-seed0/run.json")).unwrap()).unwrap();
    assert!(topk.get("reused_from").is_none(), "{topk}");
    let table = String::from_utf8_lossy(&o.stdout);
    assert!(table.contains("| dense") && table.contains("| topk"), "{table}");

    // Other settings are never reused; a missing --reuse directory is refused up front.
    std::fs::write(&b, std::fs::read_to_string(&b).unwrap().replace("lr = 1e-3", "lr = 2e-3")).unwrap();
    let o = dddit()
        .args(["run", "--dry-run"])
        .arg(&b)
        .arg("--out")
        .arg(root.join("rc"))
        .arg("--reuse")
        .arg(&out_a)
        .output()
        .unwrap();
    let listing = String::from_utf8_lossy(&o.stdout);
    assert!(!listing.contains("reuse") && listing.matches("to do").count() == 2, "{listing}");
    let o = dddit()
        .arg("run")
        .arg(&b)
        .arg("--out")
        .arg(root.join("rc"))
        .arg("--reuse")
        .arg(root.join("missing"))
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(!o.status.success() && err.contains("--reuse") && err.contains("missing"), "{err}");
    assert!(!root.join("rc").exists());
    std::fs::remove_dir_all(&root).ok();
}

#[test]
fn a_run_that_killed_its_process_goes_after_the_others() {
    // A run whose process died in it without progress (running.json left, no later checkpoint:
    // what running out of memory leaves) must not stop the sweep at every retry: it runs last.
    let root = std::env::temp_dir().join(format!("dddit-run-cli-stalled-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&root);
    std::fs::create_dir_all(&root).unwrap();
    let exp = root.join("tiny.toml");
    std::fs::write(
        &exp,
        EXPERIMENT
            .replace("steps = 120", "steps = 2")
            .replace(", { kind = \"timestep-gate\", policy = \"progressive\" }", ""),
    )
    .unwrap();
    let out = root.join("results");
    let dense = out.join("dense-seed0");
    std::fs::create_dir_all(&dense).unwrap();
    std::fs::write(dense.join("running.json"), r#"{"pid": 4999999, "started": "x", "step_at_start": 0}"#).unwrap();
    let o = dddit().args(["run"]).arg(&exp).arg("--out").arg(&out).output().unwrap();
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(o.status.success(), "{err}");
    assert!(err.contains("dense-seed0: the last process working on it died at step 0"), "{err}");
    let (first, second) = (err.find("] topk-experts=2-k=1-seed0").unwrap(), err.find("] dense-seed0").unwrap());
    assert!(first < second, "the stalled run was not moved after the others:\n{err}");
    let topk = out.join("topk-experts=2-k=1-seed0");
    assert!(mtime(&topk.join("done.json")) <= mtime(&dense.join("done.json")));
    assert!(!dense.join("running.json").exists() && !topk.join("running.json").exists());
    std::fs::remove_dir_all(&root).unwrap();
}

#[test]
fn a_data_parallel_sweep_off_libtorch_is_refused() {
    // Collectives exist on LibTorch devices only: a launch of this flex experiment is refused
    // before anything runs (the data-parallel sweep itself: tests/data_parallel.rs).
    let root = std::env::temp_dir().join(format!("dddit-run-cli-ddp-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&root);
    std::fs::create_dir_all(&root).unwrap();
    let exp = root.join("exp.toml");
    std::fs::write(&exp, EXPERIMENT).unwrap();
    let out = root.join("results");
    let o = dddit()
        .arg("run")
        .arg(&exp)
        .arg("--out")
        .arg(&out)
        .envs([("RANK", "1"), ("WORLD_SIZE", "2"), ("MASTER_ADDR", "127.0.0.1"), ("MASTER_PORT", "29500")])
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(!o.status.success() && err.contains("rank 1 of 2") && err.contains("LibTorch devices only"), "{err}");
    assert!(!out.exists(), "a refused sweep created {}", out.display());
    std::fs::remove_dir_all(&root).ok();
}
