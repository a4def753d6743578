//! Transfer Lab in the browser: the Leptos page and the Web Worker that trains.

pub mod course;
pub mod navigation;
pub mod protocol;
pub mod quiz;
pub mod saved;
pub mod zoo_guide;

#[cfg(target_arch = "wasm32")]
pub mod ui;
#[cfg(target_arch = "wasm32")]
pub mod worker;
