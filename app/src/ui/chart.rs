//! Live training curves: loss and accuracy per epoch, training against validation.

use leptos::prelude::*;
use transfer_lab_model::head::EpochReport;

const WIDTH: f64 = 420.0;
const HEIGHT: f64 = 220.0;
const MARGIN: f64 = 36.0;
/// Okabe-Ito blue and orange: distinguishable with every common colour-vision deficiency.
const TRAIN_COLOUR: &str = "#0072B2";
const VALIDATION_COLOUR: &str = "#E69F00";

/// Which metric a panel plots.
#[derive(Clone, Copy)]
pub enum Metric {
    /// Cross-entropy loss.
    Loss,
    /// Top-1 accuracy.
    Accuracy,
}

impl Metric {
    fn title(self) -> &'static str {
        match self {
            Metric::Loss => "Loss (lower is better)",
            Metric::Accuracy => "Accuracy (higher is better)",
        }
    }

    fn values(self, epochs: &[EpochReport]) -> (Vec<f64>, Vec<Option<f64>>) {
        let pick = |m: &transfer_lab_model::head::PassMetrics| match self {
            Metric::Loss => m.loss as f64,
            Metric::Accuracy => m.accuracy as f64,
        };
        let train = epochs.iter().map(|e| pick(&e.train)).collect();
        let validation = epochs
            .iter()
            .map(|e| e.validation.as_ref().map(pick))
            .collect();
        (train, validation)
    }
}

fn polyline(points: &[(usize, f64)], count: usize, top: f64) -> String {
    let step = (WIDTH - 2.0 * MARGIN) / (count.max(2) - 1) as f64;
    points
        .iter()
        .map(|&(i, v)| {
            let x = MARGIN + step * i as f64;
            let y = HEIGHT - MARGIN - (v / top).clamp(0.0, 1.0) * (HEIGHT - 2.0 * MARGIN);
            format!("{x:.1},{y:.1}")
        })
        .collect::<Vec<_>>()
        .join(" ")
}

/// One panel of the training curves.
#[component]
pub fn CurveChart(
    /// The epochs to draw.
    #[prop(into)]
    epochs: Signal<Vec<EpochReport>>,
    /// What to plot.
    metric: Metric,
) -> impl IntoView {
    let lines = move || {
        let epochs = epochs.get();
        let (train, validation) = metric.values(&epochs);
        let top = match metric {
            Metric::Accuracy => 1.0,
            Metric::Loss => {
                train
                    .iter()
                    .copied()
                    .chain(validation.iter().flatten().copied())
                    .fold(0.1f64, f64::max)
                    * 1.1
            }
        };
        let train_points: Vec<(usize, f64)> = train.into_iter().enumerate().collect();
        let validation_points: Vec<(usize, f64)> = validation
            .into_iter()
            .enumerate()
            .filter_map(|(i, v)| v.map(|v| (i, v)))
            .collect();
        let count = epochs.len();
        (
            polyline(&train_points, count, top),
            polyline(&validation_points, count, top),
            top,
            count,
        )
    };
    view! {
        <figure class="chart">
            <figcaption>{metric.title()}</figcaption>
            <svg viewBox=format!("0 0 {WIDTH} {HEIGHT}") role="img" aria-label=metric.title()>
                <line
                    x1=MARGIN
                    y1=HEIGHT - MARGIN
                    x2=WIDTH - MARGIN
                    y2=HEIGHT - MARGIN
                    class="axis"
                />
                <line x1=MARGIN y1=MARGIN x2=MARGIN y2=HEIGHT - MARGIN class="axis"/>
                <text x=4 y=MARGIN + 4.0 class="tick">{move || format!("{:.2}", lines().2)}</text>
                <text x=4 y=HEIGHT - MARGIN class="tick">"0"</text>
                <text x=WIDTH - MARGIN y=HEIGHT - 10.0 class="tick" text-anchor="end">
                    {move || format!("epoch {}", lines().3)}
                </text>
                <polyline
                    points=move || lines().0
                    fill="none"
                    stroke=TRAIN_COLOUR
                    stroke-width="2.5"
                />
                <polyline
                    points=move || lines().1
                    fill="none"
                    stroke=VALIDATION_COLOUR
                    stroke-width="2.5"
                    stroke-dasharray="6 3"
                />
            </svg>
            <p class="legend">
                <span style=format!("color:{TRAIN_COLOUR}")>"━ training"</span>
                <span style=format!("color:{VALIDATION_COLOUR}")>"╍ validation"</span>
            </p>
        </figure>
    }
}
