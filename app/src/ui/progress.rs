//! A labelled progress bar.

use leptos::prelude::*;

use super::RunState;

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

/// The current run's download of weights and photo shards, in bytes, with the photo count.
#[component]
pub fn DownloadBar(
    /// Test id of the bar.
    test_id: &'static str,
    /// Said after the photo count, e.g. " (64x64)"; empty for nothing.
    #[prop(into, default = String::new())]
    photo_note: String,
) -> impl IntoView {
    let download = expect_context::<RunState>().download;
    view! {
        <ProgressBar
            label="Download"
            test_id=test_id
            done=Signal::derive(move || download.get().bytes_done as f64)
            total=Signal::derive(move || download.get().bytes_total as f64)
            caption=Signal::derive(move || {
                let d = download.get();
                format!(
                    "{} / {} photos{photo_note} · {:.1} / {:.1} MB",
                    d.photos_done,
                    d.photos_total,
                    d.bytes_done as f64 / 1e6,
                    d.bytes_total as f64 / 1e6
                )
            })
        />
    }
}
