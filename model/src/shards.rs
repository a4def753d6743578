//! The photo shard format and the dataset manifest, shared by the asset preparation and the
//! browser.
//!
//! A shard (`*.tlshard`) packs many small JPEGs into one download. Layout, little-endian:
//! magic `TLSHARD1`, `u32` photo count, then per photo: `u16` class index, `u16` name length,
//! UTF-8 name (e.g. `daisy/123.jpg`), `u32` JPEG length, JPEG bytes.

use serde::{Deserialize, Serialize};
use thiserror::Error;

/// The eight bytes every shard starts with.
pub const SHARD_MAGIC: &[u8; 8] = b"TLSHARD1";
/// Version of the manifest layout.
pub const MANIFEST_VERSION: u32 = 1;

/// Errors while reading or writing a shard.
#[derive(Debug, Error, Clone, PartialEq, Eq)]
pub enum ShardError {
    /// The bytes do not start with the shard magic.
    #[error("not a Transfer Lab photo shard")]
    NotShard,
    /// The shard ends in the middle of a photo.
    #[error("the photo shard is truncated (photo {index} of {count})")]
    Truncated {
        /// Zero-based photo being read.
        index: usize,
        /// Photo count announced by the shard.
        count: usize,
    },
    /// A photo name is not UTF-8.
    #[error("photo {index} of the shard has a name that is not UTF-8")]
    BadName {
        /// Zero-based photo index.
        index: usize,
    },
    /// Bytes remain after the last photo.
    #[error("the photo shard has {0} unexpected bytes after its last photo")]
    TrailingBytes(usize),
}

/// One photo inside a shard.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ShardPhoto {
    /// Source-relative name, e.g. `daisy/123.jpg`.
    pub name: String,
    /// Index into [`DatasetManifest::classes`].
    pub class_index: usize,
    /// The (already resized) JPEG.
    pub jpeg: Vec<u8>,
}

/// Serializes photos into a shard. Names longer than 65,535 bytes are cut at a character
/// boundary, class indices are stored as `u16` and JPEGs must be under 4 GiB.
pub fn encode_shard(photos: &[ShardPhoto]) -> Vec<u8> {
    let size: usize = photos.iter().map(|p| 8 + p.name.len() + p.jpeg.len()).sum();
    let mut out = Vec::with_capacity(12 + size);
    out.extend_from_slice(SHARD_MAGIC);
    out.extend_from_slice(&(photos.len() as u32).to_le_bytes());
    for photo in photos {
        let mut name_len = photo.name.len().min(u16::MAX as usize);
        while !photo.name.is_char_boundary(name_len) {
            name_len -= 1;
        }
        out.extend_from_slice(&(photo.class_index.min(u16::MAX as usize) as u16).to_le_bytes());
        out.extend_from_slice(&(name_len as u16).to_le_bytes());
        out.extend_from_slice(&photo.name.as_bytes()[..name_len]);
        out.extend_from_slice(&(photo.jpeg.len() as u32).to_le_bytes());
        out.extend_from_slice(&photo.jpeg);
    }
    out
}

/// A cursor that never reads past the end.
struct Reader<'a> {
    bytes: &'a [u8],
    at: usize,
}

impl<'a> Reader<'a> {
    fn take(&mut self, len: usize) -> Option<&'a [u8]> {
        let slice = self.bytes.get(self.at..self.at.checked_add(len)?)?;
        self.at += len;
        Some(slice)
    }

    fn u16(&mut self) -> Option<u16> {
        self.take(2).map(|b| u16::from_le_bytes([b[0], b[1]]))
    }

    fn u32(&mut self) -> Option<u32> {
        self.take(4)
            .map(|b| u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
    }
}

/// Reads every photo of a shard. Never panics, whatever the bytes.
pub fn decode_shard(bytes: &[u8]) -> Result<Vec<ShardPhoto>, ShardError> {
    let mut r = Reader { bytes, at: 0 };
    if r.take(8) != Some(SHARD_MAGIC.as_slice()) {
        return Err(ShardError::NotShard);
    }
    let count = r
        .u32()
        .ok_or(ShardError::Truncated { index: 0, count: 0 })? as usize;
    // Each photo takes at least 8 bytes, which bounds the allocation for garbage counts.
    let mut photos = Vec::with_capacity(count.min(bytes.len() / 8));
    for index in 0..count {
        let truncated = ShardError::Truncated { index, count };
        let class_index = r.u16().ok_or(truncated.clone())? as usize;
        let name_len = r.u16().ok_or(truncated.clone())? as usize;
        let name = r.take(name_len).ok_or(truncated.clone())?;
        let name = std::str::from_utf8(name).map_err(|_| ShardError::BadName { index })?;
        let jpeg_len = r.u32().ok_or(truncated.clone())? as usize;
        let jpeg = r.take(jpeg_len).ok_or(truncated)?;
        photos.push(ShardPhoto {
            name: name.to_string(),
            class_index,
            jpeg: jpeg.to_vec(),
        });
    }
    if r.at != bytes.len() {
        return Err(ShardError::TrailingBytes(bytes.len() - r.at));
    }
    Ok(photos)
}

/// Which part of the data a photo serves.
pub const SPLIT_TRAIN: &str = "train";
/// See [`SPLIT_TRAIN`].
pub const SPLIT_VALIDATION: &str = "validation";
/// The small subset the lessons download first.
pub const SUBSET_LESSON: &str = "lesson";
/// Every other photo, downloaded only for full-data runs.
pub const SUBSET_EXTRA: &str = "extra";

/// One shard file listed in the manifest.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ShardEntry {
    /// File name relative to the manifest, e.g. `validation-lesson-000.tlshard`.
    pub file: String,
    /// `"train"` or `"validation"`.
    pub split: String,
    /// `"lesson"` or `"extra"`.
    pub subset: String,
    /// Number of photos inside.
    pub photos: usize,
    /// File size in bytes.
    pub bytes: u64,
    /// Lower-case hex SHA-256 of the file.
    pub sha256: String,
}

/// One photo listed in the manifest.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PhotoEntry {
    /// Source-relative name, e.g. `daisy/123.jpg` (the same as inside the shard).
    pub name: String,
    /// Index into [`DatasetManifest::classes`].
    pub class_index: usize,
    /// `"train"` or `"validation"`.
    pub split: String,
    /// `"lesson"` or `"extra"`.
    pub subset: String,
    /// License and author line, or `"unknown"`.
    pub attribution: String,
}

/// A source file that was left out, and why.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SkippedFile {
    /// Source-relative name.
    pub name: String,
    /// Plain-words reason.
    pub reason: String,
}

/// `flowers/manifest.json`: what the prepared dataset holds and where.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DatasetManifest {
    /// [`MANIFEST_VERSION`].
    pub version: u32,
    /// Dataset name, e.g. `tf_flowers`.
    pub dataset: String,
    /// Seed of the shuffle that decided the split.
    pub seed: u64,
    /// Side of the square photos in the shards.
    pub image_size: u32,
    /// How photos were fitted to the square (`"squeeze"`).
    pub resize: String,
    /// Class names; a photo's `class_index` points here.
    pub classes: Vec<String>,
    /// Shard files, validation shards first, lesson before extra within a split.
    pub shards: Vec<ShardEntry>,
    /// Every photo in the shards.
    pub photos: Vec<PhotoEntry>,
    /// Source files that were left out.
    pub skipped: Vec<SkippedFile>,
}

impl DatasetManifest {
    /// The shards to download: lesson shards only, or all of them when `full`; validation
    /// shards come first.
    pub fn shards_for(&self, full: bool) -> impl Iterator<Item = &ShardEntry> {
        let wanted = move |s: &&ShardEntry| full || s.subset == SUBSET_LESSON;
        let validation = self.shards.iter().filter(|s| s.split == SPLIT_VALIDATION);
        let train = self.shards.iter().filter(|s| s.split != SPLIT_VALIDATION);
        validation.filter(wanted).chain(train.filter(wanted))
    }

    /// Total bytes of [`DatasetManifest::shards_for`].
    pub fn bytes_for(&self, full: bool) -> u64 {
        self.shards_for(full).map(|s| s.bytes).sum()
    }
}

fn installed_by_default() -> bool {
    true
}

/// One downloadable backbone in `models/index.json`, or a zoo backbone whose source file was
/// not there when the assets were prepared (`installed: false`, `install` says how).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ModelEntry {
    /// Backbone id used by the app, e.g. `mobilenet_v2`.
    pub backbone: String,
    /// Weight file name relative to the index, e.g. `mobilenet_v2.tlw` (where it would be when
    /// not installed).
    pub file: String,
    /// File size in bytes (0 when not installed).
    pub bytes: u64,
    /// Lower-case hex SHA-256 of the file (empty when not installed).
    pub sha256: String,
    /// Architecture recorded in the weight file.
    pub architecture: String,
    /// Whether the weight file was prepared; indexes written before the model zoo list only
    /// prepared files, so it defaults to `true`.
    #[serde(default = "installed_by_default")]
    pub installed: bool,
    /// Parameters of the network as the app runs it, when known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub parameters: Option<u64>,
    /// One-line instruction for installing a missing backbone.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub install: Option<String>,
}

/// `models/index.json`: the prepared weight files.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct ModelsIndex {
    /// Available backbones.
    pub models: Vec<ModelEntry>,
}

impl ModelsIndex {
    /// The entry for `backbone`, if prepared (entries listed as not installed are skipped).
    pub fn get(&self, backbone: &str) -> Option<&ModelEntry> {
        self.models
            .iter()
            .find(|m| m.backbone == backbone && m.installed)
    }

    /// The entry for `backbone`, installed or not.
    pub fn listed(&self, backbone: &str) -> Option<&ModelEntry> {
        self.models.iter().find(|m| m.backbone == backbone)
    }
}

#[cfg(test)]
// Tests fail loudly on purpose.
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn photos() -> Vec<ShardPhoto> {
        vec![
            ShardPhoto {
                name: "daisy/1.jpg".into(),
                class_index: 0,
                jpeg: vec![1, 2, 3],
            },
            ShardPhoto {
                name: "tulips/é.jpg".into(),
                class_index: 4,
                jpeg: vec![],
            },
        ]
    }

    #[test]
    fn shard_round_trip() {
        let bytes = encode_shard(&photos());
        assert_eq!(&bytes[..8], SHARD_MAGIC);
        assert_eq!(decode_shard(&bytes).unwrap(), photos());
        assert_eq!(decode_shard(&encode_shard(&[])).unwrap(), vec![]);
    }

    #[test]
    fn truncated_or_garbage_shards_are_errors() {
        let bytes = encode_shard(&photos());
        for len in 0..bytes.len() {
            assert!(decode_shard(&bytes[..len]).is_err(), "length {len}");
        }
        assert_eq!(decode_shard(b"garbage!garbage"), Err(ShardError::NotShard));
        let mut huge = SHARD_MAGIC.to_vec();
        huge.extend(u32::MAX.to_le_bytes());
        assert!(matches!(
            decode_shard(&huge),
            Err(ShardError::Truncated { index: 0, .. })
        ));
        let mut extra = bytes.clone();
        extra.push(0);
        assert_eq!(decode_shard(&extra), Err(ShardError::TrailingBytes(1)));
    }

    #[test]
    fn shards_for_lists_validation_first() {
        let shard = |file: &str, split: &str, subset: &str| ShardEntry {
            file: file.into(),
            split: split.into(),
            subset: subset.into(),
            photos: 1,
            bytes: 10,
            sha256: String::new(),
        };
        let manifest = DatasetManifest {
            version: MANIFEST_VERSION,
            dataset: "x".into(),
            seed: 1,
            image_size: 224,
            resize: "squeeze".into(),
            classes: vec![],
            shards: vec![
                shard("t-l", SPLIT_TRAIN, SUBSET_LESSON),
                shard("v-l", SPLIT_VALIDATION, SUBSET_LESSON),
                shard("t-e", SPLIT_TRAIN, SUBSET_EXTRA),
                shard("v-e", SPLIT_VALIDATION, SUBSET_EXTRA),
            ],
            photos: vec![],
            skipped: vec![],
        };
        let files = |full| {
            manifest
                .shards_for(full)
                .map(|s| s.file.as_str())
                .collect::<Vec<_>>()
        };
        assert_eq!(files(false), ["v-l", "t-l"]);
        assert_eq!(files(true), ["v-l", "v-e", "t-l", "t-e"]);
        assert_eq!(manifest.bytes_for(true), 40);
        let json = serde_json::to_string(&manifest).unwrap();
        assert_eq!(
            serde_json::from_str::<DatasetManifest>(&json).unwrap(),
            manifest
        );
    }

    #[test]
    fn models_index_reads_old_files_and_skips_missing_backbones() {
        let old = r#"{"models":[{"backbone":"mobilenet_v2","file":"m.tlw","bytes":3,
            "sha256":"ab","architecture":"mobilenet_v2_1.0_224"}]}"#;
        let index: ModelsIndex = serde_json::from_str(old).unwrap();
        let entry = index.get("mobilenet_v2").unwrap();
        assert!(entry.installed);
        assert_eq!((entry.parameters, entry.install.as_deref()), (None, None));
        let mut index = index;
        index.models.push(ModelEntry {
            backbone: "vgg16".into(),
            file: "vgg16.tlw".into(),
            bytes: 0,
            sha256: String::new(),
            architecture: "vgg16".into(),
            installed: false,
            parameters: Some(14_714_688),
            install: Some("put the file there".into()),
        });
        let json = serde_json::to_string(&index).unwrap();
        let back: ModelsIndex = serde_json::from_str(&json).unwrap();
        assert_eq!(back, index);
        assert!(back.get("vgg16").is_none());
        assert_eq!(back.listed("vgg16").unwrap().parameters, Some(14_714_688));
    }
}
