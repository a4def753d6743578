//! `transfer-lab predict`: the most probable classes of photos, with a trained model or with the
//! pretrained backbone's own ImageNet classifier.

use std::path::PathBuf;

use anyhow::{Result, bail};
use clap::Args;
use serde::Serialize;
use transfer_lab_model::burn::tensor::Device;
use transfer_lab_model::burn::tensor::activation::softmax;
use transfer_lab_model::mobilenet_v2::{MobileNetV2, input_tensor};
use transfer_lab_model::photo::to_input_u8;
use transfer_lab_model::prepared::PreparedAssets;
use transfer_lab_model::trained_model::top_k;
use transfer_lab_model::weights::Preprocessing;

use crate::eval::load_model;
use crate::folder::Skipped;

/// The prepared ImageNet classifier's entry in `models/index.json`.
const IMAGENET_CLASSIFIER: &str = "mobilenet_v2_imagenet_classifier";

/// Options of `transfer-lab predict`.
#[derive(Debug, Clone, Args)]
pub struct PredictArgs {
    /// `MODEL_FILE IMAGE...`, or only `IMAGE...` with `--imagenet`.
    #[arg(required = true, value_name = "MODEL_FILE IMAGE")]
    pub paths: Vec<PathBuf>,
    /// Use the pretrained MobileNetV2 with its own ImageNet classifier (1,000 classes) instead
    /// of a trained model: what the network knows before transfer learning.
    #[arg(long)]
    pub imagenet: bool,
    /// How many classes to list per photo.
    #[arg(long, default_value_t = 3)]
    pub top: usize,
    /// Folder written by `transfer-lab prepare` (pretrained weights).
    #[arg(long, default_value = "public/generated")]
    pub assets: PathBuf,
    /// Print JSON instead of text.
    #[arg(long)]
    pub json: bool,
}

/// A class and its probability.
#[derive(Debug, Serialize)]
pub struct Guess {
    /// Class name.
    pub class: String,
    /// Probability (0-1).
    pub probability: f32,
}

/// One photo's most probable classes.
#[derive(Debug, Serialize)]
pub struct Prediction {
    /// The photo file.
    pub photo: PathBuf,
    /// Most probable first.
    pub top: Vec<Guess>,
}

/// What `predict` found.
#[derive(Debug, Serialize)]
pub struct PredictReport {
    /// Which model answered.
    pub model: String,
    /// Predictions of the readable photos.
    pub predictions: Vec<Prediction>,
    /// Photos that could not be read.
    pub skipped: Vec<Skipped>,
}

/// Decodes the photos at `size`; unreadable ones are skipped and listed.
fn read_photos(paths: &[PathBuf], size: usize) -> (Vec<(PathBuf, Vec<u8>)>, Vec<Skipped>) {
    let mut photos = Vec::new();
    let mut skipped = Vec::new();
    for path in paths {
        let decoded = std::fs::read(path)
            .map_err(|e| format!("unreadable: {e}"))
            .and_then(|bytes| to_input_u8(&bytes, size as u32).map_err(|e| e.to_string()));
        match decoded {
            Ok(pixels) => photos.push((path.clone(), pixels)),
            Err(reason) => skipped.push(Skipped {
                name: path.display().to_string(),
                reason,
            }),
        }
    }
    (photos, skipped)
}

/// Probabilities of the pretrained ImageNet classifier, and its class names.
fn imagenet(
    assets: &PreparedAssets,
    photos: &[&[u8]],
    device: &Device,
) -> Result<(Vec<Vec<f32>>, Vec<String>)> {
    let (weights, _) = assets.weights("mobilenet_v2")?;
    let (classifier, _) = assets.weights(IMAGENET_CLASSIFIER)?;
    let mut network = MobileNetV2::from_weights(&weights, device)?;
    network.load_classifier(&classifier, device)?;
    let preprocessing: &Preprocessing = weights.preprocessing();
    let mut rows = Vec::new();
    for batch in photos.chunks(16) {
        let input = input_tensor(batch, preprocessing.input_size, preprocessing, device);
        let probabilities = softmax(network.logits(input)?, 1);
        let [count, classes] = probabilities.dims();
        let values = probabilities
            .into_data()
            .try_to_vec::<f32>()
            .map_err(|e| anyhow::anyhow!("reading the predictions failed: {e:?}"))?;
        rows.extend((0..count).map(|i| values[i * classes..(i + 1) * classes].to_vec()));
    }
    Ok((rows, classifier.labels().to_vec()))
}

/// Runs `transfer-lab predict`.
pub fn run(args: &PredictArgs) -> Result<PredictReport> {
    let device = Device::flex();
    let (model_path, images) = if args.imagenet {
        (None, args.paths.as_slice())
    } else {
        match args.paths.split_first() {
            Some((model, images)) if !images.is_empty() => (Some(model), images),
            _ => bail!("give a model file and at least one photo, or --imagenet and photos"),
        }
    };
    let assets = &args.assets;
    let (rows, classes, model, skipped, names) = match model_path {
        Some(path) => {
            let model = load_model(path, assets, &device)?;
            let preprocessing = model.file.preprocessing().clone();
            let (photos, skipped) = read_photos(images, preprocessing.input_size);
            let views: Vec<&[u8]> = photos.iter().map(|(_, p)| p.as_slice()).collect();
            let rows = pollster::block_on(model.classifier.probabilities(&views, &preprocessing))?;
            let names = photos.into_iter().map(|(name, _)| name).collect::<Vec<_>>();
            let description = format!("{} ({})", path.display(), model.file.info().kind.describe());
            (
                rows,
                model.file.classes().to_vec(),
                description,
                skipped,
                names,
            )
        }
        None => {
            let prepared = PreparedAssets::open(assets)?;
            let (photos, skipped) = read_photos(images, 224);
            let views: Vec<&[u8]> = photos.iter().map(|(_, p)| p.as_slice()).collect();
            let (rows, classes) = imagenet(&prepared, &views, &device)?;
            let names = photos.into_iter().map(|(name, _)| name).collect::<Vec<_>>();
            let description = "pretrained MobileNetV2 with its ImageNet classifier".to_string();
            (rows, classes, description, skipped, names)
        }
    };
    if names.is_empty() {
        bail!("none of the {} photos could be read", skipped.len());
    }
    let predictions = names
        .into_iter()
        .zip(&rows)
        .map(|(photo, row)| Prediction {
            photo,
            top: top_k(row, args.top)
                .into_iter()
                .map(|(class, probability)| Guess {
                    class: classes
                        .get(class)
                        .cloned()
                        .unwrap_or_else(|| format!("#{class}")),
                    probability,
                })
                .collect(),
        })
        .collect();
    Ok(PredictReport {
        model,
        predictions,
        skipped,
    })
}

/// Prints the predictions as text.
pub fn print_report(report: &PredictReport) {
    println!("model: {}", report.model);
    for prediction in &report.predictions {
        println!("{}", prediction.photo.display());
        for guess in &prediction.top {
            println!("  {:>6.2}%  {}", guess.probability * 100.0, guess.class);
        }
    }
    for file in &report.skipped {
        println!("skipped {}: {}", file.name, file.reason);
    }
}
