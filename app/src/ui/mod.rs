//! The page: a header, the backend in use, and the lesson panels.

mod chart;
mod code;
mod lesson01;
mod lesson02;
mod lesson03;
mod lesson04;
mod messages;
mod model_file;
mod progress;
mod results;
mod run_state;
mod settings;

use leptos::prelude::*;

pub use run_state::RunState;

/// The whole page.
#[component]
pub fn App() -> impl IntoView {
    let run = RunState::connect();
    provide_context(run);
    view! {
        <header class="top">
            <h1>"Transfer Lab"</h1>
            <p class="tagline">
                "Train real image classifiers in this tab, on your own machine. "
                "Nothing is uploaded."
            </p>
            <BackendBadge/>
        </header>
        <main>
            <lesson01::ScratchLesson/>
            <lesson02::FeatureExtractionLesson/>
            <lesson03::FineTuningLesson/>
            <lesson04::ModelZooLesson/>
        </main>
        <footer>
            "Photos: TensorFlow Flowers, CC BY 2.0 (each author is credited with the results). "
            "Weights: MobileNetV2, Apache-2.0; VGG16 and ResNet50 (when installed): "
            "torchvision, BSD-3-Clause."
        </footer>
        // Present only once the worker listens: tests wait for it before sending work.
        <Show when=move || run.worker_ready.get()>
            <span data-testid="app-ready" hidden></span>
        </Show>
    }
}

/// Which compute backend the training worker uses.
#[component]
fn BackendBadge() -> impl IntoView {
    let run = expect_context::<RunState>();
    move || match run.backend.get() {
        Some(info) => view! {
            <p class="backend" data-testid="backend" data-backend=info.name.clone()>
                "Backend: " <strong>{info.name.clone()}</strong> " — " {info.detail.clone()}
            </p>
        }
        .into_any(),
        None => view! {
            <p class="backend" data-testid="backend" data-backend="">
                "Backend: chosen when training starts (WebGPU if this browser offers it, else CPU)"
            </p>
        }
        .into_any(),
    }
}
