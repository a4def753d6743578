//! Lesson 03 natively on the CPU (flex) backend: the lesson 02 head first, then fine-tuning of
//! the backbone's top from it with the browser's defaults; validation accuracy of both, the
//! boundary cache's memory and the time of one fine-tuning epoch with and without the cache.
//!
//! `cargo bench -p transfer-lab-model --bench lesson03 [-- --full] [--lr-x100] [--sweep]
//! [--boundary N] [--learning-rate R] [--no-augment] [--skip-uncached]` after
//! `transfer-lab prepare`.
//!
//! `-- --unseen` compares settings honestly: it trains on the lesson subset, lets early stopping
//! pick the epoch on the lesson's 200 validation photos, and reports accuracy on the 461 extra
//! validation photos that no choice was made on.

use std::path::PathBuf;
use std::time::Instant;

use burn::tensor::Device;
use transfer_lab_model::features::FeatureSet;
use transfer_lab_model::fine_tune::{
    BoundaryCache, FineTuneConfig, FineTuner, boundary_shape, cache_boundary, fill_boundary_cache,
    stage_parameters, trainable_fraction,
};
use transfer_lab_model::head::{HeadSnapshot, HeadTrainer, HeadTrainingConfig};
use transfer_lab_model::mobilenet_v2::{FEATURE_WIDTH, MobileNetV2};
use transfer_lab_model::photo_set::PhotoSet;
use transfer_lab_model::prepared::PreparedAssets;

type Error = Box<dyn std::error::Error>;

/// The value after `--name` on the command line.
fn option(name: &str) -> Option<String> {
    let args: Vec<String> = std::env::args().collect();
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1).cloned())
}

fn flag(name: &str) -> bool {
    std::env::args().any(|a| a == name)
}

fn main() -> Result<(), Error> {
    if flag("--unseen") {
        return unseen();
    }
    let full = flag("--full");
    let generated = option("--generated")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../public/generated"));
    let assets = PreparedAssets::open(&generated)?;
    let (weights, _) = assets.weights("mobilenet_v2")?;
    let device = Device::flex();
    let backbone = MobileNetV2::from_weights(&weights, &device)?;
    let photos = assets.load_photos(full, weights.preprocessing().input_size)?;
    let classes = photos.classes.len();

    let mut config = FineTuneConfig::default();
    if let Some(block) = option("--boundary") {
        config.first_trainable_block = block.parse()?;
    }
    if let Some(rate) = option("--learning-rate") {
        config.learning_rate = rate.parse()?;
    }
    if let Some(epochs) = option("--epochs") {
        config.epochs = epochs.parse()?;
    }
    if flag("--no-augment") {
        config.augment = false;
    }
    if flag("--lr-x100") {
        config.learning_rate *= 100.0;
    }
    let block = config.first_trainable_block;

    println!(
        "lesson 03 natively, CPU (flex) backend, {} subset: {} train, {} validation photos",
        if full { "full" } else { "lesson" },
        photos.train.len(),
        photos.validation.len()
    );
    let stages = stage_parameters(block, classes);
    let trainable: usize = stages
        .iter()
        .filter(|s| s.trains)
        .map(|s| s.parameters)
        .sum();
    println!(
        "  split before block {block}: {:.1}% of the backbone's parameters train \
         ({trainable} parameters with the head)",
        100.0 * trainable_fraction(block)
    );

    let started = Instant::now();
    let preprocessing = weights.preprocessing();
    let train = pollster::block_on(cache_boundary(
        &backbone,
        &photos.train,
        block,
        config.augment,
        preprocessing,
        &device,
    ))?;
    let validation = pollster::block_on(cache_boundary(
        &backbone,
        &photos.validation,
        block,
        false,
        preprocessing,
        &device,
    ))?;
    println!(
        "  boundary cache {:?} per photo{}: {:.1} MB train + {:.1} MB validation, \
         filled in {:.1} s",
        train.shape(),
        if train.has_flips() {
            " (and mirrored)"
        } else {
            ""
        },
        train.bytes() as f64 / 1e6,
        validation.bytes() as f64 / 1e6,
        started.elapsed().as_secs_f64()
    );

    // Lesson 02: the head on frozen features, which the cache yields through the frozen top.
    let started = Instant::now();
    let train_features = pollster::block_on(train.pooled_features(&backbone, &device))?;
    let validation_features = pollster::block_on(validation.pooled_features(&backbone, &device))?;
    let head_config = HeadTrainingConfig::default();
    let mut head = HeadTrainer::new(
        head_config.clone(),
        FEATURE_WIDTH,
        classes,
        &device.clone().autodiff(),
    );
    for _ in 0..head_config.epochs {
        pollster::block_on(head.run_epoch(&train_features, &validation_features))?;
    }
    let lesson02 = pollster::block_on(head.evaluate(&validation_features, classes))?.accuracy;
    let head = pollster::block_on(head.snapshot())?;
    println!(
        "  lesson 02 head: {} epochs in {:.1} s, validation accuracy {lesson02:.4}",
        head_config.epochs,
        started.elapsed().as_secs_f64()
    );

    if flag("--sweep") {
        return sweep(&backbone, &head, &train, &validation, &config);
    }

    let (lesson03, cached_seconds) = fine_tune(&backbone, &head, &train, &validation, &config)?;
    println!(
        "  lesson 02 -> lesson 03 validation accuracy: {lesson02:.4} -> {lesson03:.4} \
         ({:+.1} points){}",
        100.0 * (lesson03 - lesson02),
        if flag("--lr-x100") {
            " with the learning rate x100"
        } else {
            ""
        }
    );

    if !flag("--skip-uncached") {
        let mut tuner = pollster::block_on(FineTuner::new(
            config.clone(),
            &backbone,
            &head,
            &device.clone().autodiff(),
        ))?;
        let started = Instant::now();
        pollster::block_on(tuner.run_epoch_from_photos(
            &backbone,
            &photos.train,
            &photos.validation,
            preprocessing,
        ))?;
        let uncached_seconds = started.elapsed().as_secs_f64();
        println!(
            "  one epoch: {cached_seconds:.2} s with the boundary cache, {uncached_seconds:.2} s \
             re-running the frozen part every step = {:.1}x faster",
            uncached_seconds / cached_seconds
        );
    }
    Ok(())
}

/// Fine-tunes until early stopping or the last epoch, printing every epoch; returns the
/// validation accuracy of the kept weights and the mean seconds of one epoch.
fn fine_tune(
    backbone: &MobileNetV2,
    head: &HeadSnapshot,
    train: &BoundaryCache,
    validation: &BoundaryCache,
    config: &FineTuneConfig,
) -> Result<(f32, f64), Error> {
    let device = Device::flex().autodiff();
    let mut tuner = pollster::block_on(FineTuner::new(config.clone(), backbone, head, &device))?;
    let start = pollster::block_on(tuner.measure(validation))?;
    println!(
        "  fine-tuning: learning rate {}, batch {}, patience {}, flips {}; start: validation \
         accuracy {:.4}",
        config.learning_rate,
        config.batch_size,
        config.patience,
        config.augment,
        start.map_or(0.0, |m| m.accuracy)
    );
    let started = Instant::now();
    while !tuner.finished() {
        let epoch_started = Instant::now();
        let report = pollster::block_on(tuner.run_epoch(train, validation))?;
        let validation = report.validation.unwrap_or(report.train);
        println!(
            "    epoch {:>2}: train loss {:.4} accuracy {:.4} | validation loss {:.4} accuracy \
             {:.4} | {:.1} s",
            report.epoch,
            report.train.loss,
            report.train.accuracy,
            validation.loss,
            validation.accuracy,
            epoch_started.elapsed().as_secs_f64()
        );
    }
    let seconds = started.elapsed().as_secs_f64() / tuner.epochs_done().max(1) as f64;
    let evaluation = pollster::block_on(tuner.evaluate(validation))?;
    println!(
        "  kept epoch {:?} of {}{}",
        tuner.best_epoch(),
        tuner.epochs_done(),
        if tuner.stopped_early() {
            " (stopped early)"
        } else {
            ""
        }
    );
    Ok((evaluation.accuracy, seconds))
}

/// Validation accuracy over a few learning rates: how the defaults were chosen.
fn sweep(
    backbone: &MobileNetV2,
    head: &HeadSnapshot,
    train: &BoundaryCache,
    validation: &BoundaryCache,
    config: &FineTuneConfig,
) -> Result<(), Error> {
    let rates: Vec<f64> = match option("--rates") {
        Some(list) => list.split(',').map(str::parse).collect::<Result<_, _>>()?,
        None => vec![1e-5, 3e-5, 1e-4],
    };
    for learning_rate in rates {
        let config = FineTuneConfig {
            learning_rate,
            patience: config.epochs,
            ..config.clone()
        };
        let (accuracy, _) = fine_tune(backbone, head, train, validation, &config)?;
        println!("  learning rate {learning_rate}: best validation accuracy {accuracy:.4}");
    }
    Ok(())
}

/// Accuracy on photos that neither training nor early stopping saw, for lesson 02 and for a few
/// fine-tuning settings (`--configs block:rate:patience:epochs:crops,...`). `--select extra`
/// chooses the best epoch on `--select-per-class` (40) training photos outside the lesson subset,
/// so that all 661 validation photos are unseen; by default the lesson's 200 validation photos
/// choose it and only the other 461 are unseen.
fn unseen() -> Result<(), Error> {
    let generated = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../public/generated");
    let assets = PreparedAssets::open(&generated)?;
    let (weights, _) = assets.weights("mobilenet_v2")?;
    let device = Device::flex();
    let backbone = MobileNetV2::from_weights(&weights, &device)?;
    let size = weights.preprocessing().input_size;
    let all = assets.load_photos(true, size)?;
    let lesson: std::collections::HashSet<&str> = assets
        .manifest()
        .photos
        .iter()
        .filter(|p| p.subset == transfer_lab_model::shards::SUBSET_LESSON)
        .map(|p| p.name.as_str())
        .collect();
    let pick = |set: &PhotoSet, names: &[String], want: bool| {
        let mut picked = PhotoSet::new(size);
        for (i, name) in names.iter().enumerate() {
            if lesson.contains(name.as_str()) == want {
                picked.push(set.photo(i), set.labels()[i]);
            }
        }
        picked
    };
    // `--train-full`: every training photo, not only the lesson subset's.
    let train_photos = if flag("--train-full") {
        all.train.clone()
    } else {
        pick(&all.train, &all.train_names, true)
    };
    let lesson_validation = pick(&all.validation, &all.validation_names, true);
    let extra_validation = pick(&all.validation, &all.validation_names, false);
    let select_extra = option("--select").as_deref() == Some("extra");
    let select_photos = if select_extra {
        let per_class = option("--select-per-class").map_or(Ok(40), |n| n.parse())?;
        assets.load_training_extras(per_class, size)?.0
    } else {
        lesson_validation.clone()
    };
    println!(
        "unseen comparison: {} train, {} for early stopping ({}), {} + {} validation",
        train_photos.len(),
        select_photos.len(),
        if select_extra {
            "extra training photos"
        } else {
            "lesson validation photos"
        },
        lesson_validation.len(),
        extra_validation.len()
    );
    type Setting = (usize, f64, usize, usize, usize);
    let configs: Vec<Setting> = option("--configs")
        .unwrap_or_else(|| "17:1e-4:4:15:0,17:1e-4:4:15:2".into())
        .split(',')
        .map(|c| {
            let parts: Vec<&str> = c.split(':').collect();
            Ok((
                parts[0].parse()?,
                parts[1].parse()?,
                parts[2].parse()?,
                parts[3].parse()?,
                parts.get(4).map_or(Ok(0), |p| p.parse())?,
            ))
        })
        .collect::<Result<_, Error>>()?;
    let preprocessing = weights.preprocessing();
    let fill = |cache: BoundaryCache, photos: &PhotoSet| {
        pollster::block_on(fill_boundary_cache(
            cache,
            &backbone,
            photos,
            preprocessing,
            &device,
        ))
    };
    let mut evaluation_caches = std::collections::HashMap::new();
    let mut train_caches = std::collections::HashMap::new();
    for &(block, _, _, _, crops) in &configs {
        if let std::collections::hash_map::Entry::Vacant(entry) = evaluation_caches.entry(block) {
            let shape = boundary_shape(block, size);
            let plain = || BoundaryCache::new(block, shape, false);
            entry.insert((
                fill(plain(), &select_photos)?,
                fill(plain(), &lesson_validation)?,
                fill(plain(), &extra_validation)?,
            ));
        }
        if let std::collections::hash_map::Entry::Vacant(entry) = train_caches.entry((block, crops))
        {
            let started = Instant::now();
            let config = FineTuneConfig {
                first_trainable_block: block,
                crops_per_photo: crops,
                ..FineTuneConfig::default()
            };
            let train = fill(BoundaryCache::for_training(&config, size), &train_photos)?;
            println!(
                "  training cache for block {block}, {crops} crops: {:.1} MB in {:.1} s",
                train.bytes() as f64 / 1e6,
                started.elapsed().as_secs_f64()
            );
            entry.insert(train);
        }
    }
    let block = configs[0].0;
    let (select, lesson_val, extra_val) = &evaluation_caches[&block];
    let classes = all.classes.len();
    let features =
        |cache: &BoundaryCache| pollster::block_on(cache.pooled_features(&backbone, &device));
    // A training cache's pooled features are those of the photos themselves, not their views.
    let first_train = &train_caches[&(block, configs[0].4)];
    let (train_features, select_features) = (features(first_train)?, features(select)?);
    let (lesson_features, extra_features) = (features(lesson_val)?, features(extra_val)?);
    let head_config = HeadTrainingConfig {
        epochs: option("--head-epochs").map_or(Ok(30), |e| e.parse())?,
        ..HeadTrainingConfig::default()
    };
    let mut head = HeadTrainer::new(
        head_config.clone(),
        FEATURE_WIDTH,
        classes,
        &device.clone().autodiff(),
    );
    for _ in 1..=head_config.epochs {
        pollster::block_on(head.run_epoch(&train_features, &select_features))?;
    }
    let accuracy =
        |set: &FeatureSet| pollster::block_on(head.evaluate(set, classes)).map(|e| e.accuracy);
    let lesson02 = [
        accuracy(&select_features)?,
        accuracy(&lesson_features)?,
        accuracy(&extra_features)?,
    ];
    let all_validation = |lesson: f32, extra: f32| {
        let (a, b) = (lesson_val.len() as f32, extra_val.len() as f32);
        (lesson * a + extra * b) / (a + b)
    };
    let lesson02_all = all_validation(lesson02[1], lesson02[2]);
    println!(
        "  lesson 02: selection {:.4}, lesson validation {:.4}, extra validation {:.4}, all \
         validation {lesson02_all:.4}",
        lesson02[0], lesson02[1], lesson02[2]
    );
    let head = pollster::block_on(head.snapshot())?;
    for (block, learning_rate, patience, epochs, crops) in configs {
        let (select, lesson_val, extra_val) = &evaluation_caches[&block];
        let train = &train_caches[&(block, crops)];
        let config = FineTuneConfig {
            first_trainable_block: block,
            learning_rate,
            patience,
            epochs,
            crops_per_photo: crops,
            ..FineTuneConfig::default()
        };
        let mut tuner = pollster::block_on(FineTuner::new(
            config,
            &backbone,
            &head,
            &device.clone().autodiff(),
        ))?;
        let mut line = String::new();
        while !tuner.finished() {
            let report = pollster::block_on(tuner.run_epoch(train, select))?;
            let lesson = pollster::block_on(tuner.measure(lesson_val))?.map_or(0.0, |m| m.accuracy);
            let extra = pollster::block_on(tuner.measure(extra_val))?.map_or(0.0, |m| m.accuracy);
            let selection = report.validation.map_or(0.0, |m| m.accuracy);
            line.push_str(&format!(
                " {selection:.3}/{:.3}",
                all_validation(lesson, extra)
            ));
        }
        let kept =
            |set: &BoundaryCache| pollster::block_on(tuner.evaluate(set)).map(|e| e.accuracy);
        let (lesson, extra) = (kept(lesson_val)?, kept(extra_val)?);
        let all = all_validation(lesson, extra);
        println!(
            "  block {block} rate {learning_rate} patience {patience} crops {crops}: best epoch \
             {:?} of {}, selection {:.4} ({:+.1}), lesson validation {lesson:.4} ({:+.1}), extra \
             validation {extra:.4} ({:+.1}), all validation {all:.4} ({:+.1}); per epoch \
             selection/all:{line}",
            tuner.best_epoch(),
            tuner.epochs_done(),
            tuner.best_validation_accuracy().unwrap_or(0.0),
            100.0 * (tuner.best_validation_accuracy().unwrap_or(0.0) - lesson02[0]),
            100.0 * (lesson - lesson02[1]),
            100.0 * (extra - lesson02[2]),
            100.0 * (all - lesson02_all),
        );
    }
    Ok(())
}
