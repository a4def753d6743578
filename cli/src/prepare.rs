//! `transfer-lab prepare`: turns the public flower photos and the published MobileNetV2 into
//! the web app's git-ignored assets under `public/generated/`.
//!
//! Outputs:
//! - `flowers/manifest.json` and `flowers/*.tlshard`: 224x224 squeezed JPEGs in shards, split
//!   per class into validation (20%) and train, each with a small "lesson" subset first;
//! - `models/mobilenet_v2.tlw` (the backbone), `models/mobilenet_v2_imagenet_classifier.tlw`
//!   (its ImageNet classifier) and `models/index.json`: the int8 weights in the web format;
//! - `models/vgg16.tlw` and `models/resnet50.tlw` (lesson 04's model zoo) when the source's
//!   `models/` folder holds torchvision's `vgg16-397923af.pth` / `resnet50-11ad3fa6.pth` (or,
//!   with `--zoo`, downloaded from torchvision); otherwise `index.json` lists them as not
//!   installed, with the instruction for installing them.
//!
//! Each output folder holds a stamp of the inputs' identity and parameters, so a second run
//! with the same inputs only re-checks hashes.

use anyhow::{Context, Result, bail};
use clap::Args;
use indicatif::{ProgressBar, ProgressStyle};
use rand::SeedableRng;
use rand::seq::SliceRandom;
use rand_chacha::ChaCha8Rng;
use rayon::prelude::*;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::collections::HashMap;
use std::fs;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::time::{Instant, UNIX_EPOCH};
use transfer_lab_model::backbone::BackboneKind;
use transfer_lab_model::mobilenet_v2;
use transfer_lab_model::photo::{decode_photo, encode_jpeg, squeeze_to_square};
use transfer_lab_model::shards::{
    DatasetManifest, MANIFEST_VERSION, ModelEntry, ModelsIndex, PhotoEntry, SPLIT_TRAIN,
    SPLIT_VALIDATION, SUBSET_EXTRA, SUBSET_LESSON, ShardEntry, ShardPhoto, SkippedFile,
    encode_shard,
};
use transfer_lab_model::tflite::import_mobilenet_v2;
use transfer_lab_model::torchvision::{
    RESNET50_FILE, RESNET50_URL, TorchvisionError, VGG16_FILE, VGG16_URL, import_resnet50,
    import_vgg16,
};
use transfer_lab_model::weights::WeightsBuilder;
use transfer_lab_model::weights::{WebWeights, sha256_hex};

/// Bumped whenever the outputs' layout or content rules change, to invalidate old stamps.
const TOOL_FORMAT_VERSION: u32 = 2;
/// The offline mirror, relative to the workspace root.
const DEFAULT_MIRROR: &str = "../shared/assets";
/// Official flowers archive.
const FLOWERS_URL: &str =
    "https://storage.googleapis.com/download.tensorflow.org/example_images/flower_photos.tgz";
/// Official home of the TF2 int8 MobileNetV2 and its labels.
const CORAL_BASE: &str = "https://github.com/google-coral/test_data/raw/master";
const MODEL_FILE: &str = "tf2_mobilenet_v2_1.0_224_ptq.tflite";
const LABELS_FILE: &str = "imagenet_labels.txt";
/// Share of each class kept for validation.
const VALIDATION_PERCENT: usize = 20;
/// Side of the squeezed photos.
const IMAGE_SIZE: u32 = 224;
/// Shards are cut once they would exceed this size.
const SHARD_TARGET_BYTES: usize = 3 << 20;
const STAMP_FILE: &str = ".prepare-stamp.json";
const WEIGHTS_FILE: &str = "mobilenet_v2.tlw";
const BACKBONE: &str = "mobilenet_v2";
/// The ImageNet classifier ships apart: the lessons need only the features, and it is a third
/// of the download.
const CLASSIFIER_FILE: &str = "mobilenet_v2_imagenet_classifier.tlw";
const CLASSIFIER_ENTRY: &str = "mobilenet_v2_imagenet_classifier";

/// Options of `transfer-lab prepare`.
#[derive(Debug, Clone, Args)]
pub struct PrepareArgs {
    /// Input folder or `.tgz` with the mirror's layout (`flower_photos/`, `models/`), or an
    /// https base URL serving `flower_photos.tgz` and `models/`. Default: `../shared/assets`
    /// when present, else the official download addresses.
    #[arg(long)]
    pub source: Option<String>,
    /// Output folder.
    #[arg(long, default_value = "public/generated")]
    pub out: PathBuf,
    /// Train photos per class in the lesson subset.
    #[arg(long, default_value_t = 100)]
    pub train_per_class: usize,
    /// Validation photos per class in the lesson subset.
    #[arg(long, default_value_t = 40)]
    pub val_per_class: usize,
    /// Also write every other photo (the "extra" subset).
    #[arg(long)]
    pub full: bool,
    /// Seed of the per-class shuffle that decides the split.
    #[arg(long, default_value_t = 42)]
    pub seed: u64,
    /// JPEG quality of the re-encoded photos. 75 keeps the lesson subset near 9 MB; measured
    /// against 85 it moved lesson 02's validation accuracy by one photo in 200.
    #[arg(long, default_value_t = 75, value_parser = clap::value_parser!(u8).range(1..=100))]
    pub jpeg_quality: u8,
    /// Where downloads and extracted archives are kept.
    #[arg(long, default_value = "target/asset-cache")]
    pub cache_dir: PathBuf,
    /// Prepare only the photos, not the model weights.
    #[arg(long)]
    pub skip_models: bool,
    /// Download torchvision's VGG16 and ResNet50 (about 630 MB) when the source's `models/`
    /// folder lacks them; without it they are converted only when present there.
    #[arg(long)]
    pub zoo: bool,
    /// Redo the work even when the outputs are up to date.
    #[arg(long)]
    pub force: bool,
}

/// What a run produced.
#[derive(Debug)]
pub struct PrepareReport {
    /// Where the outputs are.
    pub out: PathBuf,
    /// The dataset manifest written (or found up to date).
    pub manifest: DatasetManifest,
    /// Whether the photos were already up to date.
    pub flowers_up_to_date: bool,
    /// Seconds spent on the photos.
    pub flowers_seconds: f64,
    /// The weight file entry, unless `--skip-models`.
    pub model: Option<ModelEntry>,
    /// Whether the weights were already up to date.
    pub model_up_to_date: bool,
    /// Seconds spent on the weights.
    pub model_seconds: f64,
    /// The model zoo's index entries (VGG16, ResNet50), installed or not, unless
    /// `--skip-models`.
    pub zoo: Vec<ModelEntry>,
    /// Total seconds.
    pub total_seconds: f64,
}

/// Runs the preparation.
pub fn run(args: &PrepareArgs) -> Result<PrepareReport> {
    let start = Instant::now();
    let source = resolve_source(args)?;
    let flowers_start = Instant::now();
    let (manifest, flowers_up_to_date) = prepare_flowers(args, &source)?;
    let flowers_seconds = flowers_start.elapsed().as_secs_f64();
    let model_start = Instant::now();
    let (model, model_up_to_date, zoo) = if args.skip_models {
        (None, false, Vec::new())
    } else {
        let (entry, fresh) = prepare_model(args, &source)?;
        (Some(entry), fresh, prepare_zoo(args, &source)?)
    };
    Ok(PrepareReport {
        out: args.out.clone(),
        manifest,
        flowers_up_to_date,
        flowers_seconds,
        model,
        model_up_to_date,
        model_seconds: model_start.elapsed().as_secs_f64(),
        zoo,
        total_seconds: start.elapsed().as_secs_f64(),
    })
}

/// Where the inputs are, once downloads and extraction are done.
#[derive(Debug)]
struct Source {
    /// The `flower_photos` folder.
    flowers: PathBuf,
    /// The `models` folder, when the source has one with both model files.
    models: Option<PathBuf>,
    /// The `models` folder of a local source, where the zoo's torchvision files may be.
    zoo_dir: Option<PathBuf>,
    /// A short description for messages.
    description: String,
}

fn is_url(s: &str) -> bool {
    s.starts_with("https://") || s.starts_with("http://")
}

fn is_archive(s: &str) -> bool {
    s.ends_with(".tgz") || s.ends_with(".tar.gz")
}

fn resolve_source(args: &PrepareArgs) -> Result<Source> {
    let spec = match &args.source {
        Some(s) => s.clone(),
        None if Path::new(DEFAULT_MIRROR).is_dir() => DEFAULT_MIRROR.to_string(),
        None => FLOWERS_URL.to_string(),
    };
    let root = if is_url(&spec) {
        let archive_url = if is_archive(&spec) {
            spec.clone()
        } else {
            format!("{}/flower_photos.tgz", spec.trim_end_matches('/'))
        };
        let archive = download(&archive_url, &args.cache_dir)?;
        let root = extract(&archive, &args.cache_dir)?;
        // A URL base with the mirror's layout also serves the models; fetch them beside it.
        if !is_archive(&spec) && !args.skip_models {
            let base = spec.trim_end_matches('/');
            let models = root.join("models");
            for file in [MODEL_FILE, LABELS_FILE] {
                let path = download(&format!("{base}/models/{file}"), &args.cache_dir)?;
                fs::create_dir_all(&models)?;
                fs::copy(&path, models.join(file))?;
            }
        }
        root
    } else {
        let path = PathBuf::from(&spec);
        if path.is_dir() {
            path
        } else if path.is_file() && is_archive(&spec) {
            extract(&path, &args.cache_dir)?
        } else {
            bail!("source {spec} is neither a folder, a .tgz archive nor an https URL");
        }
    };
    let flowers = if root.join("flower_photos").is_dir() {
        root.join("flower_photos")
    } else {
        root.clone()
    };
    let models = root.join("models");
    let zoo_dir = (!is_url(&spec)).then(|| models.clone());
    let models =
        (models.join(MODEL_FILE).is_file() && models.join(LABELS_FILE).is_file()).then_some(models);
    Ok(Source {
        flowers,
        models,
        zoo_dir,
        description: spec,
    })
}

/// Downloads `url` into the cache once; returns the cached file.
fn download(url: &str, cache_dir: &Path) -> Result<PathBuf> {
    let name = url
        .rsplit('/')
        .next()
        .filter(|n| !n.is_empty())
        .unwrap_or("download");
    let dir = cache_dir
        .join("downloads")
        .join(&sha256_hex(url.as_bytes())[..12]);
    let path = dir.join(name);
    if path.is_file() {
        return Ok(path);
    }
    fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
    println!("downloading {url}");
    let response = ureq::get(url)
        .call()
        .with_context(|| format!("downloading {url}"))?;
    let length = response
        .header("content-length")
        .and_then(|l| l.parse().ok());
    let bar = length.map_or_else(ProgressBar::new_spinner, ProgressBar::new);
    bar.set_style(
        ProgressStyle::with_template("{bar:40} {bytes}/{total_bytes} {bytes_per_sec}")
            .unwrap_or_else(|_| ProgressStyle::default_bar()),
    );
    let partial = dir.join(format!("{name}.partial"));
    let mut file = fs::File::create(&partial)?;
    let mut reader = response.into_reader();
    let mut buf = vec![0u8; 1 << 16];
    loop {
        let n = reader
            .read(&mut buf)
            .with_context(|| format!("downloading {url}"))?;
        if n == 0 {
            break;
        }
        file.write_all(&buf[..n])?;
        bar.inc(n as u64);
    }
    bar.finish_and_clear();
    file.sync_all()?;
    fs::rename(&partial, &path)?;
    Ok(path)
}

/// Extracts a `.tgz` into the cache once; returns the folder.
fn extract(archive: &Path, cache_dir: &Path) -> Result<PathBuf> {
    let meta = fs::metadata(archive).with_context(|| format!("reading {}", archive.display()))?;
    let key = format!("{}:{}:{}", archive.display(), meta.len(), mtime(&meta));
    let dir = cache_dir
        .join("extracted")
        .join(&sha256_hex(key.as_bytes())[..12]);
    let done = dir.join(".complete");
    if done.is_file() {
        return Ok(dir);
    }
    println!("extracting {}", archive.display());
    if dir.exists() {
        fs::remove_dir_all(&dir)?;
    }
    fs::create_dir_all(&dir)?;
    let gz = flate2::read::GzDecoder::new(fs::File::open(archive)?);
    tar::Archive::new(gz)
        .unpack(&dir)
        .with_context(|| format!("extracting {}", archive.display()))?;
    fs::write(&done, b"")?;
    Ok(dir)
}

fn mtime(meta: &fs::Metadata) -> u64 {
    meta.modified()
        .ok()
        .and_then(|t| t.duration_since(UNIX_EPOCH).ok())
        .map_or(0, |d| d.as_secs())
}

/// Per-output stamp: if it matches, the outputs were made from the same inputs.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct Stamp {
    tool_format_version: u32,
    parameters: serde_json::Value,
    source_identity: String,
}

fn read_stamp(dir: &Path) -> Option<Stamp> {
    serde_json::from_slice(&fs::read(dir.join(STAMP_FILE)).ok()?).ok()
}

fn write_json(path: &Path, value: &impl Serialize) -> Result<()> {
    let mut json = serde_json::to_vec_pretty(value)?;
    json.push(b'\n');
    fs::write(path, json).with_context(|| format!("writing {}", path.display()))
}

/// Whether `file` exists with this SHA-256.
fn file_matches(path: &Path, sha256: &str) -> bool {
    fs::read(path).is_ok_and(|bytes| sha256_hex(&bytes) == sha256)
}

/// Classes and their photo files, sorted, plus a fingerprint of every file's name, size and
/// modification time.
pub(crate) struct Listing {
    pub(crate) classes: Vec<String>,
    pub(crate) files: Vec<Vec<String>>,
    identity: String,
}

pub(crate) fn list_flowers(flowers: &Path) -> Result<Listing> {
    let visible = |entry: &fs::DirEntry| !entry.file_name().to_string_lossy().starts_with('.');
    let mut classes: Vec<String> = fs::read_dir(flowers)
        .with_context(|| format!("reading {}", flowers.display()))?
        .filter_map(|e| e.ok())
        .filter(|e| visible(e) && e.path().is_dir())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    classes.sort();
    if classes.is_empty() {
        bail!("{} has no class folders", flowers.display());
    }
    let mut hasher = Sha256::new();
    let mut files = Vec::new();
    for class in &classes {
        let mut names = Vec::new();
        for entry in fs::read_dir(flowers.join(class))?.filter_map(|e| e.ok()) {
            let meta = entry.metadata()?;
            if visible(&entry) && meta.is_file() {
                let name = format!("{class}/{}", entry.file_name().to_string_lossy());
                names.push((name, meta.len(), mtime(&meta)));
            }
        }
        names.sort();
        for (name, len, time) in &names {
            hasher.update(format!("{name}\t{len}\t{time}\n"));
        }
        files.push(names.into_iter().map(|(name, _, _)| name).collect());
    }
    if let Ok(meta) = fs::metadata(flowers.join("LICENSE.txt")) {
        hasher.update(format!("LICENSE.txt\t{}\t{}\n", meta.len(), mtime(&meta)));
    }
    let identity = format!("{:x}", hasher.finalize());
    Ok(Listing {
        classes,
        files,
        identity,
    })
}

/// Attribution per photo name from `LICENSE.txt` (`daisy/1.jpg CC BY 2.0 by ...`).
fn read_attributions(flowers: &Path) -> HashMap<String, String> {
    let Ok(text) = fs::read_to_string(flowers.join("LICENSE.txt")) else {
        log::warn!(
            "no LICENSE.txt in {}; attributions will be \"unknown\"",
            flowers.display()
        );
        return HashMap::new();
    };
    text.lines()
        .filter_map(|line| line.trim().split_once(' '))
        .filter(|(name, _)| name.contains('/'))
        .map(|(name, rest)| (name.to_string(), rest.trim().to_string()))
        .collect()
}

/// Decodes, squeezes and re-encodes one photo.
fn process_photo(path: &Path, quality: u8) -> Result<Vec<u8>, String> {
    let bytes = fs::read(path).map_err(|e| format!("unreadable: {e}"))?;
    let img = decode_photo(&bytes).map_err(|e| e.to_string())?;
    encode_jpeg(&squeeze_to_square(&img, IMAGE_SIZE), quality).map_err(|e| e.to_string())
}

/// One (class, split) list of candidates in shuffled order and how far it has been processed.
struct Group {
    class_index: usize,
    split: &'static str,
    candidates: Vec<String>,
    next: usize,
    /// Valid photos in candidate order: (name, JPEG).
    valid: Vec<(String, Vec<u8>)>,
    lesson_size: usize,
}

/// Splits one class's photos (in a fixed order) into validation (20%) and training photos, both
/// in a seeded shuffled order.
pub(crate) fn split_class<T: Clone>(
    files: &[T],
    seed: u64,
    class_index: usize,
) -> (Vec<T>, Vec<T>) {
    let mut order = files.to_vec();
    // One stream per class, so adding photos to one class leaves the others' split alone.
    let class_seed = seed ^ (class_index as u64 + 1).wrapping_mul(0x9E37_79B9_7F4A_7C15);
    order.shuffle(&mut ChaCha8Rng::seed_from_u64(class_seed));
    let validation = (order.len() * VALIDATION_PERCENT + 50) / 100;
    let train = order.split_off(validation);
    (order, train)
}

fn split_groups(listing: &Listing, args: &PrepareArgs) -> Vec<Group> {
    let mut groups = Vec::new();
    for (class_index, files) in listing.files.iter().enumerate() {
        let (order, train) = split_class(files, args.seed, class_index);
        for (split, candidates, lesson_size) in [
            (SPLIT_VALIDATION, order, args.val_per_class),
            (SPLIT_TRAIN, train, args.train_per_class),
        ] {
            groups.push(Group {
                class_index,
                split,
                candidates,
                next: 0,
                valid: Vec::new(),
                lesson_size,
            });
        }
    }
    groups
}

/// Processes photos until every group has its lesson subset (or, with `full`, everything).
/// Failing photos are skipped and the next candidates take their place.
fn process_groups(groups: &mut [Group], flowers: &Path, args: &PrepareArgs) -> Vec<SkippedFile> {
    let total: usize = groups
        .iter()
        .map(|g| {
            if args.full {
                g.candidates.len()
            } else {
                g.lesson_size.min(g.candidates.len())
            }
        })
        .sum();
    let bar = ProgressBar::new(total as u64);
    bar.set_style(
        ProgressStyle::with_template("photos {bar:40} {pos}/{len} {elapsed}")
            .unwrap_or_else(|_| ProgressStyle::default_bar()),
    );
    let mut skipped = Vec::new();
    loop {
        let mut batch = Vec::new();
        for (g, group) in groups.iter_mut().enumerate() {
            let wanted = if args.full {
                usize::MAX
            } else {
                group.lesson_size
            };
            let missing = wanted.saturating_sub(group.valid.len());
            let end = group
                .next
                .saturating_add(missing)
                .min(group.candidates.len());
            batch.extend((group.next..end).map(|i| (g, i)));
            group.next = end;
        }
        if batch.is_empty() {
            break;
        }
        let results: Vec<Result<Vec<u8>, String>> = batch
            .par_iter()
            .map(|&(g, i)| {
                let result =
                    process_photo(&flowers.join(&groups[g].candidates[i]), args.jpeg_quality);
                bar.inc(1);
                result
            })
            .collect();
        for (&(g, i), result) in batch.iter().zip(results) {
            let name = groups[g].candidates[i].clone();
            match result {
                Ok(jpeg) => groups[g].valid.push((name, jpeg)),
                Err(reason) => skipped.push(SkippedFile { name, reason }),
            }
        }
    }
    bar.finish_and_clear();
    skipped.sort_by(|a, b| a.name.cmp(&b.name));
    skipped
}

/// Interleaves classes so every shard holds a mix of them.
fn interleave(lists: Vec<Vec<ShardPhoto>>) -> Vec<ShardPhoto> {
    let mut iters: Vec<_> = lists.into_iter().map(Vec::into_iter).collect();
    let mut out = Vec::new();
    loop {
        let before = out.len();
        out.extend(iters.iter_mut().filter_map(Iterator::next));
        if out.len() == before {
            return out;
        }
    }
}

fn prepare_flowers(args: &PrepareArgs, source: &Source) -> Result<(DatasetManifest, bool)> {
    let out = args.out.join("flowers");
    let listing = list_flowers(&source.flowers)?;
    let stamp = Stamp {
        tool_format_version: TOOL_FORMAT_VERSION,
        parameters: serde_json::json!({
            "seed": args.seed,
            "train_per_class": args.train_per_class,
            "val_per_class": args.val_per_class,
            "full": args.full,
            "jpeg_quality": args.jpeg_quality,
            "image_size": IMAGE_SIZE,
            "validation_percent": VALIDATION_PERCENT,
            "shard_target_bytes": SHARD_TARGET_BYTES,
        }),
        source_identity: listing.identity.clone(),
    };
    if !args.force && read_stamp(&out).as_ref() == Some(&stamp) {
        let manifest: Option<DatasetManifest> = fs::read(out.join("manifest.json"))
            .ok()
            .and_then(|b| serde_json::from_slice(&b).ok());
        if let Some(manifest) = manifest {
            let intact = manifest
                .shards
                .par_iter()
                .all(|s| file_matches(&out.join(&s.file), &s.sha256));
            if intact {
                println!("photos: up to date in {} (skipped)", out.display());
                return Ok((manifest, true));
            }
        }
    }
    println!("photos: preparing from {}", source.description);
    let attributions = read_attributions(&source.flowers);
    let mut groups = split_groups(&listing, args);
    let skipped = process_groups(&mut groups, &source.flowers, args);
    for file in &skipped {
        println!("  skipped {}: {}", file.name, file.reason);
    }

    fs::create_dir_all(&out).with_context(|| format!("creating {}", out.display()))?;
    // The stamp goes last; removing it first means an interrupted run is never "up to date".
    let _ = fs::remove_file(out.join(STAMP_FILE));
    let mut by_key: HashMap<(&str, &str), Vec<Vec<ShardPhoto>>> = HashMap::new();
    for group in &mut groups {
        let lesson_size = group.lesson_size;
        for (position, (name, jpeg)) in group.valid.drain(..).enumerate() {
            let subset = if position < lesson_size {
                SUBSET_LESSON
            } else {
                SUBSET_EXTRA
            };
            let lists = by_key.entry((group.split, subset)).or_default();
            lists.resize_with(listing.classes.len(), Vec::new);
            lists[group.class_index].push(ShardPhoto {
                name,
                class_index: group.class_index,
                jpeg,
            });
        }
    }
    let mut shards = Vec::new();
    let mut photos = Vec::new();
    for split in [SPLIT_VALIDATION, SPLIT_TRAIN] {
        for subset in [SUBSET_LESSON, SUBSET_EXTRA] {
            let Some(lists) = by_key.remove(&(split, subset)) else {
                continue;
            };
            let mut pending: Vec<ShardPhoto> = Vec::new();
            let mut pending_bytes = 0;
            let all = interleave(lists);
            let count = all.len();
            for (i, photo) in all.into_iter().enumerate() {
                pending_bytes += photo.jpeg.len();
                pending.push(photo);
                if pending_bytes >= SHARD_TARGET_BYTES || i + 1 == count {
                    let file = format!("{split}-{subset}-{:03}.tlshard", shards.len());
                    let bytes = encode_shard(&pending);
                    fs::write(out.join(&file), &bytes)
                        .with_context(|| format!("writing {file}"))?;
                    for p in &pending {
                        photos.push(PhotoEntry {
                            name: p.name.clone(),
                            class_index: p.class_index,
                            split: split.into(),
                            subset: subset.into(),
                            attribution: attributions
                                .get(&p.name)
                                .cloned()
                                .unwrap_or_else(|| "unknown".into()),
                        });
                    }
                    shards.push(ShardEntry {
                        file,
                        split: split.into(),
                        subset: subset.into(),
                        photos: pending.len(),
                        bytes: bytes.len() as u64,
                        sha256: sha256_hex(&bytes),
                    });
                    pending.clear();
                    pending_bytes = 0;
                }
            }
        }
    }
    // Remove shards of earlier runs that this manifest no longer lists.
    for entry in fs::read_dir(&out)?.filter_map(|e| e.ok()) {
        let name = entry.file_name().to_string_lossy().into_owned();
        if name.ends_with(".tlshard") && !shards.iter().any(|s| s.file == name) {
            fs::remove_file(entry.path())?;
        }
    }
    let manifest = DatasetManifest {
        version: MANIFEST_VERSION,
        dataset: "tf_flowers".into(),
        seed: args.seed,
        image_size: IMAGE_SIZE,
        resize: "squeeze".into(),
        classes: listing.classes.clone(),
        shards,
        photos,
        skipped,
    };
    // Compact: the browser downloads it, and it lists every photo with its attribution.
    let manifest_path = out.join("manifest.json");
    fs::write(&manifest_path, serde_json::to_vec(&manifest)?)
        .with_context(|| format!("writing {}", manifest_path.display()))?;
    write_json(&out.join(STAMP_FILE), &stamp)?;
    Ok((manifest, false))
}

/// The model and labels files, downloading the official ones when the source has none.
fn model_files(args: &PrepareArgs, source: &Source) -> Result<(PathBuf, PathBuf)> {
    if let Some(models) = &source.models {
        return Ok((models.join(MODEL_FILE), models.join(LABELS_FILE)));
    }
    Ok((
        download(&format!("{CORAL_BASE}/{MODEL_FILE}"), &args.cache_dir)?,
        download(&format!("{CORAL_BASE}/{LABELS_FILE}"), &args.cache_dir)?,
    ))
}

/// Writes one weight file after reading it back (so a format bug cannot ship) and returns its
/// index entry.
fn write_weights(out: &Path, name: &str, file: &str, bytes: &[u8]) -> Result<ModelEntry> {
    let weights = WebWeights::from_bytes(bytes).context("checking the written weight file")?;
    fs::write(out.join(file), bytes).with_context(|| format!("writing {file}"))?;
    Ok(ModelEntry {
        backbone: name.into(),
        file: file.into(),
        bytes: bytes.len() as u64,
        sha256: sha256_hex(bytes),
        architecture: weights.architecture().to_string(),
        installed: true,
        parameters: None,
        install: None,
    })
}

/// A zoo backbone converted from torchvision's published checkpoint.
struct ZooModel {
    kind: BackboneKind,
    /// torchvision's file name, with the hash the import checks.
    source_file: &'static str,
    url: &'static str,
    import: fn(&Path) -> Result<WeightsBuilder, TorchvisionError>,
}

const ZOO: [ZooModel; 2] = [
    ZooModel {
        kind: BackboneKind::Vgg16,
        source_file: VGG16_FILE,
        url: VGG16_URL,
        import: import_vgg16,
    },
    ZooModel {
        kind: BackboneKind::ResNet50,
        source_file: RESNET50_FILE,
        url: RESNET50_URL,
        import: import_resnet50,
    },
];

/// The index entry of a zoo backbone whose checkpoint is not there.
fn not_installed(model: &ZooModel, source: &Source) -> ModelEntry {
    let folder = match &source.zoo_dir {
        Some(dir) => dir.display().to_string(),
        None => "<source>/models".to_string(),
    };
    ModelEntry {
        backbone: model.kind.id().into(),
        file: format!("{}.tlw", model.kind.id()),
        bytes: 0,
        sha256: String::new(),
        architecture: model.kind.architecture().into(),
        installed: false,
        parameters: Some(model.kind.parameter_count() as u64),
        install: Some(format!(
            "put {} from {} into {folder} and run `transfer-lab prepare` (or run it with --zoo)",
            model.source_file, model.url
        )),
    }
}

/// Converts the zoo's torchvision checkpoints that the source has (or, with `--zoo`, downloads)
/// and lists every zoo backbone in `models/index.json`, installed or not.
fn prepare_zoo(args: &PrepareArgs, source: &Source) -> Result<Vec<ModelEntry>> {
    let out = args.out.join("models");
    fs::create_dir_all(&out).with_context(|| format!("creating {}", out.display()))?;
    let index_path = out.join("index.json");
    let mut index: ModelsIndex = fs::read(&index_path)
        .ok()
        .and_then(|b| serde_json::from_slice(&b).ok())
        .unwrap_or_default();
    let mut entries = Vec::new();
    for model in &ZOO {
        let id = model.kind.id();
        let local = source
            .zoo_dir
            .as_ref()
            .map(|dir| dir.join(model.source_file))
            .filter(|path| path.is_file());
        let checkpoint = match local {
            Some(path) => Some(path),
            None if args.zoo => Some(download(model.url, &args.cache_dir)?),
            None => None,
        };
        let entry = match checkpoint {
            None => {
                println!(
                    "{id}: not installed ({} not in the source)",
                    model.source_file
                );
                not_installed(model, source)
            }
            Some(path) => {
                let meta = fs::metadata(&path)?;
                let identity = format!("{}:{}:{}", model.source_file, meta.len(), mtime(&meta));
                let stamp_path = out.join(format!(".{id}-source"));
                let previous = index.listed(id).filter(|e| e.installed).cloned();
                match previous {
                    Some(entry)
                        if !args.force
                            && fs::read_to_string(&stamp_path).ok().as_deref()
                                == Some(identity.as_str())
                            && file_matches(&out.join(&entry.file), &entry.sha256) =>
                    {
                        println!("{id}: up to date (skipped)");
                        entry
                    }
                    _ => {
                        println!("{id}: importing {}", path.display());
                        let builder = (model.import)(&path)
                            .with_context(|| format!("importing {}", path.display()))?;
                        let file = format!("{id}.tlw");
                        let mut entry = write_weights(&out, id, &file, &builder.to_bytes())?;
                        entry.parameters = Some(model.kind.parameter_count() as u64);
                        fs::write(&stamp_path, &identity)?;
                        entry
                    }
                }
            }
        };
        index.models.retain(|m| m.backbone != id);
        index.models.push(entry.clone());
        entries.push(entry);
    }
    index.models.sort_by(|a, b| a.backbone.cmp(&b.backbone));
    write_json(&index_path, &index)?;
    Ok(entries)
}

fn prepare_model(args: &PrepareArgs, source: &Source) -> Result<(ModelEntry, bool)> {
    let out = args.out.join("models");
    let (model_path, labels_path) = model_files(args, source)?;
    let tflite =
        fs::read(&model_path).with_context(|| format!("reading {}", model_path.display()))?;
    let labels_text = fs::read_to_string(&labels_path)
        .with_context(|| format!("reading {}", labels_path.display()))?;
    let stamp = Stamp {
        tool_format_version: TOOL_FORMAT_VERSION,
        parameters: serde_json::json!({ "backbone": BACKBONE }),
        source_identity: format!(
            "{}:{}",
            sha256_hex(&tflite),
            sha256_hex(labels_text.as_bytes())
        ),
    };
    let index_path = out.join("index.json");
    let mut index: ModelsIndex = fs::read(&index_path)
        .ok()
        .and_then(|b| serde_json::from_slice(&b).ok())
        .unwrap_or_default();
    if !args.force
        && read_stamp(&out).as_ref() == Some(&stamp)
        && let Some(entry) = index.get(BACKBONE)
        && file_matches(&out.join(&entry.file), &entry.sha256)
    {
        println!("weights: up to date in {} (skipped)", out.display());
        return Ok((entry.clone(), true));
    }
    println!("weights: importing {}", model_path.display());
    let labels: Vec<String> = labels_text
        .lines()
        .map(|l| l.trim().to_string())
        .filter(|l| !l.is_empty())
        .collect();
    let mut backbone = import_mobilenet_v2(&tflite, labels)
        .with_context(|| format!("importing {}", model_path.display()))?;
    let classifier = backbone.split_off(mobilenet_v2::CLASSIFIER);
    fs::create_dir_all(&out).with_context(|| format!("creating {}", out.display()))?;
    let _ = fs::remove_file(out.join(STAMP_FILE));
    let entry = write_weights(&out, BACKBONE, WEIGHTS_FILE, &backbone.to_bytes())?;
    let classifier_entry = write_weights(
        &out,
        CLASSIFIER_ENTRY,
        CLASSIFIER_FILE,
        &classifier.to_bytes(),
    )?;
    index
        .models
        .retain(|m| m.backbone != BACKBONE && m.backbone != CLASSIFIER_ENTRY);
    index.models.push(entry.clone());
    index.models.push(classifier_entry);
    index.models.sort_by(|a, b| a.backbone.cmp(&b.backbone));
    write_json(&index_path, &index)?;
    write_json(&out.join(STAMP_FILE), &stamp)?;
    Ok((entry, false))
}

fn megabytes(bytes: u64) -> String {
    format!("{:.2} MB", bytes as f64 / 1e6)
}

/// Prints what a run produced.
pub fn print_summary(report: &PrepareReport) {
    let m = &report.manifest;
    println!("\nprepared into {}", report.out.display());
    println!("classes: {}", m.classes.join(", "));
    for split in [SPLIT_VALIDATION, SPLIT_TRAIN] {
        let count = |subset: &str| {
            m.photos
                .iter()
                .filter(|p| p.split == split && p.subset == subset)
                .count()
        };
        println!(
            "  {split:<10} lesson {:>5}  extra {:>5}",
            count(SUBSET_LESSON),
            count(SUBSET_EXTRA)
        );
    }
    let photos: usize = m.shards.iter().map(|s| s.photos).sum();
    let lesson = m.bytes_for(false);
    let all = m.bytes_for(true);
    println!(
        "shards: {} files; lesson subset {}, all {}, about {:.1} kB per photo",
        m.shards.len(),
        megabytes(lesson),
        megabytes(all),
        all as f64 / photos.max(1) as f64 / 1e3
    );
    println!("skipped source files: {}", m.skipped.len());
    for file in &m.skipped {
        println!("  {}: {}", file.name, file.reason);
    }
    let state = |up_to_date| if up_to_date { "up to date" } else { "written" };
    println!(
        "photos {} in {:.1} s",
        state(report.flowers_up_to_date),
        report.flowers_seconds
    );
    if let Some(model) = &report.model {
        println!(
            "weights {}: {} ({}) {} in {:.1} s",
            model.file,
            megabytes(model.bytes),
            model.architecture,
            state(report.model_up_to_date),
            report.model_seconds
        );
    }
    for entry in &report.zoo {
        match &entry.install {
            Some(install) if !entry.installed => {
                println!("{}: not installed; {install}", entry.backbone)
            }
            _ => println!("weights {}: {}", entry.file, megabytes(entry.bytes)),
        }
    }
    println!("total {:.1} s", report.total_seconds);
}

#[cfg(test)]
// Tests fail loudly on purpose.
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use image::{Rgb, RgbImage};
    use transfer_lab_model::shards::decode_shard;

    /// A fake source: 3 classes of small JPEGs/PNGs, one corrupt file, a partial LICENSE.txt.
    fn fake_source(root: &Path) {
        let flowers = root.join("flower_photos");
        let mut license = String::from("header line\n\n");
        for (c, (class, count)) in [("alpha", 12), ("beta", 10), ("gamma", 7)]
            .into_iter()
            .enumerate()
        {
            fs::create_dir_all(flowers.join(class)).unwrap();
            for i in 0..count {
                let img = RgbImage::from_fn(40 + i, 30, |x, y| {
                    Rgb([(x * 5) as u8, (y * 7) as u8, (c * 90) as u8])
                });
                let name = format!("{class}/{i:02}.jpg");
                fs::write(flowers.join(&name), encode_jpeg(&img, 90).unwrap()).unwrap();
                if i % 2 == 0 {
                    license.push_str(&format!(
                        "{name} CC BY 2.0 by Someone {i} - https://example.org/{i}\n"
                    ));
                }
            }
        }
        fs::write(
            flowers.join("beta/broken.jpg"),
            b"\xff\xd8 this is not a JPEG",
        )
        .unwrap();
        fs::write(flowers.join("LICENSE.txt"), license).unwrap();
    }

    fn args(source: &Path, out: &Path, full: bool) -> PrepareArgs {
        PrepareArgs {
            source: Some(source.display().to_string()),
            out: out.to_path_buf(),
            train_per_class: 4,
            val_per_class: 1,
            full,
            seed: 7,
            jpeg_quality: 80,
            cache_dir: out.join("cache"),
            skip_models: true,
            zoo: false,
            force: false,
        }
    }

    #[test]
    fn prepares_a_fake_source_and_skips_the_second_time() {
        let tmp = tempfile::tempdir().unwrap();
        let source = tmp.path().join("src");
        let out = tmp.path().join("out");
        fake_source(&source);

        let report = run(&args(&source, &out, true)).unwrap();
        assert!(!report.flowers_up_to_date);
        let m = &report.manifest;
        assert_eq!(m.classes, ["alpha", "beta", "gamma"]);
        assert_eq!(m.skipped.len(), 1);
        assert_eq!(m.skipped[0].name, "beta/broken.jpg");
        // Validation is 20% of each class's files (rounded):
        // alpha 12 -> 2, beta 11 -> 2, gamma 7 -> 1.
        let count = |class: usize, split: &str, subset: Option<&str>| {
            m.photos
                .iter()
                .filter(|p| {
                    p.class_index == class
                        && p.split == split
                        && subset.is_none_or(|s| p.subset == s)
                })
                .count()
        };
        assert_eq!(count(0, SPLIT_VALIDATION, None), 2);
        assert_eq!(count(0, SPLIT_TRAIN, None), 10);
        assert_eq!(
            count(1, SPLIT_VALIDATION, None) + count(1, SPLIT_TRAIN, None),
            10
        );
        assert_eq!(count(2, SPLIT_VALIDATION, None), 1);
        assert_eq!(count(2, SPLIT_TRAIN, None), 6);
        for class in 0..3 {
            assert_eq!(count(class, SPLIT_TRAIN, Some(SUBSET_LESSON)), 4);
            assert_eq!(count(class, SPLIT_VALIDATION, Some(SUBSET_LESSON)), 1);
        }
        assert_eq!(m.photos.len(), 29);
        assert!(
            m.photos
                .iter()
                .any(|p| p.attribution.starts_with("CC BY 2.0 by Someone"))
        );
        assert!(m.photos.iter().any(|p| p.attribution == "unknown"));
        assert_eq!(
            m.shards_for(false).next().map(|s| s.split.as_str()),
            Some(SPLIT_VALIDATION)
        );

        // Shards hash as listed and decode to 224x224 photos named as in the manifest.
        let mut names = Vec::new();
        for shard in &m.shards {
            let bytes = fs::read(out.join("flowers").join(&shard.file)).unwrap();
            assert_eq!(sha256_hex(&bytes), shard.sha256);
            assert_eq!(bytes.len() as u64, shard.bytes);
            let photos = decode_shard(&bytes).unwrap();
            assert_eq!(photos.len(), shard.photos);
            for p in photos {
                assert_eq!(
                    decode_photo(&p.jpeg).unwrap().dimensions(),
                    (IMAGE_SIZE, IMAGE_SIZE)
                );
                assert!(p.name.starts_with(&m.classes[p.class_index]));
                names.push(p.name);
            }
        }
        assert_eq!(
            names,
            m.photos.iter().map(|p| p.name.clone()).collect::<Vec<_>>()
        );

        let again = run(&args(&source, &out, true)).unwrap();
        assert!(again.flowers_up_to_date);
        assert_eq!(&again.manifest, m);

        // The lesson-only run picks the same lesson photos and removes the extra shards.
        let lesson = run(&args(&source, &out, false)).unwrap();
        assert!(!lesson.flowers_up_to_date);
        let lesson_names: Vec<_> = lesson.manifest.photos.iter().map(|p| &p.name).collect();
        let full_lesson: Vec<_> = m
            .photos
            .iter()
            .filter(|p| p.subset == SUBSET_LESSON)
            .map(|p| &p.name)
            .collect();
        assert_eq!(lesson_names, full_lesson);
        let shard_files = fs::read_dir(out.join("flowers")).unwrap().filter(|e| {
            e.as_ref()
                .unwrap()
                .file_name()
                .to_string_lossy()
                .ends_with(".tlshard")
        });
        assert_eq!(shard_files.count(), lesson.manifest.shards.len());
    }

    #[test]
    fn lists_missing_zoo_backbones_and_checks_present_ones() {
        let tmp = tempfile::tempdir().unwrap();
        let models = tmp.path().join("src/models");
        fs::create_dir_all(&models).unwrap();
        let out = tmp.path().join("out");
        fs::create_dir_all(out.join("models")).unwrap();
        // An index as the MobileNetV2 step writes it, in the pre-zoo format.
        fs::write(
            out.join("models/index.json"),
            r#"{"models":[{"backbone":"mobilenet_v2","file":"mobilenet_v2.tlw","bytes":1,
                "sha256":"00","architecture":"mobilenet_v2_1.0_224"}]}"#,
        )
        .unwrap();
        let source = Source {
            flowers: tmp.path().join("src/flower_photos"),
            models: None,
            zoo_dir: Some(models.clone()),
            description: "test".into(),
        };
        let mut args = args(&tmp.path().join("src"), &out, false);
        args.skip_models = false;
        let entries = prepare_zoo(&args, &source).unwrap();
        assert_eq!(entries.len(), 2);
        let index: ModelsIndex =
            serde_json::from_slice(&fs::read(out.join("models/index.json")).unwrap()).unwrap();
        assert!(index.get("mobilenet_v2").is_some());
        for (id, file, parameters) in [
            ("vgg16", VGG16_FILE, 14_714_688),
            ("resnet50", RESNET50_FILE, 23_481_472),
        ] {
            assert!(index.get(id).is_none(), "{id} is not installed");
            let entry = index.listed(id).unwrap();
            assert!(!entry.installed);
            assert_eq!(entry.parameters, Some(parameters));
            assert_eq!(entry.architecture, id);
            let install = entry.install.as_deref().unwrap();
            assert!(install.contains(file), "{install}");
            assert!(
                install.contains("https://download.pytorch.org/models/"),
                "{install}"
            );
            assert!(install.contains(&models.display().to_string()), "{install}");
        }
        // A file under the official name that is not the published one is refused, by name.
        fs::write(models.join(RESNET50_FILE), b"not the published file").unwrap();
        let error = format!("{:#}", prepare_zoo(&args, &source).unwrap_err());
        assert!(error.contains("resnet50-11ad3fa6.pth"), "{error}");
        assert!(error.contains("SHA-256"), "{error}");
    }

    #[test]
    fn a_tgz_source_works_and_a_missing_source_is_an_error() {
        let tmp = tempfile::tempdir().unwrap();
        let source = tmp.path().join("src");
        fake_source(&source);
        let archive = tmp.path().join("flowers.tgz");
        let gz = flate2::write::GzEncoder::new(
            fs::File::create(&archive).unwrap(),
            flate2::Compression::fast(),
        );
        let mut tar = tar::Builder::new(gz);
        tar.append_dir_all("flower_photos", source.join("flower_photos"))
            .unwrap();
        tar.into_inner().unwrap().finish().unwrap();
        let out = tmp.path().join("out");
        let report = run(&args(&archive, &out, false)).unwrap();
        assert_eq!(report.manifest.photos.len(), 15);
        assert!(run(&args(&tmp.path().join("nowhere"), &out, false)).is_err());
    }
}
