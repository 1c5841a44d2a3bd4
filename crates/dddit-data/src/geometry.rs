//! The geometry of a shapes scene: the 3×3 grid and the radius of each size class. The
//! renderer ([`crate::Shapes`]) places objects with it and the adherence detector of
//! `dddit-eval` fits templates with it, so the two cannot drift apart. The shapes themselves
//! (which offsets a kind covers) are [`crate::ShapeKind::contains`] and
//! [`crate::ShapeKind::half_width`].

use crate::{Cell, SizeClass};

/// Smallest radius drawn, in pixels (small shapes at size 16 would otherwise be a pixel or two).
pub const MIN_RADIUS: f32 = 1.5;

/// A radius of class `c` is `fraction(c) · cell · (LOW + SPREAD · u)` for a uniform `u`.
const LOW: f32 = 0.92;
/// See [`LOW`] (written out, not `1 − LOW`, which rounds differently in `f32`).
const SPREAD: f32 = 0.08;

/// The 3×3 grid of a `size × size` image.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Grid {
    /// Side of the image in pixels.
    pub size: usize,
    /// Side of one cell in pixels (`size / 3`).
    pub cell_side: f32,
}

impl Grid {
    /// The grid of a `size × size` image.
    pub fn new(size: usize) -> Self {
        Grid { size, cell_side: size as f32 / 3.0 }
    }

    /// The centre of `cell`, in pixels (x, y).
    pub fn centre(&self, cell: Cell) -> (f32, f32) {
        ((cell.col() as f32 + 0.5) * self.cell_side, (cell.row() as f32 + 0.5) * self.cell_side)
    }

    /// The cell holding the centre of pixel `(x, y)`.
    pub fn cell_of(&self, x: usize, y: usize) -> Cell {
        let col = (((x as f32 + 0.5) / self.cell_side) as usize).min(2);
        let row = (((y as f32 + 0.5) / self.cell_side) as usize).min(2);
        Cell::at(row, col)
    }

    /// The radius the renderer draws for class `class` and a uniform draw `u ∈ [0, 1)`.
    pub fn radius(&self, class: SizeClass, u: f32) -> f32 {
        (class.radius_fraction() * self.cell_side * (LOW + SPREAD * u)).max(MIN_RADIUS)
    }

    /// The `[lo, hi]` range of radii of class `class` (the ends of [`Grid::radius`]).
    pub fn radius_range(&self, class: SizeClass) -> (f32, f32) {
        let f = class.radius_fraction() * self.cell_side;
        ((LOW * f).max(MIN_RADIUS), f.max(MIN_RADIUS))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ShapeKind;

    #[test]
    fn radii_stay_in_their_range_and_cells_round_trip() {
        for size in [16, 32, 64] {
            let g = Grid::new(size);
            for class in SizeClass::ALL {
                let (lo, hi) = g.radius_range(class);
                for u in [0.0, 0.25, 0.5, 0.999_999] {
                    let r = g.radius(class, u);
                    assert!(lo - 1e-5 <= r && r <= hi + 1e-5, "{size} {class:?} {u}: {r} ∉ [{lo}, {hi}]");
                }
            }
            for cell in Cell::ALL {
                let (cx, cy) = g.centre(cell);
                assert_eq!(g.cell_of(cx as usize, cy as usize), cell);
            }
        }
    }

    #[test]
    fn half_width_agrees_with_contains() {
        for kind in ShapeKind::ALL {
            for r in [1.5f32, 2.7, 4.9, 9.3] {
                for i in -40..=40 {
                    let dy = i as f32 * r / 37.0;
                    for j in -40..=40 {
                        let dx = j as f32 * r / 37.0;
                        let inside = kind.half_width(dy, r).is_some_and(|w| dx.abs() <= w);
                        // Up to rounding at the boundary.
                        let near = kind.half_width(dy, r).is_some_and(|w| (dx.abs() - w).abs() < 1e-4);
                        assert!(near || inside == kind.contains(dx, dy, r), "{kind:?} r {r} ({dx}, {dy})");
                    }
                }
            }
        }
    }
}
