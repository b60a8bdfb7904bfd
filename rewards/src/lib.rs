//! Tensor-free rewards and entropy-trajectory signals.
