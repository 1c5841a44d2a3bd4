//! The chart description (points, series, axes options) and its outputs: SVG text, PNG bytes, or
//! both written to disk.

use crate::error::PlotError;
use crate::{layout, raster, svg};

/// An RGB colour, 8 bits per channel.
pub type Rgb = [u8; 3];

/// Default image width of [`Chart::save`], in pixels.
pub const DEFAULT_WIDTH: u32 = 800;
/// Default image height of [`Chart::save`], in pixels.
pub const DEFAULT_HEIGHT: u32 = 560;

/// The colours given to series without their own, in order (Tableau 10): distinguishable from one
/// another and readable on white.
pub const PALETTE: [Rgb; 10] = [
    [31, 119, 180],
    [255, 127, 14],
    [44, 160, 44],
    [214, 39, 40],
    [148, 103, 189],
    [140, 86, 75],
    [227, 119, 194],
    [127, 127, 127],
    [188, 189, 34],
    [23, 190, 207],
];

/// One data point, with optional error bars (half-widths, e.g. a standard deviation) and an
/// optional label drawn next to its marker.
#[derive(Debug, Clone, PartialEq)]
pub struct Point {
    /// Horizontal value.
    pub x: f64,
    /// Vertical value.
    pub y: f64,
    /// Vertical error-bar half-length (the bar spans `y - e ..= y + e`).
    pub y_err: Option<f64>,
    /// Horizontal error-bar half-length (the bar spans `x - e ..= x + e`).
    pub x_err: Option<f64>,
    /// Small text drawn beside the marker (e.g. a configuration name).
    pub label: Option<String>,
}

impl Point {
    /// A point without error bars or label.
    pub fn new(x: f64, y: f64) -> Point {
        Point { x, y, y_err: None, x_err: None, label: None }
    }

    /// The same point with a vertical error bar of half-length `e`.
    pub fn with_y_err(mut self, e: f64) -> Point {
        self.y_err = Some(e);
        self
    }

    /// The same point with a horizontal error bar of half-length `e`.
    pub fn with_x_err(mut self, e: f64) -> Point {
        self.x_err = Some(e);
        self
    }

    /// The same point with a label beside its marker.
    pub fn with_label(mut self, label: impl Into<String>) -> Point {
        self.label = Some(label.into());
        self
    }
}

/// A named group of points drawn in one colour, as markers, a connecting line, or both.
#[derive(Debug, Clone, PartialEq)]
pub struct Series {
    /// The name shown in the legend.
    pub name: String,
    /// The points, connected in this order when `line` is set.
    pub points: Vec<Point>,
    /// Connect consecutive points with a line (broken at points that cannot be drawn).
    pub line: bool,
    /// Draw a filled circle at each point.
    pub markers: bool,
    /// The series colour; `None` takes the next colour of [`PALETTE`] by series index.
    pub color: Option<Rgb>,
}

impl Series {
    /// A series drawn as markers only (a scatter plot).
    pub fn scatter(name: impl Into<String>, points: Vec<Point>) -> Series {
        Series { name: name.into(), points, line: false, markers: true, color: None }
    }

    /// A series drawn as a line with markers.
    pub fn line(name: impl Into<String>, points: Vec<Point>) -> Series {
        Series { name: name.into(), points, line: true, markers: true, color: None }
    }

    /// The same series in colour `color`.
    pub fn with_color(mut self, color: Rgb) -> Series {
        self.color = Some(color);
        self
    }
}

/// A 2-D chart: a title, two axes (linear or log10), series of points, and options for a
/// categorical x axis, a Pareto frontier and a note. Render it with [`Chart::to_svg`],
/// [`Chart::to_png`] or [`Chart::save`].
#[derive(Debug, Clone, PartialEq)]
pub struct Chart {
    /// Title above the plot.
    pub title: String,
    /// Label under the x axis.
    pub x_label: String,
    /// Label beside the y axis (drawn vertically).
    pub y_label: String,
    /// The data, drawn in order (later series on top).
    pub series: Vec<Series>,
    /// Logarithmic x axis (non-positive x values are skipped).
    pub x_log: bool,
    /// Logarithmic y axis (non-positive y values are skipped).
    pub y_log: bool,
    /// Categorical/custom ticks on x: (position, label). None = automatic "nice" ticks.
    pub x_ticks: Option<Vec<(f64, String)>>,
    /// Draw a dashed line through the Pareto frontier of all points (minimise x and y): lower-left is better.
    pub pareto_min: bool,
    /// Optional note printed small under the plot (e.g. "FD on classifier features, 200 samples, mean ± std over 2 seeds").
    pub note: Option<String>,
}

impl Chart {
    /// An empty chart with linear axes and no options set.
    pub fn new(title: impl Into<String>, x_label: impl Into<String>, y_label: impl Into<String>) -> Chart {
        Chart {
            title: title.into(),
            x_label: x_label.into(),
            y_label: y_label.into(),
            series: Vec::new(),
            x_log: false,
            y_log: false,
            x_ticks: None,
            pareto_min: false,
            note: None,
        }
    }

    /// The colour series `index` is drawn in: its own, or the palette's.
    pub fn series_color(&self, index: usize) -> Rgb {
        self.series.get(index).and_then(|s| s.color).unwrap_or(PALETTE[index % PALETTE.len()])
    }

    /// The chart as an SVG document of `width` × `height` pixels (a side of 0 counts as 1); text
    /// is left to the viewer's monospace font.
    pub fn to_svg(&self, width: u32, height: u32) -> String {
        svg::write(&layout::build(self, width.max(1), height.max(1)))
    }

    /// The chart as an encoded 8-bit RGB PNG of `width` × `height` pixels, text drawn with the
    /// embedded bitmap font.
    pub fn to_png(&self, width: u32, height: u32) -> Result<Vec<u8>, PlotError> {
        raster::check_size(width, height)?;
        let scene = layout::build(self, width, height);
        raster::encode_png(&raster::render(&scene))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::layout;
    use crate::scene::Shape;

    /// Decodes a PNG: width, height and RGB bytes.
    fn decode(bytes: &[u8]) -> (u32, u32, Vec<u8>) {
        let mut reader = png::Decoder::new(std::io::Cursor::new(bytes)).read_info().unwrap();
        let mut buf = vec![0; reader.output_buffer_size().unwrap()];
        let info = reader.next_frame(&mut buf).unwrap();
        assert_eq!(info.color_type, png::ColorType::Rgb);
        assert_eq!(info.bit_depth, png::BitDepth::Eight);
        buf.truncate(info.buffer_size());
        (info.width, info.height, buf)
    }

    fn pixel(buf: &[u8], width: u32, x: u32, y: u32) -> Rgb {
        let i = (y * width + x) as usize * 3;
        [buf[i], buf[i + 1], buf[i + 2]]
    }

    /// Non-white pixels in rows `y0..y1` and columns `x0..x1`.
    fn ink(buf: &[u8], width: u32, (x0, x1): (u32, u32), (y0, y1): (u32, u32)) -> usize {
        (y0..y1)
            .flat_map(|y| (x0..x1).map(move |x| (x, y)))
            .filter(|&(x, y)| pixel(buf, width, x, y) != [255, 255, 255])
            .count()
    }

    fn example() -> Chart {
        let mut c = Chart::new("FD vs GFLOPs <test> & more", "GFLOPs", "FD");
        c.series.push(Series::scatter("dense", vec![Point::new(10.0, 4.0).with_y_err(0.5).with_label("dense λ=0")]));
        c.series.push(Series::line(
            "routed",
            vec![
                Point::new(4.0, 6.0).with_y_err(0.3).with_x_err(0.2),
                Point::new(6.0, 4.5).with_label("cap ≤ 0.5"),
                Point::new(8.0, 4.4),
                Point::new(f64::NAN, 3.0),
                Point::new(9.0, f64::INFINITY),
            ],
        ));
        c.pareto_min = true;
        c.note = Some("mean ± std over 2 seeds".into());
        c
    }

    #[test]
    fn svg_has_title_one_marker_per_finite_point_and_escaped_text() {
        let c = example();
        let svg = c.to_svg(800, 560);
        assert!(svg.starts_with("<?xml") && svg.trim_end().ends_with("</svg>"));
        assert!(svg.contains("FD vs GFLOPs &lt;test&gt; &amp; more"), "title missing or unescaped");
        assert!(!svg.contains("<test>"));
        assert_eq!(svg.matches("<circle").count(), 4, "4 finite points of 6");
        assert!(svg.contains("dense λ=0") && svg.contains("cap ≤ 0.5") && svg.contains("mean ± std"));
        // The Pareto frontier is dashed; series colours come from the palette.
        assert!(svg.contains("stroke-dasharray"));
        assert!(svg.contains("#1f77b4") && svg.contains("#ff7f0e"));
        // Legend entries.
        assert!(
            svg.contains(">dense</text>") && svg.contains(">routed</text>") && svg.contains(">Pareto front</text>")
        );
        // Tags balance (well-formed-ish): every element is self-closed or closed.
        assert_eq!(svg.matches("<text").count(), svg.matches("</text>").count());
        assert_eq!(svg.matches('<').count(), svg.matches('>').count());
    }

    #[test]
    fn markers_and_error_bars_follow_the_options() {
        let mut c = example();
        c.pareto_min = false;
        c.series[1].markers = false;
        let svg = c.to_svg(800, 560);
        assert!(!svg.contains("stroke-dasharray"));
        assert_eq!(svg.matches("<circle").count(), 1);
        // Error bars: routed's first point has a y bar and an x bar, dense's point a y bar,
        // each with two caps: 3 × 3 polylines of width 1.2.
        assert_eq!(svg.matches(r#"stroke-width="1.2""#).count(), 9);
    }

    #[test]
    fn png_decodes_to_the_requested_size_and_shows_the_chart() {
        let c = example();
        let (w, h) = (640, 480);
        let (dw, dh, buf) = decode(&c.to_png(w, h).unwrap());
        assert_eq!((dw, dh), (w, h));
        assert_eq!(buf.len(), (w * h * 3) as usize);
        let scene = layout::build(&c, w, h);
        let (cx, cy, cw, ch) = scene.clip;
        let plot = ((cx as u32 + 2, (cx + cw) as u32 - 1), (cy as u32 + 2, (cy + ch) as u32 - 1));
        assert!(ink(&buf, w, plot.0, plot.1) > 200, "plot area is blank");
        // The title is drawn in the band above the plot.
        assert!(ink(&buf, w, (0, w), (0, cy as u32 - 4)) > 100, "no title pixels");
        // Every marker's centre has its series colour, so PNG and layout agree.
        let mut markers = 0;
        for item in &scene.items {
            if let Shape::Circle { cx, cy, fill, .. } = item.shape {
                assert_eq!(pixel(&buf, w, cx as u32, cy as u32), fill);
                markers += 1;
            }
        }
        assert_eq!(markers, 4);
        // The left margin holds tick labels, the bottom the x label and note.
        assert!(ink(&buf, w, (0, cx as u32 - 6), plot.1) > 50);
        assert!(ink(&buf, w, plot.0, ((cy + ch) as u32 + 8, h)) > 100);
    }

    #[test]
    fn categorical_x_axis_uses_the_given_labels() {
        let mut c = Chart::new("compute by timestep range", "t range", "GFLOPs");
        c.x_ticks = Some(
            ["t ∈ [0,250)", "[250,500)", "[500,750)", "[750,1000)"]
                .iter()
                .enumerate()
                .map(|(i, l)| (i as f64, l.to_string()))
                .collect(),
        );
        let pts = (0..4).map(|i| Point::new(i as f64, 1.0 + i as f64)).collect();
        c.series.push(Series::line("λ=0.1", pts));
        let svg = c.to_svg(800, 560);
        for l in ["t ∈ [0,250)", "[250,500)", "[500,750)", "[750,1000)", "λ=0.1"] {
            assert!(svg.contains(&format!(">{l}</text>")), "{l}");
        }
        assert!(!svg.contains(">0.5</text>"), "automatic x ticks must not appear");
        let (w, h, _) = decode(&c.to_png(400, 300).unwrap());
        assert_eq!((w, h), (400, 300));
    }

    #[test]
    fn log_axes_skip_non_positive_values() {
        let mut c = Chart::new("log", "x", "y");
        c.x_log = true;
        c.y_log = true;
        let pts = vec![
            Point::new(1.0, 10.0),
            Point::new(100.0, 1000.0).with_y_err(2000.0),
            Point::new(0.0, 5.0),
            Point::new(5.0, -1.0),
        ];
        c.series.push(Series::scatter("s", pts));
        let svg = c.to_svg(800, 560);
        assert_eq!(svg.matches("<circle").count(), 2);
        assert!(svg.contains(">10</text>") && svg.contains(">100</text>"));
        decode(&c.to_png(300, 200).unwrap());
    }

    #[test]
    fn degenerate_inputs_do_not_panic() {
        let long = "x".repeat(10_000);
        let mut cases = vec![Chart::new("", "", ""), Chart::new(long.clone(), long.clone(), long.clone())];
        let mut one = Chart::new("one", "x", "y");
        one.series.push(Series::scatter(long.clone(), vec![Point::new(3.0, 3.0).with_label(long.clone())]));
        one.note = Some(long.clone());
        one.pareto_min = true;
        cases.push(one);
        let mut equal = Chart::new("equal", "x", "y");
        equal.series.push(Series::line("s", vec![Point::new(0.0, 0.0); 5]));
        equal.x_ticks = Some(vec![(f64::NAN, "nan".into()), (0.0, long.clone())]);
        cases.push(equal);
        let mut bad = Chart::new("bad", "x", "y");
        bad.x_log = true;
        bad.series.push(Series::line(
            "s",
            vec![
                Point::new(f64::NAN, f64::NAN),
                Point::new(-1.0, 2.0),
                Point::new(f64::INFINITY, 1.0),
                Point::new(1e-300, 1e300).with_y_err(f64::INFINITY).with_x_err(f64::NAN),
                Point::new(1e300, -1e300).with_y_err(-1e300),
            ],
        ));
        bad.series.push(Series::scatter("empty", Vec::new()));
        bad.x_ticks = Some(Vec::new());
        cases.push(bad);
        let mut many = Chart::new("many series", "x", "y");
        for i in 0..60 {
            many.series.push(Series::scatter(format!("s{i}"), vec![Point::new(i as f64, 1.0)]));
        }
        cases.push(many);
        for c in &cases {
            for (w, h) in [(800, 560), (1, 1), (7, 3), (60, 40), (2000, 90)] {
                let svg = c.to_svg(w, h);
                assert!(svg.contains("</svg>"));
                let (dw, dh, _) = decode(&c.to_png(w, h).unwrap());
                assert_eq!((dw, dh), (w, h));
            }
            assert!(c.to_svg(0, 0).contains("</svg>"));
            assert!(matches!(c.to_png(0, 10), Err(PlotError::Size { .. })));
        }
    }

    #[test]
    fn colours_come_from_the_palette_unless_given() {
        let mut c = Chart::new("t", "x", "y");
        for i in 0..12 {
            c.series.push(Series::scatter(format!("{i}"), Vec::new()));
        }
        c.series[3] = c.series[3].clone().with_color([1, 2, 3]);
        assert_eq!(c.series_color(0), PALETTE[0]);
        assert_eq!(c.series_color(3), [1, 2, 3]);
        assert_eq!(c.series_color(11), PALETTE[1]);
        assert_eq!(c.series_color(99), PALETTE[9]);
    }
}
