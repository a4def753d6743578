//! Backbone features of photos, computed once per photo and cached as plain numbers so that
//! every epoch of head training reuses them.

use burn::tensor::{Device, Int, Tensor, TensorData};
use serde::{Deserialize, Serialize};

use crate::backbone::Backbone;
use crate::head::{TrainError, read_f32};
use crate::mobilenet_v2::{MobileNetV2, input_tensor};
use crate::weights::Preprocessing;

/// Pooled features of labelled photos: `len` rows of `width` values.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct FeatureSet {
    width: usize,
    values: Vec<f32>,
    labels: Vec<usize>,
}

impl FeatureSet {
    /// An empty set of rows of `width` values.
    pub fn new(width: usize) -> Self {
        Self {
            width,
            values: Vec::new(),
            labels: Vec::new(),
        }
    }

    /// Appends rows: `values` holds `labels.len()` rows of `width` values.
    pub fn extend(&mut self, values: &[f32], labels: &[usize]) {
        assert_eq!(
            values.len(),
            labels.len() * self.width,
            "feature rows and labels disagree"
        );
        self.values.extend_from_slice(values);
        self.labels.extend_from_slice(labels);
    }

    /// Number of photos.
    pub fn len(&self) -> usize {
        self.labels.len()
    }

    /// Whether the set holds no photo.
    pub fn is_empty(&self) -> bool {
        self.labels.is_empty()
    }

    /// Width of a row.
    pub fn width(&self) -> usize {
        self.width
    }

    /// Class index of every photo.
    pub fn labels(&self) -> &[usize] {
        &self.labels
    }

    /// All rows, row-major.
    pub fn values(&self) -> &[f32] {
        &self.values
    }

    /// Bytes held by the cache.
    pub fn bytes(&self) -> usize {
        self.values.len() * 4 + self.labels.len() * 8
    }

    /// The rows as a tensor `[len, width]` on `device`.
    pub fn to_tensor(&self, device: &Device) -> Tensor<2> {
        Tensor::from_data(
            TensorData::new(self.values.clone(), [self.len(), self.width]),
            device,
        )
    }

    /// The labels as a tensor `[len]` on `device`.
    pub fn labels_tensor(&self, device: &Device) -> Tensor<1, Int> {
        let labels: Vec<i64> = self.labels.iter().map(|&l| l as i64).collect();
        Tensor::from_data(TensorData::new(labels, [self.len()]), device)
    }
}

/// Runs the frozen backbone on photos (`[size, size, 3]` u8 each) and returns their pooled
/// features, `photos.len()` rows of 1,280 values. `device` should not be an autodiff device:
/// nothing here is trained.
pub async fn extract_features(
    backbone: &MobileNetV2,
    photos: &[&[u8]],
    size: usize,
    preprocessing: &Preprocessing,
    device: &Device,
) -> Result<Vec<f32>, TrainError> {
    extract_with(
        |input| backbone.features(input),
        photos,
        size,
        preprocessing,
        device,
    )
    .await
}

/// [`extract_features`] for any backbone of the zoo: `photos.len()` rows of
/// `backbone.feature_dim()` values.
pub async fn extract_backbone_features(
    backbone: &Backbone,
    photos: &[&[u8]],
    preprocessing: &Preprocessing,
    device: &Device,
) -> Result<Vec<f32>, TrainError> {
    let size = backbone.input_size();
    extract_with(
        |input| backbone.features(input),
        photos,
        size,
        preprocessing,
        device,
    )
    .await
}

async fn extract_with(
    features: impl Fn(Tensor<4>) -> Tensor<2>,
    photos: &[&[u8]],
    size: usize,
    preprocessing: &Preprocessing,
    device: &Device,
) -> Result<Vec<f32>, TrainError> {
    if photos.is_empty() {
        return Ok(Vec::new());
    }
    let input = input_tensor(photos, size, preprocessing, device);
    read_f32(features(input)).await
}
