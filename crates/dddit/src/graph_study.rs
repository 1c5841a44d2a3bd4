//! `dddit bench --graph-steps N`: one DDIM trajectory of N steps eager and replayed from CUDA
//! graphs (one graph per step, captured once), for each router asked for, with the largest
//! difference between the two outputs. A router that reads its decision on the host is captured
//! with the reads of the eager run replayed ([`tape`]): one graph per step and decision. Whether
//! a sampler could reuse that graph for other samples is measured, not assumed: the step is run
//! again on other noise and the two decisions compared (`decision`: `none` — no host read,
//! `per-step` — the same for both inputs, `per-input` — they differ, so the graph holds only for
//! this trajectory's inputs). A forward that uploads host data or sizes a tensor from device
//! values inside the step still cannot be captured; the error says which op refused.

use anyhow::{Context, Result};
use burn::prelude::*;
use burn::tensor::Distribution;
use dddit_core::cuda_graph::{copy_into, CudaGraph};
use dddit_core::diffusion::DiffusionConfig;
use dddit_core::routing::{tape, Mode};
use dddit_routers::fixtures::Case;
use dddit_routers::ForwardOptions;
use serde_json::{json, Value};
use std::time::Instant;

fn sync(x: &Tensor<4>) {
    let _ = x.clone().slice([0..1, 0..1, 0..1, 0..1]).into_data();
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

/// Eager and graph-replayed trajectories of `case` on CUDA device `index`.
pub fn study(case: &Case, index: usize, batch: usize, steps: usize, reps: usize, device: &Device) -> Result<Value> {
    let m = case.model.config();
    let d = DiffusionConfig::for_model(m.learn_sigma).with_respacing(format!("ddim{steps}")).init()?;
    let noise = Tensor::<4>::random(
        [batch, m.in_channels, m.input_height, m.input_width],
        Distribution::Normal(0.0, 1.0),
        device,
    );
    let y = Tensor::<1, Int>::zeros([batch], device);
    let chain: Vec<usize> = (0..d.len()).rev().collect();
    // Everything that comes from the host is uploaded before any capture.
    let t_dev: Vec<Tensor<1>> = chain.iter().map(|&t| d.model_t_tensor(&vec![t; batch], device)).collect();
    let t_host: Vec<Vec<f64>> = chain.iter().map(|&t| d.model_t(&vec![t; batch])).collect();
    let step = |x: Tensor<4>, i: usize| -> Tensor<4> {
        let opts = ForwardOptions::new(&t_host[i], Mode::Eval);
        let out = case.model.forward(x.clone(), t_dev[i].clone(), y.clone(), &opts).out;
        d.ddim_step(out, x, chain[i], 0.0, None, false)
    };
    let eager = || {
        let mut x = noise.clone();
        for i in 0..chain.len() {
            x = step(x, i);
        }
        sync(&x);
        x
    };
    // The warm-up trajectory is also the reference, and records each step's host reads; the
    // same steps on other noise tell whether a step's decision depends on the sample.
    let other = Tensor::<4>::random(noise.shape(), Distribution::Normal(0.0, 1.0), device);
    let (mut x, mut tapes, mut per_input) = (noise.clone(), Vec::with_capacity(chain.len()), false);
    for i in 0..chain.len() {
        let (next, t) = tape::record(|| step(x.clone(), i));
        let (_, t_other) = tape::record(|| step(other.clone(), i));
        per_input |= t != t_other;
        tapes.push(t);
        x = next;
    }
    sync(&x);
    let reference = x;
    let reads: usize = tapes.iter().map(tape::Tape::len).sum();
    let decision = match (reads, per_input) {
        (0, _) => "none",
        (_, false) => "per-step",
        (_, true) => "per-input",
    };
    let mut eager_ms = vec![];
    for _ in 0..reps {
        let t0 = Instant::now();
        eager();
        eager_ms.push(t0.elapsed().as_secs_f64() * 1e3);
    }
    let eager_ms = median(eager_ms);
    let base = json!({ "router": case.router, "label": case.label, "batch": batch, "steps": steps,
        "eager_ms": eager_ms, "host_reads": reads, "decision": decision });
    // A buffer of its own (a clone would share the noise's storage), read and rewritten by
    // every step's graph.
    let buf = noise.clone() + 0.0;
    let t0 = Instant::now();
    let mut graphs = Vec::with_capacity(chain.len());
    for (i, reads) in tapes.iter().enumerate() {
        let captured = CudaGraph::capture(index, || {
            let out = tape::replay(reads, || step(buf.clone(), i))?;
            copy_into(&buf, &out)
        });
        match captured {
            Ok((g, Ok(()))) => graphs.push(g),
            Ok((_, Err(e))) | Err(e) => {
                let mut v = base.clone();
                v["error"] = json!(format!("step {i}: {e}"));
                return Ok(v);
            }
        }
    }
    let capture_ms = t0.elapsed().as_secs_f64() * 1e3;
    let replay = || -> Result<f64> {
        copy_into(&buf, &noise).map_err(anyhow::Error::msg)?;
        sync(&buf);
        let t0 = Instant::now();
        for g in &graphs {
            g.replay().map_err(anyhow::Error::msg).context("replay")?;
        }
        sync(&buf);
        Ok(t0.elapsed().as_secs_f64() * 1e3)
    };
    replay()?;
    let diff = (buf.clone() - reference.clone()).abs().max().into_scalar::<f32>() as f64;
    let scale = reference.abs().max().into_scalar::<f32>() as f64;
    let graph_ms = median((0..reps).map(|_| replay()).collect::<Result<Vec<_>>>()?);
    let mut v = base;
    v["graph_ms"] = json!(graph_ms);
    v["capture_ms"] = json!(capture_ms);
    v["speedup"] = json!(eager_ms / graph_ms);
    v["max_abs_diff"] = json!(diff);
    v["max_abs"] = json!(scale);
    Ok(v)
}
