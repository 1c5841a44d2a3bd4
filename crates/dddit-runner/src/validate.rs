//! Turning one point's TOML into typed settings while collecting *every* problem: unknown keys,
//! wrong types, out-of-range values, unknown routers, image sizes the patch does not divide,
//! missing data or weights. Each problem names its key path; the caller adds file and line.

use dddit_core::device::DeviceSpec;
use dddit_core::dit::DiTConfig;
use dddit_eval::eval::{EvalConfig, FeatureKind};
use dddit_train::data::Dataset;
use dddit_train::{DataSection, RunFile};
use serde::de::DeserializeOwned;
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

/// Caches what is costly to check more than once per experiment (loading a data set).
#[derive(Default)]
pub struct Checker {
    data: HashMap<String, Result<Arc<dyn Dataset>, String>>,
}

impl Checker {
    /// The data set a `[data]` section describes, loaded once.
    pub fn data(&mut self, section: &DataSection) -> Result<Arc<dyn Dataset>, String> {
        let key = toml::to_string(section).unwrap_or_default();
        self.data.entry(key).or_insert_with(|| section.init().map_err(|e| e.to_string())).clone()
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
        let run = collect::<RunFile>(run_table, "", &mut problems);
        let eval = collect::<EvalConfig>(eval_table, "eval", &mut problems);
        let mut dit = None;
        if let Some(run) = &run {
            if let Err(e) = run
                .device
                .parse::<DeviceSpec>()
                .map_err(|e| e.to_string())
                .and_then(|s| s.device().map(|_| ()).map_err(|e| e.to_string()))
            {
                problems.push(("device".into(), e));
            } else if let Err(e) =
                run.device.parse::<DeviceSpec>().map_err(|e| e.to_string()).and_then(|s| run.precision.check_device(s))
            {
                problems.push(("precision".into(), format!("{e} (or pass --device tch-cuda:0)")));
            }
            match self.data(&run.data) {
                Err(e) => {
                    let key = match &run.data {
                        DataSection::FashionMnist(_) => "data.dir",
                        DataSection::Shapes(_) if e.contains("max_objects") => "data.max_objects",
                        DataSection::Shapes(_) if e.contains("size") => "data.size",
                        DataSection::Shapes(_) => "data",
                    };
                    problems.push((key.into(), e));
                }
                Ok(data) => dit = model(run, data.as_ref(), &mut problems),
            }
            if let Some(d) = &dit {
                router(&run.router, d, &mut problems);
            }
            problems.extend(run.train.problems().into_iter().map(|(k, m)| (format!("train.{k}"), m)));
            budget(table, run, &mut problems);
        }
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
        }
        match (run, eval, dit) {
            (Some(run), Some(eval), Some(dit)) if problems.is_empty() => Ok(Resolved { run, eval, dit }),
            _ => Err(problems),
        }
    }
}

fn model(run: &RunFile, data: &dyn Dataset, problems: &mut Vec<KeyProblem>) -> Option<DiTConfig> {
    match run.dit_config(data, std::path::Path::new("")) {
        Ok(dit) => Some(dit),
        Err(dddit_train::RunFileError::Invalid { key, message, .. }) => {
            problems.push((key, message));
            None
        }
        Err(e) => {
            problems.push(("model".into(), e.to_string()));
            None
        }
    }
}

fn router(table: &toml::Table, dit: &DiTConfig, problems: &mut Vec<KeyProblem>) {
    let kind = match table.get("kind") {
        None => "dense",
        Some(toml::Value::String(s)) => s.as_str(),
        Some(other) => {
            problems.push(("router.kind".into(), format!("expected a router name, found {}", other.type_str())));
            return;
        }
    };
    match dddit_routers::registry::lookup(kind) {
        Err(e) => problems.push(("router.kind".into(), e.to_string())),
        Ok(entry) => {
            if let Err(errs) = (entry.validate)(table, dit) {
                for e in errs {
                    let key = if e.key.is_empty() { "router".to_string() } else { format!("router.{}", e.key) };
                    problems.push((key, e.message));
                }
            }
        }
    }
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

/// Deserialises `table` as `T`, collecting every error: after each one the offending key is
/// removed and deserialisation retried, so one run reports all unknown and mistyped keys. The
/// value left after the removals (defaults in their place) is returned so that range checks
/// can still run on the rest; `None` only when a required key is missing.
fn collect<T: DeserializeOwned>(mut table: toml::Table, prefix: &str, problems: &mut Vec<KeyProblem>) -> Option<T> {
    let full = |p: &str| match (prefix.is_empty(), p.is_empty()) {
        (_, true) => prefix.to_string(),
        (true, false) => p.to_string(),
        (false, false) => format!("{prefix}.{p}"),
    };
    for _ in 0..64 {
        let err = match serde_path_to_error::deserialize::<_, T>(toml::Value::Table(table.clone())) {
            Ok(v) => return Some(v),
            Err(e) => e,
        };
        let path = err.path().to_string();
        let path = if path == "." { String::new() } else { path };
        // toml appends the enclosing key on a second line ("in `model`"); the path says it already.
        let message = err.inner().to_string().lines().next().unwrap_or_default().trim().to_string();
        let named = message.split('`').nth(1).unwrap_or("").to_string();
        // serde_path_to_error may or may not include the named field in the path.
        let join = |a: &str, b: &str| {
            if a.is_empty() {
                b.to_string()
            } else if a == b || a.ends_with(&format!(".{b}")) {
                a.to_string()
            } else {
                format!("{a}.{b}")
            }
        };
        let (rel, removable) = if message.starts_with("unknown field") {
            (join(&path, &named), true)
        } else if message.starts_with("missing field") {
            (join(&path, &named), false)
        } else if message.starts_with("unknown variant") && matches!(lookup(&table, &path), Some(toml::Value::Table(_)))
        {
            // An internally tagged enum (`[data] kind = ...`): the tag is at fault.
            (join(&path, "kind"), false)
        } else {
            (path.clone(), !path.is_empty())
        };
        problems.push((full(&rel), message));
        if !removable || !remove(&mut table, &rel) {
            return None;
        }
    }
    None
}

fn lookup<'a>(table: &'a toml::Table, path: &str) -> Option<&'a toml::Value> {
    let mut parts = path.split('.');
    let mut cur = table.get(parts.next()?)?;
    for p in parts {
        cur = cur.as_table()?.get(p)?;
    }
    Some(cur)
}

fn remove(table: &mut toml::Table, path: &str) -> bool {
    // Paths with list indices (`stages[0].steps`) are removed at the list element's key.
    let path = path.split('[').next().unwrap_or(path);
    match path.rsplit_once('.') {
        None => table.remove(path).is_some(),
        Some((parent, last)) => {
            let mut cur = table;
            for p in parent.split('.') {
                match cur.get_mut(p).and_then(|v| v.as_table_mut()) {
                    Some(t) => cur = t,
                    None => return false,
                }
            }
            cur.remove(last).is_some()
        }
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
