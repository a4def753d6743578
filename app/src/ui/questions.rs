//! Check-your-understanding questions at the end of a lesson, with explanations once answered.

use leptos::prelude::*;

use super::saved_progress::SavedProgress;
use crate::quiz::{self, Question};

/// A lesson's questions.
#[component]
pub fn Questions(
    /// The lesson's number.
    lesson: &'static str,
) -> impl IntoView {
    let progress = expect_context::<SavedProgress>();
    let items = quiz::questions_for(lesson)
        .map(|question| view! { <QuestionItem question/> })
        .collect_view();
    let score = move || {
        let score = quiz::score(lesson, &progress.answers.get());
        format!(
            "{} of {} answered, {} right",
            score.answered, score.total, score.correct
        )
    };
    view! {
        <div class="questions" data-testid=format!("questions-{lesson}")>
            <ol>{items}</ol>
            <p class="score" data-testid=format!("quiz-score-{lesson}") aria-live="polite">
                {score}
            </p>
        </div>
    }
}

#[component]
fn QuestionItem(question: &'static Question) -> impl IntoView {
    let progress = expect_context::<SavedProgress>();
    let chosen = Memo::new(move |_| progress.answers.with(|a| a.get(question.id).copied()));
    let choices = question
        .choices
        .iter()
        .enumerate()
        .map(|(index, text)| {
            view! {
                <li>
                    <label>
                        <input type="radio" name=question.id value=index.to_string()
                            data-testid=format!("answer-{}-{index}", question.id)
                            prop:checked=move || chosen.get() == Some(index)
                            on:change=move |_| progress.answer(question.id, index)/>
                        " " {*text}
                    </label>
                </li>
            }
        })
        .collect_view();
    let feedback = move || {
        chosen.get().map(|choice| {
            let right = question.is_correct(choice);
            view! {
                <p class="feedback" class:right=right class:wrong=!right
                    data-testid=format!("feedback-{}", question.id)
                    data-correct=right.to_string()>
                    <strong>{if right { "Right. " } else { "Not quite. " }}</strong>
                    {question.explanation}
                </p>
            }
        })
    };
    view! {
        <li class="question">
            <fieldset>
                <legend>{question.prompt}</legend>
                <ul class="choices">{choices}</ul>
            </fieldset>
            <div aria-live="polite">{feedback}</div>
        </li>
    }
}
