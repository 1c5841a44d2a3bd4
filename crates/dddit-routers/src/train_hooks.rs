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

/// The L2 norm of each parameter's gradient in `grads`, by id (parameters without one are left
/// out).
pub fn grad_norms<M: Module>(module: &M, grads: &burn::optim::GradientsParams) -> Vec<(burn::module::ParamId, f64)> {
    struct Norms<'a> {
        grads: &'a burn::optim::GradientsParams,
        out: Vec<(burn::module::ParamId, f64)>,
    }
    impl ModuleVisitor for Norms<'_> {
        fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
            if let Some(g) = self.grads.get::<D>(param.id) {
                let n = g.square().sum().into_scalar::<f32>() as f64;
                self.out.push((param.id, n.sqrt()));
            }
        }
    }
    let mut v = Norms { grads, out: vec![] };
    module.visit(&mut v);
    v.out
}

/// A host copy of each float parameter's values, by id.
pub fn param_values<M: Module>(module: &M) -> Vec<(burn::module::ParamId, Vec<f32>)> {
    struct Copy(Vec<(burn::module::ParamId, Vec<f32>)>);
    impl ModuleVisitor for Copy {
        fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
            let v = param.val().into_data().convert::<f32>().try_to_vec::<f32>().unwrap_or_default();
            self.0.push((param.id, v));
        }
    }
    let mut c = Copy(vec![]);
    module.visit(&mut c);
    c.0
}

/// Saves `module` to `path` as burnpack through a temporary file and a rename, so a crash
/// never leaves a half-written file under the final name.
pub fn save_atomic<M: Module>(module: &M, path: &Path) -> Result<(), String> {
    let tmp = path.with_extension("bpk.tmp");
    let mut store = BurnpackStore::from_file(&tmp).overwrite(true).auto_extension(false);
    module.save_into(&mut store).map_err(|e| format!("{}: {e}", tmp.display()))?;
    std::fs::rename(&tmp, path).map_err(|e| format!("{}: {e}", path.display()))
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
