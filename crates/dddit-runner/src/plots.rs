//! The experiment's plots: quality against GFLOPs per sample (with the Pareto frontier) for
//! each feature extractor, and compute by timestep range, as SVG and PNG.

use crate::error::RunnerError;
use crate::table::{Row, Table};
use dddit_plot::{Chart, Point, Series};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// Writes `<stem>.svg` and `<stem>.png` of the default size, each atomically
/// ([`dddit_core::atomic`]); the extensions are appended, so a stem may contain dots.
pub fn save(chart: &Chart, stem: &Path) -> Result<(), RunnerError> {
    let (w, h) = (dddit_plot::DEFAULT_WIDTH, dddit_plot::DEFAULT_HEIGHT);
    let with = |ext: &str| {
        let mut s = stem.as_os_str().to_owned();
        s.push(ext);
        PathBuf::from(s)
    };
    let svg = chart.to_svg(w, h).map_err(|e| RunnerError::io(with(".svg"), e))?;
    let png = chart.to_png(w, h).map_err(|e| RunnerError::io(with(".png"), e))?;
    for (path, bytes) in [(with(".svg"), svg.into_bytes()), (with(".png"), png)] {
        dddit_core::atomic::write(&path, &bytes).map_err(|e| RunnerError::io(&path, e))?;
    }
    Ok(())
}

/// Writes the plots of `table` into `dir`; returns the file stems written.
pub fn write(table: &Table, dir: &Path) -> Result<Vec<PathBuf>, RunnerError> {
    let mut written = Vec::new();
    let Some(first) = table.rows.first() else { return Ok(written) };
    let seeds = table.rows.iter().map(|r| r.seeds.len()).min().unwrap_or(0);
    let names = names(&table.rows);
    for (i, f) in first.features.iter().enumerate() {
        let mut chart = Chart::new(
            format!("{}: quality vs compute", table.experiment),
            "GFLOPs per sample (sampling trajectory)",
            format!("FD [{}] (lower is better)", f.extractor),
        );
        chart.pareto_min = true;
        chart.note =
            Some(format!("{} generated vs {} real; mean ± std over {} seed(s)", f.generated, f.reference, seeds));
        let mut by_router: BTreeMap<String, Vec<Point>> = BTreeMap::new();
        for (r, (_, suffix)) in table.rows.iter().zip(&names) {
            let Some(x) = r.features.get(i) else { continue };
            by_router.entry(r.router.clone()).or_default().push(Point {
                x: r.gflops.mean,
                y: x.fd.mean,
                y_err: (x.fd.n > 1).then_some(x.fd.std),
                x_err: (r.gflops.n > 1 && r.gflops.std > 0.0).then_some(r.gflops.std),
                label: (!suffix.is_empty()).then(|| suffix.clone()),
            });
        }
        chart.series = by_router
            .into_iter()
            .map(|(name, points)| Series { name, points, line: false, markers: true, color: None })
            .collect();
        let short: String = f.extractor.split('-').take(2).collect::<Vec<_>>().join("-");
        let stem = dir.join(format!("pareto-{short}"));
        save(&chart, &stem)?;
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
            .zip(&names)
            .map(|(r, (name, _))| Series {
                name: name.clone(),
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
        save(&chart, &stem)?;
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
            .zip(&names)
            .filter_map(|(r, (name, _))| r.captions.as_ref().map(|c| (name, c)))
            .map(|(name, c)| Series {
                name: name.clone(),
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
        save(&chart, &stem)?;
        written.push(stem);
    }
    Ok(written)
}

/// Readable names for the rows of a table, as `(name, suffix)`: the suffix tells a row apart
/// from the other rows of its router (the sweep settings that differ among them, e.g.
/// `flops_target=0.3`) or, for a router with one row, lists its keys (`experts=4, k=1`); the
/// name is the router followed by the suffix. Point names join every swept key and value and
/// are cut off in legends and point labels, where the part that differs was lost.
fn names(rows: &[Row]) -> Vec<(String, String)> {
    let flat: Vec<BTreeMap<String, String>> = rows.iter().map(|r| flatten_settings(&r.settings)).collect();
    rows.iter()
        .zip(&flat)
        .map(|(r, mine)| {
            let same: Vec<&BTreeMap<String, String>> =
                rows.iter().zip(&flat).filter(|(o, _)| o.router == r.router).map(|(_, f)| f).collect();
            let parts: Vec<String> = if same.len() == 1 {
                r.router_keys.iter().map(|(k, v)| format!("{k}={}", value_text(v))).collect()
            } else {
                mine.iter()
                    .filter(|(k, v)| same.iter().any(|o| o.get(*k) != Some(*v)))
                    .map(|(k, v)| format!("{}={v}", k.rsplit('.').next().unwrap_or(k)))
                    .collect()
            };
            let suffix = parts.join(", ");
            let name = if suffix.is_empty() { r.router.clone() } else { format!("{} {suffix}", r.router) };
            (name, suffix)
        })
        .collect()
}

/// `{"router": {"kind": "topk", "k": 2}, "train.lr": 0.1}` → `router.kind = topk`,
/// `router.k = 2`, `train.lr = 0.1`.
fn flatten_settings(settings: &BTreeMap<String, serde_json::Value>) -> BTreeMap<String, String> {
    fn walk(prefix: &str, v: &serde_json::Value, out: &mut BTreeMap<String, String>) {
        match v {
            serde_json::Value::Object(m) => m.iter().for_each(|(k, v)| walk(&format!("{prefix}.{k}"), v, out)),
            other => {
                out.insert(prefix.to_string(), value_text(other));
            }
        }
    }
    let mut out = BTreeMap::new();
    settings.iter().for_each(|(k, v)| walk(k, v, &mut out));
    out
}

/// A setting's value as written in a label: strings without quotes.
fn value_text(v: &serde_json::Value) -> String {
    match v {
        serde_json::Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn row(router: &str, keys: serde_json::Value, settings: serde_json::Value) -> Row {
        let map = |v: serde_json::Value| v.as_object().unwrap().clone().into_iter().collect();
        Row {
            point: "a-long-point-name".into(),
            point_index: 0,
            router: router.into(),
            router_keys: map(keys),
            settings: map(settings),
            seeds: vec![0],
            train_steps: 1,
            gflops: crate::table::Stat::of(&[1.0]),
            gflops_ratio: crate::table::Stat::of(&[1.0]),
            train_flops_ratio: None,
            ms_batch1: None,
            ms_batch: None,
            timing_batch: None,
            device: "flex".into(),
            features: vec![],
            class_accuracy: BTreeMap::new(),
            adherence: None,
            by_t: vec![],
            captions: None,
            vs_dense: BTreeMap::new(),
        }
    }

    #[test]
    fn names_keep_what_tells_rows_apart() {
        // A budget sweep: dense once, the width router at two budgets.
        let dw = json!({"kind": "dynamic-width", "mlp_groups": 4});
        let rows = [
            row("dense", json!({}), json!({"router": {"kind": "dense"}, "train.loss.flops_target": 1.0})),
            row("dynamic-width", json!({"mlp_groups": 4}), json!({"router": dw, "train.loss.flops_target": 0.3})),
            row("dynamic-width", json!({"mlp_groups": 4}), json!({"router": dw, "train.loss.flops_target": 0.45})),
        ];
        let n = names(&rows);
        assert_eq!(n[0], ("dense".to_string(), String::new()));
        assert_eq!(n[1], ("dynamic-width flops_target=0.3".to_string(), "flops_target=0.3".to_string()));
        assert_eq!(n[2].1, "flops_target=0.45");
        // One row per router: its keys; a router key swept within one router: that key.
        let rows = [
            row("topk", json!({"experts": 4, "k": 1}), json!({"router": {"kind": "topk", "experts": 4, "k": 1}})),
            row("timestep-gate", json!({"policy": "learned"}), json!({"router": {"kind": "timestep-gate"}})),
        ];
        let n = names(&rows);
        assert_eq!(n[0].0, "topk experts=4, k=1");
        assert_eq!(n[1].0, "timestep-gate policy=learned");
        let rows = [
            row("topk", json!({"k": 1}), json!({"router.k": 1, "train.lr": 0.1})),
            row("topk", json!({"k": 2}), json!({"router.k": 2, "train.lr": 0.1})),
        ];
        assert_eq!(names(&rows)[1], ("topk k=2".to_string(), "k=2".to_string()));
    }

    #[test]
    fn save_writes_both_files_without_leftovers() {
        let dir = std::env::temp_dir().join(format!("dddit-plots-save-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let stem = dir.join("sub").join("fd.vs.gflops");
        let mut chart = Chart::new("FD vs GFLOPs", "GFLOPs", "FD");
        chart.series.push(Series::scatter("dense", vec![Point::new(1.0, 2.0)]));
        save(&chart, &stem).unwrap();
        assert!(std::fs::read_to_string(dir.join("sub/fd.vs.gflops.svg")).unwrap().contains("FD vs GFLOPs"));
        assert!(std::fs::read(dir.join("sub/fd.vs.gflops.png")).unwrap().starts_with(b"\x89PNG"));
        let mut names: Vec<String> = std::fs::read_dir(dir.join("sub"))
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        assert_eq!(names, ["fd.vs.gflops.png", "fd.vs.gflops.svg"]);
        // A path that cannot be written names itself.
        let blocker = dir.join("not-a-dir");
        std::fs::write(&blocker, b"").unwrap();
        let err = save(&chart, &blocker.join("plot")).unwrap_err();
        assert!(err.to_string().contains("not-a-dir"), "{err}");
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
