//! The Pareto frontier of a set of (cost, error) points, both minimised: the runs that no other
//! run beats on both axes at once, which is what a quality-vs-compute plot is read for.

use std::cmp::Ordering;

/// Indices of the non-dominated points of `points` when both coordinates are minimised, sorted
/// by x (then y, then index).
///
/// A point is dominated when another point is no worse on both coordinates and strictly better on
/// at least one. Exact duplicates do not dominate each other, so all copies of a frontier point
/// are returned. Points with a NaN or infinite coordinate are ignored.
pub fn pareto_front(points: &[(f64, f64)]) -> Vec<usize> {
    let mut order: Vec<usize> =
        (0..points.len()).filter(|&i| points[i].0.is_finite() && points[i].1.is_finite()).collect();
    order.sort_by(|&a, &b| {
        let (pa, pb) = (points[a], points[b]);
        pa.0.partial_cmp(&pb.0)
            .unwrap_or(Ordering::Equal)
            .then(pa.1.partial_cmp(&pb.1).unwrap_or(Ordering::Equal))
            .then(a.cmp(&b))
    });
    let mut front = Vec::new();
    // The best (lowest) y seen so far and the x of the point that set it: sweeping by increasing
    // x, a point is on the front when it improves y, or when it is an exact copy of that point.
    let mut best: Option<(f64, f64)> = None;
    for i in order {
        let (x, y) = points[i];
        let keep = match best {
            None => true,
            Some((bx, by)) => y < by || (y == by && x == bx),
        };
        if keep {
            front.push(i);
            best = Some((x, y));
        }
    }
    front
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dominated_points_are_excluded() {
        let pts = [(1.0, 5.0), (2.0, 3.0), (3.0, 4.0), (4.0, 1.0), (2.5, 3.0), (5.0, 0.5)];
        // (3,4) is dominated by (2,3); (2.5,3) is dominated by (2,3) (same y, larger x).
        assert_eq!(pareto_front(&pts), vec![0, 1, 3, 5]);
    }

    #[test]
    fn result_is_sorted_by_x_regardless_of_input_order() {
        let pts = [(4.0, 1.0), (1.0, 5.0), (2.0, 3.0)];
        assert_eq!(pareto_front(&pts), vec![1, 2, 0]);
    }

    #[test]
    fn ties() {
        // Same x: only the lower y survives.
        assert_eq!(pareto_front(&[(1.0, 3.0), (1.0, 2.0)]), vec![1]);
        // Exact duplicates: neither dominates the other.
        assert_eq!(pareto_front(&[(1.0, 2.0), (3.0, 1.0), (1.0, 2.0)]), vec![0, 2, 1]);
        // A duplicate of a dominated point stays dominated.
        assert_eq!(pareto_front(&[(0.0, 0.0), (1.0, 1.0), (1.0, 1.0)]), vec![0]);
    }

    #[test]
    fn non_finite_and_empty() {
        assert!(pareto_front(&[]).is_empty());
        let pts = [(f64::NAN, 0.0), (1.0, f64::INFINITY), (2.0, 2.0), (f64::NEG_INFINITY, 0.0)];
        assert_eq!(pareto_front(&pts), vec![2]);
    }

    #[test]
    fn single_point_is_its_own_front() {
        assert_eq!(pareto_front(&[(3.0, -1.0)]), vec![0]);
    }
}
