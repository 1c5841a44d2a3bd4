//! Running an experiment: every run (point × seed) of this shard is trained and evaluated in
//! its own directory; completed runs are skipped, interrupted ones resume from their last
//! checkpoint, and nothing is started when a directory holds results of other settings.

use crate::error::{Location, Problem, RunnerError};
use crate::experiment::{Experiment, Run};
use crate::meta::{unix_now, utc, Provenance};
use dddit_core::device::DeviceSpec;
use dddit_eval::eval::{evaluate, write_json};
use dddit_eval::run::TrainedRun;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Instant;

/// Name of the completion marker in a run directory.
pub const DONE: &str = "done.json";
/// Name of the run's provenance record.
pub const RECORD: &str = "run.json";
/// Name of the failure record of a run that stopped with an error.
pub const FAILED: &str = "failed.json";

/// Marker of a run being trained or evaluated (`running.json`), removed when the run ends,
/// completed or failed: found at the start of a later invocation, it means the process died
/// in that run (killed, or out of memory, which leaves no `failed.json`).
pub const RUNNING: &str = "running.json";

/// What [`RUNNING`] holds.
#[derive(Clone, Debug, Serialize, Deserialize)]
struct Running {
    /// The process that worked on the run.
    pid: u32,
    /// When it started (UTC).
    started: String,
    /// The checkpoint step it started from (0: from scratch).
    step_at_start: usize,
}

/// Steps of the run directory's last checkpoint (0 when there is none).
fn checkpoint_step(dir: &Path) -> usize {
    dddit_train::RunDir::new(dir).checkpoint_step()
}

/// The step at which the last process working on `dir` died without saving a later
/// checkpoint: a run that kills its process (running out of memory aborts it) would otherwise
/// kill every retry of the sweep before the runs after it.
fn stalled_at(dir: &Path) -> Option<usize> {
    let marker: Running = serde_json::from_slice(&std::fs::read(dir.join(RUNNING)).ok()?).ok()?;
    let step = checkpoint_step(dir);
    (step == marker.step_at_start).then_some(step)
}

/// A deterministic share of the runs: run `r` (in point-major order) belongs to shard
/// `r mod count`. `0/1` is everything.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Shard {
    /// This shard, `0..count`.
    pub index: usize,
    /// Number of shards.
    pub count: usize,
}

impl Default for Shard {
    fn default() -> Self {
        Shard { index: 0, count: 1 }
    }
}

impl std::str::FromStr for Shard {
    type Err = RunnerError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let bad = || {
            RunnerError::Usage(format!("--shard: expected I/N with 0 ≤ I < N (e.g. 0/4, as $SLURM_ARRAY_TASK_ID/$SLURM_ARRAY_TASK_COUNT), got `{s}`"))
        };
        let (i, n) = s.split_once('/').ok_or_else(bad)?;
        let (index, count): (usize, usize) =
            (i.trim().parse().map_err(|_| bad())?, n.trim().parse().map_err(|_| bad())?);
        if count == 0 || index >= count {
            return Err(bad());
        }
        Ok(Shard { index, count })
    }
}

impl Shard {
    /// Whether run number `r` belongs to this shard.
    pub fn takes(&self, r: usize) -> bool {
        r % self.count == self.index
    }
}

/// Options of [`run_experiment`].
#[derive(Clone, Debug, Default)]
pub struct RunOptions {
    /// Output directory (default: the experiment's `out`).
    pub out: Option<PathBuf>,
    /// The share of runs to do.
    pub shard: Shard,
    /// Device overriding the experiment's `device`.
    pub device: Option<String>,
    /// Precision overriding the experiment's `precision`.
    pub precision: Option<dddit_core::precision::Precision>,
    /// Results directories whose completed runs of equal settings are copied instead of
    /// trained again (see [`crate::reuse`]).
    pub reuse: Vec<PathBuf>,
    /// Train nothing: complete what `reuse` provides and leave the other runs to do.
    pub no_train: bool,
    /// Under a data-parallel launch ([`dddit_core::dist`], joined by the caller): the device this
    /// rank trains and evaluates on. The run files and `config.toml` keep the launch's device
    /// (`device`), so that every rank sees the same settings; rank 0 alone writes.
    pub rank_device: Option<String>,
}

/// What to do with one run; under a data-parallel launch rank 0 decides for every rank.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Action {
    Skip,
    Reuse,
    Leave,
    Train,
}

impl Action {
    /// Every action, in the order of its index ([`dddit_core::dist::from_main`] sends indices).
    const ALL: [Action; 4] = [Action::Skip, Action::Reuse, Action::Leave, Action::Train];
}

/// A collective of the sweep's process group failed.
fn dist_err(e: dddit_core::dist::DistError) -> RunnerError {
    RunnerError::Usage(format!("data parallel: {e}"))
}

/// The provenance record `run.json` of a run directory.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct RunRecord {
    /// Experiment name.
    pub experiment: String,
    /// The experiment file.
    pub experiment_file: PathBuf,
    /// Point name.
    pub point: String,
    /// Point index in the sweep.
    pub point_index: usize,
    /// What the sweep set at this point (key path → value).
    pub settings: BTreeMap<String, serde_json::Value>,
    /// The seed.
    pub seed: u64,
    /// Router name.
    pub router: String,
    /// The router's keys.
    pub router_keys: BTreeMap<String, serde_json::Value>,
    /// Device (backend and index).
    pub device: String,
    /// Code and machine.
    pub provenance: Provenance,
    /// When this run directory was first started (UTC).
    pub started: String,
    /// How many times `dddit run` started work on it (1 = never interrupted).
    pub attempts: usize,
    /// The run directory this one was copied from (`--reuse`); the provenance, device and
    /// times above are that run's.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reused_from: Option<PathBuf>,
}

/// The completion marker `done.json`.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct DoneMarker {
    /// When the run finished (UTC).
    pub finished: String,
    /// Training steps of the evaluated checkpoint.
    pub train_step: usize,
    /// Seconds spent training in the invocation that finished it.
    pub train_seconds: f64,
    /// Seconds spent evaluating.
    pub eval_seconds: f64,
}

/// What one invocation did.
#[derive(Clone, Debug, Default)]
pub struct SweepOutcome {
    /// The output directory.
    pub out: PathBuf,
    /// Runs in this shard.
    pub total: usize,
    /// Runs found complete and skipped.
    pub skipped: usize,
    /// Runs completed by this invocation.
    pub completed: usize,
    /// Runs copied from a `--reuse` directory by this invocation.
    pub reused: usize,
    /// Runs left to do because of `no_train`.
    pub not_trained: usize,
    /// Runs that stopped with an error: (directory, error).
    pub failed: Vec<(PathBuf, String)>,
}

/// The settings of a run as its directory stores them: `config.toml` (what `dddit train`
/// reads) and `eval.toml` (what `dddit eval --config` reads).
pub fn config_texts(run: &Run) -> (String, String) {
    let mut file = run.resolved.run.clone();
    file.out = None;
    let config = toml::to_string(&file).expect("a run file serialises");
    let eval = toml::to_string(&run.resolved.eval).expect("eval settings serialise");
    (config, eval)
}

/// Whether a stored `config.toml` holds the same settings as `new` (this version's text of a
/// run file). Texts are compared after reading the stored one with the current schema, so a
/// directory written before a key with a default was added still counts as the same run.
pub fn same_run_file(stored: &str, new: &str) -> bool {
    stored == new
        || dddit_train::RunFile::parse(stored, Path::new("config.toml"))
            .ok()
            .and_then(|mut f| {
                f.out = None;
                toml::to_string(&f).ok()
            })
            .as_deref()
            == Some(new)
}

/// Whether a stored `eval.toml` holds the settings `eval` (read with the current schema).
pub(crate) fn same_eval(stored: &str, eval: &dddit_eval::eval::EvalConfig) -> bool {
    toml::from_str::<dddit_eval::eval::EvalConfig>(stored).is_ok_and(|e| &e == eval)
}

/// Writes `text` to `path` atomically (a temporary file beside it, then a rename).
pub(crate) fn write_atomic(path: &Path, text: &str) -> Result<(), RunnerError> {
    dddit_core::atomic::write(path, text.as_bytes()).map_err(|e| RunnerError::io(path, e))
}

fn json(v: &toml::Value) -> serde_json::Value {
    serde_json::to_value(v).unwrap_or(serde_json::Value::Null)
}

/// The runs an experiment plans in a results directory (`plan.json`), so that its table can
/// name the runs that are missing, not only those that started and did not finish.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Plan {
    /// Experiment name.
    pub experiment: String,
    /// Run directory names of every point × seed (all shards), in run order.
    pub runs: Vec<String>,
}

/// File name of the plan in a results directory.
pub const PLAN: &str = "plan.json";

/// Writes (atomically) the plan of `exp` into `out`, merged with the plan already there for the
/// same experiment (an edited file that adds points keeps the old ones listed).
fn write_plan(out: &Path, exp: &Experiment) -> Result<(), RunnerError> {
    let path = out.join(PLAN);
    let mut plan: Plan = std::fs::read(&path)
        .ok()
        .and_then(|b| serde_json::from_slice(&b).ok())
        .filter(|p: &Plan| p.experiment == exp.name)
        .unwrap_or_else(|| Plan { experiment: exp.name.clone(), runs: vec![] });
    for r in &exp.runs {
        if !plan.runs.contains(&r.dir_name) {
            plan.runs.push(r.dir_name.clone());
        }
    }
    let text = serde_json::to_string_pretty(&plan).map_err(|e| RunnerError::io(&path, e))?;
    write_atomic(&path, &text)
}

/// Trains and evaluates every run of `opts.shard` in `exp`, printing progress through
/// `progress`. Runs that fail are recorded (`failed.json`) and the sweep goes on.
pub fn run_experiment(
    exp: &Experiment,
    opts: &RunOptions,
    progress: &mut dyn FnMut(&str),
) -> Result<SweepOutcome, RunnerError> {
    let out = opts.out.clone().unwrap_or_else(|| exp.out.clone());
    let mut runs: Vec<Run> =
        exp.runs.iter().enumerate().filter(|(r, _)| opts.shard.takes(*r)).map(|(_, r)| r.clone()).collect();
    if let Some(d) = &opts.device {
        let spec: DeviceSpec = d.parse().map_err(|e| RunnerError::Usage(format!("--device: {e}")))?;
        spec.device().map_err(|e| RunnerError::Usage(format!("--device: {e}")))?;
        for r in &mut runs {
            r.resolved.run.device = d.clone();
        }
    }
    if let Some(p) = opts.precision {
        for r in &mut runs {
            r.resolved.run.precision = p;
        }
    }
    // After the overrides: TF32 exists only on CUDA, bf16-mixed only on LibTorch (fail before
    // any run starts).
    for r in &runs {
        if let Ok(spec) = r.resolved.run.device.parse::<DeviceSpec>() {
            if let Err(e) = r.resolved.run.precision.check_device(spec) {
                return Err(RunnerError::Usage(format!("{e}; pass --precision f32 or --device tch-cuda:0")));
            }
        }
    }
    // Refuse, before anything starts, to mix results of other settings into a run directory.
    let mut problems = Vec::new();
    for run in &runs {
        let dir = out.join(&run.dir_name);
        let path = dddit_train::RunDir::new(&dir).config();
        if let Ok(old) = std::fs::read_to_string(&path) {
            if !same_run_file(&old, &config_texts(run).0) {
                problems.push(Problem {
                    location: Location { file: path, line: None },
                    key: "(results)".into(),
                    message: format!(
                        "holds a run of other settings than point `{}` now has; move it away or pass another --out",
                        exp.points[run.point].name
                    ),
                    points: vec![exp.points[run.point].name.clone()],
                });
            }
        }
    }
    if !problems.is_empty() {
        return Err(RunnerError::Invalid(problems));
    }
    crate::reuse::check_dirs(&opts.reuse)?;
    // A run whose last process died in it without progress goes after the others, so that a
    // run that kills its process (out of memory) cannot stop the rest of the sweep.
    let (fresh, stalled): (Vec<Run>, Vec<Run>) =
        runs.into_iter().partition(|r| stalled_at(&out.join(&r.dir_name)).is_none());
    for r in &stalled {
        progress(&format!(
            "{}: the last process working on it died at step {} without saving a later checkpoint (killed, or out of memory?); it runs after the others",
            r.dir_name,
            checkpoint_step(&out.join(&r.dir_name))
        ));
    }
    let runs: Vec<Run> = fresh.into_iter().chain(stalled).collect();
    // Under a data-parallel launch every rank has read the directory before rank 0 writes.
    let main = dddit_core::dist::is_main();
    dddit_core::dist::barrier().map_err(dist_err)?;
    if main {
        std::fs::create_dir_all(&out).map_err(|e| RunnerError::io(&out, e))?;
        // What a killed writer left half-written (a plot, run.json) is never read; remove it.
        let removed = crate::tidy::remove_stale_temps(&out);
        if !removed.is_empty() {
            let names: Vec<String> = removed.iter().map(|p| p.display().to_string()).collect();
            progress(&format!(
                "removed {} stale temporary file(s) of killed writes: {}",
                removed.len(),
                names.join(", ")
            ));
        }
        write_plan(&out, exp)?;
    }
    let provenance = Provenance::collect(&exp.source.path);
    let mut outcome = SweepOutcome { out: out.clone(), total: runs.len(), ..Default::default() };
    let start = Instant::now();
    let mut worked = 0usize;
    for (k, run) in runs.iter().enumerate() {
        let dir = out.join(&run.dir_name);
        let (config, eval_text) = config_texts(run);
        let done = dir.join(DONE);
        // Rank 0 reads the directory and decides; the other ranks take its decision, so they
        // neither read the run's files nor search the reuse directories themselves.
        let mut reuse_from = None;
        let action = if !main
            || done.exists()
                && std::fs::read_to_string(dir.join("eval.toml")).is_ok_and(|t| same_eval(&t, &run.resolved.eval))
        {
            Action::Skip // on ranks other than 0 a placeholder, replaced by rank 0's action below
        } else if let Some(from) = crate::reuse::find(&opts.reuse, &config, &run.resolved.eval, &dir) {
            reuse_from = Some(from);
            Action::Reuse
        } else if opts.no_train {
            Action::Leave
        } else {
            Action::Train
        };
        let action = Action::ALL[dddit_core::dist::from_main(action as usize).map_err(dist_err)?];
        if action == Action::Skip {
            outcome.skipped += 1;
            continue;
        }
        if action == Action::Reuse {
            outcome.reused += 1;
            if !main {
                continue;
            }
            let from = reuse_from.expect("rank 0 found a run to reuse");
            let source = crate::reuse::source_record(&from)?;
            let code = crate::reuse::code_note(&source.provenance, &provenance);
            crate::reuse::copy_run(&from, &dir, |tmp| write_record(exp, run, tmp, &provenance, Some((&from, source))))?;
            progress(&format!(
                "[{}/{}] {}: reused {} (complete, same settings{code})",
                k + 1,
                runs.len(),
                run.dir_name,
                from.display()
            ));
            continue;
        }
        if action == Action::Leave {
            progress(&format!(
                "[{}/{}] {}: not complete and nothing to reuse; left to do (--no-train)",
                k + 1,
                runs.len(),
                run.dir_name
            ));
            outcome.not_trained += 1;
            continue;
        }
        let remaining = runs.len() - k;
        let eta = if worked > 0 {
            format!(", ETA {}", duration(start.elapsed().as_secs_f64() / worked as f64 * remaining as f64))
        } else {
            String::new()
        };
        let resumed = if dddit_train::RunDir::new(&dir).has_checkpoint() { " (resuming)" } else { "" };
        progress(&format!(
            "[{}/{}] {}{resumed}: {} done, {} skipped, {} failed{eta}",
            k + 1,
            runs.len(),
            run.dir_name,
            outcome.completed,
            outcome.skipped,
            outcome.failed.len()
        ));
        let running_path = dir.join(RUNNING);
        if main {
            std::fs::create_dir_all(&dir).map_err(|e| RunnerError::io(&dir, e))?;
            // New eval settings on a finished run: evaluate again, keep the training.
            if done.exists() {
                std::fs::remove_file(&done).map_err(|e| RunnerError::io(&done, e))?;
            }
            let _ = std::fs::remove_file(dir.join(FAILED));
            write_atomic(&dddit_train::RunDir::new(&dir).config(), &config)?;
            write_atomic(&dir.join("eval.toml"), &eval_text)?;
            write_record(exp, run, &dir, &provenance, None)?;
            let running =
                Running { pid: std::process::id(), started: utc(unix_now()), step_at_start: checkpoint_step(&dir) };
            write_json(&running_path, &running).map_err(|e| RunnerError::io(&running_path, e))?;
        }
        dddit_core::dist::barrier().map_err(dist_err)?; // the run directory exists for every rank
        let result = train_and_eval(run, &dir, opts.rank_device.as_deref(), progress);
        // A run fails on every rank when it fails on one (rank 0 records it).
        let failed = dddit_core::dist::count(result.is_err()).map_err(dist_err)?;
        let result = match result {
            Err(e) => Err(e),
            Ok(_) if failed > 0 => Err(RunnerError::Train {
                point: dir.display().to_string(),
                message: format!("{failed} other rank(s) failed: see their output"),
            }),
            Ok(marker) => Ok(marker),
        };
        if !main {
            match result {
                Ok(_) => outcome.completed += 1,
                Err(e) => outcome.failed.push((dir.clone(), e.to_string())),
            }
            worked += 1;
            continue;
        }
        let _ = std::fs::remove_file(&running_path);
        match result {
            Ok(marker) => {
                let marker = marker.expect("rank 0 evaluates");
                write_json(&done, &marker).map_err(|e| RunnerError::io(&done, e))?;
                outcome.completed += 1;
            }
            Err(e) => {
                let msg = e.to_string();
                progress(&format!("{}: FAILED: {msg}", run.dir_name));
                let f = dir.join(FAILED);
                write_json(&f, &serde_json::json!({ "error": msg, "at": utc(unix_now()) }))
                    .map_err(|e| RunnerError::io(&f, e))?;
                outcome.failed.push((dir.clone(), msg));
            }
        }
        worked += 1;
    }
    progress(&format!(
        "sweep {}: {} runs in this shard: {} completed now, {} already complete, {} reused, {} failed{} ({})",
        exp.name,
        outcome.total,
        outcome.completed,
        outcome.skipped,
        outcome.reused,
        outcome.failed.len(),
        if opts.no_train { format!(", {} left to do (--no-train)", outcome.not_trained) } else { String::new() },
        duration(start.elapsed().as_secs_f64())
    ));
    Ok(outcome)
}

/// Writes `run.json`. A reused run (`source`: its origin and record) keeps the provenance,
/// device and times of the run that trained it, under this experiment's names.
fn write_record(
    exp: &Experiment,
    run: &Run,
    dir: &Path,
    provenance: &Provenance,
    source: Option<(&Path, RunRecord)>,
) -> Result<(), RunnerError> {
    let path = dir.join(RECORD);
    let previous: Option<RunRecord> = std::fs::read(&path).ok().and_then(|b| serde_json::from_slice(&b).ok());
    let point = &exp.points[run.point];
    let router = &run.resolved.run.router;
    let record = RunRecord {
        experiment: exp.name.clone(),
        experiment_file: exp.source.path.clone(),
        point: point.name.clone(),
        point_index: point.index,
        settings: point.assignments.iter().map(|a| (a.key.clone(), json(&a.value))).collect(),
        seed: run.seed,
        router: router.get("kind").and_then(|v| v.as_str()).unwrap_or("dense").to_string(),
        router_keys: router.iter().filter(|(k, _)| k.as_str() != "kind").map(|(k, v)| (k.clone(), json(v))).collect(),
        device: run.resolved.run.device.clone(),
        provenance: provenance.clone(),
        started: previous.as_ref().map(|p| p.started.clone()).unwrap_or_else(|| utc(unix_now())),
        attempts: previous.map(|p| p.attempts).unwrap_or(0) + 1,
        reused_from: None,
    };
    let record = match source {
        Some((from, s)) => RunRecord {
            device: s.device,
            provenance: s.provenance,
            started: s.started,
            attempts: s.attempts,
            reused_from: Some(from.to_path_buf()),
            ..record
        },
        None => record,
    };
    write_json(&path, &record).map_err(|e| RunnerError::io(&path, e))
}

/// Trains and evaluates one run; `rank_device` is this rank's device under a data-parallel
/// launch. Returns the done marker on rank 0, `None` on the other ranks.
fn train_and_eval(
    run: &Run,
    dir: &Path,
    rank_device: Option<&str>,
    progress: &mut dyn FnMut(&str),
) -> Result<Option<DoneMarker>, RunnerError> {
    let name = dir.display().to_string();
    let run_dir = dddit_train::RunDir::new(dir);
    let t0 = Instant::now();
    let train_err = |e: String| RunnerError::Train { point: name.clone(), message: e };
    let mut file = run.resolved.run.clone();
    if let Some(d) = rank_device {
        file.device = d.to_string();
    }
    let (spec, device) = {
        let mut prepared = run_dir
            .prepare(&file, None, &run_dir.config(), &mut |n| progress(n))
            .map_err(|e| train_err(e.to_string()))?;
        prepared.trainer.run(dir).map_err(|e| train_err(e.to_string()))?;
        (prepared.spec, prepared.device)
    };
    let train_seconds = t0.elapsed().as_secs_f64();
    let t1 = Instant::now();
    let eval_err = |e: String| RunnerError::Eval { point: name.clone(), message: e };
    let trained = TrainedRun::open(dir, &device).map_err(|e| eval_err(e.to_string()))?;
    // Under a data-parallel launch the ranks share the sampling; rank 0 alone gets the report.
    let Some(report) = evaluate(&trained, &run.resolved.eval, &device, &spec.to_string(), &mut |m| {
        progress(&format!("  {}: {m}", run.dir_name))
    })
    .map_err(|e| eval_err(e.to_string()))?
    else {
        return Ok(None);
    };
    Ok(Some(DoneMarker {
        finished: utc(unix_now()),
        train_step: report.train_step,
        train_seconds,
        eval_seconds: t1.elapsed().as_secs_f64(),
    }))
}

/// `1h02m`, `3m05s`, `12s`.
pub fn duration(secs: f64) -> String {
    let s = secs.max(0.0).round() as u64;
    match s {
        0..60 => format!("{s}s"),
        60..3600 => format!("{}m{:02}s", s / 60, s % 60),
        _ => format!("{}h{:02}m", s / 3600, s / 60 % 60),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn shards_parse() {
        assert_eq!("1/4".parse::<Shard>().unwrap(), Shard { index: 1, count: 4 });
        for bad in ["4/4", "1", "a/2", "0/0", "-1/2"] {
            assert!(bad.parse::<Shard>().is_err(), "{bad}");
        }
    }

    proptest! {
        /// The shards of one count partition the runs: each run in exactly one shard.
        #[test]
        fn shards_partition(count in 1usize..9, runs in 0usize..50) {
            for r in 0..runs {
                let owners = (0..count).filter(|&i| Shard { index: i, count }.takes(r)).count();
                prop_assert_eq!(owners, 1);
            }
        }
    }

    #[test]
    fn a_stored_run_file_without_a_later_defaulted_key_is_the_same_run() {
        let new = "device = \"flex\"\n\n[model]\npreset = \"DiT-N/4\"\n\n[data]\nkind = \"shapes\"\n";
        let file = dddit_train::RunFile::parse(new, Path::new("x")).unwrap();
        let current = toml::to_string(&file).unwrap();
        // What an older dddit wrote: the same settings without the keys added since.
        let mut older: toml::Table = toml::from_str(&current).unwrap();
        older["model"].as_table_mut().unwrap().remove("caption");
        older["model"].as_table_mut().unwrap().remove("text_encoder");
        let older = toml::to_string(&older).unwrap();
        assert_ne!(older, current);
        assert!(same_run_file(&older, &current));
        // Other settings are still other settings.
        assert!(!same_run_file(&current.replace("DiT-N/4", "DiT-N/2"), &current));
        assert!(!same_run_file("not toml [", &current));
    }

    #[test]
    fn durations_read_well() {
        assert_eq!(duration(12.4), "12s");
        assert_eq!(duration(185.0), "3m05s");
        assert_eq!(duration(3720.0), "1h02m");
    }
}
