//! Lesson 03: fine-tuning the top of MobileNetV2, starting from lesson 02's head, with a low
//! learning rate; and what a learning rate 100 times larger does to it.

use leptos::prelude::*;
use transfer_lab_model::fine_tune::{
    FineTuneConfig, StageParameters, block_count, stage_parameters, trainable_fraction,
};
use transfer_lab_model::head::HeadTrainingConfig;

use super::RunState;
use super::chart::{CurveChart, Metric};
use super::home::BigResult;
use super::lesson02::NumberField;
use super::messages::RunMessages;
use super::model_file::DownloadButton;
use super::progress::{DownloadBar, ProgressBar};
use super::results::{EvaluationTables, PhotoCredits};
use super::run_state::Lesson;
use super::settings::UrlOptions;
use super::shell::{LessonOpening, QuestionsStep, Step};
use crate::course::Screen;
use crate::course::{FEATURE_EXTRACTION, FINE_TUNING, SCRATCH, percent};
use crate::protocol::{BackendChoice, ExperimentResult, FineTuneExperiment, FineTuneRun};

/// The course's Keras version of this lesson.
const KERAS_CODE: &str = "\
base.trainable = True
for layer in base.layers[:int(len(base.layers) * 0.8)]:
    layer.trainable = False          # keep the bottom 80% frozen
model.compile(optimizer=Adam(1e-5),  # a low learning rate
              loss='sparse_categorical_crossentropy')
model.fit(train_data, validation_data=val_data, epochs=10,
          callbacks=[EarlyStopping(restore_best_weights=True)])";

/// What this tab runs for the same idea.
const APP_STEPS: &str = "\
frozen   = stem + blocks below the boundary (no gradients)
cache    = frozen(photo) once per photo (and its mirror image)
start    = lesson 02's head on the frozen backbone
train    = blocks from the boundary + head_conv + head, Adam, low LR
each epoch: validation accuracy; keep the best, stop after 4 without a gain";

/// How many times larger the learning rate of the "what if" run is.
const LARGE_RATE_FACTOR: f64 = 100.0;
/// Epochs of the "what if" run: enough to see the damage, short enough for a class.
const LARGE_RATE_EPOCHS: usize = 3;
const MODEL_NAME: &str = "lesson03-mobilenet_v2-fine-tuned.tlmodel";

/// This lesson's number in the course.
const LESSON: &str = "03";

/// The lesson panel.
#[component]
pub fn FineTuningLesson() -> impl IntoView {
    let run = expect_context::<RunState>();
    let defaults = FineTuneConfig::default();
    let url = UrlOptions::from_location();
    let first_trainable_block = RwSignal::new(defaults.first_trainable_block);
    let settings = FineTuneSettings {
        first_trainable_block,
        epochs: RwSignal::new(url.epochs.unwrap_or(defaults.epochs)),
        learning_rate: RwSignal::new(defaults.learning_rate),
        patience: RwSignal::new(defaults.patience),
        augment: RwSignal::new(defaults.augment),
        force_cpu: RwSignal::new(url.force_cpu),
    };
    view! {
        <section class="lesson" aria-labelledby="lesson03-title">
            <h2 id="lesson03-title">
                "Lesson 03 · Fine-tuning: adapting the top of the backbone"
            </h2>
            <LessonOpening lesson=LESSON keras=KERAS_CODE app=APP_STEPS>
                <Explanation/>
            </LessonOpening>
            <Step lesson=LESSON screen=Screen::Layers>
                <BlockDiagram first_trainable_block/>
            </Step>
            <Step lesson=LESSON screen=Screen::Run>
                <FineTuneControls settings/>
                <Show when=move || run.is_lesson(Lesson::FineTuning)>
                    <FineTuneProgress/>
                    <RunMessages/>
                </Show>
            </Step>
            <Step lesson=LESSON screen=Screen::Results>
                <BigResult lesson=LESSON/>
                <div class="details">
                    <FineTuneOutcome/>
                </div>
                <Show when=move || run.fine_tune_result.with(Option::is_some)>
                    <Experiments/>
                </Show>
                <div class="details">
                    <LessonComparison/>
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
                "Lesson 02 kept the whole backbone frozen. Its lower layers find edges and "
                "textures that suit any photo, but its top layers were shaped for ImageNet's "
                "1,000 classes. " <em>"Fine-tuning"</em> " unfreezes only those top layers and "
                "trains them together with lesson 02's head, so they adapt to flowers."
            </p>
            <p>
                "Two rules keep what was learned: start from the trained head (a random head "
                "would send large, noisy gradients into the pretrained weights), and use a "
                <em>"small learning rate"</em> ", so the weights move a little. The frozen "
                "lower part never changes, so each photo goes through it once and its output "
                "at the boundary is cached: every epoch only runs the top."
            </p>
        </div>
    }
}

/// The lesson's settings, shared by the controls and the diagram.
#[derive(Clone, Copy)]
struct FineTuneSettings {
    first_trainable_block: RwSignal<usize>,
    epochs: RwSignal<usize>,
    learning_rate: RwSignal<f64>,
    patience: RwSignal<usize>,
    augment: RwSignal<bool>,
    force_cpu: RwSignal<bool>,
}

/// Compact parameter count: `2.2k`, `412k`, `1.6M`.
fn count(parameters: usize) -> String {
    match parameters {
        n if n >= 1_000_000 => format!("{:.1}M", n as f64 / 1e6),
        n if n >= 10_000 => format!("{}k", n / 1000),
        n if n >= 1_000 => format!("{:.1}k", n as f64 / 1e3),
        n => n.to_string(),
    }
}

/// Which stages of the network are frozen and which train, with their parameter counts.
#[component]
fn BlockDiagram(first_trainable_block: RwSignal<usize>) -> impl IntoView {
    let classes = 5;
    let stages = move || stage_parameters(first_trainable_block.get(), classes);
    let summary = move || {
        let block = first_trainable_block.get();
        let trainable: usize = stages()
            .iter()
            .filter(|s| s.trains)
            .map(|s| s.parameters)
            .sum();
        let unfrozen = if block >= block_count() {
            "head_conv and the head train".to_string()
        } else {
            format!(
                "Blocks {block}–{}, head_conv and the head train",
                block_count() - 1
            )
        };
        format!(
            "{unfrozen}: {} parameters, {:.1}% of the backbone's. Everything to the left stays \
             frozen.",
            count(trainable),
            trainable_fraction(block) * 100.0
        )
    };
    view! {
        <figure class="blocks" data-testid="block-diagram">
            <figcaption>"MobileNetV2, input on the left · "
                <span class="frozen-key">"frozen"</span> " · "
                <span class="trains-key">"trains"</span>
            </figcaption>
            <ol class="stages">
                {move || stages().into_iter().map(|stage| view! { <Stage stage/> }).collect_view()}
            </ol>
            <p data-testid="trainable-summary">{summary}</p>
        </figure>
    }
}

#[component]
fn Stage(stage: StageParameters) -> impl IntoView {
    let [channels, height, width] = stage.output_shape;
    let label = stage.name.replace("blocks.", "b");
    let title = format!(
        "{}: {} parameters, output {channels}x{height}x{width}, {}",
        stage.name,
        stage.parameters,
        if stage.trains { "trains" } else { "frozen" }
    );
    view! {
        <li class="stage" class:trains=stage.trains class:frozen=!stage.trains title=title
            data-trains=stage.trains.to_string()>
            <span class="stage-name">{label}</span>
            <span class="stage-count">{count(stage.parameters)}</span>
        </li>
    }
}

#[component]
fn FineTuneControls(settings: FineTuneSettings) -> impl IntoView {
    let run = expect_context::<RunState>();
    let start = move |_| {
        let url = UrlOptions::from_location();
        let defaults = FineTuneConfig::default();
        run.start_fine_tuning(FineTuneRun {
            backend: if settings.force_cpu.get() {
                BackendChoice::Cpu
            } else {
                BackendChoice::Auto
            },
            train_per_class: url.train_per_class,
            validation_per_class: url.validation_per_class,
            start_head: run
                .result
                .with_untracked(|r| r.as_ref().map(|r| r.head.clone())),
            head_training: HeadTrainingConfig::default(),
            fine_tuning: FineTuneConfig {
                epochs: settings.epochs.get().max(1),
                learning_rate: settings.learning_rate.get(),
                patience: settings.patience.get().max(1),
                augment: settings.augment.get(),
                first_trainable_block: settings.first_trainable_block.get().min(block_count()),
                ..defaults
            },
            assets_base: "generated/".into(),
        });
    };
    let busy = Signal::derive(move || run.busy());
    view! {
        <form class="controls" on:submit=|ev| ev.prevent_default()>
            <NumberField label="First trainable block (0–17; 17: only head_conv)"
                value=settings.first_trainable_block
                min="0" step="1" disabled=busy/>
            <NumberField label="Learning rate" value=settings.learning_rate min="0"
                step="0.00001" disabled=busy/>
            <NumberField label="Most epochs" value=settings.epochs min="1" step="1"
                disabled=busy/>
            <NumberField label="Patience (epochs)" value=settings.patience min="1" step="1"
                disabled=busy/>
            <label>
                <input type="checkbox" prop:checked=move || settings.augment.get()
                    on:change=move |ev| settings.augment.set(event_target_checked(&ev))
                    prop:disabled=move || busy.get()/>
                " Augmentation (mirrored photos)"
            </label>
            <label>
                <input type="checkbox" prop:checked=move || settings.force_cpu.get()
                    on:change=move |ev| settings.force_cpu.set(event_target_checked(&ev))
                    prop:disabled=move || busy.get()/>
                " Use the CPU even if WebGPU is available"
            </label>
            <div class="buttons">
                <button type="button" class="primary" data-testid="train-fine-tune" on:click=start
                    prop:disabled=move || busy.get() || !run.worker_ready.get()>
                    "Fine-tune"
                </button>
                <button type="button" data-testid="stop-fine-tune" on:click=move |_| run.stop()
                    prop:disabled=move || !run.running.get() && !run.experiment_running.get()>
                    "Stop"
                </button>
            </div>
            <p class="hint">
                {move || {
                    let start = if run.result.with(Option::is_some) {
                        "It starts from the head that lesson 02 trained in this tab."
                    } else {
                        "Lesson 02 has not run in this tab, so it trains lesson 02's head first."
                    };
                    format!(
                        "Learning rate {} (lesson 02's head trained at {}). {start}",
                        settings.learning_rate.get(),
                        HeadTrainingConfig::default().learning_rate
                    )
                }}
            </p>
        </form>
    }
}

#[component]
fn FineTuneProgress() -> impl IntoView {
    let run = expect_context::<RunState>();
    let cache = run.extraction;
    let epochs = run.epochs;
    view! {
        <div class="run-progress">
            <p class="phase" data-testid="fine-tune-phase" aria-live="polite">
                {move || run.phase.get()}
            </p>
            <DownloadBar test_id="fine-tune-download-progress"/>
            <ProgressBar
                label="Boundary cache"
                test_id="cache-progress"
                done=Signal::derive(move || cache.get().photos_done as f64)
                total=Signal::derive(move || cache.get().photos_total as f64)
                caption=Signal::derive(move || {
                    let c = cache.get();
                    format!(
                        "{} / {} photos (mirrored ones included) · {:.1} photos/s · {:.1} MB",
                        c.photos_done,
                        c.photos_total,
                        c.photos_per_second,
                        c.cache_bytes as f64 / 1e6
                    )
                })
            />
            {move || run.fine_tune_start.get().map(|start| view! {
                <p data-testid="fine-tune-start">
                    "Starting point (lesson 02): " {percent(start.lesson02_accuracy)}
                    " validation accuracy."
                </p>
            })}
            <div class="charts">
                <CurveChart epochs=epochs metric=Metric::Accuracy/>
                <CurveChart epochs=epochs metric=Metric::Loss/>
            </div>
        </div>
    }
}

#[component]
fn FineTuneOutcome() -> impl IntoView {
    let run = expect_context::<RunState>();
    move || {
        let result = run.fine_tune_result.get()?;
        let before = result.start.lesson02_accuracy;
        let after = result.validation.accuracy;
        let gain = (after - before) * 100.0;
        let ending = match (result.stopped_by_student, result.early_stopped) {
            (true, _) => "You stopped the run".to_string(),
            (false, true) => format!(
                "Early stopping ended the run after {} epochs without a better validation accuracy",
                result.config.patience
            ),
            (false, false) => "All epochs ran".to_string(),
        };
        let best = result
            .best_epoch
            .map_or("the starting weights".to_string(), |e| format!("epoch {e}"));
        let file = Signal::derive(move || {
            run.fine_tune_result
                .with(|r| r.as_ref().map(|r| r.model_file.clone()))
        });
        Some(view! {
            <section class="results" data-testid="fine-tune-results"
                data-lesson02=format!("{before:.4}") data-lesson03=format!("{after:.4}")
                data-epochs=result.epochs_done data-best-epoch=result.best_epoch.unwrap_or(0)
                data-seconds-per-epoch=format!("{:.3}", result.seconds_per_epoch)
                data-predictions=serde_json::to_string(&result.validation.predictions)
                    .unwrap_or_default()>
                <h3>"Result"</h3>
                <p class="big-number">
                    {percent(before)} " → " <strong>{percent(after)}</strong>
                    " validation accuracy (" {format!("{gain:+.1}")} " points)"
                </p>
                <p data-testid="fine-tune-verdict">{FINE_TUNING.verdict(after)}</p>
                <p>
                    {ending} "; the weights of " {best} " (of " {result.epochs_done} ") are kept. "
                    "That epoch was chosen on these same validation photos, which flatters the "
                    "number a little: photos that played no part in any choice are the fair test "
                    "(" <code>"transfer-lab eval --full"</code> " measures 461 more)."
                </p>
                <p class="timings">
                    {result.train_photos} " training photos on the " {result.backend.clone()}
                    " backend. Boundary cache: " {format!("{:.1}", result.cache_bytes as f64 / 1e6)}
                    " MB, filled in " {format!("{:.1}", result.cache_seconds)} " s; "
                    {format!("{:.1}", result.seconds_per_epoch)} " s per fine-tuning epoch."
                </p>
                <PhotoCredits credits=result.validation_credits.clone()/>
                <EvaluationTables classes=result.classes.clone()
                    evaluation=result.validation.clone()/>
                <div class="buttons">
                    <DownloadButton file name=MODEL_NAME test_id="download-fine-tuned"/>
                </div>
            </section>
        })
    }
}

/// Follow-up runs on the cached activations: a much larger learning rate, and the cache's
/// speed-up.
#[component]
fn Experiments() -> impl IntoView {
    let run = expect_context::<RunState>();
    let large_rate = move |_| {
        run.start_experiment(FineTuneExperiment::LargeLearningRate {
            factor: LARGE_RATE_FACTOR,
            epochs: LARGE_RATE_EPOCHS,
        })
    };
    let cache_speed = move |_| run.start_experiment(FineTuneExperiment::CacheSpeed);
    let busy = move || run.busy();
    view! {
        <section class="experiments" aria-labelledby="experiments-title">
            <h3 id="experiments-title">"Experiments"</h3>
            <div class="buttons">
                <button type="button" data-testid="large-learning-rate" on:click=large_rate
                    prop:disabled=busy>
                    "What if the learning rate is 100x larger?"
                </button>
                <button type="button" data-testid="cache-speed" on:click=cache_speed
                    prop:disabled=busy>
                    "Time one epoch with and without the cache"
                </button>
            </div>
            <Show when=move || run.experiment_running.get()>
                <p class="phase" aria-live="polite">{move || run.phase.get()}</p>
            </Show>
            <Show when=move || run.experiment_error.get().is_some()>
                <p class="error" role="alert" data-testid="experiment-error">
                    {move || run.experiment_error.get()}
                </p>
            </Show>
            <Show when=move || !run.experiment_epochs.with(Vec::is_empty)>
                <div class="charts">
                    <CurveChart epochs=run.experiment_epochs metric=Metric::Accuracy/>
                    <CurveChart epochs=run.experiment_epochs metric=Metric::Loss/>
                </div>
            </Show>
            {move || {
                run.experiment_results
                    .get()
                    .into_iter()
                    .map(|result| view! { <ExperimentOutcome result/> })
                    .collect_view()
            }}
        </section>
    }
}

#[component]
fn ExperimentOutcome(result: ExperimentResult) -> impl IntoView {
    match result {
        ExperimentResult::LargeLearningRate {
            learning_rate,
            start_accuracy,
            epochs,
        } => {
            let last = epochs
                .last()
                .and_then(|e| e.validation)
                .map_or(0.0, |v| v.accuracy);
            let worst = epochs
                .iter()
                .filter_map(|e| e.validation.map(|v| v.accuracy))
                .fold(1.0f32, f32::min);
            let verdict = if worst < start_accuracy {
                format!(
                    "Its worst epoch lost {:.1} points of what lesson 02 had: large steps \
                     overwrite the pretrained features instead of adjusting them, and the \
                     accuracy jumps from epoch to epoch instead of settling.",
                    (start_accuracy - worst) * 100.0
                )
            } else {
                "This time no epoch lost accuracy, but compare its loss curve with the main \
                 run's: the steps are far less steady."
                    .to_string()
            };
            view! {
                <p data-testid="large-lr-result" data-start=format!("{start_accuracy:.4}")
                    data-final=format!("{last:.4}") data-worst=format!("{worst:.4}")>
                    "Learning rate " {learning_rate} ": from " {percent(start_accuracy)} " to "
                    <strong>{percent(last)}</strong> " after " {epochs.len()} " epochs. "
                    {verdict}
                </p>
            }
            .into_any()
        }
        ExperimentResult::CacheSpeed {
            cached_seconds,
            uncached_seconds,
            photos,
            backend,
        } => view! {
            <p data-testid="cache-speed-result" data-cached=format!("{cached_seconds:.3}")
                data-uncached=format!("{uncached_seconds:.3}")>
                "One epoch over " {photos} " photos on the " {backend} " backend: "
                <strong>{format!("{cached_seconds:.1} s")}</strong> " from the cache, "
                {format!("{uncached_seconds:.1} s")} " running the frozen blocks again for "
                "every batch — the cache is "
                {format!("{:.1}", uncached_seconds / cached_seconds.max(1e-9))} "x faster."
            </p>
        }
        .into_any(),
    }
}

/// Lessons 01-03 as measured in this tab, beside the course's claims.
#[component]
fn LessonComparison() -> impl IntoView {
    let run = expect_context::<RunState>();
    let measured = |value: Option<f32>| value.map(percent).unwrap_or_else(|| "not run yet".into());
    let claim = |c: crate::course::Claim| format!("{}–{}", percent(c.low), percent(c.high));
    view! {
        <table class="comparison" data-testid="lesson-comparison">
            <caption>"Validation accuracy in this tab against the course's claims"</caption>
            <thead>
                <tr><th scope="col">"Lesson"</th><th scope="col">"Measured here"</th>
                    <th scope="col">"Course"</th></tr>
            </thead>
            <tbody>
                <tr data-lesson="01">
                    <th scope="row">"01 · CNN from scratch"</th>
                    <td class="number">
                        {move || measured(run.scratch_result.get().map(|r| r.validation.accuracy))}
                    </td>
                    <td class="number">{claim(SCRATCH)}</td>
                </tr>
                <tr data-lesson="02">
                    <th scope="row">"02 · Feature extraction"</th>
                    <td class="number">
                        {move || measured(run.result.get().map(|r| r.validation.accuracy).or_else(
                            || run.fine_tune_start.get().map(|s| s.lesson02_accuracy)))}
                    </td>
                    <td class="number">{claim(FEATURE_EXTRACTION)}</td>
                </tr>
                <tr data-lesson="03">
                    <th scope="row">"03 · Fine-tuning"</th>
                    <td class="number">
                        {move || measured(run.fine_tune_result.get()
                            .map(|r| r.validation.accuracy))}
                    </td>
                    <td class="number">{claim(FINE_TUNING)}</td>
                </tr>
            </tbody>
        </table>
    }
}
