//! Subcommand implementations (thin: argument handling and printing).

pub mod analyze;
pub mod bench;
pub mod decoder_args;
pub mod eval;
pub mod generate;
pub mod model_dir;
pub mod sentinel;
pub mod sweep;
pub mod train;
