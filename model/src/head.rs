//! The classifier head trained on top of a frozen backbone: one linear layer from the pooled
//! features to the lesson's classes, trained with Adam on cached features.

use crate::SeededRng;
use burn::module::{Module, Param};
use burn::nn::Linear;
use burn::nn::loss::CrossEntropyLossConfig;
use burn::optim::{AdamConfig, GradientsParams, ModuleOptimizer};
use burn::tensor::{Device, Int, Tensor, TensorData};
use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};
use serde::{Deserialize, Serialize};

use crate::features::FeatureSet;
use crate::metrics::{Evaluation, evaluate_predictions};

/// Hyper-parameters of head training.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct HeadTrainingConfig {
    /// Passes over the training photos.
    pub epochs: usize,
    /// Adam's learning rate.
    pub learning_rate: f64,
    /// Photos per gradient step.
    pub batch_size: usize,
    /// Seed of the initial weights and of the shuffling.
    pub seed: u64,
}

impl Default for HeadTrainingConfig {
    fn default() -> Self {
        // From the sweep in `benches/lesson02.rs` on the lesson subset (100 photos per class):
        // at this learning rate validation accuracy reaches its plateau (0.87-0.875) by epoch 20
        // and keeps it to epoch 60, where 1e-3 peaks early and then slowly overfits.
        Self {
            epochs: 30,
            learning_rate: 3e-4,
            batch_size: 32,
            seed: 42,
        }
    }
}

/// Why head training stopped early.
#[derive(Debug, thiserror::Error)]
pub enum TrainError {
    /// The loss became NaN or infinite.
    #[error(
        "the training loss became {value} in epoch {epoch}: the weights blew up, which usually \
         means the learning rate ({learning_rate}) is too high; lower it and train again"
    )]
    NonFiniteLoss {
        /// 1-based epoch.
        epoch: usize,
        /// The loss value read back.
        value: f32,
        /// Learning rate in use.
        learning_rate: f64,
    },
    /// There is nothing to train on.
    #[error("there are no training photos with features yet")]
    NoTrainingData,
    /// Reading results back from the device failed (for a GPU, usually a lost device).
    #[error("the compute device stopped answering: {0}")]
    Device(String),
}

/// Loss and accuracy of one pass.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct PassMetrics {
    /// Mean cross-entropy.
    pub loss: f32,
    /// Fraction of photos whose top-1 class is right.
    pub accuracy: f32,
}

/// What one epoch achieved.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EpochReport {
    /// 1-based epoch number.
    pub epoch: usize,
    /// Training photos used in this epoch.
    pub train_photos: usize,
    /// Metrics on the training photos, measured during the epoch.
    pub train: PassMetrics,
    /// Metrics on the validation photos after the epoch (`None` without validation photos).
    pub validation: Option<PassMetrics>,
}

/// The head's parameters as plain numbers: portable between devices and threads.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct HeadSnapshot {
    /// Width of the input features.
    pub feature_width: usize,
    /// Number of classes.
    pub classes: usize,
    /// Weights `[feature_width, classes]`, row-major.
    pub weight: Vec<f32>,
    /// Bias `[classes]`.
    pub bias: Vec<f32>,
    /// Epochs trained so far.
    pub epochs_done: usize,
}

/// A linear classifier over backbone features.
#[derive(Module, Debug)]
pub struct ClassifierHead {
    /// `features -> classes`.
    pub linear: Linear,
}

impl ClassifierHead {
    /// A freshly initialised head: uniform weights in `±1/sqrt(feature_width)` and zero bias,
    /// drawn on the host from `seed` so that every backend starts from the same numbers.
    pub fn new(feature_width: usize, classes: usize, seed: u64, device: &Device) -> Self {
        let mut rng = SeededRng::seed_from_u64(seed);
        let bound = 1.0 / (feature_width as f32).sqrt();
        let weight = (0..feature_width * classes)
            .map(|_| rng.random_range(-bound..bound))
            .collect();
        let snapshot = HeadSnapshot {
            feature_width,
            classes,
            weight,
            bias: vec![0.0; classes],
            epochs_done: 0,
        };
        Self::from_snapshot(&snapshot, device)
    }

    /// Rebuilds a head from a snapshot on `device`.
    pub fn from_snapshot(snapshot: &HeadSnapshot, device: &Device) -> Self {
        let weight = TensorData::new(
            snapshot.weight.clone(),
            [snapshot.feature_width, snapshot.classes],
        );
        let bias = TensorData::new(snapshot.bias.clone(), [snapshot.classes]);
        Self {
            linear: Linear {
                weight: Param::from_tensor(Tensor::from_data(weight, device)),
                bias: Some(Param::from_tensor(Tensor::from_data(bias, device))),
            },
        }
    }

    /// Logits `[batch, classes]` of features `[batch, feature_width]`.
    pub fn forward(&self, features: Tensor<2>) -> Tensor<2> {
        self.linear.forward(features)
    }

    /// Reads the parameters back (async, as WebGPU requires).
    pub async fn snapshot(&self, epochs_done: usize) -> Result<HeadSnapshot, TrainError> {
        let [feature_width, classes] = self.linear.weight.dims();
        let weight = read_f32(self.linear.weight.val()).await?;
        let bias = match &self.linear.bias {
            Some(bias) => read_f32(bias.val()).await?,
            None => vec![0.0; classes],
        };
        Ok(HeadSnapshot {
            feature_width,
            classes,
            weight,
            bias,
            epochs_done,
        })
    }
}

/// Reads a float tensor back to the host.
pub(crate) async fn read_f32<const D: usize>(tensor: Tensor<D>) -> Result<Vec<f32>, TrainError> {
    let data = tensor
        .into_data_async()
        .await
        .map_err(|e| TrainError::Device(format!("{e:?}")))?;
    data.try_into_vec::<f32>()
        .map_err(|e| TrainError::Device(format!("{e:?}")))
}

/// Reads an integer tensor back to the host.
pub(crate) async fn read_i64<const D: usize>(
    tensor: Tensor<D, Int>,
) -> Result<Vec<i64>, TrainError> {
    let data = tensor
        .into_data_async()
        .await
        .map_err(|e| TrainError::Device(format!("{e:?}")))?;
    Ok(data.iter::<i64>().collect())
}

/// Trains a [`ClassifierHead`] epoch by epoch, so that a caller (a browser worker, the CLI) can
/// report progress, add newly arrived photos and stop between epochs.
pub struct HeadTrainer {
    head: ClassifierHead,
    optimizer: ModuleOptimizer,
    config: HeadTrainingConfig,
    device: Device,
    rng: SeededRng,
    epochs_done: usize,
}

impl HeadTrainer {
    /// A new head for `classes` classes; `device` should be an autodiff device.
    pub fn new(
        config: HeadTrainingConfig,
        feature_width: usize,
        classes: usize,
        device: &Device,
    ) -> Self {
        let head = ClassifierHead::new(feature_width, classes, config.seed, device);
        Self::with_head(config, head, 0, device)
    }

    /// Continues from a snapshot (for example after moving from a lost GPU to the CPU). The
    /// optimizer's moments restart from zero.
    pub fn resume(config: HeadTrainingConfig, snapshot: &HeadSnapshot, device: &Device) -> Self {
        let head = ClassifierHead::from_snapshot(snapshot, device);
        Self::with_head(config, head, snapshot.epochs_done, device)
    }

    fn with_head(
        config: HeadTrainingConfig,
        head: ClassifierHead,
        epochs_done: usize,
        device: &Device,
    ) -> Self {
        // The shuffle order depends on the epoch too, so a resumed run does not repeat it.
        let rng = SeededRng::seed_from_u64(config.seed ^ (epochs_done as u64).wrapping_mul(0x9E37));
        Self {
            head,
            optimizer: AdamConfig::new().init(),
            config,
            device: device.clone(),
            rng,
            epochs_done,
        }
    }

    /// Epochs finished so far.
    pub fn epochs_done(&self) -> usize {
        self.epochs_done
    }

    /// The configuration in use.
    pub fn config(&self) -> &HeadTrainingConfig {
        &self.config
    }

    /// The head as trained so far.
    pub fn head(&self) -> &ClassifierHead {
        &self.head
    }

    /// One pass over `train` in shuffled mini-batches, then a validation pass.
    pub async fn run_epoch(
        &mut self,
        train: &FeatureSet,
        validation: &FeatureSet,
    ) -> Result<EpochReport, TrainError> {
        if train.is_empty() {
            return Err(TrainError::NoTrainingData);
        }
        let epoch = self.epochs_done + 1;
        let features = train.to_tensor(&self.device);
        let labels = train.labels_tensor(&self.device);
        let mut order: Vec<usize> = (0..train.len()).collect();
        order.shuffle(&mut self.rng);
        let loss_fn = CrossEntropyLossConfig::new().init(&self.device);

        // Sums stay on the device; one readback per epoch keeps a GPU busy.
        let mut loss_sum = Tensor::<1>::zeros([1], &self.device);
        let mut correct = Tensor::<1, Int>::zeros([1], &self.device);
        for batch in order.chunks(self.config.batch_size.max(1)) {
            let indices: Vec<i64> = batch.iter().map(|&i| i as i64).collect();
            let indices =
                Tensor::<1, Int>::from_data(TensorData::new(indices, [batch.len()]), &self.device);
            let x = features.clone().select(0, indices.clone());
            let y = labels.clone().select(0, indices);
            let logits = self.head.forward(x);
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
            let grads = GradientsParams::from_grads(loss.backward(), &self.head);
            self.head = self
                .optimizer
                .step(self.config.learning_rate, self.head.clone(), grads);
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

    /// Loss and accuracy on `set` without training.
    pub async fn measure(&self, set: &FeatureSet) -> Result<Option<PassMetrics>, TrainError> {
        if set.is_empty() {
            return Ok(None);
        }
        let head = self.head.valid();
        let device = self.device.clone().inner();
        let logits = head.forward(set.to_tensor(&device));
        let labels = set.labels_tensor(&device);
        let loss = CrossEntropyLossConfig::new()
            .init(&device)
            .forward(logits.clone(), labels.clone());
        let correct = logits
            .argmax(1)
            .flatten::<1>(0, 1)
            .equal(labels)
            .int()
            .sum();
        let loss = read_f32(loss).await?[0];
        let correct = read_i64(correct).await?[0];
        Ok(Some(PassMetrics {
            loss,
            accuracy: correct as f32 / set.len() as f32,
        }))
    }

    /// Predictions, per-class accuracy and confusion matrix on `set`.
    pub async fn evaluate(
        &self,
        set: &FeatureSet,
        classes: usize,
    ) -> Result<Evaluation, TrainError> {
        predict_head(&self.head.valid(), set, classes).await
    }

    /// The parameters as plain numbers.
    pub async fn snapshot(&self) -> Result<HeadSnapshot, TrainError> {
        self.head.valid().snapshot(self.epochs_done).await
    }
}

/// Evaluates a head (on any device) on a feature set.
pub async fn predict_head(
    head: &ClassifierHead,
    set: &FeatureSet,
    classes: usize,
) -> Result<Evaluation, TrainError> {
    let device = head.linear.weight.device();
    if set.is_empty() {
        return Ok(evaluate_predictions(&[], &[], classes));
    }
    let logits = head.forward(set.to_tensor(&device));
    let predictions = read_i64(logits.argmax(1).flatten::<1>(0, 1)).await?;
    let predictions: Vec<usize> = predictions.into_iter().map(|p| p as usize).collect();
    Ok(evaluate_predictions(&predictions, set.labels(), classes))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    /// Three well-separated clusters in 8 dimensions, `per_class` points each.
    fn clusters(per_class: usize, seed: u64) -> FeatureSet {
        let mut rng = SeededRng::seed_from_u64(seed);
        let mut set = FeatureSet::new(8);
        for class in 0..3 {
            for _ in 0..per_class {
                let row: Vec<f32> = (0..8)
                    .map(|d| {
                        let centre = if d == class * 2 { 3.0 } else { 0.0 };
                        centre + rng.random_range(-1.0..1.0)
                    })
                    .collect();
                set.extend(&row, &[class]);
            }
        }
        set
    }

    #[test]
    fn learns_separable_classes_and_reports_every_epoch() {
        let device = Device::flex().autodiff();
        let config = HeadTrainingConfig {
            epochs: 8,
            learning_rate: 0.05,
            batch_size: 16,
            seed: 1,
        };
        let mut trainer = HeadTrainer::new(config, 8, 3, &device);
        let (train, validation) = (clusters(40, 1), clusters(20, 2));
        let mut last = None;
        for epoch in 1..=8 {
            let report = pollster::block_on(trainer.run_epoch(&train, &validation)).unwrap();
            assert_eq!(report.epoch, epoch);
            assert_eq!(report.train_photos, 120);
            last = Some(report);
        }
        let last = last.unwrap();
        assert!(last.validation.unwrap().accuracy > 0.95, "{last:?}");
        let evaluation = pollster::block_on(trainer.evaluate(&validation, 3)).unwrap();
        assert_eq!(evaluation.predictions.len(), 60);
        assert!((evaluation.accuracy - last.validation.unwrap().accuracy).abs() < 1e-6);
    }

    #[test]
    fn resumes_from_a_snapshot_with_the_same_predictions() {
        let device = Device::flex().autodiff();
        let config = HeadTrainingConfig {
            epochs: 2,
            learning_rate: 0.05,
            batch_size: 16,
            seed: 3,
        };
        let mut trainer = HeadTrainer::new(config.clone(), 8, 3, &device);
        let (train, validation) = (clusters(30, 5), clusters(10, 6));
        pollster::block_on(trainer.run_epoch(&train, &validation)).unwrap();
        let snapshot = pollster::block_on(trainer.snapshot()).unwrap();
        assert_eq!(snapshot.epochs_done, 1);
        let resumed = HeadTrainer::resume(config, &snapshot, &Device::flex().autodiff());
        let before = pollster::block_on(trainer.evaluate(&validation, 3)).unwrap();
        let after = pollster::block_on(resumed.evaluate(&validation, 3)).unwrap();
        assert_eq!(before.predictions, after.predictions);
        assert_eq!(resumed.epochs_done(), 1);
    }

    #[test]
    fn stops_with_an_explanation_when_the_loss_is_not_finite() {
        let device = Device::flex().autodiff();
        let config = HeadTrainingConfig {
            epochs: 1,
            learning_rate: 1e3,
            batch_size: 4,
            seed: 1,
        };
        let mut trainer = HeadTrainer::new(config, 8, 3, &device);
        let mut train = clusters(10, 1);
        // One absurd photo makes the gradients overflow at this learning rate.
        train.extend(&[f32::MAX; 8], &[0]);
        let error = pollster::block_on(trainer.run_epoch(&train, &clusters(2, 2))).unwrap_err();
        assert!(
            matches!(error, TrainError::NonFiniteLoss { epoch: 1, .. }),
            "{error}"
        );
        assert!(error.to_string().contains("learning rate"));
    }

    #[test]
    fn refuses_to_train_without_photos() {
        let device = Device::flex().autodiff();
        let mut trainer = HeadTrainer::new(HeadTrainingConfig::default(), 8, 3, &device);
        let empty = FeatureSet::new(8);
        let error = pollster::block_on(trainer.run_epoch(&empty, &empty)).unwrap_err();
        assert!(matches!(error, TrainError::NoTrainingData));
    }
}
