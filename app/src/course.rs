//! The course: its lessons in order, the steps of a lesson page, the published claims and how a
//! measured number compares with them.

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

/// One step of a lesson page; in projector mode each step fills the screen on its own.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Screen {
    /// The idea in plain words, with a small figure.
    Idea,
    /// The course's Keras code next to what this tab runs.
    Code,
    /// Which layers are frozen and which train (lesson 03).
    Layers,
    /// The controls, progress bars and live charts.
    Run,
    /// The measured result.
    Results,
    /// Check-your-understanding questions.
    Questions,
}

impl Screen {
    /// Short name, used in the page's attributes and the presenter's bar.
    pub fn name(self) -> &'static str {
        match self {
            Screen::Idea => "idea",
            Screen::Code => "code",
            Screen::Layers => "layers",
            Screen::Run => "run",
            Screen::Results => "results",
            Screen::Questions => "questions",
        }
    }

    /// Heading shown in the presenter's bar.
    pub fn title(self) -> &'static str {
        match self {
            Screen::Idea => "The idea",
            Screen::Code => "The code",
            Screen::Layers => "Frozen and trainable layers",
            Screen::Run => "Run it",
            Screen::Results => "Results",
            Screen::Questions => "Check your understanding",
        }
    }
}

/// A lesson of the course, as the home page lists it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LessonInfo {
    /// Two-digit number, as in the course (`"01"`..`"04"`).
    pub number: &'static str,
    /// Title.
    pub title: &'static str,
    /// What the student takes away, in one sentence.
    pub goal: &'static str,
    /// The course's expected duration in minutes (low, high).
    pub minutes: (u32, u32),
    /// The steps of its page, in order.
    pub screens: &'static [Screen],
}

/// The four lessons, in the order the course takes them.
pub const LESSONS: [LessonInfo; 4] = [
    LessonInfo {
        number: "01",
        title: "The problem: training from scratch",
        goal: "See a small CNN memorise a few hundred photos, and how accuracy grows with data.",
        minutes: (5, 7),
        screens: &[
            Screen::Idea,
            Screen::Code,
            Screen::Run,
            Screen::Results,
            Screen::Questions,
        ],
    },
    LessonInfo {
        number: "02",
        title: "Feature extraction: the fast solution",
        goal: "Reuse a frozen ImageNet network and train only a small head: accuracy jumps.",
        minutes: (8, 10),
        screens: &[
            Screen::Idea,
            Screen::Code,
            Screen::Run,
            Screen::Results,
            Screen::Questions,
        ],
    },
    LessonInfo {
        number: "03",
        title: "Fine-tuning: going deeper",
        goal: "Unfreeze the top of the backbone and train it with a small learning rate.",
        minutes: (10, 12),
        screens: &[
            Screen::Idea,
            Screen::Code,
            Screen::Layers,
            Screen::Run,
            Screen::Results,
            Screen::Questions,
        ],
    },
    LessonInfo {
        number: "04",
        title: "The model zoo: choosing the right model",
        goal: "Compare VGG16, ResNet50 and MobileNetV2 on size, speed and accuracy.",
        minutes: (10, 12),
        screens: &[
            Screen::Idea,
            Screen::Code,
            Screen::Run,
            Screen::Results,
            Screen::Questions,
        ],
    },
];

/// The lesson with this two-digit number.
pub fn lesson(number: &str) -> Option<&'static LessonInfo> {
    LESSONS.iter().find(|l| l.number == number)
}

/// The lesson after this one, if any.
pub fn next_lesson(number: &str) -> Option<&'static LessonInfo> {
    let index = LESSONS.iter().position(|l| l.number == number)?;
    LESSONS.get(index + 1)
}

/// The lesson before this one, if any.
pub fn previous_lesson(number: &str) -> Option<&'static LessonInfo> {
    let index = LESSONS.iter().position(|l| l.number == number)?;
    index.checked_sub(1).and_then(|i| LESSONS.get(i))
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

    #[test]
    fn lessons_run_in_course_order_and_end_with_questions() {
        let numbers: Vec<_> = LESSONS.iter().map(|l| l.number).collect();
        assert_eq!(numbers, ["01", "02", "03", "04"]);
        for info in &LESSONS {
            assert_eq!(info.screens.first(), Some(&Screen::Idea));
            assert_eq!(info.screens.last(), Some(&Screen::Questions));
            assert!(info.screens.contains(&Screen::Run));
            assert!(info.minutes.0 <= info.minutes.1);
        }
        assert_eq!(next_lesson("02").map(|l| l.number), Some("03"));
        assert!(next_lesson("04").is_none());
        assert_eq!(previous_lesson("02").map(|l| l.number), Some("01"));
        assert!(previous_lesson("01").is_none());
        assert!(lesson("05").is_none());
    }
}
