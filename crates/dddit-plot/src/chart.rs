//! The chart description (points, series, axes options) and its outputs: SVG text or PNG bytes.

use crate::error::PlotError;
use crate::render;

/// An RGB colour, 8 bits per channel.
pub type Rgb = [u8; 3];

/// The image width the runner's plots use, in pixels.
pub const DEFAULT_WIDTH: u32 = 800;
/// The image height the runner's plots use, in pixels.
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
/// categorical x axis, a Pareto frontier and a note. Render it with [`Chart::to_svg`] or
/// [`Chart::to_png`].
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
    /// names the `sans-serif` family and is sized for DejaVu Sans.
    pub fn to_svg(&self, width: u32, height: u32) -> Result<String, PlotError> {
        render::svg(self, width.max(1), height.max(1))
    }

    /// The chart as an encoded 8-bit RGB PNG of `width` × `height` pixels, text drawn with the
    /// embedded DejaVu Sans.
    pub fn to_png(&self, width: u32, height: u32) -> Result<Vec<u8>, PlotError> {
        render::png(self, width, height)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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

    /// Pixels of exactly `color` in rows `y0..y1`.
    fn count(buf: &[u8], width: u32, (y0, y1): (u32, u32), color: impl Fn(Rgb) -> bool) -> usize {
        let row = width as usize * 3;
        buf[y0 as usize * row..y1 as usize * row].chunks(3).filter(|p| color([p[0], p[1], p[2]])).count()
    }

    /// The texts of an SVG document, unescaped only as far as the tests need.
    fn texts(svg: &str) -> Vec<String> {
        svg.split("<text")
            .skip(1)
            .map(|t| t[t.find('>').unwrap() + 1..t.find("</text>").unwrap()].trim().to_string())
            .collect()
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
    fn svg_has_title_labels_legend_and_one_marker_per_finite_point() {
        let svg = example().to_svg(800, 560).unwrap();
        assert!(svg.starts_with("<svg") && svg.trim_end().ends_with("</svg>"));
        assert!(svg.contains(r#"width="800" height="560""#));
        let t = texts(&svg);
        assert!(t.contains(&"FD vs GFLOPs &lt;test&gt; &amp; more".to_string()), "title missing or unescaped: {t:?}");
        assert!(!svg.contains("<test>"));
        for label in
            ["GFLOPs", "FD", "dense λ=0", "cap ≤ 0.5", "mean ± std over 2 seeds", "dense", "routed", "Pareto front"]
        {
            assert!(t.iter().any(|x| x == label), "{label} missing from {t:?}");
        }
        // Each marker is a filled circle and its white rim: 4 finite points of 6.
        assert_eq!(svg.matches("<circle").count(), 2 * 4);
        // Series colours come from the palette.
        assert!(svg.contains("#1F77B4") && svg.contains("#FF7F0E"));
        // Tick labels on both axes.
        assert!(t.iter().any(|x| x == "6") && t.iter().any(|x| x == "5"), "{t:?}");
        assert_eq!(svg.matches("<text").count(), svg.matches("</text>").count());
        assert_eq!(svg.matches('<').count(), svg.matches('>').count());
    }

    #[test]
    fn markers_and_the_front_follow_the_options() {
        let mut c = example();
        c.pareto_min = false;
        c.series[1].markers = false;
        let svg = c.to_svg(800, 560).unwrap();
        assert!(!texts(&svg).contains(&"Pareto front".to_string()));
        assert_eq!(svg.matches("<circle").count(), 2);
    }

    #[test]
    fn png_decodes_to_the_requested_size_and_shows_the_chart() {
        let c = example();
        let (w, h) = (640, 480);
        let (dw, dh, buf) = decode(&c.to_png(w, h).unwrap());
        assert_eq!((dw, dh), (w, h));
        assert_eq!(buf.len(), (w * h * 3) as usize);
        // Both series' colours (markers, lines, legend swatches), the title band, the note.
        assert!(count(&buf, w, (0, h), |p| p == PALETTE[0]) > 40);
        assert!(count(&buf, w, (0, h), |p| p == PALETTE[1]) > 200);
        let dark = |p: Rgb| p.iter().all(|&v| v < 160);
        assert!(count(&buf, w, (0, 30), dark) > 100, "no title pixels");
        assert!(count(&buf, w, (h - 20, h), dark) > 50, "no note pixels");
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
        let t = texts(&c.to_svg(800, 560).unwrap());
        for l in ["t ∈ [0,250)", "[250,500)", "[500,750)", "[750,1000)", "λ=0.1"] {
            assert!(t.iter().any(|x| x == l), "{l} missing from {t:?}");
        }
        assert!(!t.iter().any(|x| x == "0.5"), "automatic x ticks must not appear");
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
        let svg = c.to_svg(800, 560).unwrap();
        assert_eq!(svg.matches("<circle").count(), 2 * 2);
        let t = texts(&svg);
        assert!(t.iter().any(|x| x == "10") && t.iter().any(|x| x == "100"), "{t:?}");
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
            for (w, h) in [(800, 560), (1, 1), (7, 3), (60, 40), (2000, 90), (150, 1200)] {
                let svg = c.to_svg(w, h).unwrap();
                assert!(svg.contains("</svg>"));
                let (dw, dh, _) = decode(&c.to_png(w, h).unwrap());
                assert_eq!((dw, dh), (w, h));
            }
            assert!(c.to_svg(0, 0).unwrap().contains("</svg>"));
            assert!(matches!(c.to_png(0, 10), Err(PlotError::Size { .. })));
        }
        // Legend rows that do not fit are summarised.
        let t = texts(&cases[5].to_svg(800, 560).unwrap());
        assert!(t.iter().any(|x| x.starts_with("... (") && x.ends_with(" more)")), "{t:?}");
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
