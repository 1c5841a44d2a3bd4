//! Lays a [`Chart`] out as a [`Scene`]: data ranges, margins sized to the tick labels, ticks,
//! grid, series (lines, error bars, markers, labels), the Pareto frontier, title, axis labels,
//! note and legend. Inputs that cannot be drawn (NaN, infinities, non-positive values on a log
//! axis) are skipped; long texts are truncated.

use crate::chart::{Chart, Point, Rgb};
use crate::font::ascii_len;
use crate::legend::Legend;
use crate::pareto::pareto_front;
use crate::scale::{self, Scale};
use crate::scene::{truncate, Anchor, Scene, Shape, Stroke, TextSize};

const PAD: f64 = 10.0;
const TICK: f64 = 5.0;
/// Width (and height) of a small character cell, in pixels.
const CH: f64 = 8.0;
const MARKER_R: f64 = 4.5;
const TEXT: Rgb = [30, 30, 30];
const MUTED: Rgb = [90, 90, 90];
const AXIS: Rgb = [70, 70, 70];
const GRID: Rgb = [226, 226, 226];
/// How the Pareto frontier is drawn (in the plot and the legend).
pub(crate) const FRONT_STROKE: Stroke = Stroke { color: [150, 150, 150], width: 4.0, dash: Some((8.0, 5.0)) };
const WHITE: Rgb = [255, 255, 255];
/// Longest label printed beside a point or under a custom tick, in characters.
const MAX_LABEL: usize = 24;

/// The nearest pixel centre, so 1-pixel lines are crisp in both outputs.
fn crisp(v: f64) -> f64 {
    (v - 0.5).round() + 0.5
}

/// A point that can be drawn, with its pixel position and series.
struct Drawn<'a> {
    series: usize,
    px: f64,
    py: f64,
    point: &'a Point,
}

/// The axis ticks: transformed position and label.
type Ticks = Vec<(f64, String)>;

/// Automatic ticks for the transformed range `lo..hi`.
fn auto_ticks(lo: f64, hi: f64, log: bool, target: usize) -> Ticks {
    let values =
        if log { scale::log_ticks(10f64.powf(lo), 10f64.powf(hi), target) } else { scale::nice_ticks(lo, hi, target) };
    let labels = scale::format_ticks(&values);
    values.into_iter().zip(labels).filter_map(|(v, l)| scale::transform(v, log).map(|t| (t, l))).collect()
}

/// Show every n-th tick label so that labels of `extent` pixels (plus a gap) do not overlap.
fn label_stride(pixels: &[f64], extent: f64) -> usize {
    let mut sorted: Vec<f64> = pixels.to_vec();
    sorted.sort_by(f64::total_cmp);
    let spacing = sorted.windows(2).map(|w| w[1] - w[0]).fold(f64::INFINITY, f64::min);
    if spacing.is_finite() && spacing > 0.0 {
        ((extent / spacing).ceil() as usize).max(1)
    } else {
        1
    }
}

/// Transformed values that the range of one axis must cover: drawable points and the ends of
/// their error bars on that axis.
fn axis_values(points: &[Drawn], x_axis: bool, log: bool) -> Vec<f64> {
    let mut ts = Vec::new();
    for d in points {
        let (v, err) = if x_axis { (d.point.x, d.point.x_err) } else { (d.point.y, d.point.y_err) };
        ts.extend(scale::transform(v, log));
        if let Some(e) = err.filter(|e| e.is_finite()).map(f64::abs) {
            ts.extend(scale::transform(v - e, log));
            ts.extend(scale::transform(v + e, log));
        }
    }
    ts
}

/// The plot area's edges, in whole pixels.
#[derive(Debug, Clone, Copy)]
struct Area {
    left: f64,
    top: f64,
    right: f64,
    bottom: f64,
}

/// One axis laid out: its scale, ticks, their pixel positions, and which labels are shown
/// (every `stride`-th in pixel order).
struct Axis {
    scale: Scale,
    ticks: Ticks,
    px: Vec<f64>,
    stride: usize,
}

impl Axis {
    /// Lays out `ticks` on `scale`, thinning labels `extent` pixels long (plus a gap).
    fn new(scale: Scale, ticks: Ticks, extent: impl Fn(&Ticks) -> f64) -> Axis {
        let px: Vec<f64> = ticks.iter().map(|t| scale.px_t(t.0)).collect();
        let stride = label_stride(&px, extent(&ticks));
        Axis { scale, ticks, px, stride }
    }

    /// Tick indices in pixel order, each with whether its label is shown.
    fn labelled(&self) -> Vec<(usize, bool)> {
        let mut order: Vec<usize> = (0..self.px.len()).collect();
        order.sort_by(|&a, &b| self.px[a].total_cmp(&self.px[b]));
        order.into_iter().enumerate().map(|(rank, i)| (i, rank % self.stride == 0)).collect()
    }
}

/// The chart laid out on a `width` × `height` image.
pub(crate) fn build(chart: &Chart, width: u32, height: u32) -> Scene {
    let (w, h) = (f64::from(width), f64::from(height));
    let mut scene = Scene { width, height, clip: (0.0, 0.0, w, h), items: Vec::new() };
    scene.push(Shape::Rect { x: 0.0, y: 0.0, w, h, fill: Some(WHITE), stroke: None });

    // Drawable points (pixel positions filled in once the scales are known).
    let mut drawn: Vec<Drawn> = Vec::new();
    for (series, s) in chart.series.iter().enumerate() {
        for point in &s.points {
            if scale::transform(point.x, chart.x_log).is_some() && scale::transform(point.y, chart.y_log).is_some() {
                drawn.push(Drawn { series, px: 0.0, py: 0.0, point });
            }
        }
    }
    let custom: Option<Ticks> = chart.x_ticks.as_ref().map(|ticks| {
        ticks
            .iter()
            .filter_map(|(v, l)| scale::transform(*v, chart.x_log).map(|t| (t, truncate(l, MAX_LABEL))))
            .collect()
    });

    // Ranges; custom (categorical) ticks are covered with half a category of margin.
    let mut xt = axis_values(&drawn, true, chart.x_log);
    let mut x_min_pad = 0.0;
    if let Some(c) = custom.as_ref().filter(|c| !c.is_empty()) {
        let lo = c.iter().map(|t| t.0).fold(f64::INFINITY, f64::min);
        let hi = c.iter().map(|t| t.0).fold(f64::NEG_INFINITY, f64::max);
        x_min_pad = if c.len() > 1 && hi > lo { 0.5 * (hi - lo) / (c.len() - 1) as f64 } else { 0.5 };
        xt.extend(c.iter().map(|t| t.0));
    }
    let (x_lo, x_hi) = scale::padded_range(&xt, chart.x_log, x_min_pad);
    let (y_lo, y_hi) = scale::padded_range(&axis_values(&drawn, false, chart.y_log), chart.y_log, 0.0);

    // Vertical layout, then the y axis, whose labels size the left margin.
    let has_title = !chart.title.trim().is_empty();
    let has_xlabel = !chart.x_label.trim().is_empty();
    let has_ylabel = !chart.y_label.trim().is_empty();
    let note = chart.note.as_deref().filter(|n| !n.trim().is_empty());
    let top = (PAD + if has_title { 30.0 } else { 4.0 }).round();
    let bottom_margin =
        TICK + 4.0 + CH + if has_xlabel { 12.0 + CH } else { 0.0 } + if note.is_some() { 10.0 + CH } else { 0.0 } + PAD;
    let bottom = (h - bottom_margin).round().max(top + 1.0);
    let y_scale = Scale { log: chart.y_log, t_lo: y_lo, t_hi: y_hi, p_lo: bottom, p_hi: top };
    let y_target = (((bottom - top) / 45.0).round() as usize).clamp(2, 10);
    let y = Axis::new(y_scale, auto_ticks(y_lo, y_hi, chart.y_log, y_target), |_| CH + 4.0);
    let y_label_w = y
        .labelled()
        .iter()
        .filter(|(_, shown)| *shown)
        .map(|&(i, _)| ascii_len(&y.ticks[i].1) as f64 * CH)
        .fold(0.0, f64::max);
    let left = (PAD + if has_ylabel { CH + 10.0 } else { 0.0 } + y_label_w + 4.0 + TICK).min(0.4 * w).round();

    // The legend goes right of the plot when there is room for it; then the x axis.
    let front: Vec<usize> = if chart.pareto_min {
        pareto_front(&drawn.iter().map(|d| (d.point.x, d.point.y)).collect::<Vec<_>>())
    } else {
        Vec::new()
    };
    let legend = Legend::new(chart, front.len() >= 2, w);
    let show_legend = !legend.is_empty() && w - left - legend.width - 12.0 - PAD >= 0.35 * w;
    let right = if show_legend { w - PAD - legend.width - 12.0 } else { w - PAD - 14.0 };
    let right = right.round().max(left + 1.0);
    let area = Area { left, top, right, bottom };
    let x_scale = Scale { log: chart.x_log, t_lo: x_lo, t_hi: x_hi, p_lo: left, p_hi: right };
    let x_ticks = custom.unwrap_or_else(|| {
        let target = (((right - left) / 90.0).round() as usize).clamp(2, 10);
        auto_ticks(x_lo, x_hi, chart.x_log, target)
    });
    let widest = |t: &Ticks| t.iter().map(|t| ascii_len(&t.1)).max().unwrap_or(0) as f64 * CH + 10.0;
    let x = Axis::new(x_scale, x_ticks, widest);
    scene.clip = (left, top, right - left, bottom - top);

    grid(&mut scene, area, &x, &y);
    for d in &mut drawn {
        d.px = x.scale.px(d.point.x).unwrap_or(f64::NAN);
        d.py = y.scale.px(d.point.y).unwrap_or(f64::NAN);
    }
    data(&mut scene, chart, &drawn, &front, (&x.scale, &y.scale), area);
    axes(&mut scene, area, &x, &y);
    texts(&mut scene, chart, note, area);
    if show_legend {
        legend.draw(&mut scene, right + 12.0, top, bottom);
    }
    scene
}

/// Light grid lines at the ticks.
fn grid(scene: &mut Scene, a: Area, x: &Axis, y: &Axis) {
    for &py in &y.px {
        let points = vec![(a.left, crisp(py)), (a.right, crisp(py))];
        scene.push_clipped(Shape::Polyline { points, stroke: Stroke::solid(GRID, 1.0) });
    }
    for &px in &x.px {
        let points = vec![(crisp(px), a.top), (crisp(px), a.bottom)];
        scene.push_clipped(Shape::Polyline { points, stroke: Stroke::solid(GRID, 1.0) });
    }
}

/// The Pareto frontier, series lines, error bars, markers and point labels, clipped to the plot.
fn data(scene: &mut Scene, chart: &Chart, drawn: &[Drawn], front: &[usize], (xs, ys): (&Scale, &Scale), a: Area) {
    // Pareto frontier: wide, light and dashed, under the series lines, so that it still shows as
    // a dashed halo where a series line follows it.
    if front.len() >= 2 {
        let points = front.iter().map(|&i| (drawn[i].px, drawn[i].py)).collect();
        scene.push_clipped(Shape::Polyline { points, stroke: FRONT_STROKE });
    }

    // Series lines, broken where a point cannot be drawn.
    for (si, s) in chart.series.iter().enumerate().filter(|(_, s)| s.line) {
        let stroke = Stroke::solid(chart.series_color(si), 2.0);
        let mut run: Vec<(f64, f64)> = Vec::new();
        for p in s.points.iter().map(Some).chain([None]) {
            match p.and_then(|p| Some((xs.px(p.x)?, ys.px(p.y)?))) {
                Some(xy) => run.push(xy),
                None => {
                    if run.len() >= 2 {
                        scene.push_clipped(Shape::Polyline { points: std::mem::take(&mut run), stroke });
                    }
                    run.clear();
                }
            }
        }
    }

    // Error bars, with caps at the ends that are inside the axis (on a log axis, y - e may not be).
    for d in drawn {
        let stroke = Stroke::solid(chart.series_color(d.series), 1.2);
        for (err, horizontal) in [(d.point.y_err, false), (d.point.x_err, true)] {
            let Some(e) = err.filter(|e| e.is_finite() && *e != 0.0).map(f64::abs) else {
                continue;
            };
            let (scale, v, beyond) =
                if horizontal { (xs, d.point.x, a.left - 10.0) } else { (ys, d.point.y, a.bottom + 10.0) };
            let ends = [scale.px(v - e), scale.px(v + e)];
            let at = |along: f64, across: f64| {
                if horizontal {
                    (along, d.py + across)
                } else {
                    (d.px + across, along)
                }
            };
            let bar = vec![at(ends[0].unwrap_or(beyond), 0.0), at(ends[1].unwrap_or(beyond), 0.0)];
            scene.push_clipped(Shape::Polyline { points: bar, stroke });
            for end in ends.into_iter().flatten() {
                scene.push_clipped(Shape::Polyline { points: vec![at(end, -3.0), at(end, 3.0)], stroke });
            }
        }
    }

    // Markers, then point labels on top (left of the point when they would leave the plot).
    for d in drawn.iter().filter(|d| chart.series[d.series].markers) {
        let fill = chart.series_color(d.series);
        let stroke = Some(Stroke::solid(WHITE, 1.0));
        scene.push_clipped(Shape::Circle { cx: d.px, cy: d.py, r: MARKER_R, fill, stroke });
    }
    for d in drawn {
        let Some(label) = d.point.label.as_deref().filter(|l| !l.trim().is_empty()) else {
            continue;
        };
        let text = truncate(label, MAX_LABEL);
        let tw = ascii_len(&text) as f64 * CH;
        let (x, anchor) =
            if d.px + 7.0 + tw > a.right { (d.px - 7.0, Anchor::End) } else { (d.px + 7.0, Anchor::Start) };
        let y = if d.py - 8.0 < a.top + 5.0 { d.py + 9.0 } else { d.py - 8.0 };
        let size = TextSize::Small;
        let shape = Shape::Text { x, y, text, size, anchor, color: MUTED, vertical: false, bold: false };
        scene.push_clipped(shape);
    }
}

/// The plot frame, tick marks and tick labels.
fn axes(scene: &mut Scene, a: Area, x: &Axis, y: &Axis) {
    let stroke = Stroke::solid(AXIS, 1.0);
    let (w, h) = (a.right - a.left, a.bottom - a.top);
    scene.push(Shape::Rect { x: a.left + 0.5, y: a.top + 0.5, w, h, fill: None, stroke: Some(stroke) });
    for (i, shown) in y.labelled() {
        let (py, label) = (y.px[i], &y.ticks[i].1);
        scene.push(Shape::Polyline { points: vec![(a.left - TICK, crisp(py)), (a.left, crisp(py))], stroke });
        if shown {
            scene.text(a.left - TICK - 4.0, py, label.clone(), TextSize::Small, Anchor::End, TEXT);
        }
    }
    for (i, shown) in x.labelled() {
        let (px, label) = (x.px[i], &x.ticks[i].1);
        scene.push(Shape::Polyline { points: vec![(crisp(px), a.bottom), (crisp(px), a.bottom + TICK)], stroke });
        if shown {
            let ty = a.bottom + TICK + 4.0 + CH / 2.0;
            scene.text(px, ty, label.clone(), TextSize::Small, Anchor::Middle, TEXT);
        }
    }
}

/// Title, axis labels and note, truncated to the room they have.
fn texts(scene: &mut Scene, chart: &Chart, note: Option<&str>, a: Area) {
    let (w, h) = (f64::from(scene.width), f64::from(scene.height));
    let chars = |room: f64, cell: f64| (room / cell).max(0.0) as usize;
    if !chart.title.trim().is_empty() {
        let text = truncate(&chart.title, chars(w - 2.0 * PAD, TextSize::Large.cell()));
        let (size, anchor) = (TextSize::Large, Anchor::Middle);
        let (x, y) = (w / 2.0, PAD + 8.0);
        scene.push(Shape::Text { x, y, text, size, anchor, color: TEXT, vertical: false, bold: true });
    }
    if !chart.x_label.trim().is_empty() {
        let text = truncate(&chart.x_label, chars(w - 2.0 * PAD, CH));
        let y = a.bottom + TICK + 4.0 + CH + 12.0 + CH / 2.0;
        scene.text((a.left + a.right) / 2.0, y, text, TextSize::Small, Anchor::Middle, TEXT);
    }
    if !chart.y_label.trim().is_empty() {
        let text = truncate(&chart.y_label, chars(a.bottom - a.top + 40.0, CH));
        let (x, y) = (PAD + CH / 2.0, (a.top + a.bottom) / 2.0);
        let (size, anchor) = (TextSize::Small, Anchor::Middle);
        scene.push(Shape::Text { x, y, text, size, anchor, color: TEXT, vertical: true, bold: false });
    }
    if let Some(note) = note {
        let text = truncate(note, chars(w - 2.0 * PAD, CH));
        scene.text(PAD, h - PAD - CH / 2.0, text, TextSize::Small, Anchor::Start, MUTED);
    }
}
