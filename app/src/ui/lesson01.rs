//! Lesson 01: a small CNN trained from scratch overfits, and accuracy grows with the number of
//! photos: why transfer learning is needed.

use leptos::prelude::*;
use transfer_lab_model::scratch_cnn::{ScratchCnnConfig, ScratchTrainingConfig};

use super::RunState;
use super::chart::{CurveChart, Metric};
use super::home::BigResult;
use super::lesson02::NumberField;
use super::messages::RunMessages;
use super::progress::DownloadBar;
use super::run_state::Lesson;
use super::settings::UrlOptions;
use super::shell::{LessonOpening, QuestionsStep, Step};
use crate::course::Screen;
use crate::course::{SCRATCH, percent};
use crate::protocol::{BackendChoice, ScratchRun, SweepPoint};

/// The course's Keras version of this lesson.
const KERAS_CODE: &str = "\
model = Sequential([
    Conv2D(32, 3, activation='relu'), MaxPooling2D(),
    Conv2D(64, 3, activation='relu'), MaxPooling2D(),
    Conv2D(128, 3, activation='relu'), MaxPooling2D(),
    Flatten(), Dense(128, activation='relu'), Dropout(0.5),
    Dense(5, activation='softmax')])
model.fit(train_data, validation_data=val_data, epochs=20)";

/// What this tab runs for the same idea.
const APP_STEPS: &str = "\
photos   -> squeezed to 64x64 pixels, values in [0, 1]
network  = 3 x (Conv 3x3 + ReLU + MaxPool 2x2): 16, 32, 64 channels
           Dense(128) + ReLU + Dropout(0.2), Dense(5)
weights  = random (seeded), trained with Adam on every epoch
sweep    = the same network on 10, 25, 50 photos per class";

/// Photos per class of the sweep's smaller runs; the main run adds the largest point.
const SWEEP_PER_CLASS: [usize; 3] = [10, 25, 50];

/// This lesson's number in the course.
const LESSON: &str = "01";

/// The lesson panel.
#[component]
pub fn ScratchLesson() -> impl IntoView {
    let run = expect_context::<RunState>();
    view! {
        <section class="lesson" aria-labelledby="lesson01-title">
            <h2 id="lesson01-title">"Lesson 01 · The problem: training from scratch"</h2>
            <LessonOpening lesson=LESSON keras=KERAS_CODE app=APP_STEPS>
                <Explanation/>
            </LessonOpening>
            <Step lesson=LESSON screen=Screen::Run>
                <ScratchControls/>
                <Show when=move || run.is_lesson(Lesson::Scratch)>
                    <ScratchProgress/>
                    <RunMessages/>
                </Show>
            </Step>
            <Step lesson=LESSON screen=Screen::Results>
                <BigResult lesson=LESSON/>
                <div class="details">
                    {move || run.scratch_result.get().map(|_| view! { <ScratchOutcome/> })}
                    <Show when=move || !run.sweep.get().is_empty()>
                        <SweepChart/>
                    </Show>
                </div>
            </Step>
            <QuestionsStep lesson=LESSON/>
        </section>
    }
}

#[component]
fn Explanation() -> impl IntoView {
    view! {
        <div class="explain">
            <p>
                "A convolutional network that starts from random weights has to learn "
                "everything — edges, colours, petals — from our few hundred flower photos. "
                "Watch the two curves: accuracy on the training photos climbs towards 100% "
                "while accuracy on the validation photos, which the network never trains on, "
                "stalls. The network memorises its photos instead of learning flowers: that "
                "gap is " <em>"overfitting"</em> "."
            </p>
            <p>
                "The sweep then trains the same network on fewer photos per class. Accuracy "
                "keeps rising with more photos: from scratch, a network needs far more data "
                "than we have. Lesson 02 borrows what a network learned from 1.2 million "
                "photos instead."
            </p>
        </div>
    }
}

#[component]
fn ScratchControls() -> impl IntoView {
    let run = expect_context::<RunState>();
    let url = UrlOptions::from_location();
    let defaults = ScratchTrainingConfig::default();
    let epochs = RwSignal::new(url.epochs.unwrap_or(defaults.epochs));
    let learning_rate = RwSignal::new(defaults.learning_rate);
    let augment = RwSignal::new(defaults.augment);
    let sweep = RwSignal::new(true);
    let force_cpu = RwSignal::new(url.force_cpu);
    let start = move |_| {
        let url = UrlOptions::from_location();
        run.start_scratch(ScratchRun {
            backend: if force_cpu.get() {
                BackendChoice::Cpu
            } else {
                BackendChoice::Auto
            },
            train_per_class: url.train_per_class,
            validation_per_class: url.validation_per_class,
            training: ScratchTrainingConfig {
                epochs: epochs.get().max(1),
                learning_rate: learning_rate.get(),
                augment: augment.get(),
                ..ScratchTrainingConfig::default()
            },
            sweep_per_class: if sweep.get() {
                url.sweep_per_class
                    .unwrap_or_else(|| SWEEP_PER_CLASS.to_vec())
            } else {
                Vec::new()
            },
            assets_base: "generated/".into(),
        });
    };
    let busy = Signal::derive(move || run.busy());
    view! {
        <form class="controls" on:submit=|ev| ev.prevent_default()>
            <NumberField label="Epochs" value=epochs min="1" step="1" disabled=busy/>
            <NumberField label="Learning rate" value=learning_rate min="0" step="0.0001"
                disabled=busy/>
            <label>
                <input type="checkbox" data-testid="augment" prop:checked=move || augment.get()
                    on:change=move |ev| augment.set(event_target_checked(&ev))
                    prop:disabled=move || busy.get()/>
                " Augmentation (random flips and crops)"
            </label>
            <label>
                <input type="checkbox" prop:checked=move || sweep.get()
                    on:change=move |ev| sweep.set(event_target_checked(&ev))
                    prop:disabled=move || busy.get()/>
                " Then the dataset-size sweep"
            </label>
            <label>
                <input type="checkbox" prop:checked=move || force_cpu.get()
                    on:change=move |ev| force_cpu.set(event_target_checked(&ev))
                    prop:disabled=move || busy.get()/>
                " Use the CPU even if WebGPU is available"
            </label>
            <div class="buttons">
                <button type="button" class="primary" data-testid="train-scratch" on:click=start
                    prop:disabled=move || busy.get() || !run.worker_ready.get()>
                    "Train from scratch"
                </button>
                <button type="button" data-testid="stop-scratch" on:click=move |_| run.stop()
                    prop:disabled=move || !run.running.get()>
                    "Stop"
                </button>
            </div>
        </form>
    }
}

#[component]
fn ScratchProgress() -> impl IntoView {
    let run = expect_context::<RunState>();
    let epochs = run.epochs;
    let size = ScratchCnnConfig::default().input_size;
    view! {
        <div class="run-progress">
            <p class="phase" data-testid="scratch-phase" aria-live="polite">
                {move || run.phase.get()}
            </p>
            <DownloadBar test_id="scratch-download-progress"
                photo_note=format!(" ({size}x{size})")/>
            <GapNote/>
            <div class="charts">
                <CurveChart epochs=epochs metric=Metric::Accuracy/>
                <CurveChart epochs=epochs metric=Metric::Loss/>
            </div>
        </div>
    }
}

/// The latest epoch's training and validation accuracy and the gap between them.
#[component]
fn GapNote() -> impl IntoView {
    let run = expect_context::<RunState>();
    move || {
        let epochs = run.epochs.get();
        let last = epochs.last()?;
        let validation = last.validation?.accuracy;
        let train = last.train.accuracy;
        let gap = train - validation;
        let overfitting = gap > 0.15;
        let explanation = if overfitting {
            " The network is memorising its training photos: it is overfitting."
        } else {
            ""
        };
        Some(view! {
            <p class="gap" class:overfitting=overfitting data-testid="gap"
                data-epochs=epochs.len() data-train=format!("{train:.4}")
                data-validation=format!("{validation:.4}")>
                "Epoch " {last.epoch} ": training " {percent(train)} ", validation "
                {percent(validation)} " — a gap of " {format!("{:.1}", gap * 100.0)}
                " points." {explanation}
            </p>
        })
    }
}

#[component]
fn ScratchOutcome() -> impl IntoView {
    let run = expect_context::<RunState>();
    move || {
        let result = run.scratch_result.get()?;
        let accuracy = result.validation.accuracy;
        Some(view! {
            <section class="results" data-testid="scratch-results"
                data-validation=format!("{accuracy:.4}")
                data-train=format!("{:.4}", result.train_accuracy)
                data-seconds-per-epoch=format!("{:.3}", result.seconds_per_epoch)>
                <h3>"Result"</h3>
                <p class="big-number">
                    <span>{percent(accuracy)}</span>
                    " validation accuracy (training: " {percent(result.train_accuracy)} ")"
                </p>
                <p data-testid="scratch-verdict">{SCRATCH.verdict(accuracy)}</p>
                <p class="timings">
                    {result.train_photos} " training photos, "
                    {format!("{:.1}", result.seconds_per_epoch)} " s per epoch on the "
                    {result.backend.clone()} " backend."
                </p>
                <p>
                    "A pretrained backbone does much better with the same photos: "
                    <a href="#lesson02-title">"continue with lesson 02"</a> "."
                </p>
            </section>
        })
    }
}

const SWEEP_WIDTH: f64 = 520.0;
const SWEEP_HEIGHT: f64 = 240.0;
const SWEEP_MARGIN: f64 = 40.0;
/// Okabe-Ito vermillion and bluish green.
const SCRATCH_COLOUR: &str = "#D55E00";
const TRANSFER_COLOUR: &str = "#009E73";

/// Accuracy against photos per class, with lesson 02's result for contrast when there is one.
#[component]
fn SweepChart() -> impl IntoView {
    let run = expect_context::<RunState>();
    let geometry = move || {
        let mut points: Vec<SweepPoint> = run.sweep.get();
        points.sort_by_key(|p| p.photos_per_class);
        let most = points.last().map_or(1, |p| p.photos_per_class).max(1) as f64;
        let x = move |n: usize| SWEEP_MARGIN + n as f64 / most * (SWEEP_WIDTH - 2.0 * SWEEP_MARGIN);
        let y =
            |a: f32| SWEEP_HEIGHT - SWEEP_MARGIN - a as f64 * (SWEEP_HEIGHT - 2.0 * SWEEP_MARGIN);
        let line = points
            .iter()
            .map(|p| {
                format!(
                    "{:.1},{:.1}",
                    x(p.photos_per_class),
                    y(p.validation_accuracy)
                )
            })
            .collect::<Vec<_>>()
            .join(" ");
        let transfer = run.result.get().map(|r| y(r.validation.accuracy));
        (points, line, transfer, x, y)
    };
    let data = move || serde_json::to_string(&geometry().0).unwrap_or_default();
    view! {
        <figure class="chart sweep" data-testid="sweep" data-points=data>
            <figcaption>"Validation accuracy against photos per class"</figcaption>
            <svg viewBox=format!("0 0 {SWEEP_WIDTH} {SWEEP_HEIGHT}") role="img"
                aria-label="Validation accuracy against the number of training photos per class">
                <line x1=SWEEP_MARGIN y1=SWEEP_HEIGHT - SWEEP_MARGIN x2=SWEEP_WIDTH - SWEEP_MARGIN
                    y2=SWEEP_HEIGHT - SWEEP_MARGIN class="axis"/>
                <line x1=SWEEP_MARGIN y1=SWEEP_MARGIN x2=SWEEP_MARGIN
                    y2=SWEEP_HEIGHT - SWEEP_MARGIN class="axis"/>
                <text x=4 y=SWEEP_MARGIN + 4.0 class="tick">"100%"</text>
                <text x=4 y=SWEEP_HEIGHT - SWEEP_MARGIN class="tick">"0"</text>
                <polyline points=move || geometry().1 fill="none" stroke=SCRATCH_COLOUR
                    stroke-width="2.5"/>
                {move || {
                    let (points, _, _, x, y) = geometry();
                    points
                        .into_iter()
                        .map(|p| {
                            let (cx, cy) = (x(p.photos_per_class), y(p.validation_accuracy));
                            view! {
                                <circle class="sweep-point" cx=cx cy=cy r="5"
                                    fill=SCRATCH_COLOUR/>
                                <text x=cx y=SWEEP_HEIGHT - SWEEP_MARGIN + 16.0 class="tick"
                                    text-anchor="middle">{p.photos_per_class}</text>
                                <text x=cx y=cy - 10.0 class="tick" text-anchor="middle">
                                    {percent(p.validation_accuracy)}
                                </text>
                            }
                        })
                        .collect_view()
                }}
                {move || geometry().2.map(|ty| view! {
                    <line x1=SWEEP_MARGIN y1=ty x2=SWEEP_WIDTH - SWEEP_MARGIN y2=ty
                        stroke=TRANSFER_COLOUR stroke-width="2" stroke-dasharray="6 3"
                        data-testid="sweep-transfer"/>
                })}
            </svg>
            <p class="legend">
                <span style=format!("color:{SCRATCH_COLOUR}")>"● CNN from scratch"</span>
                <span style=format!("color:{TRANSFER_COLOUR}")>
                    {move || match run.result.get() {
                        Some(r) => format!(
                            "╍ lesson 02, feature extraction: {}",
                            percent(r.validation.accuracy)
                        ),
                        None => "╍ lesson 02 appears here once it has run".into(),
                    }}
                </span>
            </p>
        </figure>
    }
}
