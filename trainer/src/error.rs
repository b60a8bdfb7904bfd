//! The one configuration error type (run files, model configs), in a leaf module so the model
//! layer can use it without depending on the run-file schema.

/// A config problem; the message names the file and the key.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct ConfigError(pub String);
