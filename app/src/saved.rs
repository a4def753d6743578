//! What the browser keeps of a student's progress between visits: each lesson's last result
//! (with its trained model) and the answers to the questions. The page stores these records as
//! JSON in IndexedDB; nothing leaves the machine.

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use crate::protocol::{
    ExperimentResult, FeatureExtractionResult, FineTuneResult, ScratchResult, SweepPoint, ZooResult,
};
use crate::quiz::Answers;

/// Version of the record layout; records of another version are ignored, not misread.
pub const RECORD_VERSION: u32 = 1;

/// Storage key of lesson 01's record.
pub const LESSON01: &str = "lesson01";
/// Storage key of lesson 02's record.
pub const LESSON02: &str = "lesson02";
/// Storage key of lesson 03's record.
pub const LESSON03: &str = "lesson03";
/// Storage key of lesson 04's record.
pub const LESSON04: &str = "lesson04";
/// Storage key of the answers.
pub const ANSWERS: &str = "answers";

/// Every key the page writes, for loading and for the settings page.
pub const KEYS: [&str; 5] = [LESSON01, LESSON02, LESSON03, LESSON04, ANSWERS];

/// Lesson 01: the scratch CNN's result and the dataset-size sweep.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ScratchRecord {
    /// The run's result.
    pub result: ScratchResult,
    /// The sweep's points.
    pub sweep: Vec<SweepPoint>,
}

/// Lesson 03: the fine-tuning result and the experiments run on it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FineTuneRecord {
    /// The run's result.
    pub result: FineTuneResult,
    /// The experiments' results.
    pub experiments: Vec<ExperimentResult>,
}

/// A record with its layout version, as stored.
#[derive(Serialize, Deserialize)]
struct Stored<T> {
    version: u32,
    record: T,
}

/// Why a stored record could not be read back.
#[derive(Debug, thiserror::Error)]
pub enum RecordError {
    /// Written by another version of the app.
    #[error("the saved record has layout version {found}, this page reads version {expected}")]
    OtherVersion {
        /// The version found.
        found: u32,
        /// The version this page reads.
        expected: u32,
    },
    /// Not JSON of the expected shape.
    #[error("the saved record is damaged: {0}")]
    Damaged(#[from] serde_json::Error),
}

/// Turns a record into the text that is stored.
pub fn encode<T: Serialize>(record: &T) -> Result<String, serde_json::Error> {
    serde_json::to_string(&Stored {
        version: RECORD_VERSION,
        record,
    })
}

/// Reads a stored record back.
pub fn decode<T: DeserializeOwned>(text: &str) -> Result<T, RecordError> {
    #[derive(Deserialize)]
    struct VersionOnly {
        version: u32,
    }
    let VersionOnly { version } = serde_json::from_str(text)?;
    if version != RECORD_VERSION {
        return Err(RecordError::OtherVersion {
            found: version,
            expected: RECORD_VERSION,
        });
    }
    let stored: Stored<T> = serde_json::from_str(text)?;
    Ok(stored.record)
}

/// Everything restored at start-up; a missing or unreadable record is `None`.
#[derive(Debug, Clone, Default)]
pub struct SavedProgress {
    /// Lesson 01.
    pub scratch: Option<ScratchRecord>,
    /// Lesson 02.
    pub feature_extraction: Option<FeatureExtractionResult>,
    /// Lesson 03.
    pub fine_tuning: Option<FineTuneRecord>,
    /// Lesson 04.
    pub zoo: Option<ZooResult>,
    /// The answers.
    pub answers: Answers,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_round_trip_with_their_version() {
        let mut answers = Answers::new();
        answers.insert("02-frozen".into(), 1);
        let text = encode(&answers).expect("answers encode");
        let back: Answers = decode(&text).expect("answers decode");
        assert_eq!(back, answers);

        let sweep = vec![SweepPoint {
            photos_per_class: 10,
            train_accuracy: 1.0,
            validation_accuracy: 0.3,
        }];
        let text = encode(&sweep).expect("sweep encodes");
        assert_eq!(
            decode::<Vec<SweepPoint>>(&text).expect("sweep decodes"),
            sweep
        );
    }

    #[test]
    fn other_versions_and_damage_are_reported_not_misread() {
        let other = r#"{"version":99,"record":{}}"#;
        assert!(matches!(
            decode::<Answers>(other),
            Err(RecordError::OtherVersion { found: 99, .. })
        ));
        assert!(matches!(
            decode::<Answers>("{not json"),
            Err(RecordError::Damaged(_))
        ));
        let wrong_shape = r#"{"version":1,"record":[1,2]}"#;
        assert!(matches!(
            decode::<Answers>(wrong_shape),
            Err(RecordError::Damaged(_))
        ));
    }
}
