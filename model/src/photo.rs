//! Photo decoding and resizing shared by the asset preparation and the browser.
//!
//! Photos are "squeezed": the whole photo is resized to the square input without keeping its
//! aspect ratio, like Keras' `image_dataset_from_directory`, so nothing is cropped away.

use image::RgbImage;
use image::codecs::jpeg::JpegEncoder;
use image::imageops::FilterType;
use thiserror::Error;

/// Errors while decoding or encoding a photo.
#[derive(Debug, Error)]
pub enum PhotoError {
    /// The bytes are not an image in a supported format (JPEG, PNG, BMP) or are corrupt.
    #[error("the photo could not be decoded: {0}")]
    Decode(String),
    /// The photo has no pixels.
    #[error("the photo is empty ({width}x{height} pixels)")]
    Empty {
        /// Width in pixels.
        width: u32,
        /// Height in pixels.
        height: u32,
    },
    /// JPEG encoding failed.
    #[error("the photo could not be encoded as JPEG: {0}")]
    Encode(String),
}

/// Decodes a JPEG, PNG or BMP photo to 8-bit RGB.
pub fn decode_photo(bytes: &[u8]) -> Result<RgbImage, PhotoError> {
    let img = image::load_from_memory(bytes).map_err(|e| PhotoError::Decode(e.to_string()))?;
    let rgb = img.into_rgb8();
    if rgb.width() == 0 || rgb.height() == 0 {
        return Err(PhotoError::Empty {
            width: rgb.width(),
            height: rgb.height(),
        });
    }
    Ok(rgb)
}

/// Resizes the whole photo to `size` x `size` pixels (aspect ratio not kept) with a bilinear
/// (triangle) filter; returns a copy when it already has that size.
pub fn squeeze_to_square(img: &RgbImage, size: u32) -> RgbImage {
    if img.width() == size && img.height() == size {
        return img.clone();
    }
    image::imageops::resize(img, size, size, FilterType::Triangle)
}

/// Decodes a photo and squeezes it to `size` x `size`: RGB, row-major HWC, `size * size * 3`
/// bytes.
pub fn to_input_u8(bytes: &[u8], size: u32) -> Result<Vec<u8>, PhotoError> {
    Ok(squeeze_to_square(&decode_photo(bytes)?, size).into_raw())
}

/// Encodes an RGB image as baseline JPEG at `quality` (1-100).
pub fn encode_jpeg(img: &RgbImage, quality: u8) -> Result<Vec<u8>, PhotoError> {
    let mut out = Vec::new();
    JpegEncoder::new_with_quality(&mut out, quality.clamp(1, 100))
        .encode_image(img)
        .map_err(|e| PhotoError::Encode(e.to_string()))?;
    Ok(out)
}

#[cfg(test)]
// Tests fail loudly on purpose.
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn gradient(w: u32, h: u32) -> RgbImage {
        RgbImage::from_fn(w, h, |x, y| {
            image::Rgb([(x * 255 / w) as u8, (y * 255 / h) as u8, 128])
        })
    }

    #[test]
    fn squeeze_keeps_the_whole_photo() {
        let img = gradient(300, 150);
        let out = squeeze_to_square(&img, 224);
        assert_eq!(out.dimensions(), (224, 224));
        // The left and right edges survive (no crop): red goes from ~0 to ~255.
        assert!(out.get_pixel(0, 100)[0] < 5);
        assert!(out.get_pixel(223, 100)[0] > 245);
        assert_eq!(squeeze_to_square(&out, 224), out);
    }

    #[test]
    fn jpeg_round_trip_to_input() {
        let jpeg = encode_jpeg(&gradient(64, 32), 90).unwrap();
        let input = to_input_u8(&jpeg, 16).unwrap();
        assert_eq!(input.len(), 16 * 16 * 3);
        assert!(matches!(
            decode_photo(b"not a photo"),
            Err(PhotoError::Decode(_))
        ));
        assert!(
            decode_photo(&jpeg[..jpeg.len() / 3]).is_err() || to_input_u8(&jpeg[..20], 8).is_err()
        );
    }
}
