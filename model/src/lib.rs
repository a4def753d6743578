//! Transfer Lab's machine-learning core: the networks, the import of published weights into the
//! compact web weight format, the photo shards, and the training loops.
//!
//! Everything here is backend-agnostic: the [`burn::tensor::Device`] handed in decides whether it
//! runs on the browser's WebGPU adapter or on the CPU (`flex`) backend.

/// The burn version the networks are built with, for crates that drive them.
pub use burn;

pub mod backbone;
pub mod features;
pub mod fine_tune;
pub mod head;
pub mod metrics;
pub mod mobilenet_v2;
pub mod photo;
pub mod photo_set;
#[cfg(not(target_arch = "wasm32"))]
pub mod prepared;
pub mod resnet50;
pub mod scratch_cnn;
pub mod shards;
pub mod tflite;
#[cfg(not(target_arch = "wasm32"))]
pub mod torchvision;
pub mod trained_model;
pub mod vgg16;
pub mod weights;
