//! Writes a [`Scene`] as a standalone SVG document. Text stays text (`font-family="monospace"`,
//! XML-escaped), so no font is needed to generate it and the viewer's font renders it.

use std::fmt::Write;

use crate::scene::{Anchor, Scene, Shape, Stroke};
use crate::Rgb;

/// The id of the plot-area clip path.
const CLIP_ID: &str = "plot-area";

/// `s` escaped for XML text and attribute values; characters XML 1.0 forbids become spaces.
pub(crate) fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            '\t' | '\n' | '\r' => out.push(' '),
            c if (c as u32) < 0x20 || matches!(c, '\u{fffe}' | '\u{ffff}') => out.push(' '),
            c => out.push(c),
        }
    }
    out
}

/// A coordinate with at most two decimals and no trailing zeros (non-finite values become 0,
/// which keeps the document valid; such primitives are not emitted anyway).
fn num(v: f64) -> String {
    if !v.is_finite() {
        return "0".into();
    }
    let s = format!("{:.2}", v);
    let s = s.trim_end_matches('0').trim_end_matches('.');
    if s == "-0" || s.is_empty() {
        "0".into()
    } else {
        s.into()
    }
}

fn color(c: Rgb) -> String {
    format!("#{:02x}{:02x}{:02x}", c[0], c[1], c[2])
}

fn stroke_attrs(s: &Stroke) -> String {
    let mut a = format!(r#" stroke="{}" stroke-width="{}""#, color(s.color), num(s.width));
    match s.dash {
        Some((on, off)) => {
            let _ = write!(a, r#" stroke-dasharray="{},{}" stroke-linecap="butt""#, num(on), num(off));
        }
        None => a.push_str(r#" stroke-linecap="round""#),
    }
    a
}

/// Whether all coordinates of a shape are finite (others are skipped, as in the PNG).
fn finite(shape: &Shape) -> bool {
    match shape {
        Shape::Rect { x, y, w, h, .. } => [x, y, w, h].iter().all(|v| v.is_finite()),
        Shape::Polyline { points, .. } => points.iter().all(|(x, y)| x.is_finite() && y.is_finite()),
        Shape::Circle { cx, cy, r, .. } => [cx, cy, r].iter().all(|v| v.is_finite()),
        Shape::Text { x, y, .. } => x.is_finite() && y.is_finite(),
    }
}

/// The scene as an SVG document.
pub(crate) fn write(scene: &Scene) -> String {
    let (w, h) = (scene.width, scene.height);
    let mut out = String::new();
    let _ = writeln!(out, r#"<?xml version="1.0" encoding="UTF-8"?>"#);
    let _ = writeln!(out, r#"<svg xmlns="http://www.w3.org/2000/svg" width="{w}" height="{h}" viewBox="0 0 {w} {h}">"#);
    let (cx, cy, cw, ch) = scene.clip;
    let _ = writeln!(
        out,
        r#"<defs><clipPath id="{CLIP_ID}"><rect x="{}" y="{}" width="{}" height="{}"/></clipPath></defs>"#,
        num(cx),
        num(cy),
        num(cw.max(0.0)),
        num(ch.max(0.0))
    );
    for item in scene.items.iter().filter(|i| finite(&i.shape)) {
        let clip = if item.clip { format!(r#" clip-path="url(#{CLIP_ID})""#) } else { String::new() };
        match &item.shape {
            Shape::Rect { x, y, w, h, fill, stroke } => {
                let fill = fill.map_or("none".into(), color);
                let stroke = stroke.as_ref().map_or(String::new(), stroke_attrs);
                let _ = writeln!(
                    out,
                    r#"<rect x="{}" y="{}" width="{}" height="{}" fill="{fill}"{stroke}{clip}/>"#,
                    num(*x),
                    num(*y),
                    num(w.max(0.0)),
                    num(h.max(0.0))
                );
            }
            Shape::Polyline { points, stroke } => {
                let pts: Vec<String> = points.iter().map(|(x, y)| format!("{},{}", num(*x), num(*y))).collect();
                let _ = writeln!(
                    out,
                    r#"<polyline points="{}" fill="none" stroke-linejoin="round"{}{clip}/>"#,
                    pts.join(" "),
                    stroke_attrs(stroke)
                );
            }
            Shape::Circle { cx, cy, r, fill, stroke } => {
                let stroke = stroke.as_ref().map_or(String::new(), stroke_attrs);
                let _ = writeln!(
                    out,
                    r#"<circle cx="{}" cy="{}" r="{}" fill="{}"{stroke}{clip}/>"#,
                    num(*cx),
                    num(*cy),
                    num(r.max(0.0)),
                    color(*fill)
                );
            }
            Shape::Text { x, y, text, size, anchor, color: c, vertical, bold } => {
                let anchor = match anchor {
                    Anchor::Start => "start",
                    Anchor::Middle => "middle",
                    Anchor::End => "end",
                };
                let weight = if *bold { r#" font-weight="bold""# } else { "" };
                let rotate = if *vertical {
                    format!(r#" transform="rotate(-90 {} {})""#, num(*x), num(*y))
                } else {
                    String::new()
                };
                let size = num(size.svg_font_size());
                let _ = writeln!(
                    out,
                    r#"<text x="{}" y="{}" dy="0.35em" font-family="monospace" font-size="{size}" text-anchor="{anchor}" fill="{}"{weight}{rotate}{clip}>{}</text>"#,
                    num(*x),
                    num(*y),
                    color(*c),
                    escape(text)
                );
            }
        }
    }
    out.push_str("</svg>\n");
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scene::TextSize;

    #[test]
    fn escaping() {
        assert_eq!(escape(r#"a<b & "c" 'd'>"#), "a&lt;b &amp; &quot;c&quot; &apos;d&apos;&gt;");
        assert_eq!(escape("mean ± std, t ∈ [0,1)"), "mean ± std, t ∈ [0,1)");
        assert_eq!(escape("a\u{1}b\nc"), "a b c");
    }

    #[test]
    fn numbers() {
        assert_eq!(num(1.0), "1");
        assert_eq!(num(1.25), "1.25");
        assert_eq!(num(1.23456), "1.23");
        assert_eq!(num(-0.001), "0");
        assert_eq!(num(10.5), "10.5");
        assert_eq!(num(f64::NAN), "0");
    }

    #[test]
    fn shapes_are_written_and_non_finite_skipped() {
        let mut scene = Scene { width: 100, height: 50, clip: (10.0, 5.0, 80.0, 40.0), items: Vec::new() };
        scene.push_clipped(Shape::Circle { cx: 20.0, cy: 20.0, r: 3.0, fill: [255, 0, 0], stroke: None });
        scene.push_clipped(Shape::Circle { cx: f64::NAN, cy: 20.0, r: 3.0, fill: [255, 0, 0], stroke: None });
        scene.text(50.0, 10.0, "x < y".into(), TextSize::Large, Anchor::Middle, [0, 0, 0]);
        let svg = write(&scene);
        assert!(svg.starts_with("<?xml"));
        assert!(svg.trim_end().ends_with("</svg>"));
        assert_eq!(svg.matches("<circle").count(), 1);
        assert!(svg.contains(r##"fill="#ff0000" clip-path="url(#plot-area)""##), "{svg}");
        assert!(svg.contains(">x &lt; y</text>"));
        assert!(svg.contains(r#"width="100" height="50""#));
    }
}
