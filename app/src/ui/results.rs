//! The end of a lesson 02 run: validation accuracy against the course's claim, per-class
//! accuracy, the confusion matrix and the time taken.

use leptos::prelude::*;

use crate::course::{FEATURE_EXTRACTION, percent};
use crate::protocol::FeatureExtractionResult;

/// Results of a finished run.
#[component]
pub fn FeatureExtractionResults(result: FeatureExtractionResult) -> impl IntoView {
    let accuracy = result.validation.accuracy;
    let validation_photos = result.validation_photos.len();
    let predictions = serde_json::to_string(&result.validation.predictions).unwrap_or_default();
    let classes = result.classes.clone();
    let credits = result
        .validation_credits
        .iter()
        .map(|line| view! { <li>{line.clone()}</li> })
        .collect_view();
    let per_class = result
        .classes
        .iter()
        .zip(&result.validation.per_class_accuracy)
        .map(|(name, accuracy)| {
            let shown = accuracy.map(percent).unwrap_or_else(|| "no photos".into());
            view! { <tr><td>{name.clone()}</td><td class="number">{shown}</td></tr> }
        })
        .collect_view();
    let header = classes
        .iter()
        .map(|c| view! { <th scope="col">{c.clone()}</th> })
        .collect_view();
    let rows = result
        .validation
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
            view! { <tr><th scope="row">{classes[truth].clone()}</th>{cells}</tr> }
        })
        .collect_view();
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
            <details class="credits" data-testid="credits">
                <summary>
                    "Photo credits (CC BY 2.0) for the " {validation_photos} " validation photos"
                </summary>
                <ul>{credits}</ul>
            </details>
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
        </section>
    }
}
