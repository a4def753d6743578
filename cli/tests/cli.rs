//! The `transfer-lab` binary end to end on fixtures written here: a random MobileNetV2 in the
//! prepared-assets layout and a folder of class sub-folders of coloured photos.

#![allow(clippy::unwrap_used)]

use std::path::Path;
use std::process::{Command, Output};

use image::{Rgb, RgbImage};
use serde_json::Value;
use transfer_lab_model::burn::tensor::Device;
use transfer_lab_model::mobilenet_v2::{ARCHITECTURE, MobileNetV2};
use transfer_lab_model::shards::{ModelEntry, ModelsIndex};
use transfer_lab_model::weights::{Preprocessing, WeightsBuilder, sha256_hex};

fn transfer_lab(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_transfer-lab"))
        .args(args)
        .output()
        .unwrap()
}

fn json(output: &Output) -> Value {
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    serde_json::from_slice(&output.stdout).unwrap()
}

/// `models/` with a random backbone file and its index entry, as `transfer-lab prepare` writes.
fn write_assets(root: &Path) {
    let network = MobileNetV2::random(&Device::flex());
    let mut builder = WeightsBuilder::new(ARCHITECTURE, Preprocessing::mobilenet_v2(), Vec::new());
    for (name, tensor) in pollster::block_on(network.parameters()).unwrap() {
        builder.add_f32(name, tensor.shape, tensor.values).unwrap();
    }
    let bytes = builder.to_bytes();
    std::fs::create_dir_all(root.join("models")).unwrap();
    std::fs::write(root.join("models/mobilenet_v2.tlw"), &bytes).unwrap();
    let index = ModelsIndex {
        models: vec![ModelEntry {
            backbone: "mobilenet_v2".into(),
            file: "mobilenet_v2.tlw".into(),
            bytes: bytes.len() as u64,
            sha256: sha256_hex(&bytes),
            architecture: ARCHITECTURE.into(),
            installed: true,
            parameters: None,
            install: None,
        }],
    };
    std::fs::write(
        root.join("models/index.json"),
        serde_json::to_vec(&index).unwrap(),
    )
    .unwrap();
    // `eval` without a folder and `train` without --data read the manifest; these tests always
    // pass a folder, but the assets folder must still open.
    std::fs::create_dir_all(root.join("flowers")).unwrap();
    let manifest = serde_json::json!({
        "version": 1, "dataset": "fixture", "seed": 1, "image_size": 224, "resize": "squeeze",
        "classes": [], "shards": [], "photos": [], "skipped": []
    });
    std::fs::write(root.join("flowers/manifest.json"), manifest.to_string()).unwrap();
}

/// Three classes of 10 photos, each class one colour with a little noise, and one corrupt file.
fn write_photos(root: &Path) {
    for (class, colour) in [
        ("blue", [20, 40, 220]),
        ("green", [30, 200, 40]),
        ("red", [210, 30, 30]),
    ] {
        std::fs::create_dir_all(root.join(class)).unwrap();
        for i in 0..10u32 {
            let photo = RgbImage::from_fn(40, 30, |x, y| {
                let noise = ((x * 7 + y * 13 + i * 31) % 40) as u8;
                Rgb(colour.map(|c: u8| c.saturating_add(noise)))
            });
            photo
                .save(root.join(class).join(format!("{i}.png")))
                .unwrap();
        }
    }
    std::fs::write(root.join("red/broken.jpg"), b"not a photo").unwrap();
}

#[test]
fn trains_evaluates_and_predicts_with_one_model_file() {
    let dir = tempfile::tempdir().unwrap();
    let (assets, photos) = (dir.path().join("assets"), dir.path().join("photos"));
    write_assets(&assets);
    write_photos(&photos);
    let model = dir.path().join("colours.tlmodel");
    let (assets, photos, model) = (
        assets.to_str().unwrap(),
        photos.to_str().unwrap(),
        model.to_str().unwrap(),
    );

    let trained = json(&transfer_lab(&[
        "train",
        "--lesson",
        "02",
        "--assets",
        assets,
        "--data",
        photos,
        "--epochs",
        "40",
        "--learning-rate",
        "0.01",
        "--out",
        model,
        "--json",
    ]));
    assert_eq!(
        trained["classes"],
        serde_json::json!(["blue", "green", "red"])
    );
    assert_eq!(trained["train_photos"], 24);
    assert_eq!(trained["validation_photos"], 6);
    assert_eq!(trained["skipped"][0]["name"], "red/broken.jpg");
    assert_eq!(trained["epochs"].as_array().unwrap().len(), 40);
    let seconds = &trained["seconds"];
    assert!(seconds["features"].as_f64().unwrap() > 0.0);
    assert!(seconds["training"].as_f64().unwrap() > 0.0);

    // The same photos through the saved file give the same predictions as right after training.
    let evaluated = json(&transfer_lab(&[
        "eval", model, photos, "--assets", assets, "--json",
    ]));
    assert_eq!(evaluated["photos"], 30);
    assert_eq!(evaluated["skipped"].as_array().unwrap().len(), 1);
    let names = trained["validation_photo_names"].as_array().unwrap();
    let predictions = trained["validation"]["predictions"].as_array().unwrap();
    let classes = evaluated["classes"].as_array().unwrap();
    for (name, predicted) in names.iter().zip(predictions) {
        let outcome = evaluated["outcomes"]
            .as_array()
            .unwrap()
            .iter()
            .find(|o| &o["photo"] == name)
            .unwrap();
        assert_eq!(
            outcome["predicted"],
            classes[predicted.as_u64().unwrap() as usize]
        );
    }
    // A random backbone's features carry little, so accuracy is not asserted here; the real
    // weights' accuracy is measured by the e2e tests and benchmarks.

    let predicted = json(&transfer_lab(&[
        "predict",
        model,
        &format!("{photos}/green/3.png"),
        "--assets",
        assets,
        "--json",
    ]));
    let top = &predicted["predictions"][0]["top"];
    assert_eq!(top.as_array().unwrap().len(), 3);
    let outcome = evaluated["outcomes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|o| o["photo"] == "green/3.png")
        .unwrap();
    assert_eq!(top[0]["class"], outcome["predicted"]);
    let total: f64 = top
        .as_array()
        .unwrap()
        .iter()
        .map(|g| g["probability"].as_f64().unwrap())
        .sum();
    assert!(
        (total - 1.0).abs() < 1e-4,
        "three classes' probabilities sum to one: {total}"
    );
}

#[test]
fn bad_input_is_explained_without_a_panic() {
    let dir = tempfile::tempdir().unwrap();
    let assets = dir.path().join("assets");
    write_assets(&assets);
    let assets = assets.to_str().unwrap();
    let backbone = format!("{assets}/models/mobilenet_v2.tlw");
    let missing = dir.path().join("missing").display().to_string();
    let empty_class = dir.path().join("empty");
    std::fs::create_dir_all(empty_class.join("daisy")).unwrap();
    let empty_class = empty_class.to_str().unwrap();

    for (args, expected) in [
        (
            vec!["eval", &backbone, &missing, "--assets", assets],
            "no trained model",
        ),
        (
            vec![
                "train", "--lesson", "02", "--assets", assets, "--data", &missing,
            ],
            "not a folder",
        ),
        (
            vec![
                "train",
                "--lesson",
                "02",
                "--assets",
                assets,
                "--data",
                empty_class,
            ],
            "is empty",
        ),
        (
            vec!["predict", &missing, "x.jpg", "--assets", assets],
            "cannot read",
        ),
    ] {
        let output = transfer_lab(&args);
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(!output.status.success(), "{args:?} should fail");
        assert!(stderr.contains(expected), "{args:?}: {stderr}");
        assert!(!stderr.contains("panicked"), "{args:?}: {stderr}");
    }
}
