//! `dddit classifier train|eval`: the small classifiers used as fast feature extractors.

use anyhow::{Context, Result};
use clap::{Args, Subcommand};
use dddit_core::device::DeviceSpec;
use dddit_eval::classifier::{self, Classifier, DataSetName, TrainOptions};
use dddit_eval::FeatureExtractor;
use std::path::PathBuf;

/// Arguments of `dddit classifier`.
#[derive(Args, Debug)]
pub struct ClassifierArgs {
    #[command(subcommand)]
    command: ClassifierCommand,
}

#[derive(Subcommand, Debug)]
enum ClassifierCommand {
    /// Trains a classifier, reports its held-out accuracy and writes its weights atomically.
    Train(TrainArgs),
    /// Prints the held-out accuracy (overall and per class) of the embedded weights or a file.
    Eval(EvalArgs),
}

#[derive(Args, Debug)]
struct TrainArgs {
    /// Data set.
    #[arg(long, value_enum)]
    data: DataSetName,
    /// Where to write the weights (burnpack).
    #[arg(long)]
    out: PathBuf,
    /// Passes over the training data (default: 10 for fashion-mnist, 12 for shapes).
    #[arg(long)]
    epochs: Option<usize>,
    /// Seed of the weights, the order, the augmentation and the shapes training samples.
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// Samples per step.
    #[arg(long, default_value_t = 128)]
    batch_size: usize,
    /// Peak learning rate (AdamW, warm-up then cosine decay).
    #[arg(long, default_value_t = 2e-3)]
    lr: f64,
    /// Turn off the Fashion-MNIST mirror augmentation.
    #[arg(long)]
    no_augment: bool,
    /// Fashion-MNIST shift augmentation: up to ±N pixels (0: none).
    #[arg(long, default_value_t = 0)]
    max_shift: usize,
    /// Fresh shapes samples per epoch.
    #[arg(long, default_value_t = 50_000)]
    shapes_per_epoch: usize,
    /// Train on 32-pixel plain shapes only (default: rendered at 16, 32 and 64 pixels, plain and
    /// textured, in turn).
    #[arg(long)]
    no_shapes_mix: bool,
    /// Train on the first N training samples only (quick trials).
    #[arg(long)]
    train_limit: Option<usize>,
    /// Evaluate on the first N held-out samples only.
    #[arg(long)]
    test_limit: Option<usize>,
    /// Block widths, comma-separated (default 32,64,32).
    #[arg(long, value_delimiter = ',', requires = "strides")]
    widths: Option<Vec<usize>>,
    /// Block strides (1 or 2), comma-separated, one per width (default 2,2,2).
    #[arg(long, value_delimiter = ',', requires = "widths")]
    strides: Option<Vec<usize>>,
    /// Directory of the Fashion-MNIST IDX files.
    #[arg(long, default_value = dddit_data::fashion_mnist::DEFAULT_DIR)]
    fashion_dir: PathBuf,
    /// Device (see `dddit devices`).
    #[arg(long, default_value = "flex")]
    device: String,
}

#[derive(Args, Debug)]
struct EvalArgs {
    /// Data set.
    #[arg(long, value_enum)]
    data: DataSetName,
    /// Weights file (default: the weights embedded in dddit).
    #[arg(long)]
    weights: Option<PathBuf>,
    /// Evaluate on the first N held-out samples only.
    #[arg(long)]
    limit: Option<usize>,
    /// Side of the held-out shapes images (16, 32 or 64; the classifier adapts them to 32).
    #[arg(long, default_value_t = 32)]
    shapes_size: usize,
    /// Held-out shapes on a textured background.
    #[arg(long)]
    textured: bool,
    /// Directory of the Fashion-MNIST IDX files.
    #[arg(long, default_value = dddit_data::fashion_mnist::DEFAULT_DIR)]
    fashion_dir: PathBuf,
    /// Device (see `dddit devices`).
    #[arg(long, default_value = "flex")]
    device: String,
}

/// Runs the command.
pub fn run(a: ClassifierArgs) -> Result<()> {
    match a.command {
        ClassifierCommand::Train(t) => train(t),
        ClassifierCommand::Eval(e) => eval(e),
    }
}

fn train(a: TrainArgs) -> Result<()> {
    let data = a.data;
    let device = a.device.parse::<DeviceSpec>()?.device()?;
    let defaults = TrainOptions::new(data);
    let opts = TrainOptions {
        fashion_dir: a.fashion_dir,
        epochs: a.epochs.unwrap_or(defaults.epochs),
        batch_size: a.batch_size,
        lr: a.lr,
        seed: a.seed,
        augment: !a.no_augment,
        max_shift: a.max_shift,
        shapes_per_epoch: a.shapes_per_epoch,
        shapes_mix: !a.no_shapes_mix,
        train_limit: a.train_limit,
        test_limit: a.test_limit,
        blocks: a.widths.zip(a.strides),
        ..defaults
    };
    let config = opts.classifier_config();
    let fashion = data == DataSetName::FashionMnist;
    println!(
        "training a classifier on {data}: widths {:?}, strides {:?}, embedding {}, {} epochs, batch {}, lr {}, seed {}, \
         mirror {}, shift ±{}, shapes mix {}",
        config.widths,
        config.strides,
        config.feature_dim,
        opts.epochs,
        opts.batch_size,
        opts.lr,
        opts.seed,
        opts.augment && fashion,
        if fashion { opts.max_shift } else { 0 },
        opts.shapes_mix && !fashion
    );
    let (clf, report) = classifier::train(&opts, &device, &mut |e| {
        println!(
            "epoch {:>2}  steps {:>6}  loss {:.4}  train acc {:6.2}%  test acc {:6.2}%  {:7.1} s",
            e.epoch + 1,
            e.steps,
            e.train_loss,
            e.train_accuracy,
            e.test_accuracy,
            e.elapsed_s
        );
    })?;
    println!(
        "{} parameters, {} training samples per epoch, {:.1} s",
        clf.param_count(),
        report.train_samples,
        report.wall_s
    );
    println!("held-out accuracy ({} samples):\n{}", report.test.total(), report.test.markdown());
    if data == DataSetName::Shapes {
        print_ceiling(32, report.test.total())?;
    }
    if let Some(dir) = a.out.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    }
    let name = clf.save_weights(data.as_str(), &a.out)?;
    let bytes = std::fs::read(&a.out).with_context(|| format!("reading back {}", a.out.display()))?;
    println!("wrote {} ({} bytes, sha256 {}) as {name}", a.out.display(), bytes.len(), classifier::sha256_hex(&bytes));
    Ok(())
}

fn eval(a: EvalArgs) -> Result<()> {
    let data = a.data;
    let device = a.device.parse::<DeviceSpec>()?.device()?;
    let clf = match &a.weights {
        Some(p) => Classifier::load_weights(p, &device)?,
        None => Classifier::pretrained(data, &device)?,
    };
    let test = classifier::train::test_set(data, &a.fashion_dir, a.shapes_size, a.textured)?;
    let start = std::time::Instant::now();
    let pairs = classifier::predictions(&clf, &*test, a.limit, &device);
    let secs = start.elapsed().as_secs_f64();
    let mut acc = classifier::Accuracy::new(data.class_names());
    for &(t, p) in &pairs {
        acc.add(t, p);
    }
    println!("{} on {data} ({} held-out samples, {:.1} s):", clf.name(), acc.total(), secs);
    print!("{}", acc.markdown());
    if data == DataSetName::Shapes {
        let shapes = held_out_shapes(a.shapes_size)?;
        let mut determined = classifier::Accuracy::new(data.class_names());
        for (i, &(t, p)) in pairs.iter().enumerate() {
            if classifier::train::shapes_label_is_determined(&shapes, i) {
                determined.add(t, p);
            }
        }
        println!(
            "on the {} samples whose image determines the label: {:.2}%",
            determined.total(),
            determined.overall()
        );
        print_ceiling(a.shapes_size, acc.total())?;
    }
    Ok(())
}

/// The held-out shapes split at side `size`.
fn held_out_shapes(size: usize) -> Result<dddit_data::Shapes> {
    Ok(classifier::train::shapes_test_config(size).init()?)
}

/// Prints the best accuracy possible on the first `n` held-out shapes of side `size`.
fn print_ceiling(size: usize, n: usize) -> Result<()> {
    let ceiling = classifier::train::shapes_label_ceiling(&held_out_shapes(size)?, n);
    println!(
        "best possible accuracy on these samples (some labels are ambiguous, see shapes_label_ceiling): {ceiling:.2}%"
    );
    Ok(())
}
