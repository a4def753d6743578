//! Entry point of the training worker (built by Trunk as a Web Worker).

#[cfg(target_arch = "wasm32")]
fn main() {
    transfer_lab_app::worker::start();
}

#[cfg(not(target_arch = "wasm32"))]
fn main() {
    eprintln!("The training worker runs in the browser: build it with `trunk build`.");
}
