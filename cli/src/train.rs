//! `transfer-lab train`: a lesson's training run without a browser, on the same model code, with
//! the browser's options and defaults; writes the trained-model file.

use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{Context, Result, bail};
use clap::{Args, ValueEnum};
use serde::Serialize;
use transfer_lab_model::burn::module::Module;
use transfer_lab_model::burn::tensor::Device;
use transfer_lab_model::features::{FeatureSet, extract_features};
use transfer_lab_model::fine_tune::{
    BoundaryCache, CACHE_BATCH, FineTuneConfig, FineTuner, boundary_shape, trainable_fraction,
};
use transfer_lab_model::head::{EpochReport, HeadTrainer, HeadTrainingConfig, TrainError};
use transfer_lab_model::metrics::Evaluation;
use transfer_lab_model::mobilenet_v2::{FEATURE_WIDTH, MobileNetV2};
use transfer_lab_model::photo_set::PhotoSet;
use transfer_lab_model::prepared::{LabelledPhotos, PreparedAssets};
use transfer_lab_model::scratch_cnn::{ScratchCnnConfig, ScratchTrainer, ScratchTrainingConfig};
use transfer_lab_model::trained_model::{
    BackboneRef, ModelKind, TrainedModelInfo, TrainingRecord, head_parameters, write_model_file,
};
use transfer_lab_model::weights::{Preprocessing, TensorF32, WebWeights};

use crate::folder::{Skipped, limit_per_class, progress_bar, read_folder_split};

/// Photos sent through the backbone at once, as in the browser.
const EXTRACTION_BATCH: usize = 16;
/// Where the CLI says a model was trained.
const TRAINED_WITH: &str = "transfer-lab CLI, CPU (flex)";
/// Lesson 03's photos per class that choose the best epoch: as many as the lesson's validation
/// photos per class.
const SELECTION_PER_CLASS: usize = 40;

/// The lessons that train a model.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Lesson {
    /// Lesson 01: a small CNN trained from scratch (it overfits).
    #[value(name = "01")]
    ScratchCnn,
    /// Lesson 02: frozen MobileNetV2 features and a trained linear head.
    #[value(name = "02")]
    FeatureExtraction,
    /// Lesson 03: lesson 02, then the top of MobileNetV2 retrained with a low learning rate.
    #[value(name = "03")]
    FineTuning,
}

/// Options of `transfer-lab train`.
#[derive(Debug, Clone, Args)]
pub struct TrainArgs {
    /// Which lesson to run.
    #[arg(long, value_enum)]
    pub lesson: Lesson,
    /// Folder written by `transfer-lab prepare` (photos and pretrained weights).
    #[arg(long, default_value = "public/generated")]
    pub assets: PathBuf,
    /// Train on a folder of class sub-folders instead of the prepared photos; it is split per
    /// class into 80% training and 20% validation photos with `--seed`.
    #[arg(long)]
    pub data: Option<PathBuf>,
    /// Use the full training split of the prepared photos, not only the lesson subset.
    #[arg(long)]
    pub full: bool,
    /// At most this many training photos per class.
    #[arg(long)]
    pub train_per_class: Option<usize>,
    /// At most this many validation photos per class.
    #[arg(long)]
    pub val_per_class: Option<usize>,
    /// Passes over the training photos (default: the lesson's).
    #[arg(long)]
    pub epochs: Option<usize>,
    /// Learning rate (default: the lesson's).
    #[arg(long)]
    pub learning_rate: Option<f64>,
    /// Photos per gradient step (default: the lesson's).
    #[arg(long)]
    pub batch_size: Option<usize>,
    /// Lesson 01: random flips and crops of the training photos in every epoch.
    #[arg(long)]
    pub augment: bool,
    /// Lesson 03: no mirrored training photos (on by default there).
    #[arg(long)]
    pub no_augment: bool,
    /// Lesson 03: the first MobileNetV2 block that trains (0-17; 17 = only the final 1x1
    /// convolution and the head; default: the top ~20% of the parameters).
    #[arg(long)]
    pub first_trainable_block: Option<usize>,
    /// Lesson 03: stop after this many epochs without a better accuracy on the photos that
    /// choose the epoch.
    #[arg(long)]
    pub patience: Option<usize>,
    /// Lesson 03: random crops of every training photo cached besides the photo and its mirror
    /// (default: the lesson's).
    #[arg(long)]
    pub crops_per_photo: Option<usize>,
    /// Lesson 03: photos per class that choose the best epoch, taken from the training split
    /// outside the lesson subset (with `--full` or `--data`: held out of the training photos),
    /// so no validation photo plays a part in any choice; 0 lets the validation photos choose.
    #[arg(long, default_value_t = SELECTION_PER_CLASS)]
    pub select_per_class: usize,
    /// Seed of the initial weights, the shuffling and a `--data` split.
    #[arg(long, default_value_t = 42)]
    pub seed: u64,
    /// Trained-model file to write (default: `lessonNN.tlmodel`).
    #[arg(long, short)]
    pub out: Option<PathBuf>,
    /// Print a JSON summary at the end instead of the text summary.
    #[arg(long)]
    pub json: bool,
}

/// Seconds each phase took.
#[derive(Debug, Clone, Default, Serialize)]
pub struct PhaseSeconds {
    /// Reading and decoding photos.
    pub load: f64,
    /// Frozen-backbone feature extraction.
    pub features: f64,
    /// Training.
    pub training: f64,
    /// Final evaluation.
    pub evaluation: f64,
}

/// What a training run measured.
#[derive(Debug, Serialize)]
pub struct TrainSummary {
    /// The lesson, e.g. `02`.
    pub lesson: String,
    /// The model file written.
    pub model_file: PathBuf,
    /// Class names.
    pub classes: Vec<String>,
    /// Training photos used.
    pub train_photos: usize,
    /// Validation photos measured.
    pub validation_photos: usize,
    /// Name of each validation photo, in the order of the evaluation's predictions.
    pub validation_photo_names: Vec<String>,
    /// Photos that could not be read.
    pub skipped: Vec<Skipped>,
    /// Every epoch's metrics.
    pub epochs: Vec<EpochReport>,
    /// Lesson 03: the validation accuracy of the lesson 02 head it started from.
    pub lesson02_accuracy: Option<f32>,
    /// Lesson 03: the photos that chose the best epoch (0: the validation photos did).
    pub selection_photos: usize,
    /// Lesson 03: where those photos came from.
    pub selection_from: Option<String>,
    /// Lesson 03: the kept epoch (1-based) and its accuracy on the selection photos.
    pub best_epoch: Option<usize>,
    /// Lesson 03: the lesson 02 head's accuracy on the selection photos.
    pub lesson02_selection_accuracy: Option<f32>,
    /// Lesson 03: the kept epoch's accuracy on the selection photos.
    pub selection_accuracy: Option<f32>,
    /// The final evaluation on the validation photos (lesson 03: the best epoch's weights).
    pub validation: Evaluation,
    /// Phase timings.
    pub seconds: PhaseSeconds,
    /// Feature-extraction throughput.
    pub photos_per_second: f64,
}

/// The photos a run trains and validates on, after the per-class limits, with the files that
/// could not be read and the seconds it took.
fn load_photos(args: &TrainArgs, size: usize) -> Result<(LabelledPhotos, Vec<Skipped>, f64)> {
    let started = Instant::now();
    eprintln!("reading photos");
    let (mut photos, skipped) = match &args.data {
        Some(folder) => read_folder_split(folder, size, args.seed)?,
        None => (
            PreparedAssets::open(&args.assets)?.load_photos(args.full, size)?,
            Vec::new(),
        ),
    };
    let (train, train_names) =
        limit_per_class(&photos.train, &photos.train_names, args.train_per_class);
    let (validation, validation_names) = limit_per_class(
        &photos.validation,
        &photos.validation_names,
        args.val_per_class,
    );
    photos.train = train;
    photos.train_names = train_names;
    photos.validation = validation;
    photos.validation_names = validation_names;
    if photos.classes.len() < 2 {
        bail!(
            "training needs at least 2 classes, found {}",
            photos.classes.len()
        );
    }
    let seconds = started.elapsed().as_secs_f64();
    eprintln!(
        "{} training and {} validation photos of {} classes ({} skipped) in {seconds:.1} s",
        photos.train.len(),
        photos.validation.len(),
        photos.classes.len(),
        skipped.len(),
    );
    Ok((photos, skipped, seconds))
}

/// Runs `epochs` epochs of `step`, printing each.
fn run_epochs(
    epochs: usize,
    mut step: impl FnMut() -> Result<EpochReport, TrainError>,
) -> Result<Vec<EpochReport>> {
    let mut reports = Vec::with_capacity(epochs);
    for _ in 0..epochs {
        let report = step()?;
        print_epoch(&report, epochs);
        reports.push(report);
    }
    Ok(reports)
}

/// Writes a trained-model file.
fn save(
    out: &Path,
    info: TrainedModelInfo,
    classes: &[String],
    preprocessing: Preprocessing,
    parameters: Vec<(String, TensorF32)>,
) -> Result<()> {
    let bytes = write_model_file(info, classes.to_vec(), preprocessing, parameters)?;
    std::fs::write(out, bytes).with_context(|| format!("writing {}", out.display()))
}

/// Runs the frozen backbone over every photo once, with a progress bar.
fn extract(
    backbone: &MobileNetV2,
    weights: &WebWeights,
    photos: &PhotoSet,
    device: &Device,
    what: &str,
) -> Result<FeatureSet> {
    let bar = progress_bar(photos.len(), what);
    let mut set = FeatureSet::new(FEATURE_WIDTH);
    let indices: Vec<usize> = (0..photos.len()).collect();
    for batch in indices.chunks(EXTRACTION_BATCH) {
        let views: Vec<&[u8]> = batch.iter().map(|&i| photos.photo(i)).collect();
        let features = pollster::block_on(extract_features(
            backbone,
            &views,
            photos.size(),
            weights.preprocessing(),
            device,
        ))?;
        let labels: Vec<usize> = batch.iter().map(|&i| photos.labels()[i]).collect();
        set.extend(&features, &labels);
        bar.inc(batch.len() as u64);
    }
    bar.finish_and_clear();
    Ok(set)
}

/// Prints one epoch as a line.
fn print_epoch(report: &EpochReport, epochs: usize) {
    let validation = report.validation.map_or(String::from("-"), |v| {
        format!("loss {:.4} accuracy {:.3}", v.loss, v.accuracy)
    });
    eprintln!(
        "epoch {:>3}/{epochs}  train loss {:.4} accuracy {:.3}  validation {validation}",
        report.epoch, report.train.loss, report.train.accuracy
    );
}

/// A lesson 02 head trained on cached features.
struct HeadRun {
    train: FeatureSet,
    validation: FeatureSet,
    trainer: HeadTrainer,
    epochs: Vec<EpochReport>,
    photos_per_second: f64,
}

/// Lesson 02's steps: every photo through the frozen backbone once, then the head.
fn train_head(
    backbone: &MobileNetV2,
    weights: &WebWeights,
    photos: &LabelledPhotos,
    config: HeadTrainingConfig,
    seconds: &mut PhaseSeconds,
) -> Result<HeadRun> {
    let device = Device::flex();
    let started = Instant::now();
    let train = extract(backbone, weights, &photos.train, &device, "training photos")?;
    let validation = extract(
        backbone,
        weights,
        &photos.validation,
        &device,
        "validation photos",
    )?;
    seconds.features = started.elapsed().as_secs_f64();
    let photos_per_second = (train.len() + validation.len()) as f64 / seconds.features.max(1e-9);
    eprintln!(
        "features: {} photos in {:.1} s = {photos_per_second:.1} photos/s",
        train.len() + validation.len(),
        seconds.features
    );
    train_head_on(
        (train, validation),
        photos.classes.len(),
        config,
        photos_per_second,
        seconds,
    )
}

/// Trains lesson 02's head on features already extracted.
fn train_head_on(
    (train, validation): (FeatureSet, FeatureSet),
    classes: usize,
    config: HeadTrainingConfig,
    photos_per_second: f64,
    seconds: &mut PhaseSeconds,
) -> Result<HeadRun> {
    let started = Instant::now();
    let mut trainer = HeadTrainer::new(
        config.clone(),
        FEATURE_WIDTH,
        classes,
        &Device::flex().autodiff(),
    );
    let epochs = run_epochs(config.epochs, || {
        pollster::block_on(trainer.run_epoch(&train, &validation))
    })?;
    seconds.training = started.elapsed().as_secs_f64();
    Ok(HeadRun {
        train,
        validation,
        trainer,
        epochs,
        photos_per_second,
    })
}

/// The record of a run for the model file.
fn record(
    lesson: &str,
    epochs: usize,
    (learning_rate, batch_size, seed): (f64, usize, u64),
    photos: &LabelledPhotos,
    evaluation: &Evaluation,
) -> TrainingRecord {
    TrainingRecord {
        lesson: lesson.into(),
        epochs,
        learning_rate,
        batch_size,
        seed,
        train_photos: photos.train.len(),
        validation_photos: photos.validation.len(),
        validation_accuracy: (!photos.validation.is_empty()).then_some(evaluation.accuracy),
        trained_with: TRAINED_WITH.into(),
    }
}

/// Lesson 02: features once, then the head.
fn feature_extraction(args: &TrainArgs, out: PathBuf) -> Result<TrainSummary> {
    let assets = PreparedAssets::open(&args.assets)?;
    let (weights, entry) = assets.weights("mobilenet_v2")?;
    let backbone = MobileNetV2::from_weights(&weights, &Device::flex())?;
    let mut seconds = PhaseSeconds::default();
    let (photos, skipped, load_seconds) = load_photos(args, weights.preprocessing().input_size)?;
    seconds.load = load_seconds;
    let defaults = HeadTrainingConfig::default();
    let config = HeadTrainingConfig {
        epochs: args.epochs.unwrap_or(defaults.epochs),
        learning_rate: args.learning_rate.unwrap_or(defaults.learning_rate),
        batch_size: args.batch_size.unwrap_or(defaults.batch_size),
        seed: args.seed,
    };
    let run = train_head(&backbone, &weights, &photos, config.clone(), &mut seconds)?;

    let started = Instant::now();
    let classes = photos.classes.len();
    let evaluation = pollster::block_on(run.trainer.evaluate(&run.validation, classes))?;
    seconds.evaluation = started.elapsed().as_secs_f64();
    let snapshot = pollster::block_on(run.trainer.snapshot())?;
    let info = TrainedModelInfo {
        kind: ModelKind::FeatureExtraction {
            backbone: BackboneRef::from(&entry),
        },
        training: record(
            "02",
            config.epochs,
            (config.learning_rate, config.batch_size, config.seed),
            &photos,
            &evaluation,
        ),
    };
    save(
        &out,
        info,
        &photos.classes,
        weights.preprocessing().clone(),
        head_parameters(&snapshot),
    )?;
    Ok(TrainSummary {
        lesson: "02".into(),
        model_file: out,
        train_photos: run.train.len(),
        validation_photos: run.validation.len(),
        classes: photos.classes,
        validation_photo_names: photos.validation_names,
        skipped,
        epochs: run.epochs,
        lesson02_accuracy: None,
        selection_photos: 0,
        selection_from: None,
        best_epoch: None,
        lesson02_selection_accuracy: None,
        selection_accuracy: None,
        validation: evaluation,
        seconds,
        photos_per_second: run.photos_per_second,
    })
}

/// Fills an empty boundary cache batch by batch, with a progress bar.
fn cache(
    mut cache: BoundaryCache,
    backbone: &MobileNetV2,
    weights: &WebWeights,
    photos: &PhotoSet,
    what: &str,
) -> Result<BoundaryCache> {
    let device = Device::flex();
    let bar = progress_bar(photos.len(), what);
    let indices: Vec<usize> = (0..photos.len()).collect();
    for batch in indices.chunks(CACHE_BATCH) {
        let views: Vec<&[u8]> = batch.iter().map(|&i| photos.photo(i)).collect();
        let labels: Vec<usize> = batch.iter().map(|&i| photos.labels()[i]).collect();
        pollster::block_on(cache.extend_from_photos(
            backbone,
            &views,
            &labels,
            photos.size(),
            weights.preprocessing(),
            &device,
        ))?;
        bar.inc(batch.len() as u64);
    }
    bar.finish_and_clear();
    Ok(cache)
}

/// The photos that choose lesson 03's best epoch, and where they came from: `per_class`
/// training photos per class outside the lesson subset, or, when the run trains on every
/// training photo it has (`--full`, `--data`), the first `per_class` of each class held out of
/// them (a class keeps at least one training photo). `None` for `per_class` 0.
fn selection_photos(
    args: &TrainArgs,
    photos: &mut LabelledPhotos,
    size: usize,
) -> Result<Option<(PhotoSet, String)>> {
    let per_class = args.select_per_class;
    if per_class == 0 {
        return Ok(None);
    }
    if args.data.is_none() && !args.full {
        let (extras, _) =
            PreparedAssets::open(&args.assets)?.load_training_extras(per_class, size)?;
        if !extras.is_empty() {
            let from = "training photos outside the lesson subset".to_string();
            return Ok(Some((extras, from)));
        }
    }
    let mut left: Vec<usize> = vec![0; photos.classes.len()];
    for &label in photos.train.labels() {
        left[label] += 1;
    }
    let mut held = PhotoSet::new(size);
    let mut train = PhotoSet::new(size);
    let mut train_names = Vec::new();
    let mut taken = vec![0usize; photos.classes.len()];
    for (index, &label) in photos.train.labels().iter().enumerate() {
        if taken[label] < per_class && left[label] > 1 {
            taken[label] += 1;
            left[label] -= 1;
            held.push(photos.train.photo(index), label);
        } else {
            train.push(photos.train.photo(index), label);
            train_names.push(photos.train_names[index].clone());
        }
    }
    photos.train = train;
    photos.train_names = train_names;
    Ok(Some((
        held,
        "training photos held out of this run's".to_string(),
    )))
}

/// Lesson 03: lesson 02's head first, then the top of the backbone and the head together, from
/// a boundary cache, with early stopping.
fn fine_tuning(args: &TrainArgs, out: PathBuf) -> Result<TrainSummary> {
    let assets = PreparedAssets::open(&args.assets)?;
    let (weights, entry) = assets.weights("mobilenet_v2")?;
    let backbone = MobileNetV2::from_weights(&weights, &Device::flex())?;
    let mut seconds = PhaseSeconds::default();
    let size = weights.preprocessing().input_size;
    let (mut photos, skipped, load_seconds) = load_photos(args, size)?;
    let selection = selection_photos(args, &mut photos, size)?;
    seconds.load = load_seconds;
    let classes = photos.classes.len();

    let defaults = FineTuneConfig::default();
    let config = FineTuneConfig {
        epochs: args.epochs.unwrap_or(defaults.epochs),
        learning_rate: args.learning_rate.unwrap_or(defaults.learning_rate),
        batch_size: args.batch_size.unwrap_or(defaults.batch_size),
        seed: args.seed,
        augment: !args.no_augment,
        patience: args.patience.unwrap_or(defaults.patience),
        first_trainable_block: args
            .first_trainable_block
            .unwrap_or(defaults.first_trainable_block),
        crops_per_photo: args.crops_per_photo.unwrap_or(defaults.crops_per_photo),
    };
    eprintln!(
        "fine-tuning blocks {}.. and the head: {:.1}% of the backbone's parameters train",
        config.first_trainable_block,
        trainable_fraction(config.first_trainable_block) * 100.0
    );
    match &selection {
        Some((set, from)) => eprintln!("the best epoch is chosen on {} {from}", set.len()),
        None => eprintln!("the best epoch is chosen on the validation photos"),
    }
    let started = Instant::now();
    let block = config.first_trainable_block;
    let plain = || BoundaryCache::new(block, boundary_shape(block, size), false);
    let train = cache(
        BoundaryCache::for_training(&config, size),
        &backbone,
        &weights,
        &photos.train,
        "training photos",
    )?;
    let validation = cache(
        plain(),
        &backbone,
        &weights,
        &photos.validation,
        "validation photos",
    )?;
    let select = match &selection {
        Some((set, _)) => Some(cache(
            plain(),
            &backbone,
            &weights,
            set,
            "selection photos",
        )?),
        None => None,
    };
    // Lesson 02's features come from the cache through the frozen top: no second full pass.
    let device = Device::flex();
    let features = (
        pollster::block_on(train.pooled_features(&backbone, &device))?,
        pollster::block_on(validation.pooled_features(&backbone, &device))?,
    );
    seconds.features = started.elapsed().as_secs_f64();
    let select_len = select.as_ref().map_or(0, BoundaryCache::len);
    let passes = train.len() * train.views() + validation.len() + select_len;
    let photos_per_second = passes as f64 / seconds.features.max(1e-9);
    let bytes =
        train.bytes() + validation.bytes() + select.as_ref().map_or(0, BoundaryCache::bytes);
    eprintln!(
        "boundary cache: {:.1} MB ({} views per training photo); {passes} photos through the \
         frozen blocks, {photos_per_second:.1} photos/s",
        bytes as f64 / 1e6,
        train.views(),
    );

    eprintln!("lesson 02 first: the head on frozen features");
    let head_config = HeadTrainingConfig {
        seed: args.seed,
        ..HeadTrainingConfig::default()
    };
    let mut head_seconds = PhaseSeconds::default();
    let head = train_head_on(
        features,
        classes,
        head_config,
        photos_per_second,
        &mut head_seconds,
    )?;
    let lesson02 = pollster::block_on(head.trainer.evaluate(&head.validation, classes))?;
    let snapshot = pollster::block_on(head.trainer.snapshot())?;
    eprintln!("lesson 02 validation accuracy: {:.4}", lesson02.accuracy);

    let started = Instant::now();
    let device = Device::flex().autodiff();
    let mut tuner = pollster::block_on(FineTuner::new(
        config.clone(),
        &backbone,
        &snapshot,
        &device,
    ))?;
    let lesson02_selection = match &select {
        Some(select) => pollster::block_on(tuner.measure(select))?.map(|m| m.accuracy),
        None => None,
    };
    let chooser = select.as_ref().unwrap_or(&validation);
    let mut epochs = Vec::new();
    while !tuner.finished() {
        let mut report = pollster::block_on(tuner.run_epoch(&train, chooser))?;
        if select.is_some() {
            eprint!(
                "selection {:.3}  ",
                report.validation.map_or(0.0, |m| m.accuracy)
            );
            // The summary's validation column is the validation photos', as in lessons 01-02.
            report.validation = pollster::block_on(tuner.measure(&validation))?;
        }
        print_epoch(&report, config.epochs);
        epochs.push(report);
    }
    if tuner.stopped_early() {
        eprintln!(
            "stopped early: no better accuracy on the selection photos for {} epochs; keeping \
             epoch {}",
            config.patience,
            tuner.best_epoch().unwrap_or(0)
        );
    }
    seconds.training = head_seconds.training + started.elapsed().as_secs_f64();

    let started = Instant::now();
    let evaluation = pollster::block_on(tuner.evaluate(&validation))?;
    seconds.evaluation = started.elapsed().as_secs_f64();
    let info = TrainedModelInfo {
        kind: ModelKind::FineTuning {
            backbone: BackboneRef::from(&entry),
            first_trainable_block: block,
        },
        training: record(
            "03",
            tuner.epochs_done(),
            (config.learning_rate, config.batch_size, config.seed),
            &photos,
            &evaluation,
        ),
    };
    let parameters = pollster::block_on(tuner.parameters())?;
    save(
        &out,
        info,
        &photos.classes,
        weights.preprocessing().clone(),
        parameters,
    )?;
    Ok(TrainSummary {
        lesson: "03".into(),
        model_file: out,
        train_photos: photos.train.len(),
        validation_photos: photos.validation.len(),
        classes: photos.classes,
        validation_photo_names: photos.validation_names,
        skipped,
        epochs,
        lesson02_accuracy: Some(lesson02.accuracy),
        selection_photos: select_len,
        selection_from: selection.map(|(_, from)| from),
        best_epoch: tuner.best_epoch(),
        lesson02_selection_accuracy: lesson02_selection,
        selection_accuracy: tuner.best_validation_accuracy(),
        validation: evaluation,
        seconds,
        photos_per_second: head.photos_per_second,
    })
}

/// Lesson 01: a small CNN from random weights, on the photos' pixels.
fn scratch_cnn(args: &TrainArgs, out: PathBuf) -> Result<TrainSummary> {
    let cnn_config = ScratchCnnConfig::default();
    let mut seconds = PhaseSeconds::default();
    let (photos, skipped, load_seconds) = load_photos(args, cnn_config.input_size)?;
    seconds.load = load_seconds;
    let defaults = ScratchTrainingConfig::default();
    let config = ScratchTrainingConfig {
        epochs: args.epochs.unwrap_or(defaults.epochs),
        learning_rate: args.learning_rate.unwrap_or(defaults.learning_rate),
        batch_size: args.batch_size.unwrap_or(defaults.batch_size),
        seed: args.seed,
        augment: args.augment,
    };
    let classes = photos.classes.len();
    let device = Device::flex();
    let started = Instant::now();
    let mut trainer = ScratchTrainer::new(
        config.clone(),
        cnn_config.clone(),
        classes,
        &device.clone().autodiff(),
    );
    let epochs = run_epochs(config.epochs, || {
        pollster::block_on(trainer.run_epoch(&photos.train, &photos.validation))
    })?;
    seconds.training = started.elapsed().as_secs_f64();

    let started = Instant::now();
    let evaluation = pollster::block_on(trainer.evaluate(&photos.validation, classes))?;
    seconds.evaluation = started.elapsed().as_secs_f64();
    let parameters = pollster::block_on(trainer.cnn().valid().parameters())?;
    let info = TrainedModelInfo {
        kind: ModelKind::ScratchCnn {
            cnn: cnn_config.clone(),
        },
        training: record(
            "01",
            config.epochs,
            (config.learning_rate, config.batch_size, config.seed),
            &photos,
            &evaluation,
        ),
    };
    save(
        &out,
        info,
        &photos.classes,
        cnn_config.preprocessing(),
        parameters,
    )?;
    Ok(TrainSummary {
        lesson: "01".into(),
        model_file: out,
        train_photos: photos.train.len(),
        validation_photos: photos.validation.len(),
        classes: photos.classes,
        validation_photo_names: photos.validation_names,
        skipped,
        epochs,
        lesson02_accuracy: None,
        selection_photos: 0,
        selection_from: None,
        best_epoch: None,
        lesson02_selection_accuracy: None,
        selection_accuracy: None,
        validation: evaluation,
        seconds,
        photos_per_second: 0.0,
    })
}

/// Runs `transfer-lab train`.
pub fn run(args: &TrainArgs) -> Result<TrainSummary> {
    let lesson = match args.lesson {
        Lesson::ScratchCnn => "01",
        Lesson::FeatureExtraction => "02",
        Lesson::FineTuning => "03",
    };
    let out = args
        .out
        .clone()
        .unwrap_or_else(|| PathBuf::from(format!("lesson{lesson}.tlmodel")));
    match args.lesson {
        Lesson::ScratchCnn => scratch_cnn(args, out),
        Lesson::FeatureExtraction => feature_extraction(args, out),
        Lesson::FineTuning => fine_tuning(args, out),
    }
}

/// Prints what a run measured.
pub fn print_summary(summary: &TrainSummary) {
    println!(
        "lesson {}: {} classes ({})",
        summary.lesson,
        summary.classes.len(),
        summary.classes.join(", ")
    );
    println!(
        "photos: {} training, {} validation, {} skipped",
        summary.train_photos,
        summary.validation_photos,
        summary.skipped.len()
    );
    for file in &summary.skipped {
        println!("  skipped {}: {}", file.name, file.reason);
    }
    let s = &summary.seconds;
    println!(
        "seconds: load {:.2}, features {:.2} ({:.1} photos/s), training {:.2}, evaluation {:.2}",
        s.load, s.features, summary.photos_per_second, s.training, s.evaluation
    );
    if let Some(lesson02) = summary.lesson02_accuracy {
        println!("lesson 02 validation accuracy (the starting point): {lesson02:.4}");
    }
    if let (Some(from), Some(epoch)) = (&summary.selection_from, summary.best_epoch) {
        let accuracy = |a: Option<f32>| a.map_or(String::from("-"), |a| format!("{a:.4}"));
        println!(
            "best epoch {epoch}, chosen on {} {from}: {} -> {}",
            summary.selection_photos,
            accuracy(summary.lesson02_selection_accuracy),
            accuracy(summary.selection_accuracy)
        );
    }
    println!("validation accuracy: {:.4}", summary.validation.accuracy);
    println!("model written to {}", summary.model_file.display());
}
