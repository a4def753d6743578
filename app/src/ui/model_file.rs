//! The trained model as a file: download it after a run, or load one (from this page or from
//! the `transfer-lab` command-line tool) and measure it on the validation photos.

use js_sys::{Array, Uint8Array};
use leptos::prelude::*;
use wasm_bindgen::JsCast;
use wasm_bindgen_futures::JsFuture;
use web_sys::{Blob, BlobPropertyBag, DragEvent, HtmlAnchorElement, HtmlInputElement, Url};

use super::RunState;
use super::settings::UrlOptions;
use crate::course::percent;
use crate::protocol::{BackendChoice, ModelCheck, ModelCheckResult, PhotoAnswer, PhotoQuery};

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

/// The backend the URL options ask for.
fn backend_choice(url: &UrlOptions) -> BackendChoice {
    if url.force_cpu {
        BackendChoice::Cpu
    } else {
        BackendChoice::Auto
    }
}

/// A model file and its name.
type NamedModel = (String, Vec<u8>);

/// Download and load controls, the loaded model's measurement, and a photo to classify.
#[component]
pub fn ModelFilePanel() -> impl IntoView {
    let run = expect_context::<RunState>();
    let lesson02_file = Signal::derive(move || {
        run.result
            .with(|r| r.as_ref().map(|r| r.model_file.clone()))
    });
    let loaded = RwSignal::new(None::<NamedModel>);
    // Photos go to the model loaded last, else to the one trained in this tab.
    let photo_model = Signal::derive(move || {
        loaded.get().or_else(|| {
            lesson02_file
                .get()
                .map(|bytes| (DOWNLOAD_NAME.to_string(), bytes))
        })
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
                <LoadButton loaded/>
            </div>
            <ModelCheckOutcome/>
            <PhotoClassifier model=photo_model/>
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

/// Loads a model file and measures it; the file is kept in `loaded` for photos.
#[component]
fn LoadButton(loaded: RwSignal<Option<NamedModel>>) -> impl IntoView {
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
                Ok(model_file) => {
                    loaded.set(Some((file_name.clone(), model_file.clone())));
                    run.photo_answer.set(None);
                    run.check_model(ModelCheck {
                        model_file,
                        file_name,
                        backend: backend_choice(&url),
                        validation_per_class: url.validation_per_class,
                        assets_base: "generated/".into(),
                    })
                }
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

/// A photo of the student's own, chosen or dropped, classified by `model`: its top three classes.
#[component]
fn PhotoClassifier(
    /// The model that answers, once there is one.
    #[prop(into)]
    model: Signal<Option<NamedModel>>,
) -> impl IntoView {
    let run = expect_context::<RunState>();
    let classify = move |file: web_sys::File| {
        // A new photo's answer replaces the last one.
        run.photo_answer.set(None);
        run.photo_error.set(None);
        let Some((model_name, model_file)) = model.get_untracked() else {
            run.photo_error
                .set(Some("Train or load a model first.".into()));
            return;
        };
        let backend = backend_choice(&UrlOptions::from_location());
        wasm_bindgen_futures::spawn_local(async move {
            let photo_name = file.name();
            match read_file(file).await {
                Ok(photo) => run.classify_photo(PhotoQuery {
                    model_file,
                    model_name,
                    photo,
                    photo_name,
                    backend,
                    assets_base: "generated/".into(),
                }),
                Err(e) => run.photo_error.set(Some(format!("{photo_name}: {e}"))),
            }
        });
    };
    let chosen = move |ev: leptos::ev::Event| {
        let input: HtmlInputElement = event_target(&ev);
        if let Some(file) = input.files().and_then(|files| files.get(0)) {
            // Choosing the same photo again must fire another change.
            input.set_value("");
            classify(file);
        }
    };
    let dropped = move |ev: DragEvent| {
        ev.prevent_default();
        if let Some(file) = ev
            .data_transfer()
            .and_then(|data| data.files())
            .and_then(|files| files.get(0))
        {
            classify(file);
        }
    };
    let unavailable = move || model.with(Option::is_none) || run.busy() || !run.worker_ready.get();
    view! {
        <div class="photo-drop" data-testid="photo-drop"
            on:dragover=|ev: DragEvent| ev.prevent_default() on:drop=dropped>
            <label>
                "Try a photo of your own: "
                <input type="file" accept="image/*" data-testid="classify-photo"
                    on:change=chosen prop:disabled=unavailable/>
            </label>
            " (or drop one here). It stays in this tab."
        </div>
        <Show when=move || run.photo_error.get().is_some()>
            <p class="error" role="alert" data-testid="photo-error">
                {move || run.photo_error.get()}
            </p>
        </Show>
        {move || run.photo_answer.get().map(|answer| view! { <PhotoAnswerView answer/> })}
    }
}

/// The top three classes of a photo, with their probabilities as bars.
#[component]
fn PhotoAnswerView(answer: PhotoAnswer) -> impl IntoView {
    let top: Vec<(String, f32)> = answer
        .top
        .iter()
        .map(|c| (c.class.clone(), c.probability))
        .collect();
    let rows = answer
        .top
        .into_iter()
        .map(|c| {
            view! {
                <li>
                    <span class="class-name">{c.class}</span>
                    <meter min="0" max="1" value=c.probability.to_string()></meter>
                    <span class="probability">{percent(c.probability)}</span>
                </li>
            }
        })
        .collect_view();
    view! {
        <div class="photo-answer" data-testid="photo-answer"
            data-top=serde_json::to_string(&top).unwrap_or_default()>
            <p>
                <strong>{answer.photo_name}</strong> ", according to " {answer.model_name}
                " (" {answer.backend} "):"
            </p>
            <ol class="top3">{rows}</ol>
        </div>
    }
}
