//! Few-row products for decode steps on burn-flex: `y [m, n] = x [m, k] · W [n, k]ᵀ` with W in
//! Hugging Face layout, read in place.
//!
//! Why: burn-flex hands every matmul to `gemm`, which for a row-major output transposes the problem
//! and *packs W* — the whole weight, 113 MB for SmolLM2's output head — on every call. A decode
//! step at 16 rows then moves each weight through memory about three times and spent 36% of a
//! SmolLM2 rollout in `pack_lhs` (perf, docs/LOG.md). Here each thread streams its share of W's rows
//! once and dots each with the m rows of x, which stay in cache; 4 × 4 (AVX-512) or 2 × 4 (AVX2)
//! register tiles of FMA accumulators, one horizontal sum per output; the next group of W rows is
//! prefetched while the current one is multiplied (`Prefetch`).
//!
//! Each output is one dot product summed by one thread in a fixed order, so results do not depend
//! on the thread count; they do depend on the CPU kind (16 lanes with AVX-512, 8 with AVX2).

use std::any::{Any, TypeId};

use burn::backend::Flex;
use burn::tensor::backend::Backend;
use burn::tensor::{DType, Tensor, TensorData};
use pulp::{Simd, WithSimd};
use rayon::prelude::*;

/// The most rows (`m`) the skinny path takes; above it `gemm`'s packing pays for itself (prefill,
/// scoring, training). Measured crossover on this project's 2-core CPU: docs/LOG.md.
pub const MAX_ROWS: usize = 32;
/// The smallest weight (elements) the skinny path takes: smaller ones stay cache-resident, where
/// packing costs little (the quickstart's 0.8M-parameter model keeps `gemm`, and its results).
pub const MIN_WEIGHT: usize = 1 << 16;

/// `x [m, k] · w [n, k]ᵀ` for an HF-layout weight: the skinny kernel where it applies (see
/// [`try_skinny`]), burn's matmul on the transposed view otherwise.
pub fn matmul_nt<B: Backend>(x: Tensor<B, 2>, w: Tensor<B, 2>) -> Tensor<B, 2> {
    try_skinny(&x, &w).unwrap_or_else(|| x.matmul(w.transpose()))
}

/// `x [m, k] · w [n, k]ᵀ` through the skinny kernel when `B` is burn-flex, both are f32, `m ≤
/// MAX_ROWS` and `n·k ≥ MIN_WEIGHT`; `None` otherwise.
fn try_skinny<B: Backend>(x: &Tensor<B, 2>, w: &Tensor<B, 2>) -> Option<Tensor<B, 2>> {
    let ([m, k], [n, kw]) = (x.dims(), w.dims());
    if TypeId::of::<B>() != TypeId::of::<Flex>() || m > MAX_ROWS || n * k < MIN_WEIGHT || k != kw {
        return None;
    }
    let (x, w) = (to_flex(x.clone())?, to_flex(w.clone())?);
    let (x, w) = (x.into_primitive().tensor(), w.into_primitive().tensor());
    if x.dtype() != DType::F32 || w.dtype() != DType::F32 {
        return None;
    }
    let x = if x.is_contiguous() { x } else { x.to_contiguous() };
    let y = product(x.as_slice::<f32>()?, m, w.as_slice::<f32>()?, n, k);
    let y = Tensor::<Flex, 2>::from_data(TensorData::new(y, [m, n]), &Default::default());
    from_flex(y)
}

fn to_flex<B: Backend>(t: Tensor<B, 2>) -> Option<Tensor<Flex, 2>> {
    (Box::new(t) as Box<dyn Any>).downcast().ok().map(|b| *b)
}

fn from_flex<B: Backend>(t: Tensor<Flex, 2>) -> Option<Tensor<B, 2>> {
    (Box::new(t) as Box<dyn Any>).downcast().ok().map(|b| *b)
}

/// `y [m, n] = x [m, k] · w [n, k]ᵀ`, row-major slices; W's rows split across rayon's threads.
pub fn product(x: &[f32], m: usize, w: &[f32], n: usize, k: usize) -> Vec<f32> {
    products(x, m, &[(w, n)], k).pop().expect("one product")
}

/// Several products of the same `x [m, k]` — `y_i [m, n_i] = x · w_iᵀ` for each `(w_i, n_i)` —
/// in one parallel pass over all weights' row blocks (one rayon dispatch instead of one per
/// weight: a decode step's q/k/v and gate/up). Each output is the same dot product as
/// [`product`]'s, summed in the same order.
pub fn products(x: &[f32], m: usize, ws: &[(&[f32], usize)], k: usize) -> Vec<Vec<f32>> {
    // Blocks of W rows: ~8 per thread for balance, a multiple of the 4-row tile.
    let threads = rayon::current_num_threads().max(1);
    let total: usize = ws.iter().map(|(_, n)| n).sum();
    let block = (total.div_ceil(threads * 8).div_ceil(4) * 4).max(16);
    // (weight, first row, rows of W): every weight's rows cut into blocks
    let jobs: Vec<(usize, usize, &[f32])> = ws
        .iter()
        .enumerate()
        .flat_map(|(i, &(w, n))| {
            assert!(x.len() == m * k && w.len() == n * k, "skinny: shapes");
            w.chunks(block * k).enumerate().map(move |(b, wb)| (i, b * block, wb))
        })
        .collect();
    let outs: Vec<Vec<f32>> = jobs
        .par_iter()
        .map(|&(_, _, wb)| {
            let nb = wb.len() / k;
            let mut out = vec![0f32; m * nb];
            block_product(x, m, wb, nb, k, &mut out);
            out
        })
        .collect();
    let mut ys: Vec<Vec<f32>> = ws.iter().map(|&(_, n)| vec![0f32; m * n]).collect();
    for (&(i, j0, _), out) in jobs.iter().zip(&outs) {
        let (n, nb) = (ws[i].1, out.len() / m);
        for r in 0..m {
            ys[i][r * n + j0..r * n + j0 + nb].copy_from_slice(&out[r * nb..(r + 1) * nb]);
        }
    }
    ys
}

/// One block: `out [m, nb] = x [m, k] · wb [nb, k]ᵀ`, with the widest SIMD this CPU has (pulp's
/// runtime dispatch: AVX-512, AVX2+FMA, SSE, NEON or scalar).
pub(crate) fn block_product(x: &[f32], m: usize, wb: &[f32], nb: usize, k: usize, out: &mut [f32]) {
    pulp::Arch::new().dispatch(Block { x, m, wb, nb, k, out });
}

/// The arguments of [`block_product`], as pulp's dispatch wants them.
struct Block<'a> {
    x: &'a [f32],
    m: usize,
    wb: &'a [f32],
    nb: usize,
    k: usize,
    out: &'a mut [f32],
}

impl WithSimd for Block<'_> {
    type Output = ();

    #[inline(always)]
    fn with_simd<S: Simd>(self, simd: S) {
        // 4 × 4 accumulators fit AVX-512's 32 registers; narrower vectors (16 registers) take 2 × 4.
        // (Measured on a SmolLM2 rollout: 16 × 1, 8 × 2 and 6 × 2 tiles were slower, 4 × 3 the same;
        // docs/LOG.md.)
        if std::mem::size_of::<S::f32s>() >= 64 {
            self.tiles::<S, 4, 4>(simd);
        } else {
            self.tiles::<S, 2, 4>(simd);
        }
    }
}

impl Block<'_> {
    /// Walks W in groups of up to `NR` rows; for each, x in groups of up to `MR` rows. While a
    /// group is being multiplied, the next group's rows are prefetched, a share in each x pass.
    #[inline(always)]
    fn tiles<S: Simd, const MR: usize, const NR: usize>(self, simd: S) {
        let Block { x, m, wb, nb, k, out } = self;
        let prefetch = Prefetch::new();
        let passes = m.div_ceil(MR);
        let mut j = 0;
        while j < nb {
            let nr = (nb - j).min(NR);
            let w_rows: [&[f32]; NR] = std::array::from_fn(|c| {
                let r = j + c.min(nr - 1); // unused slots repeat the last row
                &wb[r * k..(r + 1) * k]
            });
            let next = &wb[((j + nr) * k).min(wb.len())..((j + nr + NR) * k).min(wb.len())];
            let share = next.len().div_ceil(passes);
            let mut i = 0;
            while i < m {
                let mr = (m - i).min(MR);
                let x_rows: [&[f32]; MR] = std::array::from_fn(|r| {
                    let r = i + r.min(mr - 1);
                    &x[r * k..(r + 1) * k]
                });
                let q = i / MR;
                let ahead = &next[(q * share).min(next.len())..((q + 1) * share).min(next.len())];
                let dots = tile::<S, MR, NR>(simd, x_rows, w_rows, &prefetch, ahead);
                for (r, row) in dots.iter().enumerate().take(mr) {
                    out[(i + r) * nb + j..(i + r) * nb + j + nr].copy_from_slice(&row[..nr]);
                }
                i += mr;
            }
            j += nr;
        }
    }
}

/// Software prefetch into L1 (x86-64; a no-op elsewhere). Why: W streams from memory once per
/// decode step (540 MB for SmolLM2), and each group of W rows is multiplied by every x pass from
/// L1 before the next group is read. The hardware prefetcher does not run ahead of that bursty
/// pattern: the head's product at 16 rows took 7.6 ms without and 5.0 ms with (docs/LOG.md).
struct Prefetch {
    #[cfg(target_arch = "x86_64")]
    sse: Option<pulp::core_arch::x86::Sse>,
}

impl Prefetch {
    #[inline(always)]
    fn new() -> Self {
        Prefetch {
            #[cfg(target_arch = "x86_64")]
            sse: pulp::core_arch::x86::Sse::try_new(),
        }
    }

    /// Asks for the cache line holding `span[at]`, if `at` is inside `span`.
    #[inline(always)]
    fn line(&self, span: &[f32], at: usize) {
        #[cfg(target_arch = "x86_64")]
        if let (Some(sse), Some(v)) = (self.sse, span.get(at)) {
            sse._mm_prefetch::<{ std::arch::x86_64::_MM_HINT_T0 }>((v as *const f32).cast());
        }
        #[cfg(not(target_arch = "x86_64"))]
        let _ = (span, at);
    }
}

/// `MR × NR` dot products of equal-length rows: vector FMAs over the SIMD head, one horizontal
/// sum each, then the scalar tail. `ahead` (W rows of the next group) is prefetched spread over
/// the iterations, a few 64-byte lines (16 floats) per iteration.
#[inline(always)]
fn tile<S: Simd, const MR: usize, const NR: usize>(
    simd: S,
    x_rows: [&[f32]; MR],
    w_rows: [&[f32]; NR],
    prefetch: &Prefetch,
    ahead: &[f32],
) -> [[f32; NR]; MR] {
    let zero = simd.splat_f32s(0.0);
    let mut acc = [[zero; NR]; MR];
    let xs: [(&[S::f32s], &[f32]); MR] = x_rows.map(S::as_simd_f32s);
    let ws: [(&[S::f32s], &[f32]); NR] = w_rows.map(S::as_simd_f32s);
    let iters = ws[0].0.len();
    let lines_per_iter = ahead.len().div_ceil(16).div_ceil(iters.max(1));
    for p in 0..iters {
        for l in 0..lines_per_iter {
            prefetch.line(ahead, (p * lines_per_iter + l) * 16);
        }
        let wv: [S::f32s; NR] = std::array::from_fn(|c| ws[c].0[p]);
        for (acc_r, (xh, _)) in acc.iter_mut().zip(&xs) {
            let xv = xh[p];
            for (a, w) in acc_r.iter_mut().zip(wv) {
                *a = simd.mul_add_e_f32s(xv, w, *a);
            }
        }
    }
    let mut out = [[0f32; NR]; MR];
    for r in 0..MR {
        for c in 0..NR {
            let tail: f32 = xs[r].1.iter().zip(ws[c].1).map(|(a, b)| a * b).sum();
            out[r][c] = simd.reduce_sum_f32s(acc[r][c]) + tail;
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Plain f64 triple loop: the reference.
    fn reference(x: &[f32], m: usize, w: &[f32], n: usize, k: usize) -> Vec<f64> {
        let mut y = vec![0f64; m * n];
        for i in 0..m {
            for j in 0..n {
                y[i * n + j] = (0..k).map(|q| x[i * k + q] as f64 * w[j * k + q] as f64).sum();
            }
        }
        y
    }

    fn pseudo(len: usize, seed: u32) -> Vec<f32> {
        (0..len)
            .map(|i| (((i as u32).wrapping_mul(2_654_435_761) ^ seed) % 2001) as f32 / 1000.0 - 1.0)
            .collect()
    }

    #[test]
    fn matches_the_f64_reference_on_ragged_shapes() {
        // m, n, k not multiples of the tiles or lanes; n spans several rayon blocks
        for (m, n, k) in [(1, 7, 5), (3, 130, 37), (5, 301, 64), (16, 577, 100), (32, 64, 576)] {
            let (x, w) = (pseudo(m * k, 1), pseudo(n * k, 2));
            let y = product(&x, m, &w, n, k);
            let r = reference(&x, m, &w, n, k);
            let err = y.iter().zip(&r).map(|(a, b)| (*a as f64 - b).abs()).fold(0.0, f64::max);
            assert!(err < 1e-4 * (k as f64).sqrt(), "m={m} n={n} k={k}: max error {err}");
        }
    }

    #[test]
    fn several_weights_in_one_pass_equal_one_product_each() {
        for (m, k, shapes) in [
            (5, 70, [(33, 3), (130, 4), (7, 5)]),
            (6, 128, [(128, 3), (64, 4), (64, 5)]),
        ] {
            let ws: Vec<(Vec<f32>, usize)> = shapes.map(|(n, s)| (pseudo(n * k, s), n)).into();
            let x = pseudo(m * k, 9);
            let refs: Vec<(&[f32], usize)> = ws.iter().map(|(w, n)| (w.as_slice(), *n)).collect();
            let ys = products(&x, m, &refs, k);
            for ((w, n), y) in ws.iter().zip(&ys) {
                let one = product(&x, m, w, *n, k);
                assert!(
                    y.iter().zip(&one).all(|(a, b)| a.to_bits() == b.to_bits()),
                    "bitwise equal to one product"
                );
            }
        }
    }

    #[test]
    fn burn_flex_products_take_the_skinny_path_and_agree_with_burn() {
        type B = Flex;
        let dev = Default::default();
        let (m, n, k) = (16, 600, 128);
        let x = Tensor::<B, 2>::from_data(TensorData::new(pseudo(m * k, 5), [m, k]), &dev);
        let w = Tensor::<B, 2>::from_data(TensorData::new(pseudo(n * k, 6), [n, k]), &dev);
        let fast = try_skinny(&x, &w).expect("16 rows, 76800-element weight: skinny path");
        let slow = x.clone().matmul(w.clone().transpose());
        let diff = (fast - slow).abs().max().into_scalar();
        assert!(diff < 1e-4, "skinny vs burn: {diff}");
        // too many rows or too small a weight: burn's own matmul
        let x_tall = Tensor::<B, 2>::from_data(TensorData::new(pseudo(64 * k, 7), [64, k]), &dev);
        assert!(try_skinny(&x_tall, &w).is_none());
        let w_small = w.narrow(0, 0, 100);
        assert!(try_skinny(&x, &w_small).is_none());
    }
}
