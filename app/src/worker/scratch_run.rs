//! Lesson 01 in the worker: download the lesson photos, train a small CNN from scratch epoch by
//! epoch, then train it again on smaller subsets for the accuracy-vs-dataset-size sweep.

use std::cell::Cell;
use std::rc::Rc;

use transfer_lab_model::head::{EpochReport, TrainError};
use transfer_lab_model::photo_set::PhotoSet;
use transfer_lab_model::scratch_cnn::{ScratchCnnConfig, ScratchTrainer};
use transfer_lab_model::shards::DatasetManifest;

use super::backend::Backend;
use super::feature_run::{Report, RunError};
use super::fetch::fetch_json;
use super::photos::{LessonPhotos, PerClassLimits, download_lesson_photos};
use crate::protocol::{FromWorker, ScratchResult, ScratchRun, SweepPoint};

fn now_seconds() -> f64 {
    js_sys::Date::now() / 1000.0
}

/// Lets queued messages (such as Stop) reach the worker between epochs.
async fn yield_to_events() {
    gloo_timers::future::TimeoutFuture::new(0).await;
}

/// Trains a fresh CNN on `train` for the configured epochs, calling `on_epoch` after each; stops
/// between epochs when asked. A lost GPU moves the training to the CPU, restarting it there.
async fn train_cnn(
    request: &ScratchRun,
    backend: &mut Backend,
    (train, validation): (&PhotoSet, &PhotoSet),
    classes: usize,
    report: &Report,
    stop: &Cell<bool>,
    mut on_epoch: impl FnMut(&EpochReport),
) -> Result<(ScratchTrainer, Vec<EpochReport>), RunError> {
    let new_trainer = |backend: &Backend| {
        ScratchTrainer::new(
            request.training.clone(),
            ScratchCnnConfig::default(),
            classes,
            &backend.device.clone().autodiff(),
        )
    };
    let mut trainer = new_trainer(backend);
    let mut epochs = Vec::new();
    while epochs.len() < request.training.epochs && !stop.get() {
        match trainer.run_epoch(train, validation).await {
            Ok(epoch) => {
                on_epoch(&epoch);
                epochs.push(epoch);
            }
            Err(TrainError::Device(why)) if backend.is_gpu => {
                report(FromWorker::Warning(format!(
                    "The GPU device was lost ({why}). Training restarts on the CPU backend with \
                     the photos already downloaded."
                )));
                *backend = Backend::cpu("switched to the CPU after the GPU device was lost");
                report(FromWorker::Backend(backend.info.clone()));
                report(FromWorker::EpochsCleared);
                trainer = new_trainer(backend);
                epochs.clear();
            }
            Err(e) => return Err(RunError::Failed(e.to_string())),
        }
        yield_to_events().await;
    }
    Ok((trainer, epochs))
}

/// Runs lesson 01's main training and reports its result; the sweep follows in [`sweep`].
pub async fn run(
    request: ScratchRun,
    report: Report,
    stop: Rc<Cell<bool>>,
) -> Result<(), RunError> {
    let base = request.assets_base.trim_end_matches('/').to_string();
    let mut backend = Backend::select(request.backend).await;
    report(FromWorker::Backend(backend.info.clone()));
    report(FromWorker::Phase("Reading the dataset list".into()));
    let manifest: DatasetManifest = fetch_json(&format!("{base}/flowers/manifest.json")).await?;
    let classes = manifest.classes.len();
    let size = ScratchCnnConfig::default().input_size;
    report(FromWorker::Phase(format!(
        "Downloading the lesson photos and shrinking them to {size}x{size} pixels"
    )));
    let limits = PerClassLimits {
        train: request.train_per_class,
        validation: request.validation_per_class,
    };
    let LessonPhotos {
        train, validation, ..
    } = download_lesson_photos(&base, &manifest, limits, size, &report).await;
    if train.is_empty() {
        return Err(RunError::Failed(
            "no training photo could be read, so there is nothing to train on".into(),
        ));
    }

    report(FromWorker::Phase(format!(
        "Training the CNN from random weights on {} photos",
        train.len()
    )));
    let started = now_seconds();
    let (trainer, epochs) = train_cnn(
        &request,
        &mut backend,
        (&train, &validation),
        classes,
        &report,
        &stop,
        |epoch| report(FromWorker::Epoch(epoch.clone())),
    )
    .await?;
    let Some(last) = epochs.last() else {
        return Err(RunError::Failed(
            "stopped before the first epoch finished: there is no result to show yet".into(),
        ));
    };
    let seconds_per_epoch = (now_seconds() - started) / epochs.len() as f64;
    report(FromWorker::Phase(
        "Evaluating on the validation photos".into(),
    ));
    let evaluation = trainer
        .evaluate(&validation, classes)
        .await
        .map_err(|e| RunError::Failed(e.to_string()))?;
    let largest = request
        .train_per_class
        .unwrap_or(train.len() / classes.max(1));
    report(FromWorker::Sweep(SweepPoint {
        photos_per_class: largest,
        train_accuracy: last.train.accuracy,
        validation_accuracy: evaluation.accuracy,
    }));
    report(FromWorker::ScratchFinished(Box::new(ScratchResult {
        classes: manifest.classes.clone(),
        validation: evaluation,
        train_accuracy: last.train.accuracy,
        train_photos: train.len(),
        seconds_per_epoch,
        backend: backend.info.name.clone(),
        stopped_early: stop.get(),
    })));

    sweep(
        &request,
        &mut backend,
        (&train, &validation),
        classes,
        &report,
        &stop,
    )
    .await;
    report(FromWorker::SweepDone);
    Ok(())
}

/// The same CNN trained on the first N photos of each class, for each N of the request that is
/// smaller than the main run; every point is evaluated on the same validation photos.
async fn sweep(
    request: &ScratchRun,
    backend: &mut Backend,
    (train, validation): (&PhotoSet, &PhotoSet),
    classes: usize,
    report: &Report,
    stop: &Cell<bool>,
) {
    let largest = train.len() / classes.max(1);
    for &per_class in request.sweep_per_class.iter().filter(|&&n| n < largest) {
        if stop.get() {
            return;
        }
        let subset = train.first_per_class(per_class);
        let total = request.training.epochs;
        report(FromWorker::Phase(format!(
            "Dataset-size sweep: training on {per_class} photos per class"
        )));
        let outcome = train_cnn(
            request,
            backend,
            (&subset, validation),
            classes,
            report,
            stop,
            |epoch| {
                report(FromWorker::Phase(format!(
                    "Dataset-size sweep: {per_class} photos per class, epoch {} of {total}",
                    epoch.epoch
                )))
            },
        )
        .await;
        match outcome {
            Ok((_, epochs)) if epochs.len() == total => {
                if let Some(last) = epochs.last() {
                    report(FromWorker::Sweep(SweepPoint {
                        photos_per_class: per_class,
                        train_accuracy: last.train.accuracy,
                        validation_accuracy: last.validation.map_or(0.0, |v| v.accuracy),
                    }));
                }
            }
            // Stopped part-way: an unfinished point would mislead, so it is left out.
            Ok(_) => return,
            Err(RunError::Failed(reason)) => {
                report(FromWorker::Warning(format!(
                    "The sweep stopped at {per_class} photos per class: {reason}"
                )));
                return;
            }
        }
    }
}
