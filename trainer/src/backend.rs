//! Which burn backend runs the math. Code is generic over `Backend`; only the binary picks one.
//!
//! `cpu` is burn-flex (pure Rust, multi-threaded through rayon); `cuda:N` is burn-cuda behind the
//! `cuda` cargo feature (kernels compiled by NVRTC at run time, so it builds without a GPU).

/// CPU inference backend.
pub type Cpu = burn::backend::Flex;
/// CPU training backend.
pub type CpuTrain = burn::backend::Autodiff<Cpu>;

/// CUDA inference backend.
#[cfg(feature = "cuda")]
pub type Gpu = burn::backend::Cuda;
/// CUDA training backend.
#[cfg(feature = "cuda")]
pub type GpuTrain = burn::backend::Autodiff<Gpu>;

/// A tensor's values on the host, as f32 in row-major order (one read-back).
pub fn to_host<B: burn::tensor::backend::Backend, const D: usize>(t: burn::tensor::Tensor<B, D>) -> Vec<f32> {
    t.into_data().convert::<f32>().to_vec::<f32>().expect("f32 tensor")
}

/// A parsed `device` value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DeviceSpec {
    /// burn-flex on the host.
    Cpu,
    /// CUDA device index.
    Cuda(usize),
}

impl std::str::FromStr for DeviceSpec {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "cpu" => Ok(Self::Cpu),
            "cuda" => Ok(Self::Cuda(0)),
            _ => s
                .strip_prefix("cuda:")
                .and_then(|i| i.parse().ok())
                .map(Self::Cuda)
                .ok_or_else(|| format!("device must be \"cpu\", \"cuda\" or \"cuda:N\", got \"{s}\"")),
        }
    }
}

/// The `device` key: one device, or a list for data-parallel training (`["cuda:0", "cuda:1"]`).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(untagged)]
pub enum DeviceField {
    /// `"cpu"`, `"cuda"` or `"cuda:N"`.
    One(String),
    /// Several devices of one kind, each once.
    Many(Vec<String>),
}

impl Default for DeviceField {
    fn default() -> Self {
        Self::One("cpu".into())
    }
}

impl DeviceField {
    /// Every listed device, checked: at least one, no duplicates, not CPU and GPU mixed (one CPU
    /// device only: more CPU workers are `workers_per_device`).
    pub fn specs(&self) -> Result<Vec<DeviceSpec>, String> {
        let names: Vec<&str> = match self {
            Self::One(s) => vec![s.as_str()],
            Self::Many(v) => v.iter().map(String::as_str).collect(),
        };
        if names.is_empty() {
            return Err("the device list is empty".into());
        }
        let specs = names
            .iter()
            .map(|s| s.parse())
            .collect::<Result<Vec<DeviceSpec>, _>>()?;
        for (i, s) in specs.iter().enumerate() {
            if specs[..i].contains(s) {
                return Err(format!(
                    "device \"{}\" is listed twice (several workers on one device: set 'workers_per_device')",
                    names[i]
                ));
            }
        }
        if specs.contains(&DeviceSpec::Cpu) && specs.len() > 1 {
            return Err("CPU and GPU devices cannot be mixed in one run".into());
        }
        Ok(specs)
    }

    /// The first device: where the model lives, rollouts run and checkpoints are written.
    pub fn primary(&self) -> Result<DeviceSpec, String> {
        Ok(self.specs()?[0])
    }
}

/// Runs `$body` with `B` bound to the autodiff backend of `$specs` (validated
/// [`DeviceField::specs`]) and `$devices` to one device per data-parallel worker: each listed
/// device `$per` times.
#[macro_export]
macro_rules! with_train_workers {
    ($specs:expr, $per:expr, |$b:ident, $devices:ident| $body:expr) => {{
        let specs: &[$crate::backend::DeviceSpec] = $specs;
        let per: usize = $per;
        match specs[0] {
            $crate::backend::DeviceSpec::Cpu => {
                type $b = $crate::backend::CpuTrain;
                let $devices: Vec<_> = vec![Default::default(); per];
                $body
            }
            #[cfg(feature = "cuda")]
            $crate::backend::DeviceSpec::Cuda(_) => {
                type $b = $crate::backend::GpuTrain;
                let $devices: Vec<burn::backend::cuda::CudaDevice> = specs
                    .iter()
                    .filter_map(|s| match s {
                        $crate::backend::DeviceSpec::Cuda(i) => Some(burn::backend::cuda::CudaDevice::new(*i)),
                        $crate::backend::DeviceSpec::Cpu => None,
                    })
                    .flat_map(|d| std::iter::repeat_n(d, per))
                    .collect();
                $body
            }
            #[cfg(not(feature = "cuda"))]
            $crate::backend::DeviceSpec::Cuda(_) => {
                anyhow::bail!("this binary was built without CUDA; rebuild with `--features cuda`")
            }
        }
    }};
}

/// Runs `$body` with `B` bound to the chosen inference backend and `device` to its device.
#[macro_export]
macro_rules! with_backend {
    ($spec:expr, |$b:ident, $device:ident| $body:expr) => {
        $crate::__dispatch_backend!($spec, Cpu, Gpu, |$b, $device| $body)
    };
}

/// Like [`with_backend!`] but binds the autodiff (training) backend.
#[macro_export]
macro_rules! with_train_backend {
    ($spec:expr, |$b:ident, $device:ident| $body:expr) => {
        $crate::__dispatch_backend!($spec, CpuTrain, GpuTrain, |$b, $device| $body)
    };
}

/// Shared body of [`with_backend!`] and [`with_train_backend!`]: `$cpu`/`$gpu` name the type
/// aliases in this module to bind.
#[doc(hidden)]
#[macro_export]
macro_rules! __dispatch_backend {
    ($spec:expr, $cpu:ident, $gpu:ident, |$b:ident, $device:ident| $body:expr) => {{
        match $spec {
            $crate::backend::DeviceSpec::Cpu => {
                type $b = $crate::backend::$cpu;
                let $device = Default::default();
                $body
            }
            #[cfg(feature = "cuda")]
            $crate::backend::DeviceSpec::Cuda(i) => {
                type $b = $crate::backend::$gpu;
                let $device = burn::backend::cuda::CudaDevice::new(i);
                $body
            }
            #[cfg(not(feature = "cuda"))]
            $crate::backend::DeviceSpec::Cuda(_) => {
                anyhow::bail!("this binary was built without CUDA; rebuild with `--features cuda`")
            }
        }
    }};
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_devices() {
        assert_eq!("cpu".parse::<DeviceSpec>(), Ok(DeviceSpec::Cpu));
        assert_eq!("cuda:1".parse::<DeviceSpec>(), Ok(DeviceSpec::Cuda(1)));
        assert!("gpu".parse::<DeviceSpec>().unwrap_err().contains("cuda:N"));
    }
}
