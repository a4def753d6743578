//! The end of a lesson 02 run: validation accuracy against the course's claim, per-class
//! accuracy, the confusion matrix and the time taken.

use leptos::prelude::*;
use transfer_lab_model::metrics::Evaluation;

use crate::course::{FEATURE_EXTRACTION, percent};
use crate::protocol::FeatureExtractionResult;

/// Results of a finished run.
#[component]
pub fn FeatureExtractionResults(result: FeatureExtractionResult) -> impl IntoView {
    let accuracy = result.validation.accuracy;
    let validation_photos = result.validation_photos.len();
    let predictions = serde_json::to_string(&result.validation.predictions).unwrap_or_default();
    let classes = result.classes.clone();
    let evaluation = result.validation.clone();
    let credits = result.validation_credits.clone();
    view! {
        <section class="results" data-testid="results" data-predictions=predictions>
            <h3>"Result"</h3>
            <p class="big-number">
                <span data-testid="val-accuracy" data-value=format!("{accuracy:.4}")>
                    {percent(accuracy)}
                </span>
                " validation accuracy on " {validation_photos} " photos the head never saw"
            </p>
            <p data-testid="verdict">{FEATURE_EXTRACTION.verdict(accuracy)}</p>
            <p class="timings" data-testid="timings">
                "Trained on " {result.train_photos} " photos with the " {result.backend.clone()}
                " backend. Feature extraction: " {format!("{:.1}", result.feature_seconds)} " s ("
                {format!("{:.1}", result.photos_per_second)} " photos/s); head training: "
                {format!("{:.1}", result.training_seconds)} " s; downloaded "
                {format!("{:.1}", result.bytes_downloaded as f64 / 1e6)} " MB."
            </p>
            <PhotoCredits credits/>
            <EvaluationTables classes evaluation/>
        </section>
    }
}

/// The CC BY credits of the validation photos, folded away.
#[component]
pub fn PhotoCredits(
    /// One `name: author, license` line per photo.
    credits: Vec<String>,
) -> impl IntoView {
    let count = credits.len();
    let lines = credits
        .into_iter()
        .map(|line| view! { <li>{line}</li> })
        .collect_view();
    view! {
        <details class="credits" data-testid="credits">
            <summary>"Photo credits (CC BY 2.0) for the " {count} " validation photos"</summary>
            <ul>{lines}</ul>
        </details>
    }
}

/// Accuracy per class and the confusion matrix of an evaluation.
#[component]
pub fn EvaluationTables(
    /// Class names, in label order.
    classes: Vec<String>,
    /// The evaluation to show.
    evaluation: Evaluation,
) -> impl IntoView {
    let per_class = classes
        .iter()
        .zip(&evaluation.per_class_accuracy)
        .map(|(name, accuracy)| {
            let shown = accuracy.map(percent).unwrap_or_else(|| "no photos".into());
            view! { <tr><td>{name.clone()}</td><td class="number">{shown}</td></tr> }
        })
        .collect_view();
    let header = classes
        .iter()
        .map(|c| view! { <th scope="col">{c.clone()}</th> })
        .collect_view();
    let rows = evaluation
        .confusion
        .iter()
        .enumerate()
        .map(|(truth, row)| {
            let cells = row
                .iter()
                .enumerate()
                .map(|(predicted, count)| {
                    let class = if truth == predicted {
                        "diagonal"
                    } else {
                        "off"
                    };
                    view! { <td class=class>{*count}</td> }
                })
                .collect_view();
            let name = classes.get(truth).cloned().unwrap_or_default();
            view! { <tr><th scope="row">{name}</th>{cells}</tr> }
        })
        .collect_view();
    view! {
        <div class="tables">
            <table class="per-class" data-testid="per-class">
                <caption>"Accuracy per class"</caption>
                <tbody>{per_class}</tbody>
            </table>
            <table class="confusion" data-testid="confusion">
                <caption>"Confusion matrix (rows: true class, columns: predicted)"</caption>
                <thead><tr><th></th>{header}</tr></thead>
                <tbody>{rows}</tbody>
            </table>
        </div>
    }
}
