//! A small schematic figure for each lesson's idea (drawn, not measured: the lesson's own
//! charts show the measured numbers).

use leptos::prelude::*;

/// Colours shared with the charts: blue trains, grey is frozen, orange is validation.
const TRAINS: &str = "#0072b2";
const FROZEN: &str = "#8c959f";
const VALIDATION: &str = "#e69f00";

/// The figure of lesson `lesson`.
#[component]
pub fn LessonFigure(
    /// The lesson's number.
    lesson: &'static str,
) -> impl IntoView {
    let (caption, drawing) = match lesson {
        "01" => (
            "From scratch: training accuracy climbs, validation stalls.",
            overfitting(),
        ),
        "02" => (
            "Feature extraction: the backbone is frozen, only the head trains.",
            frozen(0),
        ),
        "03" => (
            "Fine-tuning: the top of the backbone trains too, slowly.",
            frozen(2),
        ),
        _ => ("The zoo: bigger networks cost size and time.", zoo()),
    };
    view! {
        <figure class="idea-figure" data-testid=format!("figure-{lesson}")>
            {drawing}
            <figcaption>{caption}</figcaption>
        </figure>
    }
}

fn overfitting() -> AnyView {
    view! {
        <svg viewBox="0 0 240 120" role="img"
            aria-label="Training accuracy rises towards 100% while validation accuracy levels off">
            <line x1="20" y1="100" x2="230" y2="100" stroke=FROZEN/>
            <line x1="20" y1="10" x2="20" y2="100" stroke=FROZEN/>
            <polyline points="20,90 60,60 100,35 140,22 180,15 225,12" fill="none"
                stroke=TRAINS stroke-width="3"/>
            <polyline points="20,90 60,70 100,62 140,62 180,64 225,66" fill="none"
                stroke=VALIDATION stroke-width="3" stroke-dasharray="6 3"/>
            <text x="150" y="10" font-size="11" fill=TRAINS>"training"</text>
            <text x="150" y="82" font-size="11" fill=VALIDATION>"validation"</text>
            <text x="110" y="116" font-size="10" fill=FROZEN>"epochs"</text>
        </svg>
    }
    .into_any()
}

/// The backbone as six blocks, the top `trainable` of them training, then the head.
fn frozen(trainable: usize) -> AnyView {
    let blocks = (0..6)
        .map(|i| {
            let trains = i >= 6 - trainable;
            let colour = if trains { TRAINS } else { FROZEN };
            view! {
                <rect x=10 + i * 30 y="35" width="24" height="50" rx="3" fill=colour
                    opacity=if trains { "0.9" } else { "0.5" }/>
            }
        })
        .collect_view();
    view! {
        <svg viewBox="0 0 240 120" role="img"
            aria-label="Backbone blocks in grey are frozen; blue blocks and the head train">
            {blocks}
            <rect x="195" y="45" width="36" height="30" rx="3" fill=TRAINS/>
            <text x="200" y="64" font-size="11" fill="#fff">"head"</text>
            <text x="10" y="25" font-size="11" fill=FROZEN>"backbone (ImageNet)"</text>
            <text x="10" y="105" font-size="11" fill=FROZEN>"grey: frozen"</text>
            <text x="120" y="105" font-size="11" fill=TRAINS>"blue: trains"</text>
        </svg>
    }
    .into_any()
}

fn zoo() -> AnyView {
    let bars = [("VGG16", 200), ("ResNet50", 60), ("MobileNetV2", 14)]
        .into_iter()
        .enumerate()
        .map(|(i, (name, width))| {
            let y = 15 + i * 35;
            view! {
                <text x="5" y=y + 15 font-size="11" fill="#1b1f24">{name}</text>
                <rect x="80" y=y width=width.min(150) height="20" fill=TRAINS opacity="0.8"/>
            }
        })
        .collect_view();
    view! {
        <svg viewBox="0 0 240 120" role="img"
            aria-label="VGG16 is the largest network, ResNet50 is medium, MobileNetV2 is small">
            {bars}
        </svg>
    }
    .into_any()
}
