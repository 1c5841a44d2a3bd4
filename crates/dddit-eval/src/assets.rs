//! The pretrained files dddit uses: [`dddit_core::assets`], re-exported here so that evaluation
//! code and `dddit assets` keep calling `dddit_eval::assets`. Its [`AssetError`] converts into
//! [`crate::EvalError`] variant for variant (`MissingAsset`, `Checksum`, `Io`, `Format`; an
//! unknown name or no assets directory becomes `Invalid`).

pub use dddit_core::assets::*;
