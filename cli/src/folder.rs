//! Photos read from a folder of class sub-folders (the layout of `flower_photos`), and the
//! prepared dataset, as the decoded labelled sets the lessons train and evaluate on.

use std::path::Path;

use anyhow::{Result, bail};
use indicatif::{ProgressBar, ProgressStyle};
use rayon::prelude::*;
use transfer_lab_model::photo::to_input_u8;
use transfer_lab_model::photo_set::PhotoSet;
use transfer_lab_model::prepared::LabelledPhotos;

use crate::prepare::{list_flowers, split_class};

/// A photo that could not be used, and why.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Skipped {
    /// Folder-relative name.
    pub name: String,
    /// Plain-words reason.
    pub reason: String,
}

/// A folder's photos decoded at one size, with the class names and skipped files.
#[derive(Debug, Default)]
pub struct FolderPhotos {
    /// Class names (sub-folder names, sorted).
    pub classes: Vec<String>,
    /// The decoded photos.
    pub photos: PhotoSet,
    /// Folder-relative name of each photo.
    pub names: Vec<String>,
    /// Files that could not be decoded.
    pub skipped: Vec<Skipped>,
}

/// A progress bar over `len` items, labelled with what is being counted.
pub fn progress_bar(len: usize, what: &str) -> ProgressBar {
    let bar = ProgressBar::new(len as u64);
    if let Ok(style) = ProgressStyle::with_template(&format!(
        "{{bar:32}} {{pos}}/{{len}} {what} {{per_sec}} eta {{eta}}"
    )) {
        bar.set_style(style);
    }
    bar
}

/// Decodes the named photos under `root`; unreadable files are skipped and listed.
fn decode(
    root: &Path,
    files: &[(String, usize)],
    size: usize,
) -> (PhotoSet, Vec<String>, Vec<Skipped>) {
    let bar = progress_bar(files.len(), "photos decoded");
    let decoded: Vec<_> = files
        .par_iter()
        .map(|(name, class)| {
            let result = std::fs::read(root.join(name))
                .map_err(|e| format!("unreadable: {e}"))
                .and_then(|bytes| to_input_u8(&bytes, size as u32).map_err(|e| e.to_string()));
            bar.inc(1);
            (name, *class, result)
        })
        .collect();
    bar.finish_and_clear();
    let mut photos = PhotoSet::new(size);
    let mut names = Vec::new();
    let mut skipped = Vec::new();
    for (name, class, result) in decoded {
        match result {
            Ok(pixels) => {
                photos.push(&pixels, class);
                names.push(name.clone());
            }
            Err(reason) => skipped.push(Skipped {
                name: name.clone(),
                reason,
            }),
        }
    }
    (photos, names, skipped)
}

/// Lists the class sub-folders of `root`; a class without any file is an error.
fn list_classes(root: &Path) -> Result<(Vec<String>, Vec<Vec<String>>)> {
    if !root.is_dir() {
        bail!("{} is not a folder", root.display());
    }
    let listing = list_flowers(root)?;
    for (class, files) in listing.classes.iter().zip(&listing.files) {
        if files.is_empty() {
            bail!(
                "the class folder {} is empty: every class needs photos",
                root.join(class).display()
            );
        }
    }
    Ok((listing.classes, listing.files))
}

/// Every photo of a folder of class sub-folders, decoded at `size`.
pub fn read_folder(root: &Path, size: usize) -> Result<FolderPhotos> {
    let (classes, files) = list_classes(root)?;
    let labelled: Vec<(String, usize)> = files
        .into_iter()
        .enumerate()
        .flat_map(|(class, names)| names.into_iter().map(move |name| (name, class)))
        .collect();
    let (photos, names, skipped) = decode(root, &labelled, size);
    Ok(FolderPhotos {
        classes,
        photos,
        names,
        skipped,
    })
}

/// A folder of class sub-folders split per class into training (80%) and validation (20%) with
/// the same seeded rule as `transfer-lab prepare`.
pub fn read_folder_split(
    root: &Path,
    size: usize,
    seed: u64,
) -> Result<(LabelledPhotos, Vec<Skipped>)> {
    let (classes, files) = list_classes(root)?;
    let mut train = Vec::new();
    let mut validation = Vec::new();
    for (class, names) in files.iter().enumerate() {
        let (held_out, rest) = split_class(names, seed, class);
        validation.extend(held_out.into_iter().map(|name| (name, class)));
        train.extend(rest.into_iter().map(|name| (name, class)));
    }
    let (train, train_names, mut skipped) = decode(root, &train, size);
    let (validation, validation_names, more) = decode(root, &validation, size);
    skipped.extend(more);
    if train.is_empty() {
        bail!("no photo in {} could be read", root.display());
    }
    Ok((
        LabelledPhotos {
            classes,
            train,
            validation,
            train_names,
            validation_names,
        },
        skipped,
    ))
}

/// Keeps at most `per_class` photos of each class (the first ones), with their names.
pub fn limit_per_class(
    photos: &PhotoSet,
    names: &[String],
    per_class: Option<usize>,
) -> (PhotoSet, Vec<String>) {
    let Some(per_class) = per_class else {
        return (photos.clone(), names.to_vec());
    };
    let mut counts = std::collections::HashMap::<usize, usize>::new();
    let mut kept = PhotoSet::new(photos.size());
    let mut kept_names = Vec::new();
    for (index, &label) in photos.labels().iter().enumerate() {
        let count = counts.entry(label).or_default();
        if *count < per_class {
            *count += 1;
            kept.push(photos.photo(index), label);
            kept_names.push(names[index].clone());
        }
    }
    (kept, kept_names)
}
