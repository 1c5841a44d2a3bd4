//! The error type of dddit-plot.

use std::path::PathBuf;

/// Everything that can go wrong while rendering or saving a chart.
#[derive(Debug, thiserror::Error)]
pub enum PlotError {
    /// A file or directory could not be written; the path says which.
    #[error("{path}: {source}")]
    Io {
        /// The file or directory.
        path: PathBuf,
        /// What the operating system said.
        source: std::io::Error,
    },
    /// The requested image size cannot be rasterised (a side of zero, or absurdly large).
    #[error("invalid image size {width}x{height}: each side must be between 1 and {max} pixels")]
    Size {
        /// The requested width in pixels.
        width: u32,
        /// The requested height in pixels.
        height: u32,
        /// The largest side accepted.
        max: u32,
    },
    /// The PNG encoder failed.
    #[error("PNG encoding failed: {0}")]
    Png(#[from] png::EncodingError),
}
