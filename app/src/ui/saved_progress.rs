//! Keeps the student's progress in this browser: every finished lesson result (with its trained
//! model) and every answer is written to IndexedDB, and read back when the page opens again.

use std::collections::BTreeSet;

use leptos::prelude::*;
use leptos::task::spawn_local;
use serde::Serialize;

use super::RunState;
use super::storage;
use crate::quiz::Answers;
use crate::saved::{
    self, ANSWERS, FineTuneRecord, KEYS, LESSON01, LESSON02, LESSON03, LESSON04, ScratchRecord,
};

/// The saved progress's signals; cheap to copy into components.
#[derive(Clone, Copy)]
pub struct SavedProgress {
    /// The student's answers, by question id.
    pub answers: RwSignal<Answers>,
    /// The saved records have been read back (or there were none).
    pub restored: RwSignal<bool>,
    /// Why progress could not be kept, shown once rather than on every save.
    pub problem: RwSignal<Option<String>>,
    /// Keys whose next change comes from restoring, not from a new result.
    restoring: StoredValue<BTreeSet<&'static str>>,
}

impl SavedProgress {
    /// Reads the saved records back into `run`, then saves every new result.
    pub fn connect(run: RunState) -> Self {
        let progress = Self {
            answers: RwSignal::new(Answers::new()),
            restored: RwSignal::new(false),
            problem: RwSignal::new(None),
            restoring: StoredValue::new(BTreeSet::new()),
        };
        progress.save_on_change(LESSON01, move || {
            run.scratch_result.get().map(|result| ScratchRecord {
                result,
                sweep: run.sweep.get(),
            })
        });
        progress.save_on_change(LESSON02, move || run.result.get());
        progress.save_on_change(LESSON03, move || {
            run.fine_tune_result.get().map(|result| FineTuneRecord {
                result,
                experiments: run.experiment_results.get(),
            })
        });
        progress.save_on_change(LESSON04, move || run.zoo_result.get());
        progress.save_on_change(ANSWERS, move || {
            let answers = progress.answers.get();
            (!answers.is_empty()).then_some(answers)
        });
        spawn_local(async move { progress.restore(run).await });
        progress
    }

    /// Writes `record()` under `key` whenever it changes to a value, once restoring is done.
    fn save_on_change<T, F>(&self, key: &'static str, record: F)
    where
        T: Serialize + 'static,
        F: Fn() -> Option<T> + 'static,
    {
        let progress = *self;
        Effect::new(move |_| {
            let Some(record) = record() else { return };
            let from_restore = progress
                .restoring
                .try_update_value(|keys| keys.remove(key))
                .unwrap_or(false);
            if from_restore || !progress.restored.get_untracked() {
                return;
            }
            match saved::encode(&record) {
                Ok(text) => spawn_local(async move {
                    if let Err(e) = storage::put(key, &text).await {
                        log::warn!("progress not saved ({key}): {e}");
                        progress.problem.set(Some(format!(
                            "Your progress cannot be kept in this browser ({e}); results stay \
                             until the page is closed."
                        )));
                    }
                }),
                Err(e) => log::error!("progress record {key} could not be encoded: {e}"),
            }
        });
    }

    async fn restore(self, run: RunState) {
        let mut texts = Vec::new();
        for key in KEYS {
            match storage::get(key).await {
                Ok(Some(text)) => texts.push((key, text)),
                Ok(None) => {}
                Err(e) => {
                    log::warn!("saved progress not read: {e}");
                    self.problem.set(Some(format!(
                        "Saved progress could not be read ({e}); this visit starts afresh."
                    )));
                    break;
                }
            }
        }
        for (key, text) in texts {
            self.restoring.update_value(|keys| {
                keys.insert(key);
            });
            let outcome = match key {
                LESSON01 => saved::decode::<ScratchRecord>(&text).map(|record| {
                    run.sweep.set(record.sweep);
                    run.scratch_result.set(Some(record.result));
                }),
                LESSON02 => saved::decode(&text).map(|result| run.result.set(Some(result))),
                LESSON03 => saved::decode::<FineTuneRecord>(&text).map(|record| {
                    run.experiment_results.set(record.experiments);
                    run.fine_tune_start.set(Some(record.result.start));
                    run.fine_tune_result.set(Some(record.result));
                }),
                LESSON04 => saved::decode(&text).map(|result: crate::protocol::ZooResult| {
                    run.zoo_rows.set(result.rows.clone());
                    run.zoo_result.set(Some(result));
                }),
                _ => saved::decode(&text).map(|answers| self.answers.set(answers)),
            };
            if let Err(e) = outcome {
                self.restoring.update_value(|keys| {
                    keys.remove(key);
                });
                log::warn!("saved record {key} ignored: {e}");
            }
        }
        self.restored.set(true);
    }

    /// Records the student's answer to a question.
    pub fn answer(&self, question: &'static str, choice: usize) {
        self.answers.update(|answers| {
            answers.insert(question.into(), choice);
        });
    }

    /// Forgets every saved result, model and answer, here and in the browser's storage.
    pub fn reset(&self, run: RunState) {
        run.scratch_result.set(None);
        run.sweep.set(Vec::new());
        run.result.set(None);
        run.fine_tune_start.set(None);
        run.fine_tune_result.set(None);
        run.experiment_results.set(Vec::new());
        run.zoo_rows.set(Vec::new());
        run.zoo_result.set(None);
        run.epochs.set(Vec::new());
        run.lesson.set(None);
        self.answers.set(Answers::new());
        let problem = self.problem;
        spawn_local(async move {
            match storage::clear().await {
                Ok(()) => problem.set(None),
                Err(e) => problem.set(Some(format!("Saved progress could not be cleared ({e})."))),
            }
        });
    }
}
