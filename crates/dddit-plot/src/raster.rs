//! A small software rasteriser for [`Scene`]s: an RGB buffer with anti-aliased thick lines and
//! discs, filled rectangles, and text from the embedded 8×8 bitmap font at integer scale; then
//! PNG encoding.

use crate::error::PlotError;
use crate::font::{glyph, to_ascii, GLYPH};
use crate::scene::{Anchor, Scene, Shape, Stroke};
use crate::Rgb;

/// The largest image side accepted, in pixels.
pub(crate) const MAX_SIDE: u32 = 16384;

/// An 8-bit RGB image with a clip rectangle that every drawing operation respects.
#[derive(Debug, Clone)]
pub(crate) struct Canvas {
    pub width: u32,
    pub height: u32,
    /// Row-major RGB bytes.
    pub pixels: Vec<u8>,
    /// Pixels drawn are those with `x0 <= x < x1` and `y0 <= y < y1`.
    clip: (i64, i64, i64, i64),
}

/// Fails unless both sides are within 1..=[`MAX_SIDE`].
pub(crate) fn check_size(width: u32, height: u32) -> Result<(), PlotError> {
    let ok = |s: u32| (1..=MAX_SIDE).contains(&s);
    if ok(width) && ok(height) {
        Ok(())
    } else {
        Err(PlotError::Size { width, height, max: MAX_SIDE })
    }
}

/// Distance from `(px, py)` to the segment `a`–`b`.
fn segment_distance(px: f64, py: f64, a: (f64, f64), b: (f64, f64)) -> f64 {
    let (dx, dy) = (b.0 - a.0, b.1 - a.1);
    let len2 = dx * dx + dy * dy;
    let t = if len2 > 0.0 { (((px - a.0) * dx + (py - a.1) * dy) / len2).clamp(0.0, 1.0) } else { 0.0 };
    (px - a.0 - t * dx).hypot(py - a.1 - t * dy)
}

/// The part of segment `a`–`b` inside the rectangle `(x0, y0, x1, y1)` (Liang–Barsky), or
/// `None` when it misses the rectangle or a coordinate is not finite.
fn clip_segment(
    a: (f64, f64),
    b: (f64, f64),
    (x0, y0, x1, y1): (f64, f64, f64, f64),
) -> Option<((f64, f64), (f64, f64))> {
    let (dx, dy) = (b.0 - a.0, b.1 - a.1);
    if !(dx.is_finite() && dy.is_finite()) {
        return None;
    }
    let (mut t0, mut t1) = (0.0f64, 1.0f64);
    for (p, q) in [(-dx, a.0 - x0), (dx, x1 - a.0), (-dy, a.1 - y0), (dy, y1 - a.1)] {
        if p == 0.0 {
            if q < 0.0 {
                return None;
            }
        } else {
            let r = q / p;
            if p < 0.0 {
                t0 = t0.max(r);
            } else {
                t1 = t1.min(r);
            }
        }
    }
    (t0 <= t1).then_some(((a.0 + t0 * dx, a.1 + t0 * dy), (a.0 + t1 * dx, a.1 + t1 * dy)))
}

/// The segments to draw for a polyline: all of them, or the "on" parts of a dash pattern that
/// runs continuously along the whole line.
fn dash_segments(points: &[(f64, f64)], dash: Option<(f64, f64)>) -> Vec<((f64, f64), (f64, f64))> {
    let pairs = points.windows(2).map(|w| (w[0], w[1]));
    let Some((on, off)) = dash.filter(|(on, off)| *on > 0.0 && *off >= 0.0 && on + off > 0.0) else {
        return pairs.collect();
    };
    let period = on + off;
    let mut out = Vec::new();
    let mut phase = 0.0; // distance travelled within the current period
    for (a, b) in pairs {
        let len = (b.0 - a.0).hypot(b.1 - a.1);
        if !(len.is_finite() && len > 0.0) {
            continue;
        }
        let at = |d: f64| (a.0 + (b.0 - a.0) * d / len, a.1 + (b.1 - a.1) * d / len);
        let mut d = 0.0;
        while d < len {
            let (in_on, left) = if phase < on { (true, on - phase) } else { (false, period - phase) };
            let step = left.min(len - d);
            if in_on {
                out.push((at(d), at(d + step)));
            }
            d += step;
            phase = (phase + step) % period;
        }
    }
    out
}

impl Canvas {
    /// A white canvas.
    pub fn new(width: u32, height: u32) -> Canvas {
        let full = (0, 0, i64::from(width), i64::from(height));
        Canvas { width, height, pixels: vec![255; width as usize * height as usize * 3], clip: full }
    }

    /// Restricts drawing to the pixels inside `(x, y, w, h)` (and the canvas), or lifts the
    /// restriction when `None`.
    pub fn set_clip(&mut self, rect: Option<(f64, f64, f64, f64)>) {
        let (w, h) = (i64::from(self.width), i64::from(self.height));
        self.clip = match rect {
            None => (0, 0, w, h),
            Some((x, y, cw, ch)) => {
                let c = |v: f64, max: i64| (v.round() as i64).clamp(0, max);
                (c(x, w), c(y, h), c(x + cw + 1.0, w), c(y + ch + 1.0, h))
            }
        };
    }

    /// The colour of pixel `(x, y)`.
    #[cfg(test)]
    pub fn get(&self, x: u32, y: u32) -> Rgb {
        let i = (y as usize * self.width as usize + x as usize) * 3;
        [self.pixels[i], self.pixels[i + 1], self.pixels[i + 2]]
    }

    /// Mixes `c` into pixel `(x, y)` with opacity `a` (0..=1), if it is inside the clip.
    fn blend(&mut self, x: i64, y: i64, c: Rgb, a: f64) {
        let (x0, y0, x1, y1) = self.clip;
        // NaN coverage (from absurd coordinates) counts as none.
        let a = if a.is_nan() { 0.0 } else { a.min(1.0) };
        if a <= 0.0 || x < x0 || y < y0 || x >= x1 || y >= y1 {
            return;
        }
        let i = (y as usize * self.width as usize + x as usize) * 3;
        for (old, &new) in self.pixels[i..i + 3].iter_mut().zip(&c) {
            let o = f64::from(*old);
            *old = (o + (f64::from(new) - o) * a).round() as u8;
        }
    }

    /// Fills the pixels whose centres lie inside the rectangle.
    pub fn fill_rect(&mut self, x: f64, y: f64, w: f64, h: f64, c: Rgb) {
        let (x0, y0, x1, y1) = self.clip;
        let xs = ((x - 0.5).ceil() as i64).max(x0);
        let xe = ((x + w - 0.5).ceil() as i64).min(x1);
        let ys = ((y - 0.5).ceil() as i64).max(y0);
        let ye = ((y + h - 0.5).ceil() as i64).min(y1);
        for j in ys..ye {
            for i in xs..xe {
                self.blend(i, j, c, 1.0);
            }
        }
    }

    /// An anti-aliased segment of width `width` with round ends.
    pub fn line(&mut self, a: (f64, f64), b: (f64, f64), width: f64, c: Rgb) {
        if !width.is_finite() {
            return;
        }
        let hw = (width / 2.0).max(0.5);
        let reach = hw + 1.0;
        let (x0, y0, x1, y1) = self.clip;
        // Only the part near the clip rectangle matters (and far-away ends are numerically unsafe).
        let (fx0, fy0) = (x0 as f64 - reach - 1.0, y0 as f64 - reach - 1.0);
        let (fx1, fy1) = (x1 as f64 + reach + 1.0, y1 as f64 + reach + 1.0);
        let Some((a, b)) = clip_segment(a, b, (fx0, fy0, fx1, fy1)) else {
            return;
        };
        // Walk the major axis; at each step only a band around the line is examined.
        let steep = (b.1 - a.1).abs() > (b.0 - a.0).abs();
        let (major_a, major_b, minor_a, minor_b) = if steep { (a.1, b.1, a.0, b.0) } else { (a.0, b.0, a.1, b.1) };
        let (lo_clip, hi_clip, mlo_clip, mhi_clip) = if steep { (y0, y1, x0, x1) } else { (x0, x1, y0, y1) };
        let dmaj = major_b - major_a;
        let slope = if dmaj != 0.0 { (minor_b - minor_a) / dmaj } else { 0.0 };
        let band = reach * (1.0 + slope * slope).sqrt() + 1.0;
        let start = ((major_a.min(major_b) - reach).floor() as i64).max(lo_clip);
        let end = ((major_a.max(major_b) + reach).ceil() as i64).min(hi_clip - 1);
        for m in start..=end {
            let pm = m as f64 + 0.5;
            let t = if dmaj != 0.0 { ((pm - major_a) / dmaj).clamp(0.0, 1.0) } else { 0.0 };
            let centre = minor_a + t * (minor_b - minor_a);
            let ms = ((centre - band).floor() as i64).max(mlo_clip);
            let me = ((centre + band).ceil() as i64).min(mhi_clip - 1);
            for n in ms..=me {
                let (px, py) = if steep { (n, m) } else { (m, n) };
                let d = segment_distance(px as f64 + 0.5, py as f64 + 0.5, a, b);
                self.blend(px, py, c, (hw + 0.5 - d).clamp(0.0, 1.0));
            }
        }
    }

    /// A polyline, solid or dashed.
    pub fn polyline(&mut self, points: &[(f64, f64)], stroke: &Stroke) {
        for (a, b) in dash_segments(points, stroke.dash) {
            self.line(a, b, stroke.width, stroke.color);
        }
    }

    /// An anti-aliased filled disc.
    pub fn disc(&mut self, cx: f64, cy: f64, r: f64, c: Rgb) {
        if !(cx.is_finite() && cy.is_finite() && r.is_finite() && r > 0.0) {
            return;
        }
        let (x0, y0, x1, y1) = self.clip;
        let xs = ((cx - r - 1.0).floor() as i64).max(x0);
        let xe = ((cx + r + 1.0).ceil() as i64).min(x1 - 1);
        let ys = ((cy - r - 1.0).floor() as i64).max(y0);
        let ye = ((cy + r + 1.0).ceil() as i64).min(y1 - 1);
        for j in ys..=ye {
            for i in xs..=xe {
                let d = (i as f64 + 0.5 - cx).hypot(j as f64 + 0.5 - cy);
                self.blend(i, j, c, (r + 0.5 - d).clamp(0.0, 1.0));
            }
        }
    }

    /// Text in the bitmap font at integer `scale`, anchored at `(x, y)` (`y` the vertical middle
    /// of the glyphs); `vertical` text reads bottom to top.
    pub fn text(&mut self, x: f64, y: f64, s: &str, scale: u32, anchor: Anchor, c: Rgb, vertical: bool) {
        if !(x.is_finite() && y.is_finite()) {
            return;
        }
        let s = to_ascii(s);
        let cell = i64::from(GLYPH * scale.max(1));
        let scale = scale.max(1) as i64;
        let len = s.chars().count() as i64 * cell;
        let offset = match anchor {
            Anchor::Start => 0,
            Anchor::Middle => len / 2,
            Anchor::End => len,
        };
        // (u0, v0): where the text's first column and top row start, in text coordinates that
        // map to the screen directly (horizontal) or rotated 90° counter-clockwise (vertical).
        let (ax, ay) = (x.round() as i64, y.round() as i64);
        for (ci, ch) in s.chars().enumerate() {
            let rows = glyph(ch);
            for (gy, row) in rows.iter().enumerate() {
                for gx in 0..8 {
                    if row & (1 << gx) == 0 {
                        continue;
                    }
                    let u = ci as i64 * cell + gx * scale - offset; // along the text
                    let v = gy as i64 * scale - cell / 2; // across, from the middle
                    for dy in 0..scale {
                        for dx in 0..scale {
                            let (px, py) =
                                if vertical { (ax + v + dy, ay - (u + dx)) } else { (ax + u + dx, ay + v + dy) };
                            self.blend(px, py, c, 1.0);
                        }
                    }
                }
            }
        }
    }
}

/// Draws a scene.
pub(crate) fn render(scene: &Scene) -> Canvas {
    let mut canvas = Canvas::new(scene.width, scene.height);
    for item in &scene.items {
        canvas.set_clip(item.clip.then_some(scene.clip));
        match &item.shape {
            Shape::Rect { x, y, w, h, fill, stroke } => {
                if let Some(f) = fill {
                    canvas.fill_rect(*x, *y, *w, *h, *f);
                }
                if let Some(s) = stroke {
                    let (x1, y1) = (x + w, y + h);
                    let ring = [(*x, *y), (x1, *y), (x1, y1), (*x, y1), (*x, *y)];
                    canvas.polyline(&ring, s);
                }
            }
            Shape::Polyline { points, stroke } => canvas.polyline(points, stroke),
            Shape::Circle { cx, cy, r, fill, stroke } => match stroke {
                // The stroke is centred on the circle's edge, as in SVG.
                Some(s) => {
                    canvas.disc(*cx, *cy, r + s.width / 2.0, s.color);
                    canvas.disc(*cx, *cy, r - s.width / 2.0, *fill);
                }
                None => canvas.disc(*cx, *cy, *r, *fill),
            },
            // The bitmap font at scale 2 is heavy already: bold is for SVG only.
            Shape::Text { x, y, text, size, anchor, color, vertical, bold: _ } => {
                canvas.text(*x, *y, text, size.scale(), *anchor, *color, *vertical);
            }
        }
    }
    canvas
}

/// The canvas encoded as an 8-bit RGB PNG.
pub(crate) fn encode_png(canvas: &Canvas) -> Result<Vec<u8>, PlotError> {
    let mut bytes = Vec::new();
    let mut encoder = png::Encoder::new(&mut bytes, canvas.width, canvas.height);
    encoder.set_color(png::ColorType::Rgb);
    encoder.set_depth(png::BitDepth::Eight);
    let mut writer = encoder.write_header()?;
    writer.write_image_data(&canvas.pixels)?;
    writer.finish()?;
    Ok(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    const BLACK: Rgb = [0, 0, 0];

    fn dark(c: &Canvas) -> usize {
        c.pixels.chunks(3).filter(|p| p.iter().all(|&v| v < 128)).count()
    }

    #[test]
    fn crisp_lines_cover_exactly_their_pixels() {
        let mut c = Canvas::new(20, 10);
        c.line((2.0, 4.5), (12.0, 4.5), 1.0, BLACK);
        assert_eq!(c.get(5, 4), BLACK);
        assert_eq!(c.get(5, 3), [255, 255, 255]);
        assert_eq!(c.get(5, 5), [255, 255, 255]);
        // A diagonal line of width 2 covers about width × length pixels.
        let mut d = Canvas::new(40, 40);
        d.line((5.0, 5.0), (35.0, 35.0), 2.0, BLACK);
        let n = dark(&d) as f64;
        let expected = 2.0 * 30.0 * 2f64.sqrt();
        assert!((n - expected).abs() < 0.25 * expected, "{n} vs {expected}");
    }

    #[test]
    fn clip_is_respected_and_huge_coordinates_are_harmless() {
        let mut c = Canvas::new(30, 30);
        c.set_clip(Some((10.0, 10.0, 9.0, 9.0)));
        c.line((-1e300, 15.0), (1e300, 15.5), 3.0, BLACK);
        c.disc(15.0, 15.0, 1e6, BLACK);
        c.line((f64::NAN, 0.0), (1.0, 1.0), 1.0, BLACK);
        for y in 0..30 {
            for x in 0..30 {
                let inside = (10..20).contains(&x) && (10..20).contains(&y);
                assert_eq!(c.get(x, y) == BLACK, inside, "{x},{y}");
            }
        }
    }

    #[test]
    fn discs_have_the_right_area() {
        let mut c = Canvas::new(40, 40);
        c.disc(20.0, 20.0, 10.0, BLACK);
        let n = dark(&c) as f64;
        let area = std::f64::consts::PI * 100.0;
        assert!((n - area).abs() < 0.05 * area, "{n} vs {area}");
    }

    #[test]
    fn segments_are_clipped() {
        let r = (0.0, 0.0, 10.0, 10.0);
        assert_eq!(clip_segment((-10.0, 5.0), (20.0, 5.0), r), Some(((0.0, 5.0), (10.0, 5.0))));
        assert_eq!(clip_segment((2.0, 2.0), (3.0, 3.0), r), Some(((2.0, 2.0), (3.0, 3.0))));
        assert_eq!(clip_segment((-5.0, -5.0), (-1.0, 20.0), r), None);
        assert_eq!(clip_segment((f64::NAN, 0.0), (1.0, 1.0), r), None);
    }

    #[test]
    fn dashes_follow_the_pattern() {
        let segs = dash_segments(&[(0.0, 0.0), (10.0, 0.0), (10.0, 10.0)], Some((4.0, 2.0)));
        let total: f64 = segs.iter().map(|(a, b)| (b.0 - a.0).hypot(b.1 - a.1)).sum();
        // 20 px of path: on 0-4, 6-10, 12-16, 18-20 → 14 px drawn.
        assert!((total - 14.0).abs() < 1e-9, "{total}");
        assert_eq!(dash_segments(&[(0.0, 0.0), (1.0, 1.0)], None).len(), 1);
    }

    #[test]
    fn text_draws_glyph_pixels_in_its_box() {
        let mut c = Canvas::new(60, 20);
        c.text(30.0, 10.0, "AB", 2, Anchor::Middle, BLACK, false);
        let n = dark(&c);
        assert!(n > 40, "{n}");
        // Everything is inside the 32×16 box centred at (30, 10).
        for y in 0..20 {
            for x in 0..60 {
                if c.get(x, y) == BLACK {
                    assert!((14..46).contains(&x) && (2..18).contains(&y), "{x},{y}");
                }
            }
        }
        // Vertical text occupies a tall box.
        let mut v = Canvas::new(20, 60);
        v.text(10.0, 30.0, "AB", 1, Anchor::Middle, BLACK, true);
        let ys: Vec<u32> = (0..60).filter(|&y| (0..20).any(|x| v.get(x, y) == BLACK)).collect();
        let xs: Vec<u32> = (0..20).filter(|&x| (0..60).any(|y| v.get(x, y) == BLACK)).collect();
        assert!(ys.last().unwrap() - ys[0] > xs.last().unwrap() - xs[0]);
    }

    #[test]
    fn sizes_are_checked() {
        assert!(check_size(1, 1).is_ok());
        assert!(matches!(check_size(0, 10), Err(PlotError::Size { .. })));
        assert!(check_size(10, MAX_SIDE + 1).is_err());
    }
}
