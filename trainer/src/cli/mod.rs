//! Subcommand implementations (thin: argument handling and printing).

pub mod bench;
pub mod eval;
pub mod generate;
pub mod misc;
pub mod sweep;
pub mod train;
