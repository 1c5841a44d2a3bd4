//! # dddit-routers
//!
//! The router family of dddit. Every router is a [`RouterConfig`] (a TOML-deserialisable config
//! with defaults and validation) that builds a [`Router`] (the layers between the DiT stem
//! and its final layer), registered by name with [`register_router!`]. [`routers`] lists them,
//! [`build`] makes a model from a `[router]` table.
//!
//! Routers never pretend: what a decision skips is not computed (see
//! `dddit_core::routing::execute`), and the FLOPs a forward reports are those of the paths that
//! ran.

#![warn(missing_docs)]

pub mod cache;
pub mod common;
pub mod content;
pub mod dense;
pub mod depth;
pub mod fixtures;
pub mod model;
pub mod moe;
pub mod registry;
pub mod settings;
pub mod text;
pub mod tgate;
pub mod tokens;
pub mod train_hooks;
pub mod width;

pub use model::{ForwardOptions, RoutedDiT, RoutedForward};
pub use registry::{
    build, lookup, routers, AnyRoutedModel, ConfigError, KeyDefault, KeyDoc, RouterConfig, RouterEntry, RouterError,
};

#[doc(hidden)]
pub use inventory;
