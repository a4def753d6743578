//! Reading the prepared assets (`transfer-lab prepare`'s output folder) from a local disk: the
//! native counterpart of the browser's downloads, for the command-line tool and benchmarks.

use std::path::{Path, PathBuf};

use thiserror::Error;

use crate::photo::{PhotoError, to_input_u8};
use crate::photo_set::PhotoSet;
use crate::shards::{
    DatasetManifest, ModelEntry, ModelsIndex, SPLIT_TRAIN, SPLIT_VALIDATION, SUBSET_LESSON,
    ShardError, decode_shard,
};
use crate::weights::{WebWeights, WeightsError, sha256_hex};

/// Why the prepared assets could not be read.
#[derive(Debug, Error)]
pub enum PreparedError {
    /// A file is missing or unreadable.
    #[error(
        "cannot read {path}: {source} (run `transfer-lab prepare` to create the assets)",
        path = path.display()
    )]
    Read {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// A JSON file does not parse.
    #[error("{path} is not a valid {what}: {reason}", path = path.display())]
    BadJson {
        /// The file.
        path: PathBuf,
        /// What the file should be.
        what: &'static str,
        /// The parser's message.
        reason: String,
    },
    /// A file's hash differs from the one its index records.
    #[error(
        "{path} does not match its recorded SHA-256 (run `transfer-lab prepare` again)",
        path = path.display()
    )]
    HashMismatch {
        /// The file.
        path: PathBuf,
    },
    /// A backbone is not in `models/index.json`.
    #[error("the {0} weights are not prepared (see `transfer-lab prepare --help`)")]
    MissingBackbone(String),
    /// A shard is corrupt.
    #[error("shard {file}: {source}")]
    Shard {
        /// Shard file name.
        file: String,
        /// What is wrong.
        source: ShardError,
    },
    /// A weight file is malformed.
    #[error("{file}: {source}")]
    Weights {
        /// Weight file name.
        file: String,
        /// What is wrong.
        source: WeightsError,
    },
    /// A photo inside a shard does not decode.
    #[error("photo {name}: {source}")]
    Photo {
        /// Photo name.
        name: String,
        /// What is wrong.
        source: PhotoError,
    },
}

/// Labelled photos split into training and validation sets, with their names.
#[derive(Debug, Clone, Default)]
pub struct LabelledPhotos {
    /// Class names; labels index into them.
    pub classes: Vec<String>,
    /// Training photos.
    pub train: PhotoSet,
    /// Held-out photos.
    pub validation: PhotoSet,
    /// Name of each training photo (e.g. `daisy/123.jpg`).
    pub train_names: Vec<String>,
    /// Name of each validation photo.
    pub validation_names: Vec<String>,
}

/// The prepared dataset and weight files in one folder.
#[derive(Debug, Clone)]
pub struct PreparedAssets {
    root: PathBuf,
    manifest: DatasetManifest,
    models: ModelsIndex,
}

fn read(path: &Path) -> Result<Vec<u8>, PreparedError> {
    std::fs::read(path).map_err(|source| PreparedError::Read {
        path: path.to_path_buf(),
        source,
    })
}

fn read_json<T: serde::de::DeserializeOwned>(
    path: &Path,
    what: &'static str,
) -> Result<T, PreparedError> {
    serde_json::from_slice(&read(path)?).map_err(|e| PreparedError::BadJson {
        path: path.to_path_buf(),
        what,
        reason: e.to_string(),
    })
}

/// Reads a file and checks it against a recorded SHA-256.
fn read_checked(path: &Path, sha256: &str) -> Result<Vec<u8>, PreparedError> {
    let bytes = read(path)?;
    if sha256_hex(&bytes) != sha256 {
        return Err(PreparedError::HashMismatch {
            path: path.to_path_buf(),
        });
    }
    Ok(bytes)
}

impl PreparedAssets {
    /// Opens the folder written by `transfer-lab prepare` (by default `public/generated`).
    pub fn open(root: &Path) -> Result<Self, PreparedError> {
        let manifest = read_json(&root.join("flowers/manifest.json"), "dataset manifest")?;
        let models = read_json(&root.join("models/index.json"), "models index")?;
        Ok(Self {
            root: root.to_path_buf(),
            manifest,
            models,
        })
    }

    /// The dataset manifest.
    pub fn manifest(&self) -> &DatasetManifest {
        &self.manifest
    }

    /// The prepared weight files.
    pub fn models(&self) -> &ModelsIndex {
        &self.models
    }

    /// Reads and validates a backbone's weight file (hash checked).
    pub fn weights(&self, backbone: &str) -> Result<(WebWeights, ModelEntry), PreparedError> {
        let entry = self
            .models
            .get(backbone)
            .ok_or_else(|| PreparedError::MissingBackbone(backbone.to_string()))?;
        self.weight_file(&entry.file, &entry.sha256)
            .map(|weights| (weights, entry.clone()))
    }

    /// Reads a weight file under `models/` and checks its hash.
    pub fn weight_file(&self, file: &str, sha256: &str) -> Result<WebWeights, PreparedError> {
        let bytes = read_checked(&self.root.join("models").join(file), sha256)?;
        WebWeights::from_bytes(&bytes).map_err(|source| PreparedError::Weights {
            file: file.to_string(),
            source,
        })
    }

    /// Decodes the lesson subset (or every photo when `full`) squeezed to `size` x `size`.
    pub fn load_photos(&self, full: bool, size: usize) -> Result<LabelledPhotos, PreparedError> {
        let mut photos = LabelledPhotos {
            classes: self.manifest.classes.clone(),
            train: PhotoSet::new(size),
            validation: PhotoSet::new(size),
            ..LabelledPhotos::default()
        };
        for shard in self.manifest.shards_for(full) {
            let bytes = read_checked(&self.root.join("flowers").join(&shard.file), &shard.sha256)?;
            let decoded = decode_shard(&bytes).map_err(|source| PreparedError::Shard {
                file: shard.file.clone(),
                source,
            })?;
            let (set, names) = if shard.split == SPLIT_VALIDATION {
                (&mut photos.validation, &mut photos.validation_names)
            } else {
                (&mut photos.train, &mut photos.train_names)
            };
            for photo in decoded {
                let pixels = to_input_u8(&photo.jpeg, size as u32).map_err(|source| {
                    PreparedError::Photo {
                        name: photo.name.clone(),
                        source,
                    }
                })?;
                set.push(&pixels, photo.class_index);
                names.push(photo.name);
            }
        }
        Ok(photos)
    }

    /// Up to `per_class` photos of every class from the training split's photos outside the
    /// lesson subset (the first ones in shard order), squeezed to `size` x `size`, with their
    /// names: photos that a lesson-subset run never trains or validates on, for choosing its
    /// best epoch. Empty when the assets hold no such photos.
    pub fn load_training_extras(
        &self,
        per_class: usize,
        size: usize,
    ) -> Result<(PhotoSet, Vec<String>), PreparedError> {
        let mut set = PhotoSet::new(size);
        let mut names = Vec::new();
        let mut taken = vec![0usize; self.manifest.classes.len()];
        let extras = self
            .manifest
            .shards_for(true)
            .filter(|shard| shard.split == SPLIT_TRAIN && shard.subset != SUBSET_LESSON);
        for shard in extras {
            if taken.iter().all(|&n| n >= per_class) {
                break;
            }
            let bytes = read_checked(&self.root.join("flowers").join(&shard.file), &shard.sha256)?;
            let decoded = decode_shard(&bytes).map_err(|source| PreparedError::Shard {
                file: shard.file.clone(),
                source,
            })?;
            for photo in decoded {
                let Some(count) = taken.get_mut(photo.class_index) else {
                    continue;
                };
                if *count >= per_class {
                    continue;
                }
                *count += 1;
                let pixels = to_input_u8(&photo.jpeg, size as u32).map_err(|source| {
                    PreparedError::Photo {
                        name: photo.name.clone(),
                        source,
                    }
                })?;
                set.push(&pixels, photo.class_index);
                names.push(photo.name);
            }
        }
        Ok((set, names))
    }
}
