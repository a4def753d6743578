//! Lesson 03: fine-tuning the top of the backbone together with the lesson 02 head.
//!
//! The backbone is split at a block boundary. Everything below it (the stem and blocks
//! `0..first_trainable_block`) stays frozen on a plain (non-autodiff) device; its output at the
//! boundary is computed once per photo and cached on the host in a [`BoundaryCache`]. Only the
//! top (blocks `first_trainable_block..`, the final 1x1 convolution `head_conv` and the linear
//! head) lives on the autodiff device and trains, so an epoch costs a fraction of a full forward
//! and backward pass.

use std::collections::HashMap;

use crate::SeededRng;
use burn::module::{Module, Param};
use burn::nn::conv::Conv2d;
use burn::nn::loss::CrossEntropyLossConfig;
use burn::nn::{Linear, PaddingConfig2d};
use burn::optim::{AdamConfig, GradientsParams, ModuleOptimizer};
use burn::tensor::{Device, Int, Tensor, TensorData};
use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};
use serde::{Deserialize, Serialize};

use crate::features::FeatureSet;
use crate::head::{EpochReport, HeadSnapshot, PassMetrics, TrainError, read_f32, read_i64};
use crate::metrics::{Evaluation, evaluate_predictions};
use crate::mobilenet_v2::{
    ConvSpec, FEATURE_WIDTH, InvertedResidual, MobileNetV2, block_specs, conv_specs, input_tensor,
    tensor_of_shape,
};
use crate::photo_set::PhotoSet;
use crate::scratch_cnn::augment_photo;
use crate::weights::{Preprocessing, TensorF32, WebWeights, WeightsError};

/// Fraction of the backbone's parameters that the default split unfreezes.
pub const TARGET_TRAINABLE_FRACTION: f64 = 0.2;
/// Photos per frozen-backbone call when filling a [`BoundaryCache`], as in lesson 02's feature
/// extraction: large enough to keep a GPU busy, small enough for a browser tab's memory.
pub const CACHE_BATCH: usize = 16;
/// Photos per forward pass when measuring or evaluating (no gradients are kept).
const MEASURE_BATCH: usize = 64;
/// Parameter prefix of the classifier head in exported parameters: `head.weight` is
/// `[FEATURE_WIDTH, classes]` (burn's `Linear` layout), `head.bias` is `[classes]`.
pub const HEAD: &str = "head";
/// Parameter name of the backbone's final 1x1 convolution.
const HEAD_CONV: &str = "head_conv";

/// Hyper-parameters of fine-tuning.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FineTuneConfig {
    /// Most passes over the training photos (early stopping may end the run sooner).
    pub epochs: usize,
    /// Adam's learning rate, for the unfrozen blocks and the head alike.
    pub learning_rate: f64,
    /// Photos per gradient step.
    pub batch_size: usize,
    /// Seed of the shuffling and of the flip choices.
    pub seed: u64,
    /// Whether each training photo is seen mirrored (left-right) in about half of the epochs.
    /// Needs a training cache built with flips ([`BoundaryCache::has_flips`]).
    pub augment: bool,
    /// Epochs without a new best validation accuracy after which training stops.
    pub patience: usize,
    /// Index of the first block that trains (0..=17); blocks below it stay frozen. 17 trains
    /// only `head_conv` and the head.
    pub first_trainable_block: usize,
    /// Random crops of each training photo cached besides the photo and its mirror when
    /// `augment` is on ([`augment_photo`]: a square of 80-100% of the side, mirrored at random);
    /// every epoch then shows each photo as one of its cached views, picked at random.
    #[serde(default)]
    pub crops_per_photo: usize,
}

impl Default for FineTuneConfig {
    fn default() -> Self {
        // From `benches/lesson03.rs --sweep` on the lesson subset (500 training, 200 validation
        // photos), starting from the lesson 02 head (validation 0.865), split before block 17:
        // Adam at 1e-4 lowers the validation loss every epoch (0.395 -> 0.366 over 15 epochs) and
        // never drops below the start; its best accuracy (0.880) comes in epoch 1, so a patience
        // of 4 ends the run after 5 epochs. 3e-5 gains less (best 0.875 in 20 epochs); 3e-4 and
        // 1e-3 reach 0.885 but raise the validation loss (overconfident). Splitting before
        // block 16 (40% of the parameters) gains no more (0.885 at best) for 3x the epoch time.
        // Flips: each epoch sees a fresh mix of mirrored photos at no training cost, only the
        // mirrored activations' memory.
        Self {
            epochs: 15,
            learning_rate: 1e-4,
            batch_size: 32,
            seed: 42,
            augment: true,
            patience: 4,
            first_trainable_block: default_first_trainable_block(),
            crops_per_photo: 0,
        }
    }
}

/// One stage of the network for the lesson's diagram.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StageParameters {
    /// `stem`, `blocks.{i}`, `head_conv` or `head`.
    pub name: String,
    /// Parameters (weights and biases).
    pub parameters: usize,
    /// Whether fine-tuning updates it.
    pub trains: bool,
    /// Output `[channels, height, width]` for a 224x224 photo (`[classes, 1, 1]` for the head).
    pub output_shape: [usize; 3],
}

/// Number of inverted-residual blocks, so the boundary ranges over `0..=BLOCKS`.
pub fn block_count() -> usize {
    block_specs().len()
}

fn conv_parameters(spec: &ConvSpec) -> usize {
    spec.weight_shape().iter().product::<usize>() + spec.out_channels
}

/// Parameters of every backbone stage in execution order: stem, the 17 blocks, `head_conv`.
fn backbone_stage_parameters() -> Vec<(String, usize)> {
    let mut stages: Vec<(String, usize)> = Vec::new();
    for spec in conv_specs() {
        // `blocks.3.expand` belongs to stage `blocks.3`; `stem` and `head_conv` are stages.
        let stage = match spec.name.rsplit_once('.') {
            Some((stage, _)) if spec.name.starts_with("blocks.") => stage.to_string(),
            _ => spec.name.clone(),
        };
        match stages.last_mut() {
            Some((name, count)) if *name == stage => *count += conv_parameters(&spec),
            _ => stages.push((stage, conv_parameters(&spec))),
        }
    }
    stages
}

/// Every stage with its parameter count and whether it trains when blocks
/// `first_trainable_block..` are unfrozen, for a head of `classes` classes: the stem, the 17
/// blocks, `head_conv` (always trains) and the head (always trains).
pub fn stage_parameters(first_trainable_block: usize, classes: usize) -> Vec<StageParameters> {
    let mut shape = [
        3,
        crate::mobilenet_v2::INPUT_SIZE,
        crate::mobilenet_v2::INPUT_SIZE,
    ];
    let specs = conv_specs();
    let mut stages: Vec<StageParameters> = backbone_stage_parameters()
        .into_iter()
        .enumerate()
        .map(|(index, (name, parameters))| {
            // Stage 0 is the stem, stages 1..=17 the blocks, the last one head_conv.
            let trains = index > first_trainable_block;
            for spec in specs.iter().filter(|s| stage_of(&s.name) == name) {
                shape = [
                    spec.out_channels,
                    shape[1].div_ceil(spec.stride),
                    shape[2].div_ceil(spec.stride),
                ];
            }
            StageParameters {
                name,
                parameters,
                trains,
                output_shape: shape,
            }
        })
        .collect();
    stages.push(StageParameters {
        name: HEAD.into(),
        parameters: FEATURE_WIDTH * classes + classes,
        trains: true,
        output_shape: [classes, 1, 1],
    });
    stages
}

fn stage_of(conv_name: &str) -> &str {
    match conv_name.rsplit_once('.') {
        Some((stage, _)) if conv_name.starts_with("blocks.") => stage,
        _ => conv_name,
    }
}

/// Fraction of the backbone's parameters (stem, blocks, `head_conv`; the lesson's head is not
/// counted since it is not part of the pretrained backbone) that trains when blocks
/// `first_trainable_block..` and `head_conv` are unfrozen.
pub fn trainable_fraction(first_trainable_block: usize) -> f64 {
    let stages = backbone_stage_parameters();
    let total: usize = stages.iter().map(|(_, n)| n).sum();
    // Stage 0 is the stem; block i is stage i + 1.
    let trainable: usize = stages
        .iter()
        .skip(first_trainable_block + 1)
        .map(|(_, n)| n)
        .sum();
    trainable as f64 / total as f64
}

/// The boundary whose trainable part (blocks from it on plus `head_conv`) is closest to
/// [`TARGET_TRAINABLE_FRACTION`] of the backbone's parameters.
///
/// For MobileNetV2 this is 17: `head_conv` alone (320 -> 1280 channels) holds 18.6% of the
/// parameters, and adding block 16 would make it 40%, since the top layers are the widest.
pub fn default_first_trainable_block() -> usize {
    (0..=block_count())
        .min_by(|&a, &b| {
            let distance = |block| (trainable_fraction(block) - TARGET_TRAINABLE_FRACTION).abs();
            distance(a).total_cmp(&distance(b))
        })
        .unwrap_or(block_count())
}

/// Shape `[channels, height, width]` of the activations entering block `first_trainable_block`
/// for a `size` x `size` photo (TensorFlow `SAME` padding: each stride-2 step rounds up).
pub fn boundary_shape(first_trainable_block: usize, size: usize) -> [usize; 3] {
    let stem = &conv_specs()[0];
    let mut shape = [
        stem.out_channels,
        size.div_ceil(stem.stride),
        size.div_ceil(stem.stride),
    ];
    for block in block_specs().iter().take(first_trainable_block) {
        shape = [
            block.out_channels,
            shape[1].div_ceil(block.stride),
            shape[2].div_ceil(block.stride),
        ];
    }
    shape
}

/// Mirrors a `[size, size, 3]` u8 photo left to right.
pub fn flip_horizontal(photo: &[u8], size: usize) -> Vec<u8> {
    photo
        .chunks_exact(size * 3)
        .flat_map(|row| row.chunks_exact(3).rev().flatten().copied())
        .collect()
}

/// Activations of labelled photos at the fine-tuning boundary, kept on the host: every epoch
/// reuses them instead of re-running the frozen lower part of the backbone.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BoundaryCache {
    first_trainable_block: usize,
    shape: [usize; 3],
    values: Vec<f32>,
    /// Activations of the mirrored photos, when flip augmentation is wanted. Mirroring the
    /// cached activations instead would not equal the activations of the mirrored photo (the
    /// 3x3 kernels are not symmetric and `SAME` padding pads only the bottom and right), so
    /// both versions go through the frozen part once.
    flipped: Option<Vec<f32>>,
    /// Activations of `crops_per_photo` random crops per photo ([`crop_seed`] picks each one),
    /// photo after photo.
    #[serde(default)]
    crops: Vec<f32>,
    #[serde(default)]
    crops_per_photo: usize,
    #[serde(default)]
    crop_seed: u64,
    labels: Vec<usize>,
}

/// Seed of crop `crop` of photo `photo` (its index in the cache) for a cache seeded `seed`:
/// the CLI, the browser and an uncached epoch all cut the same crops.
pub fn crop_seed(seed: u64, photo: usize, crop: usize) -> u64 {
    seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ (((photo as u64) << 16) | crop as u64)
}

/// View `view` of a `[size, size, 3]` training photo `photo` (its index in the set) as a
/// [`BoundaryCache`] with flips and `crops_per_photo` crops seeded `seed` holds it: 0 is the
/// photo, 1 its mirror image, `2..` its random crops.
pub fn photo_view(photo: &[u8], index: usize, size: usize, view: usize, seed: u64) -> Vec<u8> {
    match view {
        0 => photo.to_vec(),
        1 => flip_horizontal(photo, size),
        crop => augment_photo(photo, size, size, crop_seed(seed, index, crop - 2)),
    }
}

impl BoundaryCache {
    /// An empty cache of activations `[channels, height, width]` = `shape` entering block
    /// `first_trainable_block`; `with_flips` also keeps the mirrored photos' activations.
    pub fn new(first_trainable_block: usize, shape: [usize; 3], with_flips: bool) -> Self {
        Self {
            first_trainable_block,
            shape,
            values: Vec::new(),
            flipped: with_flips.then(Vec::new),
            crops: Vec::new(),
            crops_per_photo: 0,
            crop_seed: 0,
            labels: Vec::new(),
        }
    }

    /// The empty training cache that `config` asks for: activations of `size` x `size` photos
    /// entering its first trainable block, with mirrored photos and `crops_per_photo` random
    /// crops (seeded by `config.seed`) when `config.augment` is on.
    pub fn for_training(config: &FineTuneConfig, size: usize) -> Self {
        let block = config.first_trainable_block;
        let cache = Self::new(block, boundary_shape(block, size), config.augment);
        if config.augment {
            cache.with_crops(config.crops_per_photo, config.seed)
        } else {
            cache
        }
    }

    /// The same empty cache keeping `crops_per_photo` random crops per photo too, cut with
    /// seeds from [`crop_seed`]`(seed, ..)`.
    pub fn with_crops(self, crops_per_photo: usize, seed: u64) -> Self {
        assert!(self.is_empty(), "choose the crops before filling the cache");
        Self {
            crops_per_photo,
            crop_seed: seed,
            ..self
        }
    }

    /// Appends photos: `values` (and `flipped`, when the cache keeps flips) hold `labels.len()`
    /// rows of [`Self::photo_len`] values.
    pub fn extend(&mut self, values: &[f32], flipped: Option<&[f32]>, labels: &[usize]) {
        self.extend_with_crops(values, flipped, &[], labels);
    }

    /// [`Self::extend`] for a cache that keeps crops: `crops` holds [`Self::crops_per_photo`]
    /// rows per photo, photo after photo.
    pub fn extend_with_crops(
        &mut self,
        values: &[f32],
        flipped: Option<&[f32]>,
        crops: &[f32],
        labels: &[usize],
    ) {
        assert_eq!(
            crops.len(),
            values.len() * self.crops_per_photo,
            "boundary activations and crops disagree"
        );
        assert_eq!(
            values.len(),
            labels.len() * self.photo_len(),
            "boundary activations and labels disagree"
        );
        match (&mut self.flipped, flipped) {
            (Some(kept), Some(flipped)) => {
                assert_eq!(flipped.len(), values.len(), "flipped activations disagree");
                kept.extend_from_slice(flipped);
            }
            (None, _) => {}
            (Some(_), None) => panic!("this cache keeps flipped activations: pass them"),
        }
        self.values.extend_from_slice(values);
        self.crops.extend_from_slice(crops);
        self.labels.extend_from_slice(labels);
    }

    /// Runs the frozen lower part of `backbone` (on its plain device) on one batch of photos
    /// (`[size, size, 3]` u8 each, `size` = the cache's input size) and appends the results;
    /// mirrored copies and random crops go through too when the cache keeps them.
    pub async fn extend_from_photos(
        &mut self,
        backbone: &MobileNetV2,
        photos: &[&[u8]],
        labels: &[usize],
        size: usize,
        preprocessing: &Preprocessing,
        device: &Device,
    ) -> Result<(), TrainError> {
        let block = self.first_trainable_block;
        let values =
            boundary_activations(backbone, photos, size, preprocessing, block, device).await?;
        let flipped = match self.flipped {
            Some(_) => {
                let mirrored: Vec<Vec<u8>> =
                    photos.iter().map(|p| flip_horizontal(p, size)).collect();
                let views: Vec<&[u8]> = mirrored.iter().map(Vec::as_slice).collect();
                Some(
                    boundary_activations(backbone, &views, size, preprocessing, block, device)
                        .await?,
                )
            }
            None => None,
        };
        let mut crops = Vec::with_capacity(values.len() * self.crops_per_photo);
        if self.crops_per_photo > 0 {
            let cut: Vec<Vec<u8>> = photos
                .iter()
                .enumerate()
                .flat_map(|(position, photo)| {
                    (0..self.crops_per_photo).map(move |crop| (position, photo, crop))
                })
                .map(|(position, photo, crop)| {
                    let seed = crop_seed(self.crop_seed, self.len() + position, crop);
                    augment_photo(photo, size, size, seed)
                })
                .collect();
            for chunk in cut.chunks(CACHE_BATCH) {
                let views: Vec<&[u8]> = chunk.iter().map(Vec::as_slice).collect();
                crops.extend(
                    boundary_activations(backbone, &views, size, preprocessing, block, device)
                        .await?,
                );
            }
        }
        self.extend_with_crops(&values, flipped.as_deref(), &crops, labels);
        Ok(())
    }

    /// The block the cached activations enter.
    pub fn first_trainable_block(&self) -> usize {
        self.first_trainable_block
    }

    /// `[channels, height, width]` of one photo's activations.
    pub fn shape(&self) -> [usize; 3] {
        self.shape
    }

    /// Values per photo.
    pub fn photo_len(&self) -> usize {
        self.shape.iter().product()
    }

    /// Number of photos.
    pub fn len(&self) -> usize {
        self.labels.len()
    }

    /// Whether the cache holds no photo.
    pub fn is_empty(&self) -> bool {
        self.labels.is_empty()
    }

    /// Whether the mirrored photos' activations are kept too.
    pub fn has_flips(&self) -> bool {
        self.flipped.is_some()
    }

    /// Random crops kept per photo.
    pub fn crops_per_photo(&self) -> usize {
        self.crops_per_photo
    }

    /// Cached views of every photo: the photo, its mirror image (with flips) and its crops.
    pub fn views(&self) -> usize {
        1 + usize::from(self.has_flips()) + self.crops_per_photo
    }

    /// Class index of every photo.
    pub fn labels(&self) -> &[usize] {
        &self.labels
    }

    /// Bytes held on the host.
    pub fn bytes(&self) -> usize {
        let values = self.values.len() + self.flipped.as_ref().map_or(0, Vec::len);
        (values + self.crops.len()) * 4 + self.labels.len() * 8
    }

    /// Activations `[C, H, W]` (row-major) of photo `index`, of the mirrored photo when
    /// `flipped` and the cache keeps flips.
    pub fn activations(&self, index: usize, flipped: bool) -> &[f32] {
        let len = self.photo_len();
        let values = match (&self.flipped, flipped) {
            (Some(mirrored), true) => mirrored,
            _ => &self.values,
        };
        &values[index * len..(index + 1) * len]
    }

    /// Activations of view `view` (`0..`[`Self::views`]) of photo `index`: 0 is the photo, then
    /// its mirror image (when the cache keeps flips), then its random crops.
    pub fn view(&self, index: usize, view: usize) -> &[f32] {
        let len = self.photo_len();
        let crop = match (view, self.has_flips()) {
            (0, _) => return self.activations(index, false),
            (1, true) => return self.activations(index, true),
            (view, flips) => view - 1 - usize::from(flips),
        };
        let row = index * self.crops_per_photo + crop;
        &self.crops[row * len..(row + 1) * len]
    }

    /// Pooled features `[len, 1280]` of every cached photo (not the mirrored ones) through the
    /// frozen, pretrained top of `backbone` on `device` (a plain device): exactly what lesson 02's
    /// head trains on, without running the lower part of the backbone again.
    pub async fn pooled_features(
        &self,
        backbone: &MobileNetV2,
        device: &Device,
    ) -> Result<FeatureSet, TrainError> {
        let mut set = FeatureSet::new(FEATURE_WIDTH);
        let indices: Vec<usize> = (0..self.len()).collect();
        for batch in indices.chunks(MEASURE_BATCH) {
            let activations = self.batch(batch, &[], device);
            let rows =
                read_f32(backbone.features_from(activations, self.first_trainable_block)).await?;
            let labels: Vec<usize> = batch.iter().map(|&i| self.labels[i]).collect();
            set.extend(&rows, &labels);
        }
        Ok(set)
    }

    /// Photos `indices` (as the views `views` names, the photo itself where it names none) as a
    /// tensor `[batch, C, H, W]`.
    fn batch(&self, indices: &[usize], views: &[usize], device: &Device) -> Tensor<4> {
        let mut values = Vec::with_capacity(indices.len() * self.photo_len());
        for (position, &index) in indices.iter().enumerate() {
            let view = views.get(position).copied().unwrap_or(0);
            values.extend_from_slice(self.view(index, view));
        }
        let [channels, height, width] = self.shape;
        Tensor::from_data(
            TensorData::new(values, [indices.len(), channels, height, width]),
            device,
        )
    }
}

/// Activations entering block `first_trainable_block`, `photos.len()` rows of
/// `boundary_shape(first_trainable_block, size)` values each (`[C, H, W]` row-major), computed by
/// the frozen stem and blocks on `device` (a plain device: nothing here trains).
pub async fn boundary_activations(
    backbone: &MobileNetV2,
    photos: &[&[u8]],
    size: usize,
    preprocessing: &Preprocessing,
    first_trainable_block: usize,
    device: &Device,
) -> Result<Vec<f32>, TrainError> {
    if photos.is_empty() {
        return Ok(Vec::new());
    }
    let input = input_tensor(photos, size, preprocessing, device);
    read_f32(backbone.forward_until(input, first_trainable_block)).await
}

/// Fills a [`BoundaryCache`] from a photo set, [`CACHE_BATCH`] photos per backbone call.
pub async fn cache_boundary(
    backbone: &MobileNetV2,
    photos: &PhotoSet,
    first_trainable_block: usize,
    with_flips: bool,
    preprocessing: &Preprocessing,
    device: &Device,
) -> Result<BoundaryCache, TrainError> {
    let shape = boundary_shape(first_trainable_block, photos.size());
    let cache = BoundaryCache::new(first_trainable_block, shape, with_flips);
    fill_boundary_cache(cache, backbone, photos, preprocessing, device).await
}

/// Appends every photo of `photos` (with the views `cache` keeps) to `cache`, [`CACHE_BATCH`]
/// photos per backbone call.
pub async fn fill_boundary_cache(
    mut cache: BoundaryCache,
    backbone: &MobileNetV2,
    photos: &PhotoSet,
    preprocessing: &Preprocessing,
    device: &Device,
) -> Result<BoundaryCache, TrainError> {
    let indices: Vec<usize> = (0..photos.len()).collect();
    for batch in indices.chunks(CACHE_BATCH) {
        let views: Vec<&[u8]> = batch.iter().map(|&i| photos.photo(i)).collect();
        let labels: Vec<usize> = batch.iter().map(|&i| photos.labels()[i]).collect();
        cache
            .extend_from_photos(
                backbone,
                &views,
                &labels,
                photos.size(),
                preprocessing,
                device,
            )
            .await?;
    }
    Ok(cache)
}

/// ReLU6: `min(max(x, 0), 6)`.
fn relu6<const D: usize>(x: Tensor<D>) -> Tensor<D> {
    x.clamp(0.0, 6.0)
}

/// The part of the network that fine-tuning trains: blocks `first_trainable_block..`, the final
/// 1x1 convolution and the linear head.
#[derive(Module, Debug)]
pub struct FineTunedTop {
    /// The unfrozen inverted-residual blocks, in order.
    pub blocks: Vec<InvertedResidual>,
    /// 1x1 convolution 320 -> 1280 channels, followed by ReLU6 and global average pooling.
    pub head_conv: Conv2d,
    /// `[1280] -> [classes]`.
    pub head: Linear,
}

impl FineTunedTop {
    /// Pooled features `[batch, 1280]` of boundary activations `[batch, C, H, W]`.
    pub fn features(&self, activations: Tensor<4>) -> Tensor<2> {
        let x = self
            .blocks
            .iter()
            .fold(activations, |x, block| block.forward(x));
        let x = relu6(self.head_conv.forward(x));
        let [batch, channels, _, _] = x.dims();
        x.mean_dim(3).mean_dim(2).reshape([batch, channels])
    }

    /// Logits `[batch, classes]` of boundary activations `[batch, C, H, W]`.
    pub fn forward(&self, activations: Tensor<4>) -> Tensor<2> {
        self.head.forward(self.features(activations))
    }

    /// Number of classes of the head.
    pub fn classes(&self) -> usize {
        self.head.weight.dims()[1]
    }

    /// The convolutions in the order of `top_conv_specs`.
    fn convs(&self) -> Vec<&Conv2d> {
        let mut convs = Vec::new();
        for block in &self.blocks {
            convs.extend(block.expand.as_ref());
            convs.push(&block.depthwise);
            convs.push(&block.project);
        }
        convs.push(&self.head_conv);
        convs
    }

    /// Reads every parameter back to the host, named as in the backbone's weight files plus
    /// `head.weight` `[1280, classes]` and `head.bias` `[classes]`.
    async fn read_parameters(
        &self,
        first_trainable_block: usize,
    ) -> Result<Vec<(String, TensorF32)>, TrainError> {
        let mut parameters = Vec::new();
        for (spec, conv) in top_conv_specs(first_trainable_block)
            .iter()
            .zip(self.convs())
        {
            parameters.push(read_conv_weight(spec, conv).await?);
            parameters.push(read_conv_bias(spec, conv).await?);
        }
        let classes = self.classes();
        parameters.push((
            format!("{HEAD}.weight"),
            TensorF32 {
                shape: vec![FEATURE_WIDTH, classes],
                values: read_f32(self.head.weight.val()).await?,
            },
        ));
        let bias = match &self.head.bias {
            Some(bias) => read_f32(bias.val()).await?,
            None => vec![0.0; classes],
        };
        parameters.push((
            format!("{HEAD}.bias"),
            TensorF32 {
                shape: vec![classes],
                values: bias,
            },
        ));
        Ok(parameters)
    }
}

async fn read_conv_weight(
    spec: &ConvSpec,
    conv: &Conv2d,
) -> Result<(String, TensorF32), TrainError> {
    Ok((
        format!("{}.weight", spec.name),
        TensorF32 {
            shape: spec.weight_shape().to_vec(),
            values: read_f32(conv.weight.val()).await?,
        },
    ))
}

async fn read_conv_bias(spec: &ConvSpec, conv: &Conv2d) -> Result<(String, TensorF32), TrainError> {
    let values = match &conv.bias {
        Some(bias) => read_f32(bias.val()).await?,
        None => vec![0.0; spec.out_channels],
    };
    Ok((
        format!("{}.bias", spec.name),
        TensorF32 {
            shape: vec![spec.out_channels],
            values,
        },
    ))
}

/// Specs of the convolutions in blocks `first_trainable_block..` and `head_conv`.
fn top_conv_specs(first_trainable_block: usize) -> Vec<ConvSpec> {
    conv_specs()
        .into_iter()
        .filter(|spec| {
            spec.name == HEAD_CONV
                || spec
                    .name
                    .strip_prefix("blocks.")
                    .and_then(|rest| rest.split('.').next())
                    .and_then(|index| index.parse::<usize>().ok())
                    .is_some_and(|index| index >= first_trainable_block)
        })
        .collect()
}

/// A convolution of `spec` from named host tensors, shape-checked.
fn conv_from_tensors(
    spec: &ConvSpec,
    tensor: &impl Fn(&str) -> Result<TensorF32, WeightsError>,
    device: &Device,
) -> Result<Conv2d, WeightsError> {
    let weight_name = format!("{}.weight", spec.name);
    let bias_name = format!("{}.bias", spec.name);
    let weight = tensor_of_shape::<4>(
        &weight_name,
        tensor(&weight_name)?,
        spec.weight_shape(),
        device,
    )?;
    let bias = tensor_of_shape::<1>(&bias_name, tensor(&bias_name)?, [spec.out_channels], device)?;
    Ok(Conv2d {
        weight: Param::from_tensor(weight),
        bias: Some(Param::from_tensor(bias)),
        stride: [spec.stride, spec.stride],
        kernel_size: [spec.kernel, spec.kernel],
        dilation: [1, 1],
        groups: spec.groups,
        padding: PaddingConfig2d::Same,
    })
}

/// Builds the top from named host tensors (see [`FineTuner::parameters`]) on `device`.
fn top_from_tensors(
    first_trainable_block: usize,
    tensor: impl Fn(&str) -> Result<TensorF32, WeightsError>,
    device: &Device,
) -> Result<FineTunedTop, WeightsError> {
    let specs = top_conv_specs(first_trainable_block);
    let mut convs = specs
        .iter()
        .map(|spec| conv_from_tensors(spec, &tensor, device))
        .collect::<Result<Vec<_>, _>>()?
        .into_iter();
    let mut blocks = Vec::new();
    for spec in block_specs().iter().skip(first_trainable_block) {
        let expand = if spec.has_expansion() {
            convs.next()
        } else {
            None
        };
        // `top_conv_specs` lists exactly these convolutions, so the iterator cannot run dry;
        // report a missing tensor rather than panic if the two ever disagree.
        let (Some(depthwise), Some(project)) = (convs.next(), convs.next()) else {
            return Err(WeightsError::MissingTensor(format!(
                "blocks.{}",
                first_trainable_block + blocks.len()
            )));
        };
        blocks.push(InvertedResidual {
            expand,
            depthwise,
            project,
            residual: spec.has_residual(),
        });
    }
    let head_conv = convs
        .next()
        .ok_or_else(|| WeightsError::MissingTensor(format!("{HEAD_CONV}.weight")))?;

    let bias_name = format!("{HEAD}.bias");
    let bias = tensor(&bias_name)?;
    let [classes] = bias.shape[..] else {
        return Err(WeightsError::ShapeMismatch {
            name: bias_name,
            expected: vec![bias.values.len()],
            found: bias.shape,
        });
    };
    let weight_name = format!("{HEAD}.weight");
    let weight = tensor_of_shape::<2>(
        &weight_name,
        tensor(&weight_name)?,
        [FEATURE_WIDTH, classes],
        device,
    )?;
    let bias = tensor_of_shape::<1>(&bias_name, bias, [classes], device)?;
    Ok(FineTunedTop {
        blocks,
        head_conv,
        head: Linear {
            weight: Param::from_tensor(weight),
            bias: Some(Param::from_tensor(bias)),
        },
    })
}

/// Looks a tensor up in a list of named host tensors.
fn lookup(parameters: &[(String, TensorF32)], name: &str) -> Result<TensorF32, WeightsError> {
    parameters
        .iter()
        .find(|(n, _)| n == name)
        .map(|(_, t)| t.clone())
        .ok_or_else(|| WeightsError::MissingTensor(name.to_string()))
}

/// The backbone's convolutions by parameter prefix (`stem`, `blocks.3.depthwise`, ...).
fn backbone_convs(backbone: &MobileNetV2) -> HashMap<String, &Conv2d> {
    let mut convs = HashMap::new();
    convs.insert("stem".to_string(), &backbone.stem);
    for (index, block) in backbone.blocks.iter().enumerate() {
        if let Some(expand) = &block.expand {
            convs.insert(format!("blocks.{index}.expand"), expand);
        }
        convs.insert(format!("blocks.{index}.depthwise"), &block.depthwise);
        convs.insert(format!("blocks.{index}.project"), &block.project);
    }
    convs.insert(HEAD_CONV.to_string(), &backbone.head_conv);
    convs
}

/// A lesson 02 head as named host tensors `head.weight` `[1280, classes]`, `head.bias`.
fn head_tensors(head: &HeadSnapshot) -> [(String, TensorF32); 2] {
    [
        (
            format!("{HEAD}.weight"),
            TensorF32 {
                shape: vec![head.feature_width, head.classes],
                values: head.weight.clone(),
            },
        ),
        (
            format!("{HEAD}.bias"),
            TensorF32 {
                shape: vec![head.classes],
                values: head.bias.clone(),
            },
        ),
    ]
}

/// A complete fine-tuned classifier for inference: the frozen lower part of the backbone and the
/// trained top.
#[derive(Debug)]
pub struct FineTunedClassifier {
    /// The pretrained backbone; only its stem and blocks `..first_trainable_block` are used.
    pub backbone: MobileNetV2,
    /// The trained blocks, `head_conv` and head.
    pub top: FineTunedTop,
    /// Where the backbone hands over to the top.
    pub first_trainable_block: usize,
}

impl FineTunedClassifier {
    /// Rebuilds the classifier from `backbone` (already on `device`) and a weight file holding
    /// the tensors of [`FineTuner::parameters`] for the same `first_trainable_block`; every shape
    /// is checked ([`WeightsError::ShapeMismatch`], [`WeightsError::MissingTensor`]).
    pub fn from_weights(
        backbone: MobileNetV2,
        weights: &WebWeights,
        first_trainable_block: usize,
        device: &Device,
    ) -> Result<Self, WeightsError> {
        check_boundary(first_trainable_block)?;
        let top = top_from_tensors(first_trainable_block, |name| weights.tensor(name), device)?;
        Ok(Self {
            backbone,
            top,
            first_trainable_block,
        })
    }

    /// Pooled features `[batch, 1280]` of a normalised input `[batch, 3, size, size]`.
    pub fn features(&self, input: Tensor<4>) -> Tensor<2> {
        let activations = self
            .backbone
            .forward_until(input, self.first_trainable_block);
        self.top.features(activations)
    }

    /// Logits `[batch, classes]` of a normalised input `[batch, 3, size, size]`.
    pub fn logits(&self, input: Tensor<4>) -> Tensor<2> {
        self.top.head.forward(self.features(input))
    }

    /// Number of classes.
    pub fn classes(&self) -> usize {
        self.top.classes()
    }
}

fn check_boundary(first_trainable_block: usize) -> Result<(), WeightsError> {
    if first_trainable_block > block_count() {
        return Err(WeightsError::MissingTensor(format!(
            "blocks.{first_trainable_block}"
        )));
    }
    Ok(())
}

/// The best weights seen so far, on the host.
#[derive(Debug, Clone)]
struct BestWeights {
    epoch: usize,
    accuracy: Option<f32>,
    parameters: Vec<(String, TensorF32)>,
}

/// Fine-tunes the top of a backbone epoch by epoch, keeping the weights of the epoch with the
/// best validation accuracy, so that a caller can report progress and stop between epochs.
pub struct FineTuner {
    top: FineTunedTop,
    optimizer: ModuleOptimizer,
    config: FineTuneConfig,
    device: Device,
    rng: SeededRng,
    epochs_done: usize,
    best: Option<BestWeights>,
    epochs_since_best: usize,
}

impl FineTuner {
    /// Copies blocks `config.first_trainable_block..` and `head_conv` of `backbone` and the
    /// lesson 02 `head` onto `device` (an autodiff device). The backbone itself is not changed.
    pub async fn new(
        config: FineTuneConfig,
        backbone: &MobileNetV2,
        head: &HeadSnapshot,
        device: &Device,
    ) -> Result<Self, TrainError> {
        let first = config.first_trainable_block.min(block_count());
        // The lesson 02 head was trained on the backbone's pooled features; a head of another
        // width cannot sit on this top.
        assert_eq!(
            head.feature_width, FEATURE_WIDTH,
            "the head does not read MobileNetV2 features"
        );
        let convs = backbone_convs(backbone);
        let mut parameters = Vec::new();
        for spec in top_conv_specs(first) {
            let Some(conv) = convs.get(spec.name.as_str()) else {
                continue;
            };
            parameters.push(read_conv_weight(&spec, conv).await?);
            parameters.push(read_conv_bias(&spec, conv).await?);
        }
        parameters.extend(head_tensors(head));
        let config = FineTuneConfig {
            first_trainable_block: first,
            ..config
        };
        // The tensors were just read from a valid backbone and head, so their shapes fit.
        Self::from_parameters(config, &parameters, device)
            .map_err(|e| TrainError::Device(e.to_string()))
    }

    /// Continues from parameters exported by [`Self::parameters`] (for example after moving
    /// from a lost GPU to the CPU). The optimizer's moments restart from zero.
    pub fn from_parameters(
        config: FineTuneConfig,
        parameters: &[(String, TensorF32)],
        device: &Device,
    ) -> Result<Self, WeightsError> {
        check_boundary(config.first_trainable_block)?;
        let top = top_from_tensors(
            config.first_trainable_block,
            |name| lookup(parameters, name),
            device,
        )?;
        Ok(Self {
            top,
            optimizer: AdamConfig::new().init(),
            rng: SeededRng::seed_from_u64(config.seed),
            config,
            device: device.clone(),
            epochs_done: 0,
            best: None,
            epochs_since_best: 0,
        })
    }

    /// The configuration in use.
    pub fn config(&self) -> &FineTuneConfig {
        &self.config
    }

    /// Epochs finished so far.
    pub fn epochs_done(&self) -> usize {
        self.epochs_done
    }

    /// The 1-based epoch whose weights are kept (best validation accuracy, the earliest on ties).
    pub fn best_epoch(&self) -> Option<usize> {
        self.best.as_ref().map(|b| b.epoch)
    }

    /// Validation accuracy of the kept weights.
    pub fn best_validation_accuracy(&self) -> Option<f32> {
        self.best.as_ref().and_then(|b| b.accuracy)
    }

    /// Whether early stopping has triggered: `patience` epochs in a row brought no new best
    /// validation accuracy. (Reaching `config.epochs` is the caller's loop bound.)
    pub fn stopped_early(&self) -> bool {
        self.best.is_some() && self.epochs_since_best >= self.config.patience.max(1)
    }

    /// Whether the caller should run no more epochs: early stopping or `config.epochs` reached.
    pub fn finished(&self) -> bool {
        self.stopped_early() || self.epochs_done >= self.config.epochs
    }

    /// The top as trained so far (last epoch, not necessarily the best).
    pub fn top(&self) -> &FineTunedTop {
        &self.top
    }

    /// One pass over the cached training activations in shuffled mini-batches (each photo as
    /// one of its cached views, picked at random, when `augment` is on), then a validation pass;
    /// keeps the weights if validation accuracy is a new best.
    pub async fn run_epoch(
        &mut self,
        train: &BoundaryCache,
        validation: &BoundaryCache,
    ) -> Result<EpochReport, TrainError> {
        self.check_cache(train);
        self.check_cache(validation);
        let (order, views) = self.epoch_order(train.len(), train.views())?;
        let mut sums = TrainingSums::new(&self.device);
        for (indices, views) in order
            .chunks(self.config.batch_size.max(1))
            .zip(views.chunks(self.config.batch_size.max(1)))
        {
            let activations = train.batch(indices, views, &self.device);
            let labels = labels_tensor(indices.iter().map(|&i| train.labels()[i]), &self.device);
            self.step(activations, labels, &mut sums);
        }
        let validation_metrics = self.measure(validation).await?;
        self.finish_epoch(sums, train.len(), validation_metrics)
            .await
    }

    /// The same epoch as [`Self::run_epoch`] without any cache: every step runs the frozen lower
    /// part of `backbone` (on its plain device) on the photos again, and validation runs the
    /// full network. Only for measuring what the cache saves.
    pub async fn run_epoch_from_photos(
        &mut self,
        backbone: &MobileNetV2,
        train: &PhotoSet,
        validation: &PhotoSet,
        preprocessing: &Preprocessing,
    ) -> Result<EpochReport, TrainError> {
        // The views a cache from `BoundaryCache::for_training` would hold.
        let views = 2 + self.config.crops_per_photo;
        let (order, views) = self.epoch_order(train.len(), views)?;
        let first = self.config.first_trainable_block;
        let frozen_device = backbone.head_conv.weight.device();
        let size = train.size();
        let seed = self.config.seed;
        let mut sums = TrainingSums::new(&self.device);
        for (indices, views) in order
            .chunks(self.config.batch_size.max(1))
            .zip(views.chunks(self.config.batch_size.max(1)))
        {
            let photos: Vec<Vec<u8>> = indices
                .iter()
                .zip(views)
                .map(|(&i, &view)| photo_view(train.photo(i), i, size, view, seed))
                .collect();
            let views: Vec<&[u8]> = photos.iter().map(Vec::as_slice).collect();
            let input = input_tensor(&views, size, preprocessing, &frozen_device);
            // Computed without autodiff, then handed to the trainable top as a constant.
            let activations = backbone
                .forward_until(input, first)
                .autodiff()
                .to_device(&self.device);
            let labels = labels_tensor(indices.iter().map(|&i| train.labels()[i]), &self.device);
            self.step(activations, labels, &mut sums);
        }
        let validation_metrics = if validation.is_empty() {
            None
        } else {
            let top = self.top.valid();
            let inner = self.device.clone().inner();
            let mut measured = MeasureSums::new(&inner);
            let indices: Vec<usize> = (0..validation.len()).collect();
            for batch in indices.chunks(MEASURE_BATCH) {
                let views: Vec<&[u8]> = batch.iter().map(|&i| validation.photo(i)).collect();
                let input = input_tensor(&views, size, preprocessing, &frozen_device);
                let activations = backbone.forward_until(input, first).to_device(&inner);
                let labels = labels_tensor(batch.iter().map(|&i| validation.labels()[i]), &inner);
                measured.add(top.forward(activations), labels);
            }
            Some(measured.read(validation.len()).await?)
        };
        self.finish_epoch(sums, train.len(), validation_metrics)
            .await
    }

    fn check_cache(&self, cache: &BoundaryCache) {
        assert_eq!(
            cache.first_trainable_block(),
            self.config.first_trainable_block,
            "the boundary cache was filled for another split; fill it again"
        );
    }

    /// This epoch's shuffled photo order and, per position, which of the photo's `views` to use
    /// (always the photo itself without augmentation).
    fn epoch_order(
        &mut self,
        photos: usize,
        views: usize,
    ) -> Result<(Vec<usize>, Vec<usize>), TrainError> {
        if photos == 0 {
            return Err(TrainError::NoTrainingData);
        }
        let mut order: Vec<usize> = (0..photos).collect();
        order.shuffle(&mut self.rng);
        let augmented = self.config.augment && views > 1;
        let views = (0..photos)
            .map(|_| {
                if augmented {
                    self.rng.random_range(0..views)
                } else {
                    0
                }
            })
            .collect();
        Ok((order, views))
    }

    /// One gradient step on a batch of boundary activations `[batch, C, H, W]`.
    fn step(&mut self, activations: Tensor<4>, labels: Tensor<1, Int>, sums: &mut TrainingSums) {
        let batch = labels.dims()[0];
        let logits = self.top.forward(activations);
        let loss = CrossEntropyLossConfig::new()
            .init(&self.device)
            .forward(logits.clone(), labels.clone());
        sums.loss = sums.loss.clone() + loss.clone().detach().mul_scalar(batch as f32);
        sums.correct = sums.correct.clone() + correct_count(logits.detach(), labels);
        let grads = GradientsParams::from_grads(loss.backward(), &self.top);
        self.top = self
            .optimizer
            .step(self.config.learning_rate, self.top.clone(), grads);
    }

    async fn finish_epoch(
        &mut self,
        sums: TrainingSums,
        photos: usize,
        validation: Option<PassMetrics>,
    ) -> Result<EpochReport, TrainError> {
        let epoch = self.epochs_done + 1;
        let loss = read_f32(sums.loss).await?[0] / photos as f32;
        if !loss.is_finite() {
            return Err(TrainError::NonFiniteLoss {
                epoch,
                value: loss,
                learning_rate: self.config.learning_rate,
            });
        }
        let correct = read_i64(sums.correct).await?[0];
        self.epochs_done = epoch;
        let accuracy = validation.map(|v| v.accuracy);
        // Without validation photos there is nothing to compare: the latest weights are kept.
        let improved = match (&self.best, accuracy) {
            (None, _) | (_, None) => true,
            (Some(best), Some(accuracy)) => best.accuracy.is_none_or(|b| accuracy > b),
        };
        if improved {
            let parameters = self
                .top
                .valid()
                .read_parameters(self.config.first_trainable_block)
                .await?;
            self.best = Some(BestWeights {
                epoch,
                accuracy,
                parameters,
            });
            self.epochs_since_best = 0;
        } else {
            self.epochs_since_best += 1;
        }
        Ok(EpochReport {
            epoch,
            train_photos: photos,
            train: PassMetrics {
                loss,
                accuracy: correct as f32 / photos as f32,
            },
            validation,
        })
    }

    /// Loss and accuracy of the current (latest) weights on cached activations, without
    /// training; `None` for an empty set. Before the first epoch this is lesson 02's model.
    pub async fn measure(&self, set: &BoundaryCache) -> Result<Option<PassMetrics>, TrainError> {
        if set.is_empty() {
            return Ok(None);
        }
        let top = self.top.valid();
        let device = self.device.clone().inner();
        let mut sums = MeasureSums::new(&device);
        let indices: Vec<usize> = (0..set.len()).collect();
        for batch in indices.chunks(MEASURE_BATCH) {
            let activations = set.batch(batch, &[], &device);
            let labels = labels_tensor(batch.iter().map(|&i| set.labels()[i]), &device);
            sums.add(top.forward(activations), labels);
        }
        Ok(Some(sums.read(set.len()).await?))
    }

    /// The kept (best) top on `device`, or the current one before any epoch.
    fn best_top(&self, device: &Device) -> Result<FineTunedTop, TrainError> {
        match &self.best {
            Some(best) => top_from_tensors(
                self.config.first_trainable_block,
                |name| lookup(&best.parameters, name),
                device,
            )
            .map_err(|e| TrainError::Device(e.to_string())),
            None => Ok(self.top.valid().to_device(device)),
        }
    }

    /// Predictions, per-class accuracy and confusion matrix of the best weights on `set`.
    pub async fn evaluate(&self, set: &BoundaryCache) -> Result<Evaluation, TrainError> {
        let device = self.device.clone().inner();
        let top = self.best_top(&device)?;
        let classes = top.classes();
        let mut predictions = Vec::with_capacity(set.len());
        let indices: Vec<usize> = (0..set.len()).collect();
        for batch in indices.chunks(MEASURE_BATCH) {
            let logits = top.forward(set.batch(batch, &[], &device));
            let predicted = read_i64(logits.argmax(1).flatten::<1>(0, 1)).await?;
            predictions.extend(predicted.into_iter().map(|p| p as usize));
        }
        Ok(evaluate_predictions(&predictions, set.labels(), classes))
    }

    /// The best weights as named host tensors: `blocks.{i}.expand|depthwise|project.weight|bias`
    /// for `i >= first_trainable_block` (burn layout `[out, in / groups, k, k]`, biases `[out]`),
    /// `head_conv.weight` `[1280, 320, 1, 1]`, `head_conv.bias` `[1280]`, `head.weight`
    /// `[1280, classes]` and `head.bias` `[classes]`. Before any epoch: the starting weights.
    pub async fn parameters(&self) -> Result<Vec<(String, TensorF32)>, TrainError> {
        match &self.best {
            Some(best) => Ok(best.parameters.clone()),
            None => {
                self.top
                    .valid()
                    .read_parameters(self.config.first_trainable_block)
                    .await
            }
        }
    }

    /// The best weights as a complete classifier on `backbone`'s device.
    pub fn classifier(&self, backbone: MobileNetV2) -> Result<FineTunedClassifier, TrainError> {
        let device = backbone.head_conv.weight.device();
        Ok(FineTunedClassifier {
            top: self.best_top(&device)?,
            backbone,
            first_trainable_block: self.config.first_trainable_block,
        })
    }
}

/// Loss and correct-answer sums of a training epoch, kept on the device: one readback per epoch
/// keeps a GPU busy.
struct TrainingSums {
    loss: Tensor<1>,
    correct: Tensor<1, Int>,
}

impl TrainingSums {
    fn new(device: &Device) -> Self {
        Self {
            loss: Tensor::zeros([1], device),
            correct: Tensor::zeros([1], device),
        }
    }
}

/// Loss and correct-answer sums of a measuring pass, kept on the device.
struct MeasureSums {
    inner: TrainingSums,
    device: Device,
}

impl MeasureSums {
    fn new(device: &Device) -> Self {
        Self {
            inner: TrainingSums::new(device),
            device: device.clone(),
        }
    }

    fn add(&mut self, logits: Tensor<2>, labels: Tensor<1, Int>) {
        let batch = labels.dims()[0];
        let loss = CrossEntropyLossConfig::new()
            .init(&self.device)
            .forward(logits.clone(), labels.clone());
        self.inner.loss = self.inner.loss.clone() + loss.mul_scalar(batch as f32);
        self.inner.correct = self.inner.correct.clone() + correct_count(logits, labels);
    }

    async fn read(self, photos: usize) -> Result<PassMetrics, TrainError> {
        let loss = read_f32(self.inner.loss).await?[0] / photos as f32;
        let correct = read_i64(self.inner.correct).await?[0];
        Ok(PassMetrics {
            loss,
            accuracy: correct as f32 / photos as f32,
        })
    }
}

/// Number of rows of `logits` `[batch, classes]` whose top class is `labels` `[batch]`, as `[1]`.
fn correct_count(logits: Tensor<2>, labels: Tensor<1, Int>) -> Tensor<1, Int> {
    logits
        .argmax(1)
        .flatten::<1>(0, 1)
        .equal(labels)
        .int()
        .sum()
}

fn labels_tensor(labels: impl Iterator<Item = usize>, device: &Device) -> Tensor<1, Int> {
    let labels: Vec<i64> = labels.map(|l| l as i64).collect();
    let count = labels.len();
    Tensor::from_data(TensorData::new(labels, [count]), device)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::weights::WeightsBuilder;

    /// Small photos keep the full backbone cheap: 32x32 reaches 1x1 at the last blocks.
    const SIZE: usize = 32;
    const CLASSES: usize = 3;

    fn random_photos(count: usize, seed: u64) -> PhotoSet {
        let mut rng = SeededRng::seed_from_u64(seed);
        let mut set = PhotoSet::new(SIZE);
        for index in 0..count {
            let pixels: Vec<u8> = (0..SIZE * SIZE * 3).map(|_| rng.random()).collect();
            set.push(&pixels, index % CLASSES);
        }
        set
    }

    fn random_head(seed: u64) -> HeadSnapshot {
        let mut rng = SeededRng::seed_from_u64(seed);
        HeadSnapshot {
            feature_width: FEATURE_WIDTH,
            classes: CLASSES,
            weight: (0..FEATURE_WIDTH * CLASSES)
                .map(|_| rng.random_range(-0.1..0.1))
                .collect(),
            bias: vec![0.0; CLASSES],
            epochs_done: 30,
        }
    }

    fn config(first_trainable_block: usize) -> FineTuneConfig {
        FineTuneConfig {
            epochs: 3,
            learning_rate: 1e-3,
            batch_size: 8,
            seed: 7,
            augment: true,
            patience: 2,
            first_trainable_block,
            crops_per_photo: 0,
        }
    }

    fn tuner(config: FineTuneConfig, backbone: &MobileNetV2) -> FineTuner {
        let device = Device::flex().autodiff();
        pollster::block_on(FineTuner::new(config, backbone, &random_head(3), &device)).unwrap()
    }

    fn cache(
        backbone: &MobileNetV2,
        photos: &PhotoSet,
        block: usize,
        flips: bool,
    ) -> BoundaryCache {
        let preprocessing = Preprocessing::mobilenet_v2();
        let device = Device::flex();
        pollster::block_on(cache_boundary(
            backbone,
            photos,
            block,
            flips,
            &preprocessing,
            &device,
        ))
        .unwrap()
    }

    fn values<const D: usize>(tensor: Tensor<D>) -> Vec<f32> {
        tensor.into_data().try_into_vec::<f32>().unwrap()
    }

    fn max_relative_difference(a: &[f32], b: &[f32]) -> f32 {
        let scale = a.iter().fold(1e-6f32, |m, v| m.max(v.abs()));
        a.iter()
            .zip(b)
            .map(|(x, y)| (x - y).abs() / scale)
            .fold(0.0, f32::max)
    }

    /// Every backbone weight and bias by name.
    fn frozen_weights(backbone: &MobileNetV2) -> Vec<(String, Vec<f32>, Vec<f32>)> {
        let mut weights: Vec<_> = backbone_convs(backbone)
            .into_iter()
            .map(|(name, conv)| {
                let bias = values(conv.bias.as_ref().unwrap().val());
                (name, values(conv.weight.val()), bias)
            })
            .collect();
        weights.sort_by(|a, b| a.0.cmp(&b.0));
        weights
    }

    fn input(photos: &PhotoSet, device: &Device) -> Tensor<4> {
        let views: Vec<&[u8]> = (0..photos.len()).map(|i| photos.photo(i)).collect();
        input_tensor(&views, SIZE, &Preprocessing::mobilenet_v2(), device)
    }

    #[test]
    fn default_boundary_unfreezes_about_a_fifth_of_the_backbone() {
        let block = default_first_trainable_block();
        assert_eq!(block, 17);
        let fraction = trainable_fraction(block);
        assert!((0.15..0.25).contains(&fraction), "{fraction}");
        assert!(trainable_fraction(16) > 0.3);
        assert!((trainable_fraction(0) - 1.0).abs() < 0.001);

        let stages = stage_parameters(15, CLASSES);
        assert_eq!(stages.len(), 1 + 17 + 1 + 1);
        let backbone = MobileNetV2::random(&Device::flex());
        let classifier = FEATURE_WIDTH * crate::mobilenet_v2::IMAGENET_CLASSES
            + crate::mobilenet_v2::IMAGENET_CLASSES;
        let total: usize = stages.iter().map(|s| s.parameters).sum();
        assert_eq!(
            total,
            backbone.num_params() - classifier + FEATURE_WIDTH * CLASSES + CLASSES
        );
        let trains: Vec<&str> = stages
            .iter()
            .filter(|s| s.trains)
            .map(|s| s.name.as_str())
            .collect();
        assert_eq!(trains, ["blocks.15", "blocks.16", "head_conv", "head"]);
        assert_eq!(stages[0].output_shape, [32, 112, 112]);
        assert_eq!(stages[17].output_shape, [320, 7, 7]);
        assert_eq!(stages[18].output_shape, [1280, 7, 7]);
    }

    #[test]
    fn boundary_shapes_match_the_network() {
        let device = Device::flex();
        let backbone = MobileNetV2::random(&device);
        let photo = input(&random_photos(1, 1), &device);
        for block in 0..=block_count() {
            let [_, c, h, w] = backbone.forward_until(photo.clone(), block).dims();
            assert_eq!(boundary_shape(block, SIZE), [c, h, w], "block {block}");
        }
        assert_eq!(boundary_shape(17, 224), [320, 7, 7]);
        assert_eq!(
            flip_horizontal(&[1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12], 2),
            [4, 5, 6, 1, 2, 3, 10, 11, 12, 7, 8, 9]
        );
    }

    #[test]
    fn cached_boundary_forward_equals_the_full_forward() {
        let device = Device::flex();
        let backbone = MobileNetV2::random(&device);
        let photos = random_photos(6, 2);
        let cached = cache(&backbone, &photos, 13, true);
        assert_eq!(cached.len(), 6);
        assert_eq!(cached.shape(), [96, 2, 2]);
        assert_eq!(cached.bytes(), 2 * 6 * 96 * 4 * 4 + 6 * 8);
        let tuner = tuner(config(13), &backbone);
        let from_cache = values(tuner.top().valid().forward(cached.batch(
            &[0, 1, 2, 3, 4, 5],
            &[],
            &device,
        )));
        let classifier = tuner.classifier(backbone.clone()).unwrap();
        let full = values(classifier.logits(input(&photos, &device)));
        // And the top starts from the pretrained network plus the lesson 02 head.
        let head = crate::head::ClassifierHead::from_snapshot(&random_head(3), &device);
        let lesson02 = values(head.forward(backbone.features(input(&photos, &device))));
        assert!(max_relative_difference(&full, &from_cache) < 1e-4);
        assert!(max_relative_difference(&full, &lesson02) < 1e-4);
        // The mirrored activations are those of the mirrored photo.
        let mirrored = cached.batch(&[4], &[1], &device);
        let flipped = flip_horizontal(photos.photo(4), SIZE);
        let expected = backbone.forward_until(
            input_tensor(&[&flipped], SIZE, &Preprocessing::mobilenet_v2(), &device),
            13,
        );
        assert!(max_relative_difference(&values(expected), &values(mirrored)) < 1e-5);
    }

    #[test]
    fn cached_crops_are_the_activations_of_the_cropped_photos() {
        let device = Device::flex();
        let backbone = MobileNetV2::random(&device);
        let photos = random_photos(5, 3);
        let config = FineTuneConfig {
            crops_per_photo: 3,
            ..config(14)
        };
        let preprocessing = Preprocessing::mobilenet_v2();
        let cached = pollster::block_on(fill_boundary_cache(
            BoundaryCache::for_training(&config, SIZE),
            &backbone,
            &photos,
            &preprocessing,
            &device,
        ))
        .unwrap();
        assert_eq!(
            (cached.len(), cached.views(), cached.crops_per_photo()),
            (5, 5, 3)
        );
        let photo_len = cached.photo_len();
        assert_eq!(cached.bytes(), 5 * 5 * photo_len * 4 + 5 * 8);
        for (index, view) in [(0, 0), (1, 1), (3, 2), (4, 4)] {
            let pixels = photo_view(photos.photo(index), index, SIZE, view, config.seed);
            let expected =
                backbone.forward_until(input_tensor(&[&pixels], SIZE, &preprocessing, &device), 14);
            let found = cached.view(index, view);
            assert!(
                max_relative_difference(&values(expected), found) < 1e-5,
                "{index} {view}"
            );
        }
        // Crops differ from each other and from the photo; no augmentation keeps one view.
        assert_ne!(cached.view(2, 2), cached.view(2, 3));
        assert_ne!(cached.view(2, 0), cached.view(2, 2));
        let plain = BoundaryCache::for_training(
            &FineTuneConfig {
                augment: false,
                ..config
            },
            SIZE,
        );
        assert_eq!(plain.views(), 1);
    }

    #[test]
    fn pooled_features_from_the_cache_equal_the_backbone_features() {
        let device = Device::flex();
        let backbone = MobileNetV2::random(&device);
        let photos = random_photos(5, 4);
        let cached = cache(&backbone, &photos, 15, false);
        let pooled = pollster::block_on(cached.pooled_features(&backbone, &device)).unwrap();
        assert_eq!(pooled.len(), 5);
        assert_eq!(pooled.labels(), photos.labels());
        let direct = values(backbone.features(input(&photos, &device)));
        assert!(max_relative_difference(&direct, pooled.values()) < 1e-5);
    }

    #[test]
    fn an_epoch_changes_only_the_top_and_matches_the_uncached_epoch() {
        let device = Device::flex();
        let backbone = MobileNetV2::random(&device);
        let frozen_before = frozen_weights(&backbone);
        let (train, validation) = (random_photos(12, 4), random_photos(6, 5));
        // Two random crops per photo besides the photo and its mirror: four views.
        let config = FineTuneConfig {
            crops_per_photo: 2,
            ..config(15)
        };
        let mut cached = tuner(config.clone(), &backbone);
        let start = pollster::block_on(cached.parameters()).unwrap();
        let train_cache = pollster::block_on(fill_boundary_cache(
            BoundaryCache::for_training(&config, SIZE),
            &backbone,
            &train,
            &Preprocessing::mobilenet_v2(),
            &device,
        ))
        .unwrap();
        assert_eq!(train_cache.views(), 4);
        let report = pollster::block_on(
            cached.run_epoch(&train_cache, &cache(&backbone, &validation, 15, false)),
        )
        .unwrap();
        let mut uncached = tuner(config, &backbone);
        let preprocessing = Preprocessing::mobilenet_v2();
        let direct = pollster::block_on(uncached.run_epoch_from_photos(
            &backbone,
            &train,
            &validation,
            &preprocessing,
        ))
        .unwrap();
        assert_eq!(report.train_photos, 12);
        assert!(
            (report.train.loss - direct.train.loss).abs() < 1e-4 * report.train.loss.abs().max(1.0)
        );
        assert_eq!(report.train.accuracy, direct.train.accuracy);
        let (a, b) = (report.validation.unwrap(), direct.validation.unwrap());
        assert!(
            (a.loss - b.loss).abs() < 1e-3 * a.loss.abs().max(1.0),
            "{a:?} {b:?}"
        );

        // The frozen backbone is bit-identical; every trained tensor moved.
        let frozen_after = frozen_weights(&backbone);
        assert!(frozen_before == frozen_after, "the frozen backbone changed");
        let trained = pollster::block_on(cached.parameters()).unwrap();
        let names: Vec<&str> = trained.iter().map(|(n, _)| n.as_str()).collect();
        assert_eq!(names.first(), Some(&"blocks.15.expand.weight"));
        assert_eq!(names.last(), Some(&"head.bias"));
        assert_eq!(names.len(), 2 * 3 * 2 + 2 + 2);
        for ((name, before), (_, after)) in start.iter().zip(&trained) {
            assert_eq!(before.shape, after.shape, "{name}");
            if name.ends_with(".weight") {
                assert_ne!(before.values, after.values, "{name} did not train");
            }
        }
    }

    #[test]
    fn early_stopping_keeps_the_best_epoch() {
        let device = Device::flex();
        let backbone = MobileNetV2::random(&device);
        let train = cache(&backbone, &random_photos(24, 6), 16, false);
        let validation = cache(&backbone, &random_photos(15, 7), 16, false);
        let mut tuner = tuner(
            FineTuneConfig {
                epochs: 12,
                learning_rate: 3e-3,
                augment: false,
                ..config(16)
            },
            &backbone,
        );
        let mut reports = Vec::new();
        while !tuner.finished() {
            reports.push(pollster::block_on(tuner.run_epoch(&train, &validation)).unwrap());
        }
        let accuracies: Vec<f32> = reports
            .iter()
            .map(|r| r.validation.unwrap().accuracy)
            .collect();
        let best = accuracies.iter().cloned().fold(f32::MIN, f32::max);
        let best_epoch = accuracies.iter().position(|&a| a == best).unwrap() + 1;
        assert_eq!(tuner.best_epoch(), Some(best_epoch), "{accuracies:?}");
        assert_eq!(tuner.best_validation_accuracy(), Some(best));
        if tuner.stopped_early() {
            assert_eq!(reports.len(), best_epoch + 2, "{accuracies:?}");
        }
        let evaluation = pollster::block_on(tuner.evaluate(&validation)).unwrap();
        assert_eq!(evaluation.accuracy, best, "{accuracies:?}");
        // Meaningful only when the kept epoch is not the last one.
        assert!(best_epoch < reports.len(), "{accuracies:?}");
    }

    #[test]
    fn exported_parameters_rebuild_the_same_classifier() {
        let device = Device::flex();
        let backbone = MobileNetV2::random(&device);
        let (train, validation) = (random_photos(8, 8), random_photos(3, 9));
        let mut tuner = tuner(config(16), &backbone);
        pollster::block_on(tuner.run_epoch(
            &cache(&backbone, &train, 16, true),
            &cache(&backbone, &validation, 16, false),
        ))
        .unwrap();
        let parameters = pollster::block_on(tuner.parameters()).unwrap();
        let file = |skip: &str, reshape: &str| {
            let mut builder =
                WeightsBuilder::new("fine_tuned", Preprocessing::mobilenet_v2(), vec![]);
            for (name, tensor) in &parameters {
                if name == skip {
                    continue;
                }
                let shape = if name == reshape {
                    vec![tensor.values.len()]
                } else {
                    tensor.shape.clone()
                };
                builder.add_f32(name, shape, tensor.values.clone()).unwrap();
            }
            WebWeights::from_bytes(&builder.to_bytes()).unwrap()
        };
        let rebuilt =
            FineTunedClassifier::from_weights(backbone.clone(), &file("", ""), 16, &device)
                .unwrap();
        let original = tuner.classifier(backbone.clone()).unwrap();
        let photos = input(&validation, &device);
        assert_eq!(
            values(rebuilt.logits(photos.clone())),
            values(original.logits(photos))
        );
        assert_eq!(rebuilt.classes(), CLASSES);

        let missing = FineTunedClassifier::from_weights(
            backbone.clone(),
            &file("head.bias", ""),
            16,
            &device,
        )
        .unwrap_err();
        assert_eq!(missing, WeightsError::MissingTensor("head.bias".into()));
        let reshaped = FineTunedClassifier::from_weights(
            backbone.clone(),
            &file("", "blocks.16.project.weight"),
            16,
            &device,
        )
        .unwrap_err();
        assert!(
            matches!(reshaped, WeightsError::ShapeMismatch { .. }),
            "{reshaped}"
        );
        // A file trained with a lower boundary lacks nothing; one with a higher one does.
        let lower = FineTunedClassifier::from_weights(backbone, &file("", ""), 15, &device);
        assert!(matches!(lower, Err(WeightsError::MissingTensor(_))));
    }
}
