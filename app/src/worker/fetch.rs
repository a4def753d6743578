//! Downloads from the page's own origin, with retries and hash checks. Every download is also
//! kept in the offline cache (shared with the page's service worker, `public/sw.js`), and when
//! the network is gone the kept copy is used instead.

use gloo_timers::future::TimeoutFuture;
use js_sys::{ArrayBuffer, Uint8Array};
use serde::de::DeserializeOwned;
use transfer_lab_model::weights::sha256_hex;
use wasm_bindgen::{JsCast, JsValue};
use wasm_bindgen_futures::JsFuture;
use web_sys::{Cache, Response, WorkerGlobalScope};

/// The offline cache's name; `public/sw.js` uses the same one.
const OFFLINE_CACHE: &str = "transfer-lab-offline-v1";

/// Attempts per file before giving up.
const ATTEMPTS: u32 = 3;

/// A download that did not succeed.
#[derive(Debug, Clone)]
pub struct FetchError {
    /// The address asked for.
    pub url: String,
    /// What went wrong, in plain words.
    pub reason: String,
}

impl std::fmt::Display for FetchError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "could not download {}: {}", self.url, self.reason)
    }
}

fn describe(value: JsValue) -> String {
    value
        .dyn_ref::<js_sys::Error>()
        .map(|e| String::from(e.message()))
        .or_else(|| value.as_string())
        .unwrap_or_else(|| format!("{value:?}"))
}

/// The offline copy of `url`, if one was kept.
async fn cached_copy(scope: &WorkerGlobalScope, url: &str) -> Option<Response> {
    let caches = scope.caches().ok()?;
    let cache: Cache = JsFuture::from(caches.open(OFFLINE_CACHE))
        .await
        .ok()?
        .dyn_into()
        .ok()?;
    JsFuture::from(cache.match_with_str(url))
        .await
        .ok()?
        .dyn_into()
        .ok()
}

/// Keeps a copy of a good response for offline use; a failure only costs the offline copy.
fn keep_copy(scope: &WorkerGlobalScope, url: &str, response: &Response) {
    let (Ok(caches), Ok(copy)) = (scope.caches(), response.clone()) else {
        return;
    };
    let url = url.to_string();
    wasm_bindgen_futures::spawn_local(async move {
        let kept = async {
            let cache: Cache = JsFuture::from(caches.open(OFFLINE_CACHE))
                .await?
                .unchecked_into();
            JsFuture::from(cache.put_with_str(&url, &copy)).await
        };
        if let Err(e) = kept.await {
            log::warn!("no offline copy of {url}: {}", describe(e));
        }
    });
}

async fn fetch_once(url: &str) -> Result<Vec<u8>, String> {
    let scope: WorkerGlobalScope = js_sys::global().unchecked_into();
    let response: Response = match JsFuture::from(scope.fetch_with_str(url)).await {
        Ok(response) => {
            let response: Response = response.unchecked_into();
            if response.ok() {
                keep_copy(&scope, url, &response);
            }
            response
        }
        // No network: the copy kept by an earlier visit, if there is one.
        Err(e) => match cached_copy(&scope, url).await {
            Some(copy) => copy,
            None => return Err(describe(e)),
        },
    };
    if !response.ok() {
        return Err(format!(
            "the server answered {} {}",
            response.status(),
            response.status_text()
        ));
    }
    let buffer = JsFuture::from(response.array_buffer().map_err(describe)?)
        .await
        .map_err(describe)?;
    let buffer: ArrayBuffer = buffer.unchecked_into();
    Ok(Uint8Array::new(&buffer).to_vec())
}

/// Fetches `url`, retrying with a growing pause; when `sha256` is given the bytes must match it.
pub async fn fetch_bytes(url: &str, sha256: Option<&str>) -> Result<Vec<u8>, FetchError> {
    let mut reason = String::new();
    for attempt in 0..ATTEMPTS {
        if attempt > 0 {
            log::warn!("retrying {url} ({reason})");
            TimeoutFuture::new(400 * 2u32.pow(attempt)).await;
        }
        match fetch_once(url).await {
            Ok(bytes) => match sha256 {
                Some(expected) if sha256_hex(&bytes) != expected => {
                    reason = "its content does not match the expected SHA-256 hash".into();
                }
                _ => return Ok(bytes),
            },
            Err(e) => reason = e,
        }
    }
    Err(FetchError {
        url: url.to_string(),
        reason: format!("{reason} (tried {ATTEMPTS} times)"),
    })
}

/// Fetches and parses a JSON file.
pub async fn fetch_json<T: DeserializeOwned>(url: &str) -> Result<T, FetchError> {
    let bytes = fetch_bytes(url, None).await?;
    serde_json::from_slice(&bytes).map_err(|e| FetchError {
        url: url.to_string(),
        reason: format!("it is not the expected JSON ({e})"),
    })
}
