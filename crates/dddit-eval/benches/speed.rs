//! CPU speed benchmark (criterion): one training step and one sampling trajectory of DiT-S/4 on
//! 32×32×1 at batch 32, dense and one dynamic router (`dynamic-width`, half the heads and MLP
//! groups off at inference), on every CPU backend compiled in (`flex`; `ndarray` and `tch-cpu`
//! with `--features ndarray,tch`). What a step and a trajectory contain is documented in
//! `dddit_eval::speed`; the PyTorch side is `bench/torch_dit.py`, and `bench/cpu/run.sh` runs
//! both and writes `results/bench/cpu.md`.
//!
//! Env: `DDDIT_BENCH_DEVICES` (comma list, default every compiled-in CPU backend),
//! `DDDIT_BENCH_MODEL` (DiT-S/4), `DDDIT_BENCH_BATCH` (32), `DDDIT_BENCH_SAMPLE_STEPS` (5).

// criterion_group! generates an undocumented public function.
#![allow(missing_docs)]

use burn::prelude::*;
use criterion::{criterion_group, criterion_main, Criterion};
use dddit_core::device::DeviceSpec;
use dddit_core::dit::DiTConfig;
use dddit_eval::speed::{bench_trainer, ddim, sample_once, train_step};
use dddit_routers::fixtures::cases;
use std::time::Duration;

fn env(k: &str, d: &str) -> String {
    std::env::var(k).unwrap_or_else(|_| d.to_string())
}

fn devices() -> Vec<DeviceSpec> {
    let all = DeviceSpec::compiled().into_iter().filter(|d| !d.starts_with("tch-cuda")).collect::<Vec<_>>().join(",");
    env("DDDIT_BENCH_DEVICES", &all)
        .split(',')
        .filter(|s| !s.is_empty())
        .map(|s| s.parse().expect("DDDIT_BENCH_DEVICES"))
        .collect()
}

fn speed(c: &mut Criterion) {
    dddit_core::alloc::keep_freed_memory();
    let name = env("DDDIT_BENCH_MODEL", "DiT-S/4");
    let batch: usize = env("DDDIT_BENCH_BATCH", "32").parse().expect("DDDIT_BENCH_BATCH");
    let steps: usize = env("DDDIT_BENCH_SAMPLE_STEPS", "5").parse().expect("DDDIT_BENCH_SAMPLE_STEPS");
    let mut m = DiTConfig::preset(&name, 32, 1).expect("preset");
    m.num_classes = 10;
    let routers = ["dense", "dynamic-width"];
    for spec in devices() {
        let device: Device = spec.device().expect("device");
        let _seed = dddit_core::testing::seeded(&device, 0);
        let mut g = c.benchmark_group(format!("train/{spec}"));
        g.sample_size(10).warm_up_time(Duration::from_millis(500)).measurement_time(Duration::from_secs(5));
        let ad = device.clone().autodiff();
        for case in cases(&m, &ad, Some(&routers)) {
            let mut trainer = bench_trainer(case.model, batch, &ad).expect("trainer");
            g.bench_function(case.router, |b| b.iter(|| train_step(&mut trainer).expect("step")));
        }
        g.finish();
        let mut g = c.benchmark_group(format!("sample/{spec}"));
        g.sample_size(10).warm_up_time(Duration::from_millis(500)).measurement_time(Duration::from_secs(5));
        let cfg = ddim(steps);
        for case in cases(&m, &device, Some(&routers)) {
            g.bench_function(case.router, |b| {
                b.iter(|| sample_once(case.model.as_ref(), &cfg, batch, &device).expect("sample"))
            });
        }
        g.finish();
    }
}

criterion_group!(benches, speed);
criterion_main!(benches);
