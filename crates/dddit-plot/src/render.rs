//! The two outputs: an SVG document from plotters' SVG backend, and a PNG from its bitmap backend
//! (an RGB buffer) encoded with the `png` crate, since plotters' own encoder writes only to a
//! path and the runner writes its files atomically.

use crate::chart::Chart;
use crate::error::PlotError;
use crate::{draw, font};
use plotters::prelude::*;

/// The largest image side accepted, in pixels.
pub(crate) const MAX_SIDE: u32 = 16384;

/// Fails unless both sides are within 1..=[`MAX_SIDE`].
fn check_size(width: u32, height: u32) -> Result<(), PlotError> {
    let ok = |s: u32| (1..=MAX_SIDE).contains(&s);
    if ok(width) && ok(height) {
        Ok(())
    } else {
        Err(PlotError::Size { width, height, max: MAX_SIDE })
    }
}

/// `chart` as an SVG document of `width` × `height` pixels.
pub(crate) fn svg(chart: &Chart, width: u32, height: u32) -> Result<String, PlotError> {
    font::register()?;
    let mut out = String::new();
    {
        let root = SVGBackend::with_string(&mut out, (width, height)).into_drawing_area();
        draw::chart(chart, &root)?;
        root.present()?;
    }
    Ok(out)
}

/// `chart` as an encoded 8-bit RGB PNG of `width` × `height` pixels.
pub(crate) fn png(chart: &Chart, width: u32, height: u32) -> Result<Vec<u8>, PlotError> {
    check_size(width, height)?;
    font::register()?;
    let mut pixels = vec![255u8; width as usize * height as usize * 3];
    {
        let root = BitMapBackend::with_buffer(&mut pixels, (width, height)).into_drawing_area();
        draw::chart(chart, &root)?;
        root.present()?;
    }
    let mut bytes = Vec::new();
    let mut encoder = png::Encoder::new(&mut bytes, width, height);
    encoder.set_color(png::ColorType::Rgb);
    encoder.set_depth(png::BitDepth::Eight);
    let mut writer = encoder.write_header()?;
    writer.write_image_data(&pixels)?;
    writer.finish()?;
    Ok(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_are_checked() {
        assert!(check_size(1, 1).is_ok() && check_size(MAX_SIDE, 3).is_ok());
        assert!(matches!(check_size(0, 10), Err(PlotError::Size { width: 0, height: 10, .. })));
        assert!(check_size(10, MAX_SIDE + 1).is_err());
    }
}
