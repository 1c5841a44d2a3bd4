//! The compute generated samples really cost: GFLOPs summed over each sample's whole sampling
//! trajectory (classifier-free guidance counted), next to the dense model's cost, routing
//! statistics by timestep range (the seed's Table 6.3), and measured milliseconds per image.

use crate::sample::{sample_batch, SampleConfig, Samples};
use crate::EvalError;
use burn::prelude::*;
use dddit_core::flops::{Convention, Flops};
use dddit_routers::AnyRoutedModel;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// The timestep ranges routing statistics are reported for: low, middle and high noise
/// (t ∈ [0, 200), [200, 500), [500, 1000)).
pub const T_RANGES: [(f64, f64); 3] = [(0.0, 200.0), (200.0, 500.0), (500.0, 1000.0)];

/// Mean, standard deviation, minimum and maximum of a quantity over samples.
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Summary {
    /// Mean.
    pub mean: f64,
    /// Standard deviation (population).
    pub std: f64,
    /// Minimum.
    pub min: f64,
    /// Maximum.
    pub max: f64,
}

impl Summary {
    /// Summary of `values` (all zeros when empty).
    pub fn of(values: &[f64]) -> Summary {
        if values.is_empty() {
            return Summary::default();
        }
        let n = values.len() as f64;
        let mean = values.iter().sum::<f64>() / n;
        let var = values.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / n;
        let min = values.iter().copied().fold(f64::INFINITY, f64::min);
        let max = values.iter().copied().fold(f64::NEG_INFINITY, f64::max);
        Summary { mean, std: var.sqrt(), min, max }
    }
}

/// Compute and routing in one timestep range.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct RangeCompute {
    /// Lower end of the range (inclusive).
    pub t_lo: f64,
    /// Upper end of the range (exclusive).
    pub t_hi: f64,
    /// Sampling steps whose timestep fell in the range.
    pub steps: usize,
    /// GFLOPs per sample spent in these steps.
    pub gflops_per_sample: f64,
    /// The same divided by what the plain dense DiT spends in these steps.
    pub gflops_ratio: f64,
    /// Mean routing statistics over the range's steps (fractions of layers, heads, MLP channels,
    /// tokens or experts that ran; which keys exist depends on the router).
    pub routing: BTreeMap<String, f64>,
}

/// Measured sampling speed.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Timing {
    /// Device the times were measured on.
    pub device: String,
    /// Milliseconds per image over the whole trajectory at batch 1 (mean of the timed runs,
    /// after one untimed warm-up run).
    pub batch1_ms_per_image: f64,
    /// Timed batch-1 trajectories.
    pub batch1_runs: usize,
    /// Milliseconds per image over the whole trajectory at `batch_size`.
    pub batch_ms_per_image: f64,
    /// The large batch size.
    pub batch_size: usize,
    /// Images the large-batch figure is measured over.
    pub batch_images: usize,
}

/// Everything [`ComputeAccumulator`] reports.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ComputeReport {
    /// FLOP convention of every figure (DiT: forward only, one multiply-add = one FLOP).
    pub convention: String,
    /// Samples the figures are over.
    pub samples: usize,
    /// Sampling steps per trajectory.
    pub steps: usize,
    /// Whether classifier-free guidance ran an unconditional pass (counted in every figure).
    pub guided: bool,
    /// GFLOPs per generated sample over its whole trajectory.
    pub gflops_per_sample: Summary,
    /// GFLOPs per sample of the plain dense DiT of the same preset over the same trajectory:
    /// the baseline every ratio is relative to (a mixture of four full-width experts running
    /// one per token therefore has a ratio near 1, not ¼).
    pub dense_gflops_per_sample: f64,
    /// GFLOPs per sample of this router's model with every path on (all experts, heads,
    /// channels, tokens and layers), for reference.
    #[serde(default)]
    pub full_gflops_per_sample: f64,
    /// Mean GFLOPs per sample ÷ dense.
    pub gflops_ratio: f64,
    /// Mean GFLOPs per sample by model component.
    pub components: BTreeMap<String, f64>,
    /// Compute and routing by timestep range ([`T_RANGES`]).
    pub by_t: Vec<RangeCompute>,
    /// Measured milliseconds per image, when timed.
    pub timing: Option<Timing>,
}

/// Collects the traces of sampled batches.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct ComputeAccumulator {
    dense_per_forward: Flops,
    full_per_forward: Flops,
    steps: usize,
    guided: bool,
    per_sample: Vec<Flops>,
    ranges: Vec<RangeAcc>,
}

#[derive(Clone, Debug, Default, Serialize, Deserialize)]
struct RangeAcc {
    steps: usize,
    flops: f64,
    samples_steps: usize,
    dense: f64,
    stats: BTreeMap<String, (f64, usize)>,
}

impl ComputeAccumulator {
    /// An empty accumulator for `model` sampled with `config`.
    pub fn new(model: &dyn AnyRoutedModel, config: &SampleConfig) -> Self {
        ComputeAccumulator {
            dense_per_forward: model.config().dense_flops(),
            full_per_forward: model.full_flops(),
            steps: config.steps,
            guided: config.guided(),
            per_sample: Vec::new(),
            ranges: vec![RangeAcc::default(); T_RANGES.len()],
        }
    }

    /// Adds one sampled batch.
    pub fn add(&mut self, samples: &Samples) {
        let b = samples.labels.len();
        let mut totals = vec![Flops::default(); b];
        let passes = if self.guided { 2.0 } else { 1.0 };
        for step in &samples.trace {
            for (tot, f) in totals.iter_mut().zip(&step.flops) {
                *tot += *f;
            }
            let Some(r) = T_RANGES.iter().position(|&(lo, hi)| step.t >= lo && step.t < hi) else { continue };
            let acc = &mut self.ranges[r];
            acc.steps += 1;
            acc.samples_steps += b;
            acc.flops += step.flops.iter().map(|f| f.total() as f64).sum::<f64>();
            acc.dense += b as f64 * passes * self.dense_per_forward.total() as f64;
            for (k, v) in step.stats.entries() {
                let e = acc.stats.entry(k.to_string()).or_insert((0.0, 0));
                e.0 += v;
                e.1 += 1;
            }
        }
        self.per_sample.extend(totals);
    }

    /// Adds what `other` accumulated after what this one did: the accumulator of batches that
    /// came after this one's (one per batch when the batches were sampled on several ranks).
    pub fn merge(&mut self, other: ComputeAccumulator) {
        self.per_sample.extend(other.per_sample);
        for (mine, theirs) in self.ranges.iter_mut().zip(other.ranges) {
            mine.steps += theirs.steps;
            mine.flops += theirs.flops;
            mine.samples_steps += theirs.samples_steps;
            mine.dense += theirs.dense;
            for (k, (v, n)) in theirs.stats {
                let e = mine.stats.entry(k).or_insert((0.0, 0));
                e.0 += v;
                e.1 += n;
            }
        }
    }

    /// The report, with `timing` when measured.
    pub fn finish(&self, timing: Option<Timing>) -> ComputeReport {
        let g = |macs: f64| macs / 1e9;
        let gflops: Vec<f64> = self.per_sample.iter().map(|f| f.gflops(Convention::MacIsOne)).collect();
        let passes = if self.guided { 2 } else { 1 };
        let dense = (self.dense_per_forward * (self.steps as u64 * passes)).gflops(Convention::MacIsOne);
        let full = (self.full_per_forward * (self.steps as u64 * passes)).gflops(Convention::MacIsOne);
        let summary = Summary::of(&gflops);
        let n = self.per_sample.len().max(1) as f64;
        let mut components = BTreeMap::new();
        for f in &self.per_sample {
            for (name, v) in f.components() {
                *components.entry(name.to_string()).or_insert(0.0) += g(v as f64) / n;
            }
        }
        // Routing fractions are means over a range's steps, each step weighted once (the whole
        // batch shares the step's timestep).
        let by_t = T_RANGES
            .iter()
            .zip(&self.ranges)
            .map(|(&(lo, hi), acc)| {
                let samples = self.per_sample.len();
                RangeCompute {
                    t_lo: lo,
                    t_hi: hi,
                    steps: acc.samples_steps.checked_div(samples).unwrap_or(0),
                    gflops_per_sample: if samples == 0 { 0.0 } else { g(acc.flops) / samples as f64 },
                    gflops_ratio: if acc.dense > 0.0 { acc.flops / acc.dense } else { 0.0 },
                    routing: acc.stats.iter().map(|(k, &(s, c))| (k.clone(), s / c as f64)).collect(),
                }
            })
            .collect();
        ComputeReport {
            convention: "DiT: forward only, 1 multiply-add = 1 FLOP".into(),
            samples: self.per_sample.len(),
            steps: self.steps,
            guided: self.guided,
            gflops_per_sample: summary,
            dense_gflops_per_sample: dense,
            full_gflops_per_sample: full,
            gflops_ratio: if dense > 0.0 { summary.mean / dense } else { 0.0 },
            components,
            by_t,
            timing,
        }
    }
}

/// Measures milliseconds per image over whole sampling trajectories: `batch1_runs` single-image
/// trajectories (after one untimed warm-up) and one trajectory of `batch_size` images.
pub fn time_sampling(
    model: &dyn AnyRoutedModel,
    config: &SampleConfig,
    batch1_runs: usize,
    batch_size: usize,
    device: &Device,
    device_name: &str,
) -> Result<Timing, EvalError> {
    if batch1_runs == 0 || batch_size == 0 {
        return Err(EvalError::Invalid("timing needs at least one batch-1 run and a batch size ≥ 1".into()));
    }
    let classes = model.config().num_classes;
    sample_batch(model, config, &[0], u64::MAX, device)?; // warm-up: allocations, slice caches
    let mut batch1 = 0.0;
    for i in 0..batch1_runs {
        batch1 += sample_batch(model, config, &[i % classes], u64::MAX - 1 - i as u64, device)?.ms;
    }
    let labels = crate::sample::balanced_labels(batch_size, classes);
    let big = sample_batch(model, config, &labels, u64::MAX / 2, device)?;
    Ok(Timing {
        device: device_name.to_string(),
        batch1_ms_per_image: batch1 / batch1_runs as f64,
        batch1_runs,
        batch_ms_per_image: big.ms / batch_size as f64,
        batch_size,
        batch_images: batch_size,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use dddit_core::dit::DiTConfig;

    fn model(table: &str) -> Box<dyn AnyRoutedModel> {
        let device = dddit_core::testing::device();
        let mut cfg = DiTConfig::preset("DiT-N/4", 16, 3).unwrap();
        cfg.num_classes = 5;
        dddit_routers::build(&toml::from_str(table).unwrap(), &cfg, &device).unwrap()
    }

    #[test]
    fn dense_costs_exactly_the_dense_trajectory() {
        let device = dddit_core::testing::device();
        let m = model("kind = \"dense\"");
        let cfg = SampleConfig { steps: 5, ..Default::default() };
        let mut acc = ComputeAccumulator::new(m.as_ref(), &cfg);
        // Two batches of different sizes: per-sample figures must not depend on the batching.
        acc.add(&sample_batch(m.as_ref(), &cfg, &[0, 1], 0, &device).unwrap());
        acc.add(&sample_batch(m.as_ref(), &cfg, &[2], 1, &device).unwrap());
        let r = acc.finish(None);
        assert_eq!(r.samples, 3);
        assert!((r.gflops_ratio - 1.0).abs() < 1e-12, "{}", r.gflops_ratio);
        let want = m.full_flops().gflops(Convention::MacIsOne) * 10.0;
        assert!((r.gflops_per_sample.mean - want).abs() < 1e-9 * want);
        assert!(
            (r.dense_gflops_per_sample - want).abs() < 1e-9 * want
                && (r.full_gflops_per_sample - want).abs() < 1e-9 * want
        );
        assert_eq!(r.gflops_per_sample.std, 0.0);
        // The per-range GFLOPs add up to the total, and every range is dense.
        let sum: f64 = r.by_t.iter().map(|b| b.gflops_per_sample).sum();
        assert!((sum - r.gflops_per_sample.mean).abs() < 1e-9 * want);
        assert_eq!(r.by_t.iter().map(|b| b.steps).sum::<usize>(), 5);
        for b in &r.by_t {
            assert!(b.steps == 0 || (b.gflops_ratio - 1.0).abs() < 1e-12);
            assert!(b.steps == 0 || b.routing["layers"] == 1.0);
        }
        let comp: f64 = r.components.values().sum();
        assert!((comp - want).abs() < 1e-9 * want);
    }

    #[test]
    fn ratios_are_relative_to_the_plain_dit_not_to_every_expert_on() {
        let device = dddit_core::testing::device();
        let m = model("kind = \"topk\"\nexperts = 4\nk = 1");
        let cfg = SampleConfig { steps: 3, cfg_scale: 1.0, ..Default::default() };
        let mut acc = ComputeAccumulator::new(m.as_ref(), &cfg);
        acc.add(&sample_batch(m.as_ref(), &cfg, &[0, 1], 0, &device).unwrap());
        let r = acc.finish(None);
        let dit = m.config().dense_flops().gflops(Convention::MacIsOne) * 3.0;
        assert!((r.dense_gflops_per_sample - dit).abs() < 1e-9 * dit);
        assert!(r.full_gflops_per_sample > 2.0 * r.dense_gflops_per_sample, "{r:?}");
        // One full-width expert per token costs what the dense MLP does, plus the router.
        assert!(r.gflops_ratio > 0.99 && r.gflops_ratio < 1.1, "{}", r.gflops_ratio);
    }

    #[test]
    fn a_timestep_gate_spends_less_at_some_timesteps() {
        let device = dddit_core::testing::device();
        let m = model("kind = \"timestep-gate\"\npolicy = \"progressive\"");
        let cfg = SampleConfig { steps: 10, cfg_scale: 1.0, ..Default::default() };
        let mut acc = ComputeAccumulator::new(m.as_ref(), &cfg);
        acc.add(&sample_batch(m.as_ref(), &cfg, &[0, 1, 2], 0, &device).unwrap());
        let r = acc.finish(None);
        assert!(r.gflops_ratio < 1.0, "{r:?}");
        // The progressive schedule spends least at low noise and most at high noise.
        assert!(r.by_t[0].gflops_ratio < r.by_t[2].gflops_ratio, "{r:?}");
        // Per-sample totals equal the sum over ranges.
        let sum: f64 = r.by_t.iter().map(|b| b.gflops_per_sample).sum();
        assert!((sum - r.gflops_per_sample.mean).abs() < 1e-9 * sum.max(1e-12));
    }

    #[test]
    fn summary_of_values() {
        let s = Summary::of(&[1.0, 3.0]);
        assert_eq!((s.mean, s.std, s.min, s.max), (2.0, 1.0, 1.0, 3.0));
        assert_eq!(Summary::of(&[]), Summary::default());
    }
}
