//! Entry point of the page (built by Trunk).

#[cfg(target_arch = "wasm32")]
fn main() {
    console_error_panic_hook::set_once();
    console_log::init_with_level(log::Level::Info).ok();
    leptos::mount::mount_to_body(transfer_lab_app::ui::App);
}

#[cfg(not(target_arch = "wasm32"))]
fn main() {
    eprintln!("Transfer Lab runs in the browser: serve it with `bash scripts/serve.sh`.");
}
