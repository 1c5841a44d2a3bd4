//! Data-parallel training through c10d (gloo, 2 processes on the CPU) against one process with
//! the same global batch, and a data-parallel run that loses a rank and resumes. LibTorch builds
//! only (`--features tch`): the collectives are LibTorch's.
#![cfg(feature = "tch")]

use std::path::{Path, PathBuf};
use std::process::Command;

const RUN: &str = r#"
device = "tch-cpu"
[model]
preset = "DiT-N/4"
[router]
kind = "dense"
[data]
kind = "shapes"
size = 16
len = 64
[train]
steps = STEPS
batch_size = 8
lr = 1e-3
checkpoint_every = 2
ema_decay = 0.5
"#;

fn dir(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("dddit-dp-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

fn train(cfg: &Path, out: &Path, extra: &[&str], env: &[(&str, &str)]) -> std::process::Output {
    let mut c = Command::new(env!("CARGO_BIN_EXE_dddit"));
    c.args(["train"]).arg(cfg).arg("--out").arg(out).args(extra).env("DDDIT_DIST_TIMEOUT", "120");
    for (k, v) in env {
        c.env(k, v);
    }
    c.output().unwrap()
}

fn ok(o: &std::process::Output) -> String {
    let err = String::from_utf8_lossy(&o.stderr).into_owned();
    assert!(o.status.success(), "{err}");
    err
}

/// Every parameter of the run's last checkpoint (the online model), by name.
fn params(run: &Path) -> Vec<(String, Vec<f32>)> {
    let cfg = run.join("config.toml");
    let file = dddit_train::RunFile::read(&cfg).unwrap();
    let dit = file.dit_config(&cfg).unwrap();
    let (_, device) = file.device(None, &cfg).unwrap();
    let mut m = file.build_model(&dit, &device, &cfg).unwrap();
    m.load(&run.join("checkpoint").join("model.bpk")).unwrap();
    m.param_values().into_iter().map(|(name, _, v)| (name, v)).collect()
}

fn losses(run: &Path) -> Vec<f64> {
    std::fs::read_to_string(run.join("metrics.jsonl"))
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap()["loss"].as_f64().unwrap())
        .collect()
}

fn assert_close(a: &Path, b: &Path) {
    let (la, lb) = (losses(a), losses(b));
    assert_eq!(la.len(), lb.len());
    for (s, (x, y)) in la.iter().zip(&lb).enumerate() {
        assert!((x - y).abs() <= 1e-5 * x.abs().max(1.0), "step {s}: loss {x} vs {y}");
    }
    let (pa, pb) = (params(a), params(b));
    assert_eq!(pa.len(), pb.len());
    let mut worst = 0f32;
    for ((na, va), (nb, vb)) in pa.iter().zip(&pb) {
        assert_eq!(na, nb);
        for (x, y) in va.iter().zip(vb) {
            worst = worst.max((x - y).abs() / x.abs().max(1e-2));
        }
    }
    eprintln!("largest relative parameter difference: {worst:e}");
    // f32 sums in another order (a mean of two half-batch means): rounding, not drift.
    assert!(worst < 1e-4, "largest relative parameter difference {worst}");
}

#[test]
fn data_parallel_matches_single_process() {
    let d = dir("match");
    let cfg = d.join("run.toml");
    std::fs::write(&cfg, RUN.replace("STEPS", "4")).unwrap();
    ok(&train(&cfg, &d.join("one"), &[], &[]));
    let err = ok(&train(&cfg, &d.join("two"), &["--nproc", "2"], &[]));
    assert!(err.contains("data parallel: 2 processes"), "{err}");
    // Rank 0 alone writes: one line per step.
    assert_eq!(losses(&d.join("two")).len(), 4);
    assert_close(&d.join("one"), &d.join("two"));
    // A batch that does not split into equal shares is refused before anything runs.
    std::fs::write(&cfg, RUN.replace("STEPS", "4").replace("batch_size = 8", "batch_size = 7")).unwrap();
    let o = train(&cfg, &d.join("odd"), &["--nproc", "2"], &[]);
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(!o.status.success() && err.contains("does not split into 2 equal shares"), "{err}");
    std::fs::remove_dir_all(&d).unwrap();
}

#[test]
fn data_parallel_run_resumes_after_losing_a_rank() {
    let d = dir("resume");
    let cfg = d.join("run.toml");
    std::fs::write(&cfg, RUN.replace("STEPS", "6")).unwrap();
    ok(&train(&cfg, &d.join("one"), &[], &[]));
    // Rank 1 dies after step 3 (the checkpoint of step 2 is on disk): the launcher stops rank
    // 0 and fails, naming the rank.
    let run = d.join("two");
    let o = train(&cfg, &run, &["--nproc", "2"], &[("DDDIT_FAULT_EXIT", "1:3")]);
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(!o.status.success() && err.contains("rank 1 of 2 failed"), "{err}");
    // Resumed with two processes, it ends where the single process did.
    let err = ok(&train(&cfg, &run, &["--nproc", "2", "--resume"], &[]));
    assert!(err.contains("resumed") && err.contains("at step 2"), "{err}");
    assert_close(&d.join("one"), &run);
    // Any world size resumes: the checkpoint of two processes continued by one.
    std::fs::write(&cfg, RUN.replace("STEPS", "8")).unwrap();
    ok(&train(&cfg, &d.join("one"), &["--resume"], &[]));
    ok(&train(&cfg, &run, &["--resume"], &[]));
    assert_close(&d.join("one"), &run);
    std::fs::remove_dir_all(&d).unwrap();
}

/// A group of one (`DDDIT_DIST_ALONE`, how `bench/gpu/ddp.sh` checks NCCL on a one-GPU machine)
/// runs every collective and still trains exactly as a single process.
#[test]
fn a_process_group_of_one_trains_as_a_single_process() {
    let d = dir("alone");
    let cfg = d.join("run.toml");
    std::fs::write(&cfg, RUN.replace("STEPS", "3")).unwrap();
    ok(&train(&cfg, &d.join("one"), &[], &[]));
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port().to_string();
    let vars = [
        ("DDDIT_DIST_ALONE", "1"),
        ("WORLD_SIZE", "1"),
        ("RANK", "0"),
        ("MASTER_ADDR", "127.0.0.1"),
        ("MASTER_PORT", port.as_str()),
    ];
    let err = ok(&train(&cfg, &d.join("alone"), &[], &vars));
    assert!(err.contains("data parallel: 1 processes"), "{err}");
    assert_eq!(losses(&d.join("one")), losses(&d.join("alone")));
    assert_close(&d.join("one"), &d.join("alone"));
    std::fs::remove_dir_all(&d).unwrap();
}
