//! Router benchmark: forward latency of every router against `dense` at batch 1 and 64, next
//! to its GFLOPs ratio, and the peak heap memory of one training step.
//!
//! `cargo bench -p dddit-routers --bench routers` (prints a Markdown table; the committed copy
//! is `results/bench/routers.md`). Env: `DDDIT_BENCH_MODEL` (default `DiT-S/4`),
//! `DDDIT_BENCH_SIZE` (32), `DDDIT_BENCH_REPS` (5 at batch 64, 11 at batch 1),
//! `DDDIT_BENCH_ROUTERS` (comma-separated registry names to time, dense always included; default
//! all: a subset isolates a router from the others' effect on the allocator and caches).

// The counting allocator below is the one place dddit uses `unsafe`: a GlobalAlloc impl that
// forwards to the system allocator.
#![allow(unsafe_code)]

use burn::prelude::*;
use burn::tensor::Distribution;
use dddit_core::dit::DiTConfig;
use dddit_core::routing::Mode;
use dddit_routers::fixtures::{cases, time_round_robin, Case};
use dddit_routers::{AnyRoutedModel, ForwardOptions};
use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicUsize, Ordering};

/// Counts live and peak heap bytes.
struct Counting;
static LIVE: AtomicUsize = AtomicUsize::new(0);
static PEAK: AtomicUsize = AtomicUsize::new(0);

unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, l: Layout) -> *mut u8 {
        let p = unsafe { System.alloc(l) };
        if !p.is_null() {
            let now = LIVE.fetch_add(l.size(), Ordering::Relaxed) + l.size();
            PEAK.fetch_max(now, Ordering::Relaxed);
        }
        p
    }
    unsafe fn dealloc(&self, p: *mut u8, l: Layout) {
        unsafe { System.dealloc(p, l) };
        LIVE.fetch_sub(l.size(), Ordering::Relaxed);
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

fn env(k: &str, d: &str) -> String {
    std::env::var(k).unwrap_or_else(|_| d.to_string())
}

/// Median ms per call and GFLOPs per sample of every case, one warm-up round, then `reps` rounds.
fn time_all(cases: &[Case], x: &Tensor<4>, reps: usize) -> Vec<(f64, f64)> {
    time_round_robin(cases, x, 1, reps)
        .into_iter()
        .map(|(mut v, g)| {
            v.sort_by(f64::total_cmp);
            (v[v.len() / 2], g)
        })
        .collect()
}

fn peak_training_mib(model: &dyn AnyRoutedModel, m: &DiTConfig, batch: usize) -> f64 {
    let dev = dddit_core::testing::device().autodiff();
    let x = Tensor::<4>::random(
        [batch, m.in_channels, m.input_height, m.input_width],
        Distribution::Normal(0.0, 1.0),
        &dev,
    );
    let ts = vec![500.0; batch];
    let base = LIVE.load(Ordering::Relaxed);
    PEAK.store(base, Ordering::Relaxed);
    let opts = ForwardOptions::new(&ts, Mode::Train);
    let out = model.forward(x, Tensor::full([batch], 500.0, &dev), Tensor::zeros([batch], &dev), &opts);
    let mut loss = out.out.square().mean();
    for (_, v) in out.losses.named() {
        loss = loss + v.mean();
    }
    let grads = loss.backward();
    drop(grads);
    (PEAK.load(Ordering::Relaxed) - base) as f64 / (1024.0 * 1024.0)
}

fn main() {
    if std::env::args().any(|a| a == "--list" || a.starts_with("--test")) {
        return;
    }
    let name = env("DDDIT_BENCH_MODEL", "DiT-S/4");
    let size: usize = env("DDDIT_BENCH_SIZE", "32").parse().expect("size");
    let mut m = DiTConfig::preset(&name, size, 1).expect("preset");
    m.num_classes = 10;
    let dev = dddit_core::testing::device();
    let _guard = dddit_core::testing::seeded(&dev, 0);
    let only = std::env::var("DDDIT_BENCH_ROUTERS").ok();
    let only: Option<Vec<&str>> = only.as_deref().map(|s| s.split(',').map(str::trim).collect());
    let all = cases(&m, &dev, only.as_deref());
    for name in only.iter().flatten() {
        assert!(all.iter().any(|c| c.router == *name), "DDDIT_BENCH_ROUTERS: no benchmark case for router `{name}`");
    }
    println!("# Router benchmark\n");
    println!("{name} on {size}x{size}x1 ({} tokens), device flex, forward in inference mode (median of timed passes, taken round-robin over the routers after a warm-up round), {} threads available.", m.num_tokens(), std::thread::available_parallelism().map_or(1, |n| n.get()));
    println!("GFLOPs: DiT convention (1 multiply-add = 1 FLOP) per sample per forward, as reported by the forward itself. Speed-up = dense time / router time; target for topk, depth-budget, dynamic-width, token-skip: speed-up ≥ 0.8 x (dense GFLOPs / router GFLOPs) at batch 64.\n");
    for batch in [1usize, 64] {
        let reps: usize = env("DDDIT_BENCH_REPS", if batch == 1 { "11" } else { "5" }).parse().expect("reps");
        let x = Tensor::<4>::random([batch, 1, size, size], Distribution::Normal(0.0, 1.0), &dev);
        println!("## batch {batch} ({reps} timed passes)\n");
        println!("| router | GFLOPs/sample | GFLOPs ratio (dense/router) | ms per forward | speed-up | speed-up / GFLOPs ratio |");
        println!("|---|---|---|---|---|---|");
        let results = time_all(&all, &x, reps);
        let dense = results[0];
        for (case, &(ms, gf)) in all.iter().zip(&results) {
            let ratio = dense.1 / gf;
            let speed = dense.0 / ms;
            println!("| {} | {gf:.4} | {ratio:.2} | {ms:.1} | {speed:.2} | {:.2} |", case.label, speed / ratio);
        }
        println!();
    }
    drop(all);
    let batch = 16;
    println!("## Peak heap memory of one training step (forward + backward, batch {batch})\n");
    println!("Heap bytes allocated above the model's own at the peak of the step, counted by a global allocator. Gated routers (depth-budget, dynamic-width, token-skip, text-budget) compute everything in training by design (straight-through gates); the sparse MoE routers gather rows and must stay near dense.\n");
    println!("| router | peak MiB | vs dense |");
    println!("|---|---|---|");
    let mut dense_mib = 0.0;
    for case in cases(&m, &dev.clone().autodiff(), only.as_deref()) {
        let mib = peak_training_mib(case.model.as_ref(), &m, batch);
        if case.label == "dense" {
            dense_mib = mib;
        }
        println!("| {} | {mib:.0} | {:.2} |", case.label, mib / dense_mib);
    }
}
