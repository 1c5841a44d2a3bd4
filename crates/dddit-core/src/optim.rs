//! AdamW, the gradient norm and the EMA as multi-tensor ops.
//!
//! burn's `ModuleOptimizer` updates one parameter at a time: for DiT-S/2 that is ~150 AdamW
//! updates of ~10 kernels each per step, plus a per-parameter gradient norm and EMA. Here every
//! step is a handful of calls over all parameters at once: on LibTorch PyTorch's `_fused_adamw`
//! and `_foreach_*` kernels (through `csrc/fused.cpp`), elsewhere the same math op by op.
//!
//! The math is burn's AdamW (and PyTorch's): `p ← p·(1 − lr·wd) − lr·m̂/(√v̂ + ε)`, with
//! per-parameter step counts; gradient clipping is burn's per-parameter clipping by norm
//! (`g·min(1, c/(‖g‖ + tiny))`). Checked against burn's `AdamW` in `tests/fused_optim.rs`.

use burn::module::{Module, ModuleMapper, ModuleVisitor, Param, ParamId};
use burn::optim::GradientsParams;
use burn::prelude::*;
use burn::tensor::FloatDType;
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::path::Path;

/// Settings of [`FusedAdamW`]; the defaults are burn's `AdamWConfig`'s.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct FusedAdamWConfig {
    /// β₁.
    pub beta_1: f64,
    /// β₂.
    pub beta_2: f64,
    /// ε.
    pub epsilon: f64,
    /// Decoupled weight decay.
    pub weight_decay: f64,
    /// Per-parameter gradient clipping by norm (burn's `GradientClippingConfig::Norm`).
    pub grad_clip: Option<f64>,
}

impl Default for FusedAdamWConfig {
    fn default() -> Self {
        FusedAdamWConfig { beta_1: 0.9, beta_2: 0.999, epsilon: 1e-5, weight_decay: 1e-4, grad_clip: None }
    }
}

/// One parameter's moments, flattened, and its step count.
#[derive(Clone, Debug)]
struct Moments {
    m: Tensor<1>,
    v: Tensor<1>,
    step: usize,
}

/// AdamW over all parameters at once (see the module docs).
#[derive(Clone, Debug)]
pub struct FusedAdamW {
    /// Settings.
    pub config: FusedAdamWConfig,
    state: HashMap<ParamId, Moments>,
}

/// One parameter with a gradient, as the step sees it (flattened, without autodiff).
struct Entry {
    id: ParamId,
    value: Tensor<1>,
    grad: Tensor<1>,
    /// Whether this process has a gradient for it (with `every`, a zero stands in otherwise).
    present: bool,
}

/// Collects the parameters that have a gradient, in visit order; with `every`, all float
/// parameters, a zero gradient standing in where there is none (data parallelism: every rank
/// must reduce the same list, and a router may leave a parameter unused on one rank only).
struct Collect<'a> {
    grads: &'a GradientsParams,
    entries: Vec<Entry>,
    every: bool,
}

impl ModuleVisitor for Collect<'_> {
    fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
        let g = self.grads.get::<D>(param.id);
        if g.is_some() || self.every {
            let value = param.val().inner();
            let n = value.shape().num_elements();
            let value = value.reshape([n]);
            let present = g.is_some();
            let grad = g.map_or_else(|| value.zeros_like(), |g| g.reshape([n]));
            self.entries.push(Entry { id: param.id, value, grad, present });
        }
    }
}

/// Data parallelism: every rank's gradients replaced by their mean over ranks (the gradient
/// of the global batch, each rank having taken the mean over its equal share). A parameter
/// keeps a gradient when any rank had one (its mean counts zero for the others, as for a
/// sample that did not use it), and is left out when none had. A failed collective (a rank
/// died, the timeout passed) panics: there is no step to take without the other ranks.
fn average_over_ranks(entries: Vec<Entry>, group: &crate::dist::ProcessGroup) -> Vec<Entry> {
    let mut present: Vec<f64> = entries.iter().map(|e| f64::from(u8::from(e.present))).collect();
    group.sum_f64(&mut present).unwrap_or_else(|e| panic!("rank {}: gradient presence: {e}", group.rank));
    let mean = group
        .average(entries.iter().map(|e| e.grad.clone()).collect())
        .unwrap_or_else(|e| panic!("rank {}: gradient all-reduce: {e}", group.rank));
    entries
        .into_iter()
        .zip(mean)
        .zip(present)
        .filter(|(_, p)| *p > 0.0)
        .map(|((e, grad), _)| Entry { grad, present: true, ..e })
        .collect()
}

/// Puts the updated values back, keeping each parameter's autodiff state.
struct Restore {
    updated: HashMap<ParamId, Tensor<1>>,
}

impl ModuleMapper for Restore {
    fn map_float<const D: usize>(&mut self, param: Param<Tensor<D>>) -> Param<Tensor<D>> {
        let (id, tensor, mapper) = param.consume();
        let tensor = match self.updated.remove(&id) {
            Some(new) => {
                let require_grad = tensor.is_require_grad();
                let strategy = tensor.gradient_checkpointing_strategy();
                let mut t = Tensor::<D>::from_inner(new.reshape(tensor.shape()));
                if let Some(s) = strategy {
                    t = t.with_gradient_checkpointing_strategy(s);
                }
                if require_grad {
                    t = t.require_grad();
                }
                t
            }
            None => tensor,
        };
        Param::from_mapped_value(id, tensor, mapper)
    }
}

/// The LibTorch tensors of `ts` when every one is a LibTorch float tensor without autodiff.
#[cfg(feature = "tch")]
#[allow(deprecated)] // burn's LibTorch types: see fused/libtorch.rs
fn tch_all(ts: &[Tensor<1>]) -> Option<Vec<burn::backend::libtorch::TchTensor>> {
    ts.iter().map(crate::fused::libtorch::to_tch).collect()
}

#[cfg(feature = "tch")]
use crate::fused::libtorch::from_tch;

/// The L2 norm of each tensor, `[n]` in f32 on the tensors' device (one `_foreach_norm` on
/// LibTorch).
pub fn norms(tensors: Vec<Tensor<1>>) -> Tensor<1> {
    #[cfg(feature = "tch")]
    if let Some(ts) = tch_all(&tensors) {
        return from_tch(crate::fused::libtorch::multi::norms(ts));
    }
    let parts: Vec<Tensor<1>> = tensors.into_iter().map(|t| t.cast(FloatDType::F32).square().sum().sqrt()).collect();
    Tensor::cat(parts, 0)
}

/// The L2 norm of the gradient in `grads` of each parameter of `module` that has one, by id:
/// the optimiser's gradient collection and [`norms`], read back once.
pub fn grad_norms<M: Module>(module: &M, grads: &GradientsParams) -> Vec<(ParamId, f64)> {
    let mut c = Collect { grads, entries: vec![], every: false };
    module.visit(&mut c);
    if c.entries.is_empty() {
        return vec![];
    }
    let n = norms(c.entries.iter().map(|e| e.grad.clone()).collect());
    let values = n.into_data().convert::<f32>().try_to_vec::<f32>().unwrap_or_default();
    c.entries.iter().zip(values).map(|(e, v)| (e.id, v as f64)).collect()
}

/// `tensors[i]·coef[i]` for a `[n]` tensor of coefficients (one `_foreach_mul` on LibTorch).
fn scale(tensors: Vec<Tensor<1>>, coef: Tensor<1>) -> Vec<Tensor<1>> {
    #[cfg(feature = "tch")]
    if let (Some(ts), Some(mut c)) = (tch_all(&tensors), tch_all(std::slice::from_ref(&coef))) {
        let out = crate::fused::libtorch::multi::scale(ts, c.remove(0));
        return out.into_iter().map(from_tch).collect();
    }
    tensors
        .into_iter()
        .enumerate()
        .map(|(i, t)| {
            let dt = t.dtype();
            t.clone() * coef.clone().slice(i..i + 1).cast(dt)
        })
        .collect()
}

/// EMA of flattened parameter values: `ema + (online − ema)·weight` for each pair, in one
/// multi-tensor op on LibTorch (`_foreach_lerp`).
pub fn lerp(ema: Vec<Tensor<1>>, online: Vec<Tensor<1>>, weight: f64) -> Vec<Tensor<1>> {
    #[cfg(feature = "tch")]
    if let (Some(e), Some(o)) = (tch_all(&ema), tch_all(&online)) {
        return crate::fused::libtorch::multi::lerp(e, o, weight).into_iter().map(from_tch).collect();
    }
    ema.into_iter().zip(online).map(|(e, o)| e * (1.0 - weight) + o * weight).collect()
}

/// One AdamW step over many flattened parameters (out of place): new parameters and moments.
/// `steps[i]` is parameter i's step count including this one. In f32 like burn's AdamW (its β
/// powers are f32).
#[allow(clippy::too_many_arguments, clippy::type_complexity)]
fn adamw(
    params: Vec<Tensor<1>>,
    grads: Vec<Tensor<1>>,
    m: Vec<Tensor<1>>,
    v: Vec<Tensor<1>>,
    steps: Vec<f64>,
    lr: f64,
    betas: (f64, f64),
    weight_decay: f64,
    eps: f64,
) -> (Vec<Tensor<1>>, Vec<Tensor<1>>, Vec<Tensor<1>>) {
    #[cfg(feature = "tch")]
    if let (Some(p), Some(g), Some(mm), Some(vv)) = (tch_all(&params), tch_all(&grads), tch_all(&m), tch_all(&v)) {
        let (p, m, v) = crate::fused::libtorch::multi::adamw(p, g, mm, vv, steps, lr, betas, weight_decay, eps);
        let f = |x: Vec<_>| x.into_iter().map(from_tch).collect::<Vec<_>>();
        return (f(p), f(m), f(v));
    }
    let (b1, b2) = betas;
    let mut out = (Vec::new(), Vec::new(), Vec::new());
    for (((p, g), m), (v, t)) in params.into_iter().zip(grads).zip(m).zip(v.into_iter().zip(steps)) {
        let m = m * b1 + g.clone() * (1.0 - b1);
        let v = v * b2 + g.square() * (1.0 - b2);
        let c1 = 1.0 - (b1 as f32).powi(t as i32);
        let c2 = 1.0 - (b2 as f32).powi(t as i32);
        let mh = m.clone().div_scalar(c1 as f64);
        let vh = v.clone().div_scalar(c2 as f64);
        let delta = mh / (vh.sqrt() + eps);
        let decayed = if weight_decay == 0.0 { p } else { p * (1.0 - lr * weight_decay) };
        out.0.push(decayed - delta * lr);
        out.1.push(m);
        out.2.push(v);
    }
    out
}

impl FusedAdamW {
    /// A new optimiser with no state.
    pub fn new(config: FusedAdamWConfig) -> Self {
        FusedAdamW { config, state: HashMap::new() }
    }

    /// One step: updates every parameter of `module` that has a gradient in `grads`, with
    /// learning rate `lr`. Returns the module and the global L2 norm of those gradients before
    /// clipping (read back once); when it is not finite nothing is updated.
    ///
    /// Under data parallelism ([`crate::dist::init`]) the gradients are first averaged over
    /// the ranks, so every rank computes the same norm, skips the same steps and applies the
    /// same update.
    pub fn step<M: Module>(&mut self, lr: f64, module: M, grads: &GradientsParams) -> (M, f64) {
        let group = crate::dist::group();
        let mut c = Collect { grads, entries: vec![], every: group.is_some() };
        module.visit(&mut c);
        let entries = match group {
            Some(g) => average_over_ranks(c.entries, g),
            None => c.entries,
        };
        if entries.is_empty() {
            return (module, 0.0);
        }
        let norms = norms(entries.iter().map(|e| e.grad.clone()).collect());
        let total = norms.clone().square().sum().sqrt().into_scalar::<f32>() as f64;
        if !total.is_finite() {
            return (module, total);
        }
        let mut grads: Vec<Tensor<1>> = entries.iter().map(|e| e.grad.clone()).collect();
        if let Some(clip) = self.config.grad_clip {
            // burn's per-parameter clipping: coefficient min(1, clip / (‖g‖ + tiny)).
            let tiny = FloatDType::F32.finfo().min_positive;
            let coef = (norms + tiny).recip().mul_scalar(clip).clamp_max(1.0);
            grads = scale(grads, coef);
        }
        let mut m = Vec::with_capacity(entries.len());
        let mut v = Vec::with_capacity(entries.len());
        let mut steps = Vec::with_capacity(entries.len());
        for e in &entries {
            let s = self.state.remove(&e.id);
            let step = s.as_ref().map_or(0, |s| s.step) + 1;
            let (mm, vv) = match s {
                Some(s) => (s.m, s.v),
                None => (e.value.zeros_like(), e.value.zeros_like()),
            };
            m.push(mm);
            v.push(vv);
            steps.push(step as f64);
        }
        let cfg = &self.config;
        let (p, m, v) = adamw(
            entries.iter().map(|e| e.value.clone()).collect(),
            grads,
            m,
            v,
            steps.clone(),
            lr,
            (cfg.beta_1, cfg.beta_2),
            cfg.weight_decay,
            cfg.epsilon,
        );
        let mut updated = HashMap::with_capacity(entries.len());
        for (((e, p), (m, v)), step) in entries.iter().zip(p).zip(m.into_iter().zip(v)).zip(steps) {
            updated.insert(e.id, p);
            self.state.insert(e.id, Moments { m, v, step: step as usize });
        }
        (module.map(&mut Restore { updated }), total)
    }

    /// Saves the moments and step counts to `dir/optim.bpk` and `dir/optim.json` (each
    /// written beside and renamed). Parameters are named by their path in `module` (not by id,
    /// which a rebuilt model does not keep), so [`FusedAdamW::load`] finds them again.
    pub fn save<M: Module>(&self, dir: &Path, module: &M) -> Result<(), String> {
        let paths = param_paths(module);
        let mut named: Vec<(&String, &Moments)> =
            paths.iter().filter_map(|(path, id, _)| self.state.get(id).map(|s| (path, s))).collect();
        named.sort_by(|a, b| a.0.cmp(b.0));
        let record = MomentsRecord {
            m: named.iter().map(|(_, s)| Param::from_tensor(s.m.clone())).collect(),
            v: named.iter().map(|(_, s)| Param::from_tensor(s.v.clone())).collect(),
        };
        let meta = OptimMeta {
            config: self.config.clone(),
            params: named.iter().map(|(path, s)| ((*path).clone(), s.step)).collect(),
        };
        let bpk = dir.join("optim.bpk");
        crate::atomic::write_via_path(&bpk, |tmp| {
            let mut store = burn_store::BurnpackStore::from_file(tmp).overwrite(true).auto_extension(false);
            burn_store::ModuleSnapshot::save_into(&record, &mut store)
                .map_err(|e| crate::atomic::AtomicError::Write(e.to_string()))
        })
        .map_err(|e| format!("{}: {e}", bpk.display()))?;
        let json = dir.join("optim.json");
        crate::atomic::write_json(&json, &meta).map_err(|e| format!("{}: {e}", json.display()))
    }

    /// Loads what [`FusedAdamW::save`] wrote for `module` (the same architecture), onto
    /// `device`; the settings stay this optimiser's. A saved parameter `module` lacks is an error.
    pub fn load<M: Module>(&mut self, dir: &Path, module: &M, device: &Device) -> Result<(), String> {
        let json = dir.join("optim.json");
        let text = std::fs::read(&json).map_err(|e| format!("{}: {e}", json.display()))?;
        let meta: OptimMeta = serde_json::from_slice(&text).map_err(|e| format!("{}: {e}", json.display()))?;
        let bpk = dir.join("optim.bpk");
        let paths = param_paths(module);
        let numel: HashMap<&str, usize> = paths.iter().map(|(p, _, n)| (p.as_str(), *n)).collect();
        let mut sizes = Vec::with_capacity(meta.params.len());
        for (path, _) in &meta.params {
            let n = numel
                .get(path.as_str())
                .ok_or_else(|| format!("{}: the model has no parameter {path}", json.display()))?;
            sizes.push(*n);
        }
        // Placeholders of the right sizes, filled from the file; the moments live without
        // autodiff, as the parameters' inner values do.
        let device = &device.clone().without_autodiff();
        let mut record = MomentsRecord {
            m: sizes.iter().map(|&n| Param::from_tensor(Tensor::<1>::zeros([n], device))).collect(),
            v: sizes.iter().map(|&n| Param::from_tensor(Tensor::<1>::zeros([n], device))).collect(),
        };
        let mut store = burn_store::BurnpackStore::from_file(&bpk).auto_extension(false);
        // The saved shapes replace the placeholders.
        let r = burn_store::ModuleSnapshot::load_from(&mut record, &mut store)
            .map_err(|e| format!("{}: {e}", bpk.display()))?;
        if !r.errors.is_empty() || !r.missing.is_empty() {
            return Err(format!("{}: does not match {}: {r}", bpk.display(), json.display()));
        }
        let ids: HashMap<String, ParamId> = paths.into_iter().map(|(p, id, _)| (p, id)).collect();
        self.state.clear();
        for (((path, step), m), v) in meta.params.iter().zip(record.m).zip(record.v) {
            let id = ids.get(path).ok_or_else(|| format!("{}: the model has no parameter {path}", json.display()))?;
            self.state.insert(*id, Moments { m: m.val().inner(), v: v.val().inner(), step: *step });
        }
        Ok(())
    }

    /// Number of parameters with state.
    pub fn len(&self) -> usize {
        self.state.len()
    }

    /// Whether no parameter has state yet.
    pub fn is_empty(&self) -> bool {
        self.state.is_empty()
    }
}

/// The moments as a module, so that burnpack stores them.
#[derive(Module, Debug)]
struct MomentsRecord {
    m: Vec<Param<Tensor<1>>>,
    v: Vec<Param<Tensor<1>>>,
}

#[derive(Serialize, Deserialize)]
struct OptimMeta {
    config: FusedAdamWConfig,
    /// `(parameter path, step count)` in the order of the record's vectors.
    params: Vec<(String, usize)>,
}

/// `(dotted path, id, number of elements)` of every float parameter of `module`, in visit
/// order (e.g. `stack.layers.0.gate.fc1.weight`): how the optimiser names its saved state, and
/// the handle for stage-wise training.
pub fn param_paths<M: Module>(module: &M) -> Vec<(String, ParamId, usize)> {
    struct Paths {
        stack: Vec<String>,
        out: Vec<(String, ParamId, usize)>,
    }
    impl ModuleVisitor for Paths {
        fn enter_module(&mut self, name: &str, _: &str) {
            self.stack.push(name.to_string());
        }
        fn exit_module(&mut self, _: &str, _: &str) {
            self.stack.pop();
        }
        fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
            // The lazy shape: the same for a materialised parameter, and no allocation for one
            // built under `nn::shapes_only`.
            self.out.push((self.stack.join("."), param.id, param.lazy_shape().num_elements()));
        }
    }
    let mut p = Paths { stack: vec![], out: vec![] };
    module.visit(&mut p);
    p.out
}
