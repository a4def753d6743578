//! Check-your-understanding questions at the end of each lesson, on the topics of the course's
//! test: the benefits of transfer learning, feature extraction against fine-tuning, when to
//! freeze, learning rates for fine-tuning, and choosing a model for a scenario.

use std::collections::BTreeMap;

/// A multiple-choice question.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Question {
    /// Stable identifier, used to keep the student's answer.
    pub id: &'static str,
    /// The lesson it belongs to (`"01"`..`"04"`).
    pub lesson: &'static str,
    /// The question.
    pub prompt: &'static str,
    /// The choices, in the order shown.
    pub choices: &'static [&'static str],
    /// Index of the right choice in `choices`.
    pub correct: usize,
    /// Why the right choice is right, shown once the student has answered.
    pub explanation: &'static str,
}

impl Question {
    /// Whether `choice` is the right answer.
    pub fn is_correct(&self, choice: usize) -> bool {
        choice == self.correct
    }
}

/// Every question of the course, lesson by lesson.
pub const QUESTIONS: &[Question] = &[
    Question {
        id: "01-gap",
        lesson: "01",
        prompt: "Training accuracy reaches 99% while validation accuracy stays near 50%. What \
                 does that gap show?",
        choices: &[
            "The network memorised its training photos instead of learning flowers (overfitting)",
            "The learning rate is too small for the network to learn",
            "The validation photos are labelled wrongly",
        ],
        correct: 0,
        explanation: "A network that does well only on the photos it trained on has memorised \
                      them. With a few hundred photos, a network trained from scratch has too \
                      little data to learn features that generalise.",
    },
    Question {
        id: "01-benefit",
        lesson: "01",
        prompt: "Why does transfer learning reduce how much data a task needs?",
        choices: &[
            "It copies the training photos several times",
            "It reuses features (edges, textures, shapes) already learned from millions of photos",
            "It uses a smaller learning rate",
        ],
        correct: 1,
        explanation: "The pretrained backbone already turns a photo into useful features, so our \
                      few photos only have to teach the last step. That saves data, training \
                      time and compute.",
    },
    Question {
        id: "02-frozen",
        lesson: "02",
        prompt: "In feature extraction, what is trained?",
        choices: &[
            "Every layer of the pretrained network",
            "Only the new classifier head; the backbone stays frozen",
            "Only the first convolution of the backbone",
        ],
        correct: 1,
        explanation: "The backbone is frozen: its weights never change, so each photo needs to go \
                      through it only once and its features can be cached. Only the head learns.",
    },
    Question {
        id: "02-when",
        lesson: "02",
        prompt: "You have 2,000 medical images and little compute time. Which strategy do you \
                 try first?",
        choices: &[
            "Train a large CNN from scratch",
            "Feature extraction with a pretrained backbone, then fine-tune if needed",
            "Fine-tune every layer with a large learning rate",
        ],
        correct: 1,
        explanation: "With a small data set, feature extraction is quick and hard to get wrong; \
                      fine-tuning the top layers can add a few points once the head is trained.",
    },
    Question {
        id: "03-learning-rate",
        lesson: "03",
        prompt: "Why does fine-tuning use a learning rate about 10 to 100 times smaller?",
        choices: &[
            "To make every epoch faster",
            "Large steps would overwrite the pretrained features the lesson wants to keep",
            "Small learning rates need fewer photos",
        ],
        correct: 1,
        explanation: "The unfrozen weights are already good. Small steps adapt them to flowers; \
                      large steps destroy what was learned, as the 100x experiment shows.",
    },
    Question {
        id: "03-freeze",
        lesson: "03",
        prompt: "Which layers should stay frozen when you fine-tune on a small data set?",
        choices: &[
            "The top layers, closest to the classifier",
            "The lower layers: their edges and textures suit any photo",
            "None: unfreeze everything at once",
        ],
        correct: 1,
        explanation: "Lower layers learn general features; the top layers are the most specific \
                      to ImageNet's classes, so they are the ones worth adapting.",
    },
    Question {
        id: "03-order",
        lesson: "03",
        prompt: "Why does fine-tuning start from the head trained in feature extraction?",
        choices: &[
            "A random head would send large, noisy gradients into the pretrained weights",
            "Because the head has no weights of its own",
            "It does not matter where the head starts",
        ],
        correct: 0,
        explanation: "A trained head gives small, meaningful gradients from the first step, so \
                      the unfrozen layers move gently instead of being scrambled.",
    },
    Question {
        id: "04-mobile",
        lesson: "04",
        prompt: "You are building a phone app that must classify photos quickly and offline. \
                 Which backbone fits best?",
        choices: &["VGG16", "ResNet50", "MobileNetV2"],
        correct: 2,
        explanation: "MobileNetV2 is built to be small and fast (about 14 MB in the course's \
                      table), at the cost of a few points of accuracy.",
    },
    Question {
        id: "04-accuracy",
        lesson: "04",
        prompt: "Accuracy matters most and a server GPU is available. Which backbone do you \
                 start with?",
        choices: &["ResNet50", "MobileNetV2", "A small CNN from scratch"],
        correct: 0,
        explanation: "ResNet50 gave the best accuracy in the course's comparison and is a good \
                      default when size and speed are not the constraint.",
    },
];

/// The questions of one lesson, in order.
pub fn questions_for(lesson: &str) -> impl Iterator<Item = &'static Question> + '_ {
    QUESTIONS.iter().filter(move |q| q.lesson == lesson)
}

/// A student's answers: question id -> chosen index.
pub type Answers = BTreeMap<String, usize>;

/// How many of a lesson's questions are answered, and how many of those correctly.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Score {
    /// Questions answered.
    pub answered: usize,
    /// Questions answered correctly.
    pub correct: usize,
    /// Questions in the lesson.
    pub total: usize,
}

/// Scores the answers of one lesson.
pub fn score(lesson: &str, answers: &Answers) -> Score {
    questions_for(lesson).fold(Score::default(), |mut score, question| {
        score.total += 1;
        if let Some(&choice) = answers.get(question.id) {
            score.answered += 1;
            if question.is_correct(choice) {
                score.correct += 1;
            }
        }
        score
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::course::LESSONS;

    #[test]
    fn every_lesson_has_two_or_three_well_formed_questions() {
        for info in &LESSONS {
            let count = questions_for(info.number).count();
            assert!(
                (2..=3).contains(&count),
                "lesson {} has {count}",
                info.number
            );
        }
        let mut ids = std::collections::BTreeSet::new();
        for question in QUESTIONS {
            assert!(ids.insert(question.id), "duplicate id {}", question.id);
            assert!(question.choices.len() >= 2);
            assert!(question.correct < question.choices.len(), "{}", question.id);
            assert!(!question.explanation.is_empty());
        }
    }

    #[test]
    fn score_counts_answered_and_correct() {
        let mut answers = Answers::new();
        assert_eq!(
            score("03", &answers),
            Score {
                answered: 0,
                correct: 0,
                total: 3
            }
        );
        answers.insert("03-learning-rate".into(), 1);
        answers.insert("03-freeze".into(), 0);
        answers.insert("02-frozen".into(), 1);
        assert_eq!(
            score("03", &answers),
            Score {
                answered: 2,
                correct: 1,
                total: 3
            }
        );
        assert_eq!(score("02", &answers).correct, 1);
    }
}
