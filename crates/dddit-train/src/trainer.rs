//! The training loop: diffusion loss plus weighted router losses, AdamW with warm-up and
//! clipping, EMA, a stage schedule, atomic checkpoints, exact resume and a clean stop on NaN.

use crate::config::TrainConfig;
use burn::module::ParamId;
use burn::prelude::*;
use burn::tensor::Distribution;
use dddit_core::diffusion::{DiffusionConfig, GaussianDiffusion};
use dddit_core::optim::{FusedAdamW, FusedAdamWConfig};
use dddit_core::routing::Mode;
use dddit_data::{BatchOrder, BatchOrderConfig, Batcher, BatcherConfig, Dataset, Position, SplitMix64};
use dddit_routers::{AnyRoutedModel, ForwardOptions};
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// Errors of a training run.
#[derive(Debug, thiserror::Error)]
pub enum TrainError {
    /// A loss term became NaN or infinite; the last good checkpoint is kept.
    #[error("non-finite loss at step {step}: {terms}; the last good checkpoint is kept")]
    NonFinite {
        /// The step.
        step: usize,
        /// Every loss term with its value.
        terms: String,
    },
    /// Reading or writing the run directory.
    #[error("{0}")]
    Io(String),
    /// Bad settings.
    #[error("invalid training setting: {0}")]
    Config(String),
    /// A collective of data-parallel training failed (a rank died, the timeout passed).
    #[error("data-parallel training: {0}")]
    Dist(#[from] dddit_core::dist::DistError),
}

/// The scalar values of one step, logged to `metrics.jsonl`.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct StepLog {
    /// Step index (0-based) of the update.
    pub step: usize,
    /// Total loss.
    pub loss: f64,
    /// Each term, unweighted, by name (`diffusion`, `mse`, `vb`, `entropy`, `balance`, `flops_ratio`, `flops`, `aux`).
    pub terms: Vec<(String, f64)>,
    /// Learning rate used.
    pub lr: f64,
    /// Gradient norm before clipping.
    pub grad_norm: f64,
    /// Mean GFLOPs per sample of the forward (DiT convention).
    pub gflops: f64,
    /// The gradient was not finite, so neither the weights nor the EMA were updated.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub skipped: bool,
}

/// What a checkpoint holds besides the weights.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct TrainState {
    /// Steps done.
    pub step: usize,
    /// Position in the data order.
    pub position: Position,
    /// The caption encoder a caption-conditioned run was trained with (sampling must use the
    /// same one; it can differ from the run file's when MiniLM fell back to `hashed`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub text_encoder: Option<crate::captions::TextEncoderKind>,
}

/// A training run over a routed model.
pub struct Trainer {
    /// Settings.
    pub config: TrainConfig,
    /// The online model (on an autodiff device).
    pub model: Box<dyn AnyRoutedModel>,
    /// The EMA weights used for evaluation (same device, no gradients taken through them).
    pub ema: Box<dyn AnyRoutedModel>,
    optim: FusedAdamW,
    diffusion: GaussianDiffusion,
    batcher: Batcher<dyn Dataset>,
    order: BatchOrder,
    /// Steps done.
    pub step: usize,
    device: Device,
    /// Test hook: poison the loss at this step to exercise the NaN stop.
    pub inject_nan_at: Option<usize>,
    /// Test hook: make the gradient (not the loss) NaN at these steps.
    pub inject_nan_grad_at: Vec<usize>,
    /// Test hook: end the process (exit status 1) once this many steps are done, as a crash
    /// would (`dddit train` sets it from `DDDIT_FAULT_EXIT`).
    pub exit_at: Option<usize>,
    /// Steps in a row whose gradient was not finite (and were skipped).
    skipped_in_a_row: usize,
    /// Caption embeddings of a caption-conditioned model (`None`: class-conditional).
    pub captions: Option<crate::captions::Captions>,
}

/// Consecutive steps with a non-finite gradient after which a run stops.
pub const MAX_SKIPPED_IN_A_ROW: usize = 5;

impl Trainer {
    /// A new run of `model` (built on `device.autodiff()`) on `data`.
    pub fn new(
        config: TrainConfig,
        model: Box<dyn AnyRoutedModel>,
        data: Arc<dyn Dataset>,
        device: &Device,
    ) -> Result<Self, TrainError> {
        // The same checks as validation (`dddit run`, `dddit train`), for library callers.
        let problems = config.problems();
        if !problems.is_empty() {
            let all: Vec<String> = problems.iter().map(|(k, m)| format!("train.{k}: {m}")).collect();
            return Err(TrainError::Config(all.join("; ")));
        }
        let world = dddit_core::dist::world();
        if !config.batch_size.is_multiple_of(world) {
            return Err(TrainError::Config(format!(
                "train.batch_size: {} does not split into {world} equal shares, one per process of the \
                 data-parallel run (the global batch must equal a single process's)",
                config.batch_size
            )));
        }
        if config.batch_size > data.len() {
            return Err(TrainError::Config(format!(
                "train.batch_size: {} is more than the {} samples of the data set",
                config.batch_size,
                data.len()
            )));
        }
        // A stage that selects no parameter would run its steps and train nothing.
        for (i, s) in config.stages.iter().enumerate() {
            if model.param_ids(&|p, router| s.trains(p, router)).is_empty() {
                return Err(TrainError::Config(format!(
                    "train.stages[{i}]: trains no parameter of the `{}` model ({:?}{})",
                    model.router(),
                    s.train,
                    s.expert.map(|e| format!(", expert {e}")).unwrap_or_default()
                )));
            }
        }
        let diffusion = DiffusionConfig::for_model(model.config().learn_sigma)
            .init()
            .map_err(|e| TrainError::Config(e.to_string()))?;
        let order = BatchOrderConfig::new(config.batch_size, config.seed)
            .init(data.len())
            .map_err(|e| TrainError::Config(e.to_string()))?;
        let batcher = BatcherConfig::new(config.hflip, config.seed).init(data, device);
        // burn AdamW's defaults (β 0.9/0.999, ε 1e-5) and its per-parameter clipping by norm.
        let adam = FusedAdamWConfig {
            weight_decay: config.weight_decay,
            grad_clip: (config.grad_clip > 0.0).then_some(config.grad_clip),
            ..FusedAdamWConfig::default()
        };
        let ema = model.to_device(device);
        Ok(Trainer {
            optim: FusedAdamW::new(adam),
            diffusion,
            batcher,
            order,
            step: 0,
            device: device.clone(),
            inject_nan_at: None,
            inject_nan_grad_at: Vec::new(),
            exit_at: None,
            skipped_in_a_row: 0,
            captions: None,
            ema,
            model,
            config,
        })
    }

    /// One optimiser step.
    pub fn step(&mut self) -> Result<StepLog, TrainError> {
        let cfg = &self.config;
        let step = self.step;
        let batch = self.order.next_batch().ok_or_else(|| TrainError::Config("empty data order".into()))?;
        // Data parallelism: this rank takes its contiguous share [lo, hi) of the global batch,
        // and every random draw is made for the whole global batch and sliced, so that the
        // ranks together see what one process would (dddit_core::dist).
        let group = dddit_core::dist::group();
        let (rank, world) = group.map_or((0, 1), |g| (g.rank, g.world));
        let global_b = batch.indices.len();
        let (lo, hi) = dddit_core::dist::shard(global_b, rank, world);
        let b = hi - lo;
        let data = self.batcher.batch(&batch.indices[lo..hi], batch.epoch);
        // Every random draw of this step comes from (seed, step), so a resumed run repeats it.
        let mut rng = SplitMix64::from_parts(&[cfg.seed, step as u64, 0x7135]);
        let t: Vec<usize> = (0..global_b).map(|_| rng.below(self.diffusion.len())).collect();
        let t = t[lo..hi].to_vec();
        self.device.seed(rng.next_u64());
        // Caption-conditioned: the label is always the null label, the caption carries the
        // condition, and it is dropped (zero row) with the label-dropout probability for CFG.
        let (y, text) = match &mut self.captions {
            None => (data.y.clone(), None),
            Some(captions) => {
                let p = self.model.config().class_dropout_prob;
                let drop: Vec<bool> =
                    (0..global_b).map(|_| ((rng.next_u64() >> 11) as f64 / (1u64 << 53) as f64) < p).collect();
                let drop = drop[lo..hi].to_vec();
                let text = captions
                    .embed(&data.captions, &drop, &self.device)
                    .map_err(|e| TrainError::Config(e.to_string()))?;
                let null = self.model.config().num_classes as i64;
                (Tensor::<1, Int>::from_data(TensorData::new(vec![null; b], [b]), &self.device), Some(text))
            }
        };
        let x0 = data.x.clone();
        let noise = if world == 1 {
            Tensor::<4>::random(x0.shape(), Distribution::Normal(0.0, 1.0), &self.device)
        } else {
            let [_, c, h, w] = x0.dims();
            Tensor::<4>::random([global_b, c, h, w], Distribution::Normal(0.0, 1.0), &self.device).slice(lo..hi)
        };
        let x_t = self.diffusion.q_sample(x0.clone(), &t, noise.clone());
        let ts = self.diffusion.model_t(&t);
        let complexity = (cfg.loss.aux != 0.0).then(|| data.complexity.clone());
        // The model's label dropout draws one number per sample, first thing in its forward:
        // across ranks it is drawn here for the global batch instead, and forced.
        let p_drop = self.model.config().class_dropout_prob;
        let dev = self.device.clone();
        let global_drop = move || {
            (world > 1 && p_drop > 0.0)
                .then(|| Tensor::<1>::random([global_b], Distribution::Default, &dev).lower_elem(p_drop).slice(lo..hi))
        };
        let opts = ForwardOptions {
            text: text.as_ref(),
            complexity,
            force_drop: global_drop(),
            ..ForwardOptions::new(&ts, Mode::Train)
        };
        let out = self.model.forward(x_t.clone(), self.diffusion.model_t_tensor(&t, &self.device), y.clone(), &opts);
        let gflops = out.flops.iter().map(|f| f.total() as f64).sum::<f64>() / b as f64 / 1e9;
        let dl = self.diffusion.training_losses(out.out, x0.clone(), x_t.clone(), &t, noise.clone());
        let mut terms: Vec<(String, Tensor<1>)> =
            vec![("diffusion".into(), dl.loss.mean()), ("mse".into(), dl.mse.mean().detach())];
        if let Some(vb) = dl.vb {
            terms.push(("vb".into(), vb.mean().detach()));
        }
        let mut loss = terms[0].1.clone();
        let w = &cfg.loss;
        if w.complete != 0.0 {
            let full = ForwardOptions {
                text: text.as_ref(),
                full: true,
                force_drop: global_drop(),
                ..ForwardOptions::new(&ts, Mode::Train)
            };
            let out = self.model.forward(x_t.clone(), self.diffusion.model_t_tensor(&t, &self.device), y, &full);
            let c = self.diffusion.training_losses(out.out, x0.clone(), x_t.clone(), &t, noise.clone()).loss.mean();
            loss = loss + c.clone() * w.complete;
            terms.push(("complete".into(), c.detach()));
        }
        // Each router loss by its weight; every one present is logged under its name.
        let l = &out.losses;
        if let (Some(v), true) = (&l.balance, w.balance != 0.0) {
            loss = loss + v.clone() * w.balance;
        }
        if let (Some(v), true) = (&l.entropy, w.entropy != 0.0) {
            loss = loss + v.clone() * w.entropy;
        }
        if let (Some(v), true) = (&l.flops_ratio, w.flops != 0.0) {
            let f = (v.clone() - w.target_at(step)).square() * 2.0;
            loss = loss + f.clone() * w.flops;
            terms.push(("flops".into(), f.detach()));
        }
        if let Some(v) = &l.complexity {
            loss = loss + v.clone() * w.aux;
        }
        for (name, v) in l.named() {
            terms.push((name.into(), v.detach()));
        }
        if self.inject_nan_at == Some(step) {
            loss = loss * f64::NAN;
        }
        if self.inject_nan_grad_at.contains(&step) {
            // sqrt at 0: the value stays finite, its derivative is inf · 0 = NaN.
            loss = loss.clone() + (loss * 0.0).sqrt();
        }
        let mut values: Vec<(String, f64)> =
            terms.iter().map(|(k, v)| (k.clone(), v.clone().into_scalar::<f32>() as f64)).collect();
        let mut total = loss.clone().into_scalar::<f32>() as f64;
        let mut gflops = gflops;
        if let Some(g) = group {
            // The logged loss is the global batch's (equal shares: the mean of the ranks'
            // means), and a non-finite loss on one rank stops every rank at this step.
            let mut v: Vec<f64> =
                std::iter::once(total).chain(values.iter().map(|(_, v)| *v)).chain([gflops]).collect();
            g.sum_f64(&mut v)?;
            let n = world as f64;
            total = v[0] / n;
            for (i, (_, x)) in values.iter_mut().enumerate() {
                *x = v[i + 1] / n;
            }
            gflops = v[v.len() - 1] / n;
        }
        if !total.is_finite() || values.iter().any(|(_, v)| !v.is_finite()) {
            let list = std::iter::once(("total".to_string(), total))
                .chain(values)
                .map(|(k, v)| format!("{k} = {v}"))
                .collect::<Vec<_>>()
                .join(", ");
            return Err(TrainError::NonFinite { step, terms: list });
        }
        let only: Option<Vec<ParamId>> = match cfg.stage_at(step) {
            None => None,
            Some(s) if s.train == crate::config::StageTarget::All => None,
            Some(s) => Some(self.model.param_ids(&|p, router| s.trains(p, router))),
        };
        let lr = cfg.lr_at(step);
        let grad_norm = self.model.optimize(loss, &mut self.optim, lr, only.as_deref());
        let skipped = !grad_norm.is_finite();
        if skipped {
            // A finite loss with a non-finite gradient: the update was not applied. Rare
            // isolated cases are skipped (and logged); several in a row stop the run.
            self.skipped_in_a_row += 1;
            if self.skipped_in_a_row >= MAX_SKIPPED_IN_A_ROW {
                return Err(TrainError::NonFinite {
                    step,
                    terms: format!(
                        "gradient norm = {grad_norm} for {} steps in a row (loss {total})",
                        self.skipped_in_a_row
                    ),
                });
            }
        } else {
            self.skipped_in_a_row = 0;
            self.ema.ema_from(self.model.as_ref(), cfg.ema_decay_at(step));
        }
        self.step += 1;
        Ok(StepLog { step, loss: total, terms: values, lr, grad_norm, gflops, skipped })
    }

    /// Where training stands: what a checkpoint or snapshot records beside the weights.
    fn state(&self) -> TrainState {
        TrainState {
            step: self.step,
            position: self.order.position(),
            text_encoder: self.captions.as_ref().map(|c| c.kind()),
        }
    }

    /// Keeps the EMA weights and the training state of this step as `snapshots/step-N/` in
    /// the run directory `dir` (`train.snapshots`), written to a temporary directory first and
    /// renamed into place, replacing an earlier snapshot of the same step.
    pub fn save_snapshot(&self, dir: &Path) -> Result<(), TrainError> {
        let io = |e: std::io::Error, p: &Path| TrainError::Io(format!("{}: {e}", p.display()));
        use crate::run_dir::{EMA, STATE};
        let dest = crate::RunDir::new(dir).snapshot(self.step);
        let tmp = dest.with_extension("tmp");
        if tmp.exists() {
            std::fs::remove_dir_all(&tmp).map_err(|e| io(e, &tmp))?;
        }
        std::fs::create_dir_all(&tmp).map_err(|e| io(e, &tmp))?;
        self.ema.save(&tmp.join(EMA)).map_err(TrainError::Io)?;
        let state = self.state();
        dddit_core::atomic::write_json(&tmp.join(STATE), &state).map_err(|e| io(e, &tmp))?;
        if dest.exists() {
            std::fs::remove_dir_all(&dest).map_err(|e| io(e, &dest))?;
        }
        std::fs::rename(&tmp, &dest).map_err(|e| io(e, &tmp))?;
        let parent = dest.parent().expect("snapshots/");
        dddit_core::atomic::sync_dir(parent).map_err(|e| io(e, parent))
    }

    /// Writes model, EMA, optimiser state and position under `dir/checkpoint`, atomically: a new
    /// directory is written beside it and renamed over the old one.
    pub fn save_checkpoint(&self, dir: &Path) -> Result<(), TrainError> {
        let io = |e: std::io::Error, p: &Path| TrainError::Io(format!("{}: {e}", p.display()));
        use crate::run_dir::{CHECKPOINT, CHECKPOINT_OLD, CHECKPOINT_TMP, EMA, MODEL, STATE};
        let final_dir = dir.join(CHECKPOINT);
        let tmp = dir.join(CHECKPOINT_TMP);
        if tmp.exists() {
            std::fs::remove_dir_all(&tmp).map_err(|e| io(e, &tmp))?;
        }
        std::fs::create_dir_all(&tmp).map_err(|e| io(e, &tmp))?;
        self.model.save(&tmp.join(MODEL)).map_err(TrainError::Io)?;
        self.ema.save(&tmp.join(EMA)).map_err(TrainError::Io)?;
        self.model.save_optim(&self.optim, &tmp).map_err(TrainError::Io)?;
        let state = self.state();
        // Every file of the checkpoint is on disk (each written through dddit_core::atomic)
        // before the directory is renamed into place.
        dddit_core::atomic::write_json(&tmp.join(STATE), &state).map_err(|e| io(e, &tmp))?;
        let old = dir.join(CHECKPOINT_OLD);
        if final_dir.exists() {
            if old.exists() {
                std::fs::remove_dir_all(&old).map_err(|e| io(e, &old))?;
            }
            std::fs::rename(&final_dir, &old).map_err(|e| io(e, &final_dir))?;
        }
        std::fs::rename(&tmp, &final_dir).map_err(|e| io(e, &tmp))?;
        dddit_core::atomic::sync_dir(dir).map_err(|e| io(e, dir))?;
        if old.exists() {
            std::fs::remove_dir_all(&old).map_err(|e| io(e, &old))?;
        }
        Ok(())
    }

    /// Restores a checkpoint written by [`Trainer::save_checkpoint`] (a run directory whose
    /// `checkpoint.old` survived a crash between the two renames is recovered from it).
    pub fn load_checkpoint(&mut self, dir: &Path) -> Result<(), TrainError> {
        use crate::run_dir::{RunDir, EMA, MODEL, STATE};
        let ck: PathBuf = RunDir::new(dir)
            .checkpoint()
            .ok_or_else(|| TrainError::Io(format!("{}: no checkpoint to resume from", dir.display())))?;
        self.model.load(&ck.join(MODEL)).map_err(TrainError::Io)?;
        self.ema.load(&ck.join(EMA)).map_err(TrainError::Io)?;
        self.model.load_optim(&mut self.optim, &ck).map_err(TrainError::Io)?;
        let p = ck.join(STATE);
        let text = std::fs::read(&p).map_err(|e| TrainError::Io(format!("{}: {e}", p.display())))?;
        let state: TrainState =
            serde_json::from_slice(&text).map_err(|e| TrainError::Io(format!("{}: {e}", p.display())))?;
        if let (Some(trained), Some(now)) = (state.text_encoder, self.captions.as_ref().map(|c| c.kind())) {
            if trained != now {
                return Err(TrainError::Config(format!(
                    "{} was trained with `{trained}` caption embeddings but `{now}` is in use now; set [model] text_encoder = \"{trained}\" to continue it",
                    p.display()
                )));
            }
        }
        self.order.set_position(state.position).map_err(|e| TrainError::Io(e.to_string()))?;
        self.step = state.step;
        Ok(())
    }
}

impl Trainer {
    /// Runs to the end of the schedule in `dir`: resumes from `dir/checkpoint` when present,
    /// appends one JSON line per step to `dir/metrics.jsonl`, checkpoints every
    /// `checkpoint_every` steps and at the end, keeps the EMA at the `snapshots` steps
    /// ([`Trainer::save_snapshot`]), and shows progress (step, loss terms, samples/s,
    /// ETA) on stderr: a bar on a terminal, plain lines otherwise ([`crate::progress`]).
    pub fn run(&mut self, dir: &Path) -> Result<(), TrainError> {
        use std::io::Write;
        let io = |e: std::io::Error, p: &Path| TrainError::Io(format!("{}: {e}", p.display()));
        std::fs::create_dir_all(dir).map_err(|e| io(e, dir))?;
        if crate::run_dir::RunDir::new(dir).has_checkpoint() {
            self.load_checkpoint(dir)?;
            eprintln!("resumed {} at step {}", dir.display(), self.step);
        }
        // Under data parallelism every rank trains, rank 0 alone writes (dddit_core::dist).
        let main = dddit_core::dist::is_main();
        let metrics = dir.join(crate::run_dir::METRICS);
        // Drop log lines past the checkpoint: they belong to steps that will be redone.
        if main && metrics.exists() {
            let text = std::fs::read_to_string(&metrics).map_err(|e| io(e, &metrics))?;
            let keep: Vec<&str> = text
                .lines()
                .filter(|l| serde_json::from_str::<StepLog>(l).map(|s| s.step < self.step).unwrap_or(false))
                .collect();
            let mut body = keep.join("\n");
            if !body.is_empty() {
                body.push('\n');
            }
            dddit_core::atomic::write(&metrics, body.as_bytes()).map_err(|e| io(e, &metrics))?;
        }
        let mut log: Box<dyn Write> = if main {
            Box::new(std::fs::OpenOptions::new().create(true).append(true).open(&metrics).map_err(|e| io(e, &metrics))?)
        } else {
            Box::new(std::io::sink())
        };
        let total = self.config.total_steps();
        let start = std::time::Instant::now();
        let first = self.step;
        // A bar on a terminal; a plain line every 5% of the run in a log file (crate::progress).
        let mut progress = crate::progress::Progress::stderr(first, total);
        while self.step < total {
            let s = self.step()?;
            writeln!(log, "{}", serde_json::to_string(&s).expect("serialisable")).map_err(|e| io(e, &metrics))?;
            if self.exit_at == Some(self.step) {
                eprintln!("DDDIT_FAULT_EXIT: rank {} exits after step {}", dddit_core::dist::rank(), self.step);
                std::process::exit(1);
            }
            let done = self.step - first;
            let secs = start.elapsed().as_secs_f64();
            let samples_per_sec = (done * self.config.batch_size) as f64 / secs.max(1e-9);
            let eta_secs = (total - self.step) as f64 * secs / done as f64;
            if !main {
                continue;
            }
            progress.update(&crate::progress::StepStatus {
                step: self.step,
                loss: s.loss,
                terms: &s.terms,
                samples_per_sec,
                eta_secs,
            });
            if self.config.snapshots.contains(&self.step) {
                // Before any checkpoint of this step: a crash in between resumes from an
                // earlier checkpoint and writes this snapshot again, identically.
                self.save_snapshot(dir)?;
            }
            let every = self.config.checkpoint_every;
            if (every > 0 && self.step.is_multiple_of(every)) || self.step == total {
                log.flush().map_err(|e| io(e, &metrics))?;
                self.save_checkpoint(dir)?;
            }
        }
        progress.finish();
        Ok(())
    }
}
