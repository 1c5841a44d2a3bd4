//! The embedded font: DejaVu Sans, registered once with plotters' `ab_glyph` text renderer under
//! the generic `sans-serif` family, so that PNG text needs no system font and SVG text names a
//! family every viewer has. Also fits texts to the room they have.

use crate::chart::Rgb;
use crate::error::PlotError;
use plotters::prelude::*;
use plotters::style::{FontStyle, RGBColor, TextStyle};
use std::sync::OnceLock;

/// DejaVu Sans 2.37 (licence in `assets/LICENSE-DejaVu.txt`).
static DEJAVU_SANS: &[u8] = include_bytes!("../assets/DejaVuSans.ttf");

/// The family name every text of a chart uses.
const FAMILY: &str = "sans-serif";

/// Registers the embedded font with plotters (once per process).
pub(crate) fn register() -> Result<(), PlotError> {
    static DONE: OnceLock<bool> = OnceLock::new();
    let ok = *DONE.get_or_init(|| plotters::style::register_font(FAMILY, FontStyle::Normal, DEJAVU_SANS).is_ok());
    if ok {
        Ok(())
    } else {
        Err(PlotError::Font)
    }
}

/// The text style of size `size` (plotters' unit: about 1.2 × the em size in pixels) in `color`.
pub(crate) fn style(size: f64, color: Rgb) -> TextStyle<'static> {
    (FAMILY, size).into_font().color(&RGBColor(color[0], color[1], color[2]))
}

/// `s` cut to at most `max` characters, ending in `...` when cut.
pub(crate) fn truncate(s: &str, max: usize) -> String {
    if s.chars().count() <= max {
        return s.to_string();
    }
    if max <= 3 {
        return s.chars().take(max).collect();
    }
    let mut out: String = s.chars().take(max - 3).collect();
    out.push_str("...");
    out
}

/// The width in pixels of `text` drawn in `style` on `area`.
pub(crate) fn width<DB: DrawingBackend, CT: plotters::coord::CoordTranslate>(
    area: &DrawingArea<DB, CT>,
    text: &str,
    style: &TextStyle,
) -> Result<f64, PlotError> {
    Ok(f64::from(area.estimate_text_size(text, style)?.0))
}

/// The longest [`truncate`]d form of `text` that is at most `room` pixels wide in `style`.
pub(crate) fn fit<DB: DrawingBackend, CT: plotters::coord::CoordTranslate>(
    area: &DrawingArea<DB, CT>,
    text: &str,
    style: &TextStyle,
    room: f64,
) -> Result<String, PlotError> {
    // No glyph of DejaVu Sans is narrower than a fifth of the style's size, which bounds the
    // search for long texts.
    let (mut lo, mut hi) = (0, text.chars().count().min((room / (0.2 * style.font.get_size())).max(0.0) as usize + 1));
    if hi == text.chars().count() && width(area, text, style)? <= room {
        return Ok(text.to_string());
    }
    // The largest count of characters whose truncation fits: lo fits (or is 0), hi does not.
    while hi - lo > 1 {
        let mid = (lo + hi) / 2;
        if width(area, &truncate(text, mid), style)? <= room {
            lo = mid;
        } else {
            hi = mid;
        }
    }
    Ok(truncate(text, lo))
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

    #[test]
    fn texts_are_fitted_to_their_room() {
        register().unwrap();
        let mut svg = String::new();
        let area = SVGBackend::with_string(&mut svg, (400, 100)).into_drawing_area();
        let s = style(14.0, [0, 0, 0]);
        let w = width(&area, "GFLOPs per sample", &s).unwrap();
        assert!((80.0..200.0).contains(&w), "{w}");
        assert_eq!(fit(&area, "GFLOPs per sample", &s, w).unwrap(), "GFLOPs per sample");
        let cut = fit(&area, "GFLOPs per sample", &s, w - 1.0).unwrap();
        assert!(cut.ends_with("...") && width(&area, &cut, &s).unwrap() <= w - 1.0, "{cut}");
        let long = fit(&area, &"x".repeat(100_000), &s, 300.0).unwrap();
        assert!(long.len() < 60 && width(&area, &long, &s).unwrap() <= 300.0);
        assert_eq!(fit(&area, "abc", &s, 0.0).unwrap(), "");
    }
}
