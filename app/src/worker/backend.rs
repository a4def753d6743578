//! Picks the compute device: the browser's WebGPU adapter when there is one, else burn's CPU
//! backend.

use burn::tensor::Device;
use transfer_lab_model::burn;

use crate::protocol::{BackendChoice, BackendInfo};

/// A device and how to describe it to the student.
#[derive(Clone)]
pub struct Backend {
    /// Where the frozen backbone runs (no autodiff).
    pub device: Device,
    /// Whether `device` is the GPU.
    pub is_gpu: bool,
    /// Name and detail for the page.
    pub info: BackendInfo,
}

impl Backend {
    /// burn's CPU backend.
    pub fn cpu(reason: &str) -> Self {
        Self {
            device: Device::flex(),
            is_gpu: false,
            info: BackendInfo {
                name: "CPU".into(),
                detail: reason.into(),
            },
        }
    }

    /// WebGPU if allowed and available, else the CPU with the reason.
    pub async fn select(choice: BackendChoice) -> Self {
        if choice == BackendChoice::Cpu {
            return Self::cpu("CPU backend chosen in the settings");
        }
        if !has_webgpu_api() {
            return Self::cpu("this browser has no WebGPU; using the CPU backend instead");
        }
        match Device::wgpu_options().init_async().await {
            Ok(device) => Self {
                device,
                is_gpu: true,
                info: BackendInfo {
                    name: "WebGPU".into(),
                    detail: "the browser's GPU adapter".into(),
                },
            },
            Err(error) => {
                log::warn!("WebGPU initialisation failed: {error:?}");
                Self::cpu("WebGPU is present but no GPU adapter could be opened; using the CPU")
            }
        }
    }
}

/// Whether `navigator.gpu` exists in this worker.
fn has_webgpu_api() -> bool {
    let navigator = js_sys::Reflect::get(&js_sys::global(), &"navigator".into()).ok();
    navigator
        .and_then(|n| js_sys::Reflect::get(&n, &"gpu".into()).ok())
        .is_some_and(|gpu| !gpu.is_undefined() && !gpu.is_null())
}
