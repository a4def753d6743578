//! Lesson 03 in the worker: the photos go once through the frozen lower part of MobileNetV2 and
//! their activations at the boundary are cached; lesson 02's head is trained on top of them (or
//! taken from this tab's lesson 02 run), then the unfrozen top of the backbone and the head
//! train together from the cache with a low learning rate and early stopping. The caches are
//! kept for the follow-up experiments (a much larger learning rate, the cache's speed-up).

use std::cell::{Cell, RefCell};
use std::rc::Rc;

use transfer_lab_model::features::FeatureSet;
use transfer_lab_model::fine_tune::{
    BoundaryCache, CACHE_BATCH, FineTuneConfig, FineTuner, boundary_shape,
};
use transfer_lab_model::head::{EpochReport, HeadSnapshot, HeadTrainer, TrainError};
use transfer_lab_model::mobilenet_v2::{FEATURE_WIDTH, MobileNetV2};
use transfer_lab_model::photo_set::PhotoSet;
use transfer_lab_model::shards::{DatasetManifest, ModelEntry, ModelsIndex};
use transfer_lab_model::trained_model::{
    BackboneRef, ModelKind, TrainedModelInfo, TrainingRecord, write_model_file,
};
use transfer_lab_model::weights::WebWeights;

use super::backend::Backend;
use super::feature_run::{Report, RunError, credits};
use super::fetch::{fetch_bytes, fetch_json};
use super::photos::{LessonPhotos, PerClassLimits, download_lesson_photos};
use crate::protocol::{
    ExperimentResult, ExtractionProgress, FineTuneExperiment, FineTuneResult, FineTuneRun,
    FineTuneStart, FromWorker,
};

/// What a finished lesson 03 run keeps for its experiments.
pub struct FineTuneSession {
    backend: Backend,
    backbone: MobileNetV2,
    weights: WebWeights,
    photos: LessonPhotos,
    train: BoundaryCache,
    validation: BoundaryCache,
    start_head: HeadSnapshot,
    start_accuracy: f32,
    config: FineTuneConfig,
}

/// The last finished run, shared by the worker's message handlers.
pub type LastSession = Rc<RefCell<Option<FineTuneSession>>>;

fn now_seconds() -> f64 {
    js_sys::Date::now() / 1000.0
}

/// Lets queued messages (such as Stop) reach the worker between long steps.
async fn yield_to_events() {
    gloo_timers::future::TimeoutFuture::new(0).await;
}

fn failed(error: impl std::fmt::Display) -> RunError {
    RunError::Failed(error.to_string())
}

/// The backbone's weight file, downloaded and hash-checked.
async fn download_backbone(
    base: &str,
    report: &Report,
) -> Result<(ModelEntry, WebWeights, u64), RunError> {
    let models: ModelsIndex = fetch_json(&format!("{base}/models/index.json")).await?;
    let entry = models.get("mobilenet_v2").cloned().ok_or_else(|| {
        RunError::Failed(
            "the MobileNetV2 weights are not installed: run the set-up command \
             (transfer-lab prepare) to generate them"
                .into(),
        )
    })?;
    report(FromWorker::Phase(
        "Downloading the pretrained MobileNetV2 weights".into(),
    ));
    let bytes = fetch_bytes(
        &format!("{base}/models/{}", entry.file),
        Some(&entry.sha256),
    )
    .await?;
    let weights =
        WebWeights::from_bytes(&bytes).map_err(|e| failed(format!("{}: {e}", entry.file)))?;
    Ok((entry, weights, bytes.len() as u64))
}

/// The device-dependent part of a run: a lost GPU replaces it with the CPU's.
struct Compute {
    backend: Backend,
    backbone: MobileNetV2,
}

impl Compute {
    fn new(backend: Backend, weights: &WebWeights) -> Result<Self, RunError> {
        let backbone = MobileNetV2::from_weights(weights, &backend.device).map_err(failed)?;
        Ok(Self { backend, backbone })
    }

    /// Whether `error` is a lost GPU that the CPU can take over from.
    fn can_fall_back(&self, error: &TrainError) -> bool {
        self.backend.is_gpu && matches!(error, TrainError::Device(_))
    }

    /// Moves to the CPU backend after the GPU device was lost.
    fn fall_back_to_cpu(
        &mut self,
        weights: &WebWeights,
        error: &TrainError,
        report: &Report,
    ) -> Result<(), RunError> {
        report(FromWorker::Warning(format!(
            "The GPU device was lost ({error}). Continuing on the CPU backend; the cached \
             activations and the best weights so far are kept."
        )));
        *self = Self::new(
            Backend::cpu("switched to the CPU after the GPU device was lost"),
            weights,
        )?;
        report(FromWorker::Backend(self.backend.info.clone()));
        Ok(())
    }
}

/// Fills a boundary cache from `photos`, reporting progress; `None` when stopped.
#[allow(clippy::too_many_arguments)]
async fn fill_cache(
    compute: &mut Compute,
    weights: &WebWeights,
    photos: &PhotoSet,
    config: &FineTuneConfig,
    with_flips: bool,
    progress: &mut ExtractionProgress,
    (report, stop): (&Report, &Cell<bool>),
    started: f64,
) -> Result<Option<BoundaryCache>, RunError> {
    let block = config.first_trainable_block;
    let mut cache = BoundaryCache::new(block, boundary_shape(block, photos.size()), with_flips);
    let bytes_before = progress.cache_bytes;
    let passes = if with_flips { 2 } else { 1 };
    let indices: Vec<usize> = (0..photos.len()).collect();
    for batch in indices.chunks(CACHE_BATCH) {
        let views: Vec<&[u8]> = batch.iter().map(|&i| photos.photo(i)).collect();
        let labels: Vec<usize> = batch.iter().map(|&i| photos.labels()[i]).collect();
        loop {
            let outcome = cache
                .extend_from_photos(
                    &compute.backbone,
                    &views,
                    &labels,
                    photos.size(),
                    weights.preprocessing(),
                    &compute.backend.device,
                )
                .await;
            match outcome {
                Ok(()) => break,
                Err(e) if compute.can_fall_back(&e) => {
                    compute.fall_back_to_cpu(weights, &e, report)?
                }
                Err(e) => return Err(failed(e)),
            }
        }
        progress.photos_done += batch.len() * passes;
        progress.cache_bytes = bytes_before + cache.bytes();
        progress.photos_per_second =
            progress.photos_done as f32 / (now_seconds() - started).max(1e-3) as f32;
        report(FromWorker::Extraction(*progress));
        yield_to_events().await;
        if stop.get() {
            return Ok(None);
        }
    }
    Ok(Some(cache))
}

/// Trains lesson 02's head on the pooled features of the caches and measures it.
async fn train_start_head(
    request: &FineTuneRun,
    compute: &mut Compute,
    weights: &WebWeights,
    (train, validation): (&BoundaryCache, &BoundaryCache),
    classes: usize,
    report: &Report,
) -> Result<(HeadSnapshot, FeatureSet), RunError> {
    let (train_features, validation_features) = loop {
        let device = &compute.backend.device;
        let features = async {
            Ok::<_, TrainError>((
                train.pooled_features(&compute.backbone, device).await?,
                validation
                    .pooled_features(&compute.backbone, device)
                    .await?,
            ))
        }
        .await;
        match features {
            Ok(features) => break features,
            Err(e) if compute.can_fall_back(&e) => compute.fall_back_to_cpu(weights, &e, report)?,
            Err(e) => return Err(failed(e)),
        }
    };
    if let Some(head) = &request.start_head {
        if head.classes == classes && head.feature_width == FEATURE_WIDTH {
            return Ok((head.clone(), validation_features));
        }
        report(FromWorker::Warning(
            "The lesson 02 head of this tab has another number of classes; training a new one."
                .into(),
        ));
    }
    let device = compute.backend.device.clone().autodiff();
    let mut trainer = HeadTrainer::new(
        request.head_training.clone(),
        FEATURE_WIDTH,
        classes,
        &device,
    );
    for _ in 0..request.head_training.epochs {
        trainer
            .run_epoch(&train_features, &validation_features)
            .await
            .map_err(failed)?;
    }
    let head = trainer.snapshot().await.map_err(failed)?;
    Ok((head, validation_features))
}

/// Runs lesson 03 end to end; `stop` is raised by the page's Stop button. The finished run's
/// caches are kept in `last` for [`experiment`].
pub async fn run(
    request: FineTuneRun,
    report: Report,
    stop: Rc<Cell<bool>>,
    last: LastSession,
) -> Result<FineTuneResult, RunError> {
    // A new run replaces the old caches; free them before filling new ones.
    last.borrow_mut().take();
    let started = now_seconds();
    let base = request.assets_base.trim_end_matches('/').to_string();
    let backend = Backend::select(request.backend).await;
    report(FromWorker::Backend(backend.info.clone()));
    report(FromWorker::Phase(
        "Reading the dataset and model lists".into(),
    ));
    let manifest: DatasetManifest = fetch_json(&format!("{base}/flowers/manifest.json")).await?;
    let (entry, weights, weight_bytes) = download_backbone(&base, &report).await?;
    let mut compute = Compute::new(backend, &weights)?;
    let classes = manifest.classes.len();
    let size = weights.preprocessing().input_size;

    report(FromWorker::Phase("Downloading the lesson photos".into()));
    let limits = PerClassLimits {
        train: request.train_per_class,
        validation: request.validation_per_class,
    };
    let photos = download_lesson_photos(&base, &manifest, limits, size, &report).await;
    if photos.train.is_empty() {
        return Err(RunError::Failed(
            "no training photo could be read, so there is nothing to train on".into(),
        ));
    }

    let config = request.fine_tuning.clone();
    report(FromWorker::Phase(format!(
        "Running every photo once through the frozen blocks 0–{} and caching their activations",
        config.first_trainable_block.saturating_sub(1)
    )));
    let flips = config.augment;
    let mut progress = ExtractionProgress {
        photos_total: photos.train.len() * if flips { 2 } else { 1 } + photos.validation.len(),
        ..Default::default()
    };
    let cache_started = now_seconds();
    let io = (&report, stop.as_ref());
    let stopped = || RunError::Failed("stopped while caching: there is no result to show".into());
    let train = fill_cache(
        &mut compute,
        &weights,
        &photos.train,
        &config,
        flips,
        &mut progress,
        io,
        cache_started,
    )
    .await?
    .ok_or_else(stopped)?;
    let validation = fill_cache(
        &mut compute,
        &weights,
        &photos.validation,
        &config,
        false,
        &mut progress,
        io,
        cache_started,
    )
    .await?
    .ok_or_else(stopped)?;
    let cache_seconds = now_seconds() - started;

    report(FromWorker::Phase(
        "Lesson 02 first: the classifier head on the frozen backbone".into(),
    ));
    let head_started = now_seconds();
    let (start_head, _) = train_start_head(
        &request,
        &mut compute,
        &weights,
        (&train, &validation),
        classes,
        &report,
    )
    .await?;
    let head_seconds = now_seconds() - head_started;
    let mut tuner = new_tuner(&compute, config.clone(), &start_head).await?;
    let start_metrics = tuner.measure(&validation).await.map_err(failed)?;
    let start = FineTuneStart {
        lesson02_accuracy: start_metrics.map_or(0.0, |m| m.accuracy),
        lesson02_loss: start_metrics.map_or(0.0, |m| m.loss),
        head_epochs: start_head.epochs_done,
        head_seconds: if request.start_head.is_some() {
            0.0
        } else {
            head_seconds
        },
        from_lesson02_run: request
            .start_head
            .as_ref()
            .is_some_and(|h| h == &start_head),
    };
    report(FromWorker::FineTuneStarted(start));

    report(FromWorker::Phase(format!(
        "Fine-tuning the top of the backbone (from block {}) and the head at learning rate {}",
        config.first_trainable_block, config.learning_rate
    )));
    let tuning_started = now_seconds();
    // Epoch numbers go on across a switch to the CPU, which restarts the tuner.
    let mut epoch_offset = 0;
    let mut epochs_run = 0;
    while !tuner.finished() && !stop.get() {
        match tuner.run_epoch(&train, &validation).await {
            Ok(mut epoch) => {
                epoch.epoch += epoch_offset;
                epochs_run += 1;
                report(FromWorker::Epoch(epoch));
            }
            Err(e) if compute.can_fall_back(&e) => {
                // The best weights so far are on the host; the tuner continues from them.
                let kept = tuner.parameters().await.map_err(failed)?;
                compute.fall_back_to_cpu(&weights, &e, &report)?;
                epoch_offset += tuner.epochs_done();
                let remaining = FineTuneConfig {
                    epochs: config.epochs.saturating_sub(epoch_offset).max(1),
                    ..config.clone()
                };
                let device = compute.backend.device.clone().autodiff();
                tuner = FineTuner::from_parameters(remaining, &kept, &device).map_err(failed)?;
            }
            Err(e) => return Err(failed(e)),
        }
        yield_to_events().await;
    }
    if epochs_run == 0 {
        return Err(RunError::Failed(
            "stopped before the first fine-tuning epoch finished: there is no result yet".into(),
        ));
    }
    let seconds_per_epoch = (now_seconds() - tuning_started) / epochs_run as f64;

    report(FromWorker::Phase(
        "Evaluating the best epoch's weights on the validation photos".into(),
    ));
    let evaluation = tuner.evaluate(&validation).await.map_err(failed)?;
    let record = TrainingRecord {
        lesson: "03".into(),
        epochs: epoch_offset + tuner.epochs_done(),
        learning_rate: config.learning_rate,
        batch_size: config.batch_size,
        seed: config.seed,
        train_photos: photos.train.len(),
        validation_photos: photos.validation.len(),
        validation_accuracy: (!validation.is_empty()).then_some(evaluation.accuracy),
        trained_with: format!("browser, {} backend", compute.backend.info.name),
    };
    let info = TrainedModelInfo {
        kind: ModelKind::FineTuning {
            backbone: BackboneRef::from(&entry),
            first_trainable_block: config.first_trainable_block,
        },
        training: record,
    };
    let parameters = tuner.parameters().await.map_err(failed)?;
    let model_file = write_model_file(
        info,
        manifest.classes.clone(),
        weights.preprocessing().clone(),
        parameters,
    )
    .map_err(|e| failed(format!("the fine-tuned model could not be saved: {e}")))?;
    let best_epoch = tuner.best_epoch().map(|e| e + epoch_offset);
    log::info!("lesson 03 finished in {:.1} s", now_seconds() - started);
    let result = FineTuneResult {
        classes: manifest.classes.clone(),
        start,
        validation: evaluation,
        validation_credits: credits(&manifest, &photos.validation_names),
        validation_photos: photos.validation_names.clone(),
        config: config.clone(),
        epochs_done: epoch_offset + tuner.epochs_done(),
        best_epoch,
        early_stopped: tuner.stopped_early(),
        stopped_by_student: stop.get(),
        train_photos: photos.train.len(),
        cache_bytes: train.bytes() + validation.bytes(),
        cache_seconds,
        seconds_per_epoch,
        backend: compute.backend.info.name.clone(),
        model_file,
    };
    log::info!(
        "lesson 03: {} bytes of weights, {} bytes of photos downloaded",
        weight_bytes,
        photos.bytes
    );
    *last.borrow_mut() = Some(FineTuneSession {
        backend: compute.backend,
        backbone: compute.backbone,
        weights,
        photos,
        train,
        validation,
        start_accuracy: start.lesson02_accuracy,
        start_head,
        config,
    });
    Ok(result)
}

async fn new_tuner(
    compute: &Compute,
    config: FineTuneConfig,
    head: &HeadSnapshot,
) -> Result<FineTuner, RunError> {
    let device = compute.backend.device.clone().autodiff();
    FineTuner::new(config, &compute.backbone, head, &device)
        .await
        .map_err(failed)
}

/// Runs `experiment` on the last run's caches; epochs are reported as they finish.
pub async fn experiment(
    experiment: FineTuneExperiment,
    report: Report,
    stop: Rc<Cell<bool>>,
    last: LastSession,
) -> Result<ExperimentResult, String> {
    // Taken out while the experiment runs (no borrow is held across an await), then put back.
    let Some(session) = last.borrow_mut().take() else {
        return Err("run lesson 03 first: the experiment reuses its cached activations".into());
    };
    let outcome = run_experiment(experiment, &session, &report, &stop).await;
    last.borrow_mut().get_or_insert(session);
    outcome
}

async fn run_experiment(
    experiment: FineTuneExperiment,
    session: &FineTuneSession,
    report: &Report,
    stop: &Cell<bool>,
) -> Result<ExperimentResult, String> {
    let compute = Compute {
        backend: session.backend.clone(),
        backbone: session.backbone.clone(),
    };
    let explain = |e: RunError| match e {
        RunError::Failed(reason) => reason,
    };
    match experiment {
        FineTuneExperiment::LargeLearningRate { factor, epochs } => {
            let config = FineTuneConfig {
                learning_rate: session.config.learning_rate * factor,
                epochs,
                // Every epoch runs: the point is to watch what happens, not to keep the best.
                patience: epochs,
                ..session.config.clone()
            };
            report(FromWorker::Phase(format!(
                "Fine-tuning again from the lesson 02 head at learning rate {}",
                config.learning_rate
            )));
            let learning_rate = config.learning_rate;
            let mut tuner = new_tuner(&compute, config, &session.start_head)
                .await
                .map_err(explain)?;
            let mut reports: Vec<EpochReport> = Vec::new();
            while !tuner.finished() && !stop.get() {
                let epoch = tuner
                    .run_epoch(&session.train, &session.validation)
                    .await
                    .map_err(|e| e.to_string())?;
                report(FromWorker::ExperimentEpoch(epoch.clone()));
                reports.push(epoch);
                yield_to_events().await;
            }
            Ok(ExperimentResult::LargeLearningRate {
                learning_rate,
                start_accuracy: session.start_accuracy,
                epochs: reports,
            })
        }
        FineTuneExperiment::CacheSpeed => {
            let config = FineTuneConfig {
                epochs: 1,
                ..session.config.clone()
            };
            report(FromWorker::Phase(
                "Timing one epoch from the boundary cache".into(),
            ));
            let mut tuner = new_tuner(&compute, config.clone(), &session.start_head)
                .await
                .map_err(explain)?;
            let started = now_seconds();
            tuner
                .run_epoch(&session.train, &session.validation)
                .await
                .map_err(|e| e.to_string())?;
            let cached_seconds = now_seconds() - started;
            yield_to_events().await;
            report(FromWorker::Phase(
                "Timing one epoch that runs the frozen blocks again for every batch".into(),
            ));
            let mut tuner = new_tuner(&compute, config, &session.start_head)
                .await
                .map_err(explain)?;
            let started = now_seconds();
            tuner
                .run_epoch_from_photos(
                    &session.backbone,
                    &session.photos.train,
                    &session.photos.validation,
                    session.weights.preprocessing(),
                )
                .await
                .map_err(|e| e.to_string())?;
            let uncached_seconds = now_seconds() - started;
            Ok(ExperimentResult::CacheSpeed {
                cached_seconds,
                uncached_seconds,
                photos: session.photos.train.len(),
                backend: session.backend.info.name.clone(),
            })
        }
    }
}
