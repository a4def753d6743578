//! Messages between the page and the training worker, sent as JSON strings.

use serde::{Deserialize, Serialize};
use transfer_lab_model::head::{EpochReport, HeadTrainingConfig};
use transfer_lab_model::metrics::Evaluation;

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

/// Page -> worker.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum ToWorker {
    /// Start lesson 02.
    StartFeatureExtraction(FeatureExtractionRun),
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
}
