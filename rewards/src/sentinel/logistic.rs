//! Binary logistic regression with L1 or L2 penalty and balanced class weights, minimised to
//! tight tolerance by proximal Newton (a full Hessian: d ≤ ~20 here), so the optimum does not
//! depend on a solver's stopping rule:
//!
//! `F(w, b) = C · Σ_i s_i · ln(1 + exp(−y_i (x_i·w + b))) + P(w) [+ P(b)]`
//!
//! with y ∈ {−1, +1}, `s_i = n / (2·n_{y_i})` (sklearn's `class_weight="balanced"`) and
//! `P = Σ|w_j|` (L1) or `½ Σ w_j²` (L2). The intercept `b`: scikit-learn's `liblinear` (the
//! released Sentinel's L1 solver) treats it as a feature of constant value 1 and penalises it like
//! the others (`penalise_intercept = true`); `lbfgs` leaves it free (`false`).

use serde::{Deserialize, Serialize};

/// The penalty.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Penalty {
    L1,
    L2,
}

/// A logistic regression's settings.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LogisticParams {
    /// L1 or L2.
    pub penalty: Penalty,
    /// Inverse regularisation strength (sklearn `C`).
    pub c: f64,
    /// Balanced class weights (sklearn `class_weight="balanced"`).
    pub balanced: bool,
    /// Penalise the intercept like a coefficient (liblinear) or not (lbfgs).
    pub penalise_intercept: bool,
}

/// A fitted model.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Logistic {
    /// One coefficient per feature.
    pub coef: Vec<f64>,
    /// The intercept.
    pub intercept: f64,
}

/// ln(1 + e^(−m)) without overflow.
fn softplus_neg(m: f64) -> f64 {
    if m > 0.0 {
        (-m).exp().ln_1p()
    } else {
        -m + m.exp().ln_1p()
    }
}

fn sigmoid(z: f64) -> f64 {
    if z >= 0.0 {
        1.0 / (1.0 + (-z).exp())
    } else {
        let e = z.exp();
        e / (1.0 + e)
    }
}

/// The problem: rows with an appended 1 for the intercept, signed labels, per-row weights.
struct Problem<'a> {
    x: &'a [Vec<f64>],
    y: Vec<f64>,
    /// C · class weight per row.
    cw: Vec<f64>,
    params: LogisticParams,
    /// Number of parameters: d coefficients + the intercept (last).
    p: usize,
}

impl Problem<'_> {
    fn row(&self, i: usize, j: usize) -> f64 {
        if j + 1 == self.p { 1.0 } else { self.x[i][j] }
    }
    fn margin(&self, i: usize, w: &[f64]) -> f64 {
        (0..self.p).map(|j| self.row(i, j) * w[j]).sum::<f64>() * self.y[i]
    }
    fn penalised(&self, j: usize) -> bool {
        j + 1 < self.p || self.params.penalise_intercept
    }
    fn l1(&self, w: &[f64]) -> f64 {
        (0..self.p).filter(|&j| self.penalised(j)).map(|j| w[j].abs()).sum()
    }
    /// The smooth part: loss plus the L2 penalty when L2.
    fn smooth(&self, w: &[f64]) -> f64 {
        let loss: f64 = (0..self.x.len())
            .map(|i| self.cw[i] * softplus_neg(self.margin(i, w)))
            .sum();
        match self.params.penalty {
            Penalty::L1 => loss,
            Penalty::L2 => {
                loss + 0.5
                    * (0..self.p)
                        .filter(|&j| self.penalised(j))
                        .map(|j| w[j] * w[j])
                        .sum::<f64>()
            }
        }
    }
    fn objective(&self, w: &[f64]) -> f64 {
        match self.params.penalty {
            Penalty::L1 => self.smooth(w) + self.l1(w),
            Penalty::L2 => self.smooth(w),
        }
    }
    /// Gradient and Hessian (p × p) of the smooth part.
    fn derivatives(&self, w: &[f64]) -> (Vec<f64>, Vec<Vec<f64>>) {
        let mut g = vec![0.0; self.p];
        let mut h = vec![vec![0.0; self.p]; self.p];
        for i in 0..self.x.len() {
            let m = self.margin(i, w);
            let q = sigmoid(-m); // 1 − σ(m)
            let (gi, hi) = (-self.cw[i] * q * self.y[i], self.cw[i] * q * (1.0 - q));
            for (j, h_row) in h.iter_mut().enumerate() {
                let xj = self.row(i, j);
                g[j] += gi * xj;
                for (k, h_jk) in h_row.iter_mut().enumerate() {
                    *h_jk += hi * xj * self.row(i, k);
                }
            }
        }
        if self.params.penalty == Penalty::L2 {
            for j in (0..self.p).filter(|&j| self.penalised(j)) {
                g[j] += w[j];
                h[j][j] += 1.0;
            }
        }
        (g, h)
    }
    /// The Newton direction of the quadratic model plus the L1 term, by coordinate descent
    /// (soft-thresholding each coordinate); plain Newton when nothing is L1.
    fn direction(&self, w: &[f64], g: &[f64], h: &[Vec<f64>]) -> Vec<f64> {
        let mut d = vec![0.0; self.p];
        let l1 = self.params.penalty == Penalty::L1;
        for _sweep in 0..10_000 {
            let mut change: f64 = 0.0;
            for j in 0..self.p {
                let a = h[j][j].max(1e-300);
                let grad_j = g[j] + (0..self.p).map(|k| h[j][k] * d[k]).sum::<f64>();
                let z0 = w[j] + d[j];
                let unclipped = z0 - grad_j / a;
                let lambda = if l1 && self.penalised(j) { 1.0 / a } else { 0.0 };
                let z = unclipped.signum() * (unclipped.abs() - lambda).max(0.0);
                change = change.max((z - z0).abs());
                d[j] = z - w[j];
            }
            if change < 1e-15 {
                break;
            }
        }
        d
    }
}

impl Logistic {
    /// Fits on rows `x` (n × d) and labels `y`; both classes must be present.
    pub fn fit(x: &[Vec<f64>], y: &[bool], params: LogisticParams) -> Logistic {
        let n = y.len() as f64;
        let n_pos = y.iter().filter(|&&v| v).count() as f64;
        let class_weight = |label: bool| match (params.balanced, label) {
            (false, _) => 1.0,
            (true, true) => n / (2.0 * n_pos),
            (true, false) => n / (2.0 * (n - n_pos)),
        };
        let problem = Problem {
            x,
            y: y.iter().map(|&v| if v { 1.0 } else { -1.0 }).collect(),
            cw: y.iter().map(|&v| params.c * class_weight(v)).collect(),
            params,
            p: x.first().map_or(0, Vec::len) + 1,
        };
        let w = minimise(&problem);
        let (coef, intercept) = w.split_at(problem.p - 1);
        Logistic {
            coef: coef.to_vec(),
            intercept: intercept[0],
        }
    }

    /// x·w + b (sklearn's `decision_function`).
    pub fn decision(&self, row: &[f64]) -> f64 {
        row.iter().zip(&self.coef).map(|(a, b)| a * b).sum::<f64>() + self.intercept
    }

    /// P(positive).
    pub fn proba(&self, row: &[f64]) -> f64 {
        sigmoid(self.decision(row))
    }
}

/// Proximal Newton with a backtracking (Armijo) line search, to a step of 1e-12.
fn minimise(problem: &Problem) -> Vec<f64> {
    let mut w = vec![0.0; problem.p];
    let mut f = problem.objective(&w);
    for _ in 0..500 {
        let (g, h) = problem.derivatives(&w);
        let d = problem.direction(&w, &g, &h);
        let step_size = d.iter().fold(0.0f64, |m, v| m.max(v.abs()));
        if step_size < 1e-12 {
            break;
        }
        let trial = |t: f64| -> Vec<f64> { w.iter().zip(&d).map(|(a, b)| a + t * b).collect() };
        let full = trial(1.0);
        let l1_change = match problem.params.penalty {
            Penalty::L1 => problem.l1(&full) - problem.l1(&w),
            Penalty::L2 => 0.0,
        };
        let decrease = g.iter().zip(&d).map(|(a, b)| a * b).sum::<f64>() + l1_change;
        let mut t = 1.0;
        let mut next = full;
        let mut f_next = problem.objective(&next);
        while f_next > f + 0.01 * t * decrease && t > 1e-10 {
            t *= 0.5;
            next = trial(t);
            f_next = problem.objective(&next);
        }
        if f_next > f {
            break; // no progress left at double precision
        }
        w = next;
        f = f_next;
    }
    w
}
