//! `step-cache` (seed §8's skip-path family; Learning-to-Cache, Δ-DiT, FORA): during sampling a
//! block's residual changes little between adjacent steps, so it is reused from the previous step
//! instead of recomputed. The fixed schedule recomputes every `interval` steps; the learned one
//! measures, on the first sampling trajectory, how much each block's residual changes from step
//! to step and from then on reuses it wherever the change stayed below `threshold`.
//!
//! Caching applies at inference when a batch shares one timestep (a sampling loop); training and
//! mixed-timestep batches run every block. A new trajectory is detected when the timestep does
//! not decrease or the batch size changes.

use crate::registry::{ConfigError, KeyDefault, KeyDoc, RouterConfig};
use burn::module::ParamId;
use burn::prelude::*;
use dddit_core::dit::{DiTBlock, DiTBlockConfig, DiTConfig};
use dddit_core::flops::Flops;
use dddit_core::routing::Mode;
use dddit_core::routing::{Router, RouterInput, RouterOutput, RoutingStats};
use serde::Deserialize;
use std::sync::{Arc, Mutex};

/// Which schedule decides what is reused.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum CacheSchedule {
    /// Recompute every `interval` steps, reuse in between.
    Fixed,
    /// Calibrated on the first trajectory: reuse where the residual changed less than `threshold`.
    Learned,
}

/// Which blocks may be cached.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum CacheLayers {
    /// Every block.
    All,
    /// All but the first and the last block (they change most, Δ-DiT).
    Middle,
}

/// Config of `step-cache`.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct StepCacheConfig {
    /// `fixed` or `learned`.
    pub schedule: CacheSchedule,
    /// Fixed schedule: recompute every this many steps.
    pub interval: usize,
    /// Learned schedule: reuse where ‖Δ_t − Δ_{t+1}‖ / ‖Δ_t‖ stayed below this.
    pub threshold: f64,
    /// `all` or `middle`.
    pub layers: CacheLayers,
}

impl Default for StepCacheConfig {
    fn default() -> Self {
        StepCacheConfig { schedule: CacheSchedule::Fixed, interval: 2, threshold: 0.1, layers: CacheLayers::Middle }
    }
}

/// Sampling state carried from one step to the next.
#[derive(Debug, Default)]
pub struct CacheState {
    step: usize,
    last_t: Option<f64>,
    batch: usize,
    residuals: Vec<Option<Tensor<3>>>,
    /// Relative residual change per (step, layer), recorded on the calibration trajectory.
    changes: Vec<Vec<f64>>,
    /// Reuse table per (step, layer), once calibrated.
    table: Option<Vec<Vec<bool>>>,
}

/// The `step-cache` stack.
#[derive(Module, Debug)]
pub struct CacheStack {
    /// The blocks.
    pub blocks: Vec<DiTBlock>,
    /// 0 fixed, 1 learned.
    pub schedule: usize,
    /// Fixed interval.
    pub interval: usize,
    /// Learned threshold.
    pub threshold: f64,
    /// Whether the first and last blocks are excluded.
    pub middle_only: bool,
    /// Sampling state (not a parameter).
    #[module(skip)]
    pub state: Arc<Mutex<CacheState>>,
}

impl RouterConfig for StepCacheConfig {
    type Stack = CacheStack;
    const NAME: &'static str = "step-cache";
    const DESCRIPTION: &'static str = "Learning-to-Cache / Δ-DiT: reuse a block's residual from the previous sampling step (fixed interval, or calibrated on a trajectory); cached blocks are not run";

    fn keys() -> &'static [KeyDoc] {
        &[
            KeyDoc {
                key: "schedule",
                ty: "\"fixed\" | \"learned\"",
                default: KeyDefault::Fixed("\"fixed\""),
                doc: "fixed interval, or calibrated on the first trajectory",
            },
            KeyDoc {
                key: "interval",
                ty: "integer ≥ 1",
                default: KeyDefault::Fixed("2"),
                doc: "fixed: recompute every N steps",
            },
            KeyDoc {
                key: "threshold",
                ty: "float ≥ 0",
                default: KeyDefault::Fixed("0.1"),
                doc: "learned: reuse where the relative residual change is below this",
            },
            KeyDoc {
                key: "layers",
                ty: "\"all\" | \"middle\"",
                default: KeyDefault::Fixed("\"middle\""),
                doc: "blocks that may be cached",
            },
        ]
    }

    fn validate(&self, _m: &DiTConfig) -> Vec<ConfigError> {
        let mut e = vec![];
        if self.interval == 0 {
            e.push(ConfigError::new("interval", "must be at least 1"));
        }
        if self.threshold.is_nan() || self.threshold < 0.0 {
            e.push(ConfigError::new("threshold", "must be ≥ 0"));
        }
        e
    }

    fn init(&self, m: &DiTConfig, device: &Device) -> CacheStack {
        CacheStack {
            blocks: (0..m.depth)
                .map(|_| DiTBlockConfig::new(m.hidden_size, m.num_heads, m.mlp_hidden()).init(device))
                .collect(),
            schedule: usize::from(self.schedule == CacheSchedule::Learned),
            interval: self.interval,
            threshold: self.threshold,
            middle_only: self.layers == CacheLayers::Middle,
            state: Arc::new(Mutex::new(CacheState::default())),
        }
    }
}

impl CacheStack {
    fn cacheable(&self, layer: usize) -> bool {
        !self.middle_only || (layer > 0 && layer + 1 < self.blocks.len())
    }

    /// Forgets the sampling state (the next call starts a new trajectory; a learned schedule
    /// keeps its calibration).
    pub fn reset(&self) {
        let mut s = self.state.lock().expect("cache state");
        s.step = 0;
        s.last_t = None;
        s.residuals.clear();
    }

    /// The calibrated reuse table per (step, layer), if any.
    pub fn table(&self) -> Option<Vec<Vec<bool>>> {
        self.state.lock().expect("cache state").table.clone()
    }
}

fn norm(t: Tensor<3>) -> f64 {
    t.square().sum().sqrt().into_scalar::<f32>() as f64
}

impl Router for CacheStack {
    fn forward(&self, mut h: Tensor<3>, input: &RouterInput) -> RouterOutput {
        let [b, n, _] = h.dims();
        let l = self.blocks.len();
        let full: Flops = self.blocks.iter().map(|x| x.flops(n)).sum();
        let t0 = input.timesteps.first().copied().unwrap_or(0.0);
        let shared_t = input.timesteps.iter().all(|&t| t == t0);
        if input.mode == Mode::Train || !shared_t {
            for block in &self.blocks {
                h = block.forward(h, input.c.clone());
            }
            return RouterOutput::new(h, vec![full; b], RoutingStats::layers(1.0));
        }
        let mut st = self.state.lock().expect("cache state");
        if st.last_t.is_none_or(|last| t0 >= last) || st.batch != b {
            st.step = 0;
            st.batch = b;
            st.residuals = vec![None; l];
        }
        let step = st.step;
        let calibrating = self.schedule == 1 && st.table.is_none();
        if calibrating && step == 0 {
            st.changes.clear();
        }
        let mut cost = Flops::default();
        let mut ran = 0usize;
        let mut changes = vec![f64::INFINITY; l];
        for (i, block) in self.blocks.iter().enumerate() {
            let reuse = self.cacheable(i)
                && st.residuals[i].is_some()
                && match (self.schedule, &st.table) {
                    (0, _) => !step.is_multiple_of(self.interval),
                    (_, Some(table)) => table.get(step).is_some_and(|row| row[i]),
                    _ => false,
                };
            if reuse {
                h = h + st.residuals[i].clone().expect("cached residual");
                continue;
            }
            let next = block.forward(h.clone(), input.c.clone());
            let delta = next.clone() - h;
            if calibrating {
                if let Some(prev) = &st.residuals[i] {
                    changes[i] = norm(delta.clone() - prev.clone()) / norm(delta.clone()).max(1e-12);
                }
            }
            st.residuals[i] = Some(delta.detach());
            h = next;
            cost += block.flops(n);
            ran += 1;
        }
        if calibrating {
            st.changes.push(changes);
            // The last step of a trajectory (t = 0) ends the calibration.
            if t0 == 0.0 {
                let table = st.changes.iter().map(|row| row.iter().map(|&c| c < self.threshold).collect()).collect();
                st.table = Some(table);
            }
        }
        st.step += 1;
        st.last_t = Some(t0);
        RouterOutput::new(h, vec![cost; b], RoutingStats::layers(ran as f64 / l.max(1) as f64))
    }

    // No router network: the cache schedule is fixed or calibrated, not trained.
    fn router_params(&self) -> Vec<ParamId> {
        vec![]
    }

    fn full_flops(&self, tokens: usize) -> Flops {
        self.blocks.iter().map(|b| b.flops(tokens)).sum()
    }
}

crate::register_router!(StepCacheConfig);
