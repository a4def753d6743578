//! The page around the lessons: the route from the address, projector mode, the presenter's
//! keyboard navigation, and the steps (screens) a lesson page is made of.

use leptos::ev;
use leptos::prelude::*;
use web_sys::{KeyboardEvent, UrlSearchParams};

use super::code::CodeComparison;
use super::figures::LessonFigure;
use super::questions::Questions;
use crate::course::{LESSONS, Screen};
use crate::navigation::Route;

/// Where the student is and how the page is shown; cheap to copy into components.
#[derive(Clone, Copy)]
pub struct Navigation {
    /// The page and step shown.
    pub route: RwSignal<Route>,
    /// Projector mode: large type, high contrast, one step per screen.
    pub projector: RwSignal<bool>,
}

fn current_hash() -> String {
    window().location().hash().unwrap_or_default()
}

fn projector_in_address() -> bool {
    let search = window().location().search().unwrap_or_default();
    UrlSearchParams::new_with_str(&search)
        .ok()
        .and_then(|params| params.get("projector"))
        .is_some_and(|v| v == "1" || v == "true")
}

/// Whether a key press belongs to a form field (arrows move a number, not the presenter).
fn typing_in_a_field(event: &KeyboardEvent) -> bool {
    use wasm_bindgen::JsCast;
    event
        .target()
        .and_then(|t| t.dyn_into::<web_sys::Element>().ok())
        .is_some_and(|element| {
            matches!(element.tag_name().as_str(), "INPUT" | "TEXTAREA" | "SELECT")
                || element.has_attribute("contenteditable")
        })
}

impl Navigation {
    /// Reads the address and follows its changes and the presenter's keys.
    pub fn connect() -> Self {
        let navigation = Self {
            route: RwSignal::new(Route::from_hash(&current_hash())),
            projector: RwSignal::new(projector_in_address()),
        };
        window_event_listener(ev::hashchange, move |_| {
            navigation.route.set(Route::from_hash(&current_hash()));
            // A new step starts at its top, as a new slide would.
            window().scroll_to_with_x_and_y(0.0, 0.0);
        });
        window_event_listener(ev::keydown, move |event| navigation.on_key(&event));
        navigation
    }

    fn on_key(&self, event: &KeyboardEvent) {
        if typing_in_a_field(event) || event.ctrl_key() || event.meta_key() || event.alt_key() {
            return;
        }
        let route = self.route.get_untracked();
        let target = match event.key().as_str() {
            "ArrowRight" | "PageDown" if self.projector.get_untracked() => route.next(),
            "ArrowLeft" | "PageUp" if self.projector.get_untracked() => route.previous(),
            "Home" if self.projector.get_untracked() => Route::Home,
            key @ ("1" | "2" | "3" | "4") => {
                let index = key.parse::<usize>().unwrap_or(1) - 1;
                Route::lesson_start(LESSONS[index].number)
            }
            _ => return,
        };
        event.prevent_default();
        self.go(target);
    }

    /// Shows `route`, through the address so that the back button returns here.
    pub fn go(&self, route: Route) {
        if window().location().set_hash(&route.to_hash()).is_err() {
            self.route.set(route);
        }
    }

    /// Turns projector mode on or off and writes it into the address, for a shareable link.
    pub fn set_projector(&self, on: bool) {
        self.projector.set(on);
        let location = window().location();
        let search = location.search().unwrap_or_default();
        let Ok(params) = UrlSearchParams::new_with_str(&search) else {
            return;
        };
        if on {
            params.set("projector", "1");
        } else {
            params.delete("projector");
        }
        let query = String::from(params.to_string());
        let url = format!(
            "{}{}{}{}",
            location.pathname().unwrap_or_default(),
            if query.is_empty() { "" } else { "?" },
            query,
            location.hash().unwrap_or_default()
        );
        if let Ok(history) = window().history() {
            history
                .replace_state_with_url(&wasm_bindgen::JsValue::NULL, "", Some(&url))
                .ok();
        }
    }
}

/// The switch for projector mode.
#[component]
pub fn ProjectorToggle() -> impl IntoView {
    let navigation = expect_context::<Navigation>();
    view! {
        <label class="projector-toggle">
            <input type="checkbox" data-testid="projector-toggle"
                prop:checked=move || navigation.projector.get()
                on:change=move |ev| navigation.set_projector(event_target_checked(&ev))/>
            " Projector mode"
        </label>
    }
}

/// One step of a lesson page: always shown on a normal page, alone in projector mode.
#[component]
pub fn Step(
    /// The lesson's number.
    lesson: &'static str,
    /// Which step this is.
    screen: Screen,
    children: Children,
) -> impl IntoView {
    let navigation = expect_context::<Navigation>();
    let current = move || {
        matches!(navigation.route.get(), Route::Lesson { info, .. } if info.number == lesson)
            && navigation.route.get().screen() == Some(screen)
    };
    view! {
        <div class="step" data-screen=screen.name() class:current=current>
            <h3 class="step-title">{screen.title()}</h3>
            {children()}
        </div>
    }
}

/// The presenter's bar on a lesson page: where we are, previous and next.
#[component]
pub fn PresenterBar(
    /// The lesson's number.
    lesson: &'static str,
) -> impl IntoView {
    let navigation = expect_context::<Navigation>();
    let position = move || match navigation.route.get() {
        Route::Lesson { info, screen } if info.number == lesson => {
            format!("Step {} of {}", screen + 1, info.screens.len())
        }
        _ => String::new(),
    };
    view! {
        <nav class="presenter-bar" aria-label="Lesson steps">
            <button type="button" data-testid="previous-step"
                on:click=move |_| navigation.go(navigation.route.get_untracked().previous())>
                "← Previous"
            </button>
            <span class="position" data-testid="step-position">{position}</span>
            <button type="button" data-testid="next-step"
                on:click=move |_| navigation.go(navigation.route.get_untracked().next())>
                "Next →"
            </button>
            <span class="keys">"Keys: ← → or Page Up/Down"</span>
        </nav>
    }
}

/// A lesson page's opening: the presenter's bar, the idea (`children`: the lesson's explanation,
/// then its figure) and the course's Keras code beside what this tab runs.
#[component]
pub fn LessonOpening(
    /// The lesson's number.
    lesson: &'static str,
    /// The course notebook's code.
    keras: &'static str,
    /// What this tab does, step by step.
    app: &'static str,
    children: Children,
) -> impl IntoView {
    view! {
        <PresenterBar lesson/>
        <Step lesson screen=Screen::Idea>
            {children()}
            <LessonFigure lesson/>
        </Step>
        <Step lesson screen=Screen::Code>
            <CodeComparison keras app/>
        </Step>
    }
}

/// A lesson page's last step: its check-your-understanding questions.
#[component]
pub fn QuestionsStep(
    /// The lesson's number.
    lesson: &'static str,
) -> impl IntoView {
    view! {
        <Step lesson screen=Screen::Questions>
            <Questions lesson/>
        </Step>
    }
}
