//! `transfer-lab eval`: a trained-model file's accuracy, per-class accuracy and confusion matrix
//! on labelled photos.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use clap::Args;
use serde::Serialize;
use transfer_lab_model::burn::tensor::Device;
use transfer_lab_model::metrics::Evaluation;
use transfer_lab_model::photo_set::PhotoSet;
use transfer_lab_model::prepared::PreparedAssets;
use transfer_lab_model::trained_model::{InstalledBackbone, ModelFile, TrainedClassifier};

use crate::folder::{Skipped, limit_per_class, read_folder};

/// Options of `transfer-lab eval`.
#[derive(Debug, Clone, Args)]
pub struct EvalArgs {
    /// Trained-model file (`.tlmodel`) from `transfer-lab train` or the browser's download.
    pub model: PathBuf,
    /// Folder of class sub-folders to evaluate on; without it, the prepared validation photos.
    pub folder: Option<PathBuf>,
    /// Folder written by `transfer-lab prepare` (pretrained weights, prepared photos).
    #[arg(long, default_value = "public/generated")]
    pub assets: PathBuf,
    /// With the prepared photos: the full validation split, not only the lesson subset.
    #[arg(long)]
    pub full: bool,
    /// At most this many photos per class.
    #[arg(long)]
    pub per_class: Option<usize>,
    /// Print JSON instead of tables.
    #[arg(long)]
    pub json: bool,
}

/// A trained model loaded for inference, with its file.
pub struct LoadedModel {
    /// The parsed file.
    pub file: ModelFile,
    /// The network.
    pub classifier: TrainedClassifier,
}

/// Reads a model file and builds it, with the pretrained backbone it names from `assets`.
pub fn load_model(path: &Path, assets: &Path, device: &Device) -> Result<LoadedModel> {
    let bytes = std::fs::read(path).with_context(|| format!("cannot read {}", path.display()))?;
    let file = ModelFile::from_bytes(&bytes).with_context(|| format!("{}", path.display()))?;
    let backbone = match file.info().kind.backbone() {
        Some(wanted) => Some(PreparedAssets::open(assets)?.weights(&wanted.backbone)?),
        None => None,
    };
    let installed = backbone.as_ref().map(|(weights, entry)| InstalledBackbone {
        weights,
        sha256: &entry.sha256,
    });
    let classifier = TrainedClassifier::load(&file, installed, device)
        .with_context(|| format!("{}", path.display()))?;
    Ok(LoadedModel { file, classifier })
}

/// One photo's outcome.
#[derive(Debug, Serialize)]
pub struct PhotoOutcome {
    /// Photo name.
    pub photo: String,
    /// True class.
    pub truth: String,
    /// Predicted class.
    pub predicted: String,
}

/// What `eval` measured.
#[derive(Debug, Serialize)]
pub struct EvalReport {
    /// The model file.
    pub model: PathBuf,
    /// What the photos were.
    pub photos_from: String,
    /// The model's classes, in output order.
    pub classes: Vec<String>,
    /// Photos evaluated.
    pub photos: usize,
    /// Files that could not be read.
    pub skipped: Vec<Skipped>,
    /// Accuracy, per-class accuracy and confusion matrix (rows: truth, columns: prediction).
    pub evaluation: Evaluation,
    /// Every photo's prediction.
    pub outcomes: Vec<PhotoOutcome>,
}

/// Maps a folder's class names onto the model's; names the model does not know are an error.
fn class_mapping(folder_classes: &[String], model_classes: &[String]) -> Result<Vec<usize>> {
    let unknown: Vec<&str> = folder_classes
        .iter()
        .filter(|c| !model_classes.contains(c))
        .map(String::as_str)
        .collect();
    if !unknown.is_empty() {
        bail!(
            "the folder has classes the model does not know: {}.\nThe folder's classes: {}.\n\
             The model's classes: {}.",
            unknown.join(", "),
            folder_classes.join(", "),
            model_classes.join(", ")
        );
    }
    Ok(folder_classes
        .iter()
        .filter_map(|c| model_classes.iter().position(|m| m == c))
        .collect())
}

/// Runs `transfer-lab eval`.
pub fn run(args: &EvalArgs) -> Result<EvalReport> {
    let device = Device::flex();
    let model = load_model(&args.model, &args.assets, &device)?;
    let classes = model.file.classes().to_vec();
    let size = model.file.preprocessing().input_size;
    let (photos, names, skipped, photos_from) = match &args.folder {
        Some(folder) => {
            let read = read_folder(folder, size)?;
            let mapping = class_mapping(&read.classes, &classes)?;
            let mut relabelled = PhotoSet::new(size);
            for (index, &label) in read.photos.labels().iter().enumerate() {
                relabelled.push(read.photos.photo(index), mapping[label]);
            }
            (
                relabelled,
                read.names,
                read.skipped,
                folder.display().to_string(),
            )
        }
        None => {
            let assets = PreparedAssets::open(&args.assets)?;
            let prepared = assets.load_photos(args.full, size)?;
            class_mapping(&prepared.classes, &classes)?;
            let what = if args.full { "full" } else { "lesson" };
            let from = format!("prepared validation photos ({what} subset)");
            (
                prepared.validation,
                prepared.validation_names,
                Vec::new(),
                from,
            )
        }
    };
    let (photos, names) = limit_per_class(&photos, &names, args.per_class);
    if photos.is_empty() {
        bail!("there is no readable photo to evaluate on");
    }
    let evaluation = pollster::block_on(model.classifier.evaluate(
        &photos,
        model.file.preprocessing(),
        classes.len(),
    ))?;
    let outcomes = names
        .iter()
        .zip(photos.labels())
        .zip(&evaluation.predictions)
        .map(|((photo, &truth), &predicted)| PhotoOutcome {
            photo: photo.clone(),
            truth: classes[truth].clone(),
            predicted: classes[predicted].clone(),
        })
        .collect();
    Ok(EvalReport {
        model: args.model.clone(),
        photos_from,
        classes,
        photos: photos.len(),
        skipped,
        evaluation,
        outcomes,
    })
}

/// Prints accuracy, per-class accuracy and the confusion matrix as tables.
pub fn print_report(report: &EvalReport) {
    let e = &report.evaluation;
    println!("model: {}", report.model.display());
    println!("photos: {} from {}", report.photos, report.photos_from);
    if !report.skipped.is_empty() {
        println!("skipped {} unreadable files:", report.skipped.len());
        for file in &report.skipped {
            println!("  {}: {}", file.name, file.reason);
        }
    }
    println!("accuracy: {:.4}\n", e.accuracy);
    let width = report
        .classes
        .iter()
        .map(String::len)
        .max()
        .unwrap_or(5)
        .max(5);
    println!("{:<width$}  accuracy  photos", "class");
    for (class, (accuracy, row)) in report
        .classes
        .iter()
        .zip(e.per_class_accuracy.iter().zip(&e.confusion))
    {
        let accuracy = accuracy.map_or("-".to_string(), |a| format!("{a:.3}"));
        println!(
            "{class:<width$}  {accuracy:>8}  {:>6}",
            row.iter().sum::<usize>()
        );
    }
    println!("\nconfusion matrix (rows: true class, columns: predicted)");
    let header: Vec<String> = report
        .classes
        .iter()
        .map(|c| format!("{:>11}", c.chars().take(10).collect::<String>()))
        .collect();
    println!("{:<width$}{}", "", header.join(""));
    for (class, row) in report.classes.iter().zip(&e.confusion) {
        let cells: Vec<String> = row.iter().map(|n| format!("{n:>11}")).collect();
        println!("{class:<width$}{}", cells.join(""));
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn folder_classes_map_by_name_and_unknown_ones_are_listed() {
        let model: Vec<String> = ["daisy", "roses", "tulips"].map(String::from).to_vec();
        let folder: Vec<String> = ["roses", "tulips"].map(String::from).to_vec();
        assert_eq!(class_mapping(&folder, &model).unwrap(), vec![1, 2]);
        let folder: Vec<String> = ["roses", "cacti"].map(String::from).to_vec();
        let message = class_mapping(&folder, &model).unwrap_err().to_string();
        assert!(message.contains("cacti"), "{message}");
        assert!(message.contains("daisy, roses, tulips"), "{message}");
    }
}
