//! The pieces of training that need a model's concrete type (gradients, EMA, saving), kept here
//! so that [`crate::AnyRoutedModel`] can offer them behind its object-safe interface.

use burn::module::{Module, ModuleMapper, ModuleVisitor, Param};
use burn::prelude::*;
use burn_store::{BurnpackStore, ModuleSnapshot};
use std::path::Path;

/// Collects every float parameter's value, flattened, in visit order.
struct Values(Vec<Tensor<1>>);

impl ModuleVisitor for Values {
    fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
        let v = param.val().inner();
        let n = v.shape().num_elements();
        self.0.push(v.reshape([n]));
    }
}

/// Replaces every float parameter by the next of `values` (same order, without autodiff),
/// keeping the parameter's autodiff association (but not its gradient: EMA weights take none).
struct Replace {
    values: std::vec::IntoIter<Tensor<1>>,
}

impl ModuleMapper for Replace {
    fn map_float<const D: usize>(&mut self, param: Param<Tensor<D>>) -> Param<Tensor<D>> {
        let v = self.values.next().expect("same parameter count");
        let (id, old, _) = param.consume();
        let v = v.reshape(old.shape());
        let v = match old.gradient_checkpointing_strategy() {
            Some(s) => Tensor::from_inner(v).with_gradient_checkpointing_strategy(s),
            None => v,
        };
        Param::initialized(id, v)
    }
}

/// EMA update of `ema` towards `online` (`ema·decay + online·(1 − decay)`), in one multi-tensor
/// op over all parameters ([`dddit_core::optim::lerp`]); both must be the same module type.
pub fn ema<M: Module>(ema: M, online: &M, decay: f64) -> M {
    let mut theirs = Values(vec![]);
    online.visit(&mut theirs);
    let mut ours = Values(vec![]);
    ema.visit(&mut ours);
    let device = ours.0.first().map(|t| t.device());
    let theirs: Vec<Tensor<1>> = match &device {
        Some(d) => theirs.0.into_iter().map(|t| t.to_device(d)).collect(),
        None => theirs.0,
    };
    let blended = dddit_core::optim::lerp(ours.0, theirs, 1.0 - decay);
    ema.map(&mut Replace { values: blended.into_iter() })
}

/// A host copy of each float parameter's values, by id, in visit order.
pub fn param_values<M: Module>(module: &M) -> Vec<(burn::module::ParamId, Vec<f32>)> {
    let mut values = Values(vec![]);
    module.visit(&mut values);
    let ids = dddit_core::optim::param_paths(module).into_iter().map(|(_, id, _)| id);
    ids.zip(values.0)
        .map(|(id, v)| (id, v.into_data().convert::<f32>().try_to_vec::<f32>().unwrap_or_default()))
        .collect()
}

/// Saves `module` to `path` as burnpack atomically ([`dddit_core::atomic::write_via_path`]), so
/// a crash never leaves a half-written file under the final name.
pub fn save_atomic<M: Module>(module: &M, path: &Path) -> Result<(), String> {
    dddit_core::atomic::write_via_path(path, |tmp| {
        let mut store = BurnpackStore::from_file(tmp).overwrite(true).auto_extension(false);
        module.save_into(&mut store).map_err(|e| dddit_core::atomic::AtomicError::Write(e.to_string()))
    })
    .map_err(|e| format!("{}: {e}", path.display()))
}

/// Loads `module` from a burnpack file written by [`save_atomic`].
pub fn load<M: Module>(module: &mut M, path: &Path) -> Result<(), String> {
    let mut store = BurnpackStore::from_file(path).auto_extension(false);
    let r = module.load_from(&mut store).map_err(|e| format!("{}: {e}", path.display()))?;
    if !r.errors.is_empty() || !r.missing.is_empty() {
        return Err(format!("{}: does not match the model: {r}", path.display()));
    }
    Ok(())
}
