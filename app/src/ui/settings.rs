//! Options read from the page address, so a teacher can share a link with a setting and tests
//! can shrink a run.

use web_sys::UrlSearchParams;

/// Options from the query string.
#[derive(Debug, Clone, Default)]
pub struct UrlOptions {
    /// `backend=cpu` forces the CPU backend.
    pub force_cpu: bool,
    /// `full=1` trains on the full training split.
    pub full_training_split: bool,
    /// `train_per_class=N` limits the training photos of each class.
    pub train_per_class: Option<usize>,
    /// `val_per_class=N` limits the validation photos of each class.
    pub validation_per_class: Option<usize>,
    /// `epochs=N` overrides the default number of epochs.
    pub epochs: Option<usize>,
    /// `simulate_device_loss_at_epoch=N` (tests only).
    pub simulate_device_loss_at_epoch: Option<usize>,
    /// `sweep=10,25,50`: photos per class of lesson 01's smaller sweep runs.
    pub sweep_per_class: Option<Vec<usize>>,
    /// `zoo_photos=N`: photos lesson 04 times on a backbone without weights.
    pub zoo_speed_photos: Option<usize>,
}

impl UrlOptions {
    /// Reads the current page's query string.
    pub fn from_location() -> Self {
        let search = web_sys::window()
            .and_then(|w| w.location().search().ok())
            .unwrap_or_default();
        let Ok(params) = UrlSearchParams::new_with_str(&search) else {
            return Self::default();
        };
        let number = |key: &str| params.get(key).and_then(|v| v.parse::<usize>().ok());
        Self {
            force_cpu: params.get("backend").is_some_and(|v| v == "cpu"),
            full_training_split: params.get("full").is_some_and(|v| v == "1" || v == "true"),
            train_per_class: number("train_per_class"),
            validation_per_class: number("val_per_class"),
            epochs: number("epochs"),
            simulate_device_loss_at_epoch: number("simulate_device_loss_at_epoch"),
            zoo_speed_photos: number("zoo_photos"),
            sweep_per_class: params.get("sweep").map(|list| {
                list.split(',')
                    .filter_map(|n| n.trim().parse().ok())
                    .collect()
            }),
        }
    }
}
