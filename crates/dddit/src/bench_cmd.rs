//! `dddit bench`: training steps/s, sampling images/s and routed forward speed-ups of a DiT on
//! one device, as JSON for the benchmark scripts (`bench/cpu`, `bench/gpu`) and a short table on
//! stderr. What is timed is described in `dddit_eval::speed`.

use anyhow::{bail, Context, Result};
use burn::prelude::*;
use burn::tensor::Distribution;
use clap::Args;
use dddit_core::device::DeviceSpec;
use dddit_core::dit::DiTConfig;
use dddit_core::flops::Convention;
use dddit_core::precision::Precision;
use dddit_eval::speed::{bench_trainer, ddim, sample_once, time_reps, train_step, Timing};
use dddit_routers::fixtures::{cases, forward_once, time_round_robin};
use serde_json::{json, Value};

/// Arguments of `dddit bench`.
#[derive(Args, Debug)]
pub struct BenchArgs {
    /// DiT preset.
    #[arg(long, default_value = "DiT-S/4")]
    pub model: String,
    /// Input height and width.
    #[arg(long, default_value_t = 32)]
    pub image_size: usize,
    /// Input channels.
    #[arg(long, default_value_t = 1)]
    pub channels: usize,
    /// Classes of the label embedding (a null row is added).
    #[arg(long, default_value_t = 10)]
    pub classes: usize,
    /// Device (see `dddit devices`).
    #[arg(long, default_value = "flex")]
    pub device: String,
    /// Precision: f32, tf32 (CUDA), bf16, bf16-mixed (LibTorch).
    #[arg(long, default_value = "f32")]
    pub precision: Precision,
    /// Batch of the training step (0: no training benchmark).
    #[arg(long, default_value_t = 32)]
    pub train_batch: usize,
    /// Routers whose training step is timed (fixed decisions from `dddit_routers::fixtures`).
    #[arg(long, value_delimiter = ',', default_value = "dense")]
    pub train_routers: Vec<String>,
    /// Batch of the sampling benchmark (0: none).
    #[arg(long, default_value_t = 32)]
    pub sample_batch: usize,
    /// DDIM steps of one sampling trajectory.
    #[arg(long, default_value_t = 50)]
    pub sample_steps: usize,
    /// Routers whose sampling is timed.
    #[arg(long, value_delimiter = ',', default_value = "dense")]
    pub sample_routers: Vec<String>,
    /// Batches of the routed-forward benchmark (empty: none).
    #[arg(long, value_delimiter = ',', default_value = "")]
    pub forward_batches: Vec<String>,
    /// Routers of the routed-forward benchmark (dense is always included).
    #[arg(long, value_delimiter = ',', default_value = "topk,dynamic-width,token-skip,depth-budget")]
    pub forward_routers: Vec<String>,
    /// Untimed calls before timing.
    #[arg(long, default_value_t = 3)]
    pub warmup: usize,
    /// Timed calls (the median is reported).
    #[arg(long, default_value_t = 10)]
    pub reps: usize,
    /// Timed sampling trajectories.
    #[arg(long, default_value_t = 3)]
    pub sample_reps: usize,
    /// DDIM steps of the CUDA-graph study (0: none): one trajectory per `--sample-routers`
    /// router at `--graph-batch`, eager and replayed from graphs (`tch-cuda` only).
    #[arg(long, default_value_t = 0)]
    pub graph_steps: usize,
    /// Batch of the CUDA-graph study.
    #[arg(long, default_value_t = 1)]
    pub graph_batch: usize,
    /// Write the results as JSON here.
    #[arg(long)]
    pub json: Option<std::path::PathBuf>,
}

fn timing(t: &Timing, batch: usize) -> serde_json::Value {
    json!({ "median_ms": t.median_ms, "min_ms": t.min_ms, "max_ms": t.max_ms, "all_ms": t.all_ms, "img_per_s": batch as f64 * 1e3 / t.median_ms })
}

/// Runs the command.
pub fn run(a: BenchArgs) -> Result<()> {
    let spec: DeviceSpec = a.device.parse()?;
    let mut device = spec.device()?;
    a.precision.apply(spec, &mut device)?;
    let mut m = DiTConfig::preset(&a.model, a.image_size, a.channels)?;
    m.num_classes = a.classes;
    let dense_gf = m.dense_flops().gflops(Convention::MacIsOne);
    eprintln!(
        "{} on {}x{}x{} ({} tokens), {:.3} GFLOPs/forward (DiT convention), device {spec}, {}",
        a.model,
        a.image_size,
        a.image_size,
        a.channels,
        m.num_tokens(),
        dense_gf,
        a.precision
    );
    let _seed = dddit_core::testing::seeded(&device, 0);
    let mut train = Vec::new();
    if a.train_batch > 0 {
        let ad = device.clone().autodiff();
        let names: Vec<&str> = a.train_routers.iter().map(String::as_str).collect();
        for case in cases(&m, &ad, Some(&names)).into_iter().filter(|c| names.contains(&c.router)) {
            let mut trainer = bench_trainer(case.model, a.train_batch, &ad)?;
            let t = time_reps(a.warmup, a.reps, || train_step(&mut trainer))
                .with_context(|| format!("training step of {}", case.label))?;
            eprintln!(
                "train   {:<40} batch {:>4}: {:>9.2} ms/step  {:>9.1} img/s",
                case.label,
                a.train_batch,
                t.median_ms,
                a.train_batch as f64 * 1e3 / t.median_ms
            );
            train.push(json!({ "router": case.router, "label": case.label, "batch": a.train_batch, "time": timing(&t, a.train_batch) }));
        }
    }
    let mut sample = Vec::new();
    if a.sample_batch > 0 {
        let names: Vec<&str> = a.sample_routers.iter().map(String::as_str).collect();
        let cfg = ddim(a.sample_steps);
        for case in cases(&m, &device, Some(&names)).into_iter().filter(|c| names.contains(&c.router)) {
            let mut gf = 0.0;
            let t = time_reps(1, a.sample_reps, || {
                gf = sample_once(case.model.as_ref(), &cfg, a.sample_batch, &device)?;
                Ok(())
            })?;
            eprintln!(
                "sample  {:<40} batch {:>4}: {:>9.1} ms/trajectory ({} DDIM steps)  {:>8.2} img/s",
                case.label,
                a.sample_batch,
                t.median_ms,
                a.sample_steps,
                a.sample_batch as f64 * 1e3 / t.median_ms
            );
            sample.push(json!({ "router": case.router, "label": case.label, "batch": a.sample_batch, "steps": a.sample_steps, "gflops_per_image": gf, "time": timing(&t, a.sample_batch) }));
        }
    }
    let mut graph = Vec::new();
    if a.graph_steps > 0 {
        let DeviceSpec::TchCuda(index) = spec else { bail!("--graph-steps needs a tch-cuda device, not {spec}") };
        if !dddit_core::cuda_graph::available() {
            bail!("--graph-steps: this build has no CUDA graphs (build with scripts/build-gpu.sh, which sets DDDIT_CUDA_INCLUDE)");
        }
        let names: Vec<&str> = a.sample_routers.iter().map(String::as_str).collect();
        let batch = a.graph_batch.max(1);
        for case in cases(&m, &device, Some(&names)).into_iter().filter(|c| names.contains(&c.router)) {
            let v = crate::graph_study::study(&case, index, batch, a.graph_steps, a.sample_reps.max(1), &device)?;
            match (v.get("graph_ms"), v.get("error")) {
                (Some(g), _) => eprintln!(
                    "graph   {:<40} batch {batch:>4}: eager {:>9.3} ms, graph {:>9.3} ms per {}-step trajectory ({:.2}x), max |diff| {:.2e}",
                    case.label, v["eager_ms"].as_f64().unwrap_or(0.0), g.as_f64().unwrap_or(0.0), a.graph_steps,
                    v["speedup"].as_f64().unwrap_or(0.0), v["max_abs_diff"].as_f64().unwrap_or(0.0)
                ),
                (None, e) => eprintln!("graph   {:<40} batch {batch:>4}: not capturable: {}", case.label, e.and_then(Value::as_str).unwrap_or("?")),
            }
            graph.push(v);
        }
    }
    let mut forward = Vec::new();
    let batches: Vec<usize> = a
        .forward_batches
        .iter()
        .filter(|s| !s.is_empty())
        .map(|s| s.parse().with_context(|| format!("--forward-batches: '{s}' is not a batch size")))
        .collect::<Result<_>>()?;
    if !batches.is_empty() {
        let names: Vec<&str> = a.forward_routers.iter().map(String::as_str).collect();
        let all = cases(&m, &device, Some(&names));
        for &b in &batches {
            let x = Tensor::<4>::random(
                [b, m.in_channels, m.input_height, m.input_width],
                Distribution::Normal(0.0, 1.0),
                &device,
            );
            let (times, gf): (Vec<Timing>, Vec<f64>) = time_round_robin(&all, &x, a.warmup.max(1), a.reps)
                .into_iter()
                .map(|(ms, g)| (Timing::from_ms(ms), g))
                .unzip();
            // Operator calls of one forward (LibTorch only), after the timing so that nothing
            // else runs meanwhile.
            let ops: Vec<Option<u64>> = all
                .iter()
                .map(|c| {
                    let (_, n) = dddit_core::fused::count_ops(|| forward_once(c.model.as_ref(), &x, &c.steps));
                    n.filter(|&n| n > 0).map(|n| n / c.steps.len().max(1) as u64)
                    // 0: not on LibTorch
                })
                .collect();
            let (dense_ms, dense_gf) = (times[0].median_ms, gf[0]);
            for (((c, t), g), n) in all.iter().zip(&times).zip(&gf).zip(&ops) {
                let (ratio, speed) = (dense_gf / g, dense_ms / t.median_ms);
                let ops_txt = n.map_or(String::new(), |n| format!("  {n} ops"));
                eprintln!("forward {:<40} batch {b:>4}: {:>9.3} ms  GFLOPs ratio {ratio:.2}  speed-up {speed:.2}  ({:.2} of the ratio){ops_txt}", c.label, t.median_ms, speed / ratio);
                forward.push(json!({ "router": c.router, "label": c.label, "batch": b, "gflops_per_sample": g, "gflops_ratio": ratio, "speedup": speed, "ops": n, "time": timing(t, b) }));
            }
        }
    }
    if train.is_empty() && sample.is_empty() && forward.is_empty() && graph.is_empty() {
        bail!("nothing to time: give --train-batch, --sample-batch, --forward-batches or --graph-steps");
    }
    let out = json!({
        "model": a.model, "image_size": a.image_size, "channels": a.channels, "classes": a.classes,
        "tokens": m.num_tokens(), "gflops_per_forward": dense_gf, "device": spec.to_string(), "precision": a.precision.to_string(),
        "threads": std::thread::available_parallelism().map_or(1, |n| n.get()), "warmup": a.warmup, "reps": a.reps,
        "train": train, "sample": sample, "forward": forward, "graph": graph,
    });
    if let Some(p) = &a.json {
        dddit_core::atomic::write(p, serde_json::to_string_pretty(&out)?.as_bytes())
            .with_context(|| format!("writing {}", p.display()))?;
    }
    Ok(())
}
