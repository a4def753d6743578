//! Accuracy, per-class accuracy and the confusion matrix of a set of predictions.

use serde::{Deserialize, Serialize};

/// How a classifier did on a labelled set.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Evaluation {
    /// Fraction of photos classified right (0 for an empty set).
    pub accuracy: f32,
    /// Accuracy of each true class (`None` for a class without photos).
    pub per_class_accuracy: Vec<Option<f32>>,
    /// `confusion[true][predicted]` photo counts.
    pub confusion: Vec<Vec<usize>>,
    /// Predicted class of every photo, in the set's order.
    pub predictions: Vec<usize>,
}

/// Scores `predictions` against `labels` for `classes` classes.
pub fn evaluate_predictions(predictions: &[usize], labels: &[usize], classes: usize) -> Evaluation {
    let mut confusion = vec![vec![0usize; classes]; classes];
    for (&predicted, &truth) in predictions.iter().zip(labels) {
        if truth < classes && predicted < classes {
            confusion[truth][predicted] += 1;
        }
    }
    let correct: usize = (0..classes).map(|c| confusion[c][c]).sum();
    let per_class_accuracy = confusion
        .iter()
        .enumerate()
        .map(|(class, row)| {
            let total: usize = row.iter().sum();
            (total > 0).then(|| row[class] as f32 / total as f32)
        })
        .collect();
    Evaluation {
        accuracy: if labels.is_empty() {
            0.0
        } else {
            correct as f32 / labels.len() as f32
        },
        per_class_accuracy,
        confusion,
        predictions: predictions.to_vec(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_right_and_wrong_answers_per_class() {
        let evaluation = evaluate_predictions(&[0, 1, 1, 2], &[0, 1, 2, 2], 3);
        assert_eq!(evaluation.accuracy, 0.75);
        assert_eq!(
            evaluation.confusion,
            vec![vec![1, 0, 0], vec![0, 1, 0], vec![0, 1, 1]]
        );
        assert_eq!(
            evaluation.per_class_accuracy,
            vec![Some(1.0), Some(1.0), Some(0.5)]
        );
        assert_eq!(
            evaluate_predictions(&[], &[], 2).per_class_accuracy,
            vec![None, None]
        );
    }
}
