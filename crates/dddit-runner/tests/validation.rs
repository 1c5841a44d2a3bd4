//! Every class of experiment-file error, each from a malformed TOML file: the error must name
//! the file, the line and the key path, all problems must come at once, and nothing may run.

use dddit_runner::{Experiment, RunnerError};
use std::path::{Path, PathBuf};

/// A temporary directory removed on drop.
struct TempDir(PathBuf);

impl TempDir {
    fn new(tag: &str) -> TempDir {
        let d = std::env::temp_dir().join(format!("dddit-validation-{tag}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        std::fs::create_dir_all(&d).unwrap();
        TempDir(d)
    }
    fn write(&self, name: &str, text: &str) -> PathBuf {
        let p = self.0.join(name);
        std::fs::write(&p, text).unwrap();
        p
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// A valid experiment; the tests below break one line of it at a time.
const GOOD: &str = r#"name = "t"
seeds = [0]

[model]
preset = "DiT-N/4"

[router]
kind = "topk"
experts = 4
k = 1

[data]
kind = "shapes"
size = 16
len = 64

[train]
steps = 2
batch_size = 4

[train.loss]
flops_target = 1.0

[eval]
samples = 8
reference_samples = 8
"#;

/// The problems of `text` (which must be invalid), as printed.
fn problems(dir: &TempDir, text: &str) -> (PathBuf, Vec<String>) {
    let path = dir.write("exp.toml", text);
    match Experiment::open(&path) {
        Err(RunnerError::Invalid(p)) => (path, p.iter().map(|p| p.to_string()).collect()),
        Err(other) => panic!("expected validation problems, got {other}"),
        Ok(_) => panic!("expected validation problems, the experiment was accepted:\n{text}"),
    }
}

/// Asserts that some problem starts with `<file>:<line>: <key>:` and mentions `needle`.
fn has(path: &Path, found: &[String], line: usize, key: &str, needle: &str) {
    let prefix = format!("{}:{line}: {key}:", path.display());
    assert!(
        found.iter().any(|p| p.starts_with(&prefix) && p.contains(needle)),
        "no problem `{prefix} …{needle}…` in:\n{}",
        found.join("\n")
    );
}

#[test]
fn the_base_experiment_is_valid() {
    let dir = TempDir::new("good");
    let exp = Experiment::open(&dir.write("exp.toml", GOOD)).unwrap();
    assert_eq!((exp.points.len(), exp.runs.len()), (1, 1));
    assert_eq!(exp.runs[0].dir_name, "base-seed0");
}

#[test]
fn unknown_keys() {
    let dir = TempDir::new("unknown");
    let (p, found) = problems(
        &dir,
        &GOOD.replace("batch_size = 4", "batch_size = 4\nstepz = 10").replace("seeds = [0]", "seeds = [0]\nbogus = 1"),
    );
    has(&p, &found, 21, "train.stepz", "unknown field");
    has(&p, &found, 3, "bogus", "unknown key");
}

#[test]
fn wrong_types() {
    let dir = TempDir::new("types");
    let (p, found) = problems(
        &dir,
        &GOOD.replace("steps = 2", "steps = \"two\"").replace("[eval]\nsamples = 8\n", "[eval]\nsamples = 8.5\n"),
    );
    has(&p, &found, 18, "train.steps", "invalid type");
    has(&p, &found, 25, "eval.samples", "invalid type");
}

#[test]
fn out_of_range_values() {
    let dir = TempDir::new("range");
    // k > experts, a budget outside [0, 1], a learning rate ≤ 0.
    let text = GOOD
        .replace("k = 1", "k = 5")
        .replace("flops_target = 1.0", "flops_target = 1.5")
        .replace("batch_size = 4", "batch_size = 4\nlr = -1.0");
    let (p, found) = problems(&dir, &text);
    has(&p, &found, 10, "router.k", "5");
    has(&p, &found, 23, "train.loss.flops_target", "[0, 1]");
    has(&p, &found, 20, "train.lr", "positive");
    // A router's own budget key.
    let text = GOOD.replace("kind = \"topk\"\nexperts = 4\nk = 1", "kind = \"depth-budget\"\nbudget = 1.5");
    let (p, found) = problems(&dir, &text);
    has(&p, &found, 9, "router.budget", "");
}

#[test]
fn image_size_not_divisible_by_the_patch() {
    let dir = TempDir::new("patch");
    // Fashion-MNIST is 28×28: patch 8 does not divide it. A tiny IDX pair stands in for the data.
    let data = dir.0.join("fmnist");
    std::fs::create_dir_all(&data).unwrap();
    let n = 4u32;
    let mut images = vec![0, 0, 8, 3];
    images.extend(n.to_be_bytes());
    images.extend(28u32.to_be_bytes());
    images.extend(28u32.to_be_bytes());
    images.extend(vec![128u8; (n * 28 * 28) as usize]);
    let mut labels = vec![0, 0, 8, 1];
    labels.extend(n.to_be_bytes());
    labels.extend([0u8, 1, 2, 3]);
    std::fs::write(data.join("train-images-idx3-ubyte"), images).unwrap();
    std::fs::write(data.join("train-labels-idx1-ubyte"), labels).unwrap();
    let text = GOOD.replace("preset = \"DiT-N/4\"", "preset = \"DiT-N/8\"").replace(
        "kind = \"shapes\"\nsize = 16\nlen = 64",
        &format!("kind = \"fashion-mnist\"\ndir = \"{}\"", data.display()),
    );
    let (p, found) = problems(&dir, &text);
    has(&p, &found, 5, "model.preset", "28");
}

#[test]
fn unknown_router() {
    let dir = TempDir::new("router");
    let (p, found) = problems(&dir, &GOOD.replace("kind = \"topk\"", "kind = \"topkk\""));
    has(&p, &found, 8, "router.kind", "unknown router 'topkk'");
}

#[test]
fn missing_data() {
    let dir = TempDir::new("data");
    let text = GOOD.replace(
        "kind = \"shapes\"\nsize = 16\nlen = 64",
        "kind = \"fashion-mnist\"\ndir = \"/nonexistent/fashion-mnist\"",
    );
    let (p, found) = problems(&dir, &text);
    has(&p, &found, 14, "data.dir", "nonexistent");
    // Unknown data kinds name the `kind` key.
    let (p, found) = problems(&dir, &GOOD.replace("kind = \"shapes\"", "kind = \"cifar\""));
    has(&p, &found, 13, "data.kind", "unknown variant");
}

#[test]
fn sweep_errors_point_at_the_sweep_line_and_name_the_point() {
    let dir = TempDir::new("sweep");
    let text = format!("{GOOD}\n[sweep]\n\"router.k\" = [1, 9]\n\"model.nope\" = [1]\n\"train.seed\" = [1, 2]\n\"trian.steps\" = [1]\n");
    let (p, found) = problems(&dir, &text);
    has(&p, &found, 29, "router.k", "k=9");
    assert!(found.iter().any(|f| f.contains("(point k=9") || f.contains("k=9_")), "{found:?}");
    has(&p, &found, 30, "model.nope", "unknown field");
    has(&p, &found, 32, "sweep.\"trian.steps\"", "must start with");
    has(&p, &found, 31, "sweep.\"train.seed\"", "seeds");
    // Zipped lists of unequal length.
    let text = format!("{GOOD}\n[[sweep.zip]]\n\"router.k\" = [1, 2]\n\"router.experts\" = [4]\n");
    let (p, found) = problems(&dir, &text);
    has(&p, &found, 30, "sweep.zip[0].router.experts", "same length");
}

#[test]
fn all_problems_are_reported_at_once_and_includes_keep_their_lines() {
    let dir = TempDir::new("all");
    let common = dir.write("common.toml", "[train]\nsteps = 2\nbatch_size = 0\n");
    let text = GOOD
        .replace("seeds = [0]", "seeds = [0]\ninclude = \"common.toml\"")
        .replace("steps = 2\nbatch_size = 4\n", "")
        .replace("k = 1", "k = 7")
        .replace("size = 16", "size = 17");
    let (p, found) = problems(&dir, &text);
    assert!(found.len() >= 2, "{found:?}");
    has(&common, &found, 3, "train.batch_size", "≥ 1");
    has(&p, &found, 15, "data.size", "16, 32 or 64");
    // The router cannot be checked without a data size, so k is not reported here; the others are.
    let missing = dir.write("inc.toml", "include = \"nowhere.toml\"\n");
    let err = Experiment::open(&missing).unwrap_err().to_string();
    assert!(err.contains("inc.toml:1: include") && err.contains("nowhere.toml"), "{err}");
}

#[test]
fn toml_syntax_errors_have_a_line() {
    let dir = TempDir::new("syntax");
    let (p, found) = problems(&dir, &GOOD.replace("steps = 2", "steps = "));
    assert!(found.iter().any(|f| f.starts_with(&format!("{}:18:", p.display()))), "{found:?}");
}

#[test]
fn sweeps_expand_to_named_points_and_seeds() {
    let dir = TempDir::new("expand");
    let text = format!(
        "{}\n[sweep]\nrouter = [{{ kind = \"dense\" }}, {{ kind = \"topk\", experts = 4, k = 2 }}]\n\"train.loss.balance\" = [0.5, 0.75]\n",
        GOOD.replace("seeds = [0]", "seeds = [0, 1]")
    );
    let exp = Experiment::open(&dir.write("exp.toml", &text)).unwrap();
    let names: Vec<&str> = exp.points.iter().map(|p| p.name.as_str()).collect();
    assert_eq!(
        names,
        [
            "dense_balance=0.5",
            "dense_balance=0.75",
            "topk-experts=4-k=2_balance=0.5",
            "topk-experts=4-k=2_balance=0.75"
        ]
    );
    assert_eq!(exp.runs.len(), 8);
    let r = &exp.runs[3];
    assert_eq!((r.seed, r.resolved.run.train.seed, r.resolved.eval.sample.seed), (1, 1, 1));
    assert_eq!(r.resolved.run.train.loss.balance, 0.75);
    assert_eq!(exp.runs[0].resolved.run.router.get("kind").and_then(|v| v.as_str()), Some("dense"));
}

#[test]
fn precision_values_and_tf32_off_cuda() {
    let dir = TempDir::new("precision");
    let (p, found) = problems(&dir, &GOOD.replace("seeds = [0]", "seeds = [0]\nprecision = \"tf32\""));
    has(&p, &found, 3, "precision", "needs a CUDA device");
    let (p, found) = problems(&dir, &GOOD.replace("seeds = [0]", "seeds = [0]\nprecision = \"fp8\""));
    has(&p, &found, 3, "precision", "unknown variant");
    let exp =
        Experiment::open(&dir.write("exp.toml", &GOOD.replace("seeds = [0]", "seeds = [0]\nprecision = \"bf16\"")))
            .unwrap();
    assert_eq!(exp.runs[0].resolved.run.precision, dddit_core::precision::Precision::Bf16);
}

#[test]
fn a_budget_for_a_router_without_a_cost_names_the_sweep_line() {
    let dir = TempDir::new("budget");
    let text = format!(
        "{}\n[[sweep.zip]]\nrouter = [{{ kind = \"dense\" }}, {{ kind = \"dynamic-width\" }}]\n\"train.loss.flops_target\" = [0.5, 0.5]\n",
        GOOD.replace("flops_target = 1.0", "flops = 1.0")
    );
    let (p, found) = problems(&dir, &text);
    // Only the dense point is refused: dynamic-width has a differentiable cost.
    assert_eq!(found.len(), 1, "{found:?}");
    has(&p, &found, 30, "train.loss.flops_target", "router `dense` has no differentiable FLOPs cost");
    assert!(found[0].contains("(point dense_flops_target=0.5)"), "{found:?}");
}
