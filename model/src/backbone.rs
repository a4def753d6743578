//! The model zoo of lesson 04: MobileNetV2, VGG16 and ResNet50 behind one interface, so the
//! lesson can measure and use them alike, plus the convolution helpers VGG16 and ResNet50
//! share (PyTorch-style symmetric padding, global average pooling).

use burn::module::{Module, Param};
use burn::nn::PaddingConfig2d;
use burn::nn::conv::{Conv2d, Conv2dConfig};
use burn::tensor::{Device, Tensor};

use crate::mobilenet_v2::{self, BackboneError, ConvSpec, MobileNetV2, tensor_of_shape};
use crate::resnet50::{self, ResNet50};
use crate::vgg16::{self, Vgg16};
use crate::weights::{Preprocessing, WebWeights, WeightsError};

/// PyTorch's symmetric padding of a convolution with an odd square kernel: `kernel / 2` on
/// every side (3x3 -> 1, 7x7 -> 3, 1x1 -> 0).
fn torch_padding(kernel: usize) -> PaddingConfig2d {
    let p = kernel / 2;
    PaddingConfig2d::Explicit(p, p, p, p)
}

/// One convolution with bias from a weight file (`{name}.weight` `[out, in, k, k]`,
/// `{name}.bias` `[out]`), padded as PyTorch pads it.
pub(crate) fn conv_from_weights(
    weights: &WebWeights,
    spec: &ConvSpec,
    device: &Device,
) -> Result<Conv2d, WeightsError> {
    let weight = weights.tensor(&format!("{}.weight", spec.name))?;
    let bias = weights.tensor(&format!("{}.bias", spec.name))?;
    let weight = tensor_of_shape::<4>(
        &format!("{}.weight", spec.name),
        weight,
        spec.weight_shape(),
        device,
    )?;
    let bias = tensor_of_shape::<1>(
        &format!("{}.bias", spec.name),
        bias,
        [spec.out_channels],
        device,
    )?;
    Ok(Conv2d {
        weight: Param::from_tensor(weight),
        bias: Some(Param::from_tensor(bias)),
        stride: [spec.stride, spec.stride],
        kernel_size: [spec.kernel, spec.kernel],
        dilation: [1, 1],
        groups: spec.groups,
        padding: torch_padding(spec.kernel),
    })
}

/// A randomly initialised convolution with bias, padded as PyTorch pads it.
pub(crate) fn conv_random(spec: &ConvSpec, device: &Device) -> Conv2d {
    Conv2dConfig::new(
        [spec.in_channels, spec.out_channels],
        [spec.kernel, spec.kernel],
    )
    .with_stride([spec.stride, spec.stride])
    .with_groups(spec.groups)
    .with_padding(torch_padding(spec.kernel))
    .init(device)
}

/// Global average pooling: `[batch, channels, h, w]` -> `[batch, channels]`.
pub(crate) fn global_average_pool(x: Tensor<4>) -> Tensor<2> {
    let [batch, channels, _, _] = x.dims();
    x.mean_dim(3).mean_dim(2).reshape([batch, channels])
}

/// Which network of the zoo.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum BackboneKind {
    /// MobileNetV2 1.0 (TensorFlow Lite int8 import), 2.2M parameters, 1280 features.
    MobileNetV2,
    /// VGG16's convolutional base (torchvision), 14.7M parameters, 512 features.
    Vgg16,
    /// ResNet50 without its classifier (torchvision, batch norm folded), 23.5M parameters,
    /// 2048 features.
    ResNet50,
}

impl BackboneKind {
    /// Every backbone, smallest first.
    pub const ALL: [BackboneKind; 3] = [Self::MobileNetV2, Self::Vgg16, Self::ResNet50];

    /// The id used in `models/index.json` and the app: `mobilenet_v2`, `vgg16`, `resnet50`.
    pub fn id(self) -> &'static str {
        match self {
            Self::MobileNetV2 => "mobilenet_v2",
            Self::Vgg16 => "vgg16",
            Self::ResNet50 => "resnet50",
        }
    }

    /// The kind with [`Self::id`] `id`.
    pub fn from_id(id: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|kind| kind.id() == id)
    }

    /// The name shown to learners.
    pub fn display_name(self) -> &'static str {
        match self {
            Self::MobileNetV2 => "MobileNetV2",
            Self::Vgg16 => "VGG16",
            Self::ResNet50 => "ResNet50",
        }
    }

    /// The architecture name the published backbone's weight file records.
    pub fn architecture(self) -> &'static str {
        match self {
            Self::MobileNetV2 => mobilenet_v2::ARCHITECTURE,
            Self::Vgg16 => vgg16::ARCHITECTURE,
            Self::ResNet50 => resnet50::ARCHITECTURE,
        }
    }

    /// Width of the pooled features.
    pub fn feature_dim(self) -> usize {
        match self {
            Self::MobileNetV2 => mobilenet_v2::FEATURE_WIDTH,
            Self::Vgg16 => vgg16::FEATURE_WIDTH,
            Self::ResNet50 => resnet50::FEATURE_WIDTH,
        }
    }

    /// Side of the square input photo.
    pub fn input_size(self) -> usize {
        match self {
            Self::MobileNetV2 => mobilenet_v2::INPUT_SIZE,
            Self::Vgg16 => vgg16::INPUT_SIZE,
            Self::ResNet50 => resnet50::INPUT_SIZE,
        }
    }

    /// Parameters of the backbone as the app runs it, without any ImageNet classifier and with
    /// batch norm folded into the convolutions (one bias per channel instead of a scale and a
    /// shift): MobileNetV2 2,206,816, VGG16 14,714,688 (it has no batch norm), ResNet50
    /// 23,481,472 (torchvision counts 23,508,032 before folding).
    pub fn parameter_count(self) -> usize {
        match self {
            Self::MobileNetV2 => mobilenet_v2::conv_specs()
                .iter()
                .map(|s| s.weight_shape().iter().product::<usize>() + s.out_channels)
                .sum(),
            Self::Vgg16 => vgg16::PARAMETER_COUNT,
            Self::ResNet50 => resnet50::FOLDED_PARAMETER_COUNT,
        }
    }

    /// Bytes of the largest single GPU buffer one forward pass of `batch` photos at
    /// [`Self::input_size`] may need, in f32: the biggest of the largest weight tensor, the
    /// largest activation and the largest unfolded convolution input (a `k x k` convolution
    /// may be computed as a matrix product over `in_channels * k * k` rows per output pixel).
    /// WebGPU adapters cap one storage buffer (`maxStorageBufferBindingSize`, 128 MiB by
    /// default), so this decides whether, and with which batch, a backbone runs on a GPU.
    pub fn largest_buffer_bytes(self, batch: usize) -> u64 {
        let s = self.input_size() as u64;
        let per_photo = match self {
            // Block 1 expands 16 to 96 channels at half the input size.
            Self::MobileNetV2 => 96 * (s / 2) * (s / 2),
            // The 7x7 stem unfolds 3 * 49 values per pixel at half the input size.
            Self::ResNet50 => 3 * 49 * (s / 2) * (s / 2),
            // The second 3x3 convolution unfolds 64 * 9 values per pixel at full size.
            Self::Vgg16 => 64 * 9 * s * s,
        };
        let largest_weight: u64 = match self {
            Self::MobileNetV2 => 320 * 1280,
            Self::ResNet50 | Self::Vgg16 => 512 * 512 * 9,
        };
        4 * (per_photo * batch.max(1) as u64).max(largest_weight)
    }

    /// The largest batch, at most `most`, whose biggest buffer
    /// ([`Self::largest_buffer_bytes`]) fits in `limit` bytes; `None` when one photo does not.
    pub fn largest_batch_within(self, limit: u64, most: usize) -> Option<usize> {
        (1..=most)
            .rev()
            .find(|&batch| self.largest_buffer_bytes(batch) <= limit)
    }

    /// The input preprocessing of the published weights.
    pub fn preprocessing(self) -> Preprocessing {
        match self {
            Self::MobileNetV2 => Preprocessing::mobilenet_v2(),
            Self::Vgg16 | Self::ResNet50 => Preprocessing::torchvision(),
        }
    }
}

/// One loaded backbone of the zoo.
#[derive(Debug)]
pub enum Backbone {
    /// See [`BackboneKind::MobileNetV2`] (boxed, like ResNet50: their modules are large).
    MobileNetV2(Box<MobileNetV2>),
    /// See [`BackboneKind::Vgg16`].
    Vgg16(Vgg16),
    /// See [`BackboneKind::ResNet50`].
    ResNet50(Box<ResNet50>),
}

impl Backbone {
    /// Loads a backbone of `kind` from its weight file.
    pub fn from_weights(
        kind: BackboneKind,
        weights: &WebWeights,
        device: &Device,
    ) -> Result<Self, BackboneError> {
        Ok(match kind {
            BackboneKind::MobileNetV2 => {
                Self::MobileNetV2(Box::new(MobileNetV2::from_weights(weights, device)?))
            }
            BackboneKind::Vgg16 => Self::Vgg16(Vgg16::from_weights(weights, device)?),
            BackboneKind::ResNet50 => {
                Self::ResNet50(Box::new(ResNet50::from_weights(weights, device)?))
            }
        })
    }

    /// The published architecture of `kind` with random weights (MobileNetV2 without its
    /// ImageNet classifier, like the others).
    pub fn random(kind: BackboneKind, device: &Device) -> Self {
        match kind {
            BackboneKind::MobileNetV2 => {
                let mut network = MobileNetV2::random(device);
                network.classifier = None;
                Self::MobileNetV2(Box::new(network))
            }
            BackboneKind::Vgg16 => Self::Vgg16(Vgg16::random(device)),
            BackboneKind::ResNet50 => Self::ResNet50(Box::new(ResNet50::random(device))),
        }
    }

    /// Which network this is.
    pub fn kind(&self) -> BackboneKind {
        match self {
            Self::MobileNetV2(_) => BackboneKind::MobileNetV2,
            Self::Vgg16(_) => BackboneKind::Vgg16,
            Self::ResNet50(_) => BackboneKind::ResNet50,
        }
    }

    /// Pooled features `[batch, feature_dim]` of a normalised input `[batch, 3, s, s]` with
    /// `s = input_size()`.
    pub fn features(&self, input: Tensor<4>) -> Tensor<2> {
        match self {
            Self::MobileNetV2(network) => network.features(input),
            Self::Vgg16(network) => network.features(input),
            Self::ResNet50(network) => network.features(input),
        }
    }

    /// Width of [`Self::features`].
    pub fn feature_dim(&self) -> usize {
        match self {
            Self::MobileNetV2(_) => mobilenet_v2::FEATURE_WIDTH,
            Self::Vgg16(network) => network.feature_dim(),
            Self::ResNet50(network) => network.feature_dim(),
        }
    }

    /// Parameters of the loaded network (a loaded MobileNetV2 ImageNet classifier included).
    pub fn parameter_count(&self) -> usize {
        match self {
            Self::MobileNetV2(network) => network.num_params(),
            Self::Vgg16(network) => network.parameter_count(),
            Self::ResNet50(network) => network.parameter_count(),
        }
    }

    /// Side of the square input photo.
    pub fn input_size(&self) -> usize {
        self.kind().input_size()
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn kinds_have_ids_names_and_sizes() {
        for kind in BackboneKind::ALL {
            assert_eq!(BackboneKind::from_id(kind.id()), Some(kind));
            assert_eq!(kind.input_size(), 224);
        }
        assert_eq!(BackboneKind::from_id("vgg19"), None);
        assert_eq!(BackboneKind::Vgg16.display_name(), "VGG16");
        assert_eq!(
            BackboneKind::MobileNetV2.parameter_count(),
            2_223_872 - 17_056
        );
        assert_eq!(BackboneKind::ResNet50.feature_dim(), 2048);
    }

    #[test]
    fn buffer_needs_follow_the_architectures() {
        // VGG16's unfolded 3x3 convolution at 224x224: 576 values for each of 50,176 pixels.
        assert_eq!(
            BackboneKind::Vgg16.largest_buffer_bytes(1),
            4 * 576 * 224 * 224
        );
        assert!(BackboneKind::Vgg16.largest_buffer_bytes(2) > 128 << 20);
        assert!(BackboneKind::ResNet50.largest_buffer_bytes(8) < 128 << 20);
        assert!(
            BackboneKind::MobileNetV2.largest_buffer_bytes(1)
                < BackboneKind::ResNet50.largest_buffer_bytes(1)
        );
        let webgpu_default = 128 << 20;
        assert_eq!(
            BackboneKind::Vgg16.largest_batch_within(webgpu_default, 16),
            Some(1)
        );
        assert_eq!(BackboneKind::Vgg16.largest_batch_within(64 << 20, 16), None);
        assert_eq!(
            BackboneKind::MobileNetV2.largest_batch_within(webgpu_default, 16),
            Some(16)
        );
        // A tiny batch is never smaller than the largest weight tensor.
        assert!(BackboneKind::MobileNetV2.largest_buffer_bytes(0) >= 4 * 320 * 1280);
    }

    #[test]
    fn random_backbones_report_their_kind_and_size() {
        let device = Device::flex();
        for kind in BackboneKind::ALL {
            let backbone = Backbone::random(kind, &device);
            assert_eq!(backbone.kind(), kind);
            assert_eq!(
                backbone.parameter_count(),
                kind.parameter_count(),
                "{kind:?}"
            );
            assert_eq!(backbone.feature_dim(), kind.feature_dim());
        }
        let mobilenet = Backbone::random(BackboneKind::MobileNetV2, &device);
        let features = mobilenet.features(Tensor::<4>::zeros([1, 3, 64, 64], &device));
        assert_eq!(features.dims(), [1, 1280]);
    }
}
