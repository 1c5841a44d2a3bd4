//! An experiment: base settings, sweep axes and seeds from one TOML file (with includes),
//! expanded into runs and validated as a whole before anything starts.

use crate::error::{Location, Problem, RunnerError};
use crate::source::Source;
use crate::sweep::{self, Assignment, Axis};
use crate::validate::{Checker, Resolved};
use std::collections::HashMap;
use std::path::{Path, PathBuf};

/// Top-level keys of an experiment file.
pub const TOP_KEYS: &[&str] = &[
    "name",
    "description",
    "include",
    "device",
    "precision",
    "seeds",
    "out",
    "model",
    "router",
    "data",
    "train",
    "eval",
    "sweep",
];

/// One point of the sweep: the base settings with the sweep's assignments applied.
#[derive(Clone, Debug)]
pub struct Point {
    /// Position in the sweep (first axis slowest).
    pub index: usize,
    /// Short name from the values it sets (`topk_k=2`); unique within the experiment.
    pub name: String,
    /// What the sweep sets at this point.
    pub assignments: Vec<Assignment>,
    /// The typed settings (with the first seed).
    pub resolved: Resolved,
}

/// One run: a point trained and evaluated with one seed.
#[derive(Clone, Debug)]
pub struct Run {
    /// Index of the point in [`Experiment::points`].
    pub point: usize,
    /// The seed (sets `train.seed` and `eval.sample.seed`).
    pub seed: u64,
    /// Directory name below the experiment's output directory.
    pub dir_name: String,
    /// Settings with the seed applied.
    pub resolved: Resolved,
}

/// A validated experiment.
#[derive(Clone, Debug)]
pub struct Experiment {
    /// The file and its includes.
    pub source: Source,
    /// Name (`name`, default: the file stem).
    pub name: String,
    /// Free text (`description`).
    pub description: String,
    /// Seeds every point runs with.
    pub seeds: Vec<u64>,
    /// Default output directory (`out`, default `runs/<name>`, which git ignores: committed
    /// results are written with `--out results/<name>`).
    pub out: PathBuf,
    /// Sweep axes.
    pub axes: Vec<Axis>,
    /// Points, in sweep order.
    pub points: Vec<Point>,
    /// Runs: every point with every seed, point-major.
    pub runs: Vec<Run>,
}

impl Experiment {
    /// Reads and validates `path`: every problem in the file, its includes and every point is
    /// reported in one [`RunnerError::Invalid`].
    pub fn open(path: &Path) -> Result<Experiment, RunnerError> {
        let source = Source::load(path)?;
        let mut problems = Vec::new();
        let at = |key: &str, message: String| Problem {
            location: source.locate(key),
            key: key.into(),
            message,
            points: vec![],
        };
        for key in source.table.keys() {
            if !TOP_KEYS.contains(&key.as_str()) {
                problems.push(at(key, format!("unknown key; expected one of: {}", TOP_KEYS.join(", "))));
            }
        }
        let stem = path.file_stem().map(|s| s.to_string_lossy().to_string()).unwrap_or_else(|| "experiment".into());
        let name = match source.table.get("name") {
            None => stem,
            Some(toml::Value::String(s))
                if !s.is_empty() && s.chars().all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c)) =>
            {
                s.clone()
            }
            Some(other) => {
                problems.push(at(
                    "name",
                    format!("must be a non-empty name of letters, digits, '-', '_' or '.', found {other}"),
                ));
                stem
            }
        };
        let description = match source.table.get("description") {
            None => String::new(),
            Some(toml::Value::String(s)) => s.clone(),
            Some(other) => {
                problems.push(at("description", format!("expected a string, found {}", other.type_str())));
                String::new()
            }
        };
        let seeds = match source.table.get("seeds") {
            None => vec![0],
            Some(toml::Value::Array(a))
                if !a.is_empty() && a.iter().all(|v| v.as_integer().is_some_and(|i| i >= 0)) =>
            {
                let s: Vec<u64> = a.iter().filter_map(|v| v.as_integer()).map(|i| i as u64).collect();
                let unique: std::collections::BTreeSet<u64> = s.iter().copied().collect();
                if unique.len() != s.len() {
                    problems.push(at("seeds", "seeds must be distinct".into()));
                }
                s
            }
            Some(other) => {
                problems
                    .push(at("seeds", format!("expected a non-empty list of non-negative integers, found {other}")));
                vec![0]
            }
        };
        let out = match source.table.get("out") {
            None => PathBuf::from("runs").join(&name),
            Some(toml::Value::String(s)) => PathBuf::from(s),
            Some(other) => {
                problems.push(at("out", format!("expected a directory name, found {}", other.type_str())));
                PathBuf::from("runs").join(&name)
            }
        };
        let mut axes = sweep::axes(&source, &mut problems);

        // The base settings every point starts from.
        let mut base = toml::Table::new();
        for key in ["device", "precision", "model", "router", "data", "train", "eval"] {
            if let Some(v) = source.table.get(key) {
                base.insert(key.into(), v.clone());
            }
        }
        let mut checker = Checker::default();
        // An axis whose key the schema does not have is reported once, at the axis, and left
        // out of the grid: every point would otherwise repeat it (and a file of thousands of
        // such axes would cost thousands of passes per point).
        axes.retain(|axis| {
            let mut ok = true;
            for (key, loc) in axis.keys.iter().zip(&axis.locations) {
                if let Some(message) = checker.unknown_key(&base, key, &axis.values[0][0]) {
                    problems.push(Problem {
                        location: loc.clone(),
                        key: format!("sweep.\"{key}\""),
                        message,
                        points: vec![],
                    });
                    ok = false;
                }
            }
            ok
        });
        let mut points = Vec::new();
        let mut point_problems: Vec<Problem> = Vec::new();
        let mut names = std::collections::BTreeSet::new();
        let combos = match sweep::count(&axes) {
            Some(_) => sweep::combinations(&axes),
            None => {
                let mut sizes: Vec<String> = axes.iter().take(12).map(|a| a.len().to_string()).collect();
                if axes.len() > 12 {
                    sizes.push(format!("… ({} axes)", axes.len()));
                }
                let product = axes.iter().fold(1f64, |n, a| n * a.len() as f64);
                problems.push(at(
                    "sweep",
                    format!(
                        "the axes ({} values) make {product:.3e} points, more than the {} an experiment may hold; split it into several files",
                        sizes.join(" × "),
                        sweep::MAX_POINTS
                    ),
                ));
                vec![]
            }
        };
        let total = combos.len();
        for (index, assignments) in combos.into_iter().enumerate() {
            let mut name = sweep::point_name(&assignments);
            if !names.insert(name.clone()) {
                name = format!("{name}-{index}");
                names.insert(name.clone());
            }
            let mut table = base.clone();
            let mut ok = true;
            for a in &assignments {
                if let Err(m) = sweep::set_path(&mut table, &a.key, a.value.clone()) {
                    point_problems.push(Problem {
                        location: a.location.clone(),
                        key: format!("sweep.\"{}\"", a.key),
                        message: m,
                        points: vec![name.clone()],
                    });
                    ok = false;
                }
            }
            if !ok {
                continue;
            }
            set_seed(&mut table, seeds[0]);
            match checker.resolve(&table) {
                Ok(resolved) => points.push(Point { index, name, assignments, resolved }),
                Err(errs) => {
                    for (key, message) in errs {
                        let location = locate(&source, &assignments, &key);
                        point_problems.push(Problem { location, key, message, points: vec![name.clone()] });
                    }
                }
            }
        }
        problems.extend(merge_points(point_problems, total));
        // Two points of equal settings (`{ kind = "dense" }` and `{ kind = "dense", }`, or a
        // value equal to the default written out) would train the same run twice.
        let mut seen: HashMap<String, usize> = HashMap::new();
        for (i, p) in points.iter().enumerate() {
            let mut file = p.resolved.run.clone();
            file.out = None;
            let router = std::mem::take(&mut file.router);
            let kind = router.get("kind").and_then(|v| v.as_str()).unwrap_or("dense");
            let router = dddit_routers::registry::lookup(kind)
                .ok()
                .and_then(|e| (e.settings)(&router))
                .unwrap_or_else(|| router.to_string());
            let text = format!(
                "{router}\n{}\n{}",
                toml::to_string(&file).unwrap_or_default(),
                toml::to_string(&p.resolved.eval).unwrap_or_default()
            );
            if let Some(&j) = seen.get(&text) {
                problems.push(Problem {
                    location: p
                        .assignments
                        .first()
                        .map(|a| a.location.clone())
                        .unwrap_or_else(|| source.locate("sweep")),
                    key: "sweep".into(),
                    message: format!(
                        "point `{}` has the same settings as point `{}`: the same run would be trained twice",
                        p.name, points[j].name
                    ),
                    points: vec![p.name.clone()],
                });
            } else {
                seen.insert(text, i);
            }
        }
        if !problems.is_empty() {
            problems.sort_by(|a, b| {
                (&a.location.file, a.location.line, &a.key).cmp(&(&b.location.file, b.location.line, &b.key))
            });
            return Err(RunnerError::Invalid(problems));
        }
        let mut runs = Vec::new();
        for (i, p) in points.iter().enumerate() {
            for &seed in &seeds {
                let mut resolved = p.resolved.clone();
                resolved.run.train.seed = seed;
                resolved.eval.sample.seed = seed;
                runs.push(Run { point: i, seed, dir_name: format!("{}-seed{seed}", p.name), resolved });
            }
        }
        Ok(Experiment { source, name, description, seeds, out, axes, points, runs })
    }
}

fn set_seed(table: &mut toml::Table, seed: u64) {
    let seed = toml::Value::Integer(seed as i64);
    // These keys exist in the schema, so setting them cannot fail.
    let _ = sweep::set_path(table, "train.seed", seed.clone());
    let _ = sweep::set_path(table, "eval.sample.seed", seed);
}

/// Where an error on `key` at a point comes from: the sweep entry that set it (or a parent of
/// it), else the base file's line.
fn locate(source: &Source, assignments: &[Assignment], key: &str) -> Location {
    for a in assignments {
        if key == a.key || key.starts_with(&format!("{}.", a.key)) || key.starts_with(&format!("{}[", a.key)) {
            return a.location.clone();
        }
    }
    source.locate(key)
}

/// Folds identical problems of several points into one listing the points; a problem every
/// point shares lists none (it is the experiment's).
fn merge_points(problems: Vec<Problem>, total: usize) -> Vec<Problem> {
    // Indexed, so that validation stays linear in the number of points.
    let mut out: Vec<Problem> = Vec::new();
    let mut index: HashMap<(Location, String, String), usize> = HashMap::new();
    for p in problems {
        match index.entry((p.location.clone(), p.key.clone(), p.message.clone())) {
            std::collections::hash_map::Entry::Occupied(e) => out[*e.get()].points.extend(p.points),
            std::collections::hash_map::Entry::Vacant(e) => {
                e.insert(out.len());
                out.push(p);
            }
        }
    }
    for p in &mut out {
        if p.points.len() == total {
            p.points.clear();
        }
    }
    out
}
