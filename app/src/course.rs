//! The course's published claims, and how a measured number compares with them.

/// A claimed validation accuracy range of the course.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Claim {
    /// Lowest claimed accuracy.
    pub low: f32,
    /// Highest claimed accuracy.
    pub high: f32,
    /// What to try when the measurement falls short.
    pub advice: &'static str,
}

/// The course's claim for a small CNN trained from scratch.
pub const SCRATCH: Claim = Claim {
    low: 0.45,
    high: 0.55,
    advice: "Try augmentation or more epochs.",
};

/// The course's claim for feature extraction.
pub const FEATURE_EXTRACTION: Claim = Claim {
    low: 0.88,
    high: 0.92,
    advice: "Try more epochs or the full training split.",
};

/// The course's claim for fine-tuning the top of the backbone.
pub const FINE_TUNING: Claim = Claim {
    low: 0.92,
    high: 0.95,
    advice: "Try the full training split, or move the boundary one block lower.",
};

/// A fraction as a percentage with one decimal.
pub fn percent(value: f32) -> String {
    format!("{:.1}%", value * 100.0)
}

impl Claim {
    /// How a measured accuracy compares with the claim, in plain words.
    pub fn verdict(&self, accuracy: f32) -> String {
        let range = format!("{}–{}", percent(self.low), percent(self.high));
        if accuracy < self.low {
            format!("Below the course's {range} claim. {}", self.advice)
        } else if accuracy <= self.high {
            format!("Within the course's claim of {range}.")
        } else {
            format!("Above the course's claim of {range}.")
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn verdict_places_the_accuracy_against_the_claim() {
        assert!(FEATURE_EXTRACTION.verdict(0.5).starts_with("Below"));
        assert!(FEATURE_EXTRACTION.verdict(0.88).starts_with("Within"));
        assert!(FEATURE_EXTRACTION.verdict(0.95).starts_with("Above"));
        assert!(SCRATCH.verdict(0.5).starts_with("Within"));
        assert!(SCRATCH.verdict(0.3).contains("augmentation"));
        assert!(FINE_TUNING.verdict(0.93).starts_with("Within"));
        assert!(FINE_TUNING.verdict(0.9).contains("boundary"));
        assert_eq!(percent(0.865), "86.5%");
    }
}
