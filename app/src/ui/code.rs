//! The course notebook's Keras code beside what the tab runs for the same idea.

use leptos::prelude::*;

/// Two code panels side by side.
#[component]
pub fn CodeComparison(
    /// The course notebook's code.
    keras: &'static str,
    /// What this tab does, step by step.
    app: &'static str,
) -> impl IntoView {
    view! {
        <div class="code-compare">
            <figure>
                <figcaption>"The course notebook (Keras)"</figcaption>
                <pre><code>{keras}</code></pre>
            </figure>
            <figure>
                <figcaption>"What this tab does"</figcaption>
                <pre><code>{app}</code></pre>
            </figure>
        </div>
    }
}
