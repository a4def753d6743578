//! Decoded, labelled photos held on the host at one square size: the input of the networks that
//! train on pixels (the scratch CNN and the unfrozen top of a fine-tuned backbone).

use serde::{Deserialize, Serialize};

/// Labelled RGB photos of `size` x `size` pixels, each stored row-major HWC as `u8`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct PhotoSet {
    size: usize,
    pixels: Vec<u8>,
    labels: Vec<usize>,
}

impl PhotoSet {
    /// An empty set of `size` x `size` photos.
    pub fn new(size: usize) -> Self {
        Self {
            size,
            pixels: Vec::new(),
            labels: Vec::new(),
        }
    }

    /// Side of every photo in pixels.
    pub fn size(&self) -> usize {
        self.size
    }

    /// Bytes of one photo: `size * size * 3`.
    pub fn photo_len(&self) -> usize {
        self.size * self.size * 3
    }

    /// Appends one photo of [`Self::photo_len`] bytes with its class index.
    pub fn push(&mut self, pixels: &[u8], label: usize) {
        assert_eq!(
            pixels.len(),
            self.photo_len(),
            "a {0}x{0} photo has {1} bytes",
            self.size,
            self.photo_len()
        );
        self.pixels.extend_from_slice(pixels);
        self.labels.push(label);
    }

    /// Number of photos.
    pub fn len(&self) -> usize {
        self.labels.len()
    }

    /// Whether the set holds no photo.
    pub fn is_empty(&self) -> bool {
        self.labels.is_empty()
    }

    /// The pixels of photo `index`.
    pub fn photo(&self, index: usize) -> &[u8] {
        let len = self.photo_len();
        &self.pixels[index * len..(index + 1) * len]
    }

    /// Class index of every photo.
    pub fn labels(&self) -> &[usize] {
        &self.labels
    }

    /// Bytes held.
    pub fn bytes(&self) -> usize {
        self.pixels.len() + self.labels.len() * 8
    }

    /// The first `per_class` photos of each class, in their original order: the growing
    /// subsets of a dataset-size sweep.
    pub fn first_per_class(&self, per_class: usize) -> PhotoSet {
        let mut taken = std::collections::HashMap::<usize, usize>::new();
        let mut subset = PhotoSet::new(self.size);
        for (index, &label) in self.labels.iter().enumerate() {
            let count = taken.entry(label).or_default();
            if *count < per_class {
                *count += 1;
                subset.push(self.photo(index), label);
            }
        }
        subset
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_photos_and_labels_together() {
        let mut set = PhotoSet::new(2);
        for (value, label) in [(1u8, 0), (2, 1), (3, 0), (4, 1), (5, 0)] {
            set.push(&[value; 12], label);
        }
        assert_eq!(set.len(), 5);
        assert_eq!(set.photo(3), &[4u8; 12]);
        let subset = set.first_per_class(2);
        assert_eq!(subset.labels(), &[0, 1, 0, 1]);
        assert_eq!(subset.photo(2), &[3u8; 12]);
        assert_eq!(set.bytes(), 60 + 40);
    }
}
