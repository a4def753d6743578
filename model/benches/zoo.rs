//! Lesson 04 natively on the CPU (flex) backend: photos per second and one-photo latency of
//! each backbone of the zoo at 224x224, on random weights (speed does not depend on the values).
//!
//! `cargo bench -p transfer-lab-model --bench zoo [-- --photos N] [-- --batch N]`

use std::time::Instant;

use burn::tensor::{Device, Tensor};
use transfer_lab_model::backbone::{Backbone, BackboneKind};

/// The parsed value after `--name`, or `default`.
fn option(name: &str, default: usize) -> usize {
    let args: Vec<String> = std::env::args().collect();
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1))
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// Seconds of one forward pass of `batch` photos, with the features read back.
fn seconds(backbone: &Backbone, batch: usize, device: &Device) -> f64 {
    let size = backbone.input_size();
    let input = Tensor::<4>::zeros([batch, 3, size, size], device);
    let started = Instant::now();
    let features = backbone.features(input);
    let _values = features.into_data();
    started.elapsed().as_secs_f64()
}

fn main() {
    let photos = option("--photos", 16);
    let batch = option("--batch", 8);
    let device = Device::flex();
    for kind in BackboneKind::ALL {
        let backbone = Backbone::random(kind, &device);
        // The first pass warms caches and allocations.
        seconds(&backbone, 1, &device);
        let latency = seconds(&backbone, 1, &device);
        let mut total = 0.0;
        let mut done = 0;
        while done < photos {
            let n = batch.min(photos - done);
            total += seconds(&backbone, n, &device);
            done += n;
        }
        println!(
            "lesson 04 natively, CPU (flex): {:<12} {:>6.2} photos/s (batch {batch}), one photo \
             {:>6.0} ms, {:.1}M parameters",
            kind.display_name(),
            done as f64 / total,
            latency * 1000.0,
            kind.parameter_count() as f64 / 1e6
        );
    }
}
