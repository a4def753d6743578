//! The training worker: runs the lessons off the page's thread so the page stays responsive.

mod backend;
mod feature_run;
mod fetch;
mod fine_tune_run;
mod model_check;
mod photos;
mod scratch_run;
mod zoo_run;

use std::cell::{Cell, RefCell};
use std::rc::Rc;

use wasm_bindgen::JsCast;
use wasm_bindgen::prelude::Closure;
use web_sys::{DedicatedWorkerGlobalScope, MessageEvent};

use crate::protocol::{FromWorker, ToWorker};
use feature_run::{Report, RunError};

fn scope() -> DedicatedWorkerGlobalScope {
    js_sys::global().unchecked_into()
}

fn post(message: FromWorker) {
    if let Err(e) = scope().post_message(&message.to_json().into()) {
        log::error!("could not post to the page: {e:?}");
    }
}

/// Installs the message handler; called once when the worker's module starts.
pub fn start() {
    console_log::init_with_level(log::Level::Info).ok();
    std::panic::set_hook(Box::new(|info| {
        // The panic aborts the worker; tell the page first so it can explain and keep results.
        console_error_panic_hook::hook(info);
        post(FromWorker::Failed(format!(
            "the training worker crashed: {info}"
        )));
    }));
    let stop = Rc::new(Cell::new(false));
    let last_fine_tune: fine_tune_run::LastSession = Rc::new(RefCell::new(None));
    let handler = Closure::<dyn Fn(MessageEvent)>::new(move |event: MessageEvent| {
        let Some(text) = event.data().as_string() else {
            return;
        };
        match serde_json::from_str::<ToWorker>(&text) {
            Ok(ToWorker::StartFeatureExtraction(request)) => {
                stop.set(false);
                let stop = stop.clone();
                let report: Report = Rc::new(post);
                wasm_bindgen_futures::spawn_local(async move {
                    match feature_run::run(request, report, stop).await {
                        Ok(result) => post(FromWorker::Finished(Box::new(result))),
                        Err(RunError::Failed(reason)) => post(FromWorker::Failed(reason)),
                    }
                });
            }
            Ok(ToWorker::StartScratch(request)) => {
                stop.set(false);
                let stop = stop.clone();
                let report: Report = Rc::new(post);
                wasm_bindgen_futures::spawn_local(async move {
                    if let Err(RunError::Failed(reason)) =
                        scratch_run::run(request, report, stop).await
                    {
                        post(FromWorker::Failed(reason));
                    }
                });
            }
            Ok(ToWorker::StartFineTuning(request)) => {
                stop.set(false);
                let stop = stop.clone();
                let last = last_fine_tune.clone();
                let report: Report = Rc::new(post);
                wasm_bindgen_futures::spawn_local(async move {
                    match fine_tune_run::run(request, report, stop, last).await {
                        Ok(result) => post(FromWorker::FineTuneFinished(Box::new(result))),
                        Err(RunError::Failed(reason)) => post(FromWorker::Failed(reason)),
                    }
                });
            }
            Ok(ToWorker::FineTuneExperiment(experiment)) => {
                stop.set(false);
                let stop = stop.clone();
                let last = last_fine_tune.clone();
                let report: Report = Rc::new(post);
                wasm_bindgen_futures::spawn_local(async move {
                    match fine_tune_run::experiment(experiment, report, stop, last).await {
                        Ok(result) => post(FromWorker::ExperimentFinished(Box::new(result))),
                        Err(reason) => post(FromWorker::ExperimentFailed(reason)),
                    }
                });
            }
            Ok(ToWorker::CheckModel(request)) => {
                let report: Report = Rc::new(post);
                wasm_bindgen_futures::spawn_local(async move {
                    match model_check::check(request, report).await {
                        Ok(result) => post(FromWorker::ModelChecked(Box::new(result))),
                        Err(reason) => post(FromWorker::ModelRefused(reason)),
                    }
                });
            }
            Ok(ToWorker::ClassifyPhoto(query)) => {
                let report: Report = Rc::new(post);
                wasm_bindgen_futures::spawn_local(async move {
                    match model_check::classify(query, report).await {
                        Ok(answer) => post(FromWorker::PhotoClassified(Box::new(answer))),
                        Err(reason) => post(FromWorker::PhotoRefused(reason)),
                    }
                });
            }
            Ok(ToWorker::StartModelZoo(request)) => {
                stop.set(false);
                let stop = stop.clone();
                let report: Report = Rc::new(post);
                wasm_bindgen_futures::spawn_local(async move {
                    match zoo_run::run(request, report, stop).await {
                        Ok(result) => post(FromWorker::ZooFinished(Box::new(result))),
                        Err(RunError::Failed(reason)) => post(FromWorker::Failed(reason)),
                    }
                });
            }
            Ok(ToWorker::Stop) => stop.set(true),
            Err(e) => log::error!("unreadable message from the page: {e}"),
        }
    });
    scope().set_onmessage(Some(handler.as_ref().unchecked_ref()));
    // The handler lives as long as the worker.
    handler.forget();
    post(FromWorker::Ready);
}
