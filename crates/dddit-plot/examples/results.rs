//! Renders the two kinds of result plot dddit's runner makes, from made-up numbers, to look at:
//! `cargo run -p dddit-plot --example results -- /tmp/plot-example` writes
//! `/tmp/plot-example.{svg,png}` (quality vs GFLOPs) and `/tmp/plot-example-timesteps.{svg,png}`
//! (compute by timestep range, a categorical x axis).

use std::path::PathBuf;

use dddit_plot::{Chart, Point, Series};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let stem = PathBuf::from(std::env::args().nth(1).unwrap_or_else(|| "/tmp/plot-example".into()));

    let mut pareto = Chart::new("FD vs compute (shapes, 32x32)", "GFLOPs per sample", "FD (lower is better)");
    pareto
        .series
        .push(Series::scatter("dense DiT-S", vec![Point::new(12.4, 31.0).with_y_err(1.2).with_label("dense")]));
    pareto.series.push(Series::line(
        "token router, λ sweep",
        vec![
            Point::new(9.8, 31.9).with_y_err(1.0).with_label("λ=0.01"),
            Point::new(7.1, 33.5).with_y_err(1.4).with_x_err(0.3).with_label("λ=0.03"),
            Point::new(5.2, 38.2).with_y_err(2.1).with_label("λ=0.1"),
            Point::new(3.9, 47.5).with_y_err(3.0).with_label("λ=0.3"),
        ],
    ));
    pareto.series.push(Series::scatter(
        "layer skip (static)",
        vec![Point::new(9.3, 36.0).with_y_err(0.8), Point::new(6.2, 44.1).with_y_err(1.5)],
    ));
    pareto.pareto_min = true;
    pareto.note = Some("FD on classifier features, 200 samples, mean ± std over 2 seeds".into());
    save(&pareto, &stem)?;

    let ranges = ["[0,250)", "[250,500)", "[500,750)", "[750,1000]"];
    let mut steps = Chart::new("Compute by timestep range", "timestep t ∈ range", "GFLOPs per step");
    steps.x_ticks = Some(ranges.iter().enumerate().map(|(i, r)| (i as f64, r.to_string())).collect());
    for (name, vals) in [("λ=0.01", [0.31, 0.29, 0.26, 0.22]), ("λ=0.1", [0.27, 0.21, 0.16, 0.12])] {
        let pts = vals.iter().enumerate().map(|(i, &v)| Point::new(i as f64, v).with_y_err(0.01)).collect();
        steps.series.push(Series::line(name, pts));
    }
    steps.series.push(Series {
        name: "dense".into(),
        points: (0..4).map(|i| Point::new(i as f64, 0.33)).collect(),
        line: true,
        markers: false,
        color: Some([80, 80, 80]),
    });
    let mut ts = stem.clone().into_os_string();
    ts.push("-timesteps");
    save(&steps, &PathBuf::from(ts))
}

/// Writes `<stem>.svg` and `<stem>.png` (the runner writes its plots atomically instead).
fn save(chart: &Chart, stem: &std::path::Path) -> Result<(), Box<dyn std::error::Error>> {
    let (w, h) = (dddit_plot::DEFAULT_WIDTH, dddit_plot::DEFAULT_HEIGHT);
    std::fs::write(stem.with_extension("svg"), chart.to_svg(w, h)?)?;
    std::fs::write(stem.with_extension("png"), chart.to_png(w, h)?)?;
    Ok(())
}
