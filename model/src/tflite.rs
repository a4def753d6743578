//! Reads the parts of a TensorFlow Lite flatbuffer that weight import needs, and imports the
//! published int8 MobileNetV2 into the web weight format.
//!
//! The reader uses the `flatbuffers` crate's table API with a hand-written verifier for the
//! few fields it touches (TFLite schema field numbers), so malformed files give errors, never
//! out-of-bounds reads.

use crate::mobilenet_v2::{self, ConvSpec};
use crate::weights::{Preprocessing, WeightsBuilder, WeightsError};
use flatbuffers::{
    Follow, ForwardsUOffset, InvalidFlatbuffer, Table, Vector, Verifiable, Verifier,
    VerifierOptions,
};
use thiserror::Error;

/// Builtin operator code of `CONV_2D`.
pub const CONV_2D: i32 = 3;
/// Builtin operator code of `DEPTHWISE_CONV_2D`.
pub const DEPTHWISE_CONV_2D: i32 = 4;
/// Builtin operator code of `FULLY_CONNECTED`.
pub const FULLY_CONNECTED: i32 = 9;

/// Errors while reading a TFLite file or importing its weights.
#[derive(Debug, Error, Clone, PartialEq)]
pub enum TfliteError {
    /// The bytes lack the `TFL3` file identifier.
    #[error("not a TensorFlow Lite model file")]
    NotTflite,
    /// The flatbuffer structure is broken.
    #[error("the TensorFlow Lite file is malformed: {0}")]
    Malformed(String),
    /// A tensor or buffer index points outside its list.
    #[error("{what} index {index} is out of range")]
    BadIndex {
        /// "tensor", "buffer" or "operator code".
        what: &'static str,
        /// The offending index.
        index: i64,
    },
    /// A tensor has an element type the import cannot use.
    #[error("tensor {tensor} has element type {found}; expected {expected}")]
    UnsupportedType {
        /// Tensor name.
        tensor: String,
        /// Its element type.
        found: String,
        /// What the import accepts.
        expected: String,
    },
    /// The graph does not have the expected layers.
    #[error(
        "the model has {convolutions} convolutions and {dense} fully connected layers; \
         MobileNetV2 has {expected} convolutions and a classifier (one fully connected layer or \
         a final 1x1 convolution)"
    )]
    LayerCount {
        /// `CONV_2D` and `DEPTHWISE_CONV_2D` operators in the file.
        convolutions: usize,
        /// `FULLY_CONNECTED` operators in the file.
        dense: usize,
        /// Backbone convolutions MobileNetV2 has.
        expected: usize,
    },
    /// A layer's tensor has the wrong shape or kind.
    #[error("layer {layer}: {tensor} has TFLite shape {found:?}, expected {expected}")]
    Shape {
        /// Target layer name, e.g. `blocks.3.expand`.
        layer: String,
        /// "weight" or "bias".
        tensor: &'static str,
        /// TFLite shape found.
        found: Vec<i32>,
        /// Description of the expected TFLite shape.
        expected: String,
    },
    /// Quantization parameters are missing or inconsistent.
    #[error("tensor {tensor} has unusable quantization: {reason}")]
    Quantization {
        /// Tensor name.
        tensor: String,
        /// What is wrong.
        reason: String,
    },
    /// The tensor's buffer holds another number of bytes than its shape needs.
    #[error("tensor {tensor} needs {expected} bytes of data, its buffer has {found}")]
    DataSize {
        /// Tensor name.
        tensor: String,
        /// Bytes the shape needs.
        expected: usize,
        /// Bytes in the buffer.
        found: usize,
    },
    /// Building the weight file failed.
    #[error(transparent)]
    Weights(#[from] WeightsError),
}

impl From<InvalidFlatbuffer> for TfliteError {
    fn from(e: InvalidFlatbuffer) -> Self {
        TfliteError::Malformed(e.to_string())
    }
}

/// Vtable slot of field number `n`.
const fn slot(n: u16) -> u16 {
    4 + 2 * n
}

// Marker types for the schema's tables. Each only verifies the fields this module reads.
macro_rules! table {
    ($name:ident, |$v:ident| $verify:expr) => {
        struct $name;
        impl<'a> Follow<'a> for $name {
            type Inner = Table<'a>;
            unsafe fn follow(buf: &'a [u8], loc: usize) -> Table<'a> {
                // SAFETY: forwarded from the caller, which follows a verified offset.
                unsafe { Table::new(buf, loc) }
            }
        }
        impl Verifiable for $name {
            fn run_verifier(v: &mut Verifier, pos: usize) -> Result<(), InvalidFlatbuffer> {
                let $v = v.visit_table(pos)?;
                $verify.finish();
                Ok(())
            }
        }
    };
}

type TableVec<'a, T> = ForwardsUOffset<Vector<'a, ForwardsUOffset<T>>>;
type ScalarVec<'a, T> = ForwardsUOffset<Vector<'a, T>>;

table!(ModelT, |v| v
    .visit_field::<TableVec<OperatorCodeT>>("operator_codes", slot(1), false)?
    .visit_field::<TableVec<SubGraphT>>("subgraphs", slot(2), false)?
    .visit_field::<TableVec<BufferT>>("buffers", slot(4), false)?);
table!(OperatorCodeT, |v| v
    .visit_field::<i8>("deprecated_builtin_code", slot(0), false)?
    .visit_field::<i32>("builtin_code", slot(3), false)?);
table!(SubGraphT, |v| v
    .visit_field::<TableVec<TensorT>>("tensors", slot(0), false)?
    .visit_field::<TableVec<OperatorT>>(
        "operators",
        slot(3),
        false
    )?);
table!(TensorT, |v| v
    .visit_field::<ScalarVec<i32>>("shape", slot(0), false)?
    .visit_field::<i8>("type", slot(1), false)?
    .visit_field::<u32>("buffer", slot(2), false)?
    .visit_field::<ForwardsUOffset<&str>>("name", slot(3), false)?
    .visit_field::<ForwardsUOffset<QuantizationT>>(
        "quantization",
        slot(4),
        false
    )?);
table!(QuantizationT, |v| v
    .visit_field::<ScalarVec<f32>>("scale", slot(2), false)?
    .visit_field::<ScalarVec<i64>>("zero_point", slot(3), false)?
    .visit_field::<i32>("quantized_dimension", slot(6), false)?);
table!(OperatorT, |v| v
    .visit_field::<u32>("opcode_index", slot(0), false)?
    .visit_field::<ScalarVec<i32>>("inputs", slot(1), false)?
    .visit_field::<ScalarVec<i32>>("outputs", slot(2), false)?);
table!(BufferT, |v| v
    .visit_field::<ScalarVec<u8>>("data", slot(0), false)?
    .visit_field::<u64>("offset", slot(1), false)?
    .visit_field::<u64>("size", slot(2), false)?);

/// Reads field `n` of a table.
///
/// Only call with a table reached from [`flatbuffers::root`] of [`ModelT`] and with the field
/// type its marker's verifier checked: then every offset involved has been verified.
fn field<'a, T: Follow<'a> + 'a>(table: &Table<'a>, n: u16) -> Option<T::Inner> {
    // SAFETY: see the function's contract; all call sites below follow it.
    unsafe { table.get::<T>(slot(n), None) }
}

fn table_list<'a, T: Follow<'a, Inner = Table<'a>> + 'a>(
    table: &Table<'a>,
    n: u16,
) -> Vec<Table<'a>> {
    field::<TableVec<'a, T>>(table, n)
        .map(|v| v.iter().collect())
        .unwrap_or_default()
}

fn scalar_list<'a, T: Follow<'a> + 'a>(table: &Table<'a>, n: u16) -> Vec<T::Inner> {
    field::<ScalarVec<'a, T>>(table, n)
        .map(|v| v.iter().collect())
        .unwrap_or_default()
}

/// TFLite tensor element types that the import distinguishes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TensorType {
    /// `FLOAT32` (0).
    Float32,
    /// `INT32` (2).
    Int32,
    /// `UINT8` (3).
    Uint8,
    /// `INT8` (9).
    Int8,
    /// Any other type code.
    Other(i8),
}

impl TensorType {
    fn from_code(code: i8) -> Self {
        match code {
            0 => Self::Float32,
            2 => Self::Int32,
            3 => Self::Uint8,
            9 => Self::Int8,
            other => Self::Other(other),
        }
    }

    /// Bytes per element, when known.
    fn size(self) -> Option<usize> {
        match self {
            Self::Float32 | Self::Int32 => Some(4),
            Self::Uint8 | Self::Int8 => Some(1),
            Self::Other(_) => None,
        }
    }

    fn describe(self) -> String {
        match self {
            Self::Float32 => "float32".into(),
            Self::Int32 => "int32".into(),
            Self::Uint8 => "uint8".into(),
            Self::Int8 => "int8".into(),
            Self::Other(code) => format!("type code {code}"),
        }
    }
}

/// Quantization parameters of a tensor: `real = scale * (q - zero_point)`.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Quantization {
    /// One scale per channel along `quantized_dimension`, or a single per-tensor scale.
    pub scale: Vec<f32>,
    /// Zero points, same count as `scale` (may be empty, meaning 0).
    pub zero_point: Vec<i64>,
    /// Axis the per-channel scales run along.
    pub quantized_dimension: i32,
}

/// A tensor of subgraph 0.
#[derive(Debug, Clone, PartialEq)]
pub struct TfTensor {
    /// Name in the graph.
    pub name: String,
    /// Shape in TFLite's (NHWC-style) layout.
    pub shape: Vec<i32>,
    /// Element type.
    pub dtype: TensorType,
    /// Index into the model's buffers.
    pub buffer: u32,
    /// Quantization, when present.
    pub quantization: Option<Quantization>,
}

/// An operator of subgraph 0.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TfOperator {
    /// Builtin operator code (see [`CONV_2D`] and friends).
    pub builtin_code: i32,
    /// Input tensor indices (-1 = absent optional input).
    pub inputs: Vec<i32>,
    /// Output tensor indices.
    pub outputs: Vec<i32>,
}

/// The parsed parts of a TFLite model; buffers borrow the file's bytes.
#[derive(Debug, Clone)]
pub struct TfliteModel<'a> {
    /// Subgraph 0's tensors.
    pub tensors: Vec<TfTensor>,
    /// Subgraph 0's operators in execution order.
    pub operators: Vec<TfOperator>,
    /// Raw buffer contents (empty for tensors without constant data).
    pub buffers: Vec<&'a [u8]>,
}

impl<'a> TfliteModel<'a> {
    /// Parses a `.tflite` flatbuffer.
    pub fn parse(bytes: &'a [u8]) -> Result<Self, TfliteError> {
        // The file identifier sits after the root offset.
        if bytes.get(4..8) != Some(b"TFL3".as_slice()) {
            return Err(TfliteError::NotTflite);
        }
        let opts = VerifierOptions {
            max_apparent_size: 1 << 31,
            ..Default::default()
        };
        let model = flatbuffers::root_with_opts::<ModelT>(&opts, bytes)?;
        let codes: Vec<i32> = table_list::<OperatorCodeT>(&model, 1)
            .iter()
            .map(|code| {
                let deprecated = field::<i8>(code, 0).unwrap_or(0) as i32;
                let builtin = field::<i32>(code, 3).unwrap_or(0);
                // Old files only set the deprecated byte; new files set both for codes < 127.
                deprecated.max(builtin)
            })
            .collect();
        let buffers = table_list::<BufferT>(&model, 4)
            .iter()
            .map(|buffer| Self::buffer_bytes(bytes, buffer))
            .collect::<Result<Vec<_>, _>>()?;
        let subgraph = table_list::<SubGraphT>(&model, 2)
            .into_iter()
            .next()
            .ok_or_else(|| TfliteError::Malformed("the model has no subgraph".into()))?;
        let tensors = table_list::<TensorT>(&subgraph, 0)
            .iter()
            .map(|t| TfTensor {
                name: field::<ForwardsUOffset<&str>>(t, 3)
                    .unwrap_or("")
                    .to_string(),
                shape: scalar_list::<i32>(t, 0),
                dtype: TensorType::from_code(field::<i8>(t, 1).unwrap_or(0)),
                buffer: field::<u32>(t, 2).unwrap_or(0),
                quantization: field::<ForwardsUOffset<QuantizationT>>(t, 4).map(|q| Quantization {
                    scale: scalar_list::<f32>(&q, 2),
                    zero_point: scalar_list::<i64>(&q, 3),
                    quantized_dimension: field::<i32>(&q, 6).unwrap_or(0),
                }),
            })
            .collect();
        let operators = table_list::<OperatorT>(&subgraph, 3)
            .iter()
            .map(|op| {
                let index = field::<u32>(op, 0).unwrap_or(0);
                let builtin_code = *codes.get(index as usize).ok_or(TfliteError::BadIndex {
                    what: "operator code",
                    index: index.into(),
                })?;
                Ok(TfOperator {
                    builtin_code,
                    inputs: scalar_list::<i32>(op, 1),
                    outputs: scalar_list::<i32>(op, 2),
                })
            })
            .collect::<Result<Vec<_>, TfliteError>>()?;
        Ok(Self {
            tensors,
            operators,
            buffers,
        })
    }

    /// A buffer's bytes: inline `data`, or `offset`/`size` into the file (models over 2 GB).
    fn buffer_bytes(bytes: &'a [u8], buffer: &Table<'a>) -> Result<&'a [u8], TfliteError> {
        if let Some(data) = field::<ScalarVec<u8>>(buffer, 0) {
            return Ok(data.bytes());
        }
        let offset = field::<u64>(buffer, 1).unwrap_or(0);
        let size = field::<u64>(buffer, 2).unwrap_or(0);
        // Offset 0 or 1 marks "no external data" in the schema.
        if offset <= 1 {
            return Ok(&[]);
        }
        usize::try_from(offset)
            .ok()
            .zip(usize::try_from(size).ok())
            .and_then(|(start, len)| bytes.get(start..start.checked_add(len)?))
            .ok_or_else(|| {
                TfliteError::Malformed(format!("buffer data {offset}+{size} is outside the file"))
            })
    }

    /// The tensor at graph index `index`.
    pub fn tensor(&self, index: i32) -> Result<&TfTensor, TfliteError> {
        usize::try_from(index)
            .ok()
            .and_then(|i| self.tensors.get(i))
            .ok_or(TfliteError::BadIndex {
                what: "tensor",
                index: index.into(),
            })
    }

    /// A tensor's constant data, checked against its shape and element type.
    pub fn tensor_data(&self, tensor: &TfTensor) -> Result<&'a [u8], TfliteError> {
        let data = *self
            .buffers
            .get(tensor.buffer as usize)
            .ok_or(TfliteError::BadIndex {
                what: "buffer",
                index: tensor.buffer.into(),
            })?;
        let count = element_count(&tensor.shape).ok_or_else(|| {
            TfliteError::Malformed(format!(
                "tensor {} has invalid shape {:?}",
                tensor.name, tensor.shape
            ))
        })?;
        let size = tensor
            .dtype
            .size()
            .ok_or_else(|| TfliteError::UnsupportedType {
                tensor: tensor.name.clone(),
                found: tensor.dtype.describe(),
                expected: "a numeric type".into(),
            })?;
        let expected = count.saturating_mul(size);
        if data.len() != expected {
            return Err(TfliteError::DataSize {
                tensor: tensor.name.clone(),
                expected,
                found: data.len(),
            });
        }
        Ok(data)
    }
}

fn element_count(shape: &[i32]) -> Option<usize> {
    shape
        .iter()
        .try_fold(1usize, |acc, &d| acc.checked_mul(usize::try_from(d).ok()?))
}

fn le_i32s(bytes: &[u8]) -> impl Iterator<Item = i32> + '_ {
    bytes
        .chunks_exact(4)
        .map(|c| i32::from_le_bytes([c[0], c[1], c[2], c[3]]))
}

fn le_f32s(bytes: &[u8]) -> impl Iterator<Item = f32> + '_ {
    bytes
        .chunks_exact(4)
        .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
}

/// Which TFLite weight layout a layer uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Layout {
    /// `CONV_2D`: `[O, kh, kw, I]`, channel axis 0.
    Ohwi,
    /// `DEPTHWISE_CONV_2D`: `[1, kh, kw, C]`, channel axis 3.
    Depthwise,
    /// `FULLY_CONNECTED`: `[O, I]`, channel axis 0.
    Dense,
}

impl Layout {
    fn channel_axis(self) -> i32 {
        if self == Layout::Depthwise { 3 } else { 0 }
    }
}

/// Per-output-channel scales and zero points of a quantized weight, replicated when the tensor
/// is quantized per tensor.
fn channel_quantization(
    tensor: &TfTensor,
    channels: usize,
    axis: i32,
) -> Result<(Vec<f32>, Vec<i64>), TfliteError> {
    let bad = |reason: String| TfliteError::Quantization {
        tensor: tensor.name.clone(),
        reason,
    };
    let q = tensor
        .quantization
        .as_ref()
        .ok_or_else(|| bad("no quantization parameters".into()))?;
    let mut scales = q.scale.clone();
    let mut zeros = if q.zero_point.is_empty() {
        vec![0; scales.len()]
    } else {
        q.zero_point.clone()
    };
    if zeros.len() != scales.len() {
        return Err(bad(format!(
            "{} scales but {} zero points",
            scales.len(),
            zeros.len()
        )));
    }
    if scales.len() == 1 {
        scales = vec![scales[0]; channels];
        zeros = vec![zeros[0]; channels];
    } else if scales.len() != channels {
        return Err(bad(format!(
            "{} scales for {channels} output channels",
            scales.len()
        )));
    } else if q.quantized_dimension != axis {
        return Err(bad(format!(
            "quantized along axis {}, expected axis {axis}",
            q.quantized_dimension
        )));
    }
    if let Some(s) = scales.iter().find(|s| !s.is_finite()) {
        return Err(bad(format!("scale {s} is not finite")));
    }
    Ok((scales, zeros))
}

/// Maps a TFLite weight to burn's layout (`[out, in/groups, k, k]`, or `[out, in]` for dense):
/// returns the source index for each destination index, in destination order.
fn burn_order(layout: Layout, shape: &[usize]) -> Vec<usize> {
    match (layout, shape) {
        (Layout::Ohwi, &[o, kh, kw, i]) => {
            let mut order = Vec::with_capacity(o * i * kh * kw);
            for oc in 0..o {
                for ic in 0..i {
                    for y in 0..kh {
                        for x in 0..kw {
                            order.push(((oc * kh + y) * kw + x) * i + ic);
                        }
                    }
                }
            }
            order
        }
        (Layout::Depthwise, &[1, kh, kw, c]) => {
            let mut order = Vec::with_capacity(c * kh * kw);
            for ch in 0..c {
                for y in 0..kh {
                    for x in 0..kw {
                        order.push((y * kw + x) * c + ch);
                    }
                }
            }
            order
        }
        _ => (0..shape.iter().product()).collect(),
    }
}

/// Adds one weight tensor in burn's layout: int8 with per-channel scales when its zero points
/// are all 0, dequantized `f32` otherwise.
fn add_weight(
    model: &TfliteModel<'_>,
    builder: &mut WeightsBuilder,
    name: &str,
    tensor: &TfTensor,
    layout: Layout,
    burn_shape: &[usize],
) -> Result<(), TfliteError> {
    let tf_shape: Vec<usize> = tensor.shape.iter().map(|&d| d.max(0) as usize).collect();
    let order = burn_order(layout, &tf_shape);
    let channels = burn_shape[0];
    let per_channel_src = |src: usize| match layout {
        Layout::Depthwise => src % channels,
        _ => src / (order.len() / channels.max(1)).max(1),
    };
    let data = model.tensor_data(tensor)?;
    match tensor.dtype {
        TensorType::Int8 => {
            let (scales, zeros) = channel_quantization(tensor, channels, layout.channel_axis())?;
            if zeros.iter().all(|&z| z == 0) {
                let values = order.iter().map(|&src| data[src] as i8).collect();
                builder.add_i8_per_channel(name, burn_shape, values, scales)?;
            } else {
                let values = order
                    .iter()
                    .map(|&src| {
                        let c = per_channel_src(src);
                        ((data[src] as i8 as i64 - zeros[c]) as f32) * scales[c]
                    })
                    .collect();
                builder.add_f32(name, burn_shape, values)?;
            }
        }
        TensorType::Float32 => {
            let floats: Vec<f32> = le_f32s(data).collect();
            builder.add_f32(
                name,
                burn_shape,
                order.iter().map(|&src| floats[src]).collect(),
            )?;
        }
        other => {
            return Err(TfliteError::UnsupportedType {
                tensor: tensor.name.clone(),
                found: other.describe(),
                expected: "int8 (TF2 post-training quantization) or float32 weights".into(),
            });
        }
    }
    Ok(())
}

/// Adds a bias: int32 with its own per-channel scales (`f32 = int32 * scale`) or float32.
fn add_bias(
    model: &TfliteModel<'_>,
    builder: &mut WeightsBuilder,
    name: &str,
    tensor: &TfTensor,
    channels: usize,
) -> Result<(), TfliteError> {
    let data = model.tensor_data(tensor)?;
    let values = match tensor.dtype {
        TensorType::Int32 => {
            let (scales, zeros) = channel_quantization(tensor, channels, 0)?;
            le_i32s(data)
                .enumerate()
                .map(|(c, q)| ((q as i64 - zeros[c]) as f32) * scales[c])
                .collect()
        }
        TensorType::Float32 => le_f32s(data).collect(),
        other => {
            return Err(TfliteError::UnsupportedType {
                tensor: tensor.name.clone(),
                found: other.describe(),
                expected: "int32 or float32 biases".into(),
            });
        }
    };
    builder.add_f32(name, [channels], values)?;
    Ok(())
}

/// The weight and bias tensors of a convolution or dense operator.
fn weight_and_bias<'m>(
    model: &'m TfliteModel<'_>,
    op: &TfOperator,
    layer: &str,
) -> Result<(&'m TfTensor, &'m TfTensor), TfliteError> {
    match op.inputs.as_slice() {
        [_, weight, bias, ..] if *bias >= 0 => Ok((model.tensor(*weight)?, model.tensor(*bias)?)),
        _ => Err(TfliteError::Malformed(format!(
            "layer {layer} has no weight and bias inputs"
        ))),
    }
}

fn check_shape(
    layer: &str,
    what: &'static str,
    tensor: &TfTensor,
    expected: &[usize],
) -> Result<(), TfliteError> {
    let matches = tensor.shape.len() == expected.len()
        && tensor
            .shape
            .iter()
            .zip(expected)
            .all(|(&a, &b)| usize::try_from(a) == Ok(b));
    if matches {
        Ok(())
    } else {
        Err(TfliteError::Shape {
            layer: layer.to_string(),
            tensor: what,
            found: tensor.shape.clone(),
            expected: format!("{expected:?}"),
        })
    }
}

/// The TFLite weight shape a layer of `spec` must have.
fn tflite_weight_shape(spec: &ConvSpec, depthwise: bool) -> Vec<usize> {
    if depthwise {
        vec![1, spec.kernel, spec.kernel, spec.out_channels]
    } else {
        vec![
            spec.out_channels,
            spec.kernel,
            spec.kernel,
            spec.in_channels / spec.groups,
        ]
    }
}

/// Imports the TF2 int8 MobileNetV2 (`tf2_mobilenet_v2_1.0_224_ptq.tflite`) into a weight file
/// builder: the 52 convolutions of [`mobilenet_v2::conv_specs`] as `{name}.weight`
/// `[out, in/groups, k, k]` (int8 + per-channel scales) and `{name}.bias` `[out]` (f32), then
/// `classifier.weight` `[1001, 1280]` and `classifier.bias` `[1001]`.
pub fn import_mobilenet_v2(
    tflite_bytes: &[u8],
    labels: Vec<String>,
) -> Result<WeightsBuilder, TfliteError> {
    let model = TfliteModel::parse(tflite_bytes)?;
    let specs = mobilenet_v2::conv_specs();
    let convs: Vec<&TfOperator> = model
        .operators
        .iter()
        .filter(|op| op.builtin_code == CONV_2D || op.builtin_code == DEPTHWISE_CONV_2D)
        .collect();
    let dense: Vec<&TfOperator> = model
        .operators
        .iter()
        .filter(|op| op.builtin_code == FULLY_CONNECTED)
        .collect();
    // Check element types first: a uint8 (TF1) model is best explained by its type.
    for op in &convs {
        let (weight, _) = weight_and_bias(&model, op, "convolution")?;
        if !matches!(weight.dtype, TensorType::Int8 | TensorType::Float32) {
            return Err(TfliteError::UnsupportedType {
                tensor: weight.name.clone(),
                found: weight.dtype.describe(),
                expected: "int8 (TF2 post-training quantization) or float32 weights".into(),
            });
        }
    }
    // The classifier is a FULLY_CONNECTED op in some exports and a 1x1 CONV_2D after the
    // global pool in others (the published TF2 file); both store `[1001, (1, 1,) 1280]`.
    let (backbone, classifier) = match (convs.len(), dense.as_slice()) {
        (n, [fc]) if n == specs.len() => (&convs[..], *fc),
        (n, []) if n == specs.len() + 1 && convs[n - 1].builtin_code == CONV_2D => {
            (&convs[..n - 1], convs[n - 1])
        }
        _ => {
            return Err(TfliteError::LayerCount {
                convolutions: convs.len(),
                dense: dense.len(),
                expected: specs.len(),
            });
        }
    };
    let mut builder = WeightsBuilder::new(
        mobilenet_v2::ARCHITECTURE,
        Preprocessing::mobilenet_v2(),
        labels,
    );
    for (spec, op) in specs.iter().zip(backbone) {
        let depthwise = op.builtin_code == DEPTHWISE_CONV_2D;
        if depthwise != (spec.groups > 1) {
            return Err(TfliteError::Shape {
                layer: spec.name.clone(),
                tensor: "weight",
                found: vec![],
                expected: format!(
                    "a {} convolution, found a {} one",
                    if spec.groups > 1 { "depthwise" } else { "full" },
                    if depthwise { "depthwise" } else { "full" }
                ),
            });
        }
        let (weight, bias) = weight_and_bias(&model, op, &spec.name)?;
        check_shape(
            &spec.name,
            "weight",
            weight,
            &tflite_weight_shape(spec, depthwise),
        )?;
        check_shape(&spec.name, "bias", bias, &[spec.out_channels])?;
        let layout = if depthwise {
            Layout::Depthwise
        } else {
            Layout::Ohwi
        };
        let name = &spec.name;
        add_weight(
            &model,
            &mut builder,
            &format!("{name}.weight"),
            weight,
            layout,
            &spec.weight_shape(),
        )?;
        add_bias(
            &model,
            &mut builder,
            &format!("{name}.bias"),
            bias,
            spec.out_channels,
        )?;
    }
    let layer = mobilenet_v2::CLASSIFIER;
    let (weight, bias) = weight_and_bias(&model, classifier, layer)?;
    let shape = [mobilenet_v2::IMAGENET_CLASSES, mobilenet_v2::FEATURE_WIDTH];
    let tf_shape: &[usize] = if classifier.builtin_code == CONV_2D {
        &[shape[0], 1, 1, shape[1]]
    } else {
        &shape
    };
    check_shape(layer, "weight", weight, tf_shape)?;
    check_shape(layer, "bias", bias, &shape[..1])?;
    add_weight(
        &model,
        &mut builder,
        &format!("{layer}.weight"),
        weight,
        Layout::Dense,
        &shape,
    )?;
    add_bias(
        &model,
        &mut builder,
        &format!("{layer}.bias"),
        bias,
        shape[0],
    )?;
    log::info!(
        "imported {} MobileNetV2 layers from TFLite",
        specs.len() + 1
    );
    Ok(builder)
}

#[cfg(test)]
// Tests fail loudly on purpose.
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::weights::WebWeights;
    use flatbuffers::{FlatBufferBuilder, WIPOffset};

    /// A tensor for the test model builder.
    struct T {
        name: String,
        shape: Vec<i32>,
        dtype: i8,
        data: Vec<u8>,
        scale: Vec<f32>,
        zero: Vec<i64>,
        qdim: i32,
    }

    fn t(name: &str, shape: &[i32], dtype: i8, data: Vec<u8>, scale: Vec<f32>, qdim: i32) -> T {
        T {
            name: name.into(),
            shape: shape.to_vec(),
            dtype,
            data,
            zero: vec![0; scale.len()],
            scale,
            qdim,
        }
    }

    /// Builds a TFLite flatbuffer with one subgraph; `ops` are (builtin code, inputs).
    fn build(tensors: &[T], ops: &[(i32, Vec<i32>)]) -> Vec<u8> {
        let mut fbb = FlatBufferBuilder::new();
        let mut codes_seen: Vec<i32> = Vec::new();
        for (code, _) in ops {
            if !codes_seen.contains(code) {
                codes_seen.push(*code);
            }
        }
        let codes: Vec<WIPOffset<_>> = codes_seen
            .iter()
            .map(|&code| {
                let start = fbb.start_table();
                fbb.push_slot::<i8>(slot(0), code.min(127) as i8, 0);
                fbb.push_slot::<i32>(slot(3), code, 0);
                fbb.end_table(start)
            })
            .collect();
        // Buffer 0 is the conventional empty buffer.
        let mut buffers = vec![{
            let start = fbb.start_table();
            fbb.end_table(start)
        }];
        for tensor in tensors {
            let data = fbb.create_vector(&tensor.data);
            let start = fbb.start_table();
            fbb.push_slot_always(slot(0), data);
            buffers.push(fbb.end_table(start));
        }
        let tensor_offsets: Vec<_> = tensors
            .iter()
            .enumerate()
            .map(|(i, tensor)| {
                let shape = fbb.create_vector(&tensor.shape);
                let name = fbb.create_string(&tensor.name);
                let scale = fbb.create_vector(&tensor.scale);
                let zero = fbb.create_vector(&tensor.zero);
                let q = fbb.start_table();
                fbb.push_slot_always(slot(2), scale);
                fbb.push_slot_always(slot(3), zero);
                fbb.push_slot::<i32>(slot(6), tensor.qdim, 0);
                let q = fbb.end_table(q);
                let start = fbb.start_table();
                fbb.push_slot_always(slot(0), shape);
                fbb.push_slot::<i8>(slot(1), tensor.dtype, 0);
                fbb.push_slot::<u32>(slot(2), i as u32 + 1, 0);
                fbb.push_slot_always(slot(3), name);
                fbb.push_slot_always(slot(4), q);
                fbb.end_table(start)
            })
            .collect();
        let op_offsets: Vec<_> = ops
            .iter()
            .map(|(code, inputs)| {
                let inputs = fbb.create_vector(inputs);
                let outputs = fbb.create_vector(&[0i32]);
                let index = codes_seen.iter().position(|c| c == code).unwrap_or(0) as u32;
                let start = fbb.start_table();
                fbb.push_slot::<u32>(slot(0), index, 0);
                fbb.push_slot_always(slot(1), inputs);
                fbb.push_slot_always(slot(2), outputs);
                fbb.end_table(start)
            })
            .collect();
        let tensors_vec = fbb.create_vector(&tensor_offsets);
        let ops_vec = fbb.create_vector(&op_offsets);
        let subgraph = fbb.start_table();
        fbb.push_slot_always(slot(0), tensors_vec);
        fbb.push_slot_always(slot(3), ops_vec);
        let subgraph = fbb.end_table(subgraph);
        let codes_vec = fbb.create_vector(&codes);
        let subgraphs = fbb.create_vector(&[subgraph]);
        let buffers_vec = fbb.create_vector(&buffers);
        let model = fbb.start_table();
        fbb.push_slot::<u32>(slot(0), 3, 0);
        fbb.push_slot_always(slot(1), codes_vec);
        fbb.push_slot_always(slot(2), subgraphs);
        fbb.push_slot_always(slot(4), buffers_vec);
        let model = fbb.end_table(model);
        fbb.finish(model, Some("TFL3"));
        fbb.finished_data().to_vec()
    }

    fn i8_bytes(values: impl IntoIterator<Item = i8>) -> Vec<u8> {
        values.into_iter().map(|v| v as u8).collect()
    }

    fn i32_bytes(values: impl IntoIterator<Item = i32>) -> Vec<u8> {
        values.into_iter().flat_map(i32::to_le_bytes).collect()
    }

    #[test]
    fn parses_tensors_operators_and_quantization() {
        let bytes = build(
            &[
                t(
                    "w",
                    &[2, 1, 1, 3],
                    9,
                    i8_bytes([1, 2, 3, 4, 5, 6]),
                    vec![0.5, 0.25],
                    0,
                ),
                t("b", &[2], 2, i32_bytes([10, -20]), vec![0.1, 0.2], 0),
            ],
            &[(CONV_2D, vec![-1, 0, 1]), (200, vec![0])],
        );
        let model = TfliteModel::parse(&bytes).unwrap();
        assert_eq!(model.tensors.len(), 2);
        assert_eq!(model.tensors[0].name, "w");
        assert_eq!(model.tensors[0].shape, [2, 1, 1, 3]);
        assert_eq!(model.tensors[0].dtype, TensorType::Int8);
        assert_eq!(model.tensors[1].dtype, TensorType::Int32);
        let q = model.tensors[0].quantization.as_ref().unwrap();
        assert_eq!(q.scale, [0.5, 0.25]);
        assert_eq!(q.zero_point, [0, 0]);
        assert_eq!(
            model.operators[0],
            TfOperator {
                builtin_code: CONV_2D,
                inputs: vec![-1, 0, 1],
                outputs: vec![0]
            }
        );
        assert_eq!(model.operators[1].builtin_code, 200);
        assert_eq!(
            model.tensor_data(&model.tensors[0]).unwrap(),
            i8_bytes([1, 2, 3, 4, 5, 6])
        );
        assert!(model.tensor(5).is_err() && model.tensor(-1).is_err());
    }

    #[test]
    fn transposes_conv_and_depthwise_weights() {
        // OHWI [2, 2, 2, 3] -> OIHW [2, 3, 2, 2].
        let conv: Vec<i8> = (0..24).map(|v| v as i8 - 12).collect();
        // Depthwise [1, 2, 2, 3] -> [3, 1, 2, 2].
        let dw: Vec<i8> = (0..12).map(|v| v as i8 * 3 - 20).collect();
        let bytes = build(
            &[
                t(
                    "conv",
                    &[2, 2, 2, 3],
                    9,
                    i8_bytes(conv.clone()),
                    vec![0.5, 2.0],
                    0,
                ),
                t(
                    "dw",
                    &[1, 2, 2, 3],
                    9,
                    i8_bytes(dw.clone()),
                    vec![1.0, 0.1, 0.01],
                    3,
                ),
            ],
            &[],
        );
        let model = TfliteModel::parse(&bytes).unwrap();
        let mut builder = WeightsBuilder::new("t", Preprocessing::mobilenet_v2(), vec![]);
        add_weight(
            &model,
            &mut builder,
            "conv",
            &model.tensors[0],
            Layout::Ohwi,
            &[2, 3, 2, 2],
        )
        .unwrap();
        add_weight(
            &model,
            &mut builder,
            "dw",
            &model.tensors[1],
            Layout::Depthwise,
            &[3, 1, 2, 2],
        )
        .unwrap();
        let weights = WebWeights::from_bytes(&builder.to_bytes()).unwrap();
        let c = weights.tensor("conv").unwrap();
        for (o, i, y, x) in itertools4(2, 3, 2, 2) {
            let src = conv[((o * 2 + y) * 2 + x) * 3 + i] as f32 * [0.5, 2.0][o];
            assert_eq!(c.values[((o * 3 + i) * 2 + y) * 2 + x], src);
        }
        let d = weights.tensor("dw").unwrap();
        for (ch, _, y, x) in itertools4(3, 1, 2, 2) {
            let src = dw[(y * 2 + x) * 3 + ch] as f32 * [1.0f32, 0.1, 0.01][ch];
            assert_eq!(d.values[(ch * 2 + y) * 2 + x], src);
        }
    }

    fn itertools4(a: usize, b: usize, c: usize, d: usize) -> Vec<(usize, usize, usize, usize)> {
        let mut out = vec![];
        for i in 0..a {
            for j in 0..b {
                for k in 0..c {
                    for l in 0..d {
                        out.push((i, j, k, l));
                    }
                }
            }
        }
        out
    }

    #[test]
    fn nonzero_zero_points_and_per_tensor_scales_dequantize() {
        let mut w = t("w", &[2, 1, 1, 1], 9, i8_bytes([5, -5]), vec![0.5], 0);
        w.zero = vec![1];
        let bytes = build(&[w], &[]);
        let model = TfliteModel::parse(&bytes).unwrap();
        let mut builder = WeightsBuilder::new("t", Preprocessing::mobilenet_v2(), vec![]);
        add_weight(
            &model,
            &mut builder,
            "w",
            &model.tensors[0],
            Layout::Ohwi,
            &[2, 1, 1, 1],
        )
        .unwrap();
        let weights = WebWeights::from_bytes(&builder.to_bytes()).unwrap();
        assert_eq!(weights.tensor("w").unwrap().values, [2.0, -3.0]);
    }

    /// A synthetic full-size MobileNetV2 graph with deterministic int8 values.
    /// The classifier is a 1x1 convolution when `conv_classifier`, else a dense layer.
    fn synthetic_mobilenet(conv_classifier: bool) -> Vec<u8> {
        let mut tensors = vec![];
        let mut ops = vec![];
        for spec in mobilenet_v2::conv_specs() {
            let depthwise = spec.groups > 1;
            let shape: Vec<i32> = tflite_weight_shape(&spec, depthwise)
                .iter()
                .map(|&d| d as i32)
                .collect();
            let count = element_count(&shape).unwrap();
            let data = i8_bytes((0..count).map(|v| ((v * 7) % 255) as i8));
            let scales: Vec<f32> = (0..spec.out_channels)
                .map(|c| 0.001 * (c + 1) as f32)
                .collect();
            let n = tensors.len() as i32;
            tensors.push(t(
                &format!("{}_w", spec.name),
                &shape,
                9,
                data,
                scales.clone(),
                if depthwise { 3 } else { 0 },
            ));
            tensors.push(t(
                &format!("{}_b", spec.name),
                &[spec.out_channels as i32],
                2,
                i32_bytes((0..spec.out_channels as i32).map(|v| v - 3)),
                scales,
                0,
            ));
            ops.push((
                if depthwise {
                    DEPTHWISE_CONV_2D
                } else {
                    CONV_2D
                },
                vec![-1, n, n + 1],
            ));
        }
        let n = tensors.len() as i32;
        let fc_shape: &[i32] = if conv_classifier {
            &[1001, 1, 1, 1280]
        } else {
            &[1001, 1280]
        };
        tensors.push(t("fc_w", fc_shape, 9, vec![1; 1001 * 1280], vec![0.01], 0));
        tensors.push(t("fc_b", &[1001], 2, i32_bytes(0..1001), vec![0.5], 0));
        let code = if conv_classifier {
            CONV_2D
        } else {
            FULLY_CONNECTED
        };
        ops.push((code, vec![-1, n, n + 1]));
        build(&tensors, &ops)
    }

    #[test]
    fn imports_a_synthetic_mobilenet() {
        for conv_classifier in [false, true] {
            check_synthetic_import(conv_classifier);
        }
    }

    fn check_synthetic_import(conv_classifier: bool) {
        let bytes = synthetic_mobilenet(conv_classifier);
        let weights = WebWeights::from_bytes(
            &import_mobilenet_v2(&bytes, vec!["bg".into()])
                .unwrap()
                .to_bytes(),
        )
        .unwrap();
        assert_eq!(weights.tensor_names().count(), 2 * 53);
        assert_eq!(weights.labels(), ["bg"]);
        let stem = weights
            .tensor_with_shape("stem.weight", &[32, 3, 3, 3])
            .unwrap();
        // Burn index [o=1, i=2, y=0, x=1] comes from TFLite [1, 0, 1, 2] = 1*27 + 1*3 + 2 = 32.
        assert_eq!(stem.values[27 + 2 * 9 + 1], (224u8 as i8) as f32 * 0.002);
        let fc = weights
            .tensor_with_shape("classifier.weight", &[1001, 1280])
            .unwrap();
        assert!(fc.values.iter().all(|&v| v == 0.01));
        assert_eq!(weights.tensor("classifier.bias").unwrap().values[4], 2.0);
        assert_eq!(
            weights.tensor("blocks.0.depthwise.bias").unwrap().values[0],
            -3.0 * 0.001
        );
    }

    #[test]
    fn wrong_files_give_clear_errors() {
        assert_eq!(
            import_mobilenet_v2(b"random bytes, not a model", vec![]).unwrap_err(),
            TfliteError::NotTflite
        );
        let mut garbage: Vec<u8> = (0..4096u32)
            .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
            .collect();
        garbage[4..8].copy_from_slice(b"TFL3");
        assert!(matches!(
            import_mobilenet_v2(&garbage, vec![]),
            Err(TfliteError::Malformed(_))
        ));
        // A truncated or bit-flipped real-layout file must error, never panic.
        let small = build(
            &[
                t("w", &[2, 1, 1, 1], 9, i8_bytes([1, 2]), vec![0.5, 0.25], 0),
                t("b", &[2], 2, i32_bytes([1, 2]), vec![0.1, 0.1], 0),
            ],
            &[(CONV_2D, vec![-1, 0, 1])],
        );
        for len in 0..small.len() {
            let _ = import_mobilenet_v2(&small[..len], vec![]);
        }
        for i in 0..small.len() {
            let mut bad = small.clone();
            bad[i] ^= 0xa5;
            let _ = import_mobilenet_v2(&bad, vec![]);
        }
        let err = import_mobilenet_v2(&small, vec![]).unwrap_err();
        assert_eq!(
            err.to_string(),
            "the model has 1 convolutions and 0 fully connected layers; MobileNetV2 has 52 \
             convolutions and a classifier (one fully connected layer or a final 1x1 convolution)"
        );
        // A shape that does not fit its layer names the layer.
        let specs = mobilenet_v2::conv_specs();
        let tensors = vec![
            t("stem_w", &[32, 1, 1, 3], 9, vec![0; 96], vec![1.0], 0),
            t("stem_b", &[32], 2, vec![0; 128], vec![1.0], 0),
        ];
        let mut ops = vec![(CONV_2D, vec![-1, 0, 1])];
        for _ in 1..specs.len() {
            ops.push((CONV_2D, vec![-1, 0, 1]));
        }
        ops.push((FULLY_CONNECTED, vec![-1, 0, 1]));
        let err = import_mobilenet_v2(&build(&tensors, &ops), vec![]).unwrap_err();
        assert_eq!(
            err.to_string(),
            "layer stem: weight has TFLite shape [32, 1, 1, 3], expected [32, 3, 3, 3]"
        );
    }

    const REAL: &str = "../../shared/assets/models/tf2_mobilenet_v2_1.0_224_ptq.tflite";
    const TF1: &str = "../../shared/assets/models/mobilenet_v2_1.0_224_quant.tflite";

    fn mirror(path: &str) -> Option<Vec<u8>> {
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join(path);
        match std::fs::read(&path) {
            Ok(bytes) => Some(bytes),
            Err(_) => {
                println!("skipped: {} is not available", path.display());
                None
            }
        }
    }

    #[test]
    fn imports_the_published_model() {
        let Some(bytes) = mirror(REAL) else { return };
        let model = TfliteModel::parse(&bytes).unwrap();
        let builder = import_mobilenet_v2(&bytes, vec!["background".into()]).unwrap();
        let file = builder.to_bytes();
        assert!(
            (3_000_000..4_500_000).contains(&file.len()),
            "{} bytes",
            file.len()
        );
        let weights = WebWeights::from_bytes(&file).unwrap();
        assert_eq!(weights.tensor_names().count(), 2 * (52 + 1));
        for spec in mobilenet_v2::conv_specs() {
            weights
                .tensor_with_shape(&format!("{}.weight", spec.name), &spec.weight_shape())
                .unwrap();
            weights
                .tensor_with_shape(&format!("{}.bias", spec.name), &[spec.out_channels])
                .unwrap();
        }
        weights
            .tensor_with_shape("classifier.weight", &[1001, 1280])
            .unwrap();
        // The first stem weight is TFLite element [0, 0, 0, 0] times channel 0's scale.
        let first_conv = model
            .operators
            .iter()
            .find(|op| op.builtin_code == CONV_2D)
            .unwrap();
        let tf = model.tensor(first_conv.inputs[1]).unwrap();
        let raw = model.tensor_data(tf).unwrap();
        let scale = tf.quantization.as_ref().unwrap().scale[0];
        let stem = weights.tensor("stem.weight").unwrap();
        assert_eq!(stem.values[0], raw[0] as i8 as f32 * scale);
        // Burn [o=0, i=1, y=2, x=0] is TFLite [0, 2, 0, 1].
        assert_eq!(
            stem.values[9 + 6],
            raw[(2 * 3) * 3 + 1] as i8 as f32 * scale
        );
        assert!(
            weights
                .tensor("stem.bias")
                .unwrap()
                .values
                .iter()
                .all(|v| v.is_finite())
        );
    }

    #[test]
    fn rejects_the_tf1_uint8_model() {
        let Some(bytes) = mirror(TF1) else { return };
        let err = import_mobilenet_v2(&bytes, vec![]).unwrap_err();
        assert!(matches!(err, TfliteError::UnsupportedType { .. }), "{err}");
        assert!(err.to_string().contains("uint8"), "{err}");
    }
}
