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
