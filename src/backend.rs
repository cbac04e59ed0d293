//! Device and precision choice: the one [`Backend`] value the rest of the library receives.

use burn::tensor::{DType, Device, DeviceKind};

use crate::names::named_enum;

/// Errors raised while choosing a compute device.
#[derive(Debug, thiserror::Error)]
pub enum BackendError {
    /// `--device gpu` was asked for but wgpu found no adapter.
    #[error("no wgpu adapter found (Vulkan, Metal, DX12 or GL); use --device cpu")]
    NoAdapter,
    /// The chosen device cannot compute in the requested precision.
    #[error(
        "{device} does not support {precision} (needs a wgpu adapter with SHADER_F16); use --precision f32"
    )]
    UnsupportedPrecision {
        /// Human-readable device description.
        device: String,
        /// The precision that was requested.
        precision: Precision,
    },
}

named_enum! {
    /// Which kind of device the user asked for.
    #[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
    pub enum DeviceChoice("device") {
        /// A real GPU adapter if one exists, otherwise the native CPU backend.
        #[default]
        Auto = "auto",
        /// Any wgpu adapter, including a software one.
        Gpu = "gpu",
        /// The CPU: reidscope's executor for inference, Burn flex for training.
        Cpu = "cpu",
    }
}

named_enum! {
    /// Floating-point precision of a model's weights and activations.
    #[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Hash)]
    pub enum Precision("precision") {
        /// 32-bit floats.
        #[default]
        F32 = "f32" | "fp32",
        /// 16-bit floats (wgpu adapters with SHADER_F16 only).
        F16 = "f16" | "fp16",
    }
}

impl Precision {
    /// The tensor element type for this precision.
    pub fn dtype(self) -> DType {
        match self {
            Self::F32 => DType::F32,
            Self::F16 => DType::F16,
        }
    }
}

named_enum! {
    /// Which Burn backend a [`Backend`] runs on, named as `--device` names it.
    #[derive(Debug, Clone, Copy, PartialEq, Eq)]
    pub enum BackendKind("backend") {
        /// Burn's wgpu backend.
        Wgpu = "gpu",
        /// Burn's pure-Rust CPU backend (flex).
        Flex = "cpu",
    }
}

/// A wgpu adapter as seen by wgpu's enumeration.
#[derive(Debug, Clone)]
pub struct AdapterSummary {
    /// Adapter name reported by the driver.
    pub name: String,
    /// Graphics API (Vulkan, Metal, Dx12, Gl).
    pub api: String,
    /// Discrete, integrated, virtual, CPU (software) or other.
    pub device_type: wgpu::DeviceType,
    /// Whether the adapter reports `SHADER_F16`.
    pub shader_f16: bool,
}

impl AdapterSummary {
    /// True for hardware adapters (not a software rasteriser).
    pub fn is_hardware(&self) -> bool {
        matches!(
            self.device_type,
            wgpu::DeviceType::DiscreteGpu
                | wgpu::DeviceType::IntegratedGpu
                | wgpu::DeviceType::VirtualGpu
        )
    }
}

/// Lists the wgpu adapters of this machine (Vulkan, Metal, DX12: the APIs Burn computes on)
/// without opening any of them.
pub fn wgpu_adapters() -> Vec<AdapterSummary> {
    let instance = wgpu::Instance::new(wgpu::InstanceDescriptor::new_without_display_handle());
    let adapters =
        futures_lite::future::block_on(instance.enumerate_adapters(wgpu::Backends::PRIMARY));
    adapters
        .iter()
        .map(|adapter| {
            let info = adapter.get_info();
            AdapterSummary {
                name: info.name,
                api: format!("{:?}", info.backend),
                device_type: info.device_type,
                shader_f16: adapter.features().contains(wgpu::Features::SHADER_F16),
            }
        })
        .collect()
}

/// A compute device together with the precision models run in on it.
#[derive(Debug, Clone)]
pub struct Backend {
    /// The Burn device tensors are created on.
    pub device: Device,
    /// Which backend the device belongs to.
    pub kind: BackendKind,
    /// Precision of weights and activations.
    pub precision: Precision,
    /// Human-readable description (adapter name or "flex").
    pub description: String,
}

impl Backend {
    /// Chooses a device for `choice` and checks it supports `precision`.
    ///
    /// `Auto` takes a hardware wgpu adapter when there is one and the CPU backend otherwise:
    /// on a machine whose only adapter is a software rasteriser the native CPU backend is faster.
    pub fn select(choice: DeviceChoice, precision: Precision) -> Result<Self, BackendError> {
        let backend = match choice {
            DeviceChoice::Cpu => Self::flex(precision),
            DeviceChoice::Gpu => {
                let adapters = wgpu_adapters();
                let best = pick_adapter(&adapters).ok_or(BackendError::NoAdapter)?;
                Self::wgpu(best, precision)
            }
            DeviceChoice::Auto => {
                let adapters = wgpu_adapters();
                match pick_adapter(&adapters).filter(|a| a.is_hardware()) {
                    Some(best) => Self::wgpu(best, precision),
                    None => Self::flex(precision),
                }
            }
        };
        backend.check_precision()?;
        Ok(backend)
    }

    fn flex(precision: Precision) -> Self {
        Self {
            device: Device::flex(),
            kind: BackendKind::Flex,
            precision,
            description: "flex (CPU)".to_string(),
        }
    }

    fn wgpu(adapter: &AdapterSummary, precision: Precision) -> Self {
        let kind = match adapter.device_type {
            wgpu::DeviceType::DiscreteGpu => DeviceKind::DiscreteGpu(0),
            wgpu::DeviceType::IntegratedGpu => DeviceKind::IntegratedGpu(0),
            wgpu::DeviceType::VirtualGpu => DeviceKind::VirtualGpu(0),
            wgpu::DeviceType::Cpu => DeviceKind::Cpu,
            wgpu::DeviceType::Other => DeviceKind::DefaultDevice,
        };
        Self {
            device: Device::wgpu(kind),
            kind: BackendKind::Wgpu,
            precision,
            description: format!("{} ({})", adapter.name, adapter.api),
        }
    }

    fn check_precision(&self) -> Result<(), BackendError> {
        let supported = match (self.kind, self.precision) {
            (_, Precision::F32) => true,
            (BackendKind::Flex, Precision::F16) => false,
            (BackendKind::Wgpu, Precision::F16) => self.device.supports_dtype(DType::F16),
        };
        if supported {
            Ok(())
        } else {
            Err(BackendError::UnsupportedPrecision {
                device: self.description.clone(),
                precision: self.precision,
            })
        }
    }
}

/// Where distance products run for `choice`: the wgpu device it resolves to, or `None` when it
/// resolves to the CPU (whose GEMM is used directly).
pub fn distance_device(choice: DeviceChoice) -> Result<Option<Device>, BackendError> {
    let backend = Backend::select(choice, Precision::F32)?;
    Ok((backend.kind == BackendKind::Wgpu).then_some(backend.device))
}

/// The adapter wgpu's own preference would pick: hardware before software, Vulkan first.
fn pick_adapter(adapters: &[AdapterSummary]) -> Option<&AdapterSummary> {
    adapters.iter().min_by_key(|a| {
        let type_rank = match a.device_type {
            wgpu::DeviceType::DiscreteGpu => 0,
            wgpu::DeviceType::IntegratedGpu => 1,
            wgpu::DeviceType::VirtualGpu => 2,
            wgpu::DeviceType::Other => 3,
            wgpu::DeviceType::Cpu => 4,
        };
        (type_rank, a.api != "Vulkan")
    })
}
