//! The page: a header with the lessons and projector mode, the backend in use, and the pages
//! (home, the four lessons, settings).

mod chart;
mod code;
mod figures;
mod home;
mod lesson01;
mod lesson02;
mod lesson03;
mod lesson04;
mod messages;
mod model_file;
mod progress;
mod questions;
mod results;
mod run_state;
mod saved_progress;
mod settings;
mod settings_page;
mod shell;
mod storage;

use leptos::prelude::*;
use leptos::task::spawn_local;
use wasm_bindgen::JsCast;
use wasm_bindgen_futures::JsFuture;

pub use run_state::RunState;

use crate::course::LESSONS;
use crate::navigation::Route;
use home::HomePage;
use saved_progress::SavedProgress;
use settings_page::SettingsPage;
use shell::{Navigation, ProjectorToggle};

/// The whole page.
#[component]
pub fn App() -> impl IntoView {
    let run = RunState::connect();
    provide_context(run);
    let progress = SavedProgress::connect(run);
    provide_context(progress);
    let navigation = Navigation::connect();
    provide_context(navigation);
    register_service_worker();
    let route = navigation.route;
    let on_page = move |page: Page| Page::of(route.get()) != page;
    view! {
        <div class="app" class:projector=move || navigation.projector.get()>
            <a class="skip" href="#main">"Skip to the lesson"</a>
            <header class="top">
                <div class="title-row">
                    <h1><a href="#/">"Transfer Lab"</a></h1>
                    <LessonNav/>
                    <ProjectorToggle/>
                </div>
                <p class="tagline">
                    "Train real image classifiers in this tab, on your own machine. "
                    "Nothing is uploaded."
                </p>
                <BackendBadge/>
                <ProgressProblem/>
            </header>
            <main id="main">
                <div hidden=move || on_page(Page::Home)><HomePage/></div>
                <LessonPage number="01"><lesson01::ScratchLesson/></LessonPage>
                <LessonPage number="02"><lesson02::FeatureExtractionLesson/></LessonPage>
                <LessonPage number="03"><lesson03::FineTuningLesson/></LessonPage>
                <LessonPage number="04"><lesson04::ModelZooLesson/></LessonPage>
                <div hidden=move || on_page(Page::Settings)><SettingsPage/></div>
            </main>
            <footer>
                "Photos: TensorFlow Flowers, CC BY 2.0 (each author is credited with the "
                "results). Weights: MobileNetV2, Apache-2.0; VGG16 and ResNet50 (when installed): "
                "torchvision, BSD-3-Clause."
            </footer>
            // Present only once the worker listens and saved progress is back: tests wait for
            // it before sending work.
            <Show when=move || run.worker_ready.get() && progress.restored.get()>
                <span data-testid="app-ready" hidden></span>
            </Show>
        </div>
    }
}

/// A lesson's page, shown when the address names the lesson.
#[component]
fn LessonPage(
    /// The lesson's number.
    number: &'static str,
    children: Children,
) -> impl IntoView {
    let navigation = expect_context::<Navigation>();
    let hidden = move || Page::of(navigation.route.get()) != Page::Lesson(number);
    view! {
        <div class="lesson-page" data-lesson=number hidden=hidden>{children()}</div>
    }
}

/// Which of the app's pages is shown (a lesson page keeps its state while hidden).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Page {
    Home,
    Lesson(&'static str),
    Settings,
}

impl Page {
    fn of(route: Route) -> Self {
        match route {
            Route::Home => Page::Home,
            Route::Lesson { info, .. } => Page::Lesson(info.number),
            Route::Settings => Page::Settings,
        }
    }
}

/// Links to the home page, the four lessons and the settings.
#[component]
fn LessonNav() -> impl IntoView {
    let navigation = expect_context::<Navigation>();
    let links = LESSONS
        .iter()
        .map(|info| {
            let number = info.number;
            let current = move || {
                let route = navigation.route.get();
                matches!(route, Route::Lesson { info, .. } if info.number == number)
            };
            view! {
                <li>
                    <a href=Route::lesson_start(number).to_hash()
                        data-testid=format!("nav-{number}")
                        aria-current=move || current().then_some("page")
                        title=info.title>
                        {format!("Lesson {number}")}
                    </a>
                </li>
            }
        })
        .collect_view();
    view! {
        <nav class="lesson-nav" aria-label="Lessons">
            <ul>
                <li><a href="#/" data-testid="nav-home">"Home"</a></li>
                {links}
                <li><a href="#/settings" data-testid="nav-settings">"Settings"</a></li>
            </ul>
        </nav>
    }
}

/// Says once, plainly, when progress cannot be kept in this browser.
#[component]
fn ProgressProblem() -> impl IntoView {
    let progress = expect_context::<SavedProgress>();
    move || {
        progress
            .problem
            .get()
            .map(|text| view! { <p class="warnings" role="status">{text}</p> })
    }
}

/// Installs the offline copy (`sw.js`) and hands it what this visit loaded before it took
/// control. Where the browser has no service workers the app still works, online only.
fn register_service_worker() {
    let navigator = window().navigator();
    let supported = js_sys::Reflect::has(&navigator, &"serviceWorker".into()).unwrap_or(false);
    if !supported {
        log::info!("no service workers here: the app works online only");
        return;
    }
    let container = navigator.service_worker();
    let registering = container.register("./sw.js");
    spawn_local(async move {
        if let Err(e) = JsFuture::from(registering).await {
            log::warn!("offline copy not installed: {e:?}");
            return;
        }
        let Ok(ready) = container.ready() else { return };
        let Ok(registration) = JsFuture::from(ready).await else {
            return;
        };
        let registration: web_sys::ServiceWorkerRegistration = registration.unchecked_into();
        let Some(active) = registration.active() else {
            return;
        };
        let loaded = js_sys::Array::new();
        loaded.push(&window().location().href().unwrap_or_default().into());
        if let Some(performance) = window().performance() {
            for entry in performance.get_entries_by_type("resource").iter() {
                let entry: web_sys::PerformanceEntry = entry.unchecked_into();
                loaded.push(&entry.name().into());
            }
        }
        let message = js_sys::Object::new();
        js_sys::Reflect::set(&message, &"cacheUrls".into(), &loaded).ok();
        if let Err(e) = active.post_message(&message) {
            log::warn!("offline copy incomplete: {e:?}");
        }
    });
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
