//! The comparison table of an experiment's results directory: one row per point, mean ± std
//! over its seeds, written as Markdown, CSV and JSON.

use crate::error::RunnerError;
use crate::runner::{DoneMarker, Plan, RunRecord, DONE, PLAN, RECORD};
use crate::significance::Welch;
use dddit_eval::eval::EvalReport;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// Mean and sample standard deviation over seeds.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct Stat {
    /// Mean.
    pub mean: f64,
    /// Sample standard deviation (n − 1); 0 for one value.
    pub std: f64,
    /// Values.
    pub n: usize,
    /// 95 % confidence interval of the mean (t-distribution, n − 1 degrees of freedom); `None`
    /// for one value.
    #[serde(default)]
    pub ci95: Option<(f64, f64)>,
}

impl Stat {
    /// The statistics of `values`.
    pub fn of(values: &[f64]) -> Stat {
        let n = values.len();
        let mean = values.iter().sum::<f64>() / n.max(1) as f64;
        let var = if n > 1 { values.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / (n - 1) as f64 } else { 0.0 };
        let std = var.sqrt();
        Stat { mean, std, n, ci95: crate::significance::ci95(mean, std, n) }
    }

    /// No value (a metric a run lacks).
    pub fn missing() -> Stat {
        Stat { mean: f64::NAN, std: 0.0, n: 0, ci95: None }
    }

    /// `[lo, hi]` of the 95 % confidence interval with `digits` decimals, or `n/a (n = 1)`.
    pub fn show_ci(&self, digits: usize) -> String {
        match self.ci95 {
            Some((lo, hi)) => format!("[{:.*}, {:.*}]", digits, lo, digits, hi),
            None => format!("n/a (n = {})", self.n),
        }
    }

    /// Welch's test of these values against `base`'s.
    pub fn welch(&self, base: &Stat) -> Option<Welch> {
        Welch::test((self.mean, self.std, self.n), (base.mean, base.std, base.n))
    }

    /// `mean ± std` with `digits` decimals (just the mean for one value).
    pub fn show(&self, digits: usize) -> String {
        if self.n > 1 {
            format!("{:.*} ± {:.*}", digits, self.mean, digits, self.std)
        } else {
            format!("{:.*}", digits, self.mean)
        }
    }
}

/// Fréchet distance, precision and recall under one feature extractor.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct FeatureRow {
    /// The extractor.
    pub extractor: String,
    /// Generated samples per seed.
    pub generated: usize,
    /// Real reference images.
    pub reference: usize,
    /// Fréchet distance.
    pub fd: Stat,
    /// Precision.
    pub precision: Stat,
    /// Recall.
    pub recall: Stat,
    /// The real-vs-real floor: FD between `generated` held-out real images and the reference
    /// (see `dddit_eval::eval::FeatureMetrics::real_floor`); `None` for older evaluations.
    #[serde(default)]
    pub real_floor: Option<Stat>,
}

/// Compute and routing in one timestep range.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct RangeRow {
    /// Lower end of the range.
    pub t_lo: f64,
    /// Upper end (exclusive).
    pub t_hi: f64,
    /// GFLOPs of the range relative to dense.
    pub gflops_ratio: Stat,
    /// Router statistics (experts, layers, heads, mlp_channels, tokens, …).
    pub routing: BTreeMap<String, Stat>,
}

/// Caption-conditioned runs: adherence and compute against the caption's object count.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct CaptionRow {
    /// The caption encoder.
    pub encoder: String,
    /// Fraction of samples matching their caption exactly (shapes detector).
    pub exact_match: Option<Stat>,
    /// Mean object recall.
    pub object_recall: Option<Stat>,
    /// Pearson r between object count and per-sample compute.
    pub compute_vs_objects: Option<Stat>,
    /// Per object count: (objects, GFLOPs ratio, exact match, object recall).
    pub by_objects: Vec<(usize, Stat, Stat, Stat)>,
    /// Per compute level of the first seed: (GFLOPs ratio, samples, mean objects, exact match, object recall).
    #[serde(default)]
    pub by_budget: Vec<(f64, usize, f64, f64, f64)>,
}

/// One point of the experiment, over its seeds.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Row {
    /// Point name.
    pub point: String,
    /// Point index in the sweep.
    pub point_index: usize,
    /// Router.
    pub router: String,
    /// The router's keys.
    pub router_keys: BTreeMap<String, serde_json::Value>,
    /// What the sweep set.
    pub settings: BTreeMap<String, serde_json::Value>,
    /// Seeds of the completed runs.
    pub seeds: Vec<u64>,
    /// Training steps.
    pub train_steps: usize,
    /// GFLOPs per generated sample over the sampling trajectory (CFG counted).
    pub gflops: Stat,
    /// The same relative to the dense model.
    pub gflops_ratio: Stat,
    /// The `flops_ratio` the FLOPs loss saw in training (mean of the last 100 steps; since the
    /// budget fix the whole model's ratio from the inference decisions, before it the stack's
    /// from the noisy training gates), for routers with a differentiable cost.
    #[serde(default)]
    pub train_flops_ratio: Option<Stat>,
    /// Measured ms per image at batch 1.
    pub ms_batch1: Option<Stat>,
    /// Measured ms per image at the large batch.
    pub ms_batch: Option<Stat>,
    /// The large batch size.
    pub timing_batch: Option<usize>,
    /// Device of the timing.
    pub device: String,
    /// Quality per feature extractor.
    pub features: Vec<FeatureRow>,
    /// Class accuracy per judge.
    pub class_accuracy: BTreeMap<String, Stat>,
    /// Shapes: fraction whose asked-for object kind was found (detector).
    pub adherence: Option<Stat>,
    /// Compute by timestep range.
    pub by_t: Vec<RangeRow>,
    /// Caption-conditioned runs only.
    #[serde(default)]
    pub captions: Option<CaptionRow>,
    /// Welch's two-sided t-test of this row against the dense baseline row, by metric
    /// (`fd[extractor]`, `class_acc[judge]`, `adherence`); empty for the baseline itself, when
    /// there is none, or with fewer than two seeds on either side.
    #[serde(default)]
    pub vs_dense: BTreeMap<String, Welch>,
}

/// The whole table.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Table {
    /// Experiment name.
    pub experiment: String,
    /// The results directory.
    pub dir: PathBuf,
    /// Rows in sweep order.
    pub rows: Vec<Row>,
    /// Runs of the plan (`plan.json`, written by the runner) that have not finished: started
    /// without a completion marker, or never started. Not counted in the rows.
    pub incomplete: Vec<String>,
    /// Whether the results directory holds the runner's plan; without it only started runs
    /// can be listed as incomplete.
    #[serde(default)]
    pub planned: bool,
    /// The point whose router is `dense`, the baseline of the tests (`None`: no dense row).
    #[serde(default)]
    pub baseline: Option<String>,
    /// Hand-written notes from `notes.md` in the results directory (e.g. rows found void after
    /// the runs), printed under the heading of `table.md` so that a regenerated table keeps them.
    #[serde(default)]
    pub notes: Option<String>,
    /// Sampling settings and sample counts, in words.
    pub settings: String,
    /// Git commits the runs were made at (with `-dirty` where the tree was dirty).
    pub commits: Vec<String>,
}

/// One completed run read back from its directory.
struct Done {
    record: RunRecord,
    eval: EvalReport,
    /// Mean `flops_ratio` term of the last 100 logged training steps, if the router has one.
    train_ratio: Option<f64>,
}

/// The mean of loss term `name` over the last `n` lines of a `metrics.jsonl`.
fn last_term(path: &Path, name: &str, n: usize) -> Option<f64> {
    let text = std::fs::read_to_string(path).ok()?;
    let values: Vec<f64> = text
        .lines()
        .rev()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .filter_map(|v| {
            v.get("terms")?.as_array()?.iter().find_map(|t| {
                let t = t.as_array()?;
                (t.first()?.as_str()? == name).then(|| t.get(1)?.as_f64()).flatten()
            })
        })
        .take(n)
        .collect();
    (!values.is_empty()).then(|| values.iter().sum::<f64>() / values.len() as f64)
}

fn read<T: serde::de::DeserializeOwned>(path: &Path) -> Result<T, RunnerError> {
    let bytes = std::fs::read(path).map_err(|e| RunnerError::io(path, e))?;
    serde_json::from_slice(&bytes).map_err(|e| RunnerError::io(path, e))
}

/// Reads every run directory below `dir` and aggregates the completed ones by point.
pub fn build(dir: &Path) -> Result<Table, RunnerError> {
    let mut done = Vec::new();
    let mut incomplete = Vec::new();
    let mut entries: Vec<PathBuf> = std::fs::read_dir(dir)
        .map_err(|e| RunnerError::io(dir, e))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.join(RECORD).exists())
        .collect();
    entries.sort();
    for run in entries {
        if !run.join(DONE).exists() {
            incomplete.push(run.file_name().unwrap_or_default().to_string_lossy().to_string());
            continue;
        }
        let _: DoneMarker = read(&run.join(DONE))?;
        done.push(Done {
            record: read(&run.join(RECORD))?,
            eval: read(&run.join("eval.json"))?,
            train_ratio: last_term(&dddit_train::RunDir::new(run).metrics(), "flops_ratio", 100),
        });
    }
    let plan: Option<Plan> = std::fs::read(dir.join(PLAN)).ok().and_then(|b| serde_json::from_slice(&b).ok());
    if let Some(plan) = &plan {
        for r in &plan.runs {
            if !dir.join(r).join(DONE).exists() && !incomplete.contains(r) {
                incomplete.push(r.clone());
            }
        }
        incomplete.sort();
    }
    let experiment = done
        .first()
        .map(|d| d.record.experiment.clone())
        .or_else(|| plan.as_ref().map(|p| p.experiment.clone()))
        .unwrap_or_default();
    let mut by_point: BTreeMap<(usize, String), Vec<&Done>> = BTreeMap::new();
    for d in &done {
        by_point.entry((d.record.point_index, d.record.point.clone())).or_default().push(d);
    }
    let mut rows: Vec<Row> = by_point.values().map(|runs| row(runs)).collect();
    let baseline = rows.iter().find(|r| r.router == "dense").cloned();
    if let Some(base) = &baseline {
        for r in rows.iter_mut().filter(|r| r.point != base.point) {
            r.vs_dense = tests_against(r, base);
        }
    }
    let mut commits: Vec<String> = done
        .iter()
        .map(|d| {
            format!("{}{}", &d.record.provenance.git_commit, if d.record.provenance.git_dirty { "-dirty" } else { "" })
        })
        .collect();
    commits.sort();
    commits.dedup();
    let settings = done.first().map(|d| settings_text(&d.eval)).unwrap_or_default();
    Ok(Table {
        experiment,
        dir: dir.to_path_buf(),
        rows,
        incomplete,
        planned: plan.is_some(),
        notes: std::fs::read_to_string(dir.join("notes.md")).ok().filter(|n| !n.trim().is_empty()),
        baseline: baseline.map(|b| b.point),
        settings,
        commits,
    })
}

/// Welch's test of each quality metric of `r` against `base`.
fn tests_against(r: &Row, base: &Row) -> BTreeMap<String, Welch> {
    let mut out = BTreeMap::new();
    for f in &r.features {
        if let Some(b) = base.features.iter().find(|b| b.extractor == f.extractor) {
            if let Some(w) = f.fd.welch(&b.fd) {
                out.insert(format!("fd[{}]", f.extractor), w);
            }
        }
    }
    for (j, a) in &r.class_accuracy {
        if let Some(w) = base.class_accuracy.get(j).and_then(|b| a.welch(b)) {
            out.insert(format!("class_acc[{j}]"), w);
        }
    }
    if let (Some(a), Some(b)) = (&r.adherence, &base.adherence) {
        if let Some(w) = a.welch(b) {
            out.insert("adherence".into(), w);
        }
    }
    out
}

/// A p-value cell: `0.003 *` below 0.05, `0.41`, or `–` without a test.
fn p_cell(w: Option<&Welch>) -> String {
    match w {
        Some(w) if w.p < 0.001 => "<0.001 *".into(),
        Some(w) if w.p < 0.05 => format!("{:.3} *", w.p),
        Some(w) => format!("{:.2}", w.p),
        None => "–".into(),
    }
}

fn settings_text(e: &EvalReport) -> String {
    let s = &e.settings;
    let c = &e.compute;
    format!(
        "{} samples per run, {} sampler with {} steps{}, reference {} real images; GFLOPs in the DiT convention (one multiply-add = one FLOP), summed over the trajectory; timing on {}",
        s.samples,
        format!("{:?}", s.sample.sampler).to_lowercase(),
        c.steps,
        if c.guided { format!(", CFG scale {}", s.sample.cfg_scale) } else { String::new() },
        s.reference_samples,
        e.device
    )
}

fn row(runs: &[&Done]) -> Row {
    let first = runs[0];
    let stat = |f: &dyn Fn(&Done) -> Option<f64>| -> Option<Stat> {
        let v: Vec<f64> = runs.iter().filter_map(|d| f(d)).collect();
        (!v.is_empty()).then(|| Stat::of(&v))
    };
    let req = |f: &dyn Fn(&Done) -> f64| Stat::of(&runs.iter().map(|d| f(d)).collect::<Vec<_>>());
    let features = first
        .eval
        .features
        .iter()
        .enumerate()
        .map(|(i, f)| {
            let get = |g: &dyn Fn(&dddit_eval::eval::FeatureMetrics) -> f64| {
                stat(&|d: &Done| d.eval.features.get(i).map(g)).unwrap_or(Stat::missing())
            };
            FeatureRow {
                extractor: f.extractor.clone(),
                generated: f.generated,
                reference: f.reference,
                fd: get(&|m| m.fd),
                precision: get(&|m| m.precision_recall.precision),
                recall: get(&|m| m.precision_recall.recall),
                real_floor: stat(&|d: &Done| d.eval.features.get(i).and_then(|m| m.real_floor)),
            }
        })
        .collect();
    let mut class_accuracy = BTreeMap::new();
    for (i, a) in first.eval.class_accuracy.iter().enumerate() {
        if let Some(s) = stat(&|d: &Done| d.eval.class_accuracy.get(i).map(|a| a.accuracy)) {
            class_accuracy.insert(a.judge.clone(), s);
        }
    }
    let by_t = first
        .eval
        .compute
        .by_t
        .iter()
        .enumerate()
        .map(|(i, r)| RangeRow {
            t_lo: r.t_lo,
            t_hi: r.t_hi,
            gflops_ratio: req(&|d: &Done| d.eval.compute.by_t.get(i).map(|r| r.gflops_ratio).unwrap_or(f64::NAN)),
            routing: r
                .routing
                .keys()
                .filter_map(|k| {
                    stat(&|d: &Done| d.eval.compute.by_t.get(i).and_then(|r| r.routing.get(k).copied()))
                        .map(|s| (k.clone(), s))
                })
                .collect(),
        })
        .collect();
    Row {
        point: first.record.point.clone(),
        point_index: first.record.point_index,
        router: first.record.router.clone(),
        router_keys: first.record.router_keys.clone(),
        settings: first.record.settings.clone(),
        seeds: runs.iter().map(|d| d.record.seed).collect(),
        train_steps: first.eval.train_step,
        gflops: req(&|d: &Done| d.eval.compute.gflops_per_sample.mean),
        gflops_ratio: req(&|d: &Done| d.eval.compute.gflops_ratio),
        train_flops_ratio: stat(&|d: &Done| d.train_ratio),
        ms_batch1: stat(&|d: &Done| d.eval.compute.timing.as_ref().map(|t| t.batch1_ms_per_image)),
        ms_batch: stat(&|d: &Done| d.eval.compute.timing.as_ref().map(|t| t.batch_ms_per_image)),
        timing_batch: first.eval.compute.timing.as_ref().map(|t| t.batch_size),
        device: first.eval.device.clone(),
        features,
        class_accuracy,
        adherence: stat(&|d: &Done| d.eval.adherence.as_ref().map(|a| a.label_accuracy)),
        by_t,
        vs_dense: BTreeMap::new(),
        captions: first.eval.captions.as_ref().map(|c| CaptionRow {
            encoder: c.encoder.clone(),
            exact_match: stat(&|d: &Done| d.eval.captions.as_ref().and_then(|c| c.exact_match)),
            object_recall: stat(&|d: &Done| d.eval.captions.as_ref().and_then(|c| c.object_recall)),
            compute_vs_objects: stat(&|d: &Done| d.eval.captions.as_ref().and_then(|c| c.compute_vs_objects)),
            by_objects: c
                .by_objects
                .iter()
                .map(|r| {
                    let k = r.objects;
                    let pick = |f: &dyn Fn(&dddit_eval::captions::ObjectCountRow) -> f64| {
                        stat(&|d: &Done| {
                            d.eval.captions.as_ref().and_then(|c| c.by_objects.iter().find(|x| x.objects == k)).map(f)
                        })
                        .unwrap_or(Stat::missing())
                    };
                    (k, pick(&|x| x.gflops_ratio), pick(&|x| x.exact_match), pick(&|x| x.object_recall))
                })
                .collect(),
            by_budget: c
                .by_budget
                .iter()
                .map(|b| (b.gflops_ratio, b.samples, b.mean_objects, b.exact_match, b.object_recall))
                .collect(),
        }),
    }
}

fn keys_text(keys: &BTreeMap<String, serde_json::Value>) -> String {
    keys.iter().map(|(k, v)| format!("{k}={}", v.to_string().trim_matches('"'))).collect::<Vec<_>>().join(", ")
}

impl Table {
    /// The table as Markdown: the comparison, then routing by timestep range.
    pub fn markdown(&self) -> String {
        let mut s = String::new();
        s.push_str(&format!("## {}\n\n", self.experiment));
        if let Some(notes) = &self.notes {
            s.push_str(notes.trim_end());
            s.push_str("\n\n");
        }
        s.push_str(&format!(
            "{}. Mean ± sample std over seeds (n = seeds per row); CI: 95 % confidence interval of the mean (t-distribution, n − 1 degrees of freedom); p: Welch's two-sided t-test against {} (`*`: p < 0.05, the only case in which a difference is called real; otherwise no difference was detected). t is DDPM's timestep: 0 = clean image, 999 = pure noise (the seed's Table 6.3 counts the other way). Ratio in training: the `flops_ratio` the budget loss saw over the last 100 training steps (routers with a differentiable cost), to compare with the ratio spent at inference (`vs dense`).\n\n",
            self.settings,
            match &self.baseline {
                Some(b) => format!("the dense row `{b}`"),
                None => "a dense row (none here, so no tests)".into(),
            }
        ));
        let extractors: Vec<&FeatureRow> = self.rows.first().map(|r| r.features.iter().collect()).unwrap_or_default();
        let adherence = self.rows.iter().any(|r| r.adherence.is_some());
        // The detector's class accuracy is the adherence column; it is not repeated.
        let judges: Vec<String> = self
            .rows
            .first()
            .map(|r| {
                r.class_accuracy.keys().filter(|j| !(adherence && j.as_str() == "shapes-detector")).cloned().collect()
            })
            .unwrap_or_default();
        let batch = self.rows.iter().find_map(|r| r.timing_batch);
        let mut head = vec![
            "point".to_string(),
            "router (keys)".into(),
            "n".into(),
            "GFLOPs/sample".into(),
            "vs dense".into(),
            "ratio in training".into(),
            "ms/img b1".into(),
            format!("ms/img b{}", batch.map(|b| b.to_string()).unwrap_or_default()),
        ];
        for f in &extractors {
            let floor = match &f.real_floor {
                Some(fl) => format!("; real-vs-real floor {:.2}", fl.mean),
                None => String::new(),
            };
            head.push(format!("FD [{}, {} vs {}{floor}]", f.extractor, f.generated, f.reference));
            head.push("FD 95 % CI".into());
            head.push("FD p vs dense".into());
            head.push("precision".into());
            head.push("recall".into());
        }
        for j in &judges {
            head.push(format!("class acc [{j}]"));
            head.push("acc p vs dense".into());
        }
        if adherence {
            head.push("adherence: label object found [shapes-detector]".into());
            head.push("adherence p vs dense".into());
        }
        if let Some(r) = self.rows.first() {
            for t in &r.by_t {
                head.push(format!("GFLOPs ratio DDPM t∈[{},{})", t.t_lo, t.t_hi));
            }
        }
        s.push_str(&format!("| {} |\n|{}\n", head.join(" | "), "---|".repeat(head.len())));
        let opt = |o: &Option<Stat>, d: usize| o.map(|s| s.show(d)).unwrap_or_else(|| "–".into());
        for r in &self.rows {
            let mut cells = vec![
                r.point.clone(),
                format!("{} ({})", r.router, keys_text(&r.router_keys)),
                r.seeds.len().to_string(),
                r.gflops.show(3),
                r.gflops_ratio.show(3),
                opt(&r.train_flops_ratio, 3),
                opt(&r.ms_batch1, 1),
                opt(&r.ms_batch, 2),
            ];
            for f in &extractors {
                match r.features.iter().find(|x| x.extractor == f.extractor) {
                    Some(x) => cells.extend([
                        x.fd.show(2),
                        x.fd.show_ci(2),
                        p_cell(r.vs_dense.get(&format!("fd[{}]", f.extractor))),
                        x.precision.show(3),
                        x.recall.show(3),
                    ]),
                    None => cells.extend(["–".into(), "–".into(), "–".into(), "–".into(), "–".into()]),
                }
            }
            for j in &judges {
                cells.push(r.class_accuracy.get(j).map(|s| s.show(3)).unwrap_or_else(|| "–".into()));
                cells.push(p_cell(r.vs_dense.get(&format!("class_acc[{j}]"))));
            }
            if adherence {
                cells.push(opt(&r.adherence, 3));
                cells.push(p_cell(r.vs_dense.get("adherence")));
            }
            for t in &r.by_t {
                cells.push(t.gflops_ratio.show(3));
            }
            s.push_str(&format!("| {} |\n", cells.join(" | ")));
        }
        s.push_str("\n### Routing by timestep range\n\nBatch-mean fraction of each unit that ran (experts: mean active experts per token). DDPM t: 0 = clean, 999 = pure noise, so [500, 1000) is the high-noise half (the seed's Table 6.3 calls t ∈ [0, 200] high noise: its t counts sampling steps from pure noise).\n\n| point | DDPM t range | ");
        s.push_str("statistics |\n|---|---|---|\n");
        for r in &self.rows {
            for t in &r.by_t {
                let stats: Vec<String> = t.routing.iter().map(|(k, v)| format!("{k} {}", v.show(3))).collect();
                s.push_str(&format!(
                    "| {} | [{}, {}) | {} |\n",
                    r.point,
                    t.t_lo,
                    t.t_hi,
                    if stats.is_empty() { "–".into() } else { stats.join(", ") }
                ));
            }
        }
        if self.rows.iter().any(|r| r.captions.is_some()) {
            s.push_str("\n### Captions\n\nSamples drawn for held-out captions; the shapes detector checks every object of the caption. r: Pearson correlation between a caption's object count and the GFLOPs its sample spent.\n\n| point | encoder | exact match | object recall | r(objects, GFLOPs) | GFLOPs ratio / exact match / object recall by object count |\n|---|---|---|---|---|---|\n");
            for r in &self.rows {
                if let Some(c) = &r.captions {
                    let by: Vec<String> = c
                        .by_objects
                        .iter()
                        .map(|(k, g, e, o)| format!("{k}: {:.3} / {:.2} / {:.2}", g.mean, e.mean, o.mean))
                        .collect();
                    s.push_str(&format!(
                        "| {} | {} | {} | {} | {} | {} |\n",
                        r.point,
                        c.encoder,
                        opt(&c.exact_match, 3),
                        opt(&c.object_recall, 3),
                        opt(&c.compute_vs_objects, 3),
                        by.join("; ")
                    ));
                }
            }
            s.push_str("\nAdherence at each compute level (first seed; a budget router's levels are its budgets):\n\n| point | GFLOPs ratio | samples | mean objects | exact match | object recall |\n|---|---|---|---|---|---|\n");
            for r in &self.rows {
                for (g, n, m, e, o) in r.captions.iter().flat_map(|c| c.by_budget.iter()) {
                    s.push_str(&format!("| {} | {g:.2} | {n} | {m:.2} | {e:.3} | {o:.3} |\n", r.point));
                }
            }
        }
        if !self.incomplete.is_empty() {
            s.push_str(&format!("\nIncomplete runs (not in the table): {}\n", self.incomplete.join(", ")));
        }
        if !self.planned {
            s.push_str("\nNo `plan.json` (results made before the runner wrote one): runs that never started are not listed as incomplete.\n");
        }
        s.push_str(&format!("\nCommits: {}\n", self.commits.join(", ")));
        s
    }

    /// The table as CSV: one line per point, mean and std in separate columns.
    pub fn csv(&self) -> String {
        let mut head = vec![
            "point",
            "router",
            "router_keys",
            "settings",
            "seeds",
            "train_steps",
            "gflops_mean",
            "gflops_std",
            "gflops_ratio_mean",
            "ms_batch1_mean",
            "ms_batch1_std",
            "ms_batch_mean",
            "ms_batch_std",
            "timing_batch",
        ]
        .into_iter()
        .map(String::from)
        .collect::<Vec<_>>();
        let first = self.rows.first();
        let extractors: Vec<String> =
            first.map(|r| r.features.iter().map(|f| f.extractor.clone()).collect()).unwrap_or_default();
        for e in &extractors {
            for m in ["fd", "precision", "recall"] {
                head.push(format!("{m}_mean[{e}]"));
                head.push(format!("{m}_std[{e}]"));
            }
            head.push(format!("fd_ci95_lo[{e}]"));
            head.push(format!("fd_ci95_hi[{e}]"));
            head.push(format!("fd_p_vs_dense[{e}]"));
            head.push(format!("fd_real_floor[{e}]"));
        }
        let judges: Vec<String> = first.map(|r| r.class_accuracy.keys().cloned().collect()).unwrap_or_default();
        for j in &judges {
            head.push(format!("class_acc_mean[{j}]"));
            head.push(format!("class_acc_std[{j}]"));
        }
        head.push("adherence_mean".into());
        head.push("adherence_std".into());
        let ranges: Vec<(f64, f64)> =
            first.map(|r| r.by_t.iter().map(|t| (t.t_lo, t.t_hi)).collect()).unwrap_or_default();
        for (lo, hi) in &ranges {
            head.push(format!("gflops_ratio_t{lo}-{hi}"));
        }
        let q = |s: &str| {
            if s.contains([',', '"', '\n']) {
                format!("\"{}\"", s.replace('"', "\"\""))
            } else {
                s.to_string()
            }
        };
        let mut out = head.iter().map(|h| q(h)).collect::<Vec<_>>().join(",") + "\n";
        let num = |v: f64| if v.is_finite() { format!("{v}") } else { String::new() };
        for r in &self.rows {
            let mut c = vec![
                q(&r.point),
                q(&r.router),
                q(&keys_text(&r.router_keys)),
                q(&keys_text(&r.settings)),
                q(&r.seeds.iter().map(|s| s.to_string()).collect::<Vec<_>>().join(" ")),
                r.train_steps.to_string(),
            ];
            c.extend([num(r.gflops.mean), num(r.gflops.std), num(r.gflops_ratio.mean)]);
            for s in [r.ms_batch1, r.ms_batch] {
                c.extend([s.map(|s| num(s.mean)).unwrap_or_default(), s.map(|s| num(s.std)).unwrap_or_default()]);
            }
            c.push(r.timing_batch.map(|b| b.to_string()).unwrap_or_default());
            for e in &extractors {
                let f = r.features.iter().find(|f| &f.extractor == e);
                for pick in [|f: &FeatureRow| f.fd, |f: &FeatureRow| f.precision, |f: &FeatureRow| f.recall] {
                    c.extend([
                        f.map(|f| num(pick(f).mean)).unwrap_or_default(),
                        f.map(|f| num(pick(f).std)).unwrap_or_default(),
                    ]);
                }
                let ci = f.and_then(|f| f.fd.ci95);
                c.push(ci.map(|(lo, _)| num(lo)).unwrap_or_default());
                c.push(ci.map(|(_, hi)| num(hi)).unwrap_or_default());
                c.push(r.vs_dense.get(&format!("fd[{e}]")).map(|w| num(w.p)).unwrap_or_default());
                c.push(f.and_then(|f| f.real_floor).map(|s| num(s.mean)).unwrap_or_default());
            }
            for j in &judges {
                let s = r.class_accuracy.get(j);
                c.extend([s.map(|s| num(s.mean)).unwrap_or_default(), s.map(|s| num(s.std)).unwrap_or_default()]);
            }
            c.extend([
                r.adherence.map(|s| num(s.mean)).unwrap_or_default(),
                r.adherence.map(|s| num(s.std)).unwrap_or_default(),
            ]);
            for (i, _) in ranges.iter().enumerate() {
                c.push(r.by_t.get(i).map(|t| num(t.gflops_ratio.mean)).unwrap_or_default());
            }
            out += &(c.join(",") + "\n");
        }
        out
    }

    /// Writes `table.md`, `table.csv` and `table.json` into `dir`, each atomically.
    pub fn write(&self, dir: &Path) -> Result<(), RunnerError> {
        std::fs::create_dir_all(dir).map_err(|e| RunnerError::io(dir, e))?;
        let json = serde_json::to_string_pretty(self).map_err(|e| RunnerError::io(dir.join("table.json"), e))?;
        for (name, text) in [("table.md", self.markdown()), ("table.csv", self.csv()), ("table.json", json)] {
            crate::runner::write_atomic(&dir.join(name), &text)?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stats_use_the_sample_deviation() {
        let s = Stat::of(&[1.0, 2.0, 3.0]);
        assert_eq!((s.mean, s.std, s.n), (2.0, 1.0, 3));
        assert_eq!(Stat::of(&[5.0]).std, 0.0);
        assert_eq!(Stat::of(&[5.0]).show(2), "5.00");
        assert_eq!(s.show(1), "2.0 ± 1.0");
    }
}
