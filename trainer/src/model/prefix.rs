//! Shared-prompt forward passes: the G completions of a prompt run the prompt once, not G times.
//!
//! A GRPO batch holds `N` completion rows but only `P` distinct prompts (`N = P·G`). The prompt
//! pass runs `[P, Lp]` tokens through every layer and keeps each layer's keys and values; the
//! completion pass runs `[N, Tc]` tokens whose attention sees, per layer, its own prompt's keys
//! (picked with `select`, whose backward sums the G rows' gradients back onto the prompt) followed
//! by its own causal keys. Mathematically this is the full `[N, Lp + Tc]` pass; only the order of
//! some float sums differs. Per layer it costs `P·Lp + N·Tc` token rows instead of `N·(Lp + Tc)`.

use burn::tensor::backend::Backend;
use burn::tensor::{Int, Tensor};

use super::transformer::{Keys, LayerKv, Rope, Transformer};

/// What the prompt pass leaves for the completion pass.
pub struct PromptPass<B: Backend> {
    /// Final hidden states `[P, Lp, D]` (after the last RMSNorm).
    pub hidden: Tensor<B, 3>,
    /// Each layer's keys and values `[P, K, Lp, E]`, after rotary embedding.
    pub kv: Vec<LayerKv<B>>,
}

impl<B: Backend> Transformer<B> {
    /// Runs the distinct prompts `tokens [P, Lp]` (rotary tables `rope`, bias `[P, 1, Lp, Lp]`).
    pub fn forward_prompts(&self, tokens: Tensor<B, 2, Int>, rope: &Rope<B>, bias: &Tensor<B, 4>) -> PromptPass<B> {
        let mut x = self.embed(tokens);
        let mut kv = Vec::with_capacity(self.layers.len());
        for layer in &self.layers {
            let out = layer.forward(x, rope, bias, self.config(), Keys::Own, None);
            x = out.x;
            kv.push(out.kv.expect("an own-keys pass returns its keys"));
        }
        PromptPass {
            hidden: self.final_norm(x),
            kv,
        }
    }

    /// Runs `tokens [N, Tc]` that continue the prompts of `prompts`: row i continues prompt
    /// `prompt_of_row[i]` (an index tensor `[N]` into the prompt pass's rows). `bias` is
    /// `[N, 1, Tc, Lp + Tc]` over the prompt's keys then the row's own. Returns hidden `[N, Tc, D]`.
    pub fn forward_after_prompts(
        &self,
        tokens: Tensor<B, 2, Int>,
        rope: &Rope<B>,
        bias: &Tensor<B, 4>,
        prompts: &PromptPass<B>,
        prompt_of_row: &Tensor<B, 1, Int>,
    ) -> Tensor<B, 3> {
        let mut x = self.embed(tokens);
        for (layer, (k, v)) in self.layers.iter().zip(&prompts.kv) {
            let shared = (
                k.clone().select(0, prompt_of_row.clone()), // [N, K, Lp, E]
                v.clone().select(0, prompt_of_row.clone()),
            );
            x = layer
                .forward(x, rope, bias, self.config(), Keys::Prefix(shared), None)
                .x;
        }
        self.final_norm(x)
    }
}
