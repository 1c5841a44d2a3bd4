//! # dddit-routers
//!
//! Router implementations for dddit, each registered by name. This crate depends only on
//! `dddit-core` (the `Router` / `ComputePath` traits, the DiT blocks and the executor).
//! Routers arrive with the router-family issue.

#![warn(missing_docs)]
