//! Evaluation of caption-conditioned runs: samples are drawn for the captions of held-out
//! scenes, the shapes detector checks every object of each caption, and the compute each sample
//! spent is set against how complex its caption is (the seed's text-aware budget, §4.1).

use crate::adherence::{adherence, Adherence, Detection};
use dddit_data::ObjectSpec;
use serde::{Deserialize, Serialize};

/// Scenes whose captions are sampled: caption, label and ground-truth objects of each.
#[derive(Clone, Debug, Default)]
pub struct Scenes {
    /// Captions.
    pub captions: Vec<String>,
    /// Data-set labels (shapes: the kind of the first large object).
    pub labels: Vec<usize>,
    /// Objects of each caption (empty for data without object annotations).
    pub objects: Vec<Vec<ObjectSpec>>,
}

/// Compute and adherence of the samples whose captions name the same number of objects.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ObjectCountRow {
    /// Objects in the caption.
    pub objects: usize,
    /// Samples.
    pub samples: usize,
    /// Mean GFLOPs of a sample's trajectory relative to the dense DiT.
    pub gflops_ratio: f64,
    /// Standard deviation of that ratio over the samples.
    pub gflops_ratio_std: f64,
    /// Fraction of samples matching their caption exactly (detector).
    pub exact_match: f64,
    /// Mean fraction of caption objects found with the right kind, colour and cell.
    pub object_recall: f64,
}

/// Adherence of the samples that spent the same compute (for a budget router: one budget level).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct BudgetRow {
    /// GFLOPs of the trajectory relative to the dense DiT, rounded to 0.01 (the level).
    pub gflops_ratio: f64,
    /// Samples at this level.
    pub samples: usize,
    /// Mean number of objects in their captions.
    pub mean_objects: f64,
    /// Fraction matching their caption exactly (`NaN` without annotations).
    pub exact_match: f64,
    /// Mean object recall (`NaN` without annotations).
    pub object_recall: f64,
}

/// What `eval.json` reports about a caption-conditioned run.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct CaptionReport {
    /// The caption encoder used (the one the run was trained with).
    pub encoder: String,
    /// Captions sampled.
    pub samples: usize,
    /// Fraction of samples matching their caption exactly: every object with the right kind,
    /// colour, size and cell and nothing else (shapes only; `None` without annotations).
    pub exact_match: Option<f64>,
    /// Mean object recall.
    pub object_recall: Option<f64>,
    /// Mean fraction of caption objects whose cell holds the right kind.
    pub kind_accuracy: Option<f64>,
    /// … the right colour.
    pub colour_accuracy: Option<f64>,
    /// … the right size class.
    pub size_accuracy: Option<f64>,
    /// … any detection.
    pub cell_accuracy: Option<f64>,
    /// Fraction of samples with as many detections as caption objects.
    pub count_accuracy: Option<f64>,
    /// Pearson correlation between the number of objects in a caption and the compute its
    /// sample spent (`None` when either does not vary, e.g. a dense model).
    pub compute_vs_objects: Option<f64>,
    /// The same by object count.
    pub by_objects: Vec<ObjectCountRow>,
    /// Adherence at each compute level (budget), lowest first.
    #[serde(default)]
    pub by_budget: Vec<BudgetRow>,
}

/// Pearson correlation of `x` and `y` (`None` when either is constant or there are < 2 pairs).
pub fn pearson(x: &[f64], y: &[f64]) -> Option<f64> {
    let n = x.len().min(y.len());
    if n < 2 {
        return None;
    }
    let (mx, my) = (x[..n].iter().sum::<f64>() / n as f64, y[..n].iter().sum::<f64>() / n as f64);
    let (mut sxy, mut sxx, mut syy) = (0.0, 0.0, 0.0);
    for i in 0..n {
        let (dx, dy) = (x[i] - mx, y[i] - my);
        sxy += dx * dy;
        sxx += dx * dx;
        syy += dy * dy;
    }
    let d = (sxx * syy).sqrt();
    (d > 1e-12 * n as f64).then(|| sxy / d)
}

/// The report of `scenes` sampled with per-sample compute `ratio` (relative to dense) and,
/// where the data has object annotations, the detector's `detections` of each sample.
pub fn caption_report(
    encoder: &str,
    scenes: &Scenes,
    ratio: &[f64],
    detections: Option<&[Vec<Detection>]>,
) -> CaptionReport {
    let n = ratio.len();
    let adh: Option<Vec<Adherence>> =
        detections.map(|d| (0..n).map(|i| adherence(&scenes.objects[i], &d[i])).collect());
    let mean = |f: &dyn Fn(&Adherence) -> f64| adh.as_ref().map(|a| a.iter().map(f).sum::<f64>() / n.max(1) as f64);
    let counts: Vec<f64> = (0..n).map(|i| scenes.objects[i].len() as f64).collect();
    let mut by_objects = Vec::new();
    let max = scenes.objects.iter().take(n).map(|o| o.len()).max().unwrap_or(0);
    for k in 0..=max {
        let idx: Vec<usize> = (0..n).filter(|&i| scenes.objects[i].len() == k).collect();
        if idx.is_empty() {
            continue;
        }
        let r: Vec<f64> = idx.iter().map(|&i| ratio[i]).collect();
        let m = r.iter().sum::<f64>() / r.len() as f64;
        let sd = if r.len() > 1 {
            (r.iter().map(|v| (v - m).powi(2)).sum::<f64>() / (r.len() - 1) as f64).sqrt()
        } else {
            0.0
        };
        let (exact, recall) = match &adh {
            Some(a) => (
                idx.iter().filter(|&&i| a[i].exact_match).count() as f64 / idx.len() as f64,
                idx.iter().map(|&i| a[i].object_recall).sum::<f64>() / idx.len() as f64,
            ),
            None => (f64::NAN, f64::NAN),
        };
        by_objects.push(ObjectCountRow {
            objects: k,
            samples: idx.len(),
            gflops_ratio: m,
            gflops_ratio_std: sd,
            exact_match: exact,
            object_recall: recall,
        });
    }
    let mut levels: Vec<i64> = ratio.iter().map(|r| (r * 100.0).round() as i64).collect();
    levels.sort_unstable();
    levels.dedup();
    let by_budget = levels
        .into_iter()
        .map(|level| {
            let idx: Vec<usize> = (0..n).filter(|&i| (ratio[i] * 100.0).round() as i64 == level).collect();
            let m = idx.len() as f64;
            let (exact, recall) = match &adh {
                Some(a) => (
                    idx.iter().filter(|&&i| a[i].exact_match).count() as f64 / m,
                    idx.iter().map(|&i| a[i].object_recall).sum::<f64>() / m,
                ),
                None => (f64::NAN, f64::NAN),
            };
            BudgetRow {
                gflops_ratio: level as f64 / 100.0,
                samples: idx.len(),
                mean_objects: idx.iter().map(|&i| counts[i]).sum::<f64>() / m,
                exact_match: exact,
                object_recall: recall,
            }
        })
        .collect();
    CaptionReport {
        by_budget,
        encoder: encoder.to_string(),
        samples: n,
        exact_match: mean(&|a| f64::from(u8::from(a.exact_match))),
        object_recall: mean(&|a| a.object_recall),
        kind_accuracy: mean(&|a| a.kind_accuracy()),
        colour_accuracy: mean(&|a| a.colour_accuracy()),
        size_accuracy: mean(&|a| a.size_accuracy()),
        cell_accuracy: mean(&|a| a.cell_accuracy()),
        count_accuracy: mean(&|a| f64::from(u8::from(a.count_correct))),
        compute_vs_objects: if detections.is_some() || scenes.objects.iter().any(|o| !o.is_empty()) {
            pearson(&counts, ratio)
        } else {
            None
        },
        by_objects,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn samples_are_grouped_by_compute_level() {
        use dddit_data::{Dataset, ShapesConfig};
        let one = ShapesConfig::new(16, 1).init().unwrap().get(0).objects[0];
        let obj = |n: usize| vec![one; n];
        let scenes = Scenes {
            captions: vec![String::new(); 4],
            labels: vec![0; 4],
            objects: vec![obj(1), obj(1), obj(3), obj(3)],
        };
        let r = caption_report("hashed", &scenes, &[0.5, 0.501, 1.0, 1.0], None);
        assert_eq!(r.by_budget.len(), 2);
        assert_eq!((r.by_budget[0].gflops_ratio, r.by_budget[0].samples, r.by_budget[0].mean_objects), (0.5, 2, 1.0));
        assert_eq!((r.by_budget[1].gflops_ratio, r.by_budget[1].samples, r.by_budget[1].mean_objects), (1.0, 2, 3.0));
        assert!((r.compute_vs_objects.unwrap() - 1.0).abs() < 1e-3);
        assert_eq!(r.by_objects.iter().map(|b| b.samples).collect::<Vec<_>>(), [2, 2]);
    }

    #[test]
    fn pearson_of_known_series() {
        assert!((pearson(&[1.0, 2.0, 3.0], &[2.0, 4.0, 6.0]).unwrap() - 1.0).abs() < 1e-12);
        assert!((pearson(&[1.0, 2.0, 3.0], &[3.0, 2.0, 1.0]).unwrap() + 1.0).abs() < 1e-12);
        assert_eq!(pearson(&[1.0, 2.0, 3.0], &[5.0, 5.0, 5.0]), None, "constant compute: no correlation");
        assert_eq!(pearson(&[1.0], &[1.0]), None);
        let r = pearson(&[1.0, 2.0, 3.0, 4.0], &[1.0, 3.0, 2.0, 4.0]).unwrap();
        assert!((r - 0.8).abs() < 1e-12, "{r}");
    }
}
