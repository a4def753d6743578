//! Lesson 04 in the worker: every backbone of the zoo measured in this tab. A backbone whose
//! pretrained weights are installed extracts the features of the lesson photos, trains a head
//! and is evaluated; one without weights runs its real architecture with random weights, so its
//! size and speed are still measured. Before a backbone loads, its largest buffer is checked
//! against what the device allows.

use std::cell::Cell;
use std::rc::Rc;

use gloo_timers::future::TimeoutFuture;
use js_sys::Reflect;
use transfer_lab_model::backbone::{Backbone, BackboneKind};
use transfer_lab_model::features::{FeatureSet, extract_backbone_features};
use transfer_lab_model::head::{HeadTrainer, TrainError};
use transfer_lab_model::photo_set::PhotoSet;
use transfer_lab_model::shards::{DatasetManifest, ModelEntry, ModelsIndex};
use transfer_lab_model::weights::{Preprocessing, WebWeights};
use wasm_bindgen::JsCast;
use wasm_bindgen_futures::JsFuture;

use super::backend::Backend;
use super::feature_run::{Report, RunError};
use super::fetch::{fetch_bytes, fetch_json};
use super::photos::{PerClassLimits, download_lesson_photos};
use crate::protocol::{ExtractionProgress, FromWorker, ZooResult, ZooRow, ZooRun};

/// Most photos per batch, whatever the device allows.
const MOST_PER_BATCH: usize = 16;
/// WebGPU's default cap on one storage buffer binding (128 MiB); adapters may allow more, but
/// burn may not ask for more, so the lesson never plans beyond it.
const WEBGPU_DEFAULT_BUFFER: u64 = 128 << 20;
/// The budget of one buffer on the CPU backend: the tab's WebAssembly memory is at most 4 GiB
/// and is shared by the photos, the weights and every activation.
const CPU_BUFFER_BUDGET: u64 = 256 << 20;

fn now_seconds() -> f64 {
    js_sys::Date::now() / 1000.0
}

/// Lets queued messages (such as Stop) reach the worker between long steps.
async fn yield_to_events() {
    TimeoutFuture::new(0).await;
}

/// The largest buffer the run may plan for on `backend`.
async fn buffer_limit(backend: &Backend) -> u64 {
    if !backend.is_gpu {
        return CPU_BUFFER_BUDGET;
    }
    adapter_buffer_limit()
        .await
        .map_or(WEBGPU_DEFAULT_BUFFER, |limit| {
            limit.min(WEBGPU_DEFAULT_BUFFER)
        })
}

/// `min(maxStorageBufferBindingSize, maxBufferSize)` of the browser's WebGPU adapter.
async fn adapter_buffer_limit() -> Option<u64> {
    let navigator = Reflect::get(&js_sys::global(), &"navigator".into()).ok()?;
    let gpu = Reflect::get(&navigator, &"gpu".into()).ok()?;
    let request: js_sys::Function = Reflect::get(&gpu, &"requestAdapter".into())
        .ok()?
        .dyn_into()
        .ok()?;
    let promise: js_sys::Promise = request.call0(&gpu).ok()?.dyn_into().ok()?;
    let adapter = JsFuture::from(promise).await.ok()?;
    let limits = Reflect::get(&adapter, &"limits".into()).ok()?;
    let limit = |name: &str| Reflect::get(&limits, &name.into()).ok()?.as_f64();
    let binding = limit("maxStorageBufferBindingSize")?;
    let buffer = limit("maxBufferSize")?;
    Some(binding.min(buffer) as u64)
}

fn megabytes(bytes: u64) -> f64 {
    bytes as f64 / 1e6
}

/// What the run shares between backbones.
struct Zoo {
    base: String,
    backend: Backend,
    buffer_limit: u64,
    models: ModelsIndex,
    classes: usize,
    train: PhotoSet,
    validation: PhotoSet,
}

/// Runs lesson 04; `stop` is raised by the page's Stop button.
pub async fn run(
    request: ZooRun,
    report: Report,
    stop: Rc<Cell<bool>>,
) -> Result<ZooResult, RunError> {
    let base = request.assets_base.trim_end_matches('/').to_string();
    let backend = Backend::select(request.backend).await;
    report(FromWorker::Backend(backend.info.clone()));
    report(FromWorker::Phase(
        "Reading the dataset and model lists".into(),
    ));
    let manifest: DatasetManifest = fetch_json(&format!("{base}/flowers/manifest.json")).await?;
    let models: ModelsIndex = fetch_json(&format!("{base}/models/index.json")).await?;
    let buffer_limit = buffer_limit(&backend).await;
    report(FromWorker::Phase("Downloading the lesson photos".into()));
    let limits = PerClassLimits {
        train: request.train_per_class,
        validation: request.validation_per_class,
    };
    let size = manifest.image_size as usize;
    let photos = download_lesson_photos(&base, &manifest, limits, size, &report).await;
    if photos.train.is_empty() || photos.validation.is_empty() {
        return Err(RunError::Failed(
            "no lesson photo could be read, so there is nothing to measure the backbones on".into(),
        ));
    }
    let mut zoo = Zoo {
        base,
        backend,
        buffer_limit,
        models,
        classes: manifest.classes.len(),
        train: photos.train,
        validation: photos.validation,
    };
    let mut rows = Vec::new();
    for kind in BackboneKind::ALL {
        if stop.get() {
            break;
        }
        let row = measure(&mut zoo, kind, &request, &report, &stop).await;
        report(FromWorker::ZooRow(Box::new(row.clone())));
        rows.push(row);
    }
    Ok(ZooResult {
        rows,
        train_photos: zoo.train.len(),
        validation_photos: zoo.validation.len(),
        backend: zoo.backend.info.name.clone(),
        buffer_limit_bytes: zoo.buffer_limit,
        stopped: stop.get(),
    })
}

/// Measures one backbone; whatever goes wrong is written in the row's note, so the other
/// backbones are still measured.
async fn measure(
    zoo: &mut Zoo,
    kind: BackboneKind,
    request: &ZooRun,
    report: &Report,
    stop: &Rc<Cell<bool>>,
) -> ZooRow {
    let entry = zoo.models.listed(kind.id()).cloned();
    let installed = entry.as_ref().is_some_and(|e| e.installed);
    let mut row = ZooRow {
        backbone: kind.id().into(),
        name: kind.display_name().into(),
        parameters: kind.parameter_count(),
        installed,
        download_bytes: match &entry {
            Some(e) if e.installed => e.bytes,
            _ => kind.parameter_count() as u64,
        },
        install: (!installed).then(|| install_hint(kind, entry.as_ref())),
        photos_timed: 0,
        photos_per_second: None,
        latency_ms: None,
        batch: 0,
        head_seconds: None,
        validation_accuracy: None,
        note: None,
    };
    let Some(batch) = kind.largest_batch_within(zoo.buffer_limit, MOST_PER_BATCH) else {
        row.note = Some(format!(
            "Too large for this device: one of its buffers needs {:.0} MB, and the {} backend \
             allows {:.0} MB per buffer. Untick WebGPU (CPU only) to measure it on the CPU.",
            megabytes(kind.largest_buffer_bytes(1)),
            zoo.backend.info.name,
            megabytes(zoo.buffer_limit),
        ));
        return row;
    };
    row.batch = batch;
    match measure_on_device(zoo, kind, entry.as_ref(), request, report, stop, &mut row).await {
        Ok(()) => {}
        Err(ZooError::Stopped) => {
            row.note = Some("Stopped before this backbone was fully measured.".into())
        }
        Err(ZooError::Failed(reason)) => row.note = Some(reason),
        Err(ZooError::DeviceLost(why)) => {
            row.note = Some(format!(
                "The GPU device was lost while measuring it ({why}); the remaining backbones \
                 run on the CPU."
            ));
            report(FromWorker::Warning(format!(
                "The GPU device was lost while measuring {} ({why}). The lesson goes on on the \
                 CPU backend; the rows measured so far are kept.",
                kind.display_name()
            )));
            zoo.backend = Backend::cpu("switched to the CPU after the GPU device was lost");
            zoo.buffer_limit = CPU_BUFFER_BUDGET;
            report(FromWorker::Backend(zoo.backend.info.clone()));
        }
    }
    row
}

/// How one backbone's measurement ended early.
enum ZooError {
    /// The student pressed Stop.
    Stopped,
    /// The GPU device was lost.
    DeviceLost(String),
    /// Anything else, in plain words.
    Failed(String),
}

impl ZooError {
    fn from_train(error: TrainError) -> Self {
        match error {
            TrainError::Device(why) => ZooError::DeviceLost(why),
            other => ZooError::Failed(other.to_string()),
        }
    }
}

/// The one-line instruction for installing a missing backbone's weights.
fn install_hint(kind: BackboneKind, entry: Option<&ModelEntry>) -> String {
    entry.and_then(|e| e.install.clone()).unwrap_or_else(|| {
        format!(
            "The {} weights are not installed: add the official torchvision file to the asset \
             source's models/ folder and run `transfer-lab prepare` again.",
            kind.display_name()
        )
    })
}

async fn measure_on_device(
    zoo: &Zoo,
    kind: BackboneKind,
    entry: Option<&ModelEntry>,
    request: &ZooRun,
    report: &Report,
    stop: &Rc<Cell<bool>>,
    row: &mut ZooRow,
) -> Result<(), ZooError> {
    let name = kind.display_name();
    let device = &zoo.backend.device;
    let (backbone, preprocessing) = match entry.filter(|e| e.installed) {
        Some(entry) => {
            report(FromWorker::Phase(format!(
                "{name}: downloading its pretrained weights ({:.1} MB)",
                megabytes(entry.bytes)
            )));
            let url = format!("{}/models/{}", zoo.base, entry.file);
            let bytes = fetch_bytes(&url, Some(&entry.sha256))
                .await
                .map_err(|e| ZooError::Failed(e.to_string()))?;
            let weights = WebWeights::from_bytes(&bytes)
                .map_err(|e| ZooError::Failed(format!("{}: {e}", entry.file)))?;
            let backbone = Backbone::from_weights(kind, &weights, device)
                .map_err(|e| ZooError::Failed(format!("{}: {e}", entry.file)))?;
            (backbone, weights.preprocessing().clone())
        }
        None => {
            report(FromWorker::Phase(format!(
                "{name}: no pretrained weights installed; building its architecture with random \
                 weights to measure its speed"
            )));
            (Backbone::random(kind, device), kind.preprocessing())
        }
    };
    yield_to_events().await;

    // One photo twice: the first pass compiles the GPU kernels and warms caches.
    report(FromWorker::Phase(format!("{name}: timing one photo")));
    let one = [zoo.validation.photo(0)];
    for pass in 0..2 {
        let started = now_seconds();
        extract_backbone_features(&backbone, &one, &preprocessing, device)
            .await
            .map_err(ZooError::from_train)?;
        if pass == 1 {
            row.latency_ms = Some((now_seconds() - started) * 1000.0);
        }
        if stop.get() {
            return Err(ZooError::Stopped);
        }
    }

    if !row.installed {
        report(FromWorker::Phase(format!(
            "{name}: timing {} photos in batches of {}",
            request.speed_photos, row.batch
        )));
        let indices: Vec<usize> = (0..request.speed_photos.max(1))
            .map(|i| i % zoo.train.len())
            .collect();
        let (_, seconds) = extract(
            zoo,
            &backbone,
            &preprocessing,
            &zoo.train,
            &indices,
            row,
            report,
            stop,
        )
        .await?;
        row.photos_timed = indices.len();
        row.photos_per_second = Some(indices.len() as f64 / seconds.max(1e-6));
        return Ok(());
    }

    report(FromWorker::Phase(format!(
        "{name}: extracting the features of every lesson photo"
    )));
    let all_train: Vec<usize> = (0..zoo.train.len()).collect();
    let all_validation: Vec<usize> = (0..zoo.validation.len()).collect();
    let (train, train_seconds) = extract(
        zoo,
        &backbone,
        &preprocessing,
        &zoo.train,
        &all_train,
        row,
        report,
        stop,
    )
    .await?;
    let (validation, validation_seconds) = extract(
        zoo,
        &backbone,
        &preprocessing,
        &zoo.validation,
        &all_validation,
        row,
        report,
        stop,
    )
    .await?;
    row.photos_timed = train.len() + validation.len();
    row.photos_per_second =
        Some(row.photos_timed as f64 / (train_seconds + validation_seconds).max(1e-6));

    report(FromWorker::Phase(format!(
        "{name}: training a classifier head"
    )));
    let started = now_seconds();
    let mut trainer = HeadTrainer::new(
        request.head_training.clone(),
        kind.feature_dim(),
        zoo.classes,
        &device.clone().autodiff(),
    );
    while trainer.epochs_done() < request.head_training.epochs {
        trainer
            .run_epoch(&train, &validation)
            .await
            .map_err(ZooError::from_train)?;
        yield_to_events().await;
        if stop.get() {
            return Err(ZooError::Stopped);
        }
    }
    row.head_seconds = Some(now_seconds() - started);
    let evaluation = trainer
        .evaluate(&validation, zoo.classes)
        .await
        .map_err(ZooError::from_train)?;
    row.validation_accuracy = Some(evaluation.accuracy);
    Ok(())
}

/// The features of `photos[indices]`, in batches of `row.batch`, with progress; returns them
/// and the seconds spent in the backbone.
#[allow(clippy::too_many_arguments)]
async fn extract(
    zoo: &Zoo,
    backbone: &Backbone,
    preprocessing: &Preprocessing,
    photos: &PhotoSet,
    indices: &[usize],
    row: &ZooRow,
    report: &Report,
    stop: &Rc<Cell<bool>>,
) -> Result<(FeatureSet, f64), ZooError> {
    let mut features = FeatureSet::new(backbone.feature_dim());
    let mut seconds = 0.0;
    let mut progress = ExtractionProgress {
        photos_total: indices.len(),
        ..Default::default()
    };
    for chunk in indices.chunks(row.batch.max(1)) {
        let views: Vec<&[u8]> = chunk.iter().map(|&i| photos.photo(i)).collect();
        let labels: Vec<usize> = chunk.iter().map(|&i| photos.labels()[i]).collect();
        let started = now_seconds();
        let values =
            extract_backbone_features(backbone, &views, preprocessing, &zoo.backend.device)
                .await
                .map_err(ZooError::from_train)?;
        seconds += now_seconds() - started;
        features.extend(&values, &labels);
        progress.photos_done += chunk.len();
        progress.photos_per_second = (progress.photos_done as f64 / seconds.max(1e-6)) as f32;
        progress.cache_bytes = features.bytes();
        report(FromWorker::Extraction(progress));
        yield_to_events().await;
        if stop.get() {
            return Err(ZooError::Stopped);
        }
    }
    Ok((features, seconds))
}
