//! A sanity check of a metric pipeline on real data, before trusting it on samples: held-out real
//! images against the training statistics must give a small Fréchet distance and high
//! precision/recall; images of Gaussian noise a large distance and near-zero precision.

use crate::features::{dataset_images, extract_all, FeatureExtractor};
use crate::frechet::FrechetReference;
use crate::prdc::{precision_recall, PrecisionRecall};
use crate::stats::FeatureStats;
use crate::EvalError;
use burn::prelude::*;
use burn::tensor::Distribution;
use dddit_data::Dataset;
use serde::{Deserialize, Serialize};
use std::time::Instant;

/// One candidate set scored against the reference.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct CandidateScore {
    /// What the candidate images are.
    pub candidate: String,
    /// Number of candidate images.
    pub samples: usize,
    /// Fréchet distance to the reference statistics.
    pub fd: f64,
    /// Precision/recall against the first `samples` reference images.
    pub precision_recall: PrecisionRecall,
}

/// The check's result under one extractor.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct RealCheck {
    /// Feature extractor.
    pub extractor: String,
    /// The reference set (data set, split, count).
    pub reference: String,
    /// Reference images in the statistics.
    pub reference_samples: usize,
    /// Scores of the candidate sets.
    pub candidates: Vec<CandidateScore>,
    /// Wall time, seconds.
    pub seconds: f64,
}

fn batch_of(data: &dyn Dataset, range: std::ops::Range<usize>, device: &Device) -> Tensor<4> {
    let (c, s, n) = (data.channels(), data.size(), range.len());
    let (images, _) = dataset_images(data, range);
    Tensor::from_data(TensorData::new(images, [n, c, s, s]), device)
}

fn features_of(
    extractor: &dyn FeatureExtractor,
    data: &dyn Dataset,
    n: usize,
    device: &Device,
    progress: &mut dyn FnMut(&str),
    what: &str,
) -> Vec<Vec<f32>> {
    let chunk = 500;
    let mut rows = Vec::with_capacity(n);
    let start = Instant::now();
    let mut i = 0;
    while i < n {
        let end = (i + chunk).min(n);
        rows.extend(extract_all(extractor, &batch_of(data, i..end, device)));
        i = end;
        progress(&format!("{what}: {i}/{n} images ({:.1} images/s)", i as f64 / start.elapsed().as_secs_f64()));
    }
    rows
}

/// Scores `held_out` (real images the extractor's reference never saw) and Gaussian noise
/// images of the same shape against the statistics of the first `reference_samples` images of
/// `reference`, with `samples` candidate images each. Noise is N(0, 0.5²) per pixel, clamped to
/// [-1, 1], seeded by `seed`.
pub fn real_check(
    extractor: &dyn FeatureExtractor,
    reference: &dyn Dataset,
    held_out: &dyn Dataset,
    reference_samples: usize,
    samples: usize,
    seed: u64,
    device: &Device,
    progress: &mut dyn FnMut(&str),
) -> Result<RealCheck, EvalError> {
    if reference.len() < reference_samples || held_out.len() < samples {
        return Err(EvalError::Invalid(format!(
            "real check needs {reference_samples} reference and {samples} held-out images; the data sets have {} and {}",
            reference.len(),
            held_out.len()
        )));
    }
    if samples < 2 || reference_samples < samples {
        return Err(EvalError::Invalid(format!(
            "need 2 ≤ samples ≤ reference_samples, got {samples} and {reference_samples}"
        )));
    }
    let start = Instant::now();
    let name = extractor.name();
    let ref_rows = features_of(extractor, reference, reference_samples, device, progress, "reference");
    let ref_stats = FeatureStats::from_rows(
        &ref_rows,
        name.clone(),
        format!("{} train, first {reference_samples}", reference.name()),
    )?;
    let fd_ref = FrechetReference::new(&ref_stats)?;
    let mut candidates = Vec::new();

    let held_rows = features_of(extractor, held_out, samples, device, progress, "held-out");
    let stats = FeatureStats::from_rows(&held_rows, name.clone(), "held-out")?;
    candidates.push(CandidateScore {
        candidate: format!("{} held-out real images", reference.name()),
        samples,
        fd: fd_ref.distance(&stats)?,
        precision_recall: precision_recall(&ref_rows[..samples], &held_rows, crate::prdc::DEFAULT_K)?,
    });

    device.seed(seed);
    let (c, s) = (reference.channels(), reference.size());
    let mut noise_rows = Vec::with_capacity(samples);
    let mut i = 0;
    while i < samples {
        let end = (i + 500).min(samples);
        let noise = Tensor::<4>::random([end - i, c, s, s], Distribution::Normal(0.0, 0.5), device).clamp(-1.0, 1.0);
        noise_rows.extend(extract_all(extractor, &noise));
        i = end;
        progress(&format!("noise: {i}/{samples}"));
    }
    let stats = FeatureStats::from_rows(&noise_rows, name.clone(), "gaussian noise")?;
    candidates.push(CandidateScore {
        candidate: "Gaussian noise N(0, 0.5²), clamped".into(),
        samples,
        fd: fd_ref.distance(&stats)?,
        precision_recall: precision_recall(&ref_rows[..samples], &noise_rows, crate::prdc::DEFAULT_K)?,
    });
    Ok(RealCheck {
        extractor: name,
        reference: format!("{} train", reference.name()),
        reference_samples,
        candidates,
        seconds: start.elapsed().as_secs_f64(),
    })
}

/// The check as a Markdown table.
pub fn markdown(checks: &[RealCheck]) -> String {
    let mut s = String::from(
        "| features | reference | candidate | n | FD | precision | recall |\n|---|---|---|---:|---:|---:|---:|\n",
    );
    for c in checks {
        for k in &c.candidates {
            s.push_str(&format!(
                "| {} | {} ({}) | {} | {} | {:.3} | {:.3} | {:.3} |\n",
                c.extractor,
                c.reference,
                c.reference_samples,
                k.candidate,
                k.samples,
                k.fd,
                k.precision_recall.precision,
                k.precision_recall.recall
            ));
        }
    }
    s
}
