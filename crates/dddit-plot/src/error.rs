//! The error type of dddit-plot.

/// Everything that can go wrong while rendering a chart (writing it is the caller's: the
/// runner writes through `dddit_core::atomic`).
#[derive(Debug, thiserror::Error)]
pub enum PlotError {
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
