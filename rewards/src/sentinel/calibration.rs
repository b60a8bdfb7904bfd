//! Probability calibration as scikit-learn's `CalibratedClassifierCV` does it for two classes:
//!
//! * **isotonic**: `IsotonicRegression(out_of_bounds="clip")` — scores sorted (ties by label),
//!   equal scores merged into their mean, pool-adjacent-violators, then linear interpolation
//!   between the fitted points, clipped to the fitted range;
//! * **sigmoid** (Platt): `p = 1 / (1 + exp(a·s + b))` fitted by maximum likelihood on the
//!   smoothed targets `(N₊ + 1)/(N₊ + 2)` and `1/(N₋ + 2)`; solved by Newton's method to
//!   convergence where sklearn stops L-BFGS at a gradient of 1e-6.

use serde::{Deserialize, Serialize};

/// Which calibrator.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CalibrationMethod {
    Isotonic,
    Sigmoid,
}

/// A fitted calibrator: score → probability.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "method", rename_all = "snake_case")]
pub enum Calibrator {
    /// Increasing piecewise-linear map through `(x, y)`, clipped outside `[x₀, x_last]`.
    Isotonic { x: Vec<f64>, y: Vec<f64> },
    /// `1 / (1 + exp(a·s + b))`.
    Sigmoid { a: f64, b: f64 },
}

impl Calibrator {
    /// Fits on scores and labels.
    pub fn fit(method: CalibrationMethod, scores: &[f64], labels: &[bool]) -> Calibrator {
        match method {
            CalibrationMethod::Isotonic => isotonic(scores, labels),
            CalibrationMethod::Sigmoid => {
                let (a, b) = platt(scores, labels);
                Calibrator::Sigmoid { a, b }
            }
        }
    }

    /// The calibrated probability of a score.
    pub fn apply(&self, s: f64) -> f64 {
        match self {
            Calibrator::Isotonic { x, y } => interpolate(x, y, s),
            Calibrator::Sigmoid { a, b } => 1.0 / (1.0 + (a * s + b).exp()),
        }
    }
}

/// Pool-adjacent-violators on `y` with weights `w`, in place (sklearn's
/// `_inplace_contiguous_isotonic_regression`, increasing).
fn pav(y: &mut [f64], w: &mut [f64]) {
    let n = y.len();
    // target[i]: the last index of the block starting at i (and target[last] = its first).
    let mut target: Vec<usize> = (0..n).collect();
    let mut i = 0;
    while i < n {
        let mut k = target[i] + 1;
        if k == n {
            break;
        }
        if y[i] < y[k] {
            i = k;
            continue;
        }
        let (mut sum_wy, mut sum_w) = (w[i] * y[i], w[i]);
        loop {
            let prev_y = y[k];
            sum_wy += w[k] * y[k];
            sum_w += w[k];
            k = target[k] + 1;
            if k == n || prev_y < y[k] {
                y[i] = sum_wy / sum_w;
                w[i] = sum_w;
                target[i] = k - 1;
                target[k - 1] = i;
                if i > 0 {
                    i = target[i - 1]; // back to the previous block
                }
                break;
            }
        }
    }
    let mut i = 0;
    while i < n {
        let k = target[i] + 1;
        let v = y[i];
        y[i + 1..k].fill(v);
        i = k;
    }
}

fn isotonic(scores: &[f64], labels: &[bool]) -> Calibrator {
    let mut order: Vec<usize> = (0..scores.len()).collect();
    order.sort_by(|&a, &b| scores[a].total_cmp(&scores[b]).then(labels[a].cmp(&labels[b])));
    // Merge scores closer than float64 resolution (sklearn's `_make_unique`).
    let (mut x, mut y, mut w): (Vec<f64>, Vec<f64>, Vec<f64>) = (vec![], vec![], vec![]);
    for &i in &order {
        let (s, label) = (scores[i], labels[i] as u8 as f64);
        match x.last() {
            Some(&last) if s - last < 1e-15 => {
                let k = y.len() - 1;
                y[k] += label;
                w[k] += 1.0;
            }
            _ => {
                x.push(s);
                y.push(label);
                w.push(1.0);
            }
        }
    }
    for (yk, wk) in y.iter_mut().zip(&w) {
        *yk /= wk;
    }
    pav(&mut y, &mut w);
    Calibrator::Isotonic { x, y }
}

/// numpy's `interp` after clipping to `[x₀, x_last]`.
fn interpolate(x: &[f64], y: &[f64], s: f64) -> f64 {
    let last = x.len() - 1;
    if s <= x[0] {
        return y[0];
    }
    if s >= x[last] {
        return y[last];
    }
    let j = x.partition_point(|&v| v <= s) - 1; // x[j] <= s < x[j + 1]
    y[j] + (s - x[j]) * (y[j + 1] - y[j]) / (x[j + 1] - x[j])
}

/// Platt's (a, b): Newton's method on the cross-entropy with smoothed targets, step-halving
/// when a step does not lower the loss.
fn platt(scores: &[f64], labels: &[bool]) -> (f64, f64) {
    let n_pos = labels.iter().filter(|&&l| l).count() as f64;
    let n_neg = labels.len() as f64 - n_pos;
    let t: Vec<f64> = labels
        .iter()
        .map(|&l| {
            if l {
                (n_pos + 1.0) / (n_pos + 2.0)
            } else {
                1.0 / (n_neg + 2.0)
            }
        })
        .collect();
    // p = σ(−(a s + b)); loss = Σ softplus(z) − (1 − t) z with z = a s + b (stable form).
    let loss = |a: f64, b: f64| -> f64 {
        scores
            .iter()
            .zip(&t)
            .map(|(&s, &ti)| {
                let z = a * s + b;
                let softplus = if z > 0.0 {
                    z + (-z).exp().ln_1p()
                } else {
                    z.exp().ln_1p()
                };
                softplus - (1.0 - ti) * z
            })
            .sum()
    };
    let (mut a, mut b) = (0.0, ((n_neg + 1.0) / (n_pos + 1.0)).ln());
    let mut current = loss(a, b);
    for _ in 0..200 {
        let (mut ga, mut gb, mut haa, mut hab, mut hbb) = (0.0, 0.0, 0.0, 0.0, 0.0);
        for (&s, &ti) in scores.iter().zip(&t) {
            let q = 1.0 / (1.0 + (-(a * s + b)).exp()); // σ(z) = 1 − p
            let r = q - (1.0 - ti);
            let h = q * (1.0 - q);
            ga += r * s;
            gb += r;
            haa += h * s * s;
            hab += h * s;
            hbb += h;
        }
        let det = haa * hbb - hab * hab;
        if det.abs() < 1e-300 {
            break;
        }
        let (da, db) = ((hbb * ga - hab * gb) / det, (haa * gb - hab * ga) / det);
        let mut step = 1.0;
        let mut next = loss(a - da, b - db);
        while next > current && step > 1e-10 {
            step *= 0.5;
            next = loss(a - step * da, b - step * db);
        }
        if next > current {
            break;
        }
        a -= step * da;
        b -= step * db;
        current = next;
        if (step * da).abs().max((step * db).abs()) < 1e-14 {
            break;
        }
    }
    (a, b)
}
