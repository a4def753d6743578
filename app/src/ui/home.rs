//! The course's home page: the four lessons in order, each with its goal, duration and status.

use leptos::prelude::*;

use super::RunState;
use super::run_state::Lesson;
use super::saved_progress::SavedProgress;
use crate::course::{LESSONS, LessonInfo, percent};
use crate::navigation::Route;
use crate::quiz;

/// Where a lesson stands for this student.
#[derive(Debug, Clone, PartialEq)]
pub enum LessonStatus {
    /// Nothing run yet.
    NotStarted,
    /// Running now.
    Running,
    /// Finished, with its headline numbers.
    Done(String),
}

impl LessonStatus {
    fn name(&self) -> &'static str {
        match self {
            LessonStatus::NotStarted => "not-started",
            LessonStatus::Running => "running",
            LessonStatus::Done(_) => "done",
        }
    }

    fn text(&self) -> String {
        match self {
            LessonStatus::NotStarted => "Not started".into(),
            LessonStatus::Running => "Running now".into(),
            LessonStatus::Done(numbers) => format!("Done: {numbers}"),
        }
    }
}

fn lesson_of(number: &str) -> Lesson {
    match number {
        "01" => Lesson::Scratch,
        "02" => Lesson::FeatureExtraction,
        "03" => Lesson::FineTuning,
        _ => Lesson::ModelZoo,
    }
}

/// The headline numbers of a lesson's last result, measured in this browser.
pub fn headline(run: RunState, number: &str) -> Option<String> {
    match number {
        "01" => run.scratch_result.get().map(|r| {
            format!(
                "validation {} (training {})",
                percent(r.validation.accuracy),
                percent(r.train_accuracy)
            )
        }),
        "02" => run
            .result
            .get()
            .map(|r| format!("validation {}", percent(r.validation.accuracy))),
        "03" => run.fine_tune_result.get().map(|r| {
            format!(
                "{} → {} after fine-tuning",
                percent(r.start.lesson02_accuracy),
                percent(r.validation.accuracy)
            )
        }),
        _ => run
            .zoo_result
            .get()
            .map(|r| format!("{} backbones measured on {}", r.rows.len(), r.backend)),
    }
}

/// A lesson's status, from the current run and the saved results.
pub fn status(run: RunState, number: &str) -> LessonStatus {
    let lesson = lesson_of(number);
    let busy = run.running.get() || (lesson == Lesson::FineTuning && run.experiment_running.get());
    if busy && run.is_lesson(lesson) {
        return LessonStatus::Running;
    }
    match headline(run, number) {
        Some(numbers) => LessonStatus::Done(numbers),
        None => LessonStatus::NotStarted,
    }
}

/// The home page.
#[component]
pub fn HomePage() -> impl IntoView {
    let cards = LESSONS
        .iter()
        .map(|info| view! { <LessonCard info/> })
        .collect_view();
    view! {
        <section class="home" aria-labelledby="home-title" data-testid="home">
            <h2 id="home-title">"Transfer learning in four lessons"</h2>
            <p class="lead">
                "Each lesson trains a real image classifier in this tab, on the TensorFlow "
                "Flowers photos (5 classes). Take them in order: the problem, the fast "
                "solution, going deeper, and choosing a model. About 35–40 minutes in all."
            </p>
            <ol class="lesson-cards">{cards}</ol>
        </section>
    }
}

#[component]
fn LessonCard(info: &'static LessonInfo) -> impl IntoView {
    let run = expect_context::<RunState>();
    let progress = expect_context::<SavedProgress>();
    let number = info.number;
    let current = Memo::new(move |_| status(run, number));
    let questions = move || {
        let score = quiz::score(number, &progress.answers.get());
        if score.answered == 0 {
            format!("{} questions", score.total)
        } else {
            format!("Questions: {} of {} right", score.correct, score.total)
        }
    };
    let (low, high) = info.minutes;
    view! {
        <li class="lesson-card" data-testid=format!("lesson-card-{number}")
            data-status=move || current.get().name()>
            <a href=Route::lesson_start(number).to_hash()>
                <span class="number">{number}</span>
                <span class="title">{info.title}</span>
            </a>
            <p class="goal">{info.goal}</p>
            <p class="meta">
                <span class="duration">{format!("{low}–{high} min")}</span>
                " · "
                <span class="status" data-testid=format!("lesson-status-{number}")>
                    {move || current.get().text()}
                </span>
                " · "
                <span class="score">{questions}</span>
            </p>
        </li>
    }
}

/// The lesson's result in big numbers (projector mode's results step).
#[component]
pub fn BigResult(
    /// The lesson's number.
    lesson: &'static str,
) -> impl IntoView {
    let run = expect_context::<RunState>();
    view! {
        <div class="big-result" data-testid=format!("big-result-{lesson}")>
            {move || match headline(run, lesson) {
                Some(numbers) => view! { <p class="headline">{numbers}</p> }.into_any(),
                None => view! {
                    <p class="headline pending">"Run the lesson to see its numbers here."</p>
                }
                .into_any(),
            }}
        </div>
    }
}
