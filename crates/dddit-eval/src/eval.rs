//! `dddit eval`: samples a trained run and writes `eval.json` with every metric and the settings
//! that produced it: Fréchet distance, precision and recall for each feature extractor asked for
//! (with the extractor's name and both sample counts), class accuracy of class-conditional
//! samples, detector-checked adherence on `shapes`, GFLOPs per sample over the trajectory with
//! routing statistics by timestep range, and measured milliseconds per image.

use crate::adherence;
use crate::classifier::{Classifier, DataSetName};
use crate::compute::{time_sampling, ComputeAccumulator, ComputeReport};
use crate::features::{dataset_images, extract_all, map_batches, FeatureExtractor};
use crate::frechet::FrechetReference;
use crate::prdc::{precision_recall, PrecisionRecall};
use crate::run::TrainedRun;
use crate::sample::{balanced_labels, sample_batch, sample_batch_with, SampleConfig};
use crate::shards;
use crate::stats::{FeatureStats, StatsCache, StatsKey};
use crate::EvalError;
use burn::prelude::*;
use dddit_data::DataSection;
use dddit_data::{Dataset, ShapeKind};
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};
use std::time::Instant;

/// Which network features are computed with.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "kebab-case")]
pub enum FeatureKind {
    /// The small classifier dddit trained on the run's data set (fast; CPU and CI).
    Classifier,
    /// The standard TF-Inception (pool3, 2048-d) of FID (needs `dddit assets fetch inception`).
    Inception,
}

/// Settings of an evaluation; every field is written to `eval.json`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct EvalConfig {
    /// Generated samples the quality metrics are computed on.
    pub samples: usize,
    /// Sampling batch size.
    pub batch_size: usize,
    /// How samples are drawn.
    pub sample: SampleConfig,
    /// Feature extractors for Fréchet distance, precision and recall.
    pub features: Vec<FeatureKind>,
    /// Real images the reference statistics are computed from (the first N of the training
    /// data: for Fashion-MNIST its train split, for shapes the run's own generator).
    pub reference_samples: usize,
    /// k of the k-NN precision/recall.
    pub pr_k: usize,
    /// Measure milliseconds per image (batch 1 and `timing_batch`).
    pub timing: bool,
    /// Timed single-image trajectories (after one warm-up).
    pub timing_batch1_runs: usize,
    /// Large batch size of the timing.
    pub timing_batch: usize,
    /// Images in `samples.png` (0 = no grid).
    pub grid: usize,
    /// Where reference statistics are cached (default: the assets directory's `stats/`).
    pub stats_cache: Option<PathBuf>,
}

impl Default for EvalConfig {
    fn default() -> Self {
        EvalConfig {
            samples: 1000,
            batch_size: 50,
            sample: SampleConfig::default(),
            features: vec![FeatureKind::Classifier],
            reference_samples: 10_000,
            pr_k: crate::prdc::DEFAULT_K,
            timing: true,
            timing_batch1_runs: 2,
            timing_batch: 32,
            grid: 64,
            stats_cache: None,
        }
    }
}

impl EvalConfig {
    /// Every out-of-range setting, as (key below `[eval]`, what is wrong); empty when the
    /// settings can run.
    pub fn problems(&self) -> Vec<(String, String)> {
        let mut p = Vec::new();
        let mut bad = |key: &str, msg: String| p.push((key.to_string(), msg));
        if self.samples < 2 {
            bad("samples", format!("must be ≥ 2 (a covariance needs two), got {}", self.samples));
        }
        for (key, v) in [
            ("batch_size", self.batch_size),
            ("timing_batch", self.timing_batch),
            ("timing_batch1_runs", self.timing_batch1_runs),
        ] {
            if v == 0 {
                bad(key, "must be ≥ 1".into());
            }
        }
        if self.reference_samples < 2 {
            bad("reference_samples", format!("must be ≥ 2, got {}", self.reference_samples));
        }
        let n = self.samples.min(self.reference_samples);
        if self.pr_k == 0 || self.pr_k >= n {
            bad("pr_k", format!("must be in 1..{n} (below the smaller sample count), got {}", self.pr_k));
        }
        for (k, m) in self.sample.problems() {
            bad(&format!("sample.{k}"), m);
        }
        p
    }

    /// Checks the settings (the first problem, if any).
    pub fn validate(&self) -> Result<(), EvalError> {
        match self.problems().into_iter().next() {
            None => Ok(()),
            Some((key, msg)) => Err(EvalError::Invalid(format!("{key}: {msg}"))),
        }
    }
}

/// Fréchet distance, precision and recall under one feature extractor.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct FeatureMetrics {
    /// The extractor (`inception-v3-…` or `classifier-…`): FID proper only with Inception.
    pub extractor: String,
    /// Fréchet distance between generated and reference statistics.
    pub fd: f64,
    /// Generated samples in the statistics.
    pub generated: usize,
    /// Real images in the reference statistics.
    pub reference: usize,
    /// What the reference is (data set, split, count).
    pub reference_source: String,
    /// The metric's floor: the Fréchet distance between `generated` held-out real images
    /// (Fashion-MNIST test split; shapes of another seed) and the same reference statistics.
    /// A model cannot be told from real data below it. `None` in reports made before it existed.
    #[serde(default)]
    pub real_floor: Option<f64>,
    /// Precision and recall (k-NN, Kynkäänniemi et al.) on `min(generated, reference)` of each.
    pub precision_recall: PrecisionRecall,
    /// Seconds spent extracting features and computing the metrics.
    pub seconds: f64,
}

/// Class accuracy of class-conditional samples.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ClassAccuracy {
    /// Who judged the class (`classifier-…` or the shapes detector).
    pub judge: String,
    /// Fraction of samples judged to be of the class they were conditioned on.
    pub accuracy: f64,
    /// Per class, indexed by label.
    pub per_class: Vec<f64>,
    /// Samples judged.
    pub samples: usize,
    /// The judge's own accuracy on real held-out images, for scale.
    pub judge_accuracy_on_real: Option<f64>,
}

/// Detector-checked adherence of `shapes` samples.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ShapesAdherence {
    /// What the samples were asked for. Class-conditional runs ask only for the kind of the
    /// first large object (the data set's label); caption conditioning arrives with the text
    /// encoder.
    pub prompt: String,
    /// Fraction of samples with 1 to `max_objects` detected objects in which the asked-for kind
    /// is the kind of one of the detected objects of the largest size class present (the data set's label is the first large object, which
    /// an image alone cannot single out when several are large).
    pub label_accuracy: f64,
    /// Fraction of samples in which the detector found at least one object.
    pub any_object: f64,
    /// Mean number of detected objects per sample.
    pub mean_objects: f64,
    /// The same statistics on real training images, for scale.
    pub real_mean_objects: f64,
    /// Samples checked.
    pub samples: usize,
}

/// Everything `dddit eval` reports.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct EvalReport {
    /// The run directory.
    pub run: PathBuf,
    /// Router of the run.
    pub router: String,
    /// DiT preset.
    pub model: String,
    /// Data set name.
    pub data: String,
    /// Training steps of the evaluated checkpoint (EMA weights).
    pub train_step: usize,
    /// Device everything ran on.
    pub device: String,
    /// The settings used.
    pub settings: EvalConfig,
    /// Quality metrics per feature extractor.
    pub features: Vec<FeatureMetrics>,
    /// Class accuracy by each available judge.
    pub class_accuracy: Vec<ClassAccuracy>,
    /// Adherence on `shapes` of class-conditional samples (absent for other data).
    pub adherence: Option<ShapesAdherence>,
    /// Caption-conditioned runs: detector-checked adherence to every object of the caption and
    /// the compute each sample spent against its caption's object count.
    #[serde(default)]
    pub captions: Option<crate::captions::CaptionReport>,
    /// Compute per sample, by timestep range, and measured time.
    pub compute: ComputeReport,
    /// Wall time of the whole evaluation, seconds.
    pub seconds: f64,
    /// dddit version that wrote the file.
    pub dddit_version: String,
}

/// Generated images of an evaluation, on the host.
struct Generated {
    images: Vec<f32>, // [n, c, h, w] row-major
    labels: Vec<usize>,
    channels: usize,
    size: usize,
}

impl Generated {
    fn tensor(&self, range: std::ops::Range<usize>, device: &Device) -> Tensor<4> {
        let per = self.channels * self.size * self.size;
        let data = self.images[range.start * per..range.end * per].to_vec();
        Tensor::from_data(TensorData::new(data, [range.len(), self.channels, self.size, self.size]), device)
    }
}

/// The classifier data set matching a run's data, if dddit ships one.
fn classifier_data(data: &DataSection) -> Option<DataSetName> {
    match data {
        DataSection::Shapes(_) => Some(DataSetName::Shapes),
        DataSection::FashionMnist(_) => Some(DataSetName::FashionMnist),
    }
}

/// A description of the data set precise enough to key cached statistics.
fn describe(data: &DataSection) -> String {
    match data {
        DataSection::Shapes(c) => format!(
            "shapes size={} max_objects={} textured={} seed={}",
            c.size, c.max_objects, c.textured_background, c.seed
        ),
        DataSection::FashionMnist(c) => format!("fashion-mnist pad_to_32={}", c.pad_to_32),
    }
}

/// How many real images evaluation can draw from the data a run trained on: `(reference,
/// held-out)`, where the reference set bounds `reference_samples` and the held-out set bounds
/// `samples` (the real-vs-real floor compares as many held-out images as samples). `None`
/// stands for a procedural set that generates as many as asked. Reads the files of a file-backed
/// data set, so validation can refuse a count that evaluation would only fail on after training.
pub fn real_image_counts(data: &DataSection) -> Result<(Option<usize>, Option<usize>), EvalError> {
    Ok(match data {
        DataSection::Shapes(_) => (None, None),
        DataSection::FashionMnist(_) => (Some(data.reference(0)?.len()), Some(data.held_out(0)?.len())),
    })
}

/// The first `n` images of `data` as one host buffer, with their labels.
fn real_images(data: &dyn Dataset, n: usize) -> Result<(Vec<f32>, Vec<usize>), EvalError> {
    if data.len() < n {
        return Err(EvalError::Invalid(format!(
            "{} has {} images, fewer than the {n} asked for",
            data.name(),
            data.len()
        )));
    }
    Ok(dataset_images(data, 0..n))
}

fn build_extractor(
    kind: FeatureKind,
    data: &DataSection,
    device: &Device,
) -> Result<Box<dyn FeatureExtractor>, EvalError> {
    match kind {
        FeatureKind::Classifier => {
            let name =
                classifier_data(data).ok_or_else(|| EvalError::Invalid("no classifier for this data set".into()))?;
            Ok(Box::new(Classifier::pretrained(name, device)?))
        }
        FeatureKind::Inception => {
            Ok(Box::new(crate::inception::InceptionV3::from_file(crate::assets::require("inception")?, device)?))
        }
    }
}

/// Evaluates `run` with `config` on `device` (`device_name` is what `eval.json` calls it),
/// writing `samples.png` and `eval.json` into the run directory (atomically; `-step-N` names
/// for a snapshot, [`TrainedRun::output`]). `progress` gets
/// one line per phase. Under a data-parallel launch ([`dddit_core::dist`]) every rank calls it:
/// the sampling is split across the ranks ([`crate::shards`]), rank 0 computes and writes the
/// metrics and returns the report, the other ranks return `None`.
pub fn evaluate(
    run: &TrainedRun,
    config: &EvalConfig,
    device: &Device,
    device_name: &str,
    progress: &mut dyn FnMut(&str),
) -> Result<Option<EvalReport>, EvalError> {
    config.validate()?;
    let start = Instant::now();
    let model = run.model.as_ref();
    let (channels, size) = (run.dit.in_channels, run.dit.input_height);
    let classes = run.dit.num_classes;

    // 1. Samples, with the compute each one cost. A caption-conditioned run samples the
    //    captions of held-out scenes (their labels are kept for the class accuracy).
    let scenes = match run.text_encoder {
        None => None,
        Some(_) => {
            let data = run.file.data.held_out(config.samples)?;
            if data.len() < config.samples {
                return Err(EvalError::Invalid(format!(
                    "{} has {} captions, fewer than the {} samples asked for",
                    data.name(),
                    data.len(),
                    config.samples
                )));
            }
            let mut sc = crate::captions::Scenes::default();
            for i in 0..config.samples {
                let s = data.get(i);
                sc.captions.push(s.caption);
                sc.labels.push(s.label);
                sc.objects.push(s.objects);
            }
            Some(sc)
        }
    };
    let mut captions = match run.text_encoder {
        Some(kind) => {
            Some(dddit_train::captions::Captions::new(kind, device).map_err(|e| EvalError::Invalid(e.to_string()))?.0)
        }
        None => None,
    };
    let labels = match &scenes {
        Some(sc) => sc.labels.clone(),
        None => balanced_labels(config.samples, classes),
    };
    // Under a data-parallel launch each rank samples its share of the batches (a batch's seed
    // is its index, so the images are one process's) and rank 0 gets them all.
    let (rank, world) = (dddit_core::dist::rank(), dddit_core::dist::world());
    let chunks: Vec<&[usize]> = labels.chunks(config.batch_size).collect();
    let (mut mine, mut done) = (Vec::new(), 0usize);
    let sampling = Instant::now();
    for i in shards::mine(chunks.len(), rank, world) {
        let chunk = chunks[i];
        let s = match (&mut captions, &scenes) {
            (Some(c), Some(sc)) => {
                let range = i * config.batch_size..i * config.batch_size + chunk.len();
                let text = c.embed(&sc.captions[range], &[], device).map_err(|e| EvalError::Invalid(e.to_string()))?;
                sample_batch_with(model, &config.sample, &vec![classes; chunk.len()], Some(&text), i as u64, device)?
            }
            _ => sample_batch(model, &config.sample, chunk, i as u64, device)?,
        };
        let gflops =
            (0..chunk.len()).map(|j| s.trace.iter().map(|st| st.flops[j].total() as f64).sum::<f64>() / 1e9).collect();
        let mut compute = ComputeAccumulator::new(model, &config.sample);
        compute.add(&s);
        let images = s
            .images
            .into_data()
            .convert::<f32>()
            .try_to_vec::<f32>()
            .map_err(|e| EvalError::Invalid(format!("{e:?}")))?;
        mine.push(shards::Batch { index: i, images, gflops, compute });
        done += chunk.len();
        let rate = done as f64 / sampling.elapsed().as_secs_f64();
        if world == 1 {
            progress(&format!("sampled {done}/{} ({rate:.1} images/s)", config.samples));
        } else if rank == 0 {
            progress(&format!("sampled {done} on rank 0 of {world} ({rate:.1} images/s per rank)"));
        }
    }
    let mut acc = ComputeAccumulator::new(model, &config.sample);
    let mut gen = Generated {
        images: Vec::with_capacity(config.samples * channels * size * size),
        labels: labels.clone(),
        channels,
        size,
    };
    let mut per_sample_gflops = Vec::with_capacity(config.samples);
    for b in shards::gather(mine)? {
        gen.images.extend(b.images);
        per_sample_gflops.extend(b.gflops);
        acc.merge(b.compute);
    }
    if per_sample_gflops.len() != config.samples || gen.images.len() != config.samples * channels * size * size {
        return Err(EvalError::Invalid(format!(
            "{} of {} samples came back from the {world} ranks",
            per_sample_gflops.len(),
            config.samples
        )));
    }
    // The metrics are computed and written once, by rank 0.
    if rank != 0 {
        return Ok(None);
    }
    if config.grid > 0 {
        let n = config.grid.min(config.samples);
        let cols = (n as f64).sqrt().ceil() as usize;
        crate::grid::save_grid(
            &run.output("samples", "png"),
            &gen.images[..n * channels * size * size],
            n,
            channels,
            size,
            cols,
        )?;
    }

    // 2. Quality under each feature extractor.
    let reference = run.file.data.reference(config.reference_samples)?;
    let n_ref = config.reference_samples;
    let (ref_images, _) = real_images(reference.as_ref(), n_ref)?;
    let ref_gen =
        Generated { images: ref_images, labels: vec![], channels: reference.channels(), size: reference.size() };
    let cache = StatsCache::new(match &config.stats_cache {
        Some(dir) => dir.clone(),
        None => crate::assets::root()?.join("stats"),
    });
    // Held-out real images, as many as the samples: the real-vs-real floor of each metric.
    let held_out = run.file.data.held_out(config.samples)?;
    let (floor_images, _) = real_images(held_out.as_ref(), config.samples)?;
    let floor_gen =
        Generated { images: floor_images, labels: vec![], channels: held_out.channels(), size: held_out.size() };
    let mut features = Vec::new();
    for &kind in &config.features {
        let t0 = Instant::now();
        let extractor = build_extractor(kind, &run.file.data, device)?;
        let name = extractor.name();
        progress(&format!("features: {name}"));
        let gen_rows = extract_all(extractor.as_ref(), &gen.tensor(0..config.samples, device));
        let gen_stats = FeatureStats::from_rows(
            &gen_rows,
            name.clone(),
            format!("{} samples of {}", config.samples, run.dir.display()),
        )?;
        let source = format!("{} train, first {n_ref}", describe(&run.file.data));
        let key = StatsKey::new(describe(&run.file.data), "train", n_ref, name.clone());
        let pr_n = config.samples.min(n_ref);
        let ref_rows = extract_all(extractor.as_ref(), &ref_gen.tensor(0..pr_n, device));
        let (ref_stats, _) = cache.load_or_compute(&key, || {
            let rows = if pr_n == n_ref {
                ref_rows.clone()
            } else {
                extract_all(extractor.as_ref(), &ref_gen.tensor(0..n_ref, device))
            };
            FeatureStats::from_rows(&rows, name.clone(), source.clone())
        })?;
        let fd_ref = FrechetReference::new(&ref_stats)?;
        let fd = fd_ref.distance(&gen_stats)?;
        let floor_rows = extract_all(extractor.as_ref(), &floor_gen.tensor(0..config.samples, device));
        let floor_stats = FeatureStats::from_rows(&floor_rows, name.clone(), "held-out real images".to_string())?;
        let real_floor = Some(fd_ref.distance(&floor_stats)?);
        let pr = precision_recall(&ref_rows, &gen_rows[..pr_n], config.pr_k)?;
        features.push(FeatureMetrics {
            extractor: name,
            fd,
            generated: config.samples,
            reference: n_ref,
            reference_source: source,
            real_floor,
            precision_recall: pr,
            seconds: t0.elapsed().as_secs_f64(),
        });
    }

    // 3. Class accuracy (the classifier) and, on shapes, the detector.
    let mut class_accuracy = Vec::new();
    if let Some(name) = classifier_data(&run.file.data) {
        let clf = Classifier::pretrained(name, device)?;
        let judge = clf.name();
        let predicted = predict_all(&clf, &gen, device);
        let n_real = 1000.min(held_out.len());
        let (real, real_labels) = real_images(held_out.as_ref(), n_real)?;
        let real =
            Generated { images: real, labels: real_labels, channels: held_out.channels(), size: held_out.size() };
        let real_pred = predict_all(&clf, &real, device);
        let real_acc = real_pred.iter().zip(&real.labels).filter(|(p, l)| p == l).count() as f64 / n_real as f64;
        class_accuracy.push(accuracy(judge, &predicted, &gen.labels, classes, Some(real_acc)));
    }
    let mut adherence_report = None;
    let mut caption_report = None;
    let dense_per_sample = dddit_core::flops::Flops::gflops(
        &(run.dit.dense_flops() * (config.sample.steps as u64 * if config.sample.guided() { 2 } else { 1 })),
        dddit_core::flops::Convention::MacIsOne,
    );
    if let (Some(sc), Some(kind)) = (&scenes, run.text_encoder) {
        let ratio: Vec<f64> = per_sample_gflops.iter().map(|g| g / dense_per_sample).collect();
        let detections = if matches!(run.file.data, DataSection::Shapes(_)) {
            let per = channels * size * size;
            Some(
                (0..config.samples)
                    .map(|i| adherence::detect(&gen.images[i * per..(i + 1) * per], size))
                    .collect::<Result<Vec<_>, _>>()?,
            )
        } else {
            None
        };
        caption_report = Some(crate::captions::caption_report(&kind.to_string(), sc, &ratio, detections.as_deref()));
    } else if let DataSection::Shapes(shapes) = &run.file.data {
        let max_objects = shapes.max_objects;
        let per = channels * size * size;
        let mut right = 0usize;
        let mut objects = 0usize;
        let mut any = 0usize;
        let mut found = Vec::with_capacity(config.samples);
        for i in 0..config.samples {
            let det = adherence::detect(&gen.images[i * per..(i + 1) * per], size)?;
            objects += det.len();
            any += usize::from(!det.is_empty());
            let label = gen.labels[i];
            // A sample counts only if it is a plausible image of the data set (1 to max_objects
            // objects): noise that the detector reads as a grid full of shapes earns nothing.
            let plausible = (1..=max_objects).contains(&det.len());
            let ok = plausible && adherence::label_matches(&det, ShapeKind::ALL[label]);
            right += usize::from(ok);
            // For the per-class table: the asked-for label when it matches, else "none".
            found.push(if ok { label } else { usize::MAX });
        }
        let n_real = 500.min(held_out.len());
        let mut real_objects = 0usize;
        for i in 0..n_real {
            real_objects += adherence::detect(&held_out.get(i).image, size)?.len();
        }
        let acc = accuracy("shapes-detector".into(), &found, &gen.labels, classes, None);
        adherence_report = Some(ShapesAdherence {
            prompt: "class label: the kind of the first large object".into(),
            label_accuracy: right as f64 / config.samples as f64,
            any_object: any as f64 / config.samples as f64,
            mean_objects: objects as f64 / config.samples as f64,
            real_mean_objects: real_objects as f64 / n_real as f64,
            samples: config.samples,
        });
        class_accuracy.push(acc);
    }

    // 4. Measured time.
    let timing = if config.timing {
        progress("timing");
        Some(time_sampling(model, &config.sample, config.timing_batch1_runs, config.timing_batch, device, device_name)?)
    } else {
        None
    };

    let report = EvalReport {
        run: run.dir.clone(),
        router: model.router().to_string(),
        model: run.file.model.preset.clone(),
        data: run.data.name().to_string(),
        train_step: run.step,
        device: device_name.to_string(),
        settings: config.clone(),
        features,
        class_accuracy,
        adherence: adherence_report,
        captions: caption_report,
        compute: acc.finish(timing),
        seconds: start.elapsed().as_secs_f64(),
        dddit_version: env!("CARGO_PKG_VERSION").to_string(),
    };
    write_json(&run.output("eval", "json"), &report)?;
    Ok(Some(report))
}

fn predict_all(clf: &Classifier, images: &Generated, device: &Device) -> Vec<usize> {
    let n = images.images.len() / (images.channels * images.size * images.size);
    map_batches(&images.tensor(0..n, device), clf.max_batch(), |batch| clf.predict(batch))
}

fn accuracy(judge: String, predicted: &[usize], labels: &[usize], classes: usize, real: Option<f64>) -> ClassAccuracy {
    let mut hit = vec![0usize; classes];
    let mut tot = vec![0usize; classes];
    for (&p, &l) in predicted.iter().zip(labels) {
        tot[l] += 1;
        hit[l] += usize::from(p == l);
    }
    let correct: usize = hit.iter().sum();
    ClassAccuracy {
        judge,
        accuracy: correct as f64 / labels.len().max(1) as f64,
        per_class: hit.iter().zip(&tot).map(|(&h, &t)| if t == 0 { 0.0 } else { h as f64 / t as f64 }).collect(),
        samples: labels.len(),
        judge_accuracy_on_real: real,
    }
}

/// Writes `value` as pretty JSON to `path` atomically (temporary file, then rename).
pub fn write_json<T: Serialize>(path: &Path, value: &T) -> Result<(), EvalError> {
    dddit_core::atomic::write_json(path, value).map_err(|e| EvalError::io(path, e))
}

/// A few human-readable lines summarising `report` (what `dddit eval` prints).
pub fn summary(report: &EvalReport) -> String {
    let mut lines = Vec::new();
    let c = &report.compute;
    lines.push(format!(
        "{} on {} ({} router, step {}): {} samples, {} steps{}",
        report.model,
        report.data,
        report.router,
        report.train_step,
        c.samples,
        c.steps,
        if c.guided { format!(", cfg {}", report.settings.sample.cfg_scale) } else { String::new() }
    ));
    for f in &report.features {
        lines.push(format!(
            "  FD {:.3} [{}; {} generated vs {} real]  precision {:.3}  recall {:.3} (k={})",
            f.fd,
            f.extractor,
            f.generated,
            f.reference,
            f.precision_recall.precision,
            f.precision_recall.recall,
            f.precision_recall.k
        ));
    }
    for a in &report.class_accuracy {
        let real = a.judge_accuracy_on_real.map(|r| format!(" (judge on real images: {:.3})", r)).unwrap_or_default();
        lines.push(format!("  class accuracy {:.3} by {}{real}", a.accuracy, a.judge));
    }
    if let Some(a) = &report.adherence {
        lines.push(format!(
            "  shapes: {:.2} objects per sample (real {:.2}), label object right {:.3}",
            a.mean_objects, a.real_mean_objects, a.label_accuracy
        ));
    }
    if let Some(cr) = &report.captions {
        let f = |v: Option<f64>| v.map(|v| format!("{v:.3}")).unwrap_or_else(|| "–".into());
        lines.push(format!(
            "  captions ({}): exact match {}, object recall {}, kind {}, colour {}, cell {}; compute vs object count r = {}",
            cr.encoder, f(cr.exact_match), f(cr.object_recall), f(cr.kind_accuracy), f(cr.colour_accuracy), f(cr.cell_accuracy), f(cr.compute_vs_objects)
        ));
    }
    lines.push(format!(
        "  {:.4} GFLOPs per sample over the trajectory ({:.3} of dense {:.4}; DiT convention)",
        c.gflops_per_sample.mean, c.gflops_ratio, c.dense_gflops_per_sample
    ));
    for r in &c.by_t {
        let routing: Vec<String> = r.routing.iter().map(|(k, v)| format!("{k} {v:.3}")).collect();
        lines.push(format!(
            "    t ∈ [{:>3}, {:>4}): {:>3} steps, GFLOPs ratio {:.3}; {}",
            r.t_lo,
            r.t_hi,
            r.steps,
            r.gflops_ratio,
            routing.join(", ")
        ));
    }
    if let Some(t) = &c.timing {
        lines.push(format!(
            "  {:.1} ms per image at batch 1, {:.1} ms per image at batch {} ({})",
            t.batch1_ms_per_image, t.batch_ms_per_image, t.batch_size, t.device
        ));
    }
    lines.join("\n")
}
