//! A labelled progress bar.

use leptos::prelude::*;

/// Shows `done` of `total` with a caption.
#[component]
pub fn ProgressBar(
    /// What is progressing.
    label: &'static str,
    /// Completed amount.
    #[prop(into)]
    done: Signal<f64>,
    /// Total amount (0 hides the bar's fill).
    #[prop(into)]
    total: Signal<f64>,
    /// Text after the bar, e.g. "120 / 700 photos".
    #[prop(into)]
    caption: Signal<String>,
    /// Test id of the bar.
    test_id: &'static str,
) -> impl IntoView {
    let percent = move || {
        let total = total.get();
        if total > 0.0 {
            (done.get() / total * 100.0).clamp(0.0, 100.0)
        } else {
            0.0
        }
    };
    view! {
        <div class="progress" data-testid=test_id>
            <span class="progress-label">{label}</span>
            <progress
                max="100"
                value=move || format!("{:.1}", percent())
                aria-label=label
            ></progress>
            <span class="progress-caption">{caption}</span>
        </div>
    }
}
