//! The one error type of the crate.

/// Why a device operation could not be carried out.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DeviceError {
    /// The adapter's bounded command queue is full; the caller may retry later.
    #[error("device adapter busy: command queue full")]
    Busy,
    /// The adapter's task has ended (its report receiver was dropped or it was aborted).
    #[error("device adapter stopped")]
    Stopped,
    /// The device is not one this adapter was started with.
    #[error("unknown device `{0}`")]
    UnknownDevice(String),
    /// A configuration value that cannot be used.
    #[error("invalid device configuration: {0}")]
    Config(String),
    /// `start` was called outside a tokio runtime.
    #[error("no tokio runtime: device adapters must be started inside one")]
    NoRuntime,
    /// Waited for the broker connection longer than allowed.
    #[error("timed out waiting for the MQTT broker at {0}")]
    Timeout(String),
}
