//! # dddit-plot
//!
//! The result plots of dddit's experiment runner — quality vs GFLOPs Pareto scatter plots with
//! error bars, compute by timestep range — as SVG and PNG, drawn with [`plotters`] in pure Rust:
//! PNG text comes from an embedded DejaVu Sans through `ab_glyph`, so no system font or C
//! library is needed.
//!
//! ```
//! use dddit_plot::{Chart, Point, Series};
//!
//! let mut chart = Chart::new("FD vs compute", "GFLOPs per sample", "FD (lower is better)");
//! chart.series.push(Series::scatter("dense", vec![Point::new(10.0, 4.2).with_y_err(0.3)]));
//! chart.series.push(Series::scatter("routed", vec![Point::new(6.5, 4.6), Point::new(4.0, 5.9)]));
//! chart.pareto_min = true;
//! let svg = chart.to_svg(800, 560).unwrap();
//! assert!(svg.contains("FD vs compute"));
//! let png = chart.to_png(800, 560).unwrap();
//! assert!(png.starts_with(b"\x89PNG"));
//! ```

#![warn(missing_docs)]

mod axis;
mod chart;
mod draw;
mod error;
mod font;
mod legend;
mod pareto;
mod render;
mod scale;

pub use chart::{Chart, Point, Rgb, Series, DEFAULT_HEIGHT, DEFAULT_WIDTH, PALETTE};
pub use error::PlotError;
pub use pareto::pareto_front;
pub use scale::{log_ticks, nice_ticks};
