//! Messages between the page and the training worker, sent as JSON strings.

use serde::{Deserialize, Serialize};
use transfer_lab_model::fine_tune::FineTuneConfig;
use transfer_lab_model::head::{EpochReport, HeadSnapshot, HeadTrainingConfig};
use transfer_lab_model::metrics::Evaluation;
use transfer_lab_model::scratch_cnn::ScratchTrainingConfig;

/// Which compute backend the student asked for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
pub enum BackendChoice {
    /// WebGPU when the browser offers an adapter, the CPU otherwise.
    #[default]
    Auto,
    /// Always the CPU backend.
    Cpu,
}

/// A lesson 02 run: feature extraction with the frozen backbone, then head training.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FeatureExtractionRun {
    /// Backend preference.
    pub backend: BackendChoice,
    /// Train on the full training split instead of the lesson subset.
    pub full_training_split: bool,
    /// At most this many training photos per class (a reduced subset), if set.
    pub train_per_class: Option<usize>,
    /// At most this many validation photos per class, if set.
    pub validation_per_class: Option<usize>,
    /// Head training hyper-parameters.
    pub training: HeadTrainingConfig,
    /// For tests: act as if the GPU device were lost when this epoch starts.
    pub simulate_device_loss_at_epoch: Option<usize>,
    /// Base address of the generated assets, e.g. `generated/`.
    pub assets_base: String,
}

/// A lesson 01 run: a small CNN trained from scratch, then the dataset-size sweep.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ScratchRun {
    /// Backend preference.
    pub backend: BackendChoice,
    /// At most this many training photos per class (a reduced subset), if set.
    pub train_per_class: Option<usize>,
    /// At most this many validation photos per class, if set.
    pub validation_per_class: Option<usize>,
    /// Training hyper-parameters (augmentation included).
    pub training: ScratchTrainingConfig,
    /// Photos per class of the sweep's smaller runs (the main run is its last point).
    pub sweep_per_class: Vec<usize>,
    /// Base address of the generated assets, e.g. `generated/`.
    pub assets_base: String,
}

/// One point of the accuracy-vs-dataset-size sweep.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct SweepPoint {
    /// Training photos per class.
    pub photos_per_class: usize,
    /// Training accuracy in the last epoch.
    pub train_accuracy: f32,
    /// Validation accuracy after the last epoch.
    pub validation_accuracy: f32,
}

/// Final outcome of a lesson 01 run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ScratchResult {
    /// Class names, in label order.
    pub classes: Vec<String>,
    /// Evaluation on the validation photos after the last epoch.
    pub validation: Evaluation,
    /// Training accuracy in the last epoch.
    pub train_accuracy: f32,
    /// Training photos used.
    pub train_photos: usize,
    /// Seconds per epoch of the main run.
    pub seconds_per_epoch: f64,
    /// Backend that finished the run.
    pub backend: String,
    /// Whether the student stopped the run early.
    pub stopped_early: bool,
}

/// A lesson 03 run: lesson 02's head on the frozen backbone first, then fine-tuning of the
/// backbone's top together with that head, from a cache of the activations at the boundary.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FineTuneRun {
    /// Backend preference.
    pub backend: BackendChoice,
    /// At most this many training photos per class (a reduced subset), if set.
    pub train_per_class: Option<usize>,
    /// At most this many validation photos per class, if set.
    pub validation_per_class: Option<usize>,
    /// The lesson 02 head that fine-tuning starts from, when lesson 02 has run in this tab;
    /// otherwise the run trains one first with `head_training`.
    pub start_head: Option<HeadSnapshot>,
    /// How to train the lesson 02 head when `start_head` is `None`.
    pub head_training: HeadTrainingConfig,
    /// Fine-tuning hyper-parameters (boundary, learning rate, early stopping, flips).
    pub fine_tuning: FineTuneConfig,
    /// Base address of the generated assets, e.g. `generated/`.
    pub assets_base: String,
}

/// A follow-up run on the caches of the last lesson 03 run.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub enum FineTuneExperiment {
    /// Fine-tune again from the lesson 02 head with the learning rate times `factor`, for
    /// `epochs` epochs without early stopping, to show what a large learning rate does.
    LargeLearningRate {
        /// Multiplier of the run's learning rate.
        factor: f64,
        /// Epochs to run.
        epochs: usize,
    },
    /// Time one epoch with the boundary cache and one re-running the frozen part every step.
    CacheSpeed,
}

/// Where a lesson 03 run starts: the lesson 02 model it fine-tunes.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct FineTuneStart {
    /// Validation accuracy of the lesson 02 head on the frozen backbone.
    pub lesson02_accuracy: f32,
    /// Validation loss of the same.
    pub lesson02_loss: f32,
    /// Epochs the lesson 02 head trained.
    pub head_epochs: usize,
    /// Seconds the lesson 02 head trained (0 when it came from this tab's lesson 02 run).
    pub head_seconds: f64,
    /// Whether the head is the one this tab's lesson 02 run trained.
    pub from_lesson02_run: bool,
}

/// Final outcome of a lesson 03 run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FineTuneResult {
    /// Class names, in label order.
    pub classes: Vec<String>,
    /// The lesson 02 model the run started from.
    pub start: FineTuneStart,
    /// Evaluation of the kept (best) weights on the validation photos.
    pub validation: Evaluation,
    /// Names of the validation photos, in evaluation order.
    pub validation_photos: Vec<String>,
    /// Author and license line of each validation photo, in the same order.
    pub validation_credits: Vec<String>,
    /// The fine-tuning settings used.
    pub config: FineTuneConfig,
    /// Epochs run.
    pub epochs_done: usize,
    /// The 1-based epoch whose weights are kept.
    pub best_epoch: Option<usize>,
    /// Whether early stopping ended the run.
    pub early_stopped: bool,
    /// Whether the student stopped the run.
    pub stopped_by_student: bool,
    /// Training photos used.
    pub train_photos: usize,
    /// Bytes of the boundary cache (training and validation activations).
    pub cache_bytes: usize,
    /// Seconds spent filling the boundary cache (downloads included).
    pub cache_seconds: f64,
    /// Mean seconds of one fine-tuning epoch.
    pub seconds_per_epoch: f64,
    /// Backend that finished the run.
    pub backend: String,
    /// The fine-tuned model as a trained-model file, ready to download.
    pub model_file: Vec<u8>,
}

/// Outcome of a [`FineTuneExperiment`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum ExperimentResult {
    /// The large-learning-rate run.
    LargeLearningRate {
        /// The learning rate used.
        learning_rate: f64,
        /// Validation accuracy before the first epoch (the lesson 02 model).
        start_accuracy: f32,
        /// Every epoch, in order.
        epochs: Vec<EpochReport>,
    },
    /// The cache timing.
    CacheSpeed {
        /// Seconds of one epoch from the boundary cache.
        cached_seconds: f64,
        /// Seconds of one epoch that runs the frozen part on every batch.
        uncached_seconds: f64,
        /// Training photos of the epoch.
        photos: usize,
        /// Backend that ran both.
        backend: String,
    },
}

/// A lesson 04 run: every backbone of the zoo measured in this tab, one after the other.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ZooRun {
    /// Backend preference.
    pub backend: BackendChoice,
    /// At most this many training photos per class (a reduced subset), if set.
    pub train_per_class: Option<usize>,
    /// At most this many validation photos per class, if set.
    pub validation_per_class: Option<usize>,
    /// Photos timed on a backbone without pretrained weights (only its speed is measured).
    pub speed_photos: usize,
    /// How the classifier head of each installed backbone trains (lesson 02's defaults).
    pub head_training: HeadTrainingConfig,
    /// Base address of the generated assets, e.g. `generated/`.
    pub assets_base: String,
}

/// One backbone of the zoo as measured in this tab.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ZooRow {
    /// Id in `models/index.json`: `mobilenet_v2`, `vgg16` or `resnet50`.
    pub backbone: String,
    /// Name shown to the student.
    pub name: String,
    /// Parameters of the backbone as it runs here (no ImageNet classifier).
    pub parameters: usize,
    /// Whether its pretrained weights are installed.
    pub installed: bool,
    /// Size of its weight file: the real file when installed, else an estimate (one byte per
    /// int8 weight, as the prepared files store them).
    pub download_bytes: u64,
    /// How to install the weights, when they are missing.
    pub install: Option<String>,
    /// Photos sent through the backbone for the speed measurement.
    pub photos_timed: usize,
    /// Feature-extraction throughput, in photos per second.
    pub photos_per_second: Option<f64>,
    /// Milliseconds to get the features of one photo (after a warm-up pass).
    pub latency_ms: Option<f64>,
    /// Photos per batch used on this device.
    pub batch: usize,
    /// Seconds the classifier head trained (installed backbones only).
    pub head_seconds: Option<f64>,
    /// Validation accuracy of backbone + head (installed backbones only).
    pub validation_accuracy: Option<f32>,
    /// Why the backbone was not measured (or not fully), in plain words.
    pub note: Option<String>,
}

/// Final outcome of a lesson 04 run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ZooResult {
    /// Every backbone, in the order measured.
    pub rows: Vec<ZooRow>,
    /// Training photos of the installed backbones' heads.
    pub train_photos: usize,
    /// Validation photos.
    pub validation_photos: usize,
    /// Backend that ran the comparison.
    pub backend: String,
    /// The largest buffer the run planned for on that backend.
    pub buffer_limit_bytes: u64,
    /// Whether the student stopped the run.
    pub stopped: bool,
}

/// Page -> worker.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum ToWorker {
    /// Start lesson 02.
    StartFeatureExtraction(FeatureExtractionRun),
    /// Start lesson 01.
    StartScratch(ScratchRun),
    /// Start lesson 03.
    StartFineTuning(FineTuneRun),
    /// Run an experiment on the last lesson 03 run's caches.
    FineTuneExperiment(FineTuneExperiment),
    /// Load a trained-model file and measure it on the validation photos.
    CheckModel(ModelCheck),
    /// Classify one photo with a trained-model file.
    ClassifyPhoto(PhotoQuery),
    /// Start lesson 04.
    StartModelZoo(ZooRun),
    /// Stop after the current step, keeping what was computed.
    Stop,
}

/// The compute backend in use.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BackendInfo {
    /// `WebGPU` or `CPU`.
    pub name: String,
    /// Adapter or fallback reason, in plain words.
    pub detail: String,
}

/// Download progress of the photo shards and weights.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize, Default)]
pub struct DownloadProgress {
    /// Shards received.
    pub shards_done: usize,
    /// Shards to fetch.
    pub shards_total: usize,
    /// Photos received.
    pub photos_done: usize,
    /// Photos to fetch.
    pub photos_total: usize,
    /// Bytes received (weights and photos).
    pub bytes_done: u64,
    /// Bytes to fetch.
    pub bytes_total: u64,
}

/// Feature-extraction progress.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize, Default)]
pub struct ExtractionProgress {
    /// Photos whose features are cached.
    pub photos_done: usize,
    /// Photos to process.
    pub photos_total: usize,
    /// Throughput so far.
    pub photos_per_second: f32,
    /// Size of the feature cache.
    pub cache_bytes: usize,
}

/// Final outcome of a lesson 02 run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FeatureExtractionResult {
    /// Class names, in label order.
    pub classes: Vec<String>,
    /// Evaluation on the validation photos.
    pub validation: Evaluation,
    /// Names of the validation photos, in evaluation order.
    pub validation_photos: Vec<String>,
    /// Author and license line of each validation photo, in the same order.
    pub validation_credits: Vec<String>,
    /// Training photos used.
    pub train_photos: usize,
    /// Seconds spent on downloads and feature extraction.
    pub feature_seconds: f64,
    /// Seconds spent training the head.
    pub training_seconds: f64,
    /// Feature extraction throughput.
    pub photos_per_second: f32,
    /// Backend that finished the run.
    pub backend: String,
    /// Bytes downloaded (weights and photos).
    pub bytes_downloaded: u64,
    /// Whether the student stopped the run early.
    pub stopped_early: bool,
    /// The trained model as a trained-model file, ready to download.
    pub model_file: Vec<u8>,
    /// The trained head, which lesson 03 fine-tunes from.
    pub head: HeadSnapshot,
}

/// A request to check a trained-model file on this tab's validation photos.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ModelCheck {
    /// The file's bytes.
    pub model_file: Vec<u8>,
    /// The file's name, for messages.
    pub file_name: String,
    /// Backend preference.
    pub backend: BackendChoice,
    /// At most this many validation photos per class, if set.
    pub validation_per_class: Option<usize>,
    /// Base address of the generated assets, e.g. `generated/`.
    pub assets_base: String,
}

/// What a loaded model achieved on the validation photos.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ModelCheckResult {
    /// The file's name.
    pub file_name: String,
    /// What the model is, in plain words.
    pub description: String,
    /// The lesson that trained it.
    pub lesson: String,
    /// Where it was trained.
    pub trained_with: String,
    /// The validation accuracy recorded in the file, if any.
    pub recorded_accuracy: Option<f32>,
    /// The model's classes.
    pub classes: Vec<String>,
    /// Evaluation on this tab's validation photos.
    pub validation: Evaluation,
    /// Names of the validation photos, in evaluation order.
    pub validation_photos: Vec<String>,
    /// Backend that ran it.
    pub backend: String,
}

/// A request to classify one photo with a trained-model file.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PhotoQuery {
    /// The trained-model file's bytes.
    pub model_file: Vec<u8>,
    /// The model's name, for messages.
    pub model_name: String,
    /// The photo file's bytes (JPEG, PNG, ...), as chosen or dropped.
    pub photo: Vec<u8>,
    /// The photo's file name.
    pub photo_name: String,
    /// Backend preference.
    pub backend: BackendChoice,
    /// Base address of the generated assets, e.g. `generated/`.
    pub assets_base: String,
}

/// One class and the probability a model gives it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ClassProbability {
    /// Class name.
    pub class: String,
    /// Probability, 0..=1.
    pub probability: f32,
}

/// A model's answer for one photo.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PhotoAnswer {
    /// The photo's file name.
    pub photo_name: String,
    /// The model's name.
    pub model_name: String,
    /// The three most probable classes (fewer if the model has fewer), most probable first.
    pub top: Vec<ClassProbability>,
    /// Backend that ran it.
    pub backend: String,
}

/// Worker -> page.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum FromWorker {
    /// The worker is loaded and waiting.
    Ready,
    /// The backend chosen for the run.
    Backend(BackendInfo),
    /// What the worker is doing now, in plain words.
    Phase(String),
    /// Download progress.
    Download(DownloadProgress),
    /// Feature-extraction progress.
    Extraction(ExtractionProgress),
    /// One finished epoch.
    Epoch(EpochReport),
    /// Something went wrong but the run goes on (a skipped photo, a lost shard, a lost GPU).
    Warning(String),
    /// The run finished.
    Finished(Box<FeatureExtractionResult>),
    /// The run stopped on an error, explained in plain words.
    Failed(String),
    /// The epochs so far were discarded (training restarts, e.g. on the CPU after a GPU loss).
    EpochsCleared,
    /// The main lesson 01 run finished (the sweep may go on).
    ScratchFinished(Box<ScratchResult>),
    /// One more point of the dataset-size sweep.
    Sweep(SweepPoint),
    /// The sweep is over (finished or stopped).
    SweepDone,
    /// Lesson 03's starting point (the lesson 02 head) is trained and measured.
    FineTuneStarted(FineTuneStart),
    /// The lesson 03 run finished.
    FineTuneFinished(Box<FineTuneResult>),
    /// One epoch of an experiment.
    ExperimentEpoch(EpochReport),
    /// An experiment finished.
    ExperimentFinished(Box<ExperimentResult>),
    /// An experiment could not run, explained in plain words.
    ExperimentFailed(String),
    /// What the model check is doing, in plain words.
    ModelProgress(String),
    /// A loaded model was measured.
    ModelChecked(Box<ModelCheckResult>),
    /// A loaded model could not be used, explained in plain words.
    ModelRefused(String),
    /// A photo was classified.
    PhotoClassified(Box<PhotoAnswer>),
    /// A photo could not be classified, explained in plain words.
    PhotoRefused(String),
    /// One backbone of lesson 04 is measured.
    ZooRow(Box<ZooRow>),
    /// Lesson 04 finished (or was stopped).
    ZooFinished(Box<ZooResult>),
}

impl ToWorker {
    /// JSON form.
    pub fn to_json(&self) -> String {
        serde_json::to_string(self).unwrap_or_default()
    }
}

impl FromWorker {
    /// JSON form.
    pub fn to_json(&self) -> String {
        serde_json::to_string(self).unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_survive_the_json_round_trip() {
        let message = ToWorker::StartFeatureExtraction(FeatureExtractionRun {
            backend: BackendChoice::Cpu,
            full_training_split: true,
            train_per_class: Some(3),
            validation_per_class: None,
            training: HeadTrainingConfig::default(),
            simulate_device_loss_at_epoch: Some(2),
            assets_base: "generated/".into(),
        });
        let back: ToWorker = serde_json::from_str(&message.to_json()).unwrap();
        assert_eq!(back, message);
    }

    #[test]
    fn lesson03_messages_survive_the_json_round_trip() {
        let message = ToWorker::StartFineTuning(FineTuneRun {
            backend: BackendChoice::Auto,
            train_per_class: Some(4),
            validation_per_class: Some(2),
            start_head: None,
            head_training: HeadTrainingConfig::default(),
            fine_tuning: FineTuneConfig::default(),
            assets_base: "generated/".into(),
        });
        let back: ToWorker = serde_json::from_str(&message.to_json()).unwrap();
        assert_eq!(back, message);
        let experiment = ToWorker::FineTuneExperiment(FineTuneExperiment::LargeLearningRate {
            factor: 100.0,
            epochs: 3,
        });
        let back: ToWorker = serde_json::from_str(&experiment.to_json()).unwrap();
        assert_eq!(back, experiment);
    }

    #[test]
    fn photo_messages_survive_the_json_round_trip() {
        let query = ToWorker::ClassifyPhoto(PhotoQuery {
            model_file: vec![1, 2, 3],
            model_name: "lesson02.tlmodel".into(),
            photo: vec![0xff, 0xd8],
            photo_name: "rose.jpg".into(),
            backend: BackendChoice::Auto,
            assets_base: "generated/".into(),
        });
        let back: ToWorker = serde_json::from_str(&query.to_json()).unwrap();
        assert_eq!(back, query);
        let answer = FromWorker::PhotoClassified(Box::new(PhotoAnswer {
            photo_name: "rose.jpg".into(),
            model_name: "lesson02.tlmodel".into(),
            top: vec![ClassProbability {
                class: "roses".into(),
                probability: 0.75,
            }],
            backend: "CPU".into(),
        }));
        let back: FromWorker = serde_json::from_str(&answer.to_json()).unwrap();
        assert_eq!(back, answer);
    }

    #[test]
    fn lesson04_messages_survive_the_json_round_trip() {
        let message = ToWorker::StartModelZoo(ZooRun {
            backend: BackendChoice::Cpu,
            train_per_class: None,
            validation_per_class: Some(2),
            speed_photos: 4,
            head_training: HeadTrainingConfig::default(),
            assets_base: "generated/".into(),
        });
        let back: ToWorker = serde_json::from_str(&message.to_json()).unwrap();
        assert_eq!(back, message);
        let row = FromWorker::ZooRow(Box::new(ZooRow {
            backbone: "vgg16".into(),
            name: "VGG16".into(),
            parameters: 14_714_688,
            installed: false,
            download_bytes: 14_714_688,
            install: Some("put the file in the mirror".into()),
            photos_timed: 4,
            photos_per_second: Some(0.25),
            latency_ms: Some(3900.0),
            batch: 1,
            head_seconds: None,
            validation_accuracy: None,
            note: None,
        }));
        let back: FromWorker = serde_json::from_str(&row.to_json()).unwrap();
        assert_eq!(back, row);
    }
}
