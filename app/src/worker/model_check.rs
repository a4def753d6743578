//! A trained-model file loaded in the tab: rebuilt on the chosen backend with the pretrained
//! backbone it names, then measured on the lesson's validation photos or asked about one photo.

use transfer_lab_model::head::TrainError;
use transfer_lab_model::photo::to_input_u8;
use transfer_lab_model::photo_set::PhotoSet;
use transfer_lab_model::shards::{
    DatasetManifest, ModelsIndex, SPLIT_VALIDATION, SUBSET_LESSON, decode_shard,
};
use transfer_lab_model::trained_model::{InstalledBackbone, ModelFile, TrainedClassifier, top_k};
use transfer_lab_model::weights::WebWeights;

use super::backend::Backend;
use super::feature_run::Report;
use super::fetch::{fetch_bytes, fetch_json};
use crate::protocol::{
    ClassProbability, FromWorker, ModelCheck, ModelCheckResult, PhotoAnswer, PhotoQuery,
};

/// The backbone weights a model file names, downloaded and hash-checked.
struct Backbone {
    weights: WebWeights,
    sha256: String,
}

/// Builds the model on `backend`.
fn build(
    file: &ModelFile,
    backbone: Option<&Backbone>,
    backend: &Backend,
) -> Result<TrainedClassifier, String> {
    let installed = backbone.map(|b| InstalledBackbone {
        weights: &b.weights,
        sha256: &b.sha256,
    });
    TrainedClassifier::load(file, installed, &backend.device).map_err(|e| e.to_string())
}

/// The pretrained backbone that `file` (named `name`) builds on, downloaded from `base` and
/// hash-checked; `None` for a model without one.
async fn fetch_backbone(
    file: &ModelFile,
    models: &ModelsIndex,
    base: &str,
    name: &str,
    progress: &impl Fn(String),
) -> Result<Option<Backbone>, String> {
    let Some(wanted) = file.info().kind.backbone() else {
        return Ok(None);
    };
    let entry = models.get(&wanted.backbone).ok_or_else(|| {
        format!(
            "{name} builds on the {} backbone, whose weights are not installed here",
            wanted.backbone
        )
    })?;
    progress(format!("Downloading the {} weights", wanted.backbone));
    let bytes = fetch_bytes(
        &format!("{base}/models/{}", entry.file),
        Some(&entry.sha256),
    )
    .await
    .map_err(|e| e.to_string())?;
    let weights = WebWeights::from_bytes(&bytes).map_err(|e| format!("{}: {e}", entry.file))?;
    Ok(Some(Backbone {
        weights,
        sha256: entry.sha256.clone(),
    }))
}

/// Classifies one photo with a trained-model file: its three most probable classes.
pub async fn classify(query: PhotoQuery, report: Report) -> Result<PhotoAnswer, String> {
    let name = query.model_name.clone();
    let file = ModelFile::from_bytes(&query.model_file).map_err(|e| format!("{name}: {e}"))?;
    let size = file.preprocessing().input_size;
    // The photo first: a file that is not a photo is refused before any download.
    let pixels = to_input_u8(&query.photo, size as u32).map_err(|e| {
        format!(
            "{} could not be read as a photo ({e}); choose a JPEG, PNG or BMP image",
            query.photo_name
        )
    })?;
    let progress = |text: String| report(FromWorker::ModelProgress(text));
    let base = query.assets_base.trim_end_matches('/').to_string();
    let mut backend = Backend::select(query.backend).await;
    progress("Reading the model list".into());
    let models: ModelsIndex = fetch_json(&format!("{base}/models/index.json"))
        .await
        .map_err(|e| e.to_string())?;
    let backbone = fetch_backbone(&file, &models, &base, &name, &progress).await?;
    let mut classifier = build(&file, backbone.as_ref(), &backend)?;
    progress(format!("Classifying {}", query.photo_name));
    let preprocessing = file.preprocessing().clone();
    let probabilities = loop {
        match classifier.probabilities(&[&pixels], &preprocessing).await {
            Ok(rows) => break rows.into_iter().next().unwrap_or_default(),
            Err(TrainError::Device(why)) if backend.is_gpu => {
                report(FromWorker::Warning(format!(
                    "The GPU device was lost ({why}); classifying on the CPU instead."
                )));
                backend = Backend::cpu("switched to the CPU after the GPU device was lost");
                classifier = build(&file, backbone.as_ref(), &backend)?;
            }
            Err(e) => return Err(e.to_string()),
        }
    };
    let classes = file.classes();
    let top = top_k(&probabilities, 3)
        .into_iter()
        .map(|(class, probability)| ClassProbability {
            class: classes
                .get(class)
                .cloned()
                .unwrap_or_else(|| format!("class {class}")),
            probability,
        })
        .collect();
    Ok(PhotoAnswer {
        photo_name: query.photo_name,
        model_name: name,
        top,
        backend: backend.info.name.clone(),
    })
}

/// Loads the model file and measures it; errors are plain-words explanations.
pub async fn check(request: ModelCheck, report: Report) -> Result<ModelCheckResult, String> {
    let name = request.file_name.clone();
    let file = ModelFile::from_bytes(&request.model_file).map_err(|e| format!("{name}: {e}"))?;
    let progress = |text: String| report(FromWorker::ModelProgress(text));
    let base = request.assets_base.trim_end_matches('/').to_string();
    let mut backend = Backend::select(request.backend).await;
    progress("Reading the dataset and model lists".into());
    let manifest: DatasetManifest = fetch_json(&format!("{base}/flowers/manifest.json"))
        .await
        .map_err(|e| e.to_string())?;
    let models: ModelsIndex = fetch_json(&format!("{base}/models/index.json"))
        .await
        .map_err(|e| e.to_string())?;

    let backbone = fetch_backbone(&file, &models, &base, &name, &progress).await?;
    let mut classifier = build(&file, backbone.as_ref(), &backend)?;

    // The lesson's classes must all be known to the model, matched by name.
    let classes = file.classes().to_vec();
    let mapping: Vec<Option<usize>> = manifest
        .classes
        .iter()
        .map(|c| classes.iter().position(|m| m == c))
        .collect();
    if mapping.iter().any(Option::is_none) {
        return Err(format!(
            "{name} knows the classes {}, but the lesson's photos are {}; it cannot be measured \
             on them",
            classes.join(", "),
            manifest.classes.join(", ")
        ));
    }

    let size = file.preprocessing().input_size;
    let mut photos = PhotoSet::new(size);
    let mut names = Vec::new();
    let mut kept = vec![0usize; manifest.classes.len()];
    let shards = manifest
        .shards
        .iter()
        .filter(|s| s.split == SPLIT_VALIDATION && s.subset == SUBSET_LESSON);
    for shard in shards {
        progress(format!("Downloading validation photos ({})", shard.file));
        let bytes = fetch_bytes(
            &format!("{base}/flowers/{}", shard.file),
            Some(&shard.sha256),
        )
        .await
        .map_err(|e| e.to_string())?;
        let decoded = decode_shard(&bytes).map_err(|e| format!("{}: {e}", shard.file))?;
        for photo in decoded {
            let Some(Some(label)) = mapping.get(photo.class_index) else {
                continue;
            };
            if request
                .validation_per_class
                .is_some_and(|limit| kept[photo.class_index] >= limit)
            {
                continue;
            }
            match to_input_u8(&photo.jpeg, size as u32) {
                Ok(pixels) => {
                    kept[photo.class_index] += 1;
                    photos.push(&pixels, *label);
                    names.push(photo.name);
                }
                Err(e) => report(FromWorker::Warning(format!("Skipped {}: {e}", photo.name))),
            }
        }
    }
    if photos.is_empty() {
        return Err("there are no validation photos to measure the model on".into());
    }

    progress(format!(
        "Measuring {name} on {} validation photos with the {} backend",
        photos.len(),
        backend.info.name
    ));
    let preprocessing = file.preprocessing().clone();
    let validation = loop {
        match classifier
            .evaluate(&photos, &preprocessing, classes.len())
            .await
        {
            Ok(evaluation) => break evaluation,
            Err(TrainError::Device(why)) if backend.is_gpu => {
                report(FromWorker::Warning(format!(
                    "The GPU device was lost ({why}); measuring on the CPU instead."
                )));
                backend = Backend::cpu("switched to the CPU after the GPU device was lost");
                classifier = build(&file, backbone.as_ref(), &backend)?;
            }
            Err(e) => return Err(e.to_string()),
        }
    };
    let info = file.info();
    Ok(ModelCheckResult {
        file_name: name,
        description: info.kind.describe(),
        lesson: info.training.lesson.clone(),
        trained_with: info.training.trained_with.clone(),
        recorded_accuracy: info.training.validation_accuracy,
        classes,
        validation,
        validation_photos: names,
        backend: backend.info.name.clone(),
    })
}
