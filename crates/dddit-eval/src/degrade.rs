//! Does a metric rank? Real held-out images degraded by known, growing amounts — Gaussian
//! noise, blur, dropped classes (mode collapse) — must move the Fréchet distance away from the
//! reference monotonically, and labels shuffled by a growing fraction must lower the class
//! accuracy the judge gives them. A metric that fails this cannot tell a better model from a
//! worse one, whatever its value on a single model.

use crate::classifier::Classifier;
use crate::features::{dataset_images, extract_all, FeatureExtractor};
use crate::frechet::FrechetReference;
use crate::stats::FeatureStats;
use crate::EvalError;
use burn::prelude::*;
use dddit_data::Dataset;
use serde::{Deserialize, Serialize};

/// One kind of degradation at increasing levels and the metric at each.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Series {
    /// What is degraded (`gaussian noise σ`, `box blur radius`, `classes kept`, `labels shuffled`).
    pub kind: String,
    /// The metric (`FD` or `class accuracy`).
    pub metric: String,
    /// Levels, from none to most degraded.
    pub levels: Vec<f64>,
    /// The metric at each level.
    pub values: Vec<f64>,
    /// Whether every step of degradation moved the metric the right way (FD up, accuracy down).
    pub monotone: bool,
}

/// The degradation check of one extractor.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct DegradationCheck {
    /// Feature extractor (and judge, for the accuracy series).
    pub extractor: String,
    /// Reference images in the statistics.
    pub reference_samples: usize,
    /// Held-out images per level.
    pub samples: usize,
    /// The series.
    pub series: Vec<Series>,
}

impl DegradationCheck {
    /// Whether every series is monotone.
    pub fn passed(&self) -> bool {
        self.series.iter().all(|s| s.monotone)
    }
}

/// Adds N(0, σ²) noise (deterministic in `seed`) and clamps to [-1, 1].
fn noisy(images: &[f32], sigma: f64, seed: u64) -> Vec<f32> {
    let mut rng = dddit_data::SplitMix64::new(seed);
    images
        .iter()
        .map(|&v| {
            // Box–Muller from two uniforms.
            let (u1, u2) = (rng.next_f32().max(1e-7) as f64, rng.next_f32() as f64);
            let z = (-2.0 * u1.ln()).sqrt() * (2.0 * std::f64::consts::PI * u2).cos();
            (v as f64 + sigma * z).clamp(-1.0, 1.0) as f32
        })
        .collect()
}

/// Separable box blur of radius `r` (edges clamped) over `[n, c, s, s]` images, plane by plane.
fn blurred(images: &[f32], s: usize, r: usize) -> Vec<f32> {
    if r == 0 {
        return images.to_vec();
    }
    let mut out = images.to_vec();
    let w = (2 * r + 1) as f32;
    for plane in out.chunks_mut(s * s) {
        let src = plane.to_vec();
        let mut tmp = vec![0f32; s * s];
        for y in 0..s {
            for x in 0..s {
                let sum: f32 = (0..=2 * r).map(|k| src[y * s + (x + k).saturating_sub(r).min(s - 1)]).sum();
                tmp[y * s + x] = sum / w;
            }
        }
        for y in 0..s {
            for x in 0..s {
                let sum: f32 = (0..=2 * r).map(|k| tmp[(y + k).saturating_sub(r).min(s - 1) * s + x]).sum();
                plane[y * s + x] = sum / w;
            }
        }
    }
    out
}

fn monotone(values: &[f64], up: bool) -> bool {
    values.windows(2).all(|w| if up { w[1] > w[0] } else { w[1] < w[0] })
}

/// Runs the check: `samples` held-out images per level against the statistics of the first
/// `reference_samples` of `reference`; `judge` (the data set's classifier) scores the shuffled
/// labels.
#[allow(clippy::too_many_arguments)]
pub fn degradation_check(
    extractor: &dyn FeatureExtractor,
    judge: Option<&Classifier>,
    reference: &dyn Dataset,
    held_out: &dyn Dataset,
    reference_samples: usize,
    samples: usize,
    seed: u64,
    device: &Device,
) -> Result<DegradationCheck, EvalError> {
    let pool = (4 * samples).min(held_out.len());
    if reference.len() < reference_samples || pool < samples || samples < 2 {
        return Err(EvalError::Invalid(format!(
            "degradation check needs {reference_samples} reference and {samples}..{} held-out images; the data sets have {} and {}",
            4 * samples,
            reference.len(),
            held_out.len()
        )));
    }
    let (c, s) = (reference.channels(), reference.size());
    let tensor = |images: &[f32]| {
        let n = images.len() / (c * s * s);
        Tensor::<4>::from_data(TensorData::new(images.to_vec(), [n, c, s, s]), device)
    };
    let (ref_images, _) = dataset_images(reference, 0..reference_samples);
    let ref_stats =
        FeatureStats::from_rows(&extract_all(extractor, &tensor(&ref_images)), extractor.name(), "reference")?;
    let fd_ref = FrechetReference::new(&ref_stats)?;
    let fd = |images: &[f32]| -> Result<f64, EvalError> {
        let stats = FeatureStats::from_rows(&extract_all(extractor, &tensor(images)), extractor.name(), "candidate")?;
        fd_ref.distance(&stats)
    };
    let (pool_images, pool_labels) = dataset_images(held_out, 0..pool);
    let per = c * s * s;
    let base = &pool_images[..samples * per];
    let mut series = Vec::new();

    let sigmas = [0.0, 0.1, 0.2, 0.4, 0.8];
    let values = sigmas.iter().map(|&sg| fd(&noisy(base, sg, seed))).collect::<Result<Vec<_>, _>>()?;
    series.push(Series {
        kind: "gaussian noise σ".into(),
        metric: "FD".into(),
        levels: sigmas.to_vec(),
        monotone: monotone(&values, true),
        values,
    });

    let radii = [0usize, 1, 2, 3];
    let values = radii.iter().map(|&r| fd(&blurred(base, s, r))).collect::<Result<Vec<_>, _>>()?;
    series.push(Series {
        kind: "box blur radius (px)".into(),
        metric: "FD".into(),
        levels: radii.iter().map(|&r| r as f64).collect(),
        monotone: monotone(&values, true),
        values,
    });

    // Mode collapse: the same number of images drawn from fewer and fewer classes.
    let classes = pool_labels.iter().max().map_or(1, |m| m + 1);
    let mut kept: Vec<usize> = vec![classes, classes.div_ceil(2), 1];
    kept.dedup();
    let mut levels = Vec::new();
    let mut values = Vec::new();
    for &k in &kept {
        let idx: Vec<usize> = (0..pool).filter(|&i| pool_labels[i] < k).take(samples).collect();
        if idx.len() < samples.min(64) {
            continue;
        }
        let imgs: Vec<f32> = idx.iter().flat_map(|&i| pool_images[i * per..(i + 1) * per].iter().copied()).collect();
        levels.push(k as f64);
        values.push(fd(&imgs)?);
    }
    series.push(Series {
        kind: "classes kept (mode collapse)".into(),
        metric: "FD".into(),
        monotone: levels.len() >= 2 && monotone(&values, true),
        levels,
        values,
    });

    if let Some(judge) = judge {
        let predicted = judge.predict(tensor(base));
        let labels = &pool_labels[..samples];
        let mut rng = dddit_data::SplitMix64::new(seed ^ 0x5eed);
        let fractions = [0.0, 0.25, 0.5, 1.0];
        let mut values = Vec::new();
        for &f in &fractions {
            // Each label is replaced, with probability f, by a different class.
            let shuffled: Vec<usize> = labels
                .iter()
                .map(|&l| {
                    if (rng.next_f32() as f64) < f && classes > 1 {
                        (l + 1 + rng.below(classes - 1)) % classes
                    } else {
                        l
                    }
                })
                .collect();
            let acc = predicted.iter().zip(&shuffled).filter(|(p, l)| p == l).count() as f64 / samples as f64;
            values.push(acc);
        }
        series.push(Series {
            kind: "labels shuffled (fraction)".into(),
            metric: format!("class accuracy [{}]", judge.name()),
            levels: fractions.to_vec(),
            monotone: monotone(&values, false),
            values,
        });
    }
    Ok(DegradationCheck { extractor: extractor.name(), reference_samples, samples, series })
}

/// The checks as a Markdown table.
pub fn markdown(checks: &[DegradationCheck]) -> String {
    let mut s =
        String::from("| features | degradation | metric | levels → values | monotone |\n|---|---|---|---|---|\n");
    for c in checks {
        for x in &c.series {
            let pairs: Vec<String> = x.levels.iter().zip(&x.values).map(|(l, v)| format!("{l}: {v:.3}")).collect();
            s.push_str(&format!(
                "| {} | {} | {} | {} | {} |\n",
                c.extractor,
                x.kind,
                x.metric,
                pairs.join(", "),
                if x.monotone { "yes" } else { "**no**" }
            ));
        }
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::classifier::DataSetName;
    use dddit_data::ShapesConfig;

    #[test]
    fn blur_keeps_constants_and_means() {
        let img: Vec<f32> = (0..16).map(|i| (i % 4) as f32).collect();
        let b = blurred(&img, 4, 1);
        assert!(b.iter().all(|v| v.is_finite()));
        let flat = vec![0.3f32; 16];
        assert!(blurred(&flat, 4, 2).iter().all(|v| (v - 0.3).abs() < 1e-6));
        assert_eq!(blurred(&img, 4, 0), img);
        assert!(monotone(&[1.0, 2.0, 3.0], true) && !monotone(&[1.0, 3.0, 2.0], true));
    }

    #[test]
    fn the_shapes_classifier_ranks_known_degradations() {
        let dev = dddit_core::testing::device();
        let clf = Classifier::pretrained(DataSetName::Shapes, &dev).unwrap();
        let reference = ShapesConfig::new(32, 600).init().unwrap();
        let held = ShapesConfig::new(32, 800).with_seed(1).init().unwrap();
        let check = degradation_check(&clf, Some(&clf), &reference, &held, 600, 200, 0, &dev).unwrap();
        assert!(check.passed(), "{}", markdown(std::slice::from_ref(&check)));
        assert_eq!(check.series.len(), 4);
    }
}
