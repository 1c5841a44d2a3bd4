//! The legend: one row per series (its colour as a line and/or a square, as the series is
//! drawn) and the Pareto frontier when it is shown, in a box right of the plot.

use crate::chart::Chart;
use crate::draw::{rgb, FRONT};
use crate::error::PlotError;
use crate::font::{self, fit};
use plotters::coord::Shift;
use plotters::element::DashedPathElement;
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};

/// The swatch width, in pixels.
const SWATCH: u32 = 30;
/// The box's inner margin, in pixels.
pub(crate) const LEGEND_MARGIN: u32 = 6;
const BORDER: RGBColor = RGBColor(200, 200, 200);

/// What a legend row shows before its name.
pub(crate) enum Swatch {
    /// A series: a line and/or a square in its colour.
    Series { color: RGBColor, line: bool, marker: bool },
    /// The Pareto frontier's dashed line.
    Front,
    /// Nothing (the "... (n more)" row).
    None,
}

/// The legend rows (series, then the Pareto frontier when `front`), at most `max_rows` of them
/// (the last summarising those left out as "... (n more)"), names cut so that the box takes
/// at most about 38% of an image `image_w` wide; and the box width in pixels.
pub(crate) fn legend_rows<DB: DrawingBackend>(
    root: &DrawingArea<DB, Shift>,
    chart: &Chart,
    front: bool,
    (image_w, max_rows): (f64, usize),
    style: &TextStyle,
) -> Result<(Vec<(String, Swatch)>, f64), PlotError> {
    let chrome = f64::from(SWATCH + 2 * LEGEND_MARGIN);
    let room = (0.38 * image_w - chrome).max(0.0);
    let mut rows = Vec::new();
    for (i, s) in chart.series.iter().enumerate() {
        let swatch = Swatch::Series { color: rgb(chart.series_color(i)), line: s.line, marker: s.markers };
        rows.push((fit(root, &s.name, style, room)?, swatch));
    }
    if front {
        rows.push(("Pareto front".to_string(), Swatch::Front));
    }
    if rows.len() > max_rows {
        let more = rows.len() - max_rows.saturating_sub(1);
        rows.truncate(max_rows.saturating_sub(1));
        if max_rows > 0 {
            rows.push((format!("... ({more} more)"), Swatch::None));
        }
    }
    let mut widest = 0.0f64;
    for (name, _) in &rows {
        widest = widest.max(font::width(root, name, style)?);
    }
    Ok((rows, widest + chrome))
}

/// The legend box with its top-left corner at `(x, y)` on `root`, `width` pixels wide, one row
/// of `row_h` pixels per entry.
pub(crate) fn draw<DB: DrawingBackend>(
    root: &DrawingArea<DB, Shift>,
    rows: Vec<(String, Swatch)>,
    (x, y): (i32, i32),
    (width, row_h): (f64, f64),
    style: &TextStyle,
) -> Result<(), PlotError> {
    let margin = f64::from(LEGEND_MARGIN);
    let height = 2.0 * margin + rows.len() as f64 * row_h;
    let area = root.clone().shrink((x, y), (width as u32, height as u32));
    let corners = [(0, 0), (width as i32 - 1, height as i32 - 1)];
    area.draw(&Rectangle::new(corners, WHITE.filled()))?;
    area.draw(&Rectangle::new(corners, BORDER.stroke_width(1)))?;
    let style = style.pos(Pos::new(HPos::Left, VPos::Center));
    let m = LEGEND_MARGIN as i32;
    for (i, (name, swatch)) in rows.into_iter().enumerate() {
        let cy = (margin + (i as f64 + 0.5) * row_h) as i32;
        match swatch {
            Swatch::Series { color, line, marker } => {
                if line {
                    area.draw(&PathElement::new([(m, cy), (m + 22, cy)], color.stroke_width(2)))?;
                }
                if marker {
                    area.draw(&Rectangle::new([(m + 7, cy - 4), (m + 15, cy + 4)], color.filled()))?;
                }
            }
            Swatch::Front => {
                area.draw(&DashedPathElement::new([(m, cy), (m + 22, cy)], 6, 3, FRONT.stroke_width(4)))?;
            }
            Swatch::None => {}
        }
        area.draw_text(&name, &style, (m + SWATCH as i32, cy))?;
    }
    Ok(())
}
