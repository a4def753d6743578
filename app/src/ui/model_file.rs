//! The trained model as a file: download it after a run, or load one (from this page or from
//! the `transfer-lab` command-line tool) and measure it on the validation photos.

use js_sys::{Array, Uint8Array};
use leptos::prelude::*;
use wasm_bindgen::JsCast;
use wasm_bindgen_futures::JsFuture;
use web_sys::{Blob, BlobPropertyBag, HtmlAnchorElement, HtmlInputElement, Url};

use super::RunState;
use super::settings::UrlOptions;
use crate::course::percent;
use crate::protocol::{BackendChoice, ModelCheck, ModelCheckResult};

/// Name of the downloaded file.
const DOWNLOAD_NAME: &str = "lesson02-mobilenet_v2.tlmodel";

/// Hands `bytes` to the browser as a file download.
fn save_file(bytes: &[u8], name: &str) -> Result<(), String> {
    let parts = Array::of1(&Uint8Array::from(bytes));
    let options = BlobPropertyBag::new();
    options.set_type("application/octet-stream");
    let blob = Blob::new_with_u8_array_sequence_and_options(&parts, &options)
        .map_err(|e| format!("{e:?}"))?;
    let url = Url::create_object_url_with_blob(&blob).map_err(|e| format!("{e:?}"))?;
    let anchor: HtmlAnchorElement = document()
        .create_element("a")
        .map_err(|e| format!("{e:?}"))?
        .unchecked_into();
    anchor.set_href(&url);
    anchor.set_download(name);
    anchor.click();
    // The download has its own copy once started; free the blob a little later.
    gloo_timers::callback::Timeout::new(30_000, move || {
        Url::revoke_object_url(&url).ok();
    })
    .forget();
    Ok(())
}

/// Reads a chosen file's bytes.
async fn read_file(file: web_sys::File) -> Result<Vec<u8>, String> {
    let buffer = JsFuture::from(file.array_buffer())
        .await
        .map_err(|e| format!("the file could not be read: {e:?}"))?;
    Ok(Uint8Array::new(&buffer).to_vec())
}

/// Download and load controls, and the loaded model's measurement.
#[component]
pub fn ModelFilePanel() -> impl IntoView {
    let run = expect_context::<RunState>();
    let lesson02_file = Signal::derive(move || {
        run.result
            .with(|r| r.as_ref().map(|r| r.model_file.clone()))
    });
    view! {
        <section class="model-file" aria-labelledby="model-file-title">
            <h3 id="model-file-title">"Your trained model"</h3>
            <p>
                "Save the trained model as a " <code>".tlmodel"</code> " file, or load one that "
                "this page or the " <code>"transfer-lab"</code> " command-line tool saved: the "
                "page rebuilds it and measures it on the same validation photos."
            </p>
            <div class="buttons">
                <DownloadButton file=lesson02_file name=DOWNLOAD_NAME test_id="download-model"/>
                <LoadButton/>
            </div>
            <ModelCheckOutcome/>
        </section>
    }
}

/// Saves a lesson's trained-model file; disabled until the lesson has one.
#[component]
pub(super) fn DownloadButton(
    /// The file's bytes, once trained.
    #[prop(into)]
    file: Signal<Option<Vec<u8>>>,
    /// Name the browser saves it under.
    name: &'static str,
    /// `data-testid` of the button.
    test_id: &'static str,
) -> impl IntoView {
    let run = expect_context::<RunState>();
    let download = move |_| {
        let saved = file.with_untracked(|bytes| match bytes {
            Some(bytes) => save_file(bytes, name),
            None => Err("train the model first".into()),
        });
        if let Err(e) = saved {
            run.model_error
                .set(Some(format!("The model could not be saved: {e}")));
        }
    };
    view! {
        <button type="button" data-testid=test_id on:click=download
            prop:disabled=move || file.with(Option::is_none)>
            "Download model"
        </button>
    }
}

#[component]
fn LoadButton() -> impl IntoView {
    let run = expect_context::<RunState>();
    let load = move |ev: leptos::ev::Event| {
        let input: HtmlInputElement = event_target(&ev);
        let Some(file) = input.files().and_then(|files| files.get(0)) else {
            return;
        };
        // Choosing the same file again must fire another change.
        input.set_value("");
        let url = UrlOptions::from_location();
        wasm_bindgen_futures::spawn_local(async move {
            let file_name = file.name();
            match read_file(file).await {
                Ok(model_file) => run.check_model(ModelCheck {
                    model_file,
                    file_name,
                    backend: if url.force_cpu {
                        BackendChoice::Cpu
                    } else {
                        BackendChoice::Auto
                    },
                    validation_per_class: url.validation_per_class,
                    assets_base: "generated/".into(),
                }),
                Err(e) => run.model_error.set(Some(format!("{file_name}: {e}"))),
            }
        });
    };
    view! {
        <label class="file-button">
            "Load a model… "
            <input type="file" accept=".tlmodel" data-testid="load-model" on:change=load
                prop:disabled=move || run.busy() || !run.worker_ready.get()/>
        </label>
    }
}

#[component]
fn ModelCheckOutcome() -> impl IntoView {
    let run = expect_context::<RunState>();
    view! {
        <p class="phase" data-testid="model-progress" aria-live="polite">
            {move || run.model_progress.get()}
        </p>
        <Show when=move || run.model_error.get().is_some()>
            <p class="error" role="alert" data-testid="model-error">
                {move || run.model_error.get()}
            </p>
        </Show>
        {move || run.model_checked.get().map(|result| view! { <ModelCheckSummary result/> })}
    }
}

#[component]
fn ModelCheckSummary(result: ModelCheckResult) -> impl IntoView {
    let accuracy = result.validation.accuracy;
    let predictions = serde_json::to_string(&result.validation.predictions).unwrap_or_default();
    let recorded = match result.recorded_accuracy {
        Some(recorded) => format!(
            "The file records {} when it was trained. ",
            percent(recorded)
        ),
        None => String::new(),
    };
    view! {
        <div class="model-check" data-testid="model-check" data-accuracy=format!("{accuracy:.4}")
            data-predictions=predictions>
            <p>
                <strong>{result.file_name.clone()}</strong> ": " {result.description.clone()}
                ", lesson " {result.lesson.clone()} ", trained in " {result.trained_with.clone()}
                " for " {result.classes.join(", ")} "."
            </p>
            <p class="big-number">
                {percent(accuracy)} " on " {result.validation_photos.len()}
                " validation photos, measured here with the " {result.backend.clone()}
                " backend."
            </p>
            <p>{recorded}</p>
        </div>
    }
}
