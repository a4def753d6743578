//! Imports torchvision's published ImageNet weights (PyTorch `.pth` state dicts) for VGG16 and
//! ResNet50 into the web weight format. Native only: asset preparation runs it, the browser
//! downloads the result.
//!
//! Supported files are the official ones, [`VGG16_URL`] (a 2017 legacy-format checkpoint) and
//! [`RESNET50_URL`] (a ZIP-format checkpoint); [`pytorch_reader`] reads both containers. Keras'
//! `.h5` files of the same networks are not supported: they hold other weights (Caffe-style BGR
//! preprocessing for VGG16, ResNet "v1" strides) and another container.
//!
//! Convolution weights are stored as int8 with one `f32` scale per output channel
//! (`scale = max |w| / 127`, `q = round(w / scale)`), about 4x smaller than `f32`; biases stay
//! `f32`. ResNet50's batch norms are folded into the convolutions before quantisation (see
//! [`crate::resnet50`]); classifier keys (`classifier.*`, `fc.*`) are ignored.

use std::collections::HashMap;
use std::io::Read;
use std::path::Path;

use log::info;
use pytorch_reader::{DType, PytorchReader};
use sha2::{Digest, Sha256};
use thiserror::Error;

use crate::resnet50::{BATCH_NORM_EPSILON, ResNet50Config};
use crate::vgg16::Vgg16Config;
use crate::weights::{Preprocessing, WeightsBuilder, WeightsError};

/// The official VGG16 file name.
pub const VGG16_FILE: &str = "vgg16-397923af.pth";
/// Where torchvision publishes [`VGG16_FILE`].
pub const VGG16_URL: &str = "https://download.pytorch.org/models/vgg16-397923af.pth";
/// The official ResNet50 file name.
pub const RESNET50_FILE: &str = "resnet50-11ad3fa6.pth";
/// Where torchvision publishes [`RESNET50_FILE`].
pub const RESNET50_URL: &str = "https://download.pytorch.org/models/resnet50-11ad3fa6.pth";

/// Errors while importing a torchvision checkpoint.
#[derive(Debug, Error)]
pub enum TorchvisionError {
    /// The file cannot be read or is not a PyTorch checkpoint.
    #[error("cannot read the PyTorch checkpoint {path}: {reason}")]
    Read {
        /// The file.
        path: String,
        /// What went wrong.
        reason: String,
    },
    /// The file name lacks torchvision's `-<8 hex digits>.pth` hash suffix.
    #[error(
        "{file} does not end in torchvision's -<first 8 hex digits of its SHA-256>.pth, so it \
         cannot be checked; use the file under its published name"
    )]
    NoHashInName {
        /// The file name.
        file: String,
    },
    /// The file's SHA-256 does not start with the hash in its name: corrupt or another file.
    #[error(
        "{file} is damaged or not the published file: its SHA-256 starts with {found}, the \
         name promises {expected}; download it again"
    )]
    HashMismatch {
        /// The file name.
        file: String,
        /// The 8 hex digits in the name.
        expected: String,
        /// The first 8 hex digits of the file's SHA-256.
        found: String,
    },
    /// A tensor the network needs is not in the state dict.
    #[error("the checkpoint has no tensor {key}")]
    MissingKey {
        /// State-dict key, e.g. `layer1.0.bn2.running_var`.
        key: String,
    },
    /// A tensor has another shape than the network needs.
    #[error("checkpoint tensor {key} has shape {found:?}, expected {expected:?}")]
    Shape {
        /// State-dict key.
        key: String,
        /// Shape in the file.
        found: Vec<usize>,
        /// Shape the network needs.
        expected: Vec<usize>,
    },
    /// A tensor is not stored as 32-bit floats.
    #[error("checkpoint tensor {key} holds {found} values, expected f32")]
    DType {
        /// State-dict key.
        key: String,
        /// Its element type.
        found: String,
    },
    /// Building the weight file failed.
    #[error(transparent)]
    Weights(#[from] WeightsError),
}

/// The tensors of a PyTorch state dict, read lazily from the file.
#[derive(Debug)]
pub struct StateDict {
    path: String,
    tensors: HashMap<String, pytorch_reader::Tensor>,
}

impl StateDict {
    /// Opens a checkpoint (ZIP, legacy or TAR container) and lists its tensors.
    pub fn open(path: &Path) -> Result<Self, TorchvisionError> {
        let reader = PytorchReader::new(path).map_err(|e| TorchvisionError::Read {
            path: path.display().to_string(),
            reason: e.to_string(),
        })?;
        Ok(Self {
            path: path.display().to_string(),
            tensors: reader.into_tensors(),
        })
    }

    /// State-dict keys, sorted.
    pub fn keys(&self) -> Vec<&str> {
        let mut keys: Vec<&str> = self.tensors.keys().map(String::as_str).collect();
        keys.sort_unstable();
        keys
    }

    /// The `f32` values of `key`, which must have shape `expected`.
    pub fn f32(&self, key: &str, expected: &[usize]) -> Result<Vec<f32>, TorchvisionError> {
        let tensor = self
            .tensors
            .get(key)
            .ok_or_else(|| TorchvisionError::MissingKey {
                key: key.to_string(),
            })?;
        if tensor.shape() != expected {
            return Err(TorchvisionError::Shape {
                key: key.to_string(),
                found: tensor.shape().to_vec(),
                expected: expected.to_vec(),
            });
        }
        if tensor.dtype() != DType::F32 {
            return Err(TorchvisionError::DType {
                key: key.to_string(),
                found: format!("{:?}", tensor.dtype()),
            });
        }
        let bytes = tensor.read().map_err(|e| TorchvisionError::Read {
            path: self.path.clone(),
            reason: e.to_string(),
        })?;
        Ok(bytes
            .chunks_exact(4)
            .map(|c| f32::from_ne_bytes([c[0], c[1], c[2], c[3]]))
            .collect())
    }
}

/// Checks a torchvision file against the hash in its name: `name-<hex8>.pth` promises that the
/// file's SHA-256 starts with `<hex8>`. Streams the file, so large files are not held in memory.
pub fn verify_file_hash(path: &Path) -> Result<(), TorchvisionError> {
    let file = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let expected = file
        .strip_suffix(".pth")
        .and_then(|stem| stem.rsplit_once('-'))
        .map(|(_, hash)| hash.to_ascii_lowercase())
        .filter(|hash| hash.len() == 8 && hash.chars().all(|c| c.is_ascii_hexdigit()))
        .ok_or_else(|| TorchvisionError::NoHashInName { file: file.clone() })?;
    let read_error = |e: std::io::Error| TorchvisionError::Read {
        path: path.display().to_string(),
        reason: e.to_string(),
    };
    let mut reader = std::fs::File::open(path).map_err(read_error)?;
    let mut hasher = Sha256::new();
    let mut buffer = vec![0u8; 1 << 20];
    loop {
        let n = reader.read(&mut buffer).map_err(read_error)?;
        if n == 0 {
            break;
        }
        hasher.update(&buffer[..n]);
    }
    let found: String = hasher.finalize()[..4]
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    if found != expected {
        return Err(TorchvisionError::HashMismatch {
            file,
            expected,
            found,
        });
    }
    Ok(())
}

/// Quantises `values` (row-major, `channels` equal blocks) to int8 with one scale per block:
/// `scale = max |w| / 127` (1 for an all-zero channel), `q = round(w / scale)`.
pub fn quantize_per_channel(values: &[f32], channels: usize) -> (Vec<i8>, Vec<f32>) {
    let per_channel = values.len().checked_div(channels).unwrap_or(0).max(1);
    let mut quantized = Vec::with_capacity(values.len());
    let mut scales = Vec::with_capacity(channels);
    for channel in values.chunks(per_channel) {
        let max = channel.iter().fold(0.0f32, |m, v| m.max(v.abs()));
        let scale = if max > 0.0 { max / 127.0 } else { 1.0 };
        scales.push(scale);
        quantized.extend(
            channel
                .iter()
                .map(|v| (v / scale).round().clamp(-127.0, 127.0) as i8),
        );
    }
    (quantized, scales)
}

/// Adds one convolution: int8 per-channel weight `[out, in, k, k]` and `f32` bias `[out]`.
fn add_conv(
    builder: &mut WeightsBuilder,
    name: &str,
    shape: [usize; 4],
    weight: &[f32],
    bias: Vec<f32>,
) -> Result<(), WeightsError> {
    let (quantized, scales) = quantize_per_channel(weight, shape[0]);
    builder.add_i8_per_channel(format!("{name}.weight"), shape, quantized, scales)?;
    builder.add_f32(format!("{name}.bias"), [shape[0]], bias)
}

/// Maps a VGG16 state dict (`features.{i}.weight` / `.bias`) into a weight file of `config`'s
/// shape; `classifier.*` is ignored.
pub fn vgg16_weights(
    config: &Vgg16Config,
    state: &StateDict,
) -> Result<WeightsBuilder, TorchvisionError> {
    let mut builder = WeightsBuilder::new(
        config.architecture(),
        Preprocessing::torchvision(),
        Vec::new(),
    );
    for spec in config.conv_specs() {
        let shape = spec.weight_shape();
        let weight = state.f32(&format!("{}.weight", spec.name), &shape)?;
        let bias = state.f32(&format!("{}.bias", spec.name), &[spec.out_channels])?;
        add_conv(&mut builder, &spec.name, shape, &weight, bias)?;
    }
    Ok(builder)
}

/// State-dict prefixes of a ResNet convolution and of its batch norm, from the weight file's
/// name of the folded convolution: `conv1` -> (`conv1`, `bn1`), `layer1.0.conv2` ->
/// (`layer1.0.conv2`, `layer1.0.bn2`), `layer1.0.downsample` -> (`layer1.0.downsample.0`,
/// `layer1.0.downsample.1`).
pub fn resnet_keys(name: &str) -> (String, String) {
    if let Some(block) = name.strip_suffix(".downsample") {
        return (
            format!("{block}.downsample.0"),
            format!("{block}.downsample.1"),
        );
    }
    let (block, conv) = match name.rsplit_once('.') {
        Some((block, conv)) => (format!("{block}."), conv),
        None => (String::new(), name),
    };
    let bn = conv.replacen("conv", "bn", 1);
    (name.to_string(), format!("{block}{bn}"))
}

/// Maps a ResNet50 state dict into a weight file of `config`'s shape, folding each batch norm
/// (`weight`, `bias`, `running_mean`, `running_var`; eps [`BATCH_NORM_EPSILON`]) into the
/// bias-free convolution before it; `fc.*` and `num_batches_tracked` are ignored.
pub fn resnet50_weights(
    config: &ResNet50Config,
    state: &StateDict,
) -> Result<WeightsBuilder, TorchvisionError> {
    let mut builder = WeightsBuilder::new(
        config.architecture(),
        Preprocessing::torchvision(),
        Vec::new(),
    );
    for spec in config.conv_specs() {
        let (conv_key, bn_key) = resnet_keys(&spec.name);
        let shape = spec.weight_shape();
        let channels = [spec.out_channels];
        let mut weight = state.f32(&format!("{conv_key}.weight"), &shape)?;
        let gamma = state.f32(&format!("{bn_key}.weight"), &channels)?;
        let beta = state.f32(&format!("{bn_key}.bias"), &channels)?;
        let mean = state.f32(&format!("{bn_key}.running_mean"), &channels)?;
        let var = state.f32(&format!("{bn_key}.running_var"), &channels)?;
        let per_channel = weight.len() / spec.out_channels.max(1);
        let mut bias = Vec::with_capacity(spec.out_channels);
        for (c, values) in weight.chunks_mut(per_channel.max(1)).enumerate() {
            let factor = gamma[c] / (var[c] + BATCH_NORM_EPSILON).sqrt();
            values.iter_mut().for_each(|w| *w *= factor);
            bias.push(beta[c] - mean[c] * factor);
        }
        add_conv(&mut builder, &spec.name, shape, &weight, bias)?;
    }
    Ok(builder)
}

/// Imports the official [`VGG16_FILE`] (checked against the hash in its name) into a weight
/// file for [`crate::vgg16::Vgg16`].
pub fn import_vgg16(path: &Path) -> Result<WeightsBuilder, TorchvisionError> {
    verify_file_hash(path)?;
    let state = StateDict::open(path)?;
    info!(
        "importing VGG16 from {} ({} tensors)",
        path.display(),
        state.tensors.len()
    );
    vgg16_weights(&Vgg16Config::default(), &state)
}

/// Imports the official [`RESNET50_FILE`] (checked against the hash in its name) into a weight
/// file for [`crate::resnet50::ResNet50`], batch norm folded.
pub fn import_resnet50(path: &Path) -> Result<WeightsBuilder, TorchvisionError> {
    verify_file_hash(path)?;
    let state = StateDict::open(path)?;
    info!(
        "importing ResNet50 from {} ({} tensors)",
        path.display(),
        state.tensors.len()
    );
    resnet50_weights(&ResNet50Config::default(), &state)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::backbone::{Backbone, BackboneKind};
    use crate::resnet50::ResNet50;
    use crate::vgg16::Vgg16;
    use crate::weights::WebWeights;
    use burn::tensor::{Device, Tensor, TensorData};
    use std::io::Write;
    use std::path::PathBuf;

    /// A state-dict tensor to write: f32 parameters or an i64 counter.
    #[derive(Clone)]
    enum Values {
        F32(Vec<f32>),
        I64(Vec<i64>),
    }

    type Entry = (String, Vec<usize>, Values);

    fn unicode(out: &mut Vec<u8>, s: &str) {
        out.push(b'X');
        out.extend((s.len() as u32).to_le_bytes());
        out.extend(s.as_bytes());
    }

    fn int(out: &mut Vec<u8>, v: usize) {
        out.push(b'J');
        out.extend((v as i32).to_le_bytes());
    }

    fn global(out: &mut Vec<u8>, module: &str, name: &str) {
        out.push(b'c');
        out.extend(format!("{module}\n{name}\n").as_bytes());
    }

    fn tuple(out: &mut Vec<u8>, items: &[usize]) {
        out.push(b'(');
        items.iter().for_each(|&v| int(out, v));
        out.push(b't');
    }

    fn storage_bytes(values: &Values) -> (usize, Vec<u8>) {
        match values {
            Values::F32(v) => (v.len(), v.iter().flat_map(|x| x.to_le_bytes()).collect()),
            Values::I64(v) => (v.len(), v.iter().flat_map(|x| x.to_le_bytes()).collect()),
        }
    }

    /// The state dict as `torch.save` pickles it (protocol 2): an `OrderedDict` of
    /// `_rebuild_tensor_v2(storage, offset, size, stride, False, OrderedDict())`, storages as
    /// persistent ids `('storage', torch.FloatStorage, key, 'cpu', numel[, None])`.
    fn state_dict_pickle(entries: &[Entry], legacy: bool) -> Vec<u8> {
        let mut out = vec![0x80, 2];
        global(&mut out, "collections", "OrderedDict");
        out.extend([b')', b'R', b'(']);
        for (key, (name, shape, values)) in entries.iter().enumerate() {
            unicode(&mut out, name);
            global(&mut out, "torch._utils", "_rebuild_tensor_v2");
            out.extend([b'(', b'(']);
            unicode(&mut out, "storage");
            let storage = match values {
                Values::F32(_) => "FloatStorage",
                Values::I64(_) => "LongStorage",
            };
            global(&mut out, "torch", storage);
            unicode(&mut out, &key.to_string());
            unicode(&mut out, "cpu");
            int(&mut out, storage_bytes(values).0);
            if legacy {
                out.push(b'N');
            }
            out.extend([b't', b'Q']);
            int(&mut out, 0);
            tuple(&mut out, shape);
            let strides: Vec<usize> = (0..shape.len())
                .map(|i| shape[i + 1..].iter().product())
                .collect();
            tuple(&mut out, &strides);
            out.push(0x89);
            global(&mut out, "collections", "OrderedDict");
            out.extend([b')', b'R', b't', b'R']);
        }
        out.extend([b'u', b'.']);
        out
    }

    /// PyTorch's ZIP container (1.6 and later): `archive/data.pkl`, `archive/data/{key}`...
    fn write_zip(path: &Path, entries: &[Entry]) {
        let mut zip = zip::ZipWriter::new(std::fs::File::create(path).unwrap());
        let options = zip::write::SimpleFileOptions::default()
            .compression_method(zip::CompressionMethod::Stored);
        let mut add = |name: &str, bytes: &[u8]| {
            zip.start_file(format!("archive/{name}"), options).unwrap();
            zip.write_all(bytes).unwrap();
        };
        add("data.pkl", &state_dict_pickle(entries, false));
        add("byteorder", b"little");
        for (key, (_, _, values)) in entries.iter().enumerate() {
            add(&format!("data/{key}"), &storage_bytes(values).1);
        }
        add("version", b"3\n");
        zip.finish().unwrap();
    }

    /// The legacy container (PyTorch 0.1.10 to 1.5): magic, protocol version and system info
    /// pickles, the state dict, the storage key list, then each storage as an `i64` element
    /// count and its bytes.
    fn write_legacy(path: &Path, entries: &[Entry]) {
        let mut out = vec![0x80, 2, 0x8a, 10];
        out.extend([0x6c, 0xfc, 0x9c, 0x46, 0xf9, 0x20, 0x6a, 0xa8, 0x50, 0x19]);
        out.extend([b'.', 0x80, 2, b'M', 0xe9, 0x03, b'.', 0x80, 2, b'}', b'(']);
        unicode(&mut out, "protocol_version");
        out.extend([b'M', 0xe9, 0x03]);
        unicode(&mut out, "little_endian");
        out.push(0x88);
        out.extend([b'u', b'.']);
        out.extend(state_dict_pickle(entries, true));
        out.extend([0x80, 2, b']', b'(']);
        (0..entries.len()).for_each(|key| unicode(&mut out, &key.to_string()));
        out.extend([b'e', b'.']);
        for (_, _, values) in entries {
            let (count, bytes) = storage_bytes(values);
            out.extend((count as i64).to_le_bytes());
            out.extend(bytes);
        }
        std::fs::write(path, out).unwrap();
    }

    /// Writes the checkpoint and renames it `{stem}-{hash8}.pth`, as torchvision names files.
    fn write_named(dir: &Path, stem: &str, entries: &[Entry], legacy: bool) -> PathBuf {
        let tmp = dir.join(format!("{stem}.tmp"));
        if legacy {
            write_legacy(&tmp, entries);
        } else {
            write_zip(&tmp, entries);
        }
        let hash = crate::weights::sha256_hex(&std::fs::read(&tmp).unwrap());
        let path = dir.join(format!("{stem}-{}.pth", &hash[..8]));
        std::fs::rename(&tmp, &path).unwrap();
        path
    }

    /// Deterministic pseudo-random numbers.
    struct Lcg(u64);

    impl Lcg {
        fn next(&mut self) -> u32 {
            self.0 = self
                .0
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            (self.0 >> 33) as u32
        }

        /// Uniform in `[lo, hi)`.
        fn uniform(&mut self, lo: f32, hi: f32) -> f32 {
            lo + (hi - lo) * (self.next() % 10_000) as f32 / 10_000.0
        }
    }

    /// Conv weights that int8 per-channel quantisation stores exactly: integers in
    /// [-127, 127] (each channel reaching 127) times a power-of-two channel scale sized to keep
    /// activations near 1.
    fn exact_weights(rng: &mut Lcg, shape: [usize; 4]) -> Vec<f32> {
        let per_channel = shape[1] * shape[2] * shape[3];
        let base = (64.0 * (per_channel as f32).sqrt()).log2().ceil() as i32;
        let mut values = Vec::new();
        for c in 0..shape[0] {
            let scale = 2f32.powi(-base - (c % 2) as i32);
            for i in 0..per_channel {
                let k = if i == c % per_channel {
                    if c % 3 == 0 { -127 } else { 127 }
                } else {
                    (rng.next() % 255) as i32 - 127
                };
                values.push(k as f32 * scale);
            }
        }
        values
    }

    fn f32_entry(name: String, shape: &[usize], values: Vec<f32>) -> Entry {
        (name, shape.to_vec(), Values::F32(values))
    }

    fn vgg_state_dict(config: &Vgg16Config) -> Vec<Entry> {
        let mut rng = Lcg(1);
        let mut entries = Vec::new();
        for spec in config.conv_specs() {
            let shape = spec.weight_shape();
            let weight = exact_weights(&mut rng, shape);
            entries.push(f32_entry(format!("{}.weight", spec.name), &shape, weight));
            let bias = (0..spec.out_channels)
                .map(|_| rng.uniform(-0.05, 0.1))
                .collect();
            entries.push(f32_entry(
                format!("{}.bias", spec.name),
                &[spec.out_channels],
                bias,
            ));
        }
        // The classifier the import ignores.
        entries.push(f32_entry(
            "classifier.0.weight".into(),
            &[3, 2],
            vec![0.5; 6],
        ));
        entries
    }

    fn resnet_state_dict(config: &ResNet50Config) -> Vec<Entry> {
        let mut rng = Lcg(2);
        let mut entries = Vec::new();
        for spec in config.conv_specs() {
            let (conv, bn) = resnet_keys(&spec.name);
            let shape = spec.weight_shape();
            let weight = exact_weights(&mut rng, shape);
            entries.push(f32_entry(format!("{conv}.weight"), &shape, weight));
            let c = spec.out_channels;
            let mut param = |name: &str, lo: f32, hi: f32| {
                let values = (0..c).map(|_| rng.uniform(lo, hi)).collect();
                f32_entry(format!("{bn}.{name}"), &[c], values)
            };
            entries.push(param("weight", 0.5, 1.5));
            entries.push(param("bias", -0.2, 0.2));
            entries.push(param("running_mean", -0.2, 0.2));
            entries.push(param("running_var", 0.5, 2.0));
            entries.push((
                format!("{bn}.num_batches_tracked"),
                vec![],
                Values::I64(vec![7]),
            ));
        }
        entries.push(f32_entry("fc.weight".into(), &[2, 3], vec![1.0; 6]));
        entries.push(f32_entry("fc.bias".into(), &[2], vec![1.0; 2]));
        entries
    }

    /// A host-side activation `[channels, h, w]`.
    #[derive(Clone)]
    struct Map {
        c: usize,
        h: usize,
        w: usize,
        v: Vec<f32>,
    }

    /// Naive cross-correlation with PyTorch's symmetric `k / 2` padding.
    fn conv(x: &Map, weight: &[f32], out: usize, k: usize, stride: usize) -> Map {
        let pad = (k / 2) as isize;
        let (h, w) = (
            (x.h + 2 * (k / 2) - k) / stride + 1,
            (x.w + 2 * (k / 2) - k) / stride + 1,
        );
        let mut v = vec![0.0; out * h * w];
        for o in 0..out {
            for oy in 0..h {
                for ox in 0..w {
                    let mut sum = 0.0f64;
                    for i in 0..x.c {
                        for ky in 0..k {
                            for kx in 0..k {
                                let y = (oy * stride + ky) as isize - pad;
                                let xx = (ox * stride + kx) as isize - pad;
                                if y < 0 || xx < 0 || y >= x.h as isize || xx >= x.w as isize {
                                    continue;
                                }
                                let a = x.v[(i * x.h + y as usize) * x.w + xx as usize];
                                let b = weight[((o * x.c + i) * k + ky) * k + kx];
                                sum += a as f64 * b as f64;
                            }
                        }
                    }
                    v[(o * h + oy) * w + ox] = sum as f32;
                }
            }
        }
        Map { c: out, h, w, v }
    }

    /// Per-channel `x * a[c] + b[c]`.
    fn affine(mut x: Map, a: &[f32], b: &[f32]) -> Map {
        let plane = x.h * x.w;
        for (i, v) in x.v.iter_mut().enumerate() {
            *v = *v * a[i / plane] + b[i / plane];
        }
        x
    }

    fn relu(mut x: Map) -> Map {
        x.v.iter_mut().for_each(|v| *v = v.max(0.0));
        x
    }

    /// Max-pool with `-inf` padding.
    fn max_pool(x: &Map, k: usize, stride: usize, pad: usize) -> Map {
        let (h, w) = (
            (x.h + 2 * pad - k) / stride + 1,
            (x.w + 2 * pad - k) / stride + 1,
        );
        let mut v = vec![f32::NEG_INFINITY; x.c * h * w];
        for c in 0..x.c {
            for oy in 0..h {
                for ox in 0..w {
                    for ky in 0..k {
                        for kx in 0..k {
                            let y = (oy * stride + ky) as isize - pad as isize;
                            let xx = (ox * stride + kx) as isize - pad as isize;
                            if y >= 0 && xx >= 0 && (y as usize) < x.h && (xx as usize) < x.w {
                                let a = x.v[(c * x.h + y as usize) * x.w + xx as usize];
                                let o = &mut v[(c * h + oy) * w + ox];
                                *o = o.max(a);
                            }
                        }
                    }
                }
            }
        }
        Map { c: x.c, h, w, v }
    }

    fn mean(x: &Map) -> Vec<f32> {
        x.v.chunks(x.h * x.w)
            .map(|p| p.iter().sum::<f32>() / p.len() as f32)
            .collect()
    }

    fn lookup<'a>(entries: &'a [Entry], key: &str) -> &'a [f32] {
        match entries.iter().find(|(name, _, _)| name == key) {
            Some((_, _, Values::F32(v))) => v,
            _ => panic!("no f32 tensor {key}"),
        }
    }

    /// VGG16 straight from the state dict.
    fn vgg_reference(config: &Vgg16Config, entries: &[Entry], input: &Map) -> Vec<f32> {
        let mut x = input.clone();
        let mut specs = config.conv_specs().into_iter();
        for convs in [2, 2, 3, 3, 3] {
            for spec in specs.by_ref().take(convs) {
                let weight = lookup(entries, &format!("{}.weight", spec.name));
                let bias = lookup(entries, &format!("{}.bias", spec.name));
                let y = conv(&x, weight, spec.out_channels, 3, 1);
                x = relu(affine(y, &vec![1.0; spec.out_channels], bias));
            }
            x = max_pool(&x, 2, 2, 0);
        }
        mean(&x)
    }

    /// torchvision's ResNet50 forward (unfolded conv + batch norm) from the state dict.
    fn resnet_reference(config: &ResNet50Config, entries: &[Entry], input: &Map) -> Vec<f32> {
        let conv_bn = |x: &Map, conv_key: &str, bn: &str, out: usize, k: usize, s: usize| {
            let y = conv(x, lookup(entries, &format!("{conv_key}.weight")), out, k, s);
            let gamma = lookup(entries, &format!("{bn}.weight"));
            let beta = lookup(entries, &format!("{bn}.bias"));
            let mean = lookup(entries, &format!("{bn}.running_mean"));
            let var = lookup(entries, &format!("{bn}.running_var"));
            let a: Vec<f32> = (0..out)
                .map(|c| gamma[c] / (var[c] + 1e-5).sqrt())
                .collect();
            let b: Vec<f32> = (0..out).map(|c| beta[c] - mean[c] * a[c]).collect();
            affine(y, &a, &b)
        };
        let stem = config.stem_channels();
        let x = relu(conv_bn(input, "conv1", "bn1", stem, 7, 2));
        let mut x = max_pool(&x, 3, 2, 1);
        for block in config.bottleneck_specs() {
            let n = &block.name;
            let (mid, out) = (block.mid_channels, block.out_channels);
            let y = relu(conv_bn(
                &x,
                &format!("{n}.conv1"),
                &format!("{n}.bn1"),
                mid,
                1,
                1,
            ));
            let y = relu(conv_bn(
                &y,
                &format!("{n}.conv2"),
                &format!("{n}.bn2"),
                mid,
                3,
                block.stride,
            ));
            let mut y = conv_bn(&y, &format!("{n}.conv3"), &format!("{n}.bn3"), out, 1, 1);
            let identity = if block.downsample {
                let (c, b) = (format!("{n}.downsample.0"), format!("{n}.downsample.1"));
                conv_bn(&x, &c, &b, out, 1, block.stride)
            } else {
                x.clone()
            };
            y.v.iter_mut().zip(&identity.v).for_each(|(a, b)| *a += b);
            x = relu(y);
        }
        mean(&x)
    }

    fn test_input(side: usize) -> Map {
        let mut rng = Lcg(3);
        let v = (0..3 * side * side)
            .map(|_| rng.uniform(-2.0, 2.0))
            .collect();
        Map {
            c: 3,
            h: side,
            w: side,
            v,
        }
    }

    fn features_on(backbone: &Backbone, input: &Map) -> Vec<f32> {
        let device = Device::flex();
        let tensor = Tensor::<4>::from_data(
            TensorData::new(input.v.clone(), [1, input.c, input.h, input.w]),
            &device,
        );
        backbone
            .features(tensor)
            .into_data()
            .try_into_vec::<f32>()
            .unwrap()
    }

    fn assert_close(got: &[f32], want: &[f32], what: &str) {
        assert_eq!(got.len(), want.len(), "{what}");
        let scale = want.iter().fold(0.0f32, |m, v| m.max(v.abs()));
        assert!(scale > 1e-3, "{what}: reference features are all near zero");
        let worst = got
            .iter()
            .zip(want)
            .fold(0.0f32, |m, (a, b)| m.max((a - b).abs()));
        eprintln!("{what}: max |difference| {worst:.2e} of max |feature| {scale:.2e}");
        assert!(
            worst <= 1e-4 * scale,
            "{what}: features differ by {worst} (scale {scale})"
        );
    }

    fn round_trip(builder: WeightsBuilder) -> WebWeights {
        WebWeights::from_bytes(&builder.to_bytes()).unwrap()
    }

    #[test]
    fn imports_vgg16_from_both_containers() {
        let dir = tempfile::tempdir().unwrap();
        let config = Vgg16Config::with_width_divisor(16);
        let entries = vgg_state_dict(&config);
        let input = test_input(32);
        let want = vgg_reference(&config, &entries, &input);
        for legacy in [true, false] {
            let path = write_named(dir.path(), &format!("vgg16-{legacy}"), &entries, legacy);
            verify_file_hash(&path).unwrap();
            let state = StateDict::open(&path).unwrap();
            assert_eq!(state.keys().len(), entries.len());
            let weights = round_trip(vgg16_weights(&config, &state).unwrap());
            assert_eq!(weights.architecture(), "vgg16_div16");
            assert_eq!(weights.preprocessing(), &Preprocessing::torchvision());
            assert_eq!(weights.tensor_names().count(), 26);
            let entry = weights.entry("features.28.weight").unwrap();
            assert_eq!(entry.dtype, crate::weights::DType::I8);
            assert_eq!(entry.shape, [32, 32, 3, 3]);
            // Exactly representable weights come back bit for bit.
            let stored = weights.tensor("features.5.weight").unwrap().values;
            assert_eq!(stored, lookup(&entries, "features.5.weight"));
            let network = Vgg16::from_weights(&weights, &Device::flex()).unwrap();
            let got = features_on(&Backbone::Vgg16(network), &input);
            assert_close(&got, &want, &format!("vgg16 legacy={legacy}"));
        }
    }

    #[test]
    fn imports_resnet50_from_both_containers_folding_batch_norm() {
        let dir = tempfile::tempdir().unwrap();
        let config = ResNet50Config::with_width_divisor(16);
        let entries = resnet_state_dict(&config);
        let input = test_input(32);
        let want = resnet_reference(&config, &entries, &input);
        for legacy in [false, true] {
            let path = write_named(dir.path(), &format!("resnet50-{legacy}"), &entries, legacy);
            verify_file_hash(&path).unwrap();
            let state = StateDict::open(&path).unwrap();
            let weights = round_trip(resnet50_weights(&config, &state).unwrap());
            assert_eq!(weights.architecture(), "resnet50_div16");
            assert_eq!(weights.tensor_names().count(), 2 * 53);
            assert!(weights.entry("layer3.0.downsample.weight").is_some());
            assert!(weights.entry("fc.weight").is_none());
            let network = ResNet50::from_weights(&weights, &Device::flex()).unwrap();
            assert_eq!(network.parameter_count(), config.parameter_count());
            let got = features_on(&Backbone::ResNet50(Box::new(network)), &input);
            assert_close(&got, &want, &format!("resnet50 legacy={legacy}"));
        }
    }

    #[test]
    fn missing_keys_wrong_shapes_and_bad_hashes_are_named() {
        let dir = tempfile::tempdir().unwrap();
        let config = ResNet50Config::with_width_divisor(16);
        let mut entries = resnet_state_dict(&config);
        entries.retain(|(name, _, _)| name != "layer2.1.bn2.running_var");
        let path = write_named(dir.path(), "resnet50", &entries, false);
        let state = StateDict::open(&path).unwrap();
        let error = resnet50_weights(&config, &state).unwrap_err();
        let missing = "layer2.1.bn2.running_var";
        assert!(
            matches!(&error, TorchvisionError::MissingKey { key } if key == missing),
            "{error}"
        );

        let vgg = Vgg16Config::with_width_divisor(16);
        let mut entries = vgg_state_dict(&vgg);
        entries[2] = f32_entry("features.2.weight".into(), &[4, 4, 1, 1], vec![0.0; 16]);
        let path = write_named(dir.path(), "vgg16", &entries, true);
        let state = StateDict::open(&path).unwrap();
        let error = vgg16_weights(&vgg, &state).unwrap_err();
        let TorchvisionError::Shape {
            key,
            found,
            expected,
        } = &error
        else {
            panic!("{error}");
        };
        assert_eq!(
            (key.as_str(), found.as_slice()),
            ("features.2.weight", &[4, 4, 1, 1][..])
        );
        assert_eq!(expected, &[4, 4, 3, 3]);
        assert!(error.to_string().contains("features.2.weight"), "{error}");

        // The full-size import checks the name's hash before reading anything.
        let renamed = dir.path().join(VGG16_FILE);
        std::fs::copy(&path, &renamed).unwrap();
        let error = import_vgg16(&renamed).unwrap_err();
        let TorchvisionError::HashMismatch { expected, .. } = &error else {
            panic!("{error}");
        };
        assert_eq!(expected, "397923af");
        let unnamed = dir.path().join("weights.pth");
        std::fs::copy(&path, &unnamed).unwrap();
        assert!(matches!(
            verify_file_hash(&unnamed),
            Err(TorchvisionError::NoHashInName { .. })
        ));
        let garbage = dir.path().join("resnet50-00000000.pth");
        std::fs::write(&garbage, b"not a checkpoint").unwrap();
        assert!(matches!(
            StateDict::open(&garbage),
            Err(TorchvisionError::Read { .. })
        ));
    }

    #[test]
    fn quantisation_keeps_each_channel_within_half_a_step() {
        let values = [0.5, -1.0, 0.25, 0.0, 0.0, 0.0, 3.0, 1.0, -2.9];
        let (q, scales) = quantize_per_channel(&values, 3);
        assert_eq!(q[..3], [64, -127, 32]);
        assert_eq!(scales[1], 1.0);
        for (i, v) in values.iter().enumerate() {
            assert!((q[i] as f32 * scales[i / 3] - v).abs() <= scales[i / 3] / 2.0);
        }
        assert_eq!(resnet_keys("conv1"), ("conv1".into(), "bn1".into()));
        assert_eq!(
            resnet_keys("layer4.2.conv3"),
            ("layer4.2.conv3".into(), "layer4.2.bn3".into())
        );
        assert_eq!(
            BackboneKind::ResNet50.preprocessing(),
            Preprocessing::torchvision()
        );
    }
}
