//! `reidscope devices`: compute devices and their f16 support.

use anyhow::Result;

use reidscope::backend::{Backend, DeviceChoice, Precision, wgpu_adapters};

/// Runs `reidscope devices`.
pub fn run() -> Result<()> {
    let adapters = wgpu_adapters();
    if adapters.is_empty() {
        println!("gpu: no wgpu adapter found");
    }
    for adapter in &adapters {
        println!(
            "gpu: {} api={} type={:?} f16={}",
            adapter.name,
            adapter.api,
            adapter.device_type,
            if adapter.shader_f16 { "yes" } else { "no" }
        );
    }
    println!("cpu: flex (pure Rust) f16=no");
    let auto = Backend::select(DeviceChoice::Auto, Precision::F32)?;
    println!("auto: {}", auto.description);
    Ok(())
}
