//! Turning one point's TOML into typed settings while collecting *every* problem: unknown keys,
//! wrong types, out-of-range values, unknown routers, image sizes the patch does not divide,
//! missing data or weights. Each problem names its key path; the caller adds file and line.

use dddit_core::device::DeviceSpec;
use dddit_core::dit::DiTConfig;
use dddit_data::DataSection;
use dddit_data::Dataset;
use dddit_eval::eval::{EvalConfig, FeatureKind};
use dddit_routers::registry::ParamCount;
use dddit_routers::settings::{deserialize_all, is_unknown_field, lookup};
use dddit_train::RunFile;
use std::collections::HashMap;
use std::sync::Arc;

/// A key path below the experiment root and what is wrong with it.
pub type KeyProblem = (String, String);

/// The typed settings of one point.
#[derive(Clone, Debug)]
pub struct Resolved {
    /// What `dddit train` would read (device, model, router, data, train).
    pub run: RunFile,
    /// The evaluation settings (`[eval]`).
    pub eval: EvalConfig,
    /// The DiT the run builds.
    pub dit: DiTConfig,
}

/// Most parameters a model may have: 20 bytes each for training (weights, gradients, the two
/// AdamW moments, the EMA copy) make 4·10¹⁰ parameters 800 GB, beyond any one device dddit runs
/// on. A configuration above it is refused before anything is allocated.
pub const MAX_PARAMS: usize = 40_000_000_000;

/// Memory of the largest single GPU (B200: 192 GB), the bound of a CUDA run's estimate; the
/// device's own memory is not known until it is opened.
const CUDA_MEMORY: u64 = 192 << 30;

/// Real images evaluation can draw: (reference, held-out), `None` where unlimited.
type RealCounts = (Option<usize>, Option<usize>);

/// Caches what is costly to check more than once per experiment (loading a data set, counting
/// a model's parameters, the real images evaluation can draw).
#[derive(Default)]
pub struct Checker {
    data: HashMap<String, Result<Arc<dyn Dataset>, String>>,
    params: HashMap<String, Option<ParamCount>>,
    real: HashMap<String, Result<RealCounts, String>>,
}

impl Checker {
    /// The data set a `[data]` section describes, loaded once.
    pub fn data(&mut self, section: &DataSection) -> Result<Arc<dyn Dataset>, String> {
        let key = toml::to_string(section).unwrap_or_default();
        self.data.entry(key).or_insert_with(|| section.init().map_err(|e| e.to_string())).clone()
    }

    /// Parameters of the model a router table builds for `dit`, counted once without
    /// allocating them (`None`: the router table is invalid).
    fn params(&mut self, router: &toml::Table, dit: &DiTConfig) -> Option<ParamCount> {
        let key = format!("{}\n{dit:?}", toml::to_string(router).unwrap_or_default());
        *self.params.entry(key).or_insert_with(|| {
            let kind = router.get("kind").and_then(|v| v.as_str()).unwrap_or("dense");
            dddit_routers::registry::lookup(kind).ok().and_then(|e| (e.param_count)(router, dit))
        })
    }

    /// Whether setting `key` (a sweep's key path) in `base` to `value` makes a key the schema
    /// does not have: the deserialiser's message when it does. Router keys are the router's to
    /// check (a `[router]` table takes any key until its router reads it).
    pub fn unknown_key(&self, base: &toml::Table, key: &str, value: &toml::Value) -> Option<String> {
        let mut table = base.clone();
        crate::sweep::set_path(&mut table, key, value.clone()).ok()?;
        let mut problems = Vec::new();
        let eval = match table.remove("eval") {
            Some(toml::Value::Table(t)) => t,
            _ => toml::Table::new(),
        };
        let _ = deserialize_all::<RunFile>(table, "", &mut problems);
        let _ = deserialize_all::<EvalConfig>(eval, "eval", &mut problems);
        problems.into_iter().find(|(k, m)| k == key && is_unknown_field(m)).map(|(_, m)| m)
    }

    /// The run settings of a point or of a `dddit train` file (`device`, `precision`, `out`,
    /// `model`, `router`, `data`, `train`): every problem found, and the settings when there
    /// are none. One validation path for `dddit run` and `dddit train`.
    pub fn resolve_run(&mut self, table: &toml::Table) -> Result<(RunFile, DiTConfig), Vec<KeyProblem>> {
        let mut problems = Vec::new();
        let run = deserialize_all::<RunFile>(table.clone(), "", &mut problems);
        let checked = run.as_ref().map(|run| self.check_run(table, run, &mut problems));
        match (run, checked) {
            (Some(run), Some(Some((dit, _)))) if problems.is_empty() => Ok((run, dit)),
            _ => Err(problems),
        }
    }

    /// Range and consistency checks of typed run settings; the DiT (when the model is valid)
    /// and the data set (when it could be read).
    fn check_run(
        &mut self,
        table: &toml::Table,
        run: &RunFile,
        problems: &mut Vec<KeyProblem>,
    ) -> Option<(DiTConfig, Option<Arc<dyn Dataset>>)> {
        let spec = run.device.parse::<DeviceSpec>().map_err(|e| e.to_string());
        if let Err(e) = spec.clone().and_then(|s| s.device().map(|_| ()).map_err(|e| e.to_string())) {
            problems.push(("device".into(), e));
        } else if let Err(e) = spec.clone().and_then(|s| run.precision.check_device(s)) {
            problems.push(("precision".into(), format!("{e} (or pass --device tch-cuda:0)")));
        }
        // The data's settings, then its files; the model and router are checked from the
        // settings alone, so a missing data directory hides nothing else.
        let data_problems = run.data.problems();
        let data = if data_problems.is_empty() {
            match self.data(&run.data) {
                Ok(d) => Some(d),
                Err(e) => {
                    let key = match &run.data {
                        DataSection::FashionMnist(_) => "data.dir",
                        DataSection::Shapes(_) => "data",
                    };
                    problems.push((key.into(), e));
                    None
                }
            }
        } else {
            problems.extend(data_problems.into_iter().map(|(k, m)| (format!("data.{k}"), m)));
            None
        };
        let dit = match run.model_config() {
            Ok(dit) => Some(dit),
            Err(all) => {
                problems.extend(all);
                None
            }
        };
        let experts = router(&run.router, dit.as_ref(), problems);
        problems.extend(run.train.problems().into_iter().map(|(k, m)| (format!("train.{k}"), m)));
        stages(run, experts, problems);
        budget(table, run, problems);
        if let Some(data) = &data {
            if run.train.batch_size > data.len() {
                problems.push((
                    "train.batch_size".into(),
                    format!(
                        "{} is more than the {} samples of the data set (every batch would silently be the whole set)",
                        run.train.batch_size,
                        data.len()
                    ),
                ));
            }
        }
        if let Some(count) = dit.as_ref().and_then(|d| self.params(&run.router, d)) {
            router_stages(run, count, problems);
            if let (Some(d), Ok(spec)) = (&dit, &spec) {
                memory(run, d, count.total, *spec, problems);
            }
        }
        dit.map(|d| (d, data))
    }

    /// Resolves the sections of one point (`device`, `model`, `router`, `data`, `train`,
    /// `eval`), returning the settings or every problem found.
    pub fn resolve(&mut self, table: &toml::Table) -> Result<Resolved, Vec<KeyProblem>> {
        let mut problems = Vec::new();
        let mut run_table = table.clone();
        let eval_table = match run_table.remove("eval") {
            None => toml::Table::new(),
            Some(toml::Value::Table(t)) => t,
            Some(other) => {
                problems.push(("eval".into(), format!("expected a table, found {}", other.type_str())));
                toml::Table::new()
            }
        };
        let run = deserialize_all::<RunFile>(run_table, "", &mut problems);
        let eval = deserialize_all::<EvalConfig>(eval_table, "eval", &mut problems);
        let checked = run.as_ref().and_then(|run| self.check_run(table, run, &mut problems));
        if let Some(eval) = &eval {
            problems.extend(eval.problems().into_iter().map(|(k, m)| (format!("eval.{k}"), m)));
            if eval.features.contains(&FeatureKind::Inception)
                && !dddit_eval::assets::asset("inception").ok().and_then(|a| a.is_present().ok()).unwrap_or(false)
            {
                problems.push((
                    "eval.features".into(),
                    "the Inception weights are not installed: run `dddit assets fetch inception`".into(),
                ));
            }
            if let (Some(run), Some((dit, Some(_)))) = (&run, &checked) {
                self.real_images(run, dit, eval, &mut problems);
            }
        }
        match (run, eval, checked) {
            (Some(run), Some(eval), Some((dit, _))) if problems.is_empty() => Ok(Resolved { run, eval, dit }),
            _ => Err(problems),
        }
    }

    /// Evaluation draws `reference_samples` real images from the training set and as many
    /// held-out images as `samples`, and holds them all in host memory with the samples:
    /// counts the data cannot give, or images that cannot fit, are found now, not after
    /// training.
    fn real_images(&mut self, run: &RunFile, dit: &DiTConfig, eval: &EvalConfig, problems: &mut Vec<KeyProblem>) {
        let key = toml::to_string(&run.data).unwrap_or_default();
        let counts = self
            .real
            .entry(key)
            .or_insert_with(|| dddit_eval::eval::real_image_counts(&run.data).map_err(|e| e.to_string()))
            .clone();
        match counts {
            Err(e) => problems.push(("data".into(), e)),
            Ok((reference, held_out)) => {
                if let Some(n) = reference.filter(|&n| eval.reference_samples > n) {
                    problems.push((
                        "eval.reference_samples".into(),
                        format!("{} is more than the {n} reference images the data set has", eval.reference_samples),
                    ));
                }
                if let Some(n) = held_out.filter(|&n| eval.samples > n) {
                    problems.push((
                        "eval.samples".into(),
                        format!(
                            "{} is more than the {n} held-out images the data set has (the real-vs-real floor compares as many as samples)",
                            eval.samples
                        ),
                    ));
                }
            }
        }
        let image = (dit.in_channels * dit.input_height * dit.input_height * 4) as u128;
        let bytes = (eval.samples as u128 * 2 + eval.reference_samples as u128) * image;
        if let Some(limit) = host_memory().filter(|&m| bytes > m as u128) {
            problems.push((
                "eval.samples".into(),
                format!(
                    "{} samples and {} reference images of {}×{}×{} hold {} in memory, more than this machine's {}",
                    eval.samples,
                    eval.reference_samples,
                    dit.in_channels,
                    dit.input_height,
                    dit.input_height,
                    gib(bytes),
                    gib(limit as u128)
                ),
            ));
        }
    }
}

/// Checks the `[router]` table against the model (without a valid model: its keys only);
/// returns the router's experts per layer when the table is valid.
fn router(table: &toml::Table, dit: Option<&DiTConfig>, problems: &mut Vec<KeyProblem>) -> Option<usize> {
    let kind = match dddit_routers::registry::kind_of(table) {
        Ok(kind) => kind,
        Err(e) => {
            problems.push(("router.kind".into(), e.message));
            return None;
        }
    };
    match dddit_routers::registry::lookup(kind) {
        Err(e) => {
            problems.push(("router.kind".into(), e.to_string()));
            None
        }
        Ok(entry) => match dit.map_or_else(
            || match (entry.check_keys)(table) {
                errs if errs.is_empty() => Err(vec![]),
                errs => Err(errs),
            },
            |dit| (entry.validate)(table, dit),
        ) {
            Ok(()) => Some((entry.experts)(table)),
            Err(errs) => {
                for e in errs {
                    let key = if e.key.is_empty() { "router".to_string() } else { format!("router.{}", e.key) };
                    problems.push((key, e.message));
                }
                None
            }
        },
    }
}

/// A stage's `expert = i` must name an expert the router has (it would otherwise train nothing
/// and complete).
fn stages(run: &RunFile, experts: Option<usize>, problems: &mut Vec<KeyProblem>) {
    let Some(n) = experts else { return };
    let kind = run.router.get("kind").and_then(|v| v.as_str()).unwrap_or("dense");
    for (i, s) in run.train.stages.iter().enumerate() {
        match s.expert {
            Some(_) if n == 0 => problems.push((
                format!("train.stages[{i}].expert"),
                format!("router `{kind}` has no experts to train one at a time (topk, expert-choice and soft-moe do)"),
            )),
            Some(e) if e >= n => problems.push((
                format!("train.stages[{i}].expert"),
                format!("expert {e} does not exist: router `{kind}` has {n} experts per layer (0 to {})", n - 1),
            )),
            _ => {}
        }
    }
}

/// A `train = "router"` stage of a router without parameters of its own (dense, the hand-set
/// schedules, the heuristic estimators) would run its steps and train nothing.
fn router_stages(run: &RunFile, count: ParamCount, problems: &mut Vec<KeyProblem>) {
    if count.router > 0 {
        return;
    }
    let kind = run.router.get("kind").and_then(|v| v.as_str()).unwrap_or("dense");
    for (i, s) in run.train.stages.iter().enumerate() {
        if s.train == dddit_train::StageTarget::Router {
            problems.push((
                format!("train.stages[{i}].train"),
                format!("router `{kind}` has no parameters of its own in this configuration, so a \"router\" stage would train nothing"),
            ));
        }
    }
}

/// What training would hold in memory, at least: 20 bytes per parameter (weights, gradients,
/// two AdamW moments, the EMA copy) and the block inputs a backward keeps (ten hidden-size
/// vectors per token per block, far below the real figure). Refused above [`MAX_PARAMS`], above
/// the machine's memory on a CPU device, above the largest GPU's on CUDA: before the model is
/// allocated, where running out would abort the process and leave no `failed.json`.
fn memory(run: &RunFile, dit: &DiTConfig, params: usize, spec: DeviceSpec, problems: &mut Vec<KeyProblem>) {
    let dense = dddit_routers::registry::lookup("dense")
        .ok()
        .and_then(|e| (e.param_count)(&toml::Table::new(), dit))
        .map_or(0, |c| c.total);
    let key = if params > 2 * dense.max(1) { "router" } else { "model.preset" };
    if params > MAX_PARAMS {
        problems.push((
            key.into(),
            format!(
                "the model would have {:.3e} parameters ({:.3e} without the router), more than the {:.0e} a run may ask for",
                params as f64, dense as f64, MAX_PARAMS as f64
            ),
        ));
        return;
    }
    let state = params as u128 * 20;
    let tokens = dit.num_tokens() as u128;
    let activations = run.train.batch_size as u128 * dit.depth as u128 * tokens * dit.hidden_size as u128 * 10 * 4;
    let (limit, what) = match spec {
        DeviceSpec::TchCuda(_) => (Some(CUDA_MEMORY), "the largest GPU's"),
        _ => (host_memory(), "this machine's"),
    };
    let Some(limit) = limit else { return };
    if state + activations > limit as u128 {
        let key = if activations > state { "train.batch_size" } else { key };
        problems.push((
            key.into(),
            format!(
                "training needs at least {} ({:.3e} parameters: {}; batch {} of {} tokens: {}), more than {what} {}",
                gib(state + activations),
                params as f64,
                gib(state),
                run.train.batch_size,
                tokens,
                gib(activations),
                gib(limit as u128)
            ),
        ));
    }
}

/// Physical memory of this machine (Linux `/proc/meminfo`), `None` where unknown.
fn host_memory() -> Option<u64> {
    let text = std::fs::read_to_string("/proc/meminfo").ok()?;
    let line = text.lines().find(|l| l.starts_with("MemTotal:"))?;
    let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib * 1024)
}

fn gib(bytes: u128) -> String {
    format!("{:.1} GiB", bytes as f64 / (1u64 << 30) as f64)
}

/// A compute budget must be one the router can be trained to: `train.loss.flops_target` below 1
/// with the FLOPs term on (`train.loss.flops > 0`) for a router without a differentiable cost
/// (`dense`, `topk`, `soft-moe`, the hand-set `timestep-gate` schedules…), or set explicitly
/// below 1 while the FLOPs term is off, does nothing: both are errors naming the key.
/// `flops_target = 1.0` (no budget) is always accepted, so a zipped sweep can give the dense
/// point one.
fn budget(table: &toml::Table, run: &RunFile, problems: &mut Vec<KeyProblem>) {
    let loss = &run.train.loss;
    let explicit = lookup(table, "train.loss.flops_target").is_some();
    if loss.flops_target >= 1.0 || !(explicit || loss.flops > 0.0) {
        return;
    }
    let kind = run.router.get("kind").and_then(|v| v.as_str()).unwrap_or("dense");
    let Ok(entry) = dddit_routers::registry::lookup(kind) else { return };
    if loss.flops == 0.0 {
        problems.push((
            "train.loss.flops_target".into(),
            format!(
                "a budget of {} has no effect while train.loss.flops = 0 (the FLOPs term is off); set train.loss.flops > 0 or leave the target out",
                loss.flops_target
            ),
        ));
    } else if !(entry.flops_loss)(&run.router) {
        problems.push((
            "train.loss.flops_target".into(),
            format!(
                "router `{kind}` has no differentiable FLOPs cost in this configuration, so a budget of {} (with train.loss.flops = {}) would do nothing; use 1.0 (no budget) for it, or a router with a cost (dynamic-width, token-skip, depth-budget, text-budget, content-aware with estimator = \"learned\", timestep-gate with policy = \"learned-hard\")",
                loss.flops_target, loss.flops
            ),
        ));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn resolve(text: &str) -> Result<Resolved, Vec<KeyProblem>> {
        Checker::default().resolve(&toml::from_str(text).unwrap())
    }

    const GOOD: &str = "[model]\npreset = \"DiT-N/4\"\n[router]\nkind = \"topk\"\nexperts = 4\nk = 1\n[data]\nkind = \"shapes\"\nsize = 16\n[train]\nsteps = 2\n[eval]\nsamples = 8\nreference_samples = 8\n";

    #[test]
    fn a_good_point_resolves() {
        let r = resolve(GOOD).unwrap();
        assert_eq!(r.run.train.steps, 2);
        assert_eq!(r.eval.samples, 8);
        assert_eq!(r.dit.input_height, 16);
    }

    #[test]
    fn every_problem_is_collected_with_its_key() {
        let text = GOOD
            .replace("k = 1", "k = 5\nwidth = 3")
            .replace("steps = 2", "steps = \"two\"\nbogus = 1\nlr = -1.0")
            .replace("[eval]\nsamples = 8\n", "[eval]\nsamples = 8\nfeatures = [\"nope\"]\n");
        let keys: Vec<String> = resolve(&text).unwrap_err().into_iter().map(|(k, _)| k).collect();
        for want in ["train.steps", "train.bogus", "eval.features[0]", "router.width"] {
            assert!(keys.iter().any(|k| k == want), "{want} missing from {keys:?}");
        }
    }

    #[test]
    fn a_budget_needs_a_router_with_a_cost() {
        let with = |router: &str, loss: &str| {
            GOOD.replace("kind = \"topk\"\nexperts = 4\nk = 1", router)
                .replace("steps = 2\n", &format!("steps = 2\n[train.loss]\n{loss}\n"))
        };
        let keys = |text: String| -> Vec<String> {
            match resolve(&text) {
                Ok(_) => vec![],
                Err(e) => e.into_iter().map(|(k, _)| k).collect(),
            }
        };
        let budget = "flops = 1.0\nflops_target = 0.5";
        for router in ["kind = \"dense\"", "kind = \"topk\"", "kind = \"timestep-gate\"\npolicy = \"progressive\""] {
            assert_eq!(keys(with(router, budget)), ["train.loss.flops_target"], "{router}");
            // 1.0 is no budget: always accepted.
            assert!(keys(with(router, "flops = 1.0\nflops_target = 1.0")).is_empty(), "{router}");
        }
        for router in ["kind = \"dynamic-width\"", "kind = \"timestep-gate\"\npolicy = \"learned-hard\""] {
            assert!(keys(with(router, budget)).is_empty(), "{router}");
        }
        // A target without the FLOPs term does nothing either.
        assert_eq!(keys(with("kind = \"dynamic-width\"", "flops_target = 0.5")), ["train.loss.flops_target"]);
    }

    #[test]
    fn ranges_are_checked_after_types() {
        let text = GOOD
            .replace("k = 1", "k = 5")
            .replace("steps = 2", "steps = 2\nlr = -1.0")
            .replace("size = 16", "size = 16\nmax_objects = 3");
        let errs = resolve(&text).unwrap_err();
        let keys: Vec<&str> = errs.iter().map(|(k, _)| k.as_str()).collect();
        assert!(keys.contains(&"router.k") && keys.contains(&"train.lr"), "{errs:?}");
    }
}
