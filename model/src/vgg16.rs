//! VGG16's convolutional base (Simonyan & Zisserman, 2014) as torchvision publishes it: 13 3x3
//! convolutions with bias and ReLU in five stages, each stage closed by a 2x2 max-pool, and no
//! classifier. Features are the global average of the last pool's output, as Keras'
//! `VGG16(include_top=False, pooling="avg")` gives them.
//!
//! Weight files name the convolutions as torchvision's `features` list does:
//! `features.{i}.weight` `[out, in, 3, 3]` and `features.{i}.bias` `[out]`, with `i` the index
//! of the convolution in `vgg16.features` (0, 2, 5, 7, 10, ...).

use burn::module::Module;
use burn::nn::conv::Conv2d;
use burn::nn::pool::{MaxPool2d, MaxPool2dConfig};
use burn::tensor::activation::relu;
use burn::tensor::{Device, Tensor};

use crate::backbone::{conv_from_weights, conv_random, global_average_pool};
use crate::mobilenet_v2::{BackboneError, ConvSpec};
use crate::weights::{Preprocessing, WebWeights};

/// Architecture name recorded in weight files of the official widths.
pub const ARCHITECTURE: &str = "vgg16";
/// Side of the square input photo the published weights were trained at.
pub const INPUT_SIZE: usize = 224;
/// Width of the pooled feature vector at the official widths.
pub const FEATURE_WIDTH: usize = 512;
/// Parameters of the convolutional base at the official widths (weights and biases), the
/// figure Keras prints for `VGG16(include_top=False)`.
pub const PARAMETER_COUNT: usize = 14_714_688;

/// Output channels of each stage at the official widths, and its number of convolutions.
const STAGES: [(usize, usize); 5] = [(64, 2), (128, 2), (256, 3), (512, 3), (512, 3)];

/// The shape of the network. The default is the published VGG16; a width divisor above 1
/// divides every convolution's output channels, for small, fast tests of the import.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Vgg16Config {
    /// Divides every stage's width; must divide 64. 1 is the published network.
    pub width_divisor: usize,
}

impl Default for Vgg16Config {
    fn default() -> Self {
        Self { width_divisor: 1 }
    }
}

impl Vgg16Config {
    /// A network whose widths are the official ones divided by `width_divisor`.
    pub fn with_width_divisor(width_divisor: usize) -> Self {
        Self { width_divisor }
    }

    /// The architecture name a weight file of this shape records: `vgg16`, or `vgg16_div{d}`
    /// for reduced widths.
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
        Self::valid_divisor(divisor).then_some(Self::with_width_divisor(divisor))
    }

    fn valid_divisor(divisor: usize) -> bool {
        divisor > 0 && 64 % divisor == 0
    }

    /// Width of the pooled features: 512 divided by the width divisor.
    pub fn feature_dim(&self) -> usize {
        FEATURE_WIDTH / self.width_divisor.max(1)
    }

    /// Stage widths and convolution counts.
    fn stages(&self) -> impl Iterator<Item = (usize, usize)> + '_ {
        STAGES
            .iter()
            .map(|&(width, convs)| (width / self.width_divisor.max(1), convs))
    }

    /// The 13 convolutions in execution order, named after their index in torchvision's
    /// `features` list (each convolution is followed by a ReLU and each stage by a max-pool,
    /// which take the indices in between).
    pub fn conv_specs(&self) -> Vec<ConvSpec> {
        let mut specs = Vec::new();
        let (mut index, mut in_channels) = (0, 3);
        for (width, convs) in self.stages() {
            for _ in 0..convs {
                specs.push(ConvSpec {
                    name: format!("features.{index}"),
                    in_channels,
                    out_channels: width,
                    kernel: 3,
                    stride: 1,
                    groups: 1,
                });
                in_channels = width;
                index += 2;
            }
            index += 1;
        }
        specs
    }

    /// Weights and biases of [`Self::conv_specs`] together.
    pub fn parameter_count(&self) -> usize {
        self.conv_specs()
            .iter()
            .map(|s| s.weight_shape().iter().product::<usize>() + s.out_channels)
            .sum()
    }

    /// The network with random weights (burn's default initialisation), for size and speed
    /// measurements when the pretrained file is not installed.
    pub fn init(&self, device: &Device) -> Vgg16 {
        let convs = self
            .conv_specs()
            .iter()
            .map(|spec| conv_random(spec, device))
            .collect();
        self.assemble(convs)
    }

    /// Loads the network from a weight file of this shape, checking every tensor's shape.
    pub fn load(&self, weights: &WebWeights, device: &Device) -> Result<Vgg16, BackboneError> {
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

    fn assemble(&self, convs: Vec<Conv2d>) -> Vgg16 {
        Vgg16 {
            convs,
            stage_ends: self
                .stages()
                .scan(0, |end, (_, convs)| {
                    *end += convs;
                    Some(*end)
                })
                .collect(),
            pool: MaxPool2dConfig::new([2, 2]).init(),
        }
    }
}

/// VGG16's convolutional base. Input `[batch, 3, h, w]` normalised as
/// [`Preprocessing::torchvision`] describes (224x224 for the published weights; any side that
/// is a multiple of 32 keeps every pool exact), features `[batch, 512]`.
#[derive(Module, Debug)]
pub struct Vgg16 {
    /// The 13 3x3 convolutions (padding 1, stride 1), each followed by ReLU.
    pub convs: Vec<Conv2d>,
    /// Number of convolutions up to the end of each stage: `[2, 4, 7, 10, 13]`.
    pub stage_ends: Vec<usize>,
    /// 2x2 stride-2 max-pool closing each stage.
    pub pool: MaxPool2d,
}

impl Vgg16 {
    /// Loads the network a weight file describes (its architecture name gives the widths).
    pub fn from_weights(weights: &WebWeights, device: &Device) -> Result<Self, BackboneError> {
        let config = Vgg16Config::from_architecture(weights.architecture()).ok_or_else(|| {
            BackboneError::WrongArchitecture {
                found: weights.architecture().to_string(),
                expected: ARCHITECTURE.to_string(),
            }
        })?;
        config.load(weights, device)
    }

    /// The published architecture with random weights.
    pub fn random(device: &Device) -> Self {
        Vgg16Config::default().init(device)
    }

    /// The input preprocessing of the published weights.
    pub fn preprocessing() -> Preprocessing {
        Preprocessing::torchvision()
    }

    /// Output of the last max-pool: `[batch, 3, h, w]` -> `[batch, 512, h / 32, w / 32]`.
    pub fn forward(&self, input: Tensor<4>) -> Tensor<4> {
        let mut x = input;
        let mut start = 0;
        for &end in &self.stage_ends {
            for conv in self.convs.get(start..end).unwrap_or_default() {
                x = relu(conv.forward(x));
            }
            x = self.pool.forward(x);
            start = end;
        }
        x
    }

    /// Pooled features `[batch, 512]` of a normalised input `[batch, 3, 224, 224]`.
    pub fn features(&self, input: Tensor<4>) -> Tensor<2> {
        global_average_pool(self.forward(input))
    }

    /// Width of [`Self::features`].
    pub fn feature_dim(&self) -> usize {
        self.convs
            .last()
            .map_or(0, |conv| conv.weight.val().dims()[0])
    }

    /// Weights and biases of the network: [`PARAMETER_COUNT`] at the official widths.
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
        let config = Vgg16Config::default();
        assert_eq!(config.parameter_count(), PARAMETER_COUNT);
        let specs = config.conv_specs();
        assert_eq!(specs.len(), 13);
        assert_eq!(specs[12].name, "features.28");
        assert_eq!(specs[2].name, "features.5");
        let device = Device::flex();
        let network = Vgg16::random(&device);
        assert_eq!(network.parameter_count(), PARAMETER_COUNT);
        assert_eq!(network.feature_dim(), FEATURE_WIDTH);
        let small = Vgg16Config::with_width_divisor(16).init(&device);
        let features = small.features(Tensor::<4>::ones([2, 3, 32, 32], &device));
        assert_eq!(features.dims(), [2, 32]);
    }

    #[test]
    fn architecture_names_round_trip() {
        for d in [1, 2, 8, 64] {
            let config = Vgg16Config::with_width_divisor(d);
            assert_eq!(
                Vgg16Config::from_architecture(&config.architecture()),
                Some(config)
            );
        }
        for bad in ["vgg19", "vgg16_div3", "vgg16_div0", "vgg16x", "resnet50"] {
            assert_eq!(Vgg16Config::from_architecture(bad), None, "{bad}");
        }
    }
}
