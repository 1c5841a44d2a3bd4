//! One axis for plotters: a linear range of transformed values (log10 on a log axis) with our
//! own ticks, as a plotters [`Ranged`] coordinate.

use plotters::coord::ranged1d::{DefaultFormatting, KeyPointHint, Ranged};
use std::ops::Range;

/// A linear axis over `lo..hi` whose tick marks and grid lines are at `ticks`; plotters asks the
/// tick labels of the chart's label formatter.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Axis {
    /// The start of the range (at the left or bottom).
    pub lo: f64,
    /// The end of the range.
    pub hi: f64,
    /// Tick positions, within the range.
    pub ticks: Vec<f64>,
}

impl Ranged for Axis {
    type FormatOption = DefaultFormatting;
    type ValueType = f64;

    fn map(&self, value: &f64, limit: (i32, i32)) -> i32 {
        let f = (value - self.lo) / (self.hi - self.lo);
        (f64::from(limit.0) + f * f64::from(limit.1 - limit.0)).round() as i32
    }

    fn key_points<Hint: KeyPointHint>(&self, hint: Hint) -> Vec<f64> {
        // Bold points only: the grid has no light lines.
        if hint.weight().allow_light_points() {
            Vec::new()
        } else {
            self.ticks.clone()
        }
    }

    fn range(&self) -> Range<f64> {
        self.lo..self.hi
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use plotters::coord::ranged1d::{BoldPoints, LightPoints};

    #[test]
    fn maps_linearly_onto_pixels_either_way() {
        let a = Axis { lo: 1.0, hi: 3.0, ticks: vec![1.0, 2.0] };
        assert_eq!(a.map(&1.0, (10, 110)), 10);
        assert_eq!(a.map(&2.0, (10, 110)), 60);
        assert_eq!(a.map(&3.0, (500, 100)), 100);
        assert_eq!(a.key_points(BoldPoints(4)), vec![1.0, 2.0]);
        assert!(a.key_points(LightPoints::new(4, 20)).is_empty());
        assert_eq!(a.range(), 1.0..3.0);
    }
}
