//! Lesson 01 natively on the CPU (flex) backend, with the browser's defaults: the scratch CNN's
//! seconds per epoch and its training and validation accuracy on the prepared assets.
//!
//! `cargo bench -p transfer-lab-model --bench lesson01 [-- --full] [-- --augment]
//! [-- --sweep]` after `transfer-lab prepare`; `--size`, `--epochs`, `--learning-rate`,
//! `--batch-size`, `--hidden`, `--dropout` and `--seed` override the defaults.

use std::path::PathBuf;
use std::time::Instant;

use burn::tensor::Device;
use transfer_lab_model::photo_set::PhotoSet;
use transfer_lab_model::prepared::PreparedAssets;
use transfer_lab_model::scratch_cnn::{ScratchCnnConfig, ScratchTrainer, ScratchTrainingConfig};

/// The value after `--name` on the command line.
fn option(name: &str) -> Option<String> {
    let args: Vec<String> = std::env::args().collect();
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1).cloned())
}

/// Whether `--name` is on the command line.
fn flag(name: &str) -> bool {
    std::env::args().any(|a| a == name)
}

/// The parsed value after `--name`, or `default`.
fn parsed<T: std::str::FromStr>(name: &str, default: T) -> Result<T, Box<dyn std::error::Error>>
where
    T::Err: std::error::Error + 'static,
{
    Ok(match option(name) {
        Some(value) => value.parse()?,
        None => default,
    })
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let full = flag("--full");
    let generated = option("--generated")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../public/generated"));
    let defaults = ScratchCnnConfig::default();
    let cnn_config = ScratchCnnConfig {
        input_size: parsed("--size", defaults.input_size)?,
        hidden: parsed("--hidden", defaults.hidden)?,
        dropout: parsed("--dropout", defaults.dropout)?,
        ..defaults
    };
    let defaults = ScratchTrainingConfig::default();
    let config = ScratchTrainingConfig {
        epochs: parsed("--epochs", defaults.epochs)?,
        learning_rate: parsed("--learning-rate", defaults.learning_rate)?,
        batch_size: parsed("--batch-size", defaults.batch_size)?,
        seed: parsed("--seed", defaults.seed)?,
        augment: flag("--augment"),
    };

    let started = Instant::now();
    let photos = PreparedAssets::open(&generated)?.load_photos(full, cnn_config.input_size)?;
    let classes = photos.classes.len();
    println!(
        "lesson 01 natively, CPU (flex) backend, {} subset: {} train, {} validation photos \
         decoded at {size}x{size} in {:.1} s",
        if full { "full" } else { "lesson" },
        photos.train.len(),
        photos.validation.len(),
        started.elapsed().as_secs_f64(),
        size = cnn_config.input_size,
    );
    println!(
        "  network: channels {:?}, dense {}, dropout {}, {} parameters",
        cnn_config.channels,
        cnn_config.hidden,
        cnn_config.dropout,
        cnn_config.parameter_count(classes)
    );
    println!(
        "  training: {} epochs, Adam learning rate {}, batch {}, seed {}, augmentation {}",
        config.epochs,
        config.learning_rate,
        config.batch_size,
        config.seed,
        if config.augment { "on" } else { "off" }
    );

    if flag("--sweep") {
        for per_class in [10, 25, 50, 100] {
            let train = photos.train.first_per_class(per_class);
            let point = train_quietly(&config, &cnn_config, classes, &train, &photos.validation)?;
            println!(
                "  {per_class:>3} photos per class ({} photos): train {:.3}, validation {:.3} \
                 (best {:.3}) after {} epochs in {:.1} s",
                train.len(),
                point.train,
                point.validation,
                point.best_validation,
                config.epochs,
                point.seconds
            );
        }
        return Ok(());
    }

    let device = Device::flex();
    let mut trainer = ScratchTrainer::new(
        config.clone(),
        cnn_config.clone(),
        classes,
        &device.clone().autodiff(),
    );
    let training_started = Instant::now();
    println!("  epoch  train loss  train acc  val loss  val acc  seconds");
    for _ in 0..config.epochs {
        let epoch_started = Instant::now();
        let report = pollster::block_on(trainer.run_epoch(&photos.train, &photos.validation))?;
        let validation = report.validation.ok_or("no validation photos")?;
        println!(
            "  {:>5}  {:>10.4}  {:>9.3}  {:>8.4}  {:>7.3}  {:>7.2}",
            report.epoch,
            report.train.loss,
            report.train.accuracy,
            validation.loss,
            validation.accuracy,
            epoch_started.elapsed().as_secs_f64()
        );
    }
    let training_seconds = training_started.elapsed().as_secs_f64();
    let evaluation_started = Instant::now();
    let train_evaluation = pollster::block_on(trainer.evaluate(&photos.train, classes))?;
    let evaluation = pollster::block_on(trainer.evaluate(&photos.validation, classes))?;
    println!(
        "  training {training_seconds:.1} s ({:.2} s per epoch), evaluation of both sets {:.2} s",
        training_seconds / config.epochs.max(1) as f64,
        evaluation_started.elapsed().as_secs_f64()
    );
    println!(
        "  final accuracy without dropout: train {:.3}, validation {:.3} (gap {:.3})",
        train_evaluation.accuracy,
        evaluation.accuracy,
        train_evaluation.accuracy - evaluation.accuracy
    );
    for (class, accuracy) in photos.classes.iter().zip(&evaluation.per_class_accuracy) {
        println!("    {class:<12} {:.3}", accuracy.unwrap_or(0.0));
    }
    Ok(())
}

/// Where one sweep run ended.
struct SweepPoint {
    /// Final training accuracy, measured without dropout.
    train: f32,
    /// Final validation accuracy.
    validation: f32,
    /// Best validation accuracy after any epoch.
    best_validation: f32,
    /// Wall-clock training time, validation passes included.
    seconds: f64,
}

/// Trains a fresh network for the configured epochs on `train`.
fn train_quietly(
    config: &ScratchTrainingConfig,
    cnn_config: &ScratchCnnConfig,
    classes: usize,
    train: &PhotoSet,
    validation: &PhotoSet,
) -> Result<SweepPoint, Box<dyn std::error::Error>> {
    let started = Instant::now();
    let mut trainer = ScratchTrainer::new(
        config.clone(),
        cnn_config.clone(),
        classes,
        &Device::flex().autodiff(),
    );
    let mut point = SweepPoint {
        train: 0.0,
        validation: 0.0,
        best_validation: 0.0,
        seconds: 0.0,
    };
    for _ in 0..config.epochs {
        let report = pollster::block_on(trainer.run_epoch(train, validation))?;
        point.validation = report.validation.map_or(0.0, |v| v.accuracy);
        point.best_validation = point.best_validation.max(point.validation);
    }
    point.seconds = started.elapsed().as_secs_f64();
    point.train = pollster::block_on(trainer.measure(train))?.map_or(0.0, |m| m.accuracy);
    Ok(point)
}
