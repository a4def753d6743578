//! Lesson 02 natively on the CPU (flex) backend, with the browser's defaults: feature
//! extraction throughput, head training time and validation accuracy on the prepared assets.
//!
//! `cargo bench -p transfer-lab-model --bench lesson02 [-- --full]` after `transfer-lab prepare`.

use std::path::PathBuf;
use std::time::Instant;

use burn::tensor::Device;
use transfer_lab_model::features::{FeatureSet, extract_features};
use transfer_lab_model::head::{HeadTrainer, HeadTrainingConfig};
use transfer_lab_model::mobilenet_v2::{FEATURE_WIDTH, MobileNetV2};
use transfer_lab_model::photo::to_input_u8;
use transfer_lab_model::shards::{DatasetManifest, ModelsIndex, SPLIT_VALIDATION, decode_shard};
use transfer_lab_model::weights::WebWeights;

/// Photos per backbone call, as in the browser worker.
const BATCH: usize = 16;

/// The value after `--name` on the command line.
fn option(name: &str) -> Option<String> {
    let args: Vec<String> = std::env::args().collect();
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1).cloned())
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let full = std::env::args().any(|a| a == "--full");
    let generated = option("--generated")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../public/generated"));
    let manifest: DatasetManifest =
        serde_json::from_slice(&std::fs::read(generated.join("flowers/manifest.json"))?)?;
    let models: ModelsIndex =
        serde_json::from_slice(&std::fs::read(generated.join("models/index.json"))?)?;
    let model = models
        .get("mobilenet_v2")
        .ok_or("MobileNetV2 is not prepared")?;
    let weight_bytes = std::fs::read(generated.join("models").join(&model.file))?;
    let weights = WebWeights::from_bytes(&weight_bytes)?;
    let device = Device::flex();
    let backbone = MobileNetV2::from_weights(&weights, &device)?;
    let size = manifest.image_size as usize;

    let mut train = FeatureSet::new(FEATURE_WIDTH);
    let mut validation = FeatureSet::new(FEATURE_WIDTH);
    let mut photo_bytes = 0u64;
    let started = Instant::now();
    for shard in manifest.shards_for(full) {
        let bytes = std::fs::read(generated.join("flowers").join(&shard.file))?;
        photo_bytes += bytes.len() as u64;
        let photos = decode_shard(&bytes)?;
        let set = if shard.split == SPLIT_VALIDATION {
            &mut validation
        } else {
            &mut train
        };
        for batch in photos.chunks(BATCH) {
            let inputs = batch
                .iter()
                .map(|p| to_input_u8(&p.jpeg, size as u32))
                .collect::<Result<Vec<_>, _>>()?;
            let views: Vec<&[u8]> = inputs.iter().map(Vec::as_slice).collect();
            let features = pollster::block_on(extract_features(
                &backbone,
                &views,
                size,
                weights.preprocessing(),
                &device,
            ))?;
            let labels: Vec<usize> = batch.iter().map(|p| p.class_index).collect();
            set.extend(&features, &labels);
        }
    }
    let feature_seconds = started.elapsed().as_secs_f64();
    let photos = train.len() + validation.len();

    if std::env::args().any(|a| a == "--sweep") {
        return sweep(&train, &validation, manifest.classes.len(), &device);
    }
    let mut config = HeadTrainingConfig::default();
    if let Some(epochs) = option("--epochs") {
        config.epochs = epochs.parse()?;
    }
    if let Some(rate) = option("--learning-rate") {
        config.learning_rate = rate.parse()?;
    }
    if let Some(batch) = option("--batch-size") {
        config.batch_size = batch.parse()?;
    }
    let epochs = config.epochs;
    let started = Instant::now();
    let mut trainer = HeadTrainer::new(
        config,
        FEATURE_WIDTH,
        manifest.classes.len(),
        &device.clone().autodiff(),
    );
    for _ in 0..epochs {
        pollster::block_on(trainer.run_epoch(&train, &validation))?;
    }
    let head_seconds = started.elapsed().as_secs_f64();
    let evaluation = pollster::block_on(trainer.evaluate(&validation, manifest.classes.len()))?;

    println!(
        "lesson 02 natively, CPU (flex) backend, {} subset",
        if full { "full" } else { "lesson" }
    );
    println!(
        "  photos: {} train, {} validation",
        train.len(),
        validation.len()
    );
    println!(
        "  download: weights {:.2} MB, photos {:.2} MB",
        weight_bytes.len() as f64 / 1e6,
        photo_bytes as f64 / 1e6
    );
    println!(
        "  feature extraction: {photos} photos in {feature_seconds:.1} s = {:.1} photos/s",
        photos as f64 / feature_seconds
    );
    println!(
        "  head training: {epochs} epochs (learning rate {}, batch {}) in {head_seconds:.2} s",
        trainer.config().learning_rate,
        trainer.config().batch_size
    );
    println!("  validation accuracy: {:.4}", evaluation.accuracy);
    Ok(())
}

/// Validation accuracy over a grid of epochs and learning rates, on the same cached features:
/// how the defaults were chosen.
fn sweep(
    train: &FeatureSet,
    validation: &FeatureSet,
    classes: usize,
    device: &Device,
) -> Result<(), Box<dyn std::error::Error>> {
    for learning_rate in [3e-4, 1e-3, 3e-3, 1e-2] {
        for batch_size in [16, 32] {
            let config = HeadTrainingConfig {
                epochs: 0,
                learning_rate,
                batch_size,
                seed: 42,
            };
            let mut trainer =
                HeadTrainer::new(config, FEATURE_WIDTH, classes, &device.clone().autodiff());
            let mut row = format!("lr {learning_rate:<7} batch {batch_size:<3}");
            for epoch in 1..=60 {
                let report = pollster::block_on(trainer.run_epoch(train, validation))?;
                if [5, 10, 20, 30, 40, 60].contains(&epoch) {
                    let accuracy = report.validation.map_or(0.0, |v| v.accuracy);
                    row += &format!("  e{epoch}: {accuracy:.3}");
                }
            }
            println!("{row}");
        }
    }
    Ok(())
}
