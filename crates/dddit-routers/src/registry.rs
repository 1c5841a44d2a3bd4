//! The router registry: name → (config schema with defaults and validation, builder).
//!
//! A router crate registers itself with [`register_router!`](crate::register_router); nothing
//! in dddit-core or in other routers changes, and the `dddit` binary picks it up by linking the
//! crate (`use my_router as _;`).

use crate::model::{ForwardOptions, RoutedDiT, RoutedForward};
use burn::module::{Module, ParamId};
use burn::optim::GradientsParams;
use burn::prelude::*;
use dddit_core::dit::DiTConfig;
use dddit_core::flops::Flops;
use dddit_core::optim::FusedAdamW;
use dddit_core::routing::Router;
use serde::de::DeserializeOwned;

/// Documentation of one config key.
#[derive(Clone, Copy, Debug)]
pub struct KeyDoc {
    /// Key name in the `[router]` table.
    pub key: &'static str,
    /// Type, as a user writes it (`integer`, `float in [0, 1]`, …).
    pub ty: &'static str,
    /// Default value.
    pub default: KeyDefault,
    /// What it does.
    pub doc: &'static str,
}

/// The default of a config key.
#[derive(Clone, Copy, Debug)]
pub enum KeyDefault {
    /// A fixed value, as TOML (`"1.0"`, `"\"token\""`).
    Fixed(&'static str),
    /// A value that depends on the model (its hidden size, half its depth…): `rule` says which
    /// in words, `value` gives it as TOML for a model. Writing that value out must build the
    /// same router as leaving the key out (`model_defaults_are_what_init_uses` checks it).
    Model {
        /// The rule, in words (`"hidden size"`).
        rule: &'static str,
        /// The value for a model, as TOML.
        value: fn(&DiTConfig) -> String,
    },
    /// A value that depends on other keys, in words (`"k > 1"`).
    Rule(&'static str),
}

impl KeyDefault {
    /// The default for `model` as TOML, where it is a value (fixed or from the model).
    pub fn for_model(&self, model: &DiTConfig) -> Option<String> {
        match self {
            KeyDefault::Fixed(v) => Some(v.to_string()),
            KeyDefault::Model { value, .. } => Some(value(model)),
            KeyDefault::Rule(_) => None,
        }
    }
}

impl std::fmt::Display for KeyDefault {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            KeyDefault::Fixed(v) => f.write_str(v),
            KeyDefault::Model { rule, .. } | KeyDefault::Rule(rule) => f.write_str(rule),
        }
    }
}

/// A problem with a router config, naming the key.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("router.{key}: {message}")]
pub struct ConfigError {
    /// Key path below `router` (empty for the table itself).
    pub key: String,
    /// What is wrong.
    pub message: String,
}

impl ConfigError {
    /// An error on `key`.
    pub fn new(key: impl Into<String>, message: impl Into<String>) -> Self {
        ConfigError { key: key.into(), message: message.into() }
    }
}

/// Errors of the registry.
#[derive(Debug, thiserror::Error)]
pub enum RouterError {
    /// No router of that name is registered.
    #[error("unknown router '{name}'; registered: {known}")]
    Unknown {
        /// The name asked for.
        name: String,
        /// The registered names.
        known: String,
    },
    /// The config is invalid.
    #[error("invalid router config:\n  {}", .0.iter().map(|e| e.to_string()).collect::<Vec<_>>().join("\n  "))]
    Config(Vec<ConfigError>),
}

/// A router's configuration: a serde struct with defaults (unknown keys rejected) that checks
/// itself against the model and builds the routed stack.
pub trait RouterConfig: DeserializeOwned + Default + std::fmt::Debug + Clone + Send + 'static {
    /// The stack this config builds.
    type Stack: Router;
    /// Registered name.
    const NAME: &'static str;
    /// One-line description.
    const DESCRIPTION: &'static str;
    /// Documentation of every key.
    fn keys() -> &'static [KeyDoc];
    /// Checks ranges against the model (`k` ≤ experts, budget in [0, 1], …), all at once.
    fn validate(&self, model: &DiTConfig) -> Vec<ConfigError>;
    /// Builds the stack.
    fn init(&self, model: &DiTConfig, device: &Device) -> Self::Stack;
    /// Whether the stack reports a differentiable `flops_ratio` in training, so that
    /// `train.loss.flops` can pull it to `train.loss.flops_target`. A budget given to a router
    /// without one is a validation error, not a setting that silently does nothing.
    fn flops_loss(&self) -> bool {
        false
    }
    /// Experts per mixture layer, whose parameters sit under `….experts.<i>.…` so that a
    /// training stage's `expert = i` can select one; 0 for a router without experts.
    fn experts(&self) -> usize {
        0
    }
}

/// A routed model of any router, behind one object-safe interface.
pub trait AnyRoutedModel: Send + std::fmt::Debug {
    /// Registered router name.
    fn router(&self) -> &'static str;
    /// The DiT hyper-parameters.
    fn config(&self) -> &DiTConfig;
    /// Routed forward pass.
    fn forward(&self, x: Tensor<4>, t: Tensor<1>, y: Tensor<1, Int>, opts: &ForwardOptions) -> RoutedForward;
    /// MACs per sample with everything on.
    fn full_flops(&self) -> Flops;
    /// Trainable parameter count.
    fn num_params(&self) -> usize;
    /// The model as `Any`, for [`AnyRoutedModel::ema_from`] and downcasts.
    fn as_any(&self) -> &dyn std::any::Any;
    /// Ids of the parameters that `select(path, is_router)` accepts, where `path` is the
    /// parameter's module path (e.g. `stack.layers.0.experts.1.fc1.weight`) and `is_router`
    /// whether the stack declares it a router parameter ([`Router::router_params`]): the
    /// handle for stage-wise training (router only, experts only, …).
    fn param_ids(&self, select: &dyn Fn(&str, bool) -> bool) -> Vec<ParamId>;
    /// Ids of the router's own parameters, as its stack declares them
    /// ([`Router::router_params`]).
    fn router_params(&self) -> Vec<ParamId>;
    /// One optimiser step on `loss` (which must come from this model's autodiff forward):
    /// backward, then `optim` updates the parameters in `only` (all when `None`) with learning
    /// rate `lr`, in multi-tensor ops. Returns the global gradient L2 norm of the updated
    /// parameters before clipping; when it is not finite, nothing is updated.
    fn optimize(&mut self, loss: Tensor<1>, optim: &mut FusedAdamW, lr: f64, only: Option<&[ParamId]>) -> f64;
    /// Backward of `loss` (from this model's autodiff forward), without an update: the L2 norm
    /// of each float parameter's gradient as `(path, id, norm)`, 0 where the loss does not
    /// reach it. For checks that a term trains what it should (see
    /// `tests/router_params.rs`) and for diagnosing dead routers.
    fn grad_norms(&self, loss: Tensor<1>) -> Vec<(String, ParamId, f64)>;
    /// A host copy of every float parameter as `(path, id, values)` (slow on large models; for
    /// tests and inspection).
    fn param_values(&self) -> Vec<(String, ParamId, Vec<f32>)>;
    /// Saves `optim`'s state for this model into `dir` (see [`FusedAdamW::save`]).
    fn save_optim(&self, optim: &FusedAdamW, dir: &std::path::Path) -> Result<(), String>;
    /// Loads `optim`'s state for this model from `dir`.
    fn load_optim(&self, optim: &mut FusedAdamW, dir: &std::path::Path) -> Result<(), String>;
    /// Exponential moving average `self = decay·self + (1 − decay)·online`, parameter by
    /// parameter. Panics if `online` is not the same router type.
    fn ema_from(&mut self, online: &dyn AnyRoutedModel, decay: f64);
    /// A copy of the model on `device` (e.g. the EMA copy without autodiff).
    fn to_device(&self, device: &Device) -> Box<dyn AnyRoutedModel>;
    /// Saves the parameters to a burnpack file atomically (written beside it, then renamed).
    fn save(&self, path: &std::path::Path) -> Result<(), String>;
    /// Loads parameters saved by [`AnyRoutedModel::save`]; every parameter must be present.
    fn load(&mut self, path: &std::path::Path) -> Result<(), String>;
}

/// A [`RoutedDiT`] with the name it was registered under.
#[derive(Debug)]
pub struct Named<S: Router> {
    /// Registered name.
    pub name: &'static str,
    /// The model.
    pub model: RoutedDiT<S>,
}

impl<S: Router> AnyRoutedModel for Named<S> {
    fn router(&self) -> &'static str {
        self.name
    }
    fn config(&self) -> &DiTConfig {
        self.model.config()
    }
    fn forward(&self, x: Tensor<4>, t: Tensor<1>, y: Tensor<1, Int>, opts: &ForwardOptions) -> RoutedForward {
        self.model.forward(x, t, y, opts)
    }
    fn full_flops(&self) -> Flops {
        self.model.full_flops()
    }
    fn num_params(&self) -> usize {
        self.model.num_params()
    }
    fn as_any(&self) -> &dyn std::any::Any {
        self
    }
    fn param_ids(&self, select: &dyn Fn(&str, bool) -> bool) -> Vec<ParamId> {
        let router: std::collections::HashSet<ParamId> = self.model.stack.router_params().into_iter().collect();
        dddit_core::optim::param_paths(&self.model)
            .into_iter()
            .filter(|(path, id, _)| select(path, router.contains(id)))
            .map(|(_, id, _)| id)
            .collect()
    }
    fn router_params(&self) -> Vec<ParamId> {
        self.model.stack.router_params()
    }
    fn optimize(&mut self, loss: Tensor<1>, optim: &mut FusedAdamW, lr: f64, only: Option<&[ParamId]>) -> f64 {
        let mut grads = loss.backward();
        let grads = match only {
            Some(ids) => GradientsParams::from_params(&mut grads, &self.model, ids),
            None => GradientsParams::from_grads(grads, &self.model),
        };
        // A non-finite gradient is never applied (FusedAdamW::step checks the norm first): one
        // NaN would poison every weight and the optimiser's moments. The caller sees the NaN
        // norm and decides (the trainer skips the step and stops after several in a row).
        let (model, norm) = optim.step(lr, self.model.clone(), &grads);
        self.model = model;
        norm
    }
    fn grad_norms(&self, loss: Tensor<1>) -> Vec<(String, ParamId, f64)> {
        let grads = GradientsParams::from_grads(loss.backward(), &self.model);
        let norms: std::collections::HashMap<ParamId, f64> =
            dddit_core::optim::grad_norms(&self.model, &grads).into_iter().collect();
        dddit_core::optim::param_paths(&self.model)
            .into_iter()
            .map(|(path, id, _)| (path, id, norms.get(&id).copied().unwrap_or(0.0)))
            .collect()
    }
    fn param_values(&self) -> Vec<(String, ParamId, Vec<f32>)> {
        // Both in visit order.
        let values = crate::train_hooks::param_values(&self.model).into_iter().map(|(_, v)| v);
        dddit_core::optim::param_paths(&self.model)
            .into_iter()
            .zip(values)
            .map(|((path, id, _), v)| (path, id, v))
            .collect()
    }
    fn save_optim(&self, optim: &FusedAdamW, dir: &std::path::Path) -> Result<(), String> {
        optim.save(dir, &self.model)
    }
    fn load_optim(&self, optim: &mut FusedAdamW, dir: &std::path::Path) -> Result<(), String> {
        let device = self.model.devices().into_iter().next().expect("a model lives on a device");
        optim.load(dir, &self.model, &device)
    }
    fn ema_from(&mut self, online: &dyn AnyRoutedModel, decay: f64) {
        let online = online.as_any().downcast_ref::<Named<S>>().expect("EMA of the same router type");
        self.model = crate::train_hooks::ema(self.model.clone(), &online.model, decay);
    }
    fn to_device(&self, device: &Device) -> Box<dyn AnyRoutedModel> {
        Box::new(Named { name: self.name, model: self.model.clone().to_device(device) })
    }
    fn save(&self, path: &std::path::Path) -> Result<(), String> {
        crate::train_hooks::save_atomic(&self.model, path)
    }
    fn load(&mut self, path: &std::path::Path) -> Result<(), String> {
        crate::train_hooks::load(&mut self.model, path)
    }
}

/// Builds a routed model from a `[router]` table (see [`RouterEntry::build`]).
pub type BuildFn = fn(&toml::Table, &DiTConfig, &Device) -> Result<Box<dyn AnyRoutedModel>, Vec<ConfigError>>;

/// A registry entry (see [`register_router!`](crate::register_router)).
pub struct RouterEntry {
    /// Registered name.
    pub name: &'static str,
    /// One-line description.
    pub description: &'static str,
    /// Config keys.
    pub keys: fn() -> &'static [KeyDoc],
    /// Parses (unknown keys rejected, defaults filled) and validates a `[router]` table.
    pub validate: fn(&toml::Table, &DiTConfig) -> Result<(), Vec<ConfigError>>,
    /// The problems of a `[router]` table that need no model: unknown, mistyped and
    /// non-finite keys (so that they are reported even when the model is invalid).
    pub check_keys: fn(&toml::Table) -> Vec<ConfigError>,
    /// The settings a `[router]` table stands for, defaults filled in (`None` when it does
    /// not parse): equal for `{ kind = "topk" }` and `{ kind = "topk", k = 1 }`, so that two
    /// sweep points that would train the same model can be told.
    pub settings: fn(&toml::Table) -> Option<String>,
    /// Parses, validates and builds the routed model.
    pub build: BuildFn,
    /// Whether a `[router]` table's router has a differentiable FLOPs cost
    /// ([`RouterConfig::flops_loss`]); false when the table does not parse.
    pub flops_loss: fn(&toml::Table) -> bool,
    /// Experts per mixture layer ([`RouterConfig::experts`]); 0 when the table does not parse.
    pub experts: fn(&toml::Table) -> usize,
    /// Trainable parameters of the whole model a valid `[router]` table builds for a DiT,
    /// counted without allocating them ([`param_count`]); `None` when the table is invalid.
    pub param_count: fn(&toml::Table, &DiTConfig) -> Option<ParamCount>,
}

impl std::fmt::Debug for RouterEntry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RouterEntry").field("name", &self.name).finish_non_exhaustive()
    }
}

inventory::collect!(RouterEntry);

/// Parses a `[router]` table (without its `kind` key) into a config, collecting every unknown,
/// mistyped or non-finite key (see [`crate::settings::deserialize_all`]). The config comes
/// back, with defaults where keys were bad, whenever the rest of the table can be read, so
/// that range checks can still report on the good keys.
pub fn parse_all<C: RouterConfig>(table: &toml::Table) -> (Option<C>, Vec<ConfigError>) {
    let mut t = table.clone();
    t.remove("kind");
    let mut problems = Vec::new();
    let c = crate::settings::deserialize_all::<C>(t, "", &mut problems);
    (c, problems.into_iter().map(|(k, m)| ConfigError::new(k, m)).collect())
}

/// Parses a `[router]` table (without its `kind` key) into a config; every problem when any.
pub fn parse<C: RouterConfig>(table: &toml::Table) -> Result<C, Vec<ConfigError>> {
    match parse_all::<C>(table) {
        (Some(c), errs) if errs.is_empty() => Ok(c),
        (_, errs) => Err(errs),
    }
}

/// `validate` of [`RouterEntry`] for a config type: every parse problem, then the range
/// checks of what could be read (keys already reported are not reported twice).
pub fn validate_entry<C: RouterConfig>(table: &toml::Table, model: &DiTConfig) -> Result<(), Vec<ConfigError>> {
    let (c, mut errs) = parse_all::<C>(table);
    if let Some(c) = c {
        for e in c.validate(model) {
            if !errs.iter().any(|x| x.key == e.key) {
                errs.push(e);
            }
        }
    }
    if errs.is_empty() {
        Ok(())
    } else {
        Err(errs)
    }
}

/// `settings` of [`RouterEntry`] for a config type.
pub fn settings_entry<C: RouterConfig>(table: &toml::Table) -> Option<String> {
    parse::<C>(table).ok().map(|c| format!("{}: {c:?}", C::NAME))
}

/// `check_keys` of [`RouterEntry`] for a config type.
pub fn check_keys_entry<C: RouterConfig>(table: &toml::Table) -> Vec<ConfigError> {
    parse_all::<C>(table).1
}

/// `flops_loss` of [`RouterEntry`] for a config type.
pub fn flops_loss_entry<C: RouterConfig>(table: &toml::Table) -> bool {
    parse::<C>(table).is_ok_and(|c| c.flops_loss())
}

/// `experts` of [`RouterEntry`] for a config type.
pub fn experts_entry<C: RouterConfig>(table: &toml::Table) -> usize {
    parse::<C>(table).map_or(0, |c| c.experts())
}

/// Trainable parameters of the model `config` builds for `model`, counted by building it with
/// parameters left lazy (`dddit_core::nn::shapes_only`): burn records their shapes without
/// allocating, so a configuration of 10¹¹ parameters is counted, not attempted. Exact for every
/// router whose initial values go through `dddit_core::nn::{eager, linear, constant}` or burn's
/// initialisers (the test `param_count_matches_the_built_model` checks the registered ones).
pub fn param_count<C: RouterConfig>(config: &C, model: &DiTConfig, device: &Device) -> ParamCount {
    dddit_core::nn::shapes_only(|| {
        let m = RoutedDiT::new(model, config.init(model, device), device);
        let ids: std::collections::HashSet<ParamId> = m.stack.router_params().into_iter().collect();
        let router = dddit_core::optim::param_paths(&m).iter().filter(|(_, id, _)| ids.contains(id)).map(|p| p.2).sum();
        ParamCount { total: m.num_params(), router }
    })
}

/// Parameter counts of a model (see [`param_count`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ParamCount {
    /// Every trainable parameter (scalars).
    pub total: usize,
    /// Those the stack declares the router's own ([`Router::router_params`]); 0 for a
    /// router without learned routing, whose `train = "router"` stage would train nothing.
    pub router: usize,
}

/// `param_count` of [`RouterEntry`] for a config type (on the default CPU device).
pub fn param_count_entry<C: RouterConfig>(table: &toml::Table, model: &DiTConfig) -> Option<ParamCount> {
    let c = parse::<C>(table).ok()?;
    if !c.validate(model).is_empty() {
        return None;
    }
    let device = dddit_core::device::DeviceSpec::default_spec().device().ok()?;
    Some(param_count(&c, model, &device))
}

/// `build` of [`RouterEntry`] for a config type.
pub fn build_entry<C: RouterConfig>(
    table: &toml::Table,
    model: &DiTConfig,
    device: &Device,
) -> Result<Box<dyn AnyRoutedModel>, Vec<ConfigError>> {
    // Every problem at once, as validation reports them, before anything is built.
    validate_entry::<C>(table, model)?;
    let c = parse::<C>(table)?;
    let stack = c.init(model, device);
    Ok(Box::new(Named { name: C::NAME, model: RoutedDiT::new(model, stack, device) }))
}

/// Registers a [`RouterConfig`] under its name.
///
/// ```ignore
/// dddit_routers::register_router!(MyRouterConfig);
/// ```
#[macro_export]
macro_rules! register_router {
    ($config:ty) => {
        $crate::inventory::submit! {
            $crate::RouterEntry {
                name: <$config as $crate::RouterConfig>::NAME,
                description: <$config as $crate::RouterConfig>::DESCRIPTION,
                keys: <$config as $crate::RouterConfig>::keys,
                validate: $crate::registry::validate_entry::<$config>,
                check_keys: $crate::registry::check_keys_entry::<$config>,
                settings: $crate::registry::settings_entry::<$config>,
                build: $crate::registry::build_entry::<$config>,
                flops_loss: $crate::registry::flops_loss_entry::<$config>,
                experts: $crate::registry::experts_entry::<$config>,
                param_count: $crate::registry::param_count_entry::<$config>,
            }
        }
    };
}

/// Every registered router, sorted by name.
pub fn routers() -> Vec<&'static RouterEntry> {
    let mut v: Vec<_> = inventory::iter::<RouterEntry>.into_iter().collect();
    v.sort_by_key(|e| e.name);
    v
}

/// The router registered as `name`.
pub fn lookup(name: &str) -> Result<&'static RouterEntry, RouterError> {
    routers().into_iter().find(|e| e.name == name).ok_or_else(|| RouterError::Unknown {
        name: name.to_string(),
        known: routers().iter().map(|e| e.name).collect::<Vec<_>>().join(", "),
    })
}

/// The router a `[router]` table names: its `kind`; `dense` for an empty (or absent) table. A
/// table with keys but no `kind` (`name = "topk"`, a forgotten line) is an error on `kind`:
/// running `dense` in its place would report a router that did not run.
pub fn kind_of(table: &toml::Table) -> Result<&str, ConfigError> {
    match table.get("kind") {
        Some(toml::Value::String(s)) => Ok(s.as_str()),
        Some(other) => Err(ConfigError::new("kind", format!("expected a router name, found {}", other.type_str()))),
        None if table.is_empty() => Ok("dense"),
        None => {
            let keys: Vec<&str> = table.keys().map(|k| k.as_str()).collect();
            Err(ConfigError::new(
                "kind",
                format!(
                    "missing: the table sets {} but not which router; write kind = \"…\" (registered: {})",
                    keys.join(", "),
                    routers().iter().map(|e| e.name).collect::<Vec<_>>().join(", ")
                ),
            ))
        }
    }
}

/// Builds the model a `[router]` table describes (`kind` names the router; see [`kind_of`]).
pub fn build(table: &toml::Table, model: &DiTConfig, device: &Device) -> Result<Box<dyn AnyRoutedModel>, RouterError> {
    let kind = kind_of(table).map_err(|e| RouterError::Config(vec![e]))?;
    let entry = lookup(kind)?;
    (entry.build)(table, model, device).map_err(RouterError::Config)
}
