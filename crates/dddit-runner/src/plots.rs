//! The experiment's plots: quality against GFLOPs per sample (with the Pareto frontier) for
//! each feature extractor, and compute by timestep range, as SVG and PNG.

use crate::error::RunnerError;
use crate::table::Table;
use dddit_plot::{Chart, Point, Series};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// Writes the plots of `table` into `dir`; returns the file stems written.
pub fn write(table: &Table, dir: &Path) -> Result<Vec<PathBuf>, RunnerError> {
    let mut written = Vec::new();
    let plot_err = |p: &Path, e: dddit_plot::PlotError| RunnerError::io(p, e);
    let Some(first) = table.rows.first() else { return Ok(written) };
    let seeds = table.rows.iter().map(|r| r.seeds.len()).min().unwrap_or(0);
    for (i, f) in first.features.iter().enumerate() {
        let mut chart = Chart::new(
            format!("{}: quality vs compute", table.experiment),
            "GFLOPs per sample (sampling trajectory)",
            format!("FD [{}] (lower is better)", f.extractor),
        );
        chart.pareto_min = true;
        chart.note = Some(format!(
            "{} generated vs {} real; mean ± std over {} seed(s); dashed: Pareto frontier",
            f.generated, f.reference, seeds
        ));
        let mut by_router: BTreeMap<String, Vec<Point>> = BTreeMap::new();
        for r in &table.rows {
            let Some(x) = r.features.get(i) else { continue };
            by_router.entry(r.router.clone()).or_default().push(Point {
                x: r.gflops.mean,
                y: x.fd.mean,
                y_err: (x.fd.n > 1).then_some(x.fd.std),
                x_err: (r.gflops.n > 1 && r.gflops.std > 0.0).then_some(r.gflops.std),
                label: Some(r.point.clone()),
            });
        }
        chart.series = by_router
            .into_iter()
            .map(|(name, points)| Series { name, points, line: false, markers: true, color: None })
            .collect();
        let short: String = f.extractor.split('-').take(2).collect::<Vec<_>>().join("-");
        let stem = dir.join(format!("pareto-{short}"));
        chart.save(&stem).map_err(|e| plot_err(&stem, e))?;
        written.push(stem);
    }
    if !first.by_t.is_empty() {
        let mut chart = Chart::new(
            format!("{}: compute by timestep", table.experiment),
            "timestep range",
            "GFLOPs relative to dense",
        );
        chart.x_ticks =
            Some(first.by_t.iter().enumerate().map(|(i, t)| (i as f64, format!("[{}, {})", t.t_lo, t.t_hi))).collect());
        chart.note = Some(format!("mean over {} seed(s); t = 0 is the clean image", seeds));
        chart.series = table
            .rows
            .iter()
            .map(|r| Series {
                name: r.point.clone(),
                points: r
                    .by_t
                    .iter()
                    .enumerate()
                    .map(|(i, t)| Point { x: i as f64, y: t.gflops_ratio.mean, y_err: None, x_err: None, label: None })
                    .collect(),
                line: true,
                markers: true,
                color: None,
            })
            .collect();
        let stem = dir.join("compute-by-t");
        chart.save(&stem).map_err(|e| plot_err(&stem, e))?;
        written.push(stem);
    }
    if table.rows.iter().any(|r| r.captions.is_some()) {
        let mut chart = Chart::new(
            format!("{}: compute by caption complexity", table.experiment),
            "objects in the caption",
            "GFLOPs relative to dense",
        );
        chart.note = Some(format!("mean over {} seed(s) of each sample's trajectory GFLOPs / dense DiT", seeds));
        chart.series = table
            .rows
            .iter()
            .filter_map(|r| r.captions.as_ref().map(|c| (r, c)))
            .map(|(r, c)| Series {
                name: r.point.clone(),
                points: c
                    .by_objects
                    .iter()
                    .map(|(k, g, _, _)| Point {
                        x: *k as f64,
                        y: g.mean,
                        y_err: (g.n > 1).then_some(g.std),
                        x_err: None,
                        label: None,
                    })
                    .collect(),
                line: true,
                markers: true,
                color: None,
            })
            .collect();
        let stem = dir.join("compute-by-objects");
        chart.save(&stem).map_err(|e| plot_err(&stem, e))?;
        written.push(stem);
    }
    Ok(written)
}
