//! Lesson 02 in the worker: stream the photo shards, cache the frozen backbone's features of
//! every photo, train the classifier head, evaluate on the validation photos.

use std::cell::Cell;
use std::rc::Rc;

use futures::{FutureExt, StreamExt};
use gloo_timers::future::TimeoutFuture;
use transfer_lab_model::features::{FeatureSet, extract_features};
use transfer_lab_model::head::{HeadSnapshot, HeadTrainer, TrainError};
use transfer_lab_model::mobilenet_v2::{FEATURE_WIDTH, MobileNetV2};
use transfer_lab_model::photo::to_input_u8;
use transfer_lab_model::shards::{
    DatasetManifest, ModelEntry, ModelsIndex, SPLIT_VALIDATION, SUBSET_LESSON, ShardEntry,
    decode_shard,
};
use transfer_lab_model::trained_model::{
    BackboneRef, ModelKind, TrainedModelInfo, TrainingRecord, head_parameters, write_model_file,
};
use transfer_lab_model::weights::WebWeights;

use super::backend::Backend;
use super::fetch::{FetchError, fetch_bytes, fetch_json};
use crate::protocol::{
    DownloadProgress, ExtractionProgress, FeatureExtractionResult, FeatureExtractionRun, FromWorker,
};

/// Photos sent through the backbone at once.
const EXTRACTION_BATCH: usize = 16;
/// Shard downloads in flight ahead of the extraction.
const DOWNLOADS_AHEAD: usize = 3;

/// Sends a message to the page.
pub type Report = Rc<dyn Fn(FromWorker)>;

/// Why a run ended without a result.
#[derive(Debug)]
pub enum RunError {
    /// Plain-words explanation for the student.
    Failed(String),
}

impl From<FetchError> for RunError {
    fn from(error: FetchError) -> Self {
        RunError::Failed(error.to_string())
    }
}

fn now_seconds() -> f64 {
    js_sys::Date::now() / 1000.0
}

/// Lets queued messages (such as Stop) reach the worker between long steps.
async fn yield_to_events() {
    TimeoutFuture::new(0).await;
}

/// Everything the run has computed so far; it survives a switch from a lost GPU to the CPU.
struct RunState {
    backend: Backend,
    backbone: MobileNetV2,
    weights: WebWeights,
    train: FeatureSet,
    validation: FeatureSet,
    validation_photos: Vec<String>,
    snapshot: Option<HeadSnapshot>,
}

impl RunState {
    /// Moves the run to the CPU backend after the GPU device was lost.
    fn fall_back_to_cpu(&mut self, report: &Report, why: &str) -> Result<(), RunError> {
        report(FromWorker::Warning(format!(
            "The GPU device was lost ({why}). Continuing on the CPU backend from the last finished \
             step; nothing computed so far is lost."
        )));
        self.backend = Backend::cpu("switched to the CPU after the GPU device was lost");
        self.backbone = MobileNetV2::from_weights(&self.weights, &self.backend.device)
            .map_err(|e| RunError::Failed(format!("the backbone could not be rebuilt: {e}")))?;
        report(FromWorker::Backend(self.backend.info.clone()));
        Ok(())
    }
}

/// Runs lesson 02 end to end; `stop` is raised by the page's Stop button.
pub async fn run(
    request: FeatureExtractionRun,
    report: Report,
    stop: Rc<Cell<bool>>,
) -> Result<FeatureExtractionResult, RunError> {
    let started = now_seconds();
    let base = request.assets_base.trim_end_matches('/').to_string();
    let backend = Backend::select(request.backend).await;
    report(FromWorker::Backend(backend.info.clone()));

    report(FromWorker::Phase(
        "Reading the dataset and model lists".into(),
    ));
    let manifest: DatasetManifest = fetch_json(&format!("{base}/flowers/manifest.json")).await?;
    let models: ModelsIndex = fetch_json(&format!("{base}/models/index.json")).await?;
    let model = models.get("mobilenet_v2").ok_or_else(|| {
        RunError::Failed(
            "the MobileNetV2 weights are not installed: run the set-up command \
             (transfer-lab prepare) to generate them"
                .into(),
        )
    })?;
    let shards: Vec<ShardEntry> = manifest
        .shards_for(request.full_training_split)
        .cloned()
        .collect();
    let mut progress = DownloadProgress {
        shards_total: shards.len(),
        photos_total: shards.iter().map(|s| s.photos).sum(),
        bytes_total: model.bytes + shards.iter().map(|s| s.bytes).sum::<u64>(),
        ..Default::default()
    };
    report(FromWorker::Download(progress));

    report(FromWorker::Phase(
        "Downloading the pretrained MobileNetV2 weights".into(),
    ));
    let weights_url = format!("{base}/models/{}", model.file);
    let weight_bytes = fetch_bytes(&weights_url, Some(&model.sha256)).await?;
    progress.bytes_done += weight_bytes.len() as u64;
    report(FromWorker::Download(progress));
    let weights = WebWeights::from_bytes(&weight_bytes)
        .map_err(|e| RunError::Failed(format!("{}: {e}", model.file)))?;
    let backbone = MobileNetV2::from_weights(&weights, &backend.device)
        .map_err(|e| RunError::Failed(format!("{}: {e}", model.file)))?;

    let mut state = RunState {
        backend,
        backbone,
        weights,
        train: FeatureSet::new(FEATURE_WIDTH),
        validation: FeatureSet::new(FEATURE_WIDTH),
        validation_photos: Vec::new(),
        snapshot: None,
    };
    let classes = manifest.classes.len();
    let size = manifest.image_size as usize;
    let mut extraction = ExtractionProgress {
        photos_total: photos_to_extract(&manifest, &request),
        ..Default::default()
    };
    let mut kept_per_class = [vec![0usize; classes], vec![0usize; classes]];
    let mut extraction_seconds = 0.0;
    let mut trainer: Option<HeadTrainer> = None;
    let mut training_seconds = 0.0;

    report(FromWorker::Phase(
        "Streaming photos and extracting features".into(),
    ));
    let mut downloads = Box::pin(
        futures::stream::iter(shards.iter().map(|shard| {
            let url = format!("{base}/flowers/{}", shard.file);
            async move { (shard, fetch_bytes(&url, Some(&shard.sha256)).await) }
        }))
        .buffered(DOWNLOADS_AHEAD)
        .peekable(),
    );

    while let Some((shard, bytes)) = downloads.next().await {
        if stop.get() {
            break;
        }
        progress.shards_done += 1;
        let photos = match bytes.map_err(|e| e.to_string()).and_then(|b| {
            progress.bytes_done += b.len() as u64;
            decode_shard(&b).map_err(|e| format!("{}: {e}", shard.file))
        }) {
            Ok(photos) => photos,
            Err(reason) => {
                report(FromWorker::Warning(format!(
                    "A photo shard could not be downloaded ({reason}). Its {} photos are left \
                     out; training goes on with the photos that arrived.",
                    shard.photos
                )));
                extraction.photos_total = extraction.photos_total.saturating_sub(shard.photos);
                continue;
            }
        };
        progress.photos_done += photos.len();
        report(FromWorker::Download(progress));

        let is_validation = shard.split == SPLIT_VALIDATION;
        let limit = if is_validation {
            request.validation_per_class
        } else {
            request.train_per_class
        };
        let mut batch_inputs = Vec::new();
        let mut batch_labels = Vec::new();
        let mut batch_names = Vec::new();
        for photo in photos {
            let counts = &mut kept_per_class[usize::from(is_validation)];
            if photo.class_index >= classes
                || limit.is_some_and(|limit| counts[photo.class_index] >= limit)
            {
                continue;
            }
            match to_input_u8(&photo.jpeg, size as u32) {
                Ok(input) => {
                    counts[photo.class_index] += 1;
                    batch_inputs.push(input);
                    batch_labels.push(photo.class_index);
                    batch_names.push(photo.name);
                }
                Err(e) => {
                    extraction.photos_total = extraction.photos_total.saturating_sub(1);
                    report(FromWorker::Warning(format!(
                        "Skipped {}: it is not a readable photo ({e}).",
                        photo.name
                    )));
                }
            }
        }
        let step_started = now_seconds();
        for ((inputs, labels), names) in batch_inputs
            .chunks(EXTRACTION_BATCH)
            .zip(batch_labels.chunks(EXTRACTION_BATCH))
            .zip(batch_names.chunks(EXTRACTION_BATCH))
        {
            let views: Vec<&[u8]> = inputs.iter().map(Vec::as_slice).collect();
            let preprocessing = state.weights.preprocessing().clone();
            let features = loop {
                match extract_features(
                    &state.backbone,
                    &views,
                    size,
                    &preprocessing,
                    &state.backend.device,
                )
                .await
                {
                    Ok(features) => break features,
                    Err(TrainError::Device(why)) if state.backend.is_gpu => {
                        state.fall_back_to_cpu(&report, &why)?
                    }
                    Err(e) => return Err(RunError::Failed(e.to_string())),
                }
            };
            let set = if is_validation {
                &mut state.validation
            } else {
                &mut state.train
            };
            set.extend(&features, labels);
            if is_validation {
                state.validation_photos.extend(names.iter().cloned());
            }
            extraction.photos_done += labels.len();
            extraction.cache_bytes = state.train.bytes() + state.validation.bytes();
            extraction.photos_per_second = extraction.photos_done as f32
                / (extraction_seconds + now_seconds() - step_started).max(1e-3) as f32;
            report(FromWorker::Extraction(extraction));
            yield_to_events().await;
            if stop.get() {
                break;
            }
        }
        extraction_seconds += now_seconds() - step_started;

        // While the next shard is still on its way, train on the photos that have arrived.
        // Those epochs are a warm-up: the configured epochs all run on every photo.
        let next_shard_pending = downloads.as_mut().peek().now_or_never().is_none();
        if !is_validation && !state.train.is_empty() && next_shard_pending && !stop.get() {
            let trainer = trainer.get_or_insert_with(|| new_trainer(&request, &state, classes));
            let epoch_started = now_seconds();
            train_epoch(trainer, &mut state, &request, classes, &report).await?;
            training_seconds += now_seconds() - epoch_started;
        }
    }
    drop(downloads);

    let mut trainer = match trainer {
        Some(trainer) => trainer,
        None if state.train.is_empty() => {
            return Err(RunError::Failed(
                "no training photo could be read, so there is nothing to train on".into(),
            ));
        }
        None => new_trainer(&request, &state, classes),
    };
    report(FromWorker::Phase("Training the classifier head".into()));
    let warm_up_epochs = trainer.epochs_done();
    while trainer.epochs_done() < warm_up_epochs + request.training.epochs && !stop.get() {
        let epoch_started = now_seconds();
        train_epoch(&mut trainer, &mut state, &request, classes, &report).await?;
        training_seconds += now_seconds() - epoch_started;
        yield_to_events().await;
    }

    if trainer.epochs_done() == 0 {
        return Err(RunError::Failed(
            "stopped before the head was trained: there is no result to show yet".into(),
        ));
    }
    report(FromWorker::Phase(
        "Evaluating on the validation photos".into(),
    ));
    let validation = trainer
        .evaluate(&state.validation, classes)
        .await
        .map_err(|e| RunError::Failed(e.to_string()))?;
    let head = trainer
        .snapshot()
        .await
        .map_err(|e| RunError::Failed(e.to_string()))?;
    let model_file = model_file(
        &trainer,
        &head,
        model,
        &manifest,
        &state,
        validation.accuracy,
    )?;
    log::info!("lesson 02 finished in {:.1} s", now_seconds() - started);
    Ok(FeatureExtractionResult {
        classes: manifest.classes.clone(),
        validation,
        validation_credits: credits(&manifest, &state.validation_photos),
        validation_photos: state.validation_photos.clone(),
        train_photos: state.train.len(),
        feature_seconds: extraction_seconds,
        training_seconds,
        photos_per_second: extraction.photos_per_second,
        backend: state.backend.info.name.clone(),
        bytes_downloaded: progress.bytes_done,
        stopped_early: stop.get(),
        model_file,
        head,
    })
}

/// The trained head as a trained-model file that the student can download.
fn model_file(
    trainer: &HeadTrainer,
    snapshot: &HeadSnapshot,
    backbone: &ModelEntry,
    manifest: &DatasetManifest,
    state: &RunState,
    validation_accuracy: f32,
) -> Result<Vec<u8>, RunError> {
    let config = trainer.config();
    let info = TrainedModelInfo {
        kind: ModelKind::FeatureExtraction {
            backbone: BackboneRef::from(backbone),
        },
        training: TrainingRecord {
            lesson: "02".into(),
            epochs: snapshot.epochs_done,
            learning_rate: config.learning_rate,
            batch_size: config.batch_size,
            seed: config.seed,
            train_photos: state.train.len(),
            validation_photos: state.validation.len(),
            validation_accuracy: (!state.validation.is_empty()).then_some(validation_accuracy),
            trained_with: format!("browser, {} backend", state.backend.info.name),
        },
    };
    write_model_file(
        info,
        manifest.classes.clone(),
        state.weights.preprocessing().clone(),
        head_parameters(snapshot),
    )
    .map_err(|e| RunError::Failed(format!("the trained model could not be saved: {e}")))
}

/// The attribution line of each named photo (CC BY asks for credit wherever a photo is used).
pub(super) fn credits(manifest: &DatasetManifest, names: &[String]) -> Vec<String> {
    let by_name: std::collections::HashMap<&str, &str> = manifest
        .photos
        .iter()
        .map(|p| (p.name.as_str(), p.attribution.as_str()))
        .collect();
    names
        .iter()
        .map(|name| {
            format!(
                "{name}: {}",
                by_name.get(name.as_str()).unwrap_or(&"unknown")
            )
        })
        .collect()
}

/// Photos the run will send through the backbone: those of the chosen shards, at most the
/// requested number per class and split.
fn photos_to_extract(manifest: &DatasetManifest, request: &FeatureExtractionRun) -> usize {
    let classes = manifest.classes.len();
    let mut counts = [vec![0usize; classes], vec![0usize; classes]];
    for photo in &manifest.photos {
        let wanted = request.full_training_split || photo.subset == SUBSET_LESSON;
        if wanted && photo.class_index < classes {
            counts[usize::from(photo.split == SPLIT_VALIDATION)][photo.class_index] += 1;
        }
    }
    let limits = [request.train_per_class, request.validation_per_class];
    counts
        .iter()
        .zip(limits)
        .map(|(per_class, limit)| {
            per_class
                .iter()
                .map(|&n| limit.map_or(n, |limit| n.min(limit)))
                .sum::<usize>()
        })
        .sum()
}

fn new_trainer(request: &FeatureExtractionRun, state: &RunState, classes: usize) -> HeadTrainer {
    HeadTrainer::new(
        request.training.clone(),
        FEATURE_WIDTH,
        classes,
        &state.backend.device.clone().autodiff(),
    )
}

/// One epoch, with the switch to the CPU if the GPU is lost (for real, or simulated by a test).
async fn train_epoch(
    trainer: &mut HeadTrainer,
    state: &mut RunState,
    request: &FeatureExtractionRun,
    classes: usize,
    report: &Report,
) -> Result<(), RunError> {
    loop {
        let next_epoch = trainer.epochs_done() + 1;
        let simulated_loss =
            state.backend.is_gpu && request.simulate_device_loss_at_epoch == Some(next_epoch);
        let outcome = if simulated_loss {
            Err(TrainError::Device(format!(
                "simulated loss at the start of epoch {next_epoch}"
            )))
        } else {
            trainer.run_epoch(&state.train, &state.validation).await
        };
        match outcome {
            Ok(epoch) => {
                report(FromWorker::Epoch(epoch));
                match trainer.snapshot().await {
                    Ok(snapshot) => state.snapshot = Some(snapshot),
                    Err(e) => log::warn!("could not keep a copy of the head: {e}"),
                }
                return Ok(());
            }
            Err(TrainError::Device(why)) if state.backend.is_gpu => {
                state.fall_back_to_cpu(report, &why)?;
                let device = state.backend.device.clone().autodiff();
                *trainer = match &state.snapshot {
                    Some(snapshot) => {
                        HeadTrainer::resume(request.training.clone(), snapshot, &device)
                    }
                    None => {
                        HeadTrainer::new(request.training.clone(), FEATURE_WIDTH, classes, &device)
                    }
                };
            }
            Err(e) => return Err(RunError::Failed(e.to_string())),
        }
    }
}
