//! Axis scales: the data range of an axis (linear, or log10 through a transform, so that
//! plotters always draws on a linear axis), "nice" tick values (1, 2, 5 × 10^k; decades on a log
//! axis) and their labels.

/// `v` (linear) or `log10 v` (log), or `None` when `v` cannot be drawn on such an axis.
pub(crate) fn transform(v: f64, log: bool) -> Option<f64> {
    if !v.is_finite() {
        None
    } else if log {
        (v > 0.0).then(|| v.log10())
    } else {
        Some(v)
    }
}

/// The transformed range to show for transformed values `ts`, padded by 5% of the span (at least
/// `min_pad`) on each side.
///
/// No values gives 0..1 (1..10 on a log axis); a single value or all-equal values get a range
/// around them. The result is always finite and increasing.
pub(crate) fn padded_range(ts: &[f64], log: bool, min_pad: f64) -> (f64, f64) {
    let finite = ts.iter().copied().filter(|t| t.is_finite());
    let (lo, hi) = finite.fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), t| (lo.min(t), hi.max(t)));
    let (lo, hi) = if lo > hi {
        (0.0, 1.0)
    } else if hi - lo <= 1e-12 * lo.abs().max(hi.abs()) {
        let d = if log {
            0.5
        } else if lo == 0.0 {
            1.0
        } else {
            0.1 * lo.abs()
        };
        (lo - d, hi + d)
    } else {
        let pad = (0.05 * (hi - lo)).max(min_pad);
        (lo - pad, hi + pad)
    };
    if lo.is_finite() && hi.is_finite() && hi > lo {
        (lo, hi)
    } else {
        (0.0, 1.0)
    }
}

/// The exact decimal `m × 10^e` as the nearest `f64` (so 3 × 10⁻¹ is `0.3`, not
/// `0.30000000000000004`).
fn decimal(m: f64, e: i32) -> f64 {
    if e >= 0 {
        m * 10f64.powi(e)
    } else if e >= -22 {
        // 10^-e is exact up to 10^22, and one correctly rounded division gives the nearest f64.
        m / 10f64.powi(-e)
    } else {
        format!("{m}e{e}").parse().unwrap_or(m * 10f64.powi(e))
    }
}

/// About `target` evenly spaced "nice" values (multiples of 1, 2 or 5 × 10^k) within `lo..=hi`,
/// for a linear axis. Never more than `target + 1`; empty when the range is empty or not finite.
pub fn nice_ticks(lo: f64, hi: f64, target: usize) -> Vec<f64> {
    if !(lo.is_finite() && hi.is_finite() && hi > lo) {
        return Vec::new();
    }
    let raw = (hi - lo) / target.max(1) as f64;
    let exp = raw.log10().floor() as i32;
    let f = raw / decimal(1.0, exp);
    let m = if f <= 1.0 + 1e-9 {
        1.0
    } else if f <= 2.0 + 1e-9 {
        2.0
    } else if f <= 5.0 + 1e-9 {
        5.0
    } else {
        10.0
    };
    let (m, exp) = if m == 10.0 { (1.0, exp + 1) } else { (m, exp) };
    let step = decimal(m, exp);
    if !(step > 0.0 && step.is_finite()) {
        return Vec::new();
    }
    let i0 = (lo / step - 1e-9).ceil();
    let i1 = (hi / step + 1e-9).floor();
    if i1 < i0 || i1 - i0 > 1000.0 {
        return Vec::new();
    }
    let mut ticks = Vec::new();
    let mut i = i0;
    while i <= i1 {
        let v = decimal(i * m, exp);
        ticks.push(if v.abs() < step * 1e-9 { 0.0 } else { v });
        i += 1.0;
    }
    ticks
}

/// Tick values for a log axis over `lo..=hi` (both positive): decades 10^k (every n-th decade
/// when there are more than about `target`), with 2 and 5 × 10^k added when there are few
/// decades; linear nice ticks when the range is too narrow for two of those. At most about
/// `target + 1` decade ticks.
pub fn log_ticks(lo: f64, hi: f64, target: usize) -> Vec<f64> {
    if !(lo > 0.0 && lo.is_finite() && hi.is_finite() && hi > lo) {
        return Vec::new();
    }
    let target = target.max(2);
    let in_range = |v: f64| v >= lo * (1.0 - 1e-9) && v <= hi * (1.0 + 1e-9);
    let k0 = (lo.log10() - 1e-9).ceil() as i32;
    let k1 = (hi.log10() + 1e-9).floor() as i32;
    let decades = (k1 - k0 + 1).max(0) as usize;
    if decades >= 2 && decades * 3 > target {
        let stride = decades.div_ceil(target + 1) as i32;
        return (k0..=k1).filter(|k| (k - k0) % stride == 0).map(|k| decimal(1.0, k)).collect();
    }
    let with_2_5: Vec<f64> =
        (k0 - 1..=k1).flat_map(|k| [1.0, 2.0, 5.0].map(|m| decimal(m, k))).filter(|&v| in_range(v)).collect();
    if with_2_5.len() >= 2 {
        return with_2_5;
    }
    nice_ticks(lo, hi, target).into_iter().filter(|&v| v > 0.0).collect()
}

/// The shortest label of tick `v` that reads back within `tol` of it: plain decimals for
/// moderate magnitudes, `1e6`-style scientific notation for very large or small ones.
pub(crate) fn format_tick(v: f64, tol: f64) -> String {
    if v == 0.0 || !v.is_finite() {
        return if v == 0.0 { "0".into() } else { format!("{v}") };
    }
    if v.abs() <= tol {
        return "0".into();
    }
    let close = |s: &str| s.parse::<f64>().is_ok_and(|p| (p - v).abs() <= tol);
    let a = v.abs();
    if !(1e-3..1e6).contains(&a) {
        let mut s = String::new();
        for p in 0..=6 {
            s = format!("{v:.p$e}");
            if close(&s) {
                break;
            }
        }
        return s;
    }
    let mut s = String::new();
    for d in 0..=10 {
        s = format!("{v:.d$}");
        if close(&s) {
            break;
        }
    }
    if s.starts_with('-') && s[1..].chars().all(|c| c == '0' || c == '.') {
        s.remove(0);
    }
    s
}

/// Labels for a set of tick values, precise enough to tell neighbours apart.
pub(crate) fn format_ticks(ticks: &[f64]) -> Vec<String> {
    let gap = ticks.windows(2).map(|w| (w[1] - w[0]).abs()).filter(|g| *g > 0.0).fold(f64::INFINITY, f64::min);
    ticks
        .iter()
        .map(|&v| {
            let rel = 1e-9 * v.abs();
            let tol = if gap.is_finite() { (1e-6 * gap).max(rel) } else { rel.max(1e-300) };
            format_tick(v, tol)
        })
        .collect()
}

/// Automatic ticks for the transformed range `lo..hi`: about `target` of them, each as its
/// transformed position and label.
pub(crate) fn auto_ticks(lo: f64, hi: f64, log: bool, target: usize) -> Vec<(f64, String)> {
    let values = if log { log_ticks(10f64.powf(lo), 10f64.powf(hi), target) } else { nice_ticks(lo, hi, target) };
    let labels = format_ticks(&values);
    values.into_iter().zip(labels).filter_map(|(v, l)| transform(v, log).map(|t| (t, l))).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn labels(ticks: &[f64]) -> Vec<String> {
        format_ticks(ticks)
    }

    #[test]
    fn linear_ticks_are_nice() {
        assert_eq!(nice_ticks(0.0, 1.0, 5), vec![0.0, 0.2, 0.4, 0.6, 0.8, 1.0]);
        assert_eq!(nice_ticks(-0.3, 9.7, 5), vec![0.0, 2.0, 4.0, 6.0, 8.0]);
        assert_eq!(nice_ticks(13.0, 87.0, 4), vec![20.0, 40.0, 60.0, 80.0]);
        assert_eq!(nice_ticks(0.11, 0.39, 3), vec![0.2, 0.3]);
        assert_eq!(labels(&nice_ticks(0.0, 1.0, 5)), ["0", "0.2", "0.4", "0.6", "0.8", "1"]);
        assert_eq!(labels(&nice_ticks(-1.0, 1.0, 4)), ["-1", "-0.5", "0", "0.5", "1"]);
    }

    #[test]
    fn linear_ticks_bounded_count_and_inside_range() {
        for (lo, hi) in [(0.0, 1.0), (-3.7, 1234.5), (1e-7, 3e-7), (1e15, 1e15 + 7.0), (5.0, 5.001)] {
            for target in 2..12 {
                let t = nice_ticks(lo, hi, target);
                assert!(t.len() >= 2 && t.len() <= target + 1, "{lo} {hi} {target}: {t:?}");
                assert!(t.iter().all(|&v| v >= lo && v <= hi), "{t:?}");
                assert!(t.windows(2).all(|w| w[1] > w[0]));
            }
        }
        assert!(nice_ticks(1.0, 1.0, 5).is_empty());
        assert!(nice_ticks(f64::NAN, 1.0, 5).is_empty());
    }

    #[test]
    fn log_ticks_are_decades() {
        assert_eq!(log_ticks(0.5, 2000.0, 5), vec![1.0, 10.0, 100.0, 1000.0]);
        assert_eq!(labels(&log_ticks(0.5, 2000.0, 5)), ["1", "10", "100", "1000"]);
        // Many decades: every n-th.
        assert_eq!(log_ticks(1e-4, 1e8, 3), vec![1e-4, 1.0, 1e4, 1e8]);
        assert_eq!(labels(&log_ticks(1e-4, 1e8, 3)), ["1e-4", "1", "10000", "1e8"]);
        assert_eq!(log_ticks(0.005, 400.0, 5).len(), 5);
        // Few decades: 2 and 5 are added.
        assert_eq!(log_ticks(0.9, 30.0, 8), vec![1.0, 2.0, 5.0, 10.0, 20.0]);
        // Within one decade, too narrow for 1-2-5: linear ticks.
        let t = log_ticks(31.0, 47.0, 5);
        assert!(t.len() >= 2 && t.iter().all(|&v| (31.0..=47.0).contains(&v)), "{t:?}");
        assert!(log_ticks(-1.0, 10.0, 5).is_empty());
        assert_eq!(labels(&[0.001, 0.01, 0.1]), ["0.001", "0.01", "0.1"]);
    }

    #[test]
    fn tick_labels() {
        assert_eq!(labels(&[0.1 + 0.2, 0.4]), ["0.3", "0.4"]);
        assert_eq!(labels(&[1e6, 2e6, 3e6]), ["1e6", "2e6", "3e6"]);
        assert_eq!(labels(&[2.5e-4, 5e-4]), ["2.5e-4", "5e-4"]);
        assert_eq!(labels(&[-0.0000000001, 1.0]), ["0", "1"]);
        assert_eq!(labels(&[42.0]), ["42"]);
    }

    #[test]
    fn auto_ticks_are_transformed() {
        let t = auto_ticks(0.0, 2.0, true, 9);
        assert_eq!(t.iter().map(|t| t.1.as_str()).collect::<Vec<_>>(), ["1", "2", "5", "10", "20", "50", "100"]);
        assert!((t[3].0 - 1.0).abs() < 1e-12);
        assert_eq!(auto_ticks(0.0, 1.0, false, 2), [(0.0, "0".to_string()), (0.5, "0.5".into()), (1.0, "1".into())]);
        assert_eq!(transform(-1.0, true), None);
        assert_eq!(transform(f64::NAN, false), None);
    }

    #[test]
    fn ranges_are_padded_and_never_empty() {
        let close = |(lo, hi): (f64, f64), (elo, ehi): (f64, f64)| {
            assert!((lo - elo).abs() < 1e-12 && (hi - ehi).abs() < 1e-12, "{lo}..{hi}");
        };
        close(padded_range(&[0.0, 10.0], false, 0.0), (-0.5, 10.5));
        close(padded_range(&[], false, 0.0), (0.0, 1.0));
        close(padded_range(&[3.0, 3.0], false, 0.0), (2.7, 3.3));
        close(padded_range(&[0.0], false, 0.0), (-1.0, 1.0));
        close(padded_range(&[1.0], true, 0.0), (0.5, 1.5));
        close(padded_range(&[0.0, 1.0], false, 0.5), (-0.5, 1.5));
        close(padded_range(&[-1e308, 1e308], false, 0.0), (0.0, 1.0));
        close(padded_range(&[f64::NAN, 2.0, 2.0], false, 0.0), (1.8, 2.2));
    }
}
