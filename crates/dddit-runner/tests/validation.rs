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
    // By default into the git-ignored runs/, so that a fresh checkout's main job trains
    // instead of finding the committed results/ complete.
    assert_eq!(exp.out, std::path::Path::new("runs/t"));
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
    // A table without `kind` does not silently run dense: the error names `kind`, and the
    // mistaken key too.
    let (p, found) = problems(&dir, &GOOD.replace("kind = \"topk\"", "name = \"topk\""));
    has(&p, &found, ROUTER, "router.kind", "missing: the table sets");
    // An empty (or absent) table is dense.
    let dense = GOOD.replace("kind = \"topk\"\nexperts = 4\nk = 1\n", "");
    assert_eq!(Experiment::open(&dir.write("dense.toml", &dense)).unwrap().runs[0].resolved.run.router.len(), 0);
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
    has(&p, &found, 30, "sweep.\"model.nope\"", "unknown field");
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

/// The 1-based line of the first line of `text` that starts with `needle`.
fn line_of(text: &str, needle: &str) -> usize {
    text.lines().position(|l| l.starts_with(needle)).expect("needle in text") + 1
}

/// The lines of `GOOD` (1-based), for the tests below.
const ROUTER: usize = 7;
const K: usize = 10;
const LEN: usize = 15;
const STEPS: usize = 18;

#[test]
fn overlapping_sweep_axes_are_refused_in_either_order() {
    // `router.k` inside a `router` axis: the table would replace k, and a run named k=2 would
    // train k=1. Refused whichever comes first.
    let dir = TempDir::new("overlap");
    let k_first = format!("{GOOD}\n[sweep]\n\"router.k\" = [1, 2]\nrouter = [{{ kind = \"topk\", experts = 4 }}]\n");
    let (p, found) = problems(&dir, &k_first);
    has(&p, &found, 29, "sweep.\"router.k\"", "inside `router`");
    let router_first =
        format!("{GOOD}\n[sweep]\nrouter = [{{ kind = \"topk\", experts = 4 }}]\n\"router.k\" = [1, 2]\n");
    let (p, found) = problems(&dir, &router_first);
    has(&p, &found, 30, "sweep.\"router.k\"", "inside `router`");
    // Within one zip group as well.
    let zipped = format!(
        "{GOOD}\n[[sweep.zip]]\nrouter = [{{ kind = \"topk\", experts = 4 }}, {{ kind = \"dense\" }}]\n\"router.k\" = [1, 2]\n"
    );
    let (p, found) = problems(&dir, &zipped);
    has(&p, &found, 30, "sweep.\"router.k\"", "inside `router`");
}

#[test]
fn repeated_sweep_values_and_identical_points_are_refused() {
    let dir = TempDir::new("repeat");
    let (p, found) = problems(&dir, &format!("{GOOD}\n[sweep]\n\"train.loss.balance\" = [0.1, 0.2, 0.1]\n"));
    has(&p, &found, 29, "sweep.\"train.loss.balance\"", "positions 0 and 2");
    // Different values, the same settings: 1 is topk's default k.
    let text = format!(
        "{}\n[sweep]\nrouter = [{{ kind = \"topk\", experts = 4 }}, {{ kind = \"topk\", experts = 4, k = 1 }}]\n",
        GOOD
    );
    let (p, found) = problems(&dir, &text);
    has(&p, &found, 29, "sweep", "same settings as point `topk-experts=4`");
}

#[test]
fn values_that_would_fail_or_do_nothing_later_are_refused_now() {
    let dir = TempDir::new("later");
    // An empty data set; a stage step sum that wraps; a batch larger than the data.
    let text = GOOD.replace("len = 64", "len = 0").replace(
        "steps = 2\nbatch_size = 4",
        &format!("batch_size = 4\n{}", "[[train.stages]]\nsteps = 9223372036854775807\ntrain = \"all\"\n".repeat(3)),
    );
    let (p, found) = problems(&dir, &text);
    has(&p, &found, LEN, "data.len", "at least one sample");
    has(&p, &found, STEPS + 1, "train.stages", "add up to more");
    let (p, found) = problems(&dir, &GOOD.replace("batch_size = 4", "batch_size = 65"));
    has(&p, &found, STEPS + 1, "train.batch_size", "more than the 64 samples");
    // Non-finite numbers anywhere, under their own keys and lines.
    let text = GOOD.replace("k = 1", "k = 1\ncapacity = inf").replace("batch_size = 4", "batch_size = 4\nlr = nan");
    let (p, found) = problems(&dir, &text);
    has(&p, &found, K + 1, "router.capacity", "finite");
    has(&p, &found, STEPS + 3, "train.lr", "finite");
    let text = GOOD.replace("kind = \"topk\"\nexperts = 4\nk = 1", "kind = \"token-skip\"\ninit_bias = nan\ntau = 1.0");
    let (p, found) = problems(&dir, &text);
    has(&p, &found, 9, "router.init_bias", "finite");
    // A stage's expert that does not exist, and one for a router without experts.
    let stage = |expert: usize| {
        GOOD.replace(
            "batch_size = 4\n",
            &format!("batch_size = 4\n[[train.stages]]\nsteps = 2\ntrain = \"experts\"\nexpert = {expert}\n"),
        )
    };
    let (p, found) = problems(&dir, &stage(4));
    has(&p, &found, line_of(&stage(4), "expert = 4"), "train.stages[0].expert", "topk` has 4 experts");
    let dense = stage(0).replace("kind = \"topk\"\nexperts = 4\nk = 1", "kind = \"dense\"");
    let (p, found) = problems(&dir, &dense);
    has(&p, &found, line_of(&dense, "expert = 0"), "train.stages[0].expert", "no experts");
    assert!(Experiment::open(&dir.write("ok.toml", &stage(3))).is_ok());
    // A router stage of a router without parameters of its own.
    let router_stage = GOOD.replace("kind = \"topk\"\nexperts = 4\nk = 1", "kind = \"dense\"").replace(
        "batch_size = 4\n",
        "batch_size = 4\n[[train.stages]]\nsteps = 2\ntrain = \"all\"\n[[train.stages]]\nsteps = 2\ntrain = \"router\"\n",
    );
    let (p, found) = problems(&dir, &router_stage);
    has(&p, &found, line_of(&router_stage, "train = \"router\""), "train.stages[1].train", "would train nothing");
}

/// A Fashion-MNIST directory with `n` training and `m` test images (tiny IDX files).
fn tiny_fashion(dir: &TempDir, n: u32, m: u32) -> PathBuf {
    let data = dir.0.join("fmnist");
    std::fs::create_dir_all(&data).unwrap();
    for (prefix, count) in [("train", n), ("t10k", m)] {
        let mut images = vec![0, 0, 8, 3];
        images.extend(count.to_be_bytes());
        images.extend(28u32.to_be_bytes());
        images.extend(28u32.to_be_bytes());
        images.extend(vec![128u8; (count * 28 * 28) as usize]);
        let mut labels = vec![0, 0, 8, 1];
        labels.extend(count.to_be_bytes());
        labels.extend((0..count).map(|i| (i % 10) as u8));
        std::fs::write(data.join(format!("{prefix}-images-idx3-ubyte")), images).unwrap();
        std::fs::write(data.join(format!("{prefix}-labels-idx1-ubyte")), labels).unwrap();
    }
    data
}

#[test]
fn evaluation_counts_the_data_cannot_give_are_refused_before_training() {
    let dir = TempDir::new("realcount");
    let data = tiny_fashion(&dir, 6, 5);
    let text = GOOD
        .replace(
            "kind = \"shapes\"\nsize = 16\nlen = 64",
            &format!("kind = \"fashion-mnist\"\ndir = \"{}\"\n", data.display()),
        )
        .replace(
            "samples = 8\nreference_samples = 8",
            "samples = 8\nreference_samples = 8\nfeatures = [\"classifier\"]",
        );
    let (p, found) = problems(&dir, &text);
    has(&p, &found, 25, "eval.samples", "5 held-out images");
    has(&p, &found, 26, "eval.reference_samples", "6 reference images");
}

#[test]
fn sizes_that_would_kill_the_process_are_refused_before_allocating() {
    let dir = TempDir::new("sizes");
    // 8 axes of 10 values: 10⁸ points, refused without building them.
    let mut text = format!("{GOOD}\n[sweep]\n");
    for key in ["lr", "weight_decay", "grad_clip", "ema_decay"] {
        text.push_str(&format!(
            "\"train.{key}\" = [{}]\n",
            (1..=10).map(|i| format!("0.{i:02}")).collect::<Vec<_>>().join(", ")
        ));
    }
    for key in ["balance", "entropy", "aux", "complete"] {
        text.push_str(&format!(
            "\"train.loss.{key}\" = [{}]\n",
            (1..=10).map(|i| format!("0.{i:02}")).collect::<Vec<_>>().join(", ")
        ));
    }
    let t0 = std::time::Instant::now();
    let (p, found) = problems(&dir, &text);
    has(&p, &found, 28, "sweep", "1.000e8 points");
    assert!(t0.elapsed().as_secs() < 30, "{:?}", t0.elapsed());
    // 10¹¹ hidden units per expert: counted, not allocated, and refused under the router.
    let text = GOOD.replace("k = 1", "k = 1\nexpert_hidden = 100000000000");
    let (p, found) = problems(&dir, &text);
    has(&p, &found, ROUTER, "router", "parameters");
    // Evaluation images that cannot fit in memory.
    let text = GOOD.replace("samples = 8\n", "samples = 1000000000000\n");
    let (p, found) = problems(&dir, &text);
    has(&p, &found, 25, "eval.samples", "in memory");
}

#[test]
fn router_keys_of_the_wrong_type_are_named_by_key_and_line_all_at_once() {
    let dir = TempDir::new("rkeys");
    let text = GOOD.replace("experts = 4\nk = 1", "experts = -1\nk = 1.5\ntokn = true");
    let (p, found) = problems(&dir, &text);
    has(&p, &found, 9, "router.experts", "invalid");
    has(&p, &found, K, "router.k", "1.5");
    has(&p, &found, 11, "router.tokn", "unknown field");
    assert!(!found.iter().any(|f| f.contains("router.1.5") || f.contains("router.true")), "{found:?}");
}

#[test]
fn a_missing_data_directory_hides_nothing_else() {
    let dir = TempDir::new("nodata");
    let text = GOOD
        .replace("kind = \"shapes\"\nsize = 16\nlen = 64", "kind = \"fashion-mnist\"\ndir = \"/nonexistent/fm\"\n")
        .replace("k = 1", "k = 9")
        .replace("DiT-N/4", "DiT-N/8");
    let (p, found) = problems(&dir, &text);
    has(&p, &found, 14, "data.dir", "nonexistent");
    has(&p, &found, 5, "model.preset", "28");
    // The router's key problems are reported even though the model is invalid.
    let text = text.replace("k = 9", "k = \"two\"");
    let (p, found) = problems(&dir, &text);
    has(&p, &found, K, "router.k", "invalid type");
}

#[test]
fn a_file_that_is_not_utf8_gives_its_line_and_offset() {
    let dir = TempDir::new("utf8");
    let mut bytes = GOOD.as_bytes().to_vec();
    let at = GOOD.find("steps = 2").unwrap() + 8;
    bytes[at] = 0xff;
    let path = dir.0.join("exp.toml");
    std::fs::write(&path, bytes).unwrap();
    let err = Experiment::open(&path).unwrap_err().to_string();
    assert!(err.contains(&format!("{}:{STEPS}:", path.display())) && err.contains("column 9"), "{err}");
    assert!(err.contains(&format!("byte offset {at}")) && err.contains("0xff"), "{err}");
}

#[test]
fn a_large_sweep_validates_in_linear_time() {
    // 10,000 points (the most an experiment may hold): the grid, the checks and the
    // identical-point search must not be quadratic. A bound of minutes catches a hang or a
    // quadratic blow-up (200,000 points once took two minutes), not a speed target.
    let dir = TempDir::new("large");
    let values =
        |n: usize, scale: f64| (1..=n).map(|i| format!("{:.6}", i as f64 * scale)).collect::<Vec<_>>().join(", ");
    let text = format!(
        "{GOOD}\n[sweep]\n\"train.lr\" = [{}]\n\"train.loss.balance\" = [{}]\n",
        values(100, 1e-4),
        values(100, 1e-3)
    );
    let t0 = std::time::Instant::now();
    let exp = Experiment::open(&dir.write("exp.toml", &text)).unwrap();
    assert_eq!(exp.points.len(), 10_000);
    assert!(t0.elapsed().as_secs() < 120, "{:?}", t0.elapsed());
    // Many axes (each key unknown): building the grid cloned every prefix once per axis, and
    // 50,000 one-value axes took 144 s; a long list's repeated-value check was quadratic too.
    let mut text = format!("{GOOD}\n[sweep]\n");
    for i in 0..5000 {
        text.push_str(&format!("\"train.x{i}\" = [1]\n"));
    }
    text.push_str(&format!("\"train.lr\" = [{}]\n", values(1_000, 1e-6)));
    text.push_str(&format!("\"train.loss.balance\" = [{}]\n", values(50_000, 1e-6)));
    let t0 = std::time::Instant::now();
    let (p, found) = problems(&dir, &text);
    assert!(t0.elapsed().as_secs() < 120, "{:?}", t0.elapsed());
    // Each unknown key once, at its axis, however many points there are.
    has(&p, &found, line_of(&text, "\"train.x4999\""), "sweep.\"train.x4999\"", "unknown field");
    assert_eq!(found.iter().filter(|f| f.contains("unknown field")).count(), 5000);
    has(&p, &found, line_of(&text, "[sweep]"), "sweep", "5.000e7 points");
    // A table of thousands of bad keys reports the first 256 and says so.
    let mut text = GOOD.to_string();
    for i in 0..5000 {
        text.push_str(&format!("[train.x{i}]\n"));
    }
    let (p, found) = problems(&dir, &text.replace("[train.x", "[eval.x"));
    has(&p, &found, line_of(&text, "[eval]"), "eval", "more than 256");
}
