//! Lesson 01's network: a small convolutional network trained from scratch on the lesson's
//! photos. With about a hundred photos per class it learns the training photos far better than
//! it generalises, which is the overfitting the lesson shows before transfer learning fixes it.
//!
//! Three blocks of 3x3 convolution + ReLU + 2x2 max-pool, then a ReLU dense layer with dropout
//! and a linear output layer. Initial weights and dropout masks are drawn on the host from the
//! seed, so every backend trains through the same numbers.

use std::borrow::Cow;

use crate::SeededRng;
use burn::module::{Module, Param};
use burn::nn::conv::Conv2d;
use burn::nn::loss::CrossEntropyLossConfig;
use burn::nn::pool::{MaxPool2d, MaxPool2dConfig};
use burn::nn::{Linear, PaddingConfig2d};
use burn::optim::{AdamConfig, GradientsParams, ModuleOptimizer};
use burn::tensor::activation::relu;
use burn::tensor::{Device, Int, Tensor, TensorData};
use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};
use serde::{Deserialize, Serialize};

use crate::head::{EpochReport, PassMetrics, TrainError, read_f32, read_i64};
use crate::metrics::{Evaluation, evaluate_predictions};
use crate::mobilenet_v2::input_tensor;
use crate::photo_set::PhotoSet;
use crate::weights::{Preprocessing, TensorF32, WebWeights, WeightsError};

/// Architecture name of the scratch network, for the trained-model file.
pub const ARCHITECTURE: &str = "scratch_cnn";

/// Photos per forward pass when measuring: bounds the activations' memory (about 25 MB at the
/// default size) whatever the size of the set.
const MEASURE_BATCH: usize = 64;

/// Smallest side of an augmentation crop, as a fraction of the photo's side.
const MIN_CROP: f32 = 0.8;

/// The shape of the scratch network.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ScratchCnnConfig {
    /// Side of the square input in pixels; each of the three pools halves it (rounding down), so
    /// it should be at least 8 and is best a multiple of 8.
    pub input_size: usize,
    /// Output channels of the three convolution blocks.
    pub channels: [usize; 3],
    /// Width of the dense layer before the output.
    pub hidden: usize,
    /// Probability of zeroing each dense activation while training, in `[0, 1)`.
    pub dropout: f64,
}

impl Default for ScratchCnnConfig {
    fn default() -> Self {
        // 64x64 keeps an epoch of the lesson subset (500 photos) near 4 s natively, so a
        // CPU-only browser tab (about 3x slower) trains the default lesson in about 5 minutes;
        // 96x96 costs 2.3x the time without lifting validation accuracy out of the lesson's range
        // (see `benches/lesson01.rs`). The channel widths are those of TensorFlow's image
        // classification tutorial, the model the course's numbers come from.
        Self {
            input_size: 64,
            channels: [16, 32, 64],
            hidden: 128,
            dropout: 0.2,
        }
    }
}

impl ScratchCnnConfig {
    /// How a photo becomes the network's input: squeezed to `input_size`, `x = u8 / 255`.
    pub fn preprocessing(&self) -> Preprocessing {
        Preprocessing {
            input_size: self.input_size,
            scale: 1.0 / 255.0,
            offset: 0.0,
            resize: "squeeze".into(),
            mean: None,
            std: None,
        }
    }

    /// Side of the last block's output: `input_size` halved three times.
    pub fn feature_side(&self) -> usize {
        self.input_size / 2 / 2 / 2
    }

    /// Width of the flattened last block, the dense layer's input: `channels[2] * side²`.
    pub fn flattened_width(&self) -> usize {
        self.channels[2] * self.feature_side() * self.feature_side()
    }

    /// Every parameter's name and shape in burn's layout, in the order of
    /// [`ScratchCnn::parameters`]: convolution weights `[out, in, 3, 3]`, biases `[out]`, dense
    /// weights `[in, out]`.
    pub fn parameter_shapes(&self, classes: usize) -> Vec<(String, Vec<usize>)> {
        let [c1, c2, c3] = self.channels;
        let mut shapes = Vec::with_capacity(10);
        for (name, input, output) in [("conv1", 3, c1), ("conv2", c1, c2), ("conv3", c2, c3)] {
            shapes.push((format!("{name}.weight"), vec![output, input, 3, 3]));
            shapes.push((format!("{name}.bias"), vec![output]));
        }
        for (name, input, output) in [
            ("dense", self.flattened_width(), self.hidden),
            ("output", self.hidden, classes),
        ] {
            shapes.push((format!("{name}.weight"), vec![input, output]));
            shapes.push((format!("{name}.bias"), vec![output]));
        }
        shapes
    }

    /// Number of trainable numbers for `classes` classes.
    pub fn parameter_count(&self, classes: usize) -> usize {
        self.parameter_shapes(classes)
            .iter()
            .map(|(_, shape)| shape.iter().product::<usize>())
            .sum()
    }

    /// A freshly initialised network for `classes` classes on `device`: He-uniform weights for
    /// the ReLU layers, Glorot-uniform for the output layer, zero biases, all drawn on the host
    /// from `seed`.
    pub fn init(&self, classes: usize, seed: u64, device: &Device) -> ScratchCnn {
        let mut rng = SeededRng::seed_from_u64(seed);
        let tensors = self
            .parameter_shapes(classes)
            .into_iter()
            .map(|(name, shape)| {
                let count = shape.iter().product::<usize>();
                let values = if name.ends_with(".bias") {
                    vec![0.0; count]
                } else {
                    let fan_in = count / shape[if shape.len() == 4 { 0 } else { 1 }];
                    let bound = if name.starts_with("output") {
                        (6.0 / (fan_in + classes) as f32).sqrt()
                    } else {
                        (6.0 / fan_in as f32).sqrt()
                    };
                    (0..count)
                        .map(|_| rng.random_range(-bound..bound))
                        .collect()
                };
                TensorF32 { shape, values }
            })
            .collect();
        ScratchCnn::from_tensors(tensors, device)
    }
}

/// The scratch network. Input `[batch, 3, s, s]` with `s = input_size`, logits
/// `[batch, classes]`.
#[derive(Module, Debug)]
pub struct ScratchCnn {
    /// 3x3 convolution, 3 -> `channels[0]`.
    pub conv1: Conv2d,
    /// 3x3 convolution, `channels[0]` -> `channels[1]`.
    pub conv2: Conv2d,
    /// 3x3 convolution, `channels[1]` -> `channels[2]`.
    pub conv3: Conv2d,
    /// 2x2 max-pool after each convolution.
    pub pool: MaxPool2d,
    /// Flattened last block -> `hidden`, followed by ReLU and dropout.
    pub dense: Linear,
    /// `hidden` -> classes.
    pub output: Linear,
}

/// A 3x3 same-padded convolution with the given weight `[out, in, 3, 3]` and bias `[out]`.
fn conv3x3(weight: Tensor<4>, bias: Tensor<1>) -> Conv2d {
    Conv2d {
        weight: Param::from_tensor(weight),
        bias: Some(Param::from_tensor(bias)),
        stride: [1, 1],
        kernel_size: [3, 3],
        dilation: [1, 1],
        groups: 1,
        padding: PaddingConfig2d::Same,
    }
}

impl ScratchCnn {
    /// Builds the network from tensors in [`ScratchCnnConfig::parameter_shapes`] order; the
    /// shapes are already checked.
    fn from_tensors(tensors: Vec<TensorF32>, device: &Device) -> Self {
        let mut tensors = tensors
            .into_iter()
            .map(|t| TensorData::new(t.values, t.shape));
        let mut next = || {
            tensors
                .next()
                .unwrap_or_else(|| TensorData::new(Vec::<f32>::new(), [0]))
        };
        let mut conv = || {
            let weight = Tensor::<4>::from_data(next(), device);
            conv3x3(weight, Tensor::<1>::from_data(next(), device))
        };
        let (conv1, conv2, conv3) = (conv(), conv(), conv());
        let mut linear = || Linear {
            weight: Param::from_tensor(Tensor::<2>::from_data(next(), device)),
            bias: Some(Param::from_tensor(Tensor::<1>::from_data(next(), device))),
        };
        let (dense, output) = (linear(), linear());
        Self {
            conv1,
            conv2,
            conv3,
            pool: MaxPool2dConfig::new([2, 2]).init(),
            dense,
            output,
        }
    }

    /// Loads a trained network from a weight file, checking every tensor's shape against
    /// `config` and `classes` (a wrong one gives [`WeightsError::ShapeMismatch`]).
    pub fn from_parameters(
        config: &ScratchCnnConfig,
        classes: usize,
        weights: &WebWeights,
        device: &Device,
    ) -> Result<Self, WeightsError> {
        let tensors = config
            .parameter_shapes(classes)
            .iter()
            .map(|(name, shape)| weights.tensor_with_shape(name, shape))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Self::from_tensors(tensors, device))
    }

    /// Every parameter's name and values (shapes in burn's layout, see
    /// [`ScratchCnnConfig::parameter_shapes`]), read back asynchronously as WebGPU requires.
    pub async fn parameters(&self) -> Result<Vec<(String, TensorF32)>, TrainError> {
        let mut out = Vec::with_capacity(10);
        for (name, conv) in [
            ("conv1", &self.conv1),
            ("conv2", &self.conv2),
            ("conv3", &self.conv3),
        ] {
            let weight = conv.weight.val();
            let shape = weight.dims().to_vec();
            out.push((name, "weight", shape, read_f32(weight).await?));
            if let Some(bias) = &conv.bias {
                let bias = bias.val();
                let shape = bias.dims().to_vec();
                out.push((name, "bias", shape, read_f32(bias).await?));
            }
        }
        for (name, linear) in [("dense", &self.dense), ("output", &self.output)] {
            let weight = linear.weight.val();
            let shape = weight.dims().to_vec();
            out.push((name, "weight", shape, read_f32(weight).await?));
            if let Some(bias) = &linear.bias {
                let bias = bias.val();
                let shape = bias.dims().to_vec();
                out.push((name, "bias", shape, read_f32(bias).await?));
            }
        }
        Ok(out
            .into_iter()
            .map(|(layer, kind, shape, values)| {
                (format!("{layer}.{kind}"), TensorF32 { shape, values })
            })
            .collect())
    }

    /// Logits `[batch, classes]` of inputs `[batch, 3, s, s]` (no dropout).
    pub fn forward(&self, input: Tensor<4>) -> Tensor<2> {
        self.forward_masked(input, None)
    }

    /// The forward pass with an optional dropout mask `[batch, hidden]` (0 or `1 / keep`)
    /// multiplied into the dense activations.
    fn forward_masked(&self, input: Tensor<4>, dropout_mask: Option<Tensor<2>>) -> Tensor<2> {
        let mut x = input;
        for conv in [&self.conv1, &self.conv2, &self.conv3] {
            x = self.pool.forward(relu(conv.forward(x)));
        }
        let mut hidden = relu(self.dense.forward(x.flatten::<2>(1, 3)));
        if let Some(mask) = dropout_mask {
            hidden = hidden * mask;
        }
        self.output.forward(hidden)
    }
}

/// Hyper-parameters of scratch training.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ScratchTrainingConfig {
    /// Passes over the training photos.
    pub epochs: usize,
    /// Adam's learning rate.
    pub learning_rate: f64,
    /// Photos per gradient step.
    pub batch_size: usize,
    /// Seed of the initial weights, the shuffling, the dropout masks and the augmentation.
    pub seed: u64,
    /// Whether each training photo is randomly flipped and cropped anew every epoch.
    pub augment: bool,
}

impl Default for ScratchTrainingConfig {
    fn default() -> Self {
        // From `benches/lesson01.rs` on the lesson subset (100 photos per class, 64x64). Adam
        // at 1e-3 is Keras's default, used by the course's notebook. Without augmentation
        // validation accuracy plateaus near 0.5 from epoch 5-7 and its loss rises from epoch 9,
        // while training accuracy reaches 0.99 by epoch 20: twenty epochs show the overfitting
        // in full. With augmentation the same twenty epochs end near 0.73 train / 0.6
        // validation. Batches of 32 give 16 steps per epoch, enough to learn in a few epochs.
        Self {
            epochs: 20,
            learning_rate: 1e-3,
            batch_size: 32,
            seed: 42,
            augment: false,
        }
    }
}

/// The pixels of one photo (`size` x `size` RGB, HWC) squeezed to `output_size` x `output_size`
/// by bilinear sampling.
pub fn resize_photo(pixels: &[u8], size: usize, output_size: usize) -> Vec<u8> {
    sample_window(pixels, size, [0.0, 0.0, size as f32], false, output_size)
}

/// A randomly augmented copy of one photo (`size` x `size` RGB, HWC): a square crop of 80-100%
/// of the side at a random place, flipped left-right with probability 1/2, resized to
/// `output_size` x `output_size`. The same `seed` gives the same copy.
pub fn augment_photo(pixels: &[u8], size: usize, output_size: usize, seed: u64) -> Vec<u8> {
    let mut rng = SeededRng::seed_from_u64(seed);
    let side = size as f32 * rng.random_range(MIN_CROP..=1.0);
    let room = size as f32 - side;
    let left = rng.random_range(0.0..=room);
    let top = rng.random_range(0.0..=room);
    let flip = rng.random_bool(0.5);
    sample_window(pixels, size, [left, top, side], flip, output_size)
}

/// Bilinear resampling of the square window `[left, top, side]` (in source pixels) of a
/// `size` x `size` RGB photo to `output_size` x `output_size`, optionally mirrored left-right.
fn sample_window(
    pixels: &[u8],
    size: usize,
    [left, top, side]: [f32; 3],
    flip: bool,
    output_size: usize,
) -> Vec<u8> {
    let step = side / output_size as f32;
    let last = size.saturating_sub(1) as f32;
    // Source coordinate of an output pixel's centre, split into the two neighbours and the
    // weight of the second one.
    let source = |start: f32, index: usize| {
        let at = (start + (index as f32 + 0.5) * step - 0.5).clamp(0.0, last);
        let low = at.floor();
        (low as usize, (low + 1.0).min(last) as usize, at - low)
    };
    let mut out = Vec::with_capacity(output_size * output_size * 3);
    for row in 0..output_size {
        let (y0, y1, fy) = source(top, row);
        for column in 0..output_size {
            let column = if flip {
                output_size - 1 - column
            } else {
                column
            };
            let (x0, x1, fx) = source(left, column);
            for channel in 0..3 {
                let at = |y: usize, x: usize| pixels[(y * size + x) * 3 + channel] as f32;
                let upper = at(y0, x0) * (1.0 - fx) + at(y0, x1) * fx;
                let lower = at(y1, x0) * (1.0 - fx) + at(y1, x1) * fx;
                out.push((upper * (1.0 - fy) + lower * fy).round().clamp(0.0, 255.0) as u8);
            }
        }
    }
    out
}

/// Photo `index` of `set` at the network's input size, resized only when the sizes differ.
fn photo_at_size(set: &PhotoSet, index: usize, input_size: usize) -> Cow<'_, [u8]> {
    if set.size() == input_size {
        Cow::Borrowed(set.photo(index))
    } else {
        Cow::Owned(resize_photo(set.photo(index), set.size(), input_size))
    }
}

/// The network input `[batch, 3, s, s]` of the photos `indices` of `set`.
fn batch_input(
    set: &PhotoSet,
    indices: &[usize],
    config: &ScratchCnnConfig,
    device: &Device,
) -> Tensor<4> {
    let photos: Vec<Cow<'_, [u8]>> = indices
        .iter()
        .map(|&i| photo_at_size(set, i, config.input_size))
        .collect();
    let views: Vec<&[u8]> = photos.iter().map(|p| p.as_ref()).collect();
    input_tensor(&views, config.input_size, &config.preprocessing(), device)
}

/// The labels `[batch]` of the photos `indices` of `set`.
fn batch_labels(set: &PhotoSet, indices: &[usize], device: &Device) -> Tensor<1, Int> {
    let labels: Vec<i64> = indices.iter().map(|&i| set.labels()[i] as i64).collect();
    Tensor::from_data(TensorData::new(labels, [indices.len()]), device)
}

/// Summed cross-entropy and the predicted class of every photo of a non-empty `set`, in
/// batches on the network's device (no dropout).
async fn infer(
    cnn: &ScratchCnn,
    config: &ScratchCnnConfig,
    set: &PhotoSet,
) -> Result<(f32, Vec<usize>), TrainError> {
    let device = cnn.conv1.weight.device();
    let loss_fn = CrossEntropyLossConfig::new().init(&device);
    let indices: Vec<usize> = (0..set.len()).collect();
    let mut loss_sum = Tensor::<1>::zeros([1], &device);
    let mut predictions = Vec::new();
    for batch in indices.chunks(MEASURE_BATCH) {
        let logits = cnn.forward(batch_input(set, batch, config, &device));
        let loss = loss_fn.forward(logits.clone(), batch_labels(set, batch, &device));
        loss_sum = loss_sum + loss.mul_scalar(batch.len() as f32);
        predictions.push(logits.argmax(1).flatten::<1>(0, 1));
    }
    // One readback of each kind per set keeps a GPU busy.
    let loss_sum = read_f32(loss_sum).await?[0];
    let predictions = read_i64(Tensor::cat(predictions, 0)).await?;
    Ok((
        loss_sum,
        predictions.into_iter().map(|p| p as usize).collect(),
    ))
}

/// Predictions, per-class accuracy and confusion matrix of a network (on any device, for
/// example one loaded with [`ScratchCnn::from_parameters`]) on `set`.
pub async fn evaluate_scratch_cnn(
    cnn: &ScratchCnn,
    config: &ScratchCnnConfig,
    set: &PhotoSet,
    classes: usize,
) -> Result<Evaluation, TrainError> {
    if set.is_empty() {
        return Ok(evaluate_predictions(&[], &[], classes));
    }
    let (_, predictions) = infer(cnn, config, set).await?;
    Ok(evaluate_predictions(&predictions, set.labels(), classes))
}

/// Trains a [`ScratchCnn`] epoch by epoch, so that a caller (a browser worker, the CLI) can
/// report progress and stop between epochs.
pub struct ScratchTrainer {
    cnn: ScratchCnn,
    optimizer: ModuleOptimizer,
    config: ScratchTrainingConfig,
    cnn_config: ScratchCnnConfig,
    device: Device,
    rng: SeededRng,
    epochs_done: usize,
}

impl ScratchTrainer {
    /// A freshly initialised network for `classes` classes, seeded by `config.seed`; `device`
    /// must be an autodiff device.
    pub fn new(
        config: ScratchTrainingConfig,
        cnn_config: ScratchCnnConfig,
        classes: usize,
        device: &Device,
    ) -> Self {
        let cnn = cnn_config.init(classes, config.seed, device);
        // A stream apart from the initial weights' for shuffling, dropout and augmentation.
        let rng = SeededRng::seed_from_u64(config.seed ^ 0x5eed_5c7a_7c40_0001);
        Self {
            cnn,
            optimizer: AdamConfig::new().init(),
            config,
            cnn_config,
            device: device.clone(),
            rng,
            epochs_done: 0,
        }
    }

    /// Epochs finished so far.
    pub fn epochs_done(&self) -> usize {
        self.epochs_done
    }

    /// The training configuration in use.
    pub fn config(&self) -> &ScratchTrainingConfig {
        &self.config
    }

    /// The network's shape.
    pub fn cnn_config(&self) -> &ScratchCnnConfig {
        &self.cnn_config
    }

    /// The network as trained so far (on the autodiff device; `.valid()` drops autodiff).
    pub fn cnn(&self) -> &ScratchCnn {
        &self.cnn
    }

    /// A dropout mask `[batch, hidden]` drawn from the trainer's seeded stream, or `None`
    /// without dropout.
    fn dropout_mask(&mut self, batch: usize) -> Option<Tensor<2>> {
        let drop = self.cnn_config.dropout;
        if drop <= 0.0 {
            return None;
        }
        let keep = 1.0 / (1.0 - drop) as f32;
        let hidden = self.cnn_config.hidden;
        let values: Vec<f32> = (0..batch * hidden)
            .map(|_| {
                if self.rng.random_bool(drop.min(1.0)) {
                    0.0
                } else {
                    keep
                }
            })
            .collect();
        Some(Tensor::from_data(
            TensorData::new(values, [batch, hidden]),
            &self.device,
        ))
    }

    /// One pass over `train` in shuffled mini-batches (augmented when the configuration says
    /// so), then a validation pass. Photos of another size than the network's input are resized.
    pub async fn run_epoch(
        &mut self,
        train: &PhotoSet,
        validation: &PhotoSet,
    ) -> Result<EpochReport, TrainError> {
        if train.is_empty() {
            return Err(TrainError::NoTrainingData);
        }
        let epoch = self.epochs_done + 1;
        let size = self.cnn_config.input_size;
        let preprocessing = self.cnn_config.preprocessing();
        let mut order: Vec<usize> = (0..train.len()).collect();
        order.shuffle(&mut self.rng);
        let loss_fn = CrossEntropyLossConfig::new().init(&self.device);

        // Sums stay on the device; one readback per epoch keeps a GPU busy.
        let mut loss_sum = Tensor::<1>::zeros([1], &self.device);
        let mut correct = Tensor::<1, Int>::zeros([1], &self.device);
        for batch in order.chunks(self.config.batch_size.max(1)) {
            let photos: Vec<Cow<'_, [u8]>> = batch
                .iter()
                .map(|&i| {
                    if self.config.augment {
                        let seed = self.rng.random();
                        Cow::Owned(augment_photo(train.photo(i), train.size(), size, seed))
                    } else {
                        photo_at_size(train, i, size)
                    }
                })
                .collect();
            let views: Vec<&[u8]> = photos.iter().map(|p| p.as_ref()).collect();
            let x = input_tensor(&views, size, &preprocessing, &self.device);
            let y = batch_labels(train, batch, &self.device);
            let mask = self.dropout_mask(batch.len());
            let logits = self.cnn.forward_masked(x, mask);
            let loss = loss_fn.forward(logits.clone(), y.clone());
            loss_sum = loss_sum + loss.clone().detach().mul_scalar(batch.len() as f32);
            correct = correct
                + logits
                    .detach()
                    .argmax(1)
                    .flatten::<1>(0, 1)
                    .equal(y)
                    .int()
                    .sum();
            let grads = GradientsParams::from_grads(loss.backward(), &self.cnn);
            self.cnn = self
                .optimizer
                .step(self.config.learning_rate, self.cnn.clone(), grads);
        }
        let loss = read_f32(loss_sum).await?[0] / train.len() as f32;
        if !loss.is_finite() {
            return Err(TrainError::NonFiniteLoss {
                epoch,
                value: loss,
                learning_rate: self.config.learning_rate,
            });
        }
        let correct = read_i64(correct).await?[0];
        let validation_metrics = self.measure(validation).await?;
        self.epochs_done = epoch;
        Ok(EpochReport {
            epoch,
            train_photos: train.len(),
            train: PassMetrics {
                loss,
                accuracy: correct as f32 / train.len() as f32,
            },
            validation: validation_metrics,
        })
    }

    /// Loss and accuracy on `set` without training, dropout or augmentation (`None` for an
    /// empty set).
    pub async fn measure(&self, set: &PhotoSet) -> Result<Option<PassMetrics>, TrainError> {
        if set.is_empty() {
            return Ok(None);
        }
        let (loss_sum, predictions) = infer(&self.cnn.valid(), &self.cnn_config, set).await?;
        let correct = predictions
            .iter()
            .zip(set.labels())
            .filter(|(p, l)| p == l)
            .count();
        Ok(Some(PassMetrics {
            loss: loss_sum / set.len() as f32,
            accuracy: correct as f32 / set.len() as f32,
        }))
    }

    /// Predictions, per-class accuracy and confusion matrix on `set`.
    pub async fn evaluate(&self, set: &PhotoSet, classes: usize) -> Result<Evaluation, TrainError> {
        evaluate_scratch_cnn(&self.cnn.valid(), &self.cnn_config, set, classes).await
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::weights::WeightsBuilder;

    /// A small network for 16x16 photos: fast enough for two shared cores.
    fn tiny() -> ScratchCnnConfig {
        ScratchCnnConfig {
            input_size: 16,
            channels: [4, 8, 8],
            hidden: 16,
            dropout: 0.1,
        }
    }

    /// 16x16 photos of grey noise with a 6x6 square in red, green or blue (the class) at a
    /// random place.
    fn coloured_squares(per_class: usize, seed: u64) -> PhotoSet {
        let mut rng = SeededRng::seed_from_u64(seed);
        let mut set = PhotoSet::new(16);
        for _ in 0..per_class {
            for class in 0..3 {
                let mut photo: Vec<u8> = (0..16 * 16)
                    .flat_map(|_| [rng.random_range(60..140u8); 3])
                    .collect();
                let (top, left) = (rng.random_range(0..10), rng.random_range(0..10));
                for y in top..top + 6 {
                    for x in left..left + 6 {
                        let at = (y * 16 + x) * 3;
                        photo[at..at + 3].copy_from_slice(&[30, 30, 30]);
                        photo[at + class] = 230;
                    }
                }
                set.push(&photo, class);
            }
        }
        set
    }

    fn training(epochs: usize, seed: u64, augment: bool) -> ScratchTrainingConfig {
        ScratchTrainingConfig {
            epochs,
            learning_rate: 3e-3,
            batch_size: 16,
            seed,
            augment,
        }
    }

    #[test]
    fn learns_coloured_squares_and_reports_every_epoch() {
        let device = Device::flex().autodiff();
        let mut trainer = ScratchTrainer::new(training(12, 1, false), tiny(), 3, &device);
        let (train, validation) = (coloured_squares(30, 1), coloured_squares(10, 2));
        let mut last = None;
        for epoch in 1..=12 {
            let report = pollster::block_on(trainer.run_epoch(&train, &validation)).unwrap();
            assert_eq!(report.epoch, epoch);
            assert_eq!(report.train_photos, 90);
            last = Some(report);
        }
        let last = last.unwrap();
        assert_eq!(trainer.epochs_done(), 12);
        assert!(last.validation.unwrap().accuracy > 0.95, "{last:?}");
        let evaluation = pollster::block_on(trainer.evaluate(&validation, 3)).unwrap();
        assert_eq!(evaluation.predictions.len(), 30);
        assert!((evaluation.accuracy - last.validation.unwrap().accuracy).abs() < 1e-6);
    }

    #[test]
    fn the_same_seed_gives_the_same_reports() {
        let (train, validation) = (coloured_squares(6, 3), coloured_squares(3, 4));
        let run = |seed| {
            let device = Device::flex().autodiff();
            let mut trainer = ScratchTrainer::new(training(2, seed, true), tiny(), 3, &device);
            (0..2)
                .map(|_| pollster::block_on(trainer.run_epoch(&train, &validation)).unwrap())
                .collect::<Vec<_>>()
        };
        let first = run(7);
        assert_eq!(first, run(7));
        assert_ne!(first, run(8));
    }

    #[test]
    fn exported_parameters_load_back_to_the_same_logits() {
        let device = Device::flex();
        let config = tiny();
        let cnn = config.init(3, 5, &device);
        let parameters = pollster::block_on(cnn.parameters()).unwrap();
        let expected = config.parameter_shapes(3);
        assert_eq!(parameters.len(), expected.len());
        let mut builder = WeightsBuilder::new(ARCHITECTURE, config.preprocessing(), vec![]);
        for ((name, tensor), (expected_name, shape)) in parameters.into_iter().zip(&expected) {
            assert_eq!((&name, &tensor.shape), (expected_name, shape));
            builder.add_f32(name, tensor.shape, tensor.values).unwrap();
        }
        let count: usize = expected
            .iter()
            .map(|(_, s)| s.iter().product::<usize>())
            .sum();
        assert_eq!(config.parameter_count(3), count);
        let weights = WebWeights::from_bytes(&builder.to_bytes()).unwrap();
        let loaded = ScratchCnn::from_parameters(&config, 3, &weights, &device).unwrap();

        let photos = coloured_squares(2, 9);
        let views: Vec<&[u8]> = (0..photos.len()).map(|i| photos.photo(i)).collect();
        let input = input_tensor(&views, 16, &config.preprocessing(), &device);
        let before = pollster::block_on(read_f32(cnn.forward(input.clone()))).unwrap();
        let after = pollster::block_on(read_f32(loaded.forward(input))).unwrap();
        assert_eq!(before.len(), photos.len() * 3);
        assert_eq!(before, after);
    }

    #[test]
    fn refuses_parameters_of_another_shape() {
        let device = Device::flex();
        let config = tiny();
        let parameters = pollster::block_on(config.init(3, 5, &device).parameters()).unwrap();
        let mut builder = WeightsBuilder::new(ARCHITECTURE, config.preprocessing(), vec![]);
        for (name, tensor) in parameters {
            builder.add_f32(name, tensor.shape, tensor.values).unwrap();
        }
        let weights = WebWeights::from_bytes(&builder.to_bytes()).unwrap();
        // Four classes where the file has three.
        let error = ScratchCnn::from_parameters(&config, 4, &weights, &device).unwrap_err();
        assert_eq!(
            error,
            WeightsError::ShapeMismatch {
                name: "output.weight".into(),
                found: vec![16, 3],
                expected: vec![16, 4],
            }
        );
        let wider = ScratchCnnConfig {
            channels: [4, 8, 12],
            ..config
        };
        let error = ScratchCnn::from_parameters(&wider, 3, &weights, &device).unwrap_err();
        assert!(
            matches!(&error, WeightsError::ShapeMismatch { name, .. } if name == "conv3.weight"),
            "{error}"
        );
    }

    #[test]
    fn augmentation_keeps_sizes_and_follows_its_seed() {
        let photo: Vec<u8> = (0..20 * 20 * 3).map(|i| (i * 7 % 256) as u8).collect();
        let first = augment_photo(&photo, 20, 16, 1);
        assert_eq!(first.len(), 16 * 16 * 3);
        assert_eq!(first, augment_photo(&photo, 20, 16, 1));
        assert!((2..10).any(|seed| augment_photo(&photo, 20, 16, seed) != first));
        assert_eq!(resize_photo(&photo, 20, 20), photo);
        assert_eq!(resize_photo(&photo, 20, 8).len(), 8 * 8 * 3);

        // A full-window flip mirrors every row exactly.
        let flipped = sample_window(&photo, 20, [0.0, 0.0, 20.0], true, 20);
        for (y, x) in [(0, 0), (3, 5), (19, 19)] {
            let source = (y * 20 + 19 - x) * 3;
            let target = (y * 20 + x) * 3;
            assert_eq!(flipped[target..target + 3], photo[source..source + 3]);
        }
    }

    #[test]
    fn trains_on_photos_of_another_size_and_refuses_an_empty_set() {
        let device = Device::flex().autodiff();
        let config = ScratchCnnConfig {
            input_size: 8,
            ..tiny()
        };
        let mut trainer = ScratchTrainer::new(training(1, 2, false), config, 3, &device);
        let (train, validation) = (coloured_squares(2, 5), coloured_squares(1, 6));
        let report = pollster::block_on(trainer.run_epoch(&train, &validation)).unwrap();
        assert_eq!(report.validation.map(|v| v.accuracy >= 0.0), Some(true));
        let empty = PhotoSet::new(16);
        let error = pollster::block_on(trainer.run_epoch(&empty, &validation)).unwrap_err();
        assert!(matches!(error, TrainError::NoTrainingData));
    }
}
