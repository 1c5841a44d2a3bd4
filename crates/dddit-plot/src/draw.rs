//! Draws a [`Chart`] with plotters on a drawing area of either backend: title, axes with ticks
//! and labels, grid, the Pareto frontier, series (lines, error bars, markers, point labels), note
//! and legend.
//!
//! Values are drawn in transformed coordinates (log10 on a log axis) on linear plotters axes
//! whose ticks come from [`crate::scale`]. Points that cannot be drawn (NaN, infinities,
//! non-positive values on a log axis) are skipped, and long texts are cut to fit.

use crate::axis::Axis;
use crate::chart::{Chart, Point, Rgb};
use crate::error::PlotError;
use crate::font::{self, fit};
use crate::legend::{self, legend_rows, LEGEND_MARGIN};
use crate::pareto::pareto_front;
use crate::scale::{auto_ticks, padded_range, transform};
use plotters::coord::Shift;
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};

/// The gap around the chart, in pixels.
const PAD: u32 = 10;
/// Tick mark length, in pixels.
const TICK: i32 = 5;
const MARKER_R: i32 = 4;
/// Text sizes (plotters' unit, about 1.2 em): tick labels, legend, point labels and note;
/// axis descriptions; title.
const SMALL: f64 = 15.0;
const MEDIUM: f64 = 16.0;
const LARGE: f64 = 24.0;
const TEXT: Rgb = [30, 30, 30];
const MUTED: Rgb = [90, 90, 90];
const AXIS: RGBColor = RGBColor(70, 70, 70);
const GRID: RGBColor = RGBColor(226, 226, 226);
/// The Pareto frontier: a wide, light, dashed line.
pub(crate) const FRONT: RGBColor = RGBColor(150, 150, 150);
/// Longest label printed beside a point or under a custom tick, in characters.
const MAX_LABEL: usize = 24;
/// The smallest plot, in pixels either way, worth drawing; a smaller image gets its title only.
const MIN_PLOT: f64 = 24.0;

/// The plotters coordinates of a chart: linear in transformed values, with our ticks.
type Coords = Cartesian2d<Axis, Axis>;

/// Axis ticks: transformed position and label.
type Ticks = Vec<(f64, String)>;

/// A point that can be drawn: its series, transformed coordinates and data.
struct Drawn<'a> {
    series: usize,
    x: f64,
    y: f64,
    point: &'a Point,
}

/// The RGB colour as plotters' colour.
pub(crate) fn rgb(c: Rgb) -> RGBColor {
    RGBColor(c[0], c[1], c[2])
}

/// Draws `chart` over the whole of `root`.
pub(crate) fn chart<DB: DrawingBackend>(chart: &Chart, root: &DrawingArea<DB, Shift>) -> Result<(), PlotError> {
    root.fill(&WHITE)?;
    let (w, h) = root.dim_in_pixel();
    let (wf, hf) = (f64::from(w), f64::from(h));
    let pad = f64::from(PAD);
    let small = font::style(SMALL, TEXT);
    let desc = font::style(MEDIUM, TEXT);
    let title_style = font::style(LARGE, TEXT);
    let text_h = f64::from(root.estimate_text_size("Ag", &small)?.1);
    let x_desc = chart.x_label.trim();
    let y_desc = chart.y_label.trim();
    let note = chart.note.as_deref().map(str::trim).filter(|n| !n.is_empty());

    // Vertical layout: title, plot, x label area, note band.
    let title_h = if chart.title.trim().is_empty() {
        0.0
    } else {
        f64::from(root.estimate_text_size("Ag", &title_style)?.1) + 10.0
    };
    let desc_h = f64::from(root.estimate_text_size("Ag", &desc)?.1);
    let x_area = f64::from(TICK) + 6.0 + text_h + if x_desc.is_empty() { 0.0 } else { 10.0 + desc_h } + 4.0;
    let note_h = if note.is_some() { text_h + pad } else { 0.0 };
    let plot_h = hf - 2.0 * pad - title_h - x_area - note_h;

    // Drawable points and the axis ranges, which cover their error bars and the custom ticks
    // (with half a category of margin).
    let drawn = drawable(chart);
    let custom: Option<Ticks> = chart.x_ticks.as_ref().map(|ticks| {
        let ok =
            ticks.iter().filter_map(|(v, l)| transform(*v, chart.x_log).map(|t| (t, font::truncate(l, MAX_LABEL))));
        ok.collect()
    });
    let mut xs = axis_values(&drawn, true, chart.x_log);
    let mut x_min_pad = 0.0;
    if let Some(c) = custom.as_ref().filter(|c| !c.is_empty()) {
        let lo = c.iter().map(|t| t.0).fold(f64::INFINITY, f64::min);
        let hi = c.iter().map(|t| t.0).fold(f64::NEG_INFINITY, f64::max);
        x_min_pad = if c.len() > 1 && hi > lo { 0.5 * (hi - lo) / (c.len() - 1) as f64 } else { 0.5 };
        xs.extend(c.iter().map(|t| t.0));
    }
    let (x_lo, x_hi) = padded_range(&xs, chart.x_log, x_min_pad);
    let (y_lo, y_hi) = padded_range(&axis_values(&drawn, false, chart.y_log), chart.y_log, 0.0);

    // The y axis, whose labels size the left label area.
    let y_ticks = auto_ticks(y_lo, y_hi, chart.y_log, ((plot_h / 45.0).round().max(0.0) as usize).clamp(2, 10));
    let y_ticks = thin(y_ticks, plot_h / (y_hi - y_lo), |_| Ok(text_h + 4.0))?;
    let mut widest_y = 0.0f64;
    for (_, label) in &y_ticks {
        widest_y = widest_y.max(font::width(root, label, &small)?);
    }
    let y_area = (widest_y + f64::from(TICK) + 8.0 + if y_desc.is_empty() { 0.0 } else { desc_h + 10.0 }).min(0.4 * wf);

    // The legend goes right of the plot when there is room for it.
    let front: Vec<usize> = if chart.pareto_min {
        pareto_front(&drawn.iter().map(|d| (d.point.x, d.point.y)).collect::<Vec<_>>())
    } else {
        Vec::new()
    };
    let row_h = (1.3 * text_h).ceil();
    let max_rows = ((plot_h - f64::from(2 * LEGEND_MARGIN)) / row_h).floor().max(0.0) as usize;
    let (rows, legend_w) = legend_rows(root, chart, front.len() >= 2, (wf, max_rows), &small)?;
    let show_legend = !rows.is_empty() && wf - 2.0 * pad - y_area - legend_w - 12.0 >= 0.35 * wf;
    let right = if show_legend { legend_w + 12.0 + pad } else { pad + 14.0 };
    let plot_w = wf - pad - y_area - right;
    if plot_w < MIN_PLOT || plot_h < MIN_PLOT {
        // No room for a plot: the title alone.
        let title = fit(root, chart.title.trim(), &title_style, wf - 2.0 * pad)?;
        let style = title_style.pos(Pos::new(HPos::Center, VPos::Top));
        root.draw_text(&title, &style, ((w / 2) as i32, PAD as i32))?;
        return Ok(());
    }
    // The title is centred over the chart without the legend.
    let title = fit(root, chart.title.trim(), &title_style, wf - pad - right)?;

    let x_ticks =
        custom.unwrap_or_else(|| auto_ticks(x_lo, x_hi, chart.x_log, ((plot_w / 90.0).round() as usize).clamp(2, 10)));
    let widest_x = |ticks: &Ticks| -> Result<f64, PlotError> {
        let mut widest = 0.0f64;
        for (_, label) in ticks {
            widest = widest.max(font::width(root, label, &small)?);
        }
        Ok(widest + 10.0)
    };
    let x_ticks = thin(x_ticks, plot_w / (x_hi - x_lo), widest_x)?;

    let plot_area = match note {
        Some(note) => {
            let (main, band) = root.split_vertically(h.saturating_sub(note_h as u32));
            let style = font::style(SMALL, MUTED).pos(Pos::new(HPos::Left, VPos::Top));
            band.draw_text(&fit(root, note, &style, wf - 2.0 * pad)?, &style, (PAD as i32, 0))?;
            main
        }
        None => root.clone(),
    };
    let mut builder = ChartBuilder::on(&plot_area);
    builder
        .margin_top(PAD)
        .margin_left(PAD)
        .margin_bottom(if note.is_some() { 0 } else { PAD })
        .margin_right(right as u32)
        .x_label_area_size(x_area as u32)
        .y_label_area_size(y_area as u32);
    if !title.is_empty() {
        builder.caption(&title, title_style);
    }
    let axis = |lo, hi, ticks: &Ticks| Axis { lo, hi, ticks: ticks.iter().map(|t| t.0).collect() };
    let mut ctx = builder.build_cartesian_2d(axis(x_lo, x_hi, &x_ticks), axis(y_lo, y_hi, &y_ticks))?;

    // Axes, ticks, labels and grid.
    let x_fmt = |v: &f64| label_at(&x_ticks, *v);
    let y_fmt = |v: &f64| label_at(&y_ticks, *v);
    let (pw, ph) = ctx.plotting_area().dim_in_pixel();
    let mut mesh = ctx.configure_mesh();
    mesh.x_label_formatter(&x_fmt)
        .y_label_formatter(&y_fmt)
        .label_style(small.clone())
        .axis_desc_style(desc.clone())
        .bold_line_style(GRID)
        .light_line_style(TRANSPARENT)
        .axis_style(AXIS)
        .set_all_tick_mark_size(TICK);
    if !x_desc.is_empty() {
        mesh.x_desc(fit(root, x_desc, &desc, f64::from(pw))?);
    }
    if !y_desc.is_empty() {
        mesh.y_desc(fit(root, y_desc, &desc, f64::from(ph))?);
    }
    mesh.draw()?;
    ctx.draw_series(std::iter::once(Rectangle::new([(x_lo, y_lo), (x_hi, y_hi)], AXIS.stroke_width(1))))?;

    data(&mut ctx, chart, &drawn, &front, (x_lo, y_lo, x_hi, y_hi), root)?;

    if show_legend {
        let (xr, yr) = ctx.plotting_area().get_pixel_range();
        legend::draw(root, rows, (xr.end + 12, yr.start), (legend_w, row_h), &small)?;
    }
    Ok(())
}

/// The points of `chart` that can be drawn, in series order.
fn drawable(chart: &Chart) -> Vec<Drawn<'_>> {
    let mut drawn = Vec::new();
    for (series, s) in chart.series.iter().enumerate() {
        for point in &s.points {
            if let (Some(x), Some(y)) = (transform(point.x, chart.x_log), transform(point.y, chart.y_log)) {
                drawn.push(Drawn { series, x, y, point });
            }
        }
    }
    drawn
}

/// Transformed values that the range of one axis must cover: drawable points and the ends of
/// their error bars on that axis.
fn axis_values(points: &[Drawn], x_axis: bool, log: bool) -> Vec<f64> {
    let mut ts = Vec::new();
    for d in points {
        let (t, v, err) = if x_axis { (d.x, d.point.x, d.point.x_err) } else { (d.y, d.point.y, d.point.y_err) };
        ts.push(t);
        if let Some(e) = err.filter(|e| e.is_finite()).map(f64::abs) {
            ts.extend(transform(v - e, log));
            ts.extend(transform(v + e, log));
        }
    }
    ts
}

/// The label of the tick nearest to `t` (plotters asks for the labels of the key points).
fn label_at(ticks: &Ticks, t: f64) -> String {
    let nearest = ticks.iter().min_by(|a, b| (a.0 - t).abs().total_cmp(&(b.0 - t).abs()));
    nearest.map(|n| n.1.clone()).unwrap_or_default()
}

/// `ticks` with the labels of all but every n-th (in position order) blanked, so that labels
/// `extent` pixels long (plus a gap) do not overlap at `px_per_unit` pixels per unit.
fn thin(
    mut ticks: Ticks,
    px_per_unit: f64,
    extent: impl Fn(&Ticks) -> Result<f64, PlotError>,
) -> Result<Ticks, PlotError> {
    ticks.sort_by(|a, b| a.0.total_cmp(&b.0));
    let spacing = ticks.windows(2).map(|w| (w[1].0 - w[0].0) * px_per_unit).fold(f64::INFINITY, f64::min);
    if spacing.is_finite() && spacing > 0.0 {
        let stride = ((extent(&ticks)? / spacing).ceil() as usize).max(1);
        for (i, t) in ticks.iter_mut().enumerate() {
            if i % stride != 0 {
                t.1.clear();
            }
        }
    }
    Ok(ticks)
}

/// The Pareto frontier, series lines, error bars, markers and point labels.
fn data<DB: DrawingBackend>(
    ctx: &mut ChartContext<DB, Coords>,
    chart: &Chart,
    drawn: &[Drawn],
    front: &[usize],
    (x_lo, y_lo, x_hi, y_hi): (f64, f64, f64, f64),
    root: &DrawingArea<DB, Shift>,
) -> Result<(), PlotError> {
    // The frontier under the series lines, so that it still shows as a dashed halo where a
    // series line follows it.
    if front.len() >= 2 {
        let points: Vec<(f64, f64)> = front.iter().map(|&i| (drawn[i].x, drawn[i].y)).collect();
        ctx.draw_series(DashedLineSeries::new(points, 8, 5, FRONT.stroke_width(4)))?;
    }

    // Series lines, broken where a point cannot be drawn.
    for (si, s) in chart.series.iter().enumerate().filter(|(_, s)| s.line) {
        let style = rgb(chart.series_color(si)).stroke_width(2);
        let mut run: Vec<(f64, f64)> = Vec::new();
        for p in s.points.iter().map(Some).chain([None]) {
            match p.and_then(|p| Some((transform(p.x, chart.x_log)?, transform(p.y, chart.y_log)?))) {
                Some(xy) => run.push(xy),
                None => {
                    if run.len() >= 2 {
                        ctx.draw_series(LineSeries::new(std::mem::take(&mut run), style))?;
                    }
                    run.clear();
                }
            }
        }
    }

    let area = ctx.plotting_area();
    // Error bars with caps; an end that leaves the axis (y - e ≤ 0 on a log axis) stops at its
    // edge, without a cap.
    for d in drawn {
        let style = rgb(chart.series_color(d.series)).stroke_width(1);
        for (err, horizontal) in [(d.point.y_err, false), (d.point.x_err, true)] {
            let Some(e) = err.filter(|e| e.is_finite() && *e != 0.0).map(f64::abs) else {
                continue;
            };
            let (v, log, lo, hi) =
                if horizontal { (d.point.x, chart.x_log, x_lo, x_hi) } else { (d.point.y, chart.y_log, y_lo, y_hi) };
            let ends = [transform(v - e, log), transform(v + e, log)];
            let at = |t: f64| if horizontal { (t, d.y) } else { (d.x, t) };
            let (a, b) = (ends[0].unwrap_or(lo), ends[1].unwrap_or(hi));
            area.draw(&PathElement::new(vec![at(a), at(b)], style))?;
            let cap = if horizontal { [(0, -3), (0, 3)] } else { [(-3, 0), (3, 0)] };
            for end in ends.into_iter().flatten() {
                area.draw(&(EmptyElement::at(at(end)) + PathElement::new(cap, style)))?;
            }
        }
    }

    // Markers with a white rim, then point labels on top (left of the point when they would
    // leave the plot, below it when they would leave through the top).
    for d in drawn.iter().filter(|d| chart.series[d.series].markers) {
        let fill = rgb(chart.series_color(d.series)).filled();
        let marker = EmptyElement::at((d.x, d.y))
            + Circle::new((0, 0), MARKER_R, fill)
            + Circle::new((0, 0), MARKER_R, WHITE.stroke_width(1));
        area.draw(&marker)?;
    }
    let (px_range, py_range) = area.get_pixel_range();
    let style = font::style(SMALL, MUTED);
    for d in drawn {
        let Some(label) = d.point.label.as_deref().map(str::trim).filter(|l| !l.is_empty()) else {
            continue;
        };
        let text = font::truncate(label, MAX_LABEL);
        let (px, py) = ctx.backend_coord(&(d.x, d.y));
        let right_of = f64::from(px) + 7.0 + font::width(root, &text, &style)? <= f64::from(px_range.end);
        let (dx, h) = if right_of { (7, HPos::Left) } else { (-7, HPos::Right) };
        let dy = if py - 8 < py_range.start + 5 { 9 } else { -8 };
        let text = Text::new(text, (dx, dy), style.pos(Pos::new(h, VPos::Center)));
        area.draw(&(EmptyElement::at((d.x, d.y)) + text))?;
    }
    Ok(())
}
