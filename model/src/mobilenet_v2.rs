//! MobileNetV2 (width 1.0, 224x224 input) as published in TensorFlow Lite form: batch norm folded
//! into every convolution's bias, ReLU6 activations and TensorFlow `SAME` padding.

use burn::module::{Module, Param};
use burn::nn::conv::{Conv2d, Conv2dConfig};
use burn::nn::{Linear, LinearConfig, PaddingConfig2d};
use burn::tensor::{Device, Tensor, TensorData};

use crate::head::{TrainError, read_f32};
use crate::weights::{Preprocessing, TensorF32, WebWeights, WeightsError};

/// One convolution of the network, in execution order.
///
/// Weight tensors are stored in burn's layout `[out_channels, in_channels / groups, kernel,
/// kernel]`; biases are `[out_channels]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConvSpec {
    /// Parameter prefix, e.g. `blocks.3.depthwise`; the tensors are `{name}.weight` and
    /// `{name}.bias`.
    pub name: String,
    /// Input channels.
    pub in_channels: usize,
    /// Output channels.
    pub out_channels: usize,
    /// Square kernel size (1 or 3).
    pub kernel: usize,
    /// Stride (1 or 2).
    pub stride: usize,
    /// Channel groups: 1 for a full convolution, `in_channels` for a depthwise one.
    pub groups: usize,
}

impl ConvSpec {
    /// Shape of the weight tensor in burn's layout.
    pub fn weight_shape(&self) -> [usize; 4] {
        [
            self.out_channels,
            self.in_channels / self.groups,
            self.kernel,
            self.kernel,
        ]
    }
}

/// Width of the pooled feature vector that the classifier heads read.
pub const FEATURE_WIDTH: usize = 1280;
/// Number of ImageNet logits of the published classifier (index 0 is `background`).
pub const IMAGENET_CLASSES: usize = 1001;
/// Side of the square input photo.
pub const INPUT_SIZE: usize = 224;
/// Architecture name recorded in weight files.
pub const ARCHITECTURE: &str = "mobilenet_v2_1.0_224";
/// Parameter prefix of the ImageNet classifier: `classifier.weight` is
/// `[IMAGENET_CLASSES, FEATURE_WIDTH]` and `classifier.bias` is `[IMAGENET_CLASSES]`.
pub const CLASSIFIER: &str = "classifier";

/// Inverted-residual stages: (expansion factor, output channels, repeats, first stride).
const STAGES: [(usize, usize, usize, usize); 7] = [
    (1, 16, 1, 1),
    (6, 24, 2, 2),
    (6, 32, 3, 2),
    (6, 64, 4, 2),
    (6, 96, 3, 1),
    (6, 160, 3, 2),
    (6, 320, 1, 1),
];

/// One inverted-residual block: optional 1x1 expansion, 3x3 depthwise, 1x1 linear projection.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BlockSpec {
    /// Input channels.
    pub in_channels: usize,
    /// Channels after expansion (equal to `in_channels` when there is no expansion).
    pub hidden_channels: usize,
    /// Output channels.
    pub out_channels: usize,
    /// Stride of the depthwise convolution.
    pub stride: usize,
}

impl BlockSpec {
    /// Whether the block adds its input to its output.
    pub fn has_residual(&self) -> bool {
        self.stride == 1 && self.in_channels == self.out_channels
    }

    /// Whether the block starts with a 1x1 expansion convolution.
    pub fn has_expansion(&self) -> bool {
        self.hidden_channels != self.in_channels
    }
}

/// The 17 inverted-residual blocks in execution order.
pub fn block_specs() -> Vec<BlockSpec> {
    let mut blocks = Vec::new();
    let mut in_channels = 32;
    for (expansion, out_channels, repeats, first_stride) in STAGES {
        for repeat in 0..repeats {
            blocks.push(BlockSpec {
                in_channels,
                hidden_channels: in_channels * expansion,
                out_channels,
                stride: if repeat == 0 { first_stride } else { 1 },
            });
            in_channels = out_channels;
        }
    }
    blocks
}

/// All 52 convolutions of the backbone in execution order (the TFLite graph's order too), from
/// the stem to the final 1x1 convolution to [`FEATURE_WIDTH`] channels.
pub fn conv_specs() -> Vec<ConvSpec> {
    let conv = |name: String, in_channels, out_channels, kernel, stride, groups| ConvSpec {
        name,
        in_channels,
        out_channels,
        kernel,
        stride,
        groups,
    };
    let mut specs = vec![conv("stem".into(), 3, 32, 3, 2, 1)];
    for (index, block) in block_specs().iter().enumerate() {
        let hidden = block.hidden_channels;
        if block.has_expansion() {
            specs.push(conv(
                format!("blocks.{index}.expand"),
                block.in_channels,
                hidden,
                1,
                1,
                1,
            ));
        }
        specs.push(conv(
            format!("blocks.{index}.depthwise"),
            hidden,
            hidden,
            3,
            block.stride,
            hidden,
        ));
        specs.push(conv(
            format!("blocks.{index}.project"),
            hidden,
            block.out_channels,
            1,
            1,
            1,
        ));
    }
    specs.push(conv("head_conv".into(), 320, FEATURE_WIDTH, 1, 1, 1));
    specs
}

/// Failure to build the network from a weight file.
#[derive(Debug, thiserror::Error)]
pub enum BackboneError {
    /// The file is for another network.
    #[error("the weight file holds a {found} network, expected {expected}")]
    WrongArchitecture {
        /// Architecture named by the file.
        found: String,
        /// Architecture this loader builds.
        expected: String,
    },
    /// A tensor is missing or has the wrong shape.
    #[error(transparent)]
    Weights(#[from] WeightsError),
    /// ImageNet logits were asked for but the ImageNet classifier is not loaded.
    #[error("the ImageNet classifier is not loaded (it ships as a separate weight file)")]
    NoClassifier,
}

/// One convolution with bias, as in the published graph (batch norm already folded in).
fn conv_from_weights(
    weights: &WebWeights,
    spec: &ConvSpec,
    device: &Device,
) -> Result<Conv2d, WeightsError> {
    let weight = weights.tensor(&format!("{}.weight", spec.name))?;
    let bias = weights.tensor(&format!("{}.bias", spec.name))?;
    let weight = tensor_of_shape::<4>(&spec.name, weight, spec.weight_shape(), device)?;
    let bias = tensor_of_shape::<1>(&spec.name, bias, [spec.out_channels], device)?;
    Ok(Conv2d {
        weight: Param::from_tensor(weight),
        bias: Some(Param::from_tensor(bias)),
        stride: [spec.stride, spec.stride],
        kernel_size: [spec.kernel, spec.kernel],
        dilation: [1, 1],
        groups: spec.groups,
        // TensorFlow's SAME: for a 3x3 stride-2 convolution on an even size the extra row and
        // column of zeros go at the bottom and right, which burn's `Same` reproduces.
        padding: PaddingConfig2d::Same,
    })
}

/// A randomly initialised convolution of the given spec (for architecture-only measurements).
fn conv_random(spec: &ConvSpec, device: &Device) -> Conv2d {
    Conv2dConfig::new(
        [spec.in_channels, spec.out_channels],
        [spec.kernel, spec.kernel],
    )
    .with_stride([spec.stride, spec.stride])
    .with_groups(spec.groups)
    .with_padding(PaddingConfig2d::Same)
    .init(device)
}

/// Checks a stored tensor against the expected shape and uploads it to `device`.
pub(crate) fn tensor_of_shape<const D: usize>(
    name: &str,
    tensor: TensorF32,
    expected: [usize; D],
    device: &Device,
) -> Result<Tensor<D>, WeightsError> {
    if tensor.shape != expected {
        return Err(WeightsError::ShapeMismatch {
            name: name.to_string(),
            found: tensor.shape,
            expected: expected.to_vec(),
        });
    }
    Ok(Tensor::from_data(
        TensorData::new(tensor.values, expected),
        device,
    ))
}

/// ReLU6: `min(max(x, 0), 6)`.
fn relu6<const D: usize>(x: Tensor<D>) -> Tensor<D> {
    x.clamp(0.0, 6.0)
}

/// One inverted-residual block.
#[derive(Module, Debug)]
pub struct InvertedResidual {
    /// 1x1 expansion with ReLU6; absent in the first block.
    pub expand: Option<Conv2d>,
    /// 3x3 depthwise convolution with ReLU6.
    pub depthwise: Conv2d,
    /// 1x1 linear projection (no activation).
    pub project: Conv2d,
    /// Whether the input is added to the output.
    pub residual: bool,
}

impl InvertedResidual {
    /// Input `[batch, in_channels, h, w]`, output `[batch, out_channels, h / stride, w / stride]`.
    pub fn forward(&self, input: Tensor<4>) -> Tensor<4> {
        let mut x = input.clone();
        if let Some(expand) = &self.expand {
            x = relu6(expand.forward(x));
        }
        x = relu6(self.depthwise.forward(x));
        x = self.project.forward(x);
        if self.residual { x + input } else { x }
    }
}

/// MobileNetV2 backbone with its ImageNet classifier.
#[derive(Module, Debug)]
pub struct MobileNetV2 {
    /// 3x3 stride-2 convolution, 3 -> 32 channels.
    pub stem: Conv2d,
    /// The 17 inverted-residual blocks.
    pub blocks: Vec<InvertedResidual>,
    /// 1x1 convolution 320 -> 1280 channels.
    pub head_conv: Conv2d,
    /// ImageNet classifier 1280 -> 1001; optional, since transfer learning only needs the
    /// features and the classifier is a third of the download.
    pub classifier: Option<Linear>,
}

/// Build a block from its convolutions, taken from `convs` in execution order.
fn assemble_block(
    spec: &BlockSpec,
    convs: &mut impl Iterator<Item = Conv2d>,
) -> Option<InvertedResidual> {
    let expand = if spec.has_expansion() {
        Some(convs.next()?)
    } else {
        None
    };
    Some(InvertedResidual {
        expand,
        depthwise: convs.next()?,
        project: convs.next()?,
        residual: spec.has_residual(),
    })
}

impl MobileNetV2 {
    /// Loads the published network from a web weight file onto `device`.
    pub fn from_weights(weights: &WebWeights, device: &Device) -> Result<Self, BackboneError> {
        if weights.architecture() != ARCHITECTURE {
            return Err(BackboneError::WrongArchitecture {
                found: weights.architecture().to_string(),
                expected: ARCHITECTURE.to_string(),
            });
        }
        let convs = conv_specs()
            .iter()
            .map(|spec| conv_from_weights(weights, spec, device))
            .collect::<Result<Vec<_>, _>>()?;
        let mut network = Self::assemble(convs, None);
        if weights.entry(&format!("{CLASSIFIER}.weight")).is_some() {
            network.load_classifier(weights, device)?;
        }
        Ok(network)
    }

    /// Loads the ImageNet classifier (`classifier.weight` `[1001, 1280]`, `classifier.bias`
    /// `[1001]`) from a weight file, which may hold nothing else.
    pub fn load_classifier(
        &mut self,
        weights: &WebWeights,
        device: &Device,
    ) -> Result<(), BackboneError> {
        let classifier_weight = weights.tensor(&format!("{CLASSIFIER}.weight"))?;
        let classifier_bias = weights.tensor(&format!("{CLASSIFIER}.bias"))?;
        // Stored as [out, in] like TensorFlow; burn's Linear holds [in, out].
        let weight = tensor_of_shape::<2>(
            CLASSIFIER,
            classifier_weight,
            [IMAGENET_CLASSES, FEATURE_WIDTH],
            device,
        )?
        .transpose();
        let bias = tensor_of_shape::<1>(CLASSIFIER, classifier_bias, [IMAGENET_CLASSES], device)?;
        self.classifier = Some(Linear {
            weight: Param::from_tensor(weight),
            bias: Some(Param::from_tensor(bias)),
        });
        Ok(())
    }

    /// The same architecture with random weights, for size and speed measurements when the
    /// pretrained file is not installed.
    pub fn random(device: &Device) -> Self {
        let convs = conv_specs()
            .iter()
            .map(|spec| conv_random(spec, device))
            .collect();
        let classifier = LinearConfig::new(FEATURE_WIDTH, IMAGENET_CLASSES).init(device);
        Self::assemble(convs, Some(classifier))
    }

    fn assemble(convs: Vec<Conv2d>, classifier: Option<Linear>) -> Self {
        let mut convs = convs.into_iter();
        let stem = convs.next();
        let blocks: Option<Vec<_>> = block_specs()
            .iter()
            .map(|spec| assemble_block(spec, &mut convs))
            .collect();
        let head_conv = convs.next();
        match (stem, blocks, head_conv) {
            (Some(stem), Some(blocks), Some(head_conv)) => Self {
                stem,
                blocks,
                head_conv,
                classifier,
            },
            // `conv_specs` and `block_specs` describe the same graph; a mismatch is a bug here.
            _ => panic!("conv_specs() and block_specs() disagree"),
        }
    }

    /// The convolutions in execution order, the order of [`conv_specs`].
    pub fn convs(&self) -> Vec<&Conv2d> {
        let mut convs = vec![&self.stem];
        for block in &self.blocks {
            convs.extend(block.expand.iter());
            convs.extend([&block.depthwise, &block.project]);
        }
        convs.push(&self.head_conv);
        convs
    }

    /// Every convolution's weight and bias under the names of a backbone weight file
    /// (`{conv}.weight` `[out, in / groups, k, k]`, `{conv}.bias` `[out]`), read back
    /// asynchronously as WebGPU requires; the ImageNet classifier is left out.
    pub async fn parameters(&self) -> Result<Vec<(String, TensorF32)>, TrainError> {
        let mut parameters = Vec::new();
        for (spec, conv) in conv_specs().iter().zip(self.convs()) {
            let weight = read_f32(conv.weight.val()).await?;
            parameters.push((
                format!("{}.weight", spec.name),
                TensorF32 {
                    shape: spec.weight_shape().to_vec(),
                    values: weight,
                },
            ));
            let bias = match &conv.bias {
                Some(bias) => read_f32(bias.val()).await?,
                None => vec![0.0; spec.out_channels],
            };
            parameters.push((
                format!("{}.bias", spec.name),
                TensorF32 {
                    shape: vec![spec.out_channels],
                    values: bias,
                },
            ));
        }
        Ok(parameters)
    }

    /// Runs the stem and blocks `0..end_block`: input `[batch, 3, 224, 224]` in [-1, 1].
    pub fn forward_until(&self, input: Tensor<4>, end_block: usize) -> Tensor<4> {
        let x = relu6(self.stem.forward(input));
        self.blocks[..end_block]
            .iter()
            .fold(x, |x, block| block.forward(x))
    }

    /// Runs blocks `start_block..` and the final 1x1 convolution, then pools:
    /// input is the output of [`Self::forward_until`] with `end_block = start_block`,
    /// output `[batch, 1280]`.
    pub fn features_from(&self, activations: Tensor<4>, start_block: usize) -> Tensor<2> {
        let x = self.blocks[start_block..]
            .iter()
            .fold(activations, |x, block| block.forward(x));
        let x = relu6(self.head_conv.forward(x));
        let [batch, channels, _, _] = x.dims();
        x.mean_dim(3).mean_dim(2).reshape([batch, channels])
    }

    /// Pooled features `[batch, 1280]` of a normalised input `[batch, 3, 224, 224]`.
    pub fn features(&self, input: Tensor<4>) -> Tensor<2> {
        self.features_from(self.forward_until(input, 0), 0)
    }

    /// ImageNet logits `[batch, 1001]` (index 0 = background) of a normalised input.
    pub fn logits(&self, input: Tensor<4>) -> Result<Tensor<2>, BackboneError> {
        let classifier = self
            .classifier
            .as_ref()
            .ok_or(BackboneError::NoClassifier)?;
        Ok(classifier.forward(self.features(input)))
    }
}

/// Turns RGB photos (`[size, size, 3]` u8 each, row-major) into the network input
/// `[batch, 3, size, size]` with `x = u8 * scale + offset`, then `(x - mean) / std` per colour
/// channel when the preprocessing has channel statistics (see [`Preprocessing::normalize`]).
pub fn input_tensor(
    photos: &[&[u8]],
    size: usize,
    preprocessing: &Preprocessing,
    device: &Device,
) -> Tensor<4> {
    let per_channel = preprocessing.mean.is_some() || preprocessing.std.is_some();
    let values: Vec<f32> = photos
        .iter()
        .flat_map(|photo| {
            photo.iter().enumerate().map(move |(i, &v)| {
                if per_channel {
                    preprocessing.normalize(v, i % 3)
                } else {
                    v as f32 * preprocessing.scale + preprocessing.offset
                }
            })
        })
        .collect();
    Tensor::<4>::from_data(
        TensorData::new(values, [photos.len(), size, size, 3]),
        device,
    )
    .permute([0, 3, 1, 2])
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::tflite::import_mobilenet_v2;
    use std::path::PathBuf;

    /// The shared folder beside the checkout: the asset mirror and the reference outputs.
    fn shared(path: &str) -> Option<PathBuf> {
        let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
            .join("../../shared")
            .join(path);
        if path.exists() {
            Some(path)
        } else {
            eprintln!("skipped: {} is not present", path.display());
            None
        }
    }

    fn mirrored_weights() -> Option<WebWeights> {
        let tflite =
            std::fs::read(shared("assets/models/tf2_mobilenet_v2_1.0_224_ptq.tflite")?).unwrap();
        let labels = std::fs::read_to_string(shared("assets/models/imagenet_labels.txt")?).unwrap();
        let labels = labels.lines().map(str::to_string).collect();
        let bytes = import_mobilenet_v2(&tflite, labels).unwrap().to_bytes();
        Some(WebWeights::from_bytes(&bytes).unwrap())
    }

    fn argmax(row: &[f32]) -> usize {
        row.iter()
            .enumerate()
            .fold(0, |best, (i, &v)| if v > row[best] { i } else { best })
    }

    fn max_abs_difference(a: &[f32], b: &[f32]) -> f32 {
        a.iter()
            .zip(b)
            .map(|(x, y)| (x - y).abs())
            .fold(0.0, f32::max)
    }

    #[test]
    fn matches_the_independent_reference_on_28_photos() {
        let (Some(weights), Some(reference)) = (
            mirrored_weights(),
            shared("ref/mobilenet_v2_reference.safetensors"),
        ) else {
            return;
        };
        let reference = std::fs::read(reference).unwrap();
        let reference = safetensors::SafeTensors::deserialize(&reference).unwrap();
        let inputs = reference.tensor("input_u8_nhwc").unwrap();
        let floats = |name: &str| -> Vec<f32> {
            let data = reference.tensor(name).unwrap().data().to_vec();
            data.chunks_exact(4)
                .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
                .collect()
        };
        let (expected_logits, expected_features) = (floats("logits"), floats("features"));
        let photos = inputs.shape()[0];
        let photo_len = INPUT_SIZE * INPUT_SIZE * 3;

        let device = Device::flex();
        let network = MobileNetV2::from_weights(&weights, &device).unwrap();
        let (mut worst_logit, mut worst_feature) = (0.0f32, 0.0f32);
        for (batch_start, batch) in inputs.data().chunks(photo_len * 7).enumerate() {
            let views: Vec<&[u8]> = batch.chunks(photo_len).collect();
            let input = input_tensor(&views, INPUT_SIZE, weights.preprocessing(), &device);
            let features = network.features(input);
            let logits = network
                .classifier
                .as_ref()
                .unwrap()
                .forward(features.clone());
            let features = features.into_data().try_into_vec::<f32>().unwrap();
            let logits = logits.into_data().try_into_vec::<f32>().unwrap();
            for i in 0..views.len() {
                let photo = batch_start * 7 + i;
                let got = &logits[i * IMAGENET_CLASSES..(i + 1) * IMAGENET_CLASSES];
                let want =
                    &expected_logits[photo * IMAGENET_CLASSES..(photo + 1) * IMAGENET_CLASSES];
                assert_eq!(
                    argmax(got),
                    argmax(want),
                    "top-1 of reference photo {photo}"
                );
                worst_logit = worst_logit.max(max_abs_difference(got, want));
                let got = &features[i * FEATURE_WIDTH..(i + 1) * FEATURE_WIDTH];
                let want = &expected_features[photo * FEATURE_WIDTH..(photo + 1) * FEATURE_WIDTH];
                worst_feature = worst_feature.max(max_abs_difference(got, want));
            }
        }
        eprintln!(
            "parity on {photos} photos: max |logit difference| {worst_logit:.2e}, \
             max |feature difference| {worst_feature:.2e}"
        );
        assert!(worst_logit < 1e-2, "logits differ by up to {worst_logit}");
        assert!(
            worst_feature < 1e-3,
            "features differ by up to {worst_feature}"
        );
    }

    #[test]
    fn recognises_the_sample_photos() {
        let Some(weights) = mirrored_weights() else {
            return;
        };
        let device = Device::flex();
        let network = MobileNetV2::from_weights(&weights, &device).unwrap();
        let expected = [
            ("cat.bmp", "Egyptian cat"),
            ("parrot.jpg", "macaw"),
            ("sunflower.bmp", "daisy"),
            ("hot_dog.jpg", "hotdog"),
        ];
        for (file, label) in expected {
            let Some(path) = shared(&format!("assets/samples/{file}")) else {
                return;
            };
            let photo = crate::photo::to_input_u8(&std::fs::read(path).unwrap(), 224).unwrap();
            let input = input_tensor(&[&photo], INPUT_SIZE, weights.preprocessing(), &device);
            let logits = network
                .logits(input)
                .unwrap()
                .into_data()
                .try_into_vec::<f32>()
                .unwrap();
            let top1 = &weights.labels()[argmax(&logits)];
            assert!(
                top1.starts_with(label),
                "{file}: expected {label}, got {top1}"
            );
        }
    }

    #[test]
    fn loads_the_classifier_from_its_own_file() {
        let Some(tflite) = shared("assets/models/tf2_mobilenet_v2_1.0_224_ptq.tflite") else {
            return;
        };
        let mut backbone = import_mobilenet_v2(&std::fs::read(tflite).unwrap(), vec![]).unwrap();
        let classifier = backbone.split_off(CLASSIFIER);
        let backbone = WebWeights::from_bytes(&backbone.to_bytes()).unwrap();
        let classifier = WebWeights::from_bytes(&classifier.to_bytes()).unwrap();
        let device = Device::flex();
        let mut network = MobileNetV2::from_weights(&backbone, &device).unwrap();
        let input = Tensor::<4>::zeros([1, 3, 224, 224], &device);
        assert!(matches!(
            network.logits(input.clone()),
            Err(BackboneError::NoClassifier)
        ));
        assert_eq!(network.features(input.clone()).dims(), [1, FEATURE_WIDTH]);
        network.load_classifier(&classifier, &device).unwrap();
        assert_eq!(network.logits(input).unwrap().dims(), [1, IMAGENET_CLASSES]);
    }

    #[test]
    fn random_network_has_the_published_shapes() {
        let device = Device::flex();
        let network = MobileNetV2::random(&device);
        let expected: usize = conv_specs()
            .iter()
            .map(|s| s.weight_shape().iter().product::<usize>() + s.out_channels)
            .sum::<usize>()
            + FEATURE_WIDTH * IMAGENET_CLASSES
            + IMAGENET_CLASSES;
        assert_eq!(network.num_params(), expected);
        let logits = network
            .logits(Tensor::<4>::zeros([1, 3, 224, 224], &device))
            .unwrap();
        assert_eq!(logits.dims(), [1, IMAGENET_CLASSES]);
    }

    #[test]
    fn rejects_weights_of_the_wrong_shape() {
        let mut builder = crate::weights::WeightsBuilder::new(
            ARCHITECTURE,
            Preprocessing::mobilenet_v2(),
            Vec::new(),
        );
        builder
            .add_f32("stem.weight", vec![32, 3, 5, 5], vec![0.0; 32 * 3 * 25])
            .unwrap();
        let weights = WebWeights::from_bytes(&builder.to_bytes()).unwrap();
        let error = MobileNetV2::from_weights(&weights, &Device::flex()).unwrap_err();
        assert!(error.to_string().contains("stem"), "{error}");
    }

    #[test]
    fn layout_matches_the_published_network() {
        let specs = conv_specs();
        assert_eq!(specs.len(), 52);
        assert_eq!(block_specs().len(), 17);
        let weights: usize = specs
            .iter()
            .map(|s| s.weight_shape().iter().product::<usize>())
            .sum();
        let biases: usize = specs.iter().map(|s| s.out_channels).sum();
        // Keras counts 2,223,872 trainable parameters, including a scale and a shift for each of
        // the 17,056 batch-norm channels; folding leaves one bias per channel.
        assert_eq!(weights + biases, 2_223_872 - 17_056);
    }
}
