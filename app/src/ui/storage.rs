//! A small key-value store in the browser's IndexedDB: the student's progress survives a reload
//! or a crash, stays on this machine, and can be cleared.

use js_sys::Promise;
use wasm_bindgen::JsCast;
use wasm_bindgen::prelude::*;
use wasm_bindgen_futures::JsFuture;
use web_sys::{IdbDatabase, IdbOpenDbRequest, IdbRequest, IdbTransactionMode};

/// Database name.
const DATABASE: &str = "transfer-lab";
/// Its one object store: key (text) -> value (text).
const STORE: &str = "progress";
/// Schema version of the database.
const VERSION: u32 = 1;

/// Why the browser's storage could not be used.
#[derive(Debug, Clone)]
pub struct StorageError(pub String);

impl std::fmt::Display for StorageError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "the browser's storage is not available: {}", self.0)
    }
}

fn js_error(context: &str, value: JsValue) -> StorageError {
    let detail = value
        .dyn_ref::<js_sys::Error>()
        .map(|e| String::from(e.message()))
        .or_else(|| value.as_string())
        .unwrap_or_else(|| format!("{value:?}"));
    StorageError(format!("{context}: {detail}"))
}

/// Waits for an IndexedDB request to succeed and returns its result.
async fn finished(request: &IdbRequest) -> Result<JsValue, StorageError> {
    let promise = Promise::new(&mut |resolve, reject| {
        let done = request.clone();
        let on_success = Closure::once_into_js(move || {
            let value = done.result().unwrap_or(JsValue::UNDEFINED);
            resolve.call1(&JsValue::NULL, &value).ok();
        });
        let failed = request.clone();
        let on_error = Closure::once_into_js(move || {
            let reason = failed
                .error()
                .ok()
                .flatten()
                .map(|e| e.message())
                .unwrap_or_else(|| "unknown error".into());
            reject.call1(&JsValue::NULL, &reason.into()).ok();
        });
        request.set_onsuccess(Some(on_success.unchecked_ref()));
        request.set_onerror(Some(on_error.unchecked_ref()));
    });
    JsFuture::from(promise)
        .await
        .map_err(|e| js_error("a storage request failed", e))
}

/// Opens the database, creating its store on first use.
async fn open() -> Result<IdbDatabase, StorageError> {
    let factory = web_sys::window()
        .ok_or_else(|| StorageError("no window".into()))?
        .indexed_db()
        .map_err(|e| js_error("IndexedDB is blocked", e))?
        .ok_or_else(|| StorageError("this browser has no IndexedDB".into()))?;
    let request: IdbOpenDbRequest = factory
        .open_with_u32(DATABASE, VERSION)
        .map_err(|e| js_error("could not open the database", e))?;
    let upgrading = request.clone();
    let on_upgrade = Closure::once_into_js(move || {
        if let Ok(result) = upgrading.result() {
            let database: IdbDatabase = result.unchecked_into();
            if !database.object_store_names().contains(STORE)
                && let Err(e) = database.create_object_store(STORE)
            {
                log::error!("could not create the progress store: {e:?}");
            }
        }
    });
    request.set_onupgradeneeded(Some(on_upgrade.unchecked_ref()));
    Ok(finished(&request).await?.unchecked_into())
}

/// Reads the value stored under `key`, if any.
pub async fn get(key: &str) -> Result<Option<String>, StorageError> {
    let database = open().await?;
    let store = database
        .transaction_with_str(STORE)
        .and_then(|t| t.object_store(STORE))
        .map_err(|e| js_error("could not read the progress store", e))?;
    let request = store
        .get(&JsValue::from_str(key))
        .map_err(|e| js_error("could not read a record", e))?;
    let value = finished(&request).await?;
    database.close();
    Ok(value.as_string())
}

/// Stores `value` under `key`, replacing what was there.
pub async fn put(key: &str, value: &str) -> Result<(), StorageError> {
    let database = open().await?;
    let store = database
        .transaction_with_str_and_mode(STORE, IdbTransactionMode::Readwrite)
        .and_then(|t| t.object_store(STORE))
        .map_err(|e| js_error("could not write the progress store", e))?;
    let request = store
        .put_with_key(&JsValue::from_str(value), &JsValue::from_str(key))
        .map_err(|e| js_error("could not write a record", e))?;
    finished(&request).await?;
    database.close();
    Ok(())
}

/// Removes every stored record.
pub async fn clear() -> Result<(), StorageError> {
    let database = open().await?;
    let store = database
        .transaction_with_str_and_mode(STORE, IdbTransactionMode::Readwrite)
        .and_then(|t| t.object_store(STORE))
        .map_err(|e| js_error("could not write the progress store", e))?;
    let request = store
        .clear()
        .map_err(|e| js_error("could not clear the records", e))?;
    finished(&request).await?;
    database.close();
    Ok(())
}
