//! The trained-model file that the browser downloads and the command-line tool reads, and the
//! other way round.
//!
//! A trained model is a web weight file (see [`crate::weights`]) whose JSON header also carries
//! a [`TrainedModelInfo`]: which network it is, the pretrained backbone it builds on (by the
//! SHA-256 of that backbone's weight file, which is not repeated inside), how it was trained and
//! how well it did. The header's `labels` are the class names and its `preprocessing` says how a
//! photo becomes the input. Only trained parameters are stored, as `f32`, in burn's layout:
//!
//! | model | tensors |
//! |---|---|
//! | feature extraction | `head.weight` `[1280, classes]`, `head.bias` `[classes]` |
//! | fine-tuning | `head.*`, `head_conv.*`, `blocks.{i}.*` for `i >= first_trainable_block` |
//! | scratch CNN | `conv{1,2,3}.weight` `[out, in, 3, 3]` and `.bias`, `dense.*`, `output.*` |
//!
//! Files end in [`MODEL_FILE_EXTENSION`].

use burn::tensor::{Device, activation::softmax};
use serde::{Deserialize, Serialize};
use thiserror::Error;

use crate::fine_tune::FineTunedClassifier;
use crate::head::{ClassifierHead, HeadSnapshot, TrainError, read_f32};
use crate::metrics::{Evaluation, evaluate_predictions};
use crate::mobilenet_v2::{BackboneError, FEATURE_WIDTH, MobileNetV2, input_tensor};
use crate::photo_set::PhotoSet;
use crate::scratch_cnn::{ScratchCnn, ScratchCnnConfig};
use crate::shards::ModelEntry;
use crate::weights::{Preprocessing, TensorF32, WebWeights, WeightsBuilder, WeightsError};

/// File name extension of trained-model files.
pub const MODEL_FILE_EXTENSION: &str = "tlmodel";
/// Photos sent through a network at once when predicting.
const PREDICTION_BATCH: usize = 16;

/// The pretrained backbone a model builds on.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BackboneRef {
    /// Backbone id, e.g. `mobilenet_v2`.
    pub backbone: String,
    /// Architecture recorded in the backbone's weight file.
    pub architecture: String,
    /// Lower-case hex SHA-256 of the backbone's weight file.
    pub sha256: String,
}

impl From<&ModelEntry> for BackboneRef {
    fn from(entry: &ModelEntry) -> Self {
        Self {
            backbone: entry.backbone.clone(),
            architecture: entry.architecture.clone(),
            sha256: entry.sha256.clone(),
        }
    }
}

/// Which network a trained-model file describes.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum ModelKind {
    /// A frozen pretrained backbone and a trained linear head on its pooled features.
    FeatureExtraction {
        /// The frozen backbone.
        backbone: BackboneRef,
    },
    /// A pretrained backbone whose top blocks were trained further together with a head.
    FineTuning {
        /// The backbone whose lower blocks stay as published.
        backbone: BackboneRef,
        /// Blocks from this one on (and the final 1x1 convolution) are stored in the file.
        first_trainable_block: usize,
    },
    /// A small CNN trained from random weights, without any pretrained backbone.
    ScratchCnn {
        /// Its layer sizes.
        cnn: ScratchCnnConfig,
    },
}

impl ModelKind {
    /// The pretrained backbone the model needs, if any.
    pub fn backbone(&self) -> Option<&BackboneRef> {
        match self {
            ModelKind::FeatureExtraction { backbone } => Some(backbone),
            ModelKind::FineTuning { backbone, .. } => Some(backbone),
            ModelKind::ScratchCnn { .. } => None,
        }
    }

    /// A short description for people.
    pub fn describe(&self) -> String {
        match self {
            ModelKind::FeatureExtraction { backbone } => {
                format!(
                    "feature extraction: frozen {} + linear head",
                    backbone.backbone
                )
            }
            ModelKind::FineTuning {
                backbone,
                first_trainable_block,
            } => {
                let retrained = if *first_trainable_block >= crate::fine_tune::block_count() {
                    "its final 1x1 convolution".to_string()
                } else {
                    format!("blocks {first_trainable_block}+ and its final 1x1 convolution")
                };
                format!(
                    "fine-tuning: {} with {retrained} retrained, and a linear head",
                    backbone.backbone
                )
            }
            ModelKind::ScratchCnn { cnn } => format!(
                "small CNN trained from scratch on {0}x{0} photos",
                cnn.input_size
            ),
        }
    }
}

/// How a model was trained and how well it did, for people reading the file.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TrainingRecord {
    /// The lesson that trained it, e.g. `02`.
    pub lesson: String,
    /// Epochs trained.
    pub epochs: usize,
    /// Learning rate.
    pub learning_rate: f64,
    /// Photos per gradient step.
    pub batch_size: usize,
    /// Seed of the initial weights and the shuffling.
    pub seed: u64,
    /// Training photos used.
    pub train_photos: usize,
    /// Validation photos measured.
    pub validation_photos: usize,
    /// Accuracy on those validation photos, if measured.
    pub validation_accuracy: Option<f32>,
    /// Where it was trained, e.g. `browser, WebGPU` or `transfer-lab CLI, CPU`.
    pub trained_with: String,
}

/// The trained-model part of a weight file's header.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TrainedModelInfo {
    /// The network.
    #[serde(flatten)]
    pub kind: ModelKind,
    /// How it was trained.
    pub training: TrainingRecord,
}

/// Why a trained-model file cannot be used.
#[derive(Debug, Error)]
pub enum ModelFileError {
    /// The bytes are not a valid weight file at all.
    #[error("this is not a Transfer Lab model file: {0}")]
    Weights(#[from] WeightsError),
    /// A weight file without trained-model information (for example a backbone file).
    #[error(
        "this weight file holds the {0} network but no trained model; choose a \
         .{MODEL_FILE_EXTENSION} file saved after a lesson"
    )]
    NotTrainedModel(String),
    /// The model needs pretrained backbone weights that were not given.
    #[error(
        "the model builds on the {0} backbone, whose weights are not installed \
         (run `transfer-lab prepare`)"
    )]
    MissingBackbone(String),
    /// The installed backbone is not the one the model was trained on.
    #[error(
        "the model was trained on {backbone} weights with SHA-256 {expected}, but the installed \
         ones have {found}; its predictions would be meaningless"
    )]
    BackboneMismatch {
        /// Backbone id.
        backbone: String,
        /// Hash recorded in the model file.
        expected: String,
        /// Hash of the installed file.
        found: String,
    },
    /// The backbone weights do not build.
    #[error(transparent)]
    Backbone(#[from] BackboneError),
    /// The file has no class names.
    #[error("the model file names no classes")]
    NoClasses,
}

/// Pretrained backbone weights together with the hash of the file they came from.
#[derive(Debug, Clone, Copy)]
pub struct InstalledBackbone<'a> {
    /// The parsed weight file.
    pub weights: &'a WebWeights,
    /// Lower-case hex SHA-256 of the file's bytes.
    pub sha256: &'a str,
}

/// A parsed trained-model file.
#[derive(Debug, Clone)]
pub struct ModelFile {
    weights: WebWeights,
    info: TrainedModelInfo,
}

impl ModelFile {
    /// Parses and validates a trained-model file.
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, ModelFileError> {
        let weights = WebWeights::from_bytes(bytes)?;
        let info =
            weights.header().model.clone().ok_or_else(|| {
                ModelFileError::NotTrainedModel(weights.architecture().to_string())
            })?;
        if weights.labels().is_empty() {
            return Err(ModelFileError::NoClasses);
        }
        Ok(Self { weights, info })
    }

    /// What the model is and how it was trained.
    pub fn info(&self) -> &TrainedModelInfo {
        &self.info
    }

    /// Class names, in output order.
    pub fn classes(&self) -> &[String] {
        self.weights.labels()
    }

    /// How photos become the input.
    pub fn preprocessing(&self) -> &Preprocessing {
        self.weights.preprocessing()
    }

    /// The stored tensors.
    pub fn weights(&self) -> &WebWeights {
        &self.weights
    }
}

/// Serializes a trained model: its description, class names, preprocessing and parameters.
pub fn write_model_file(
    info: TrainedModelInfo,
    classes: Vec<String>,
    preprocessing: Preprocessing,
    parameters: Vec<(String, TensorF32)>,
) -> Result<Vec<u8>, WeightsError> {
    let architecture = match &info.kind {
        ModelKind::FeatureExtraction { backbone } | ModelKind::FineTuning { backbone, .. } => {
            backbone.architecture.clone()
        }
        ModelKind::ScratchCnn { .. } => crate::scratch_cnn::ARCHITECTURE.to_string(),
    };
    let mut builder = WeightsBuilder::new(architecture, preprocessing, classes);
    for (name, tensor) in parameters {
        builder.add_f32(name, tensor.shape, tensor.values)?;
    }
    builder.set_model(info);
    Ok(builder.to_bytes())
}

/// A head's parameters under the names the model file uses.
pub fn head_parameters(head: &HeadSnapshot) -> Vec<(String, TensorF32)> {
    vec![
        (
            "head.weight".into(),
            TensorF32 {
                shape: vec![head.feature_width, head.classes],
                values: head.weight.clone(),
            },
        ),
        (
            "head.bias".into(),
            TensorF32 {
                shape: vec![head.classes],
                values: head.bias.clone(),
            },
        ),
    ]
}

/// Reads a head of `feature_width` inputs and `classes` outputs from a model file's tensors.
pub fn head_from_weights(
    weights: &WebWeights,
    feature_width: usize,
    classes: usize,
    device: &Device,
) -> Result<ClassifierHead, WeightsError> {
    let weight = weights.tensor_with_shape("head.weight", &[feature_width, classes])?;
    let bias = weights.tensor_with_shape("head.bias", &[classes])?;
    let snapshot = HeadSnapshot {
        feature_width,
        classes,
        weight: weight.values,
        bias: bias.values,
        epochs_done: 0,
    };
    Ok(ClassifierHead::from_snapshot(&snapshot, device))
}

/// A trained model ready to classify photos.
#[derive(Debug)]
pub enum TrainedClassifier {
    /// A frozen backbone and a linear head.
    FeatureExtraction {
        /// The pretrained backbone.
        backbone: Box<MobileNetV2>,
        /// The trained head.
        head: ClassifierHead,
    },
    /// A backbone with retrained top blocks and a head.
    FineTuning {
        /// The network.
        classifier: Box<FineTunedClassifier>,
    },
    /// A CNN trained from scratch.
    ScratchCnn {
        /// The network.
        cnn: Box<ScratchCnn>,
    },
}

/// Checks that the installed backbone is the one a model names and builds it.
fn build_backbone(
    wanted: &BackboneRef,
    installed: Option<InstalledBackbone<'_>>,
    device: &Device,
) -> Result<MobileNetV2, ModelFileError> {
    let installed =
        installed.ok_or_else(|| ModelFileError::MissingBackbone(wanted.backbone.clone()))?;
    if installed.sha256 != wanted.sha256 {
        return Err(ModelFileError::BackboneMismatch {
            backbone: wanted.backbone.clone(),
            expected: wanted.sha256.clone(),
            found: installed.sha256.to_string(),
        });
    }
    Ok(MobileNetV2::from_weights(installed.weights, device)?)
}

impl TrainedClassifier {
    /// Builds the model of `file` on `device` (not an autodiff device); `backbone` is required
    /// for models that build on pretrained weights and must be the file they were trained on.
    pub fn load(
        file: &ModelFile,
        backbone: Option<InstalledBackbone<'_>>,
        device: &Device,
    ) -> Result<Self, ModelFileError> {
        let classes = file.classes().len();
        match &file.info.kind {
            ModelKind::FeatureExtraction { backbone: wanted } => {
                let backbone = Box::new(build_backbone(wanted, backbone, device)?);
                let head = head_from_weights(&file.weights, FEATURE_WIDTH, classes, device)?;
                Ok(Self::FeatureExtraction { backbone, head })
            }
            ModelKind::FineTuning {
                backbone: wanted,
                first_trainable_block,
            } => {
                let backbone = build_backbone(wanted, backbone, device)?;
                let classifier = FineTunedClassifier::from_weights(
                    backbone,
                    &file.weights,
                    *first_trainable_block,
                    device,
                )?;
                if classifier.classes() != classes {
                    return Err(ModelFileError::Weights(WeightsError::ShapeMismatch {
                        name: "head.bias".into(),
                        found: vec![classifier.classes()],
                        expected: vec![classes],
                    }));
                }
                Ok(Self::FineTuning {
                    classifier: Box::new(classifier),
                })
            }
            ModelKind::ScratchCnn { cnn } => Ok(Self::ScratchCnn {
                cnn: Box::new(ScratchCnn::from_parameters(
                    cnn,
                    classes,
                    &file.weights,
                    device,
                )?),
            }),
        }
    }

    /// Class probabilities of photos (`[size, size, 3]` u8 each, at the model's input size):
    /// `photos.len()` rows of one value per class.
    pub async fn probabilities(
        &self,
        photos: &[&[u8]],
        preprocessing: &Preprocessing,
    ) -> Result<Vec<Vec<f32>>, TrainError> {
        let mut rows = Vec::with_capacity(photos.len());
        for batch in photos.chunks(PREDICTION_BATCH) {
            let logits = match self {
                Self::FeatureExtraction { backbone, head } => {
                    let device = head.linear.weight.device();
                    let input =
                        input_tensor(batch, preprocessing.input_size, preprocessing, &device);
                    head.forward(backbone.features(input))
                }
                Self::FineTuning { classifier } => {
                    let device = classifier.top.head.weight.device();
                    let input =
                        input_tensor(batch, preprocessing.input_size, preprocessing, &device);
                    classifier.logits(input)
                }
                Self::ScratchCnn { cnn } => {
                    let device = cnn.output.weight.device();
                    let input =
                        input_tensor(batch, preprocessing.input_size, preprocessing, &device);
                    cnn.forward(input)
                }
            };
            let [count, classes] = logits.dims();
            let values = read_f32(softmax(logits, 1)).await?;
            rows.extend((0..count).map(|i| values[i * classes..(i + 1) * classes].to_vec()));
        }
        Ok(rows)
    }

    /// Accuracy, per-class accuracy and confusion matrix on labelled photos.
    pub async fn evaluate(
        &self,
        photos: &PhotoSet,
        preprocessing: &Preprocessing,
        classes: usize,
    ) -> Result<Evaluation, TrainError> {
        let views: Vec<&[u8]> = (0..photos.len()).map(|i| photos.photo(i)).collect();
        let predictions: Vec<usize> = self
            .probabilities(&views, preprocessing)
            .await?
            .iter()
            .map(|row| top_k(row, 1).first().map_or(0, |&(class, _)| class))
            .collect();
        Ok(evaluate_predictions(&predictions, photos.labels(), classes))
    }
}

/// The `k` most probable classes of one row of probabilities, most probable first.
pub fn top_k(probabilities: &[f32], k: usize) -> Vec<(usize, f32)> {
    let mut ranked: Vec<(usize, f32)> = probabilities.iter().copied().enumerate().collect();
    ranked.sort_by(|a, b| b.1.total_cmp(&a.1));
    ranked.truncate(k);
    ranked
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::head::HeadTrainer;
    use crate::weights::sha256_hex;

    fn backbone_file() -> Vec<u8> {
        // A random MobileNetV2 written with the same tensors a real backbone file holds.
        let network = MobileNetV2::random(&Device::flex());
        let mut builder = WeightsBuilder::new(
            crate::mobilenet_v2::ARCHITECTURE,
            Preprocessing::mobilenet_v2(),
            Vec::new(),
        );
        for (name, tensor) in pollster::block_on(network.parameters()).unwrap() {
            builder.add_f32(name, tensor.shape, tensor.values).unwrap();
        }
        builder.to_bytes()
    }

    fn info(sha256: &str) -> TrainedModelInfo {
        TrainedModelInfo {
            kind: ModelKind::FeatureExtraction {
                backbone: BackboneRef {
                    backbone: "mobilenet_v2".into(),
                    architecture: crate::mobilenet_v2::ARCHITECTURE.into(),
                    sha256: sha256.into(),
                },
            },
            training: TrainingRecord {
                lesson: "02".into(),
                epochs: 1,
                learning_rate: 3e-4,
                batch_size: 32,
                seed: 7,
                train_photos: 0,
                validation_photos: 0,
                validation_accuracy: None,
                trained_with: "test".into(),
            },
        }
    }

    #[test]
    fn a_feature_extraction_model_survives_the_file_and_predicts_the_same() {
        let device = Device::flex();
        let backbone_bytes = backbone_file();
        let backbone_sha = sha256_hex(&backbone_bytes);
        let backbone_weights = WebWeights::from_bytes(&backbone_bytes).unwrap();
        let head = ClassifierHead::new(FEATURE_WIDTH, 3, 11, &device);
        let snapshot = pollster::block_on(head.snapshot(4)).unwrap();
        let classes = vec!["a".to_string(), "b".into(), "c".into()];
        let bytes = write_model_file(
            info(&backbone_sha),
            classes.clone(),
            Preprocessing::mobilenet_v2(),
            head_parameters(&snapshot),
        )
        .unwrap();

        let file = ModelFile::from_bytes(&bytes).unwrap();
        assert_eq!(file.classes(), classes.as_slice());
        assert_eq!(file.info(), &info(&backbone_sha));
        let installed = InstalledBackbone {
            weights: &backbone_weights,
            sha256: &backbone_sha,
        };
        let classifier = TrainedClassifier::load(&file, Some(installed), &device).unwrap();

        // A direct computation with the original backbone and head.
        let mut photos = PhotoSet::new(224);
        for shade in [0u8, 90, 200] {
            let photo: Vec<u8> = (0..224 * 224 * 3)
                .map(|i| (i % 251) as u8 ^ shade)
                .collect();
            photos.push(&photo, 0);
        }
        let views: Vec<&[u8]> = (0..3).map(|i| photos.photo(i)).collect();
        let preprocessing = Preprocessing::mobilenet_v2();
        let loaded = pollster::block_on(classifier.probabilities(&views, &preprocessing)).unwrap();
        let original = MobileNetV2::from_weights(&backbone_weights, &device).unwrap();
        let input = input_tensor(&views, 224, &preprocessing, &device);
        let direct = softmax(head.forward(original.features(input)), 1);
        let direct = direct.into_data().try_to_vec::<f32>().unwrap();
        for (row, expected) in loaded.iter().zip(direct.chunks(3)) {
            for (a, b) in row.iter().zip(expected) {
                assert!((a - b).abs() < 1e-6, "{row:?} vs {expected:?}");
            }
            assert!((row.iter().sum::<f32>() - 1.0).abs() < 1e-5);
        }
    }

    #[test]
    fn refuses_backbone_files_missing_and_mismatched_backbones() {
        let device = Device::flex();
        let backbone_bytes = backbone_file();
        assert!(matches!(
            ModelFile::from_bytes(&backbone_bytes),
            Err(ModelFileError::NotTrainedModel(_))
        ));
        assert!(matches!(
            ModelFile::from_bytes(b"not a model"),
            Err(ModelFileError::Weights(WeightsError::NotWeightFile))
        ));
        let trainer = HeadTrainer::new(Default::default(), FEATURE_WIDTH, 2, &device);
        let snapshot = pollster::block_on(trainer.snapshot()).unwrap();
        let bytes = write_model_file(
            info("0123"),
            vec!["x".into(), "y".into()],
            Preprocessing::mobilenet_v2(),
            head_parameters(&snapshot),
        )
        .unwrap();
        let file = ModelFile::from_bytes(&bytes).unwrap();
        assert!(matches!(
            TrainedClassifier::load(&file, None, &device),
            Err(ModelFileError::MissingBackbone(_))
        ));
        let weights = WebWeights::from_bytes(&backbone_bytes).unwrap();
        let installed = InstalledBackbone {
            weights: &weights,
            sha256: "4567",
        };
        let error = TrainedClassifier::load(&file, Some(installed), &device).unwrap_err();
        assert!(error.to_string().contains("0123"), "{error}");
        assert!(matches!(error, ModelFileError::BackboneMismatch { .. }));
    }

    #[test]
    fn a_head_of_the_wrong_shape_is_refused() {
        let device = Device::flex();
        let head = ClassifierHead::new(FEATURE_WIDTH, 2, 1, &device);
        let snapshot = pollster::block_on(head.snapshot(0)).unwrap();
        let bytes = write_model_file(
            info("ab"),
            vec!["x".into(), "y".into(), "z".into()],
            Preprocessing::mobilenet_v2(),
            head_parameters(&snapshot),
        )
        .unwrap();
        let file = ModelFile::from_bytes(&bytes).unwrap();
        let error = head_from_weights(file.weights(), FEATURE_WIDTH, 3, &device).unwrap_err();
        assert!(
            matches!(error, WeightsError::ShapeMismatch { .. }),
            "{error}"
        );
    }

    #[test]
    fn a_scratch_cnn_survives_the_file_and_predicts_the_same() {
        let device = Device::flex();
        let config = ScratchCnnConfig {
            input_size: 16,
            ..ScratchCnnConfig::default()
        };
        let cnn = config.init(2, 5, &device);
        let parameters = pollster::block_on(cnn.parameters()).unwrap();
        let mut record = info("unused").training;
        record.lesson = "01".into();
        let model = TrainedModelInfo {
            kind: ModelKind::ScratchCnn {
                cnn: config.clone(),
            },
            training: record,
        };
        let bytes = write_model_file(
            model,
            vec!["x".into(), "y".into()],
            config.preprocessing(),
            parameters,
        )
        .unwrap();
        let file = ModelFile::from_bytes(&bytes).unwrap();
        assert_eq!(file.info().kind.backbone(), None);
        let classifier = TrainedClassifier::load(&file, None, &device).unwrap();
        let photo: Vec<u8> = (0..16 * 16 * 3).map(|i| (i * 7 % 256) as u8).collect();
        let loaded =
            pollster::block_on(classifier.probabilities(&[photo.as_slice()], file.preprocessing()))
                .unwrap();
        let input = input_tensor(&[photo.as_slice()], 16, &config.preprocessing(), &device);
        let direct = softmax(cnn.forward(input), 1)
            .into_data()
            .try_to_vec::<f32>()
            .unwrap();
        assert_eq!(loaded[0], direct);
    }

    #[test]
    fn top_k_ranks_by_probability() {
        assert_eq!(top_k(&[0.1, 0.6, 0.3], 2), vec![(1, 0.6), (2, 0.3)]);
        assert_eq!(top_k(&[1.0], 3), vec![(0, 1.0)]);
    }
}
