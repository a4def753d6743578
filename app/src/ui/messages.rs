//! Warnings and the error of the current run, in plain words.

use leptos::prelude::*;

use super::RunState;

/// The run's warnings (it went on) and its error (it stopped).
#[component]
pub fn RunMessages() -> impl IntoView {
    let run = expect_context::<RunState>();
    view! {
        <ul class="warnings" data-testid="warnings">
            <For
                each=move || run.warnings.get().into_iter().enumerate()
                key=|(i, _)| *i
                let((_, w))
            >
                <li>{w}</li>
            </For>
        </ul>
        <Show when=move || run.error.get().is_some()>
            <p class="error" role="alert" data-testid="error">{move || run.error.get()}</p>
        </Show>
    }
}
