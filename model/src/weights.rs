//! The compact web weight format ("TLW") that the browser downloads.
//!
//! Layout (all integers little-endian):
//!
//! | bytes | content |
//! |---|---|
//! | 8 | magic `TLWEIGHT` |
//! | 4 | format version (`1`) |
//! | 4 | header length `H` in bytes |
//! | `H` | UTF-8 JSON [`WeightsHeader`] (space-padded: the data section is 4-byte aligned) |
//! | rest | data section |
//!
//! Every offset in the header counts from the start of the data section and is a multiple of 4.
//! An `f32` tensor stores its values as little-endian `f32`; an `i8` tensor stores one byte per
//! value plus `shape[0]` little-endian `f32` scales (one per output channel, axis 0) at
//! `scales_offset`, so that `value = i8 * scale[channel]`.

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::collections::HashSet;
use thiserror::Error;

use crate::trained_model::TrainedModelInfo;

/// The eight bytes every weight file starts with.
pub const MAGIC: &[u8; 8] = b"TLWEIGHT";
/// The format version this code reads and writes.
pub const FORMAT_VERSION: u32 = 1;
/// Bytes before the JSON header: magic, version, header length.
const PREAMBLE: usize = 16;

/// Errors while reading or building a weight file, in plain words.
#[derive(Debug, Error, Clone, PartialEq)]
pub enum WeightsError {
    /// The bytes do not start with the format's magic.
    #[error("not a Transfer Lab weight file")]
    NotWeightFile,
    /// The file was written by a newer or older, incompatible version of the format.
    #[error(
        "weight file format version {found} is not supported \
         (this app reads version {FORMAT_VERSION})"
    )]
    UnsupportedVersion {
        /// The version found in the file.
        found: u32,
    },
    /// The file ends before its header or data section does.
    #[error("the weight file is truncated: {0}")]
    Truncated(String),
    /// The JSON header cannot be parsed.
    #[error("the weight file's header is unreadable: {0}")]
    BadHeader(String),
    /// A tensor's description is inconsistent (byte range outside the file, bad alignment...).
    #[error("tensor {name} is malformed: {reason}")]
    BadTensor {
        /// Tensor name.
        name: String,
        /// What is wrong with it.
        reason: String,
    },
    /// Two tensors share a name.
    #[error("tensor {0} appears twice")]
    DuplicateTensor(String),
    /// A tensor that the network needs is not in the file.
    #[error("tensor {0} is missing from the weight file")]
    MissingTensor(String),
    /// A tensor has another shape than the network expects.
    #[error("tensor {name} has shape {found:?}, expected {expected:?}")]
    ShapeMismatch {
        /// Tensor name.
        name: String,
        /// Shape in the file.
        found: Vec<usize>,
        /// Shape the network expects.
        expected: Vec<usize>,
    },
    /// The builder was given a value or scale count that does not match the shape.
    #[error("tensor {name} has shape {shape:?} but {found} {what} were given")]
    ValueCount {
        /// Tensor name.
        name: String,
        /// Declared shape.
        shape: Vec<usize>,
        /// "values" or "scales".
        what: &'static str,
        /// Number given.
        found: usize,
    },
}

/// How a photo becomes the network's input.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Preprocessing {
    /// Side of the square input in pixels.
    pub input_size: usize,
    /// Input value `x = u8 * scale + offset`.
    pub scale: f32,
    /// See [`Preprocessing::scale`].
    pub offset: f32,
    /// How the photo is fitted to the square: `"squeeze"` resizes the whole photo without
    /// keeping its aspect ratio.
    pub resize: String,
    /// Per-channel (R, G, B) mean subtracted after scaling; absent (no subtraction) in files
    /// written before it existed and for networks that only scale.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mean: Option<[f32; 3]>,
    /// Per-channel (R, G, B) standard deviation divided by after the mean; absent means 1.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub std: Option<[f32; 3]>,
}

impl Preprocessing {
    /// MobileNetV2's preprocessing: 224x224 squeeze, values in [-1, 1].
    pub fn mobilenet_v2() -> Self {
        Self {
            input_size: 224,
            scale: 1.0 / 127.5,
            offset: -1.0,
            resize: "squeeze".into(),
            mean: None,
            std: None,
        }
    }

    /// torchvision's ImageNet preprocessing (VGG16, ResNet50): 224x224 squeeze, RGB scaled to
    /// [0, 1], then `(x - mean) / std` with mean (0.485, 0.456, 0.406) and std
    /// (0.229, 0.224, 0.225).
    pub fn torchvision() -> Self {
        Self {
            input_size: 224,
            scale: 1.0 / 255.0,
            offset: 0.0,
            resize: "squeeze".into(),
            mean: Some([0.485, 0.456, 0.406]),
            std: Some([0.229, 0.224, 0.225]),
        }
    }

    /// The network input for one stored value `u8` of colour channel `channel` (0 = R):
    /// `((u8 * scale + offset) - mean[channel]) / std[channel]`.
    pub fn normalize(&self, value: u8, channel: usize) -> f32 {
        let x = value as f32 * self.scale + self.offset;
        let mean = self.mean.map_or(0.0, |m| m[channel % 3]);
        let std = self.std.map_or(1.0, |s| s[channel % 3]);
        (x - mean) / std
    }
}

/// Element type of a stored tensor.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum DType {
    /// Little-endian `f32` values.
    #[serde(rename = "f32")]
    F32,
    /// `i8` values with one `f32` scale per output channel (axis 0).
    #[serde(rename = "i8")]
    I8,
}

/// One tensor's description in the header.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TensorEntry {
    /// Parameter name, e.g. `blocks.3.expand.weight`.
    pub name: String,
    /// Shape in burn's layout.
    pub shape: Vec<usize>,
    /// Storage type.
    pub dtype: DType,
    /// Byte offset of the values in the data section.
    pub offset: usize,
    /// Byte offset of the `shape[0]` per-channel scales of an `i8` tensor.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scales_offset: Option<usize>,
}

impl TensorEntry {
    /// Number of values (`None` if the product overflows).
    fn element_count(&self) -> Option<usize> {
        self.shape
            .iter()
            .try_fold(1usize, |acc, &d| acc.checked_mul(d))
    }
}

/// The JSON header of a weight file.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct WeightsHeader {
    /// Network name, e.g. `mobilenet_v2_1.0_224`.
    pub architecture: String,
    /// Input preprocessing the weights were trained with.
    pub preprocessing: Preprocessing,
    /// Class names of the stored classifier (may be empty).
    pub labels: Vec<String>,
    /// Tensors in data-section order.
    pub tensors: Vec<TensorEntry>,
    /// What a trained-model file holds and how it was trained; absent in backbone files.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub model: Option<TrainedModelInfo>,
}

/// A dequantized tensor.
#[derive(Debug, Clone, PartialEq)]
pub struct TensorF32 {
    /// Shape in burn's layout.
    pub shape: Vec<usize>,
    /// Row-major values, `shape.iter().product()` of them.
    pub values: Vec<f32>,
}

/// A validated weight file in memory.
#[derive(Debug, Clone)]
pub struct WebWeights {
    header: WeightsHeader,
    data: Vec<u8>,
}

fn read_u32(bytes: &[u8], at: usize) -> Option<u32> {
    let chunk = bytes.get(at..at.checked_add(4)?)?;
    Some(u32::from_le_bytes([chunk[0], chunk[1], chunk[2], chunk[3]]))
}

fn read_f32s(bytes: &[u8]) -> impl Iterator<Item = f32> + '_ {
    bytes
        .chunks_exact(4)
        .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
}

/// Checks that `len` bytes at `offset` lie inside a data section of `data_len` bytes.
fn check_range(
    name: &str,
    what: &str,
    offset: usize,
    len: usize,
    data_len: usize,
) -> Result<(), WeightsError> {
    let bad = |reason: String| WeightsError::BadTensor {
        name: name.to_string(),
        reason,
    };
    if !offset.is_multiple_of(4) {
        return Err(bad(format!("{what} offset {offset} is not 4-byte aligned")));
    }
    match offset.checked_add(len) {
        Some(end) if end <= data_len => Ok(()),
        _ => Err(bad(format!(
            "{what} bytes {offset}..{offset}+{len} lie outside the {data_len}-byte data section"
        ))),
    }
}

impl WebWeights {
    /// Parses and validates a weight file: magic, version, header and every tensor's byte range.
    /// Never panics, whatever the bytes.
    pub fn from_bytes(bytes: &[u8]) -> Result<WebWeights, WeightsError> {
        if bytes.len() < MAGIC.len() || &bytes[..MAGIC.len()] != MAGIC {
            return Err(WeightsError::NotWeightFile);
        }
        let version = read_u32(bytes, 8)
            .ok_or_else(|| WeightsError::Truncated("no format version".into()))?;
        if version != FORMAT_VERSION {
            return Err(WeightsError::UnsupportedVersion { found: version });
        }
        let header_len = read_u32(bytes, 12)
            .ok_or_else(|| WeightsError::Truncated("no header length".into()))?
            as usize;
        let header_end = PREAMBLE
            .checked_add(header_len)
            .filter(|&end| end <= bytes.len())
            .ok_or_else(|| {
                WeightsError::Truncated(format!(
                    "the header needs {header_len} bytes, the file has {}",
                    bytes.len().saturating_sub(PREAMBLE)
                ))
            })?;
        let header: WeightsHeader = serde_json::from_slice(&bytes[PREAMBLE..header_end])
            .map_err(|e| WeightsError::BadHeader(e.to_string()))?;
        let data = &bytes[header_end..];
        let mut names = HashSet::new();
        for entry in &header.tensors {
            if !names.insert(entry.name.as_str()) {
                return Err(WeightsError::DuplicateTensor(entry.name.clone()));
            }
            let count = entry
                .element_count()
                .ok_or_else(|| WeightsError::BadTensor {
                    name: entry.name.clone(),
                    reason: format!("shape {:?} is too large", entry.shape),
                })?;
            match entry.dtype {
                DType::F32 => {
                    let len = count
                        .checked_mul(4)
                        .ok_or_else(|| WeightsError::BadTensor {
                            name: entry.name.clone(),
                            reason: format!("shape {:?} is too large", entry.shape),
                        })?;
                    check_range(&entry.name, "value", entry.offset, len, data.len())?;
                }
                DType::I8 => {
                    check_range(&entry.name, "value", entry.offset, count, data.len())?;
                    let channels = *entry.shape.first().ok_or_else(|| WeightsError::BadTensor {
                        name: entry.name.clone(),
                        reason: "an i8 tensor needs at least one dimension".into(),
                    })?;
                    let scales_offset =
                        entry.scales_offset.ok_or_else(|| WeightsError::BadTensor {
                            name: entry.name.clone(),
                            reason: "an i8 tensor needs scales_offset".into(),
                        })?;
                    let len = channels
                        .checked_mul(4)
                        .ok_or_else(|| WeightsError::BadTensor {
                            name: entry.name.clone(),
                            reason: format!("shape {:?} is too large", entry.shape),
                        })?;
                    check_range(&entry.name, "scale", scales_offset, len, data.len())?;
                }
            }
        }
        Ok(WebWeights {
            header,
            data: data.to_vec(),
        })
    }

    /// The network name recorded in the file.
    pub fn architecture(&self) -> &str {
        &self.header.architecture
    }

    /// The input preprocessing recorded in the file.
    pub fn preprocessing(&self) -> &Preprocessing {
        &self.header.preprocessing
    }

    /// Class names of the stored classifier (may be empty).
    pub fn labels(&self) -> &[String] {
        &self.header.labels
    }

    /// The whole parsed header.
    pub fn header(&self) -> &WeightsHeader {
        &self.header
    }

    /// Tensor names in file order.
    pub fn tensor_names(&self) -> impl Iterator<Item = &str> {
        self.header.tensors.iter().map(|t| t.name.as_str())
    }

    /// A tensor's description, if present.
    pub fn entry(&self, name: &str) -> Option<&TensorEntry> {
        self.header.tensors.iter().find(|t| t.name == name)
    }

    /// A tensor as `f32` values (`i8` tensors dequantized with their channel scales).
    pub fn tensor(&self, name: &str) -> Result<TensorF32, WeightsError> {
        let entry = self
            .entry(name)
            .ok_or_else(|| WeightsError::MissingTensor(name.to_string()))?;
        // Ranges were checked in from_bytes, so slicing cannot fail; keep it checked anyway.
        let count = entry.element_count().unwrap_or(0);
        let slice = |offset: usize, len: usize| {
            self.data
                .get(offset..offset + len)
                .ok_or_else(|| WeightsError::BadTensor {
                    name: name.to_string(),
                    reason: "byte range outside the data section".into(),
                })
        };
        let values = match entry.dtype {
            DType::F32 => read_f32s(slice(entry.offset, count * 4)?).collect(),
            DType::I8 => {
                let channels = entry.shape.first().copied().unwrap_or(0);
                let scales: Vec<f32> =
                    read_f32s(slice(entry.scales_offset.unwrap_or(0), channels * 4)?).collect();
                let per_channel = count.checked_div(channels).unwrap_or(1);
                slice(entry.offset, count)?
                    .iter()
                    .enumerate()
                    .map(|(i, &q)| q as i8 as f32 * scales[i / per_channel.max(1)])
                    .collect()
            }
        };
        Ok(TensorF32 {
            shape: entry.shape.clone(),
            values,
        })
    }

    /// A tensor that must have `expected` shape; a typed error names both shapes otherwise.
    pub fn tensor_with_shape(
        &self,
        name: &str,
        expected: &[usize],
    ) -> Result<TensorF32, WeightsError> {
        let tensor = self.tensor(name)?;
        if tensor.shape != expected {
            return Err(WeightsError::ShapeMismatch {
                name: name.to_string(),
                found: tensor.shape,
                expected: expected.to_vec(),
            });
        }
        Ok(tensor)
    }
}

/// Pending tensor data in a [`WeightsBuilder`].
#[derive(Debug, Clone)]
enum Pending {
    F32(Vec<f32>),
    I8 { values: Vec<i8>, scales: Vec<f32> },
}

/// Assembles a weight file tensor by tensor.
#[derive(Debug, Clone)]
pub struct WeightsBuilder {
    architecture: String,
    preprocessing: Preprocessing,
    labels: Vec<String>,
    tensors: Vec<(String, Vec<usize>, Pending)>,
    model: Option<TrainedModelInfo>,
}

impl WeightsBuilder {
    /// Starts an empty file for `architecture`.
    pub fn new(
        architecture: impl Into<String>,
        preprocessing: Preprocessing,
        labels: Vec<String>,
    ) -> Self {
        Self {
            architecture: architecture.into(),
            preprocessing,
            labels,
            tensors: Vec::new(),
            model: None,
        }
    }

    fn check(
        &self,
        name: &str,
        shape: &[usize],
        found: usize,
        what: &'static str,
        expected: Option<usize>,
    ) -> Result<(), WeightsError> {
        if self.tensors.iter().any(|(n, _, _)| n == name) {
            return Err(WeightsError::DuplicateTensor(name.to_string()));
        }
        if expected != Some(found) {
            return Err(WeightsError::ValueCount {
                name: name.to_string(),
                shape: shape.to_vec(),
                what,
                found,
            });
        }
        Ok(())
    }

    /// Adds an `f32` tensor; `values` are row-major and must number `shape.iter().product()`.
    pub fn add_f32(
        &mut self,
        name: impl Into<String>,
        shape: impl Into<Vec<usize>>,
        values: Vec<f32>,
    ) -> Result<(), WeightsError> {
        let (name, shape) = (name.into(), shape.into());
        let count = shape.iter().try_fold(1usize, |a, &d| a.checked_mul(d));
        self.check(&name, &shape, values.len(), "values", count)?;
        self.tensors.push((name, shape, Pending::F32(values)));
        Ok(())
    }

    /// Adds an `i8` tensor quantized per output channel: `value = values[i] * scales[c]` where
    /// `c` is the index along axis 0; `scales` must number `shape[0]`.
    pub fn add_i8_per_channel(
        &mut self,
        name: impl Into<String>,
        shape: impl Into<Vec<usize>>,
        values: Vec<i8>,
        scales: Vec<f32>,
    ) -> Result<(), WeightsError> {
        let (name, shape) = (name.into(), shape.into());
        let count = shape.iter().try_fold(1usize, |a, &d| a.checked_mul(d));
        self.check(&name, &shape, values.len(), "values", count)?;
        self.check(
            &name,
            &shape,
            scales.len(),
            "scales",
            shape.first().copied(),
        )?;
        self.tensors
            .push((name, shape, Pending::I8 { values, scales }));
        Ok(())
    }

    /// Moves the tensors whose names start with `prefix` into a new builder with the same
    /// architecture, preprocessing and labels (for example to ship an optional classifier as a
    /// separate download).
    pub fn split_off(&mut self, prefix: &str) -> WeightsBuilder {
        let (moved, kept) = std::mem::take(&mut self.tensors)
            .into_iter()
            .partition(|(n, _, _)| n.starts_with(prefix));
        self.tensors = kept;
        WeightsBuilder {
            architecture: self.architecture.clone(),
            preprocessing: self.preprocessing.clone(),
            labels: self.labels.clone(),
            tensors: moved,
            model: None,
        }
    }

    /// Marks the file as a trained model described by `model`.
    pub fn set_model(&mut self, model: TrainedModelInfo) {
        self.model = Some(model);
    }

    /// Names of the tensors added so far, in order.
    pub fn tensor_names(&self) -> impl Iterator<Item = &str> {
        self.tensors.iter().map(|(n, _, _)| n.as_str())
    }

    /// Serializes the file.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut data = Vec::new();
        let pad = |data: &mut Vec<u8>| data.resize(data.len().next_multiple_of(4), 0);
        let mut entries = Vec::with_capacity(self.tensors.len());
        for (name, shape, pending) in &self.tensors {
            let offset = data.len();
            let (dtype, scales_offset) = match pending {
                Pending::F32(values) => {
                    data.extend(values.iter().flat_map(|v| v.to_le_bytes()));
                    (DType::F32, None)
                }
                Pending::I8 { values, scales } => {
                    data.extend(values.iter().map(|&v| v as u8));
                    pad(&mut data);
                    let scales_offset = data.len();
                    data.extend(scales.iter().flat_map(|v| v.to_le_bytes()));
                    (DType::I8, Some(scales_offset))
                }
            };
            pad(&mut data);
            entries.push(TensorEntry {
                name: name.clone(),
                shape: shape.clone(),
                dtype,
                offset,
                scales_offset,
            });
        }
        let header = WeightsHeader {
            architecture: self.architecture.clone(),
            preprocessing: self.preprocessing.clone(),
            labels: self.labels.clone(),
            tensors: entries,
            model: self.model.clone(),
        };
        // Serializing plain strings and numbers cannot fail.
        let mut json = serde_json::to_vec(&header).unwrap_or_default();
        json.resize(json.len().next_multiple_of(4), b' ');
        let mut out = Vec::with_capacity(PREAMBLE + json.len() + data.len());
        out.extend_from_slice(MAGIC);
        out.extend_from_slice(&FORMAT_VERSION.to_le_bytes());
        out.extend_from_slice(&(json.len() as u32).to_le_bytes());
        out.extend_from_slice(&json);
        out.extend_from_slice(&data);
        out
    }
}

/// Lower-case hexadecimal SHA-256 of `bytes`.
pub fn sha256_hex(bytes: &[u8]) -> String {
    Sha256::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

#[cfg(test)]
// Tests fail loudly on purpose.
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn sample() -> Vec<u8> {
        let mut b = WeightsBuilder::new(
            "tiny",
            Preprocessing::mobilenet_v2(),
            vec!["a".into(), "b".into()],
        );
        b.add_i8_per_channel(
            "conv.weight",
            [2, 1, 1, 3],
            vec![1, -2, 3, 127, -128, 0],
            vec![0.5, 0.25],
        )
        .unwrap();
        b.add_f32("conv.bias", vec![2], vec![1.5, -2.5]).unwrap();
        b.add_i8_per_channel("odd.weight", [3], vec![1, 2, 3], vec![1.0, 2.0, 3.0])
            .unwrap();
        b.to_bytes()
    }

    #[test]
    fn round_trip_dequantizes_per_channel() {
        let w = WebWeights::from_bytes(&sample()).unwrap();
        assert_eq!(w.architecture(), "tiny");
        assert_eq!(w.labels(), ["a", "b"]);
        assert_eq!(w.preprocessing(), &Preprocessing::mobilenet_v2());
        assert_eq!(
            w.tensor_names().collect::<Vec<_>>(),
            ["conv.weight", "conv.bias", "odd.weight"]
        );
        let t = w.tensor("conv.weight").unwrap();
        assert_eq!(t.shape, [2, 1, 1, 3]);
        assert_eq!(t.values, [0.5, -1.0, 1.5, 31.75, -32.0, 0.0]);
        assert_eq!(w.tensor("conv.bias").unwrap().values, [1.5, -2.5]);
        assert_eq!(w.tensor("odd.weight").unwrap().values, [1.0, 4.0, 9.0]);
        assert_eq!(
            w.tensor("nope"),
            Err(WeightsError::MissingTensor("nope".into()))
        );
        let err = w.tensor_with_shape("conv.bias", &[3]).unwrap_err();
        assert_eq!(
            err.to_string(),
            "tensor conv.bias has shape [2], expected [3]"
        );
        for e in &w.header().tensors {
            assert_eq!(e.offset % 4, 0);
        }
    }

    #[test]
    fn builder_rejects_wrong_counts_and_duplicates() {
        let mut b = WeightsBuilder::new("x", Preprocessing::mobilenet_v2(), vec![]);
        assert!(matches!(
            b.add_f32("a", [2, 2], vec![1.0]),
            Err(WeightsError::ValueCount { .. })
        ));
        assert!(
            b.add_i8_per_channel("a", [2, 1], vec![1, 2], vec![1.0])
                .is_err()
        );
        b.add_f32("a", [1], vec![1.0]).unwrap();
        assert_eq!(
            b.add_f32("a", [1], vec![1.0]),
            Err(WeightsError::DuplicateTensor("a".into()))
        );
    }

    #[test]
    fn garbage_gives_errors_not_panics() {
        assert_eq!(
            WebWeights::from_bytes(b"hello").unwrap_err(),
            WeightsError::NotWeightFile
        );
        assert_eq!(
            WebWeights::from_bytes(b"").unwrap_err().to_string(),
            "not a Transfer Lab weight file"
        );
        let good = sample();
        // Every truncation and many single-byte corruptions must be rejected or parse cleanly.
        for len in 0..good.len() {
            let _ = WebWeights::from_bytes(&good[..len]);
        }
        assert!(WebWeights::from_bytes(&good[..good.len() - 1]).is_err());
        for i in 0..good.len() {
            let mut bad = good.clone();
            bad[i] ^= 0x5a;
            if let Ok(w) = WebWeights::from_bytes(&bad) {
                for name in w.tensor_names().map(String::from).collect::<Vec<_>>() {
                    let _ = w.tensor(&name);
                }
            }
        }
        let mut v2 = good.clone();
        v2[8] = 2;
        assert_eq!(
            WebWeights::from_bytes(&v2).unwrap_err(),
            WeightsError::UnsupportedVersion { found: 2 }
        );
    }

    #[test]
    fn out_of_range_tensor_is_rejected() {
        let header = concat!(
            r#"{"architecture":"x","preprocessing":{"input_size":1,"scale":1.0,"offset":0.0,"#,
            r#""resize":"squeeze"},"labels":[],"tensors":[{"name":"t","#,
            r#""shape":[1000000000000,1000000000],"dtype":"f32","offset":0}]}"#
        );
        let mut bytes = MAGIC.to_vec();
        bytes.extend(1u32.to_le_bytes());
        bytes.extend((header.len() as u32).to_le_bytes());
        bytes.extend(header.as_bytes());
        let err = WebWeights::from_bytes(&bytes).unwrap_err();
        assert!(matches!(err, WeightsError::BadTensor { .. }), "{err}");
    }

    #[test]
    fn preprocessing_without_channel_statistics_still_reads() {
        let old = r#"{"input_size":224,"scale":0.5,"offset":-1.0,"resize":"squeeze"}"#;
        let p: Preprocessing = serde_json::from_str(old).unwrap();
        assert_eq!((p.mean, p.std), (None, None));
        assert_eq!(p.normalize(4, 1), 1.0);
        let json = serde_json::to_string(&Preprocessing::mobilenet_v2()).unwrap();
        assert!(!json.contains("mean"), "{json}");
        let t = Preprocessing::torchvision();
        let back: Preprocessing =
            serde_json::from_str(&serde_json::to_string(&t).unwrap()).unwrap();
        assert_eq!(back, t);
        assert!((t.normalize(255, 2) - (1.0 - 0.406) / 0.225).abs() < 1e-6);
        assert!((t.normalize(0, 0) + 0.485 / 0.229).abs() < 1e-6);
    }

    #[test]
    fn sha256_matches_known_vector() {
        assert_eq!(
            sha256_hex(b"abc"),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }
}
