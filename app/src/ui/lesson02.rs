//! Lesson 02: feature extraction with a frozen, ImageNet-pretrained MobileNetV2.

use leptos::prelude::*;
use transfer_lab_model::head::HeadTrainingConfig;

use super::RunState;
use super::chart::{CurveChart, Metric};
use super::home::BigResult;
use super::messages::RunMessages;
use super::model_file::ModelFilePanel;
use super::progress::{DownloadBar, ProgressBar};
use super::results::FeatureExtractionResults;
use super::run_state::Lesson;
use super::settings::UrlOptions;
use super::shell::{LessonOpening, QuestionsStep, Step};
use crate::course::Screen;
use crate::protocol::{BackendChoice, FeatureExtractionRun};

/// This lesson's number in the course.
const LESSON: &str = "02";

/// The course's Keras version of this lesson.
const KERAS_CODE: &str = "\
base = ResNet50(weights='imagenet', include_top=False)
base.trainable = False
model = Sequential([base, GlobalAveragePooling2D(), Dense(5, softmax)])
model.compile(optimizer='adam', loss='sparse_categorical_crossentropy')
model.fit(train_data, epochs=5)";

/// What this tab runs for the same idea.
const APP_STEPS: &str = "\
backbone = MobileNetV2 (ImageNet weights, frozen, no gradients)
features = backbone(photo) for every photo, once  -> 1,280 numbers each
head     = Linear(1280 -> 5 classes), softmax
train head with Adam on the cached features, epoch by epoch
evaluate on validation photos the head never saw";

/// The lesson panel.
#[component]
pub fn FeatureExtractionLesson() -> impl IntoView {
    let run = expect_context::<RunState>();
    view! {
        <section class="lesson" aria-labelledby="lesson02-title">
            <h2 id="lesson02-title">"Lesson 02 · Feature extraction: the fast solution"</h2>
            <LessonOpening lesson=LESSON keras=KERAS_CODE app=APP_STEPS>
                <Explanation/>
            </LessonOpening>
            <Step lesson=LESSON screen=Screen::Run>
                <TrainingControls/>
                <Show when=move || run.is_lesson(Lesson::FeatureExtraction)>
                    <RunProgress/>
                </Show>
            </Step>
            <Step lesson=LESSON screen=Screen::Results>
                <BigResult lesson=LESSON/>
                <div class="details">
                    <RunOutcome/>
                    <ModelFilePanel/>
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
                "A network trained on 1.2 million ImageNet photos has already learned to see: its "
                "early layers find edges and colours, its later layers find textures, petals and "
                "shapes. We keep that network (the " <em>"backbone"</em> ") exactly as it is — "
                <em>"frozen"</em> " — and only train a small " <em>"head"</em>
                " that maps its 1,280 numbers per photo to our five flower classes."
            </p>
            <p>
                "Because the backbone never changes, each photo goes through it only once; the "
                "head "
                "then trains in seconds on those cached numbers. With a few hundred photos this "
                "beats a network trained from scratch by a wide margin."
            </p>
        </div>
    }
}

#[component]
fn TrainingControls() -> impl IntoView {
    let run = expect_context::<RunState>();
    let url = UrlOptions::from_location();
    let defaults = HeadTrainingConfig::default();
    let epochs = RwSignal::new(url.epochs.unwrap_or(defaults.epochs));
    let learning_rate = RwSignal::new(defaults.learning_rate);
    let batch_size = RwSignal::new(defaults.batch_size);
    let full_split = RwSignal::new(url.full_training_split);
    let force_cpu = RwSignal::new(url.force_cpu);
    let start = move |_| {
        let url = UrlOptions::from_location();
        run.start_feature_extraction(FeatureExtractionRun {
            backend: if force_cpu.get() {
                BackendChoice::Cpu
            } else {
                BackendChoice::Auto
            },
            full_training_split: full_split.get(),
            train_per_class: url.train_per_class,
            validation_per_class: url.validation_per_class,
            training: HeadTrainingConfig {
                epochs: epochs.get().max(1),
                learning_rate: learning_rate.get(),
                batch_size: batch_size.get().max(1),
                seed: defaults.seed,
            },
            simulate_device_loss_at_epoch: url.simulate_device_loss_at_epoch,
            assets_base: "generated/".into(),
        });
    };
    let idle = move || !run.running.get();
    view! {
        <form class="controls" on:submit=|ev| ev.prevent_default()>
            <NumberField label="Epochs" value=epochs min="1" step="1"
                disabled=Signal::derive(move || !idle())/>
            <NumberField label="Learning rate" value=learning_rate min="0" step="0.0001"
                disabled=Signal::derive(move || !idle())/>
            <NumberField label="Batch size" value=batch_size min="1" step="1"
                disabled=Signal::derive(move || !idle())/>
            <label>
                <input type="checkbox" prop:checked=move || full_split.get()
                    on:change=move |ev| full_split.set(event_target_checked(&ev))
                    prop:disabled=move || !idle()/>
                " Full training split (about 2,600 photos, larger download)"
            </label>
            <label>
                <input type="checkbox" prop:checked=move || force_cpu.get()
                    on:change=move |ev| force_cpu.set(event_target_checked(&ev))
                    prop:disabled=move || !idle()/>
                " Use the CPU even if WebGPU is available"
            </label>
            <div class="buttons">
                <button type="button" data-testid="train" on:click=start
                    prop:disabled=move || run.busy() || !run.worker_ready.get()>
                    "Train"
                </button>
                <button type="button" data-testid="stop" on:click=move |_| run.stop()
                    prop:disabled=idle>
                    "Stop"
                </button>
            </div>
        </form>
    }
}

/// A labelled number input bound to a signal; text that does not parse leaves the value as is.
#[component]
pub(super) fn NumberField<T>(
    label: &'static str,
    value: RwSignal<T>,
    min: &'static str,
    step: &'static str,
    #[prop(into)] disabled: Signal<bool>,
) -> impl IntoView
where
    T: std::str::FromStr + std::fmt::Display + Clone + Send + Sync + 'static,
{
    view! {
        <label>
            {label} " "
            <input type="number" min=min step=step prop:value=move || value.get().to_string()
                on:input=move |ev| {
                    if let Ok(parsed) = event_target_value(&ev).parse() {
                        value.set(parsed);
                    }
                }
                prop:disabled=move || disabled.get()/>
        </label>
    }
}

#[component]
fn RunProgress() -> impl IntoView {
    let run = expect_context::<RunState>();
    let extraction = run.extraction;
    let epochs = run.epochs;
    view! {
        <div class="run-progress">
            <p class="phase" data-testid="phase" aria-live="polite">{move || run.phase.get()}</p>
            <DownloadBar test_id="download-progress"/>
            <ProgressBar
                label="Features"
                test_id="extraction-progress"
                done=Signal::derive(move || extraction.get().photos_done as f64)
                total=Signal::derive(move || extraction.get().photos_total as f64)
                caption=Signal::derive(move || {
                    let e = extraction.get();
                    format!(
                        "{} / {} photos · {:.1} photos/s · cache {:.1} MB",
                        e.photos_done,
                        e.photos_total,
                        e.photos_per_second,
                        e.cache_bytes as f64 / 1e6
                    )
                })
            />
            <p class="epoch-count" data-testid="epoch-count" data-epochs=move || epochs.get().len()
                data-epoch-numbers=move || {
                    let numbers: Vec<usize> = epochs.get().iter().map(|e| e.epoch).collect();
                    serde_json::to_string(&numbers).unwrap_or_default()
                }>
                {move || match epochs.get().last() {
                    Some(last) => format!(
                        "Epoch {} · training accuracy {:.1}% · validation accuracy {}",
                        last.epoch,
                        last.train.accuracy * 100.0,
                        last.validation
                            .map(|v| format!("{:.1}%", v.accuracy * 100.0))
                            .unwrap_or_else(|| "–".into())
                    ),
                    None => "No epoch yet".into(),
                }}
            </p>
            <div class="charts">
                <CurveChart epochs=epochs metric=Metric::Accuracy/>
                <CurveChart epochs=epochs metric=Metric::Loss/>
            </div>
        </div>
    }
}

#[component]
fn RunOutcome() -> impl IntoView {
    let run = expect_context::<RunState>();
    view! {
        <Show when=move || run.is_lesson(Lesson::FeatureExtraction)>
            <RunMessages/>
        </Show>
        {move || run.result.get().map(|result| view! { <FeatureExtractionResults result/> })}
    }
}
