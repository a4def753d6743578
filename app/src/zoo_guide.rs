//! Lesson 04's "which model when" guide, written from the numbers measured in the tab, and the
//! course's own results table for comparison.

use crate::course::percent;
use crate::protocol::ZooRow;

/// One line of the course's model-zoo results table (Keras on a Colab GPU, with ImageNet
/// classifiers included in the sizes).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct CourseZooRow {
    /// Backbone id, as in `models/index.json`.
    pub backbone: &'static str,
    /// Size as the course states it.
    pub size: &'static str,
    /// Accuracy as the course states it.
    pub accuracy: f32,
    /// Training time as the course states it.
    pub training_time: &'static str,
    /// What the course recommends it for.
    pub best_for: &'static str,
}

/// The course's table, in the order the lesson measures the backbones.
pub const COURSE_ZOO: [CourseZooRow; 3] = [
    CourseZooRow {
        backbone: "mobilenet_v2",
        size: "14 MB",
        accuracy: 0.87,
        training_time: "2 min",
        best_for: "Mobile",
    },
    CourseZooRow {
        backbone: "vgg16",
        size: "528 MB",
        accuracy: 0.89,
        training_time: "4 min",
        best_for: "Learning",
    },
    CourseZooRow {
        backbone: "resnet50",
        size: "98 MB",
        accuracy: 0.91,
        training_time: "3 min",
        best_for: "Default",
    },
];

/// One recommendation of the guide.
#[derive(Debug, Clone, PartialEq)]
pub struct Advice {
    /// The situation, e.g. "A phone app".
    pub scenario: &'static str,
    /// Name of the recommended backbone, if the measurements allow one.
    pub backbone: Option<String>,
    /// Why, with the measured numbers.
    pub reason: String,
}

fn megabytes(bytes: u64) -> String {
    format!("{:.1} MB", bytes as f64 / 1e6)
}

fn millions(parameters: usize) -> String {
    format!("{:.1}M", parameters as f64 / 1e6)
}

/// The guide for the measured `rows`: a phone, the best accuracy, learning how CNNs work.
/// Rows without a latency (not measured) are left out of speed comparisons, and rows without an
/// accuracy (no weights installed) out of accuracy comparisons; the guide says so.
pub fn decision_guide(rows: &[ZooRow]) -> Vec<Advice> {
    vec![phone(rows), accuracy(rows), learning(rows)]
}

fn phone(rows: &[ZooRow]) -> Advice {
    let timed: Vec<&ZooRow> = rows.iter().filter(|r| r.latency_ms.is_some()).collect();
    let fastest = timed.iter().min_by(|a, b| {
        (a.latency_ms, a.download_bytes)
            .partial_cmp(&(b.latency_ms, b.download_bytes))
            .unwrap_or(std::cmp::Ordering::Equal)
    });
    let slowest = timed.iter().max_by(|a, b| {
        a.latency_ms
            .partial_cmp(&b.latency_ms)
            .unwrap_or(std::cmp::Ordering::Equal)
    });
    let scenario = "A phone app or a slow laptop: small download, quick answers";
    match (fastest, slowest) {
        (Some(fast), Some(slow)) if fast.backbone != slow.backbone => Advice {
            scenario,
            backbone: Some(fast.name.clone()),
            reason: format!(
                "{} answers in {:.0} ms per photo here, {:.1}x faster than {} ({:.0} ms), with a \
                 {} download and {} parameters.",
                fast.name,
                fast.latency_ms.unwrap_or_default(),
                slow.latency_ms.unwrap_or_default() / fast.latency_ms.unwrap_or(1.0).max(1e-3),
                slow.name,
                slow.latency_ms.unwrap_or_default(),
                megabytes(fast.download_bytes),
                millions(fast.parameters),
            ),
        },
        (Some(fast), _) => Advice {
            scenario,
            backbone: Some(fast.name.clone()),
            reason: format!(
                "Only {} could be timed here ({:.0} ms per photo).",
                fast.name,
                fast.latency_ms.unwrap_or_default()
            ),
        },
        _ => Advice {
            scenario,
            backbone: None,
            reason: "No backbone could be timed on this device.".into(),
        },
    }
}

fn accuracy(rows: &[ZooRow]) -> Advice {
    let scenario = "The best accuracy on your photos";
    let measured: Vec<&ZooRow> = rows
        .iter()
        .filter(|r| r.validation_accuracy.is_some())
        .collect();
    let missing: Vec<&str> = rows
        .iter()
        .filter(|r| !r.installed)
        .map(|r| r.name.as_str())
        .collect();
    let missing_note = if missing.is_empty() {
        String::new()
    } else {
        format!(
            " {} could not be compared: their pretrained weights are not installed (see their \
             rows).",
            missing.join(" and ")
        )
    };
    let best = measured.iter().max_by(|a, b| {
        a.validation_accuracy
            .partial_cmp(&b.validation_accuracy)
            .unwrap_or(std::cmp::Ordering::Equal)
    });
    match best {
        Some(best) if measured.len() > 1 => Advice {
            scenario,
            backbone: Some(best.name.clone()),
            reason: format!(
                "{} reached {} on the validation photos, the best of the {} backbones measured.{}",
                best.name,
                percent(best.validation_accuracy.unwrap_or_default()),
                measured.len(),
                missing_note
            ),
        },
        Some(best) => Advice {
            scenario,
            backbone: Some(best.name.clone()),
            reason: format!(
                "{} reached {} on the validation photos; it is the only backbone with weights \
                 here, so this is not yet a comparison.{}",
                best.name,
                percent(best.validation_accuracy.unwrap_or_default()),
                missing_note
            ),
        },
        None => Advice {
            scenario,
            backbone: None,
            reason: format!("No backbone was trained and evaluated.{missing_note}"),
        },
    }
}

fn learning(rows: &[ZooRow]) -> Advice {
    let scenario = "Learning how a CNN works";
    match rows.iter().find(|r| r.backbone == "vgg16") {
        Some(vgg) => Advice {
            scenario,
            backbone: Some(vgg.name.clone()),
            reason: format!(
                "{} is a plain stack of thirteen 3x3 convolutions and five poolings, the easiest \
                 to draw and reason about; the price is its size and speed here: {} parameters, \
                 {}.",
                vgg.name,
                millions(vgg.parameters),
                vgg.latency_ms
                    .map_or("not timed on this device".into(), |ms| format!(
                        "{ms:.0} ms per photo"
                    )),
            ),
        },
        None => Advice {
            scenario,
            backbone: None,
            reason: "VGG16 was not measured.".into(),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(backbone: &str, name: &str, latency_ms: f64, accuracy: Option<f32>) -> ZooRow {
        ZooRow {
            backbone: backbone.into(),
            name: name.into(),
            parameters: 2_000_000,
            installed: accuracy.is_some(),
            download_bytes: 2_400_000,
            install: None,
            photos_timed: 8,
            photos_per_second: Some(1000.0 / latency_ms),
            latency_ms: Some(latency_ms),
            batch: 1,
            head_seconds: accuracy.map(|_| 1.0),
            validation_accuracy: accuracy,
            note: None,
        }
    }

    #[test]
    fn the_guide_follows_the_measurements() {
        let rows = [
            row("mobilenet_v2", "MobileNetV2", 100.0, Some(0.86)),
            row("vgg16", "VGG16", 4000.0, None),
            row("resnet50", "ResNet50", 1000.0, Some(0.9)),
        ];
        let guide = decision_guide(&rows);
        assert_eq!(guide[0].backbone.as_deref(), Some("MobileNetV2"));
        assert!(
            guide[0].reason.contains("40.0x faster than VGG16"),
            "{}",
            guide[0].reason
        );
        assert_eq!(guide[1].backbone.as_deref(), Some("ResNet50"));
        assert!(guide[1].reason.contains("90.0%"));
        assert!(guide[1].reason.contains("VGG16 could not be compared"));
        assert_eq!(guide[2].backbone.as_deref(), Some("VGG16"));
        assert!(guide[2].reason.contains("4000 ms per photo"));

        // A faster ResNet50 (say, on a GPU) takes the phone line.
        let rows = [
            row("mobilenet_v2", "MobileNetV2", 100.0, Some(0.86)),
            row("resnet50", "ResNet50", 50.0, None),
        ];
        assert_eq!(
            decision_guide(&rows)[0].backbone.as_deref(),
            Some("ResNet50")
        );
    }

    #[test]
    fn one_installed_backbone_is_not_called_a_comparison() {
        let rows = [
            row("mobilenet_v2", "MobileNetV2", 100.0, Some(0.86)),
            row("resnet50", "ResNet50", 1000.0, None),
        ];
        let advice = &decision_guide(&rows)[1];
        assert!(advice.reason.contains("only backbone with weights"));
        assert!(advice.reason.contains("ResNet50 could not be compared"));
        let untimed = ZooRow {
            latency_ms: None,
            ..row("vgg16", "VGG16", 1.0, None)
        };
        let guide = decision_guide(&[untimed]);
        assert_eq!(guide[0].backbone, None);
        assert!(guide[2].reason.contains("not timed"));
    }

    #[test]
    fn the_course_table_covers_every_backbone() {
        let ids: Vec<&str> = COURSE_ZOO.iter().map(|r| r.backbone).collect();
        assert_eq!(ids, ["mobilenet_v2", "vgg16", "resnet50"]);
    }
}
