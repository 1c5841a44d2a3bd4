//! Image grids as PNG files, written atomically.

use crate::EvalError;
use std::io::BufWriter;
use std::path::Path;

/// Lays out `images` (`n` images, CHW row-major, values in [-1, 1], 1 or 3 channels, side
/// `size`) in a grid of `cols` columns with a 1-pixel gap, as 8-bit RGB pixels.
/// Returns `(width, height, rgb bytes)`.
pub fn layout(
    images: &[f32],
    n: usize,
    channels: usize,
    size: usize,
    cols: usize,
) -> Result<(usize, usize, Vec<u8>), EvalError> {
    if channels != 1 && channels != 3 {
        return Err(EvalError::Invalid(format!("image grid: 1 or 3 channels, got {channels}")));
    }
    if images.len() != n * channels * size * size || n == 0 || cols == 0 {
        return Err(EvalError::Invalid(format!(
            "image grid: {} values are not {n} images of {channels}×{size}×{size}",
            images.len()
        )));
    }
    let cols = cols.min(n);
    let rows = n.div_ceil(cols);
    let (w, h) = (cols * (size + 1) + 1, rows * (size + 1) + 1);
    let mut rgb = vec![255u8; w * h * 3];
    let plane = size * size;
    for i in 0..n {
        let (gx, gy) = (1 + (i % cols) * (size + 1), 1 + (i / cols) * (size + 1));
        let img = &images[i * channels * plane..(i + 1) * channels * plane];
        for y in 0..size {
            for x in 0..size {
                for c in 0..3 {
                    let v = img[(if channels == 1 { 0 } else { c }) * plane + y * size + x];
                    rgb[((gy + y) * w + gx + x) * 3 + c] = to_u8(v);
                }
            }
        }
    }
    Ok((w, h, rgb))
}

/// Maps [-1, 1] to 0..=255 the way the reference DiT code saves samples
/// (`clamp(127.5·x + 128, 0, 255)`).
pub fn to_u8(v: f32) -> u8 {
    (127.5 * v + 128.0).clamp(0.0, 255.0) as u8
}

/// Writes a grid of `images` (see [`layout`]) to `path` as PNG, atomically (a temporary file in
/// the same directory, then a rename).
pub fn save_grid(
    path: &Path,
    images: &[f32],
    n: usize,
    channels: usize,
    size: usize,
    cols: usize,
) -> Result<(), EvalError> {
    let (w, h, rgb) = layout(images, n, channels, size, cols)?;
    let mut bytes = Vec::new();
    {
        let mut enc = png::Encoder::new(BufWriter::new(&mut bytes), w as u32, h as u32);
        enc.set_color(png::ColorType::Rgb);
        enc.set_depth(png::BitDepth::Eight);
        let mut writer = enc.write_header().map_err(|e| EvalError::format(path, e.to_string()))?;
        writer.write_image_data(&rgb).map_err(|e| EvalError::format(path, e.to_string()))?;
        writer.finish().map_err(|e| EvalError::format(path, e.to_string()))?;
    }
    dddit_core::atomic::write(path, &bytes).map_err(|e| EvalError::io(path, e))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grid_places_images_and_maps_values() {
        // Two 2×2 grayscale images: all -1 and all +1.
        let imgs = [-1.0f32, -1.0, -1.0, -1.0, 1.0, 1.0, 1.0, 1.0];
        let (w, h, rgb) = layout(&imgs, 2, 1, 2, 2).unwrap();
        assert_eq!((w, h), (7, 4));
        let px = |x: usize, y: usize| rgb[(y * w + x) * 3];
        assert_eq!(px(0, 0), 255); // gap
        assert_eq!(px(1, 1), 0);
        assert_eq!(px(4, 2), 255);
        assert_eq!(to_u8(0.0), 128);
        assert!(layout(&imgs, 3, 1, 2, 2).is_err());
        assert!(layout(&imgs, 1, 2, 2, 2).is_err());
    }

    #[test]
    fn saved_png_decodes_to_the_grid() {
        let dir = std::env::temp_dir().join(format!("dddit-grid-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("g.png");
        let imgs: Vec<f32> = (0..3 * 4 * 4).map(|i| (i as f32 / 24.0) - 1.0).collect();
        save_grid(&path, &imgs, 1, 3, 4, 8).unwrap();
        let decoder = png::Decoder::new(std::io::BufReader::new(std::fs::File::open(&path).unwrap()));
        let mut reader = decoder.read_info().unwrap();
        let mut buf = vec![0; reader.output_buffer_size().unwrap()];
        let info = reader.next_frame(&mut buf).unwrap();
        assert_eq!((info.width, info.height), (6, 6));
        let (_, _, rgb) = layout(&imgs, 1, 3, 4, 8).unwrap();
        assert_eq!(&buf[..info.buffer_size()], &rgb[..]);
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
