//! The settings page: what this browser keeps for Transfer Lab (saved progress, the offline
//! copy of the app and its downloads), how large it is, and how to clear it.

use js_sys::Array;
use leptos::prelude::*;
use leptos::task::spawn_local;
use wasm_bindgen::JsCast;
use wasm_bindgen_futures::JsFuture;
use web_sys::{Blob, Cache, Request, Response};

use super::RunState;
use super::saved_progress::SavedProgress;
use super::storage;
use crate::saved::KEYS;

/// One cached file.
#[derive(Debug, Clone, PartialEq)]
struct CachedFile {
    path: String,
    bytes: u64,
}

/// What is stored, as measured when the page was opened or refreshed.
#[derive(Debug, Clone, PartialEq, Default)]
struct StoredSummary {
    records: Vec<(String, u64)>,
    cached: Vec<CachedFile>,
    offline_ready: bool,
    note: Option<String>,
}

async fn js<T: JsCast>(promise: js_sys::Promise) -> Result<T, String> {
    JsFuture::from(promise)
        .await
        .map_err(|e| format!("{e:?}"))?
        .dyn_into::<T>()
        .map_err(|_| "unexpected value".to_string())
}

/// Every file in the app's caches, with its size.
async fn cached_files() -> Result<Vec<CachedFile>, String> {
    let caches = window().caches().map_err(|e| format!("{e:?}"))?;
    let names: Array = js(caches.keys()).await?;
    let mut files = Vec::new();
    for name in names.iter().filter_map(|n| n.as_string()) {
        let cache: Cache = js(caches.open(&name)).await?;
        let requests: Array = js(cache.keys()).await?;
        for request in requests.iter() {
            let request: Request = request.unchecked_into();
            let Ok(response) = js::<Response>(cache.match_with_request(&request)).await else {
                continue;
            };
            let bytes = match response.blob() {
                Ok(promise) => js::<Blob>(promise)
                    .await
                    .map(|b| b.size() as u64)
                    .unwrap_or(0),
                Err(_) => 0,
            };
            let url = request.url();
            let path = web_sys::Url::new(&url).map(|u| u.pathname()).unwrap_or(url);
            files.push(CachedFile { path, bytes });
        }
    }
    files.sort_by_key(|file| std::cmp::Reverse(file.bytes));
    Ok(files)
}

async fn measure() -> StoredSummary {
    let mut summary = StoredSummary::default();
    for key in KEYS {
        match storage::get(key).await {
            Ok(Some(text)) => summary.records.push((key.to_string(), text.len() as u64)),
            Ok(None) => {}
            Err(e) => summary.note = Some(e.to_string()),
        }
    }
    match cached_files().await {
        Ok(files) => summary.cached = files,
        Err(e) => {
            summary.note = Some(format!("the offline copy cannot be listed here: {e}"));
        }
    }
    summary.offline_ready = window().navigator().service_worker().controller().is_some();
    summary
}

async fn clear_caches() -> Result<(), String> {
    let caches = window().caches().map_err(|e| format!("{e:?}"))?;
    let names: Array = js(caches.keys()).await?;
    for name in names.iter().filter_map(|n| n.as_string()) {
        JsFuture::from(caches.delete(&name))
            .await
            .map_err(|e| format!("{e:?}"))?;
    }
    Ok(())
}

fn megabytes(bytes: u64) -> String {
    format!("{:.2} MB", bytes as f64 / 1e6)
}

/// The settings page.
#[component]
pub fn SettingsPage() -> impl IntoView {
    let run = expect_context::<RunState>();
    let progress = expect_context::<SavedProgress>();
    let summary = RwSignal::new(None::<StoredSummary>);
    let refresh = move || {
        spawn_local(async move { summary.set(Some(measure().await)) });
    };
    refresh();
    let reset = move |_| {
        progress.reset(run);
        gloo_timers::callback::Timeout::new(300, refresh).forget();
    };
    let clear_offline = move |_| {
        spawn_local(async move {
            if let Err(e) = clear_caches().await {
                log::warn!("offline copy not cleared: {e}");
            }
            summary.set(Some(measure().await));
        });
    };
    view! {
        <section class="settings" aria-labelledby="settings-title" data-testid="settings">
            <h2 id="settings-title">"Settings and storage"</h2>
            <p>
                "Everything Transfer Lab keeps stays in this browser: nothing is uploaded. "
                "Your results, trained models and answers are saved as you go; the app and the "
                "photos and weights it downloaded are kept for working offline."
            </p>
            <div class="buttons">
                <button type="button" data-testid="refresh-storage" on:click=move |_| refresh()>
                    "Measure again"
                </button>
                <button type="button" data-testid="reset-progress" on:click=reset
                    prop:disabled=move || run.busy()>
                    "Reset my progress"
                </button>
                <button type="button" data-testid="clear-offline" on:click=clear_offline>
                    "Clear the offline copy"
                </button>
            </div>
            {move || summary.get().map(|s| view! { <StorageTables summary=s/> })}
        </section>
    }
}

#[component]
fn StorageTables(summary: StoredSummary) -> impl IntoView {
    let record_total: u64 = summary.records.iter().map(|(_, b)| b).sum();
    let cache_total: u64 = summary.cached.iter().map(|f| f.bytes).sum();
    let records = summary
        .records
        .iter()
        .map(|(key, bytes)| view! { <SizeRow name=key.clone() bytes=*bytes/> })
        .collect_view();
    let files = summary
        .cached
        .iter()
        .map(|f| view! { <SizeRow name=f.path.clone() bytes=f.bytes/> })
        .collect_view();
    let offline = if summary.offline_ready {
        "Offline: ready — this page and what it downloaded open without a network."
    } else {
        "Offline: not yet — the offline copy starts with the next visit of this page."
    };
    view! {
        <p data-testid="offline-status" data-ready=summary.offline_ready.to_string()>
            {offline}
        </p>
        {summary.note.clone().map(|note| view! { <p class="warnings">{note}</p> })}
        <div class="tables">
            <table data-testid="saved-records" data-bytes=record_total.to_string()>
                <caption>{format!("Saved progress: {}", megabytes(record_total))}</caption>
                <tbody>{records}</tbody>
            </table>
            <table data-testid="cached-files" data-files=summary.cached.len().to_string()
                data-bytes=cache_total.to_string()>
                <caption>
                    {format!(
                        "Offline copy: {} files, {}",
                        summary.cached.len(),
                        megabytes(cache_total)
                    )}
                </caption>
                <tbody>{files}</tbody>
            </table>
        </div>
    }
}

/// One stored thing and its size.
#[component]
fn SizeRow(name: String, bytes: u64) -> impl IntoView {
    view! {
        <tr>
            <th scope="row">{name}</th>
            <td>{megabytes(bytes)}</td>
        </tr>
    }
}
