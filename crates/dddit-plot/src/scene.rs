//! A chart laid out as a list of drawing primitives in pixel coordinates, so that the SVG writer
//! and the PNG rasteriser draw exactly the same picture from one layout.

use crate::font::GLYPH;
use crate::Rgb;

/// Where a text's anchor point is along its reading direction.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Anchor {
    Start,
    Middle,
    End,
}

/// The two text sizes of a chart: small (labels, ticks, legend) and large (title).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum TextSize {
    Small,
    Large,
}

impl TextSize {
    /// The integer scale of the 8×8 bitmap font in the PNG.
    pub fn scale(self) -> u32 {
        match self {
            TextSize::Small => 1,
            TextSize::Large => 2,
        }
    }

    /// Width of one character cell in pixels (also its height), used for layout.
    pub fn cell(self) -> f64 {
        f64::from(GLYPH * self.scale())
    }

    /// The SVG font size whose monospace advance (about 0.6 em) matches [`TextSize::cell`].
    pub fn svg_font_size(self) -> f64 {
        match self {
            TextSize::Small => 13.0,
            TextSize::Large => 24.0,
        }
    }
}

/// How a line is drawn.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct Stroke {
    pub color: Rgb,
    pub width: f64,
    /// Dash and gap lengths in pixels; `None` for a solid line.
    pub dash: Option<(f64, f64)>,
}

impl Stroke {
    /// A solid line.
    pub fn solid(color: Rgb, width: f64) -> Stroke {
        Stroke { color, width, dash: None }
    }
}

/// One drawing primitive; coordinates are pixels from the top-left corner, pixel centres at
/// half-integers.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Shape {
    Rect {
        x: f64,
        y: f64,
        w: f64,
        h: f64,
        fill: Option<Rgb>,
        stroke: Option<Stroke>,
    },
    Polyline {
        points: Vec<(f64, f64)>,
        stroke: Stroke,
    },
    Circle {
        cx: f64,
        cy: f64,
        r: f64,
        fill: Rgb,
        stroke: Option<Stroke>,
    },
    /// Text whose anchor point is `(x, y)`, `y` being the vertical middle of the glyphs; when
    /// `vertical`, the text is rotated 90° counter-clockwise (reads bottom to top) about it.
    /// `bold` is honoured by the SVG output only (the scaled bitmap font is heavy already).
    Text {
        x: f64,
        y: f64,
        text: String,
        size: TextSize,
        anchor: Anchor,
        color: Rgb,
        vertical: bool,
        bold: bool,
    },
}

/// A primitive, and whether it is clipped to the plot area.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Item {
    pub shape: Shape,
    pub clip: bool,
}

/// A whole chart image: its size, the plot-area clip rectangle `(x, y, w, h)` and the primitives
/// in drawing order.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Scene {
    pub width: u32,
    pub height: u32,
    pub clip: (f64, f64, f64, f64),
    pub items: Vec<Item>,
}

impl Scene {
    /// Appends a primitive drawn over the whole image.
    pub fn push(&mut self, shape: Shape) {
        self.items.push(Item { shape, clip: false });
    }

    /// Appends a primitive clipped to the plot area.
    pub fn push_clipped(&mut self, shape: Shape) {
        self.items.push(Item { shape, clip: true });
    }

    /// Appends a text primitive (horizontal, regular weight).
    pub fn text(&mut self, x: f64, y: f64, text: String, size: TextSize, anchor: Anchor, color: Rgb) {
        self.push(Shape::Text { x, y, text, size, anchor, color, vertical: false, bold: false });
    }
}

/// `s` cut to at most `max` characters, ending in `...` when cut, so long labels never overflow.
pub(crate) fn truncate(s: &str, max: usize) -> String {
    let n = s.chars().count();
    if n <= max {
        return s.to_string();
    }
    if max <= 3 {
        return s.chars().take(max).collect();
    }
    let mut out: String = s.chars().take(max - 3).collect();
    out.push_str("...");
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn truncation() {
        assert_eq!(truncate("short", 10), "short");
        assert_eq!(truncate("a rather long label", 10), "a rathe...");
        assert_eq!(truncate("λλλλλλ", 5), "λλ...");
        assert_eq!(truncate("abcdef", 2), "ab");
        assert_eq!(truncate("abc", 0), "");
    }
}
