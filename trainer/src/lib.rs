//! entrl: reinforcement-learning fine-tuning of small transformers on burn, with per-token entropy
//! dynamics as a first-class signal.
//!
//! Layers, bottom up: [`model`] (Llama-family transformer, KV cache, HF/GGUF interop),
//! [`tokenizer`], [`rollout`] (batched sampling with per-token statistics), [`scoring`] (the
//! teacher-forced pass objectives share), [`backend`] (which burn backend runs it),
//! [`trajectories`] (per-completion entropy trajectories with their signals, written to disk).

pub mod backend;
pub mod bench;
pub mod checkpoint;
pub mod config;
pub mod data;
pub mod decoding;
pub mod error;
pub mod eval;
pub mod metrics_log;
pub mod model;
pub mod objectives;
pub mod optim;
pub mod plan;
pub mod plots;
pub mod record;
pub mod rollout;
pub mod scoring;
pub mod sentinel;
pub mod sia;
pub mod sweep;
pub mod tokenizer;
pub mod train;
pub mod trajectories;
