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
    /// The embedded font could not be registered with plotters.
    #[error("the embedded DejaVu Sans font could not be loaded")]
    Font,
    /// Plotters failed to draw (the backend's or the font's error, as text: its type depends on
    /// the backend).
    #[error("drawing failed: {0}")]
    Draw(String),
    /// The PNG encoder failed.
    #[error("PNG encoding failed: {0}")]
    Png(#[from] png::EncodingError),
}

impl<E: std::error::Error + Send + Sync> From<plotters::drawing::DrawingAreaErrorKind<E>> for PlotError {
    fn from(e: plotters::drawing::DrawingAreaErrorKind<E>) -> PlotError {
        PlotError::Draw(e.to_string())
    }
}
