//! The course's published claims, and how a measured number compares with them.

/// The course's claimed validation accuracy for feature extraction, as a range.
const FEATURE_EXTRACTION_CLAIM: (f32, f32) = (0.88, 0.92);

/// A fraction as a percentage with one decimal.
pub fn percent(value: f32) -> String {
    format!("{:.1}%", value * 100.0)
}

/// How the measured accuracy compares with the course's claim, in plain words.
pub fn verdict(accuracy: f32) -> String {
    let (low, high) = FEATURE_EXTRACTION_CLAIM;
    if accuracy < low {
        format!(
            "Below the course's {}–{} claim. Try more epochs or the full training split.",
            percent(low),
            percent(high)
        )
    } else if accuracy <= high {
        format!(
            "Within the course's claim of {}–{}.",
            percent(low),
            percent(high)
        )
    } else {
        format!(
            "Above the course's claim of {}–{}.",
            percent(low),
            percent(high)
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn verdict_places_the_accuracy_against_the_claim() {
        assert!(verdict(0.5).starts_with("Below"));
        assert!(verdict(0.88).starts_with("Within"));
        assert!(verdict(0.95).starts_with("Above"));
        assert_eq!(percent(0.865), "86.5%");
    }
}
