//! Procedural, seeded scenes of coloured shapes: no files, exact captions, per-object ground truth.
//!
//! Sample `i` of a [`Shapes`] data set is generated from `(seed, i)` alone with a local
//! [`SplitMix64`]: 1 to `max_objects` shapes, each of a [`ShapeKind`], a [`Colour`] of the named
//! palette, a [`SizeClass`] and a distinct [`Cell`] of a 3×3 grid, rasterised without
//! anti-aliasing on a plain (or low-contrast striped / checkered) grey background. Objects are
//! ordered large first; the label is the kind of the first object and the caption lists the
//! objects in order, e.g. `"a large red circle at the top left and a small blue square at the
//! bottom"`.
//!
//! ```
//! use dddit_data::{Dataset, ShapesConfig};
//! let shapes = ShapesConfig { size: 32, len: 100, seed: 7, ..Default::default() }.init().unwrap();
//! let s = shapes.get(3);
//! assert_eq!(s.image.len(), 3 * 32 * 32);
//! assert_eq!(s.label, s.objects[0].kind.index());
//! assert_eq!(s, shapes.get(3));
//! ```

use crate::geometry::Grid;
use crate::rng::SplitMix64;
use crate::{edge_density, Complexity, DataError, Dataset, Sample};
use serde::{Deserialize, Serialize};
use std::fmt;

/// Kind of a shape; the label of a shapes sample is the kind of its first object.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum ShapeKind {
    /// A filled disc.
    Circle,
    /// An axis-aligned filled square.
    Square,
    /// A filled triangle pointing up.
    Triangle,
    /// A square turned by 45°.
    Diamond,
    /// A plus sign.
    Cross,
}

impl ShapeKind {
    /// Every kind, in label order.
    pub const ALL: [ShapeKind; 5] =
        [ShapeKind::Circle, ShapeKind::Square, ShapeKind::Triangle, ShapeKind::Diamond, ShapeKind::Cross];

    /// The English word used in captions.
    pub fn name(self) -> &'static str {
        match self {
            ShapeKind::Circle => "circle",
            ShapeKind::Square => "square",
            ShapeKind::Triangle => "triangle",
            ShapeKind::Diamond => "diamond",
            ShapeKind::Cross => "cross",
        }
    }

    /// The class label of this kind (its position in [`ShapeKind::ALL`]).
    pub fn index(self) -> usize {
        self as usize
    }

    /// Area of the shape of radius `r`, divided by `r²` (for `r ≥ 1.5`, where the cross arm is
    /// `r/3`).
    pub fn area_factor(self) -> f32 {
        match self {
            ShapeKind::Circle => std::f32::consts::PI,
            ShapeKind::Square => 4.0 * 0.85 * 0.85,
            ShapeKind::Triangle | ShapeKind::Diamond => 2.0,
            ShapeKind::Cross => 20.0 / 9.0,
        }
    }

    /// Half-width of the row at offset `dy` of the shape of radius `r` (the row is `|dx| ≤ w`
    /// for every kind), or `None` where the shape does not reach. Agrees with
    /// [`ShapeKind::contains`] up to rounding; a raster settles boundary pixels with `contains`.
    pub fn half_width(self, dy: f32, r: f32) -> Option<f32> {
        let ady = dy.abs();
        match self {
            ShapeKind::Circle => (ady <= r).then(|| (r * r - dy * dy).max(0.0).sqrt()),
            ShapeKind::Square => (ady <= 0.85 * r).then_some(0.85 * r),
            ShapeKind::Triangle => (-r..=r).contains(&dy).then_some(0.5 * (dy + r)),
            ShapeKind::Diamond => (ady <= r).then_some(r - ady),
            ShapeKind::Cross => {
                let arm = (r / 3.0).max(0.5);
                if ady <= arm {
                    Some(r)
                } else {
                    (ady <= r).then_some(arm)
                }
            }
        }
    }

    /// Whether the offset `(dx, dy)` from the centre lies inside the shape of radius `r`.
    pub fn contains(self, dx: f32, dy: f32, r: f32) -> bool {
        match self {
            ShapeKind::Circle => dx * dx + dy * dy <= r * r,
            ShapeKind::Square => dx.abs() <= 0.85 * r && dy.abs() <= 0.85 * r,
            ShapeKind::Triangle => (-r..=r).contains(&dy) && dx.abs() <= 0.5 * (dy + r),
            ShapeKind::Diamond => dx.abs() + dy.abs() <= r,
            ShapeKind::Cross => {
                let arm = (r / 3.0).max(0.5);
                (dx.abs() <= r && dy.abs() <= arm) || (dy.abs() <= r && dx.abs() <= arm)
            }
        }
    }
}

impl fmt::Display for ShapeKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// A colour of the named palette shapes are painted with.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Colour {
    /// (0.90, 0.10, 0.10)
    Red,
    /// (0.10, 0.80, 0.20)
    Green,
    /// (0.15, 0.30, 0.95)
    Blue,
    /// (0.95, 0.90, 0.10)
    Yellow,
    /// (0.10, 0.90, 0.90)
    Cyan,
    /// (0.90, 0.10, 0.90)
    Magenta,
    /// (1.00, 0.55, 0.00)
    Orange,
    /// (0.55, 0.20, 0.80)
    Purple,
    /// (0.95, 0.95, 0.95)
    White,
}

impl Colour {
    /// Every colour of the palette.
    pub const ALL: [Colour; 9] = [
        Colour::Red,
        Colour::Green,
        Colour::Blue,
        Colour::Yellow,
        Colour::Cyan,
        Colour::Magenta,
        Colour::Orange,
        Colour::Purple,
        Colour::White,
    ];

    /// The English word used in captions.
    pub fn name(self) -> &'static str {
        match self {
            Colour::Red => "red",
            Colour::Green => "green",
            Colour::Blue => "blue",
            Colour::Yellow => "yellow",
            Colour::Cyan => "cyan",
            Colour::Magenta => "magenta",
            Colour::Orange => "orange",
            Colour::Purple => "purple",
            Colour::White => "white",
        }
    }

    /// RGB in `[0, 1]`.
    pub fn rgb(self) -> [f32; 3] {
        match self {
            Colour::Red => [0.90, 0.10, 0.10],
            Colour::Green => [0.10, 0.80, 0.20],
            Colour::Blue => [0.15, 0.30, 0.95],
            Colour::Yellow => [0.95, 0.90, 0.10],
            Colour::Cyan => [0.10, 0.90, 0.90],
            Colour::Magenta => [0.90, 0.10, 0.90],
            Colour::Orange => [1.00, 0.55, 0.00],
            Colour::Purple => [0.55, 0.20, 0.80],
            Colour::White => [0.95, 0.95, 0.95],
        }
    }
}

impl fmt::Display for Colour {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// Size class of a shape: its radius relative to a grid cell.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum SizeClass {
    /// Radius about 0.46 of a cell (the shape nearly fills its cell).
    Large,
    /// Radius about 0.27 of a cell (at least 1.5 pixels).
    Small,
}

impl SizeClass {
    /// Both classes, large first.
    pub const ALL: [SizeClass; 2] = [SizeClass::Large, SizeClass::Small];

    /// The English word used in captions.
    pub fn name(self) -> &'static str {
        match self {
            SizeClass::Large => "large",
            SizeClass::Small => "small",
        }
    }

    /// Radius as a fraction of the cell side.
    pub fn radius_fraction(self) -> f32 {
        match self {
            SizeClass::Large => 0.46,
            SizeClass::Small => 0.27,
        }
    }
}

impl fmt::Display for SizeClass {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// A cell of the 3×3 grid a shape is placed in.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Cell {
    /// Row 0, column 0.
    TopLeft,
    /// Row 0, column 1.
    Top,
    /// Row 0, column 2.
    TopRight,
    /// Row 1, column 0.
    Left,
    /// Row 1, column 1.
    Center,
    /// Row 1, column 2.
    Right,
    /// Row 2, column 0.
    BottomLeft,
    /// Row 2, column 1.
    Bottom,
    /// Row 2, column 2.
    BottomRight,
}

impl Cell {
    /// Every cell, row-major.
    pub const ALL: [Cell; 9] = [
        Cell::TopLeft,
        Cell::Top,
        Cell::TopRight,
        Cell::Left,
        Cell::Center,
        Cell::Right,
        Cell::BottomLeft,
        Cell::Bottom,
        Cell::BottomRight,
    ];

    /// The cell at `row`, `col` (both in `0..3`).
    ///
    /// # Panics
    /// If `row` or `col` is 3 or more.
    pub fn at(row: usize, col: usize) -> Cell {
        assert!(row < 3 && col < 3, "cell ({row}, {col}) is outside the 3×3 grid");
        Cell::ALL[row * 3 + col]
    }

    /// Row, 0 (top) to 2 (bottom).
    pub fn row(self) -> usize {
        self as usize / 3
    }

    /// Column, 0 (left) to 2 (right).
    pub fn col(self) -> usize {
        self as usize % 3
    }

    /// Its name: `"top left"`, `"top"`, …, `"center"`, …, `"bottom right"`.
    pub fn name(self) -> &'static str {
        match self {
            Cell::TopLeft => "top left",
            Cell::Top => "top",
            Cell::TopRight => "top right",
            Cell::Left => "left",
            Cell::Center => "center",
            Cell::Right => "right",
            Cell::BottomLeft => "bottom left",
            Cell::Bottom => "bottom",
            Cell::BottomRight => "bottom right",
        }
    }

    /// The phrase used in captions: `"at the top left"`, `"on the left"`, `"in the center"`, ….
    pub fn phrase(self) -> &'static str {
        match self {
            Cell::TopLeft => "at the top left",
            Cell::Top => "at the top",
            Cell::TopRight => "at the top right",
            Cell::Left => "on the left",
            Cell::Center => "in the center",
            Cell::Right => "on the right",
            Cell::BottomLeft => "at the bottom left",
            Cell::Bottom => "at the bottom",
            Cell::BottomRight => "at the bottom right",
        }
    }

    /// The cell mirrored left ↔ right.
    pub fn mirrored(self) -> Cell {
        Cell::at(self.row(), 2 - self.col())
    }
}

impl fmt::Display for Cell {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// Ground truth of one object of a shapes scene.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct ObjectSpec {
    /// Its kind.
    pub kind: ShapeKind,
    /// Its colour.
    pub colour: Colour,
    /// Its size class.
    pub size: SizeClass,
    /// The grid cell it lies in (objects of a scene lie in distinct cells).
    pub cell: Cell,
}

impl ObjectSpec {
    /// Its description, e.g. `"a large red circle at the top left"`.
    pub fn describe(&self) -> String {
        format!("a {} {} {} {}", self.size.name(), self.colour.name(), self.kind.name(), self.cell.phrase())
    }
}

/// The caption of a scene: the objects' descriptions joined by `", "` and a final `" and "`,
/// e.g. `"a large red circle at the top left, a small green cross in the center and a small
/// blue square at the bottom"`. Empty for no objects.
pub fn caption(objects: &[ObjectSpec]) -> String {
    let parts: Vec<String> = objects.iter().map(ObjectSpec::describe).collect();
    match parts.len() {
        0 => String::new(),
        1 => parts[0].clone(),
        n => format!("{} and {}", parts[..n - 1].join(", "), parts[n - 1]),
    }
}

/// Added to a shapes seed to draw its held-out split ([`ShapesConfig::held_out`]).
pub const HELD_OUT_SALT: u64 = 0x7e57;

/// Settings of a [`Shapes`] data set.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ShapesConfig {
    /// Side of the square RGB images: 16, 32 or 64.
    pub size: usize,
    /// Most objects per image, 1 to 9 (default 3); each image has 1 to `max_objects`.
    pub max_objects: usize,
    /// Low-contrast stripes or checker instead of a plain background.
    pub textured_background: bool,
    /// Number of samples.
    pub len: usize,
    /// Seed; sample `i` depends on `(seed, i)` only.
    pub seed: u64,
}

impl Default for ShapesConfig {
    fn default() -> Self {
        ShapesConfig { size: 32, max_objects: 3, textured_background: false, len: 50_000, seed: 0 }
    }
}

impl ShapesConfig {
    /// Default settings with `len` samples of side `size`.
    pub fn new(size: usize, len: usize) -> Self {
        ShapesConfig { size, len, ..Default::default() }
    }

    /// The same with another seed.
    pub fn with_seed(mut self, seed: u64) -> Self {
        self.seed = seed;
        self
    }

    /// The same with another maximum number of objects.
    pub fn with_max_objects(mut self, max_objects: usize) -> Self {
        self.max_objects = max_objects;
        self
    }

    /// The same with or without a textured background.
    pub fn with_textured_background(mut self, textured: bool) -> Self {
        self.textured_background = textured;
        self
    }

    /// The held-out split of these settings: the same scenes' distribution drawn from the seed
    /// `seed + HELD_OUT_SALT`, `len` long. Evaluation's real-vs-real floor and real-image checks,
    /// and the shapes classifier's test set, all use this one definition.
    pub fn held_out(&self, len: usize) -> ShapesConfig {
        ShapesConfig { len, seed: self.seed.wrapping_add(HELD_OUT_SALT), ..self.clone() }
    }

    /// Checks the settings and builds the data set.
    pub fn init(&self) -> Result<Shapes, DataError> {
        let problems = self.problems();
        if !problems.is_empty() {
            let all: Vec<String> = problems.iter().map(|(k, m)| format!("shapes {k}: {m}")).collect();
            return Err(DataError::InvalidConfig(all.join("; ")));
        }
        Ok(Shapes { config: self.clone() })
    }

    /// Every out-of-range setting as (key, what is wrong); empty when the settings work.
    pub fn problems(&self) -> Vec<(String, String)> {
        let mut p = Vec::new();
        if ![16, 32, 64].contains(&self.size) {
            p.push(("size".into(), format!("must be 16, 32 or 64, got {}", self.size)));
        }
        if !(1..=9).contains(&self.max_objects) {
            p.push((
                "max_objects".into(),
                format!("must be in 1..=9 (one object per cell of a 3×3 grid), got {}", self.max_objects),
            ));
        }
        if self.len == 0 {
            p.push(("len".into(), "a data set needs at least one sample, got 0".into()));
        }
        p
    }
}

/// Placement of an object: its spec plus its centre and radius in pixels.
#[derive(Clone, Copy, Debug)]
struct Placed {
    spec: ObjectSpec,
    cx: f32,
    cy: f32,
    r: f32,
}

/// The procedural shapes data set (3 channels, labels = [`ShapeKind`]).
#[derive(Clone, Debug)]
pub struct Shapes {
    config: ShapesConfig,
}

impl Shapes {
    /// Its settings.
    pub fn config(&self) -> &ShapesConfig {
        &self.config
    }

    /// The objects of sample `index`, in caption order, without rendering the image (the same
    /// as `get(index).objects`). Works for any index, also beyond `len`.
    pub fn objects(&self, index: usize) -> Vec<ObjectSpec> {
        let mut rng = self.rng(index);
        self.layout(&mut rng).into_iter().map(|p| p.spec).collect()
    }

    /// Builds sample `index` (any index, also beyond `len`).
    pub fn generate(&self, index: usize) -> Sample {
        let size = self.config.size;
        let mut rng = self.rng(index);
        let placed = self.layout(&mut rng);

        // Background, in [0, 1].
        let plane = size * size;
        let mut image = background(size, self.config.textured_background, &mut rng);

        // Objects, large first (the later ones never overlap the earlier: cells are distinct and
        // shapes stay inside their cell).
        for p in &placed {
            let rgb = p.spec.colour.rgb();
            let x0 = (p.cx - p.r - 1.0).floor().max(0.0) as usize;
            let x1 = ((p.cx + p.r + 1.0).ceil() as usize).min(size);
            let y0 = (p.cy - p.r - 1.0).floor().max(0.0) as usize;
            let y1 = ((p.cy + p.r + 1.0).ceil() as usize).min(size);
            for y in y0..y1 {
                for x in x0..x1 {
                    let dx = x as f32 + 0.5 - p.cx;
                    let dy = y as f32 + 0.5 - p.cy;
                    if p.spec.kind.contains(dx, dy, p.r) {
                        for (c, v) in rgb.iter().enumerate() {
                            image[c * plane + y * size + x] = *v;
                        }
                    }
                }
            }
        }

        for v in &mut image {
            *v = (*v * 2.0 - 1.0).clamp(-1.0, 1.0);
        }
        let objects: Vec<ObjectSpec> = placed.iter().map(|p| p.spec).collect();
        let complexity = Complexity { objects: objects.len(), edge_density: edge_density(&image, 3, size) };
        Sample { label: objects[0].kind.index(), caption: caption(&objects), complexity, objects, image }
    }

    fn rng(&self, index: usize) -> SplitMix64 {
        SplitMix64::from_parts(&[self.config.seed, 0x5348_4150_4553, index as u64])
        // "SHAPES"
    }

    fn layout(&self, rng: &mut SplitMix64) -> Vec<Placed> {
        let n = 1 + rng.below(self.config.max_objects);
        // Distinct cells: partial Fisher–Yates over the 9 cells.
        let mut cells = Cell::ALL;
        for i in 0..n {
            let j = i + rng.below(9 - i);
            cells.swap(i, j);
        }
        let grid = Grid::new(self.config.size);
        let mut placed: Vec<Placed> = cells[..n]
            .iter()
            .map(|&cell| {
                let kind = ShapeKind::ALL[rng.below(ShapeKind::ALL.len())];
                let colour = Colour::ALL[rng.below(Colour::ALL.len())];
                let size = if rng.coin() { SizeClass::Large } else { SizeClass::Small };
                let r = grid.radius(size, rng.next_f32());
                let slack = (0.5 * grid.cell_side - r).max(0.0) * 0.8;
                let jx = (rng.next_f32() * 2.0 - 1.0) * slack;
                let jy = (rng.next_f32() * 2.0 - 1.0) * slack;
                let (ccx, ccy) = grid.centre(cell);
                Placed { spec: ObjectSpec { kind, colour, size, cell }, cx: ccx + jx, cy: ccy + jy, r }
            })
            .collect();
        // Large first (stable: among equals, generation order).
        placed.sort_by_key(|p| p.spec.size);
        placed
    }
}

/// The background of a shapes image in [0, 1] (CHW, 3 channels): a grey level with a small
/// colour tint and, when `textured`, low-contrast stripes or checker, drawn from `rng` in the
/// order [`Shapes::generate`] draws them. Public so that checks of the data set (the adherence
/// detector's tests) can render a scene without objects exactly as the data set does.
pub fn background(size: usize, textured: bool, rng: &mut SplitMix64) -> Vec<f32> {
    let base = 0.10 + 0.18 * rng.next_f32();
    let plane = size * size;
    let mut image = vec![0.0f32; 3 * plane];
    let tint = [rng.next_f32() * 0.04, rng.next_f32() * 0.04, rng.next_f32() * 0.04];
    let pattern = if textured { Some((rng.below(4), 1 + rng.below(size / 8))) } else { None };
    for y in 0..size {
        for x in 0..size {
            let bump = match pattern {
                None => 0.0,
                Some((kind, period)) => {
                    let on = match kind {
                        0 => (y / period) % 2 == 0,
                        1 => (x / period) % 2 == 0,
                        2 => ((x + y) / period) % 2 == 0,
                        _ => (x / period + y / period) % 2 == 0,
                    };
                    if on {
                        0.04
                    } else {
                        -0.04
                    }
                }
            };
            for (c, t) in tint.iter().enumerate() {
                image[c * plane + y * size + x] = base + t + bump;
            }
        }
    }
    image
}

impl Dataset for Shapes {
    fn len(&self) -> usize {
        self.config.len
    }

    fn get(&self, index: usize) -> Sample {
        assert!(index < self.config.len, "shapes index {index} out of range (len {})", self.config.len);
        self.generate(index)
    }

    fn channels(&self) -> usize {
        3
    }

    fn size(&self) -> usize {
        self.config.size
    }

    fn num_classes(&self) -> usize {
        ShapeKind::ALL.len()
    }

    fn class_names(&self) -> Vec<String> {
        ShapeKind::ALL.iter().map(|k| k.name().to_string()).collect()
    }

    fn name(&self) -> &str {
        "shapes"
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splitmix_matches_reference_values() {
        // Reference stream of SplitMix64 seeded with 1234567 (from the original C code).
        let mut r = SplitMix64::new(1234567);
        assert_eq!(r.next_u64(), 6457827717110365317);
        assert_eq!(r.next_u64(), 3203168211198807973);
        let mut r = SplitMix64::new(3);
        for _ in 0..1000 {
            let v = r.below(7);
            assert!(v < 7);
            let f = r.next_f32();
            assert!((0.0..1.0).contains(&f));
        }
    }

    #[test]
    fn caption_joins_objects() {
        let a =
            ObjectSpec { kind: ShapeKind::Circle, colour: Colour::Red, size: SizeClass::Large, cell: Cell::TopLeft };
        let b =
            ObjectSpec { kind: ShapeKind::Square, colour: Colour::Blue, size: SizeClass::Small, cell: Cell::Bottom };
        let c =
            ObjectSpec { kind: ShapeKind::Cross, colour: Colour::Green, size: SizeClass::Small, cell: Cell::Center };
        assert_eq!(caption(&[a]), "a large red circle at the top left");
        assert_eq!(caption(&[a, b]), "a large red circle at the top left and a small blue square at the bottom");
        assert_eq!(
            caption(&[a, c, b]),
            "a large red circle at the top left, a small green cross in the center and a small blue square at the bottom"
        );
    }

    #[test]
    fn cells_mirror() {
        assert_eq!(Cell::TopLeft.mirrored(), Cell::TopRight);
        assert_eq!(Cell::Center.mirrored(), Cell::Center);
        assert_eq!(Cell::BottomRight.mirrored(), Cell::BottomLeft);
        for c in Cell::ALL {
            assert_eq!(Cell::at(c.row(), c.col()), c);
            assert_eq!(c.mirrored().mirrored(), c);
        }
    }

    #[test]
    fn objects_match_generated_sample_and_are_ordered() {
        let shapes = ShapesConfig { size: 16, max_objects: 9, len: 50, ..Default::default() }.init().unwrap();
        for i in 0..50 {
            let s = shapes.get(i);
            assert_eq!(s.objects, shapes.objects(i));
            let mut cells: Vec<Cell> = s.objects.iter().map(|o| o.cell).collect();
            cells.sort();
            cells.dedup();
            assert_eq!(cells.len(), s.objects.len(), "cells are distinct");
            assert!(s.objects.windows(2).all(|w| w[0].size <= w[1].size), "large first");
        }
    }

    #[test]
    fn every_object_is_visible_in_its_cell() {
        for size in [16, 32, 64] {
            let shapes = ShapesConfig { size, max_objects: 9, len: 40, seed: 5, ..Default::default() }.init().unwrap();
            for i in 0..40 {
                let s = shapes.get(i);
                let plane = size * size;
                for o in &s.objects {
                    let rgb = o.colour.rgb().map(|v| v * 2.0 - 1.0);
                    let cell = size as f32 / 3.0;
                    let hits = (0..size)
                        .flat_map(|y| (0..size).map(move |x| (x, y)))
                        .filter(|&(x, y)| {
                            ((x as f32 + 0.5) / cell) as usize == o.cell.col()
                                && ((y as f32 + 0.5) / cell) as usize == o.cell.row()
                                && (0..3).all(|c| (s.image[c * plane + y * size + x] - rgb[c]).abs() < 1e-6)
                        })
                        .count();
                    assert!(hits >= 3, "size {size}, sample {i}: {o:?} has only {hits} pixels in its cell");
                }
            }
        }
    }

    #[test]
    fn config_is_validated() {
        assert!(ShapesConfig { size: 28, ..Default::default() }.init().is_err());
        assert!(ShapesConfig { max_objects: 0, ..Default::default() }.init().is_err());
        assert!(ShapesConfig { max_objects: 10, ..Default::default() }.init().is_err());
        assert!(ShapesConfig { size: 64, max_objects: 9, ..Default::default() }.init().is_ok());
    }
}
