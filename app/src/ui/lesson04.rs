//! Lesson 04: the model zoo. MobileNetV2, VGG16 and ResNet50 measured in this tab on size,
//! speed, training time and accuracy, then a "which model when" guide written from those
//! numbers.

use leptos::prelude::*;
use transfer_lab_model::backbone::BackboneKind;
use transfer_lab_model::head::HeadTrainingConfig;

use super::RunState;
use super::home::BigResult;
use super::lesson02::NumberField;
use super::messages::RunMessages;
use super::progress::{DownloadBar, ProgressBar};
use super::run_state::Lesson;
use super::settings::UrlOptions;
use super::shell::{LessonOpening, QuestionsStep, Step};
use crate::course::Screen;
use crate::course::percent;
use crate::protocol::{BackendChoice, ZooRow, ZooRun};
use crate::zoo_guide::{COURSE_ZOO, decision_guide};

/// The course's Keras version of this lesson.
const KERAS_CODE: &str = "\
for name, App in [('VGG16', VGG16), ('ResNet50', ResNet50),
                  ('MobileNetV2', MobileNetV2)]:
    base = App(weights='imagenet', include_top=False,
               pooling='avg', input_shape=(224, 224, 3))
    base.trainable = False
    model = Sequential([base, Dense(5, activation='softmax')])
    model.fit(train_data, validation_data=val_data, epochs=10)";

/// What this tab runs for the same idea.
const APP_STEPS: &str = "\
for each backbone (MobileNetV2, VGG16, ResNet50):
  check its largest buffer against this device's limit
  weights installed? load them : random weights (speed only)
  time one photo (after a warm-up pass), then photos/s
  installed: cache features, train lesson 02's head, evaluate
guide = the measured rows, sorted by speed and accuracy";

/// Photos timed on a backbone without weights, unless the address says otherwise.
const DEFAULT_SPEED_PHOTOS: usize = 8;

/// This lesson's number in the course.
const LESSON: &str = "04";

/// The lesson panel.
#[component]
pub fn ModelZooLesson() -> impl IntoView {
    let run = expect_context::<RunState>();
    view! {
        <section class="lesson" aria-labelledby="lesson04-title">
            <h2 id="lesson04-title">"Lesson 04 · The model zoo: which backbone when?"</h2>
            <LessonOpening lesson=LESSON keras=KERAS_CODE app=APP_STEPS>
                <Explanation/>
            </LessonOpening>
            <Step lesson=LESSON screen=Screen::Run>
                <ZooControls/>
                <Show when=move || run.is_lesson(Lesson::ModelZoo)>
                    <ZooProgress/>
                    <RunMessages/>
                </Show>
            </Step>
            <Step lesson=LESSON screen=Screen::Results>
                <BigResult lesson=LESSON/>
                <div class="details">
                    <Show when=move || !run.zoo_rows.get().is_empty()>
                        <ZooTable/>
                        <ZooCharts/>
                    </Show>
                    <Show when=move || run.zoo_result.get().is_some()>
                        <DecisionGuide/>
                    </Show>
                    <CourseTable/>
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
                "Lessons 02 and 03 used MobileNetV2. It is not the only pretrained network: "
                "VGG16 (2014) is a plain stack of convolutions, ResNet50 (2015) adds shortcut "
                "connections that let it go deeper, and MobileNetV2 (2018) is built to be small "
                "and fast. Each trades size and speed against accuracy."
            </p>
            <p>
                "Here every backbone runs in this tab, on this device: its size, how many "
                "photos per second it turns into features, how long one photo takes, and — "
                "where its pretrained weights are installed — how accurate lesson 02's head "
                "becomes on top of it. A backbone without weights still runs its real "
                "architecture (with random weights) so its size and speed are real."
            </p>
        </div>
    }
}

#[component]
fn ZooControls() -> impl IntoView {
    let run = expect_context::<RunState>();
    let url = UrlOptions::from_location();
    let speed_photos = RwSignal::new(url.zoo_speed_photos.unwrap_or(DEFAULT_SPEED_PHOTOS));
    let force_cpu = RwSignal::new(url.force_cpu);
    let start = move |_| {
        let url = UrlOptions::from_location();
        run.start_model_zoo(ZooRun {
            backend: if force_cpu.get() {
                BackendChoice::Cpu
            } else {
                BackendChoice::Auto
            },
            train_per_class: url.train_per_class,
            validation_per_class: url.validation_per_class,
            speed_photos: speed_photos.get().max(1),
            head_training: HeadTrainingConfig::default(),
            assets_base: "generated/".into(),
        });
    };
    let idle = move || !(run.running.get() && run.is_lesson(Lesson::ModelZoo));
    let busy = Signal::derive(move || run.busy());
    view! {
        <form class="controls" on:submit=|ev| ev.prevent_default()>
            <NumberField label="Photos timed without weights" value=speed_photos min="1"
                step="1" disabled=busy/>
            <label>
                <input type="checkbox" prop:checked=move || force_cpu.get()
                    on:change=move |ev| force_cpu.set(event_target_checked(&ev))
                    prop:disabled=move || busy.get()/>
                " Use the CPU even if WebGPU is available"
            </label>
            <div class="buttons">
                <button type="button" class="primary" data-testid="train-zoo" on:click=start
                    prop:disabled=move || run.busy() || !run.worker_ready.get()>
                    "Compare the backbones"
                </button>
                <button type="button" data-testid="stop-zoo" on:click=move |_| run.stop()
                    prop:disabled=idle>
                    "Stop"
                </button>
            </div>
            <p class="hint">
                "Lesson 02's head training (30 epochs) runs on every backbone whose weights are "
                "installed. VGG16 is slow on a CPU: expect about a minute for it alone."
            </p>
        </form>
    }
}

#[component]
fn ZooProgress() -> impl IntoView {
    let run = expect_context::<RunState>();
    let extraction = run.extraction;
    view! {
        <div class="run-progress">
            <p class="phase" data-testid="phase" aria-live="polite">{move || run.phase.get()}</p>
            <DownloadBar test_id="zoo-download-progress"/>
            <ProgressBar
                label="Backbone"
                test_id="zoo-extraction-progress"
                done=Signal::derive(move || extraction.get().photos_done as f64)
                total=Signal::derive(move || extraction.get().photos_total as f64)
                caption=Signal::derive(move || {
                    let e = extraction.get();
                    format!(
                        "{} / {} photos · {:.2} photos/s",
                        e.photos_done, e.photos_total, e.photos_per_second
                    )
                })
            />
        </div>
    }
}

fn megabytes(bytes: u64) -> String {
    format!("{:.1} MB", bytes as f64 / 1e6)
}

fn millions(parameters: usize) -> String {
    format!("{:.1}M", parameters as f64 / 1e6)
}

#[component]
fn ZooTable() -> impl IntoView {
    let run = expect_context::<RunState>();
    let caption = move || match run.zoo_result.get() {
        Some(result) => format!(
            "Measured in this tab on the {} backend ({} training, {} validation photos; at \
             most {} per buffer)",
            result.backend,
            result.train_photos,
            result.validation_photos,
            megabytes(result.buffer_limit_bytes)
        ),
        None => "Measured in this tab so far".into(),
    };
    view! {
        <table class="zoo" data-testid="zoo-table">
            <caption>{caption}</caption>
            <thead>
                <tr>
                    <th scope="col">"Backbone"</th>
                    <th scope="col">"Parameters"</th>
                    <th scope="col">"Download"</th>
                    <th scope="col">"Photos/s"</th>
                    <th scope="col">"One photo"</th>
                    <th scope="col">"Head training"</th>
                    <th scope="col">"Validation accuracy"</th>
                </tr>
            </thead>
            <tbody>
                <For each=move || run.zoo_rows.get() key=|row| row.backbone.clone() let(row)>
                    <ZooTableRow row/>
                </For>
            </tbody>
        </table>
    }
}

#[component]
fn ZooTableRow(row: ZooRow) -> impl IntoView {
    let size = if row.installed {
        megabytes(row.download_bytes)
    } else {
        format!("≈ {} (estimated)", megabytes(row.download_bytes))
    };
    let speed = row.photos_per_second.map_or("–".into(), |s| {
        format!("{s:.2} ({} photos)", row.photos_timed)
    });
    let latency = row
        .latency_ms
        .map_or("–".into(), |ms| format!("{ms:.0} ms"));
    let head = row.head_seconds.map_or("–".into(), |s| format!("{s:.1} s"));
    let accuracy = match row.validation_accuracy {
        Some(a) => percent(a),
        None if !row.installed => "no weights installed".into(),
        None => "–".into(),
    };
    let note = row.note.clone().or_else(|| row.install.clone());
    view! {
        <tr data-testid="zoo-row" data-backbone=row.backbone.clone()
            data-installed=row.installed.to_string()
            data-parameters=row.parameters
            data-latency=row.latency_ms.unwrap_or(-1.0)
            data-photos-per-second=row.photos_per_second.unwrap_or(-1.0)
            data-accuracy=row.validation_accuracy.unwrap_or(-1.0)>
            <th scope="row">{row.name.clone()}</th>
            <td>{millions(row.parameters)}</td>
            <td>{size}</td>
            <td>{speed}</td>
            <td>{latency}</td>
            <td>{head}</td>
            <td>{accuracy}</td>
        </tr>
        {note.map(|note| view! {
            <tr class="zoo-note" data-testid="zoo-note" data-backbone=row.backbone.clone()>
                <td colspan="7">{note}</td>
            </tr>
        })}
    }
}

/// Horizontal bars of one measured quantity per backbone.
#[component]
fn BarChart(
    title: &'static str,
    /// `(backbone name, value, label)` per bar; bars without a value are left out.
    bars: Vec<(String, f64, String)>,
    test_id: &'static str,
) -> impl IntoView {
    const WIDTH: f64 = 480.0;
    const LABEL: f64 = 110.0;
    const ROW: f64 = 28.0;
    let most = bars.iter().map(|b| b.1).fold(0.0_f64, f64::max).max(1e-9);
    let height = ROW * bars.len() as f64 + 8.0;
    let rows = bars
        .into_iter()
        .enumerate()
        .map(|(i, (name, value, label))| {
            let y = 4.0 + ROW * i as f64;
            let length = (WIDTH - LABEL - 120.0) * value / most;
            view! {
                <text x="4" y=y + 18.0 class="tick">{name}</text>
                <rect x=LABEL y=y + 4.0 width=length.max(1.0) height=ROW - 10.0 class="bar"/>
                <text x=LABEL + length + 6.0 y=y + 18.0 class="tick">{label}</text>
            }
        })
        .collect_view();
    view! {
        <figure class="chart bars" data-testid=test_id>
            <figcaption>{title}</figcaption>
            <svg viewBox=format!("0 0 {WIDTH} {height}") role="img" aria-label=title>
                {rows}
            </svg>
        </figure>
    }
}

#[component]
fn ZooCharts() -> impl IntoView {
    let run = expect_context::<RunState>();
    move || {
        let rows = run.zoo_rows.get();
        let speed = rows
            .iter()
            .filter_map(|r| {
                r.photos_per_second
                    .map(|s| (r.name.clone(), s, format!("{s:.2} photos/s")))
            })
            .collect();
        let size = rows
            .iter()
            .map(|r| {
                let mb = r.download_bytes as f64 / 1e6;
                (r.name.clone(), mb, format!("{mb:.1} MB"))
            })
            .collect();
        view! {
            <div class="charts">
                <BarChart title="Speed in this tab (more is better)" bars=speed
                    test_id="zoo-speed-chart"/>
                <BarChart title="Download size (less is better)" bars=size
                    test_id="zoo-size-chart"/>
            </div>
        }
    }
}

#[component]
fn DecisionGuide() -> impl IntoView {
    let run = expect_context::<RunState>();
    let advice = move || {
        decision_guide(&run.zoo_rows.get())
            .into_iter()
            .map(|advice| {
                let pick = advice.backbone.unwrap_or_else(|| "no pick yet".into());
                view! {
                    <li>
                        <strong>{advice.scenario}</strong> " → " <em>{pick}</em> ". "
                        {advice.reason}
                    </li>
                }
            })
            .collect_view()
    };
    view! {
        <section class="guide" data-testid="decision-guide">
            <h3>"Which model when? (from the numbers above)"</h3>
            <ul>{advice}</ul>
        </section>
    }
}

#[component]
fn CourseTable() -> impl IntoView {
    let rows = COURSE_ZOO
        .iter()
        .map(|row| {
            let name =
                BackboneKind::from_id(row.backbone).map_or(row.backbone, |k| k.display_name());
            view! {
                <tr>
                    <th scope="row">{name}</th>
                    <td>{row.size}</td>
                    <td>{percent(row.accuracy)}</td>
                    <td>{row.training_time}</td>
                    <td>{row.best_for}</td>
                </tr>
            }
        })
        .collect_view();
    view! {
        <table class="course-zoo" data-testid="course-zoo">
            <caption>
                "What the course reports (Keras on a Colab GPU; sizes include the ImageNet "
                "classifier)"
            </caption>
            <thead>
                <tr>
                    <th scope="col">"Backbone"</th>
                    <th scope="col">"Size"</th>
                    <th scope="col">"Accuracy"</th>
                    <th scope="col">"Training"</th>
                    <th scope="col">"Best for"</th>
                </tr>
            </thead>
            <tbody>{rows}</tbody>
        </table>
    }
}
