//! The page's view of the training worker: it starts the worker, sends requests and turns the
//! worker's messages into signals.

use leptos::prelude::*;
use transfer_lab_model::head::EpochReport;
use wasm_bindgen::JsCast;
use wasm_bindgen::prelude::Closure;
use web_sys::{ErrorEvent, MessageEvent, Worker};

use crate::protocol::{
    BackendInfo, DownloadProgress, ExperimentResult, ExtractionProgress, FeatureExtractionResult,
    FeatureExtractionRun, FineTuneExperiment, FineTuneResult, FineTuneRun, FineTuneStart,
    FromWorker, ModelCheck, ModelCheckResult, PhotoAnswer, PhotoQuery, ScratchResult, ScratchRun,
    SweepPoint, ToWorker, ZooResult, ZooRow, ZooRun,
};

/// Script that Trunk generates to load the worker's wasm.
const WORKER_SCRIPT: &str = "./worker_loader.js";

/// The lesson a run belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Lesson {
    /// Lesson 01: a CNN from scratch.
    Scratch,
    /// Lesson 02: feature extraction.
    FeatureExtraction,
    /// Lesson 03: fine-tuning.
    FineTuning,
    /// Lesson 04: the model zoo.
    ModelZoo,
}

/// Signals describing the current run; cheap to copy into components.
#[derive(Clone, Copy)]
pub struct RunState {
    /// The worker has loaded.
    pub worker_ready: RwSignal<bool>,
    /// A run is in progress.
    pub running: RwSignal<bool>,
    /// The lesson of the current or last run.
    pub lesson: RwSignal<Option<Lesson>>,
    /// Backend of the current or last run.
    pub backend: RwSignal<Option<BackendInfo>>,
    /// What the worker is doing.
    pub phase: RwSignal<String>,
    /// Download progress.
    pub download: RwSignal<DownloadProgress>,
    /// Feature-extraction progress.
    pub extraction: RwSignal<ExtractionProgress>,
    /// Finished epochs of the current run.
    pub epochs: RwSignal<Vec<EpochReport>>,
    /// Non-fatal problems of the current run.
    pub warnings: RwSignal<Vec<String>>,
    /// The last finished lesson 02 run.
    pub result: RwSignal<Option<FeatureExtractionResult>>,
    /// The last finished lesson 01 run.
    pub scratch_result: RwSignal<Option<ScratchResult>>,
    /// Points of the lesson 01 dataset-size sweep so far.
    pub sweep: RwSignal<Vec<SweepPoint>>,
    /// Where the current or last lesson 03 run started (its lesson 02 model).
    pub fine_tune_start: RwSignal<Option<FineTuneStart>>,
    /// The last finished lesson 03 run.
    pub fine_tune_result: RwSignal<Option<FineTuneResult>>,
    /// A lesson 03 experiment is in progress.
    pub experiment_running: RwSignal<bool>,
    /// Epochs of the current or last experiment.
    pub experiment_epochs: RwSignal<Vec<EpochReport>>,
    /// Results of the finished experiments: the large learning rate and the cache timing.
    pub experiment_results: RwSignal<Vec<ExperimentResult>>,
    /// Why the last experiment could not run.
    pub experiment_error: RwSignal<Option<String>>,
    /// Backbones measured so far by the current or last lesson 04 run.
    pub zoo_rows: RwSignal<Vec<ZooRow>>,
    /// The last finished lesson 04 run.
    pub zoo_result: RwSignal<Option<ZooResult>>,
    /// Why the last run failed.
    pub error: RwSignal<Option<String>>,
    /// What the check of a loaded model file is doing (`None` when idle).
    pub model_progress: RwSignal<Option<String>>,
    /// The last loaded model's measurement.
    pub model_checked: RwSignal<Option<ModelCheckResult>>,
    /// Why the last loaded model could not be used.
    pub model_error: RwSignal<Option<String>>,
    /// The last photo's classification.
    pub photo_answer: RwSignal<Option<PhotoAnswer>>,
    /// Why the last photo could not be classified.
    pub photo_error: RwSignal<Option<String>>,
    worker: StoredValue<Option<Worker>, LocalStorage>,
}

impl RunState {
    /// Starts the worker and wires its messages to fresh signals.
    pub fn connect() -> Self {
        let state = Self {
            worker_ready: RwSignal::new(false),
            running: RwSignal::new(false),
            lesson: RwSignal::new(None),
            backend: RwSignal::new(None),
            phase: RwSignal::new(String::new()),
            download: RwSignal::new(DownloadProgress::default()),
            extraction: RwSignal::new(ExtractionProgress::default()),
            epochs: RwSignal::new(Vec::new()),
            warnings: RwSignal::new(Vec::new()),
            result: RwSignal::new(None),
            scratch_result: RwSignal::new(None),
            sweep: RwSignal::new(Vec::new()),
            fine_tune_start: RwSignal::new(None),
            fine_tune_result: RwSignal::new(None),
            experiment_running: RwSignal::new(false),
            experiment_epochs: RwSignal::new(Vec::new()),
            experiment_results: RwSignal::new(Vec::new()),
            experiment_error: RwSignal::new(None),
            zoo_rows: RwSignal::new(Vec::new()),
            zoo_result: RwSignal::new(None),
            error: RwSignal::new(None),
            model_progress: RwSignal::new(None),
            model_checked: RwSignal::new(None),
            model_error: RwSignal::new(None),
            photo_answer: RwSignal::new(None),
            photo_error: RwSignal::new(None),
            worker: StoredValue::new_local(None),
        };
        match Worker::new(WORKER_SCRIPT) {
            Ok(worker) => {
                let on_message =
                    Closure::<dyn Fn(MessageEvent)>::new(move |event: MessageEvent| {
                        if let Some(text) = event.data().as_string() {
                            match serde_json::from_str::<FromWorker>(&text) {
                                Ok(message) => state.apply(message),
                                Err(e) => log::error!("unreadable message from the worker: {e}"),
                            }
                        }
                    });
                worker.set_onmessage(Some(on_message.as_ref().unchecked_ref()));
                on_message.forget();
                let on_error = Closure::<dyn Fn(ErrorEvent)>::new(move |event: ErrorEvent| {
                    state.running.set(false);
                    state.experiment_running.set(false);
                    state.error.set(Some(format!(
                        "The training worker stopped unexpectedly ({}). Reload the page to try \
                         again; the CPU backend can be chosen in the settings.",
                        event.message()
                    )));
                });
                worker.set_onerror(Some(on_error.as_ref().unchecked_ref()));
                on_error.forget();
                state.worker.set_value(Some(worker));
            }
            Err(e) => state.error.set(Some(format!(
                "This browser could not start the training worker ({e:?}); Transfer Lab needs \
                 Web Worker support."
            ))),
        }
        state
    }

    fn apply(&self, message: FromWorker) {
        match message {
            FromWorker::Ready => self.worker_ready.set(true),
            FromWorker::Backend(info) => self.backend.set(Some(info)),
            FromWorker::Phase(phase) => self.phase.set(phase),
            FromWorker::Download(progress) => self.download.set(progress),
            FromWorker::Extraction(progress) => self.extraction.set(progress),
            FromWorker::Epoch(epoch) => self.epochs.update(|epochs| epochs.push(epoch)),
            FromWorker::Warning(warning) => self.warnings.update(|w| w.push(warning)),
            FromWorker::Finished(result) => {
                self.running.set(false);
                self.phase.set(if result.stopped_early {
                    "Stopped: results of the photos and epochs finished so far".into()
                } else {
                    "Done".into()
                });
                self.result.set(Some(*result));
            }
            FromWorker::Failed(reason) => {
                self.running.set(false);
                self.error.set(Some(reason));
            }
            FromWorker::EpochsCleared => self.epochs.set(Vec::new()),
            FromWorker::ScratchFinished(result) => {
                self.phase
                    .set("Trained: the dataset-size sweep follows".into());
                self.scratch_result.set(Some(*result));
            }
            FromWorker::Sweep(point) => self.sweep.update(|points| points.push(point)),
            FromWorker::SweepDone => {
                self.running.set(false);
                self.phase.set("Done".into());
            }
            FromWorker::FineTuneStarted(start) => self.fine_tune_start.set(Some(start)),
            FromWorker::FineTuneFinished(result) => {
                self.running.set(false);
                self.phase.set(if result.stopped_by_student {
                    "Stopped: the best epoch so far is kept".into()
                } else {
                    "Done".into()
                });
                self.fine_tune_result.set(Some(*result));
            }
            FromWorker::ExperimentEpoch(epoch) => {
                self.experiment_epochs.update(|epochs| epochs.push(epoch))
            }
            FromWorker::ExperimentFinished(result) => {
                self.experiment_running.set(false);
                self.phase.set("Experiment done".into());
                // A newer result of the same experiment replaces the older one.
                self.experiment_results.update(|results| {
                    results
                        .retain(|r| std::mem::discriminant(r) != std::mem::discriminant(&*result));
                    results.push(*result);
                });
            }
            FromWorker::ExperimentFailed(reason) => {
                self.experiment_running.set(false);
                self.experiment_error.set(Some(reason));
            }
            FromWorker::ModelProgress(text) => self.model_progress.set(Some(text)),
            FromWorker::ModelChecked(result) => {
                self.model_progress.set(None);
                self.model_checked.set(Some(*result));
            }
            FromWorker::ModelRefused(reason) => {
                self.model_progress.set(None);
                self.model_error.set(Some(reason));
            }
            FromWorker::PhotoClassified(answer) => {
                self.model_progress.set(None);
                self.photo_answer.set(Some(*answer));
            }
            FromWorker::PhotoRefused(reason) => {
                self.model_progress.set(None);
                self.photo_error.set(Some(reason));
            }
            FromWorker::ZooRow(row) => self.zoo_rows.update(|rows| rows.push(*row)),
            FromWorker::ZooFinished(result) => {
                self.running.set(false);
                self.phase.set(if result.stopped {
                    "Stopped: the backbones measured so far are kept".into()
                } else {
                    "Done".into()
                });
                self.zoo_result.set(Some(*result));
            }
        }
    }

    fn send(&self, message: &ToWorker) {
        self.worker.with_value(|worker| match worker {
            Some(worker) => {
                if let Err(e) = worker.post_message(&message.to_json().into()) {
                    self.error
                        .set(Some(format!("could not reach the training worker: {e:?}")));
                }
            }
            None => self
                .error
                .set(Some("the training worker is not running".into())),
        });
    }

    /// Clears the previous run's progress for a new run of `lesson`.
    fn begin(&self, lesson: Lesson) {
        self.running.set(true);
        self.lesson.set(Some(lesson));
        self.epochs.set(Vec::new());
        self.warnings.set(Vec::new());
        self.error.set(None);
        self.download.set(DownloadProgress::default());
        self.extraction.set(ExtractionProgress::default());
        self.phase.set("Starting".into());
    }

    /// Starts lesson 01, clearing its previous result and sweep.
    pub fn start_scratch(&self, request: ScratchRun) {
        self.begin(Lesson::Scratch);
        self.scratch_result.set(None);
        self.sweep.set(Vec::new());
        self.send(&ToWorker::StartScratch(request));
    }

    /// Starts lesson 02, clearing the previous run's charts.
    pub fn start_feature_extraction(&self, request: FeatureExtractionRun) {
        self.begin(Lesson::FeatureExtraction);
        self.result.set(None);
        self.send(&ToWorker::StartFeatureExtraction(request));
    }

    /// Starts lesson 03, clearing its previous result and experiments.
    pub fn start_fine_tuning(&self, request: FineTuneRun) {
        self.begin(Lesson::FineTuning);
        self.fine_tune_start.set(None);
        self.fine_tune_result.set(None);
        self.experiment_epochs.set(Vec::new());
        self.experiment_results.set(Vec::new());
        self.experiment_error.set(None);
        self.send(&ToWorker::StartFineTuning(request));
    }

    /// Starts lesson 04, clearing its previous rows.
    pub fn start_model_zoo(&self, request: ZooRun) {
        self.begin(Lesson::ModelZoo);
        self.zoo_rows.set(Vec::new());
        self.zoo_result.set(None);
        self.send(&ToWorker::StartModelZoo(request));
    }

    /// Runs an experiment on the last lesson 03 run's caches.
    pub fn start_experiment(&self, experiment: FineTuneExperiment) {
        self.experiment_running.set(true);
        self.experiment_error.set(None);
        if matches!(experiment, FineTuneExperiment::LargeLearningRate { .. }) {
            self.experiment_epochs.set(Vec::new());
        }
        self.send(&ToWorker::FineTuneExperiment(experiment));
    }

    /// Whether the current or last run is of `lesson`.
    pub fn is_lesson(&self, lesson: Lesson) -> bool {
        self.lesson.get() == Some(lesson)
    }

    /// Loads a trained-model file in the worker and measures it on the validation photos.
    pub fn check_model(&self, request: ModelCheck) {
        self.model_checked.set(None);
        self.model_error.set(None);
        self.model_progress
            .set(Some(format!("Reading {}", request.file_name)));
        self.send(&ToWorker::CheckModel(request));
    }

    /// Classifies one photo with a trained-model file in the worker.
    pub fn classify_photo(&self, query: PhotoQuery) {
        self.photo_error.set(None);
        self.model_progress
            .set(Some(format!("Reading {}", query.photo_name)));
        self.send(&ToWorker::ClassifyPhoto(query));
    }

    /// Whether the worker is busy with a lesson run or a model check.
    pub fn busy(&self) -> bool {
        self.running.get() || self.experiment_running.get() || self.model_progress.get().is_some()
    }

    /// Asks the worker to stop after its current step.
    pub fn stop(&self) {
        self.phase.set("Stopping after the current step".into());
        self.send(&ToWorker::Stop);
    }
}
