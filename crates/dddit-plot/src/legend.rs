//! The legend: one row per series (its colour as a line and/or square swatch, as the series is
//! drawn) plus the Pareto frontier when it is shown, in a box right of the plot.

use crate::chart::Chart;
use crate::font::ascii_len;
use crate::layout::FRONT_STROKE;
use crate::scene::{truncate, Anchor, Scene, Shape, Stroke, TextSize};
use crate::Rgb;

/// Height of one legend row, in pixels.
const ROW: f64 = 16.0;
/// Width of a small character cell, in pixels.
const CH: f64 = 8.0;
const TEXT: Rgb = [30, 30, 30];
const BORDER: Rgb = [200, 200, 200];

/// What is drawn before a legend row's name.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Swatch {
    /// A series: a line and/or a square in its colour.
    Series { color: Rgb, line: bool, marker: bool },
    /// The Pareto frontier's dashed line.
    Front,
    /// Nothing (the "… more" row).
    None,
}

/// The legend rows and the box width they need.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Legend {
    rows: Vec<(String, Swatch)>,
    /// Box width in pixels.
    pub width: f64,
}

impl Legend {
    /// The legend of `chart` on an image `image_width` pixels wide, names truncated so that the
    /// box takes at most about 38% of the width; `front` adds the frontier's row.
    pub fn new(chart: &Chart, front: bool, image_width: f64) -> Legend {
        let max_chars = (((0.38 * image_width - 44.0) / CH).floor().max(4.0) as usize).min(40);
        let mut rows: Vec<(String, Swatch)> = chart
            .series
            .iter()
            .enumerate()
            .map(|(i, s)| {
                let swatch = Swatch::Series { color: chart.series_color(i), line: s.line, marker: s.markers };
                (truncate(&s.name, max_chars), swatch)
            })
            .collect();
        if front {
            rows.push(("Pareto front".into(), Swatch::Front));
        }
        let widest = rows.iter().map(|r| ascii_len(&r.0)).max().unwrap_or(0);
        Legend { rows, width: 44.0 + widest as f64 * CH }
    }

    /// Whether there is nothing to list.
    pub fn is_empty(&self) -> bool {
        self.rows.is_empty()
    }

    /// Draws the legend box with its top-left corner at `(x0, top)`, no lower than `bottom`;
    /// rows that do not fit are summarised as "... (n more)".
    pub fn draw(mut self, scene: &mut Scene, x0: f64, top: f64, bottom: f64) {
        let fit = ((bottom - top - 8.0) / ROW).floor().max(0.0) as usize;
        if fit == 0 {
            return;
        }
        if self.rows.len() > fit {
            let more = self.rows.len() - (fit - 1);
            self.rows.truncate(fit - 1);
            self.rows.push((format!("... ({more} more)"), Swatch::None));
        }
        scene.push(Shape::Rect {
            x: x0 + 0.5,
            y: top + 0.5,
            w: self.width,
            h: 8.0 + self.rows.len() as f64 * ROW,
            fill: Some([255, 255, 255]),
            stroke: Some(Stroke::solid(BORDER, 1.0)),
        });
        for (i, (name, swatch)) in self.rows.into_iter().enumerate() {
            let cy = top + 12.0 + i as f64 * ROW;
            let line = |scene: &mut Scene, stroke| {
                scene.push(Shape::Polyline { points: vec![(x0 + 8.0, cy), (x0 + 30.0, cy)], stroke });
            };
            match swatch {
                Swatch::Series { color, line: l, marker } => {
                    if l {
                        line(scene, Stroke::solid(color, 2.0));
                    }
                    if marker {
                        let fill = Some(color);
                        scene.push(Shape::Rect { x: x0 + 15.0, y: cy - 4.0, w: 8.0, h: 8.0, fill, stroke: None });
                    }
                }
                Swatch::Front => line(scene, FRONT_STROKE),
                Swatch::None => {}
            }
            scene.text(x0 + 36.0, cy, name, TextSize::Small, Anchor::Start, TEXT);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Point, Series};

    fn scene() -> Scene {
        Scene { width: 800, height: 560, clip: (0.0, 0.0, 800.0, 560.0), items: Vec::new() }
    }

    fn texts(scene: &Scene) -> Vec<String> {
        scene
            .items
            .iter()
            .filter_map(|i| match &i.shape {
                Shape::Text { text, .. } => Some(text.clone()),
                _ => None,
            })
            .collect()
    }

    #[test]
    fn rows_follow_the_series_and_names_are_truncated() {
        let mut c = Chart::new("t", "x", "y");
        c.series.push(Series::scatter("a", vec![Point::new(1.0, 1.0)]));
        c.series.push(Series::line("b".repeat(100), Vec::new()));
        let legend = Legend::new(&c, true, 800.0);
        assert!(legend.width <= 0.38 * 800.0 + 1.0, "{}", legend.width);
        let mut s = scene();
        legend.draw(&mut s, 500.0, 40.0, 500.0);
        let t = texts(&s);
        assert_eq!(t.len(), 3);
        assert_eq!(t[0], "a");
        assert!(t[1].starts_with("bbb") && t[1].ends_with("...") && t[1].len() < 40);
        assert_eq!(t[2], "Pareto front");
        // Scatter: a square; line series: a line and a square; frontier: a dashed line.
        let dashed =
            s.items.iter().filter(|i| matches!(&i.shape, Shape::Polyline { stroke, .. } if stroke.dash.is_some()));
        assert_eq!(dashed.count(), 1);
    }

    #[test]
    fn overflow_is_summarised() {
        let mut c = Chart::new("t", "x", "y");
        for i in 0..30 {
            c.series.push(Series::scatter(format!("s{i}"), Vec::new()));
        }
        let mut s = scene();
        // Room for (100 - 8) / 16 = 5 rows.
        Legend::new(&c, false, 800.0).draw(&mut s, 500.0, 0.0, 100.0);
        let t = texts(&s);
        assert_eq!(t, ["s0", "s1", "s2", "s3", "... (26 more)"]);
        let mut none = scene();
        Legend::new(&c, false, 800.0).draw(&mut none, 500.0, 0.0, 10.0);
        assert!(none.items.is_empty());
    }
}
