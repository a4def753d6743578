//! The lesson subset's photos, downloaded shard by shard and decoded at one square size: the
//! input of the lessons that train on pixels or on cached activations (01 and 03).

use futures::StreamExt;
use transfer_lab_model::photo::to_input_u8;
use transfer_lab_model::photo_set::PhotoSet;
use transfer_lab_model::shards::{DatasetManifest, SPLIT_VALIDATION, decode_shard};

use super::feature_run::Report;
use super::fetch::fetch_bytes;
use crate::protocol::{DownloadProgress, FromWorker};

/// Shard downloads in flight at once.
const DOWNLOADS_AHEAD: usize = 3;

/// Decoded training and validation photos of the lesson subset.
pub struct LessonPhotos {
    /// Training photos.
    pub train: PhotoSet,
    /// Validation photos.
    pub validation: PhotoSet,
    /// Name of every validation photo, in order (for the credits).
    pub validation_names: Vec<String>,
    /// Bytes downloaded.
    pub bytes: u64,
}

/// At most this many photos per class of each split (`None`: all of the lesson subset).
#[derive(Debug, Clone, Copy, Default)]
pub struct PerClassLimits {
    /// Training photos per class.
    pub train: Option<usize>,
    /// Validation photos per class.
    pub validation: Option<usize>,
}

/// Downloads the lesson subset's shards (hash-checked, validation first) and decodes every photo
/// to `size` x `size` RGB. A shard that cannot be had and a photo that cannot be decoded are
/// reported as warnings and left out; the run goes on with the rest.
pub async fn download_lesson_photos(
    base: &str,
    manifest: &DatasetManifest,
    limits: PerClassLimits,
    size: usize,
    report: &Report,
) -> LessonPhotos {
    let shards: Vec<_> = manifest.shards_for(false).cloned().collect();
    let mut progress = DownloadProgress {
        shards_total: shards.len(),
        photos_total: shards.iter().map(|s| s.photos).sum(),
        bytes_total: shards.iter().map(|s| s.bytes).sum(),
        ..Default::default()
    };
    report(FromWorker::Download(progress));
    let classes = manifest.classes.len();
    let mut photos = LessonPhotos {
        train: PhotoSet::new(size),
        validation: PhotoSet::new(size),
        validation_names: Vec::new(),
        bytes: 0,
    };
    let mut kept = [vec![0usize; classes], vec![0usize; classes]];
    let mut downloads = futures::stream::iter(shards.iter().map(|shard| {
        let url = format!("{base}/flowers/{}", shard.file);
        async move { (shard, fetch_bytes(&url, Some(&shard.sha256)).await) }
    }))
    .buffered(DOWNLOADS_AHEAD);
    while let Some((shard, bytes)) = downloads.next().await {
        progress.shards_done += 1;
        let decoded = match bytes.map_err(|e| e.to_string()).and_then(|b| {
            progress.bytes_done += b.len() as u64;
            decode_shard(&b).map_err(|e| format!("{}: {e}", shard.file))
        }) {
            Ok(decoded) => decoded,
            Err(reason) => {
                report(FromWorker::Warning(format!(
                    "A photo shard could not be downloaded ({reason}). Its {} photos are left \
                     out.",
                    shard.photos
                )));
                continue;
            }
        };
        progress.photos_done += decoded.len();
        report(FromWorker::Download(progress));
        let is_validation = shard.split == SPLIT_VALIDATION;
        let limit = if is_validation {
            limits.validation
        } else {
            limits.train
        };
        let counts = &mut kept[usize::from(is_validation)];
        for photo in decoded {
            if photo.class_index >= classes
                || limit.is_some_and(|limit| counts[photo.class_index] >= limit)
            {
                continue;
            }
            match to_input_u8(&photo.jpeg, size as u32) {
                Ok(pixels) => {
                    counts[photo.class_index] += 1;
                    if is_validation {
                        photos.validation.push(&pixels, photo.class_index);
                        photos.validation_names.push(photo.name);
                    } else {
                        photos.train.push(&pixels, photo.class_index);
                    }
                }
                Err(e) => report(FromWorker::Warning(format!(
                    "Skipped {}: it is not a readable photo ({e}).",
                    photo.name
                ))),
            }
        }
        // Lets queued messages (such as Stop) reach the worker between shards.
        gloo_timers::future::TimeoutFuture::new(0).await;
    }
    photos.bytes = progress.bytes_done;
    photos
}
