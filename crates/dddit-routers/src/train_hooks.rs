//! The pieces of training that need a model's concrete type (gradients, EMA, saving), kept here
//! so that [`crate::AnyRoutedModel`] can offer them behind its object-safe interface.

use burn::module::{Module, ModuleMapper, ModuleVisitor, Param, ParamId};
use burn::optim::GradientsParams;
use burn::prelude::*;
use burn_store::{BurnpackStore, ModuleSnapshot};
use std::path::Path;

/// Collects `(path, id)` of every float parameter.
#[derive(Default)]
pub struct PathCollector {
    stack: Vec<String>,
    /// `(dotted path, id)` per parameter, in visit order.
    pub ids: Vec<(String, ParamId)>,
}

impl ModuleVisitor for PathCollector {
    fn enter_module(&mut self, name: &str, _container_type: &str) {
        self.stack.push(name.to_string());
    }
    fn exit_module(&mut self, _name: &str, _container_type: &str) {
        self.stack.pop();
    }
    fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
        self.ids.push((self.stack.join("."), param.id));
    }
}

/// Collects every float parameter's value, flattened, in visit order.
struct Values(Vec<Tensor<1>>);

impl ModuleVisitor for Values {
    fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
        let v = param.val();
        let n = v.shape().num_elements();
        self.0.push(v.reshape([n]).detach());
    }
}

/// Replaces every float parameter by `decay·p + (1 − decay)·online`, in visit order.
struct Blend {
    online: std::vec::IntoIter<Tensor<1>>,
    decay: f64,
}

impl ModuleMapper for Blend {
    fn map_float<const D: usize>(&mut self, param: Param<Tensor<D>>) -> Param<Tensor<D>> {
        let o = self.online.next().expect("same parameter count");
        let v = param.val();
        let o = o.to_device(&v.device()).reshape(v.shape());
        let (id, _, _) = param.consume();
        Param::initialized(id, (v.detach() * self.decay + o * (1.0 - self.decay)).detach())
    }
}

/// EMA update of `ema` towards `online`; both must be the same module type.
pub fn ema<M: Module>(ema: M, online: &M, decay: f64) -> M {
    let mut values = Values(vec![]);
    online.visit(&mut values);
    ema.map(&mut Blend { online: values.0.into_iter(), decay })
}

/// Sums squared gradients of every parameter that has one.
struct Norm<'a> {
    grads: &'a GradientsParams,
    sum: Option<Tensor<1>>,
}

impl ModuleVisitor for Norm<'_> {
    fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
        if let Some(g) = self.grads.get::<D>(param.id) {
            let s = g.square().sum();
            self.sum = Some(match self.sum.take() {
                Some(acc) => acc + s,
                None => s,
            });
        }
    }
}

/// Global L2 norm of the gradients of `module`'s parameters, summed on the device and read back
/// once per step (not once per parameter).
pub fn grad_norm<M: Module>(module: &M, grads: &GradientsParams) -> f64 {
    let mut n = Norm { grads, sum: None };
    module.visit(&mut n);
    n.sum.map_or(0.0, |s| (s.into_scalar::<f32>() as f64).sqrt())
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
