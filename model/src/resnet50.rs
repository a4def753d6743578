//! ResNet50's convolutional base (He et al., 2015) in torchvision's layout ("v1.5": the stride of
//! a downsampling bottleneck sits on its 3x3 convolution), without the classifier. Features are
//! the global average of the last stage's output.
//!
//! Every batch norm is folded into the convolution before it when the weights are imported
//! (`w' = w * gamma / sqrt(var + eps)`, `b' = beta - mean * gamma / sqrt(var + eps)`), so the
//! network here is convolutions with bias only. Weight files use torchvision's names without
//! the batch norms: `conv1` (the stem), `layer{1-4}.{block}.conv{1-3}` and
//! `layer{1-4}.0.downsample`, each with `.weight` `[out, in, k, k]` and `.bias` `[out]`.

use burn::module::Module;
use burn::nn::PaddingConfig2d;
use burn::nn::conv::Conv2d;
use burn::nn::pool::{MaxPool2d, MaxPool2dConfig};
use burn::tensor::activation::relu;
use burn::tensor::{Device, Tensor};

use crate::backbone::{conv_from_weights, conv_random, global_average_pool};
use crate::mobilenet_v2::{BackboneError, ConvSpec};
use crate::weights::{Preprocessing, WebWeights};

/// Architecture name recorded in weight files of the official widths.
pub const ARCHITECTURE: &str = "resnet50";
/// Side of the square input photo the published weights were trained at.
pub const INPUT_SIZE: usize = 224;
/// Width of the pooled feature vector at the official widths.
pub const FEATURE_WIDTH: usize = 2048;
/// Parameters torchvision counts for ResNet50 without its `fc` layer: convolution weights plus a
/// scale and a shift per batch-norm channel (running statistics are buffers, not parameters).
pub const TORCHVISION_PARAMETER_COUNT: usize = 23_508_032;
/// Parameters after folding: the convolution weights plus one bias per batch-norm channel
/// (26,560 channels fewer than [`TORCHVISION_PARAMETER_COUNT`]).
pub const FOLDED_PARAMETER_COUNT: usize = 23_481_472;
/// Bottleneck blocks per stage.
pub const BLOCKS: [usize; 4] = [3, 4, 6, 3];
/// Batch-norm epsilon of torchvision's ResNets.
pub const BATCH_NORM_EPSILON: f32 = 1e-5;

/// Inner (3x3) width of each stage's bottlenecks at the official widths; a bottleneck's output
/// is four times wider.
const STAGE_WIDTHS: [usize; 4] = [64, 128, 256, 512];
/// Output width of a bottleneck relative to its inner width.
const EXPANSION: usize = 4;

/// One bottleneck block: 1x1 reduce, 3x3 (carrying the stride), 1x1 expand, plus a 1x1
/// projection of the input on the first block of a stage.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BottleneckSpec {
    /// Parameter prefix, e.g. `layer2.0`.
    pub name: String,
    /// Input channels.
    pub in_channels: usize,
    /// Inner channels of the 1x1 reduce and 3x3 convolutions.
    pub mid_channels: usize,
    /// Output channels (`4 * mid_channels`).
    pub out_channels: usize,
    /// Stride of the 3x3 convolution and of the projection.
    pub stride: usize,
    /// Whether the input goes through a 1x1 projection (`downsample`) before the addition.
    pub downsample: bool,
}

/// The shape of the network. The default is the published ResNet50; a width divisor above 1
/// divides every convolution's output channels, for small, fast tests of the import.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ResNet50Config {
    /// Divides every width; must divide 64. 1 is the published network.
    pub width_divisor: usize,
}

impl Default for ResNet50Config {
    fn default() -> Self {
        Self { width_divisor: 1 }
    }
}

fn conv(
    name: String,
    in_channels: usize,
    out_channels: usize,
    kernel: usize,
    stride: usize,
) -> ConvSpec {
    ConvSpec {
        name,
        in_channels,
        out_channels,
        kernel,
        stride,
        groups: 1,
    }
}

impl ResNet50Config {
    /// A network whose widths are the official ones divided by `width_divisor`.
    pub fn with_width_divisor(width_divisor: usize) -> Self {
        Self { width_divisor }
    }

    /// The architecture name a weight file of this shape records: `resnet50`, or
    /// `resnet50_div{d}` for reduced widths.
    pub fn architecture(&self) -> String {
        match self.width_divisor {
            1 => ARCHITECTURE.to_string(),
            d => format!("{ARCHITECTURE}_div{d}"),
        }
    }

    /// The configuration that [`Self::architecture`] names, if `name` is one.
    pub fn from_architecture(name: &str) -> Option<Self> {
        let divisor = match name.strip_prefix(ARCHITECTURE)? {
            "" => 1,
            rest => rest.strip_prefix("_div")?.parse().ok()?,
        };
        (divisor > 0 && 64 % divisor == 0).then_some(Self::with_width_divisor(divisor))
    }

    fn width(&self, official: usize) -> usize {
        official / self.width_divisor.max(1)
    }

    /// Width of the pooled features: 2048 divided by the width divisor.
    pub fn feature_dim(&self) -> usize {
        self.width(FEATURE_WIDTH)
    }

    /// Output channels of the stem convolution.
    pub fn stem_channels(&self) -> usize {
        self.width(64)
    }

    /// The 16 bottlenecks in execution order.
    pub fn bottleneck_specs(&self) -> Vec<BottleneckSpec> {
        let mut specs = Vec::new();
        let mut in_channels = self.stem_channels();
        for (stage, (&blocks, &width)) in BLOCKS.iter().zip(&STAGE_WIDTHS).enumerate() {
            let mid_channels = self.width(width);
            for block in 0..blocks {
                let stride = if stage > 0 && block == 0 { 2 } else { 1 };
                let out_channels = mid_channels * EXPANSION;
                specs.push(BottleneckSpec {
                    name: format!("layer{}.{block}", stage + 1),
                    in_channels,
                    mid_channels,
                    out_channels,
                    stride,
                    downsample: stride != 1 || in_channels != out_channels,
                });
                in_channels = out_channels;
            }
        }
        specs
    }

    /// All 53 convolutions in execution order: the 7x7 stride-2 stem `conv1`, then per
    /// bottleneck `conv1` (1x1), `conv2` (3x3, the block's stride), `conv3` (1x1) and, on the
    /// first block of a stage, `downsample` (1x1, the block's stride).
    pub fn conv_specs(&self) -> Vec<ConvSpec> {
        let mut specs = vec![conv("conv1".into(), 3, self.stem_channels(), 7, 2)];
        for block in self.bottleneck_specs() {
            let name = &block.name;
            specs.push(conv(
                format!("{name}.conv1"),
                block.in_channels,
                block.mid_channels,
                1,
                1,
            ));
            specs.push(conv(
                format!("{name}.conv2"),
                block.mid_channels,
                block.mid_channels,
                3,
                block.stride,
            ));
            specs.push(conv(
                format!("{name}.conv3"),
                block.mid_channels,
                block.out_channels,
                1,
                1,
            ));
            if block.downsample {
                specs.push(conv(
                    format!("{name}.downsample"),
                    block.in_channels,
                    block.out_channels,
                    1,
                    block.stride,
                ));
            }
        }
        specs
    }

    /// Parameters after batch-norm folding: convolution weights plus one bias per channel
    /// ([`FOLDED_PARAMETER_COUNT`] at the official widths).
    pub fn parameter_count(&self) -> usize {
        self.conv_specs()
            .iter()
            .map(|s| s.weight_shape().iter().product::<usize>() + s.out_channels)
            .sum()
    }

    /// Parameters as torchvision counts them before folding: bias-free convolutions plus a
    /// batch-norm scale and shift per channel ([`TORCHVISION_PARAMETER_COUNT`] at the official
    /// widths).
    pub fn torchvision_parameter_count(&self) -> usize {
        self.conv_specs()
            .iter()
            .map(|s| s.weight_shape().iter().product::<usize>() + 2 * s.out_channels)
            .sum()
    }

    /// The network with random weights (burn's default initialisation), for size and speed
    /// measurements when the pretrained file is not installed.
    pub fn init(&self, device: &Device) -> ResNet50 {
        let convs = self
            .conv_specs()
            .iter()
            .map(|spec| conv_random(spec, device))
            .collect();
        self.assemble(convs)
    }

    /// Loads the network from a weight file of this shape (batch norm already folded),
    /// checking every tensor's shape.
    pub fn load(&self, weights: &WebWeights, device: &Device) -> Result<ResNet50, BackboneError> {
        let expected = self.architecture();
        if weights.architecture() != expected {
            return Err(BackboneError::WrongArchitecture {
                found: weights.architecture().to_string(),
                expected,
            });
        }
        let convs = self
            .conv_specs()
            .iter()
            .map(|spec| conv_from_weights(weights, spec, device))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(self.assemble(convs))
    }

    fn assemble(&self, convs: Vec<Conv2d>) -> ResNet50 {
        let mut convs = convs.into_iter();
        let stem = convs.next();
        let blocks: Option<Vec<Bottleneck>> = self
            .bottleneck_specs()
            .iter()
            .map(|spec| {
                Some(Bottleneck {
                    conv1: convs.next()?,
                    conv2: convs.next()?,
                    conv3: convs.next()?,
                    downsample: if spec.downsample {
                        Some(convs.next()?)
                    } else {
                        None
                    },
                })
            })
            .collect();
        match (stem, blocks) {
            (Some(stem), Some(blocks)) => ResNet50 {
                stem,
                pool: MaxPool2dConfig::new([3, 3])
                    .with_strides([2, 2])
                    .with_padding(PaddingConfig2d::Explicit(1, 1, 1, 1))
                    .init(),
                blocks,
            },
            // `conv_specs` lists exactly the convolutions `bottleneck_specs` needs.
            _ => panic!("conv_specs() and bottleneck_specs() disagree"),
        }
    }
}

/// One bottleneck block (batch norm folded into each convolution).
#[derive(Module, Debug)]
pub struct Bottleneck {
    /// 1x1 reduction with ReLU.
    pub conv1: Conv2d,
    /// 3x3 convolution with ReLU, carrying the block's stride.
    pub conv2: Conv2d,
    /// 1x1 expansion, no activation before the addition.
    pub conv3: Conv2d,
    /// 1x1 projection of the input, on the first block of each stage.
    pub downsample: Option<Conv2d>,
}

impl Bottleneck {
    /// Input `[batch, in, h, w]`, output `[batch, out, h / stride, w / stride]`:
    /// `relu(conv3(relu(conv2(relu(conv1(x))))) + downsample(x))`.
    pub fn forward(&self, input: Tensor<4>) -> Tensor<4> {
        let x = relu(self.conv1.forward(input.clone()));
        let x = relu(self.conv2.forward(x));
        let x = self.conv3.forward(x);
        let identity = match &self.downsample {
            Some(downsample) => downsample.forward(input),
            None => input,
        };
        relu(x + identity)
    }
}

/// ResNet50's convolutional base. Input `[batch, 3, h, w]` normalised as
/// [`Preprocessing::torchvision`] describes (224x224 for the published weights), features
/// `[batch, 2048]`.
#[derive(Module, Debug)]
pub struct ResNet50 {
    /// 7x7 stride-2 convolution (padding 3) with ReLU, 3 -> 64 channels.
    pub stem: Conv2d,
    /// 3x3 stride-2 max-pool (padding 1) after the stem.
    pub pool: MaxPool2d,
    /// The 16 bottlenecks, stages of [`BLOCKS`] in order.
    pub blocks: Vec<Bottleneck>,
}

impl ResNet50 {
    /// Loads the network a weight file describes (its architecture name gives the widths).
    pub fn from_weights(weights: &WebWeights, device: &Device) -> Result<Self, BackboneError> {
        let config =
            ResNet50Config::from_architecture(weights.architecture()).ok_or_else(|| {
                BackboneError::WrongArchitecture {
                    found: weights.architecture().to_string(),
                    expected: ARCHITECTURE.to_string(),
                }
            })?;
        config.load(weights, device)
    }

    /// The published architecture with random weights.
    pub fn random(device: &Device) -> Self {
        ResNet50Config::default().init(device)
    }

    /// The input preprocessing of the published weights.
    pub fn preprocessing() -> Preprocessing {
        Preprocessing::torchvision()
    }

    /// Output of the last stage: `[batch, 3, 224, 224]` -> `[batch, 2048, 7, 7]`.
    pub fn forward(&self, input: Tensor<4>) -> Tensor<4> {
        let x = self.pool.forward(relu(self.stem.forward(input)));
        self.blocks.iter().fold(x, |x, block| block.forward(x))
    }

    /// Pooled features `[batch, 2048]` of a normalised input `[batch, 3, 224, 224]`.
    pub fn features(&self, input: Tensor<4>) -> Tensor<2> {
        global_average_pool(self.forward(input))
    }

    /// Width of [`Self::features`].
    pub fn feature_dim(&self) -> usize {
        self.blocks
            .last()
            .map_or(0, |block| block.conv3.weight.val().dims()[0])
    }

    /// Weights and biases of the folded network: [`FOLDED_PARAMETER_COUNT`] at the official
    /// widths.
    pub fn parameter_count(&self) -> usize {
        self.num_params()
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn random_network_has_the_published_size() {
        let config = ResNet50Config::default();
        assert_eq!(
            config.torchvision_parameter_count(),
            TORCHVISION_PARAMETER_COUNT
        );
        assert_eq!(config.parameter_count(), FOLDED_PARAMETER_COUNT);
        let specs = config.conv_specs();
        assert_eq!(specs.len(), 53);
        assert_eq!(config.bottleneck_specs().len(), 16);
        assert_eq!(
            specs
                .iter()
                .filter(|s| s.name.ends_with("downsample"))
                .count(),
            4
        );
        let device = Device::flex();
        let network = ResNet50::random(&device);
        assert_eq!(network.parameter_count(), FOLDED_PARAMETER_COUNT);
        assert_eq!(network.feature_dim(), FEATURE_WIDTH);
        let small = ResNet50Config::with_width_divisor(16).init(&device);
        let features = small.features(Tensor::<4>::ones([2, 3, 32, 32], &device));
        assert_eq!(features.dims(), [2, 128]);
    }

    #[test]
    fn architecture_names_round_trip() {
        for d in [1, 4, 16] {
            let config = ResNet50Config::with_width_divisor(d);
            assert_eq!(
                ResNet50Config::from_architecture(&config.architecture()),
                Some(config)
            );
        }
        for bad in ["resnet18", "resnet50_div5", "vgg16"] {
            assert_eq!(ResNet50Config::from_architecture(bad), None, "{bad}");
        }
    }
}
