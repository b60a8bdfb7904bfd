//! Evaluation reports: `report.json` of a checkpoint ([`CheckpointReport`]) and the markdown
//! tables of `report.md` (per checkpoint and per job).

use std::fmt::Write;

use entrl_rewards::Signal;

use serde::{Deserialize, Serialize};

use super::sampled::{ReportHeader, SourceReport};

/// One checkpoint's report (`OUT/<label>/report.json`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CheckpointReport {
    /// What was evaluated and how.
    pub header: ReportHeader,
    /// Per data source, then `all`.
    pub sources: Vec<SourceReport>,
    /// Decoders compared as arms (`eval.decoders`; empty when none).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub decoders: Vec<super::decoders::ArmReport>,
    /// The arms' bootstrap intervals over problems and paired differences (none without arms).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub decoder_intervals: Option<super::bootstrap::Intervals>,
}

fn pct(x: f64) -> String {
    format!("{:.1}", 100.0 * x)
}
fn opt(x: Option<f64>, digits: usize) -> String {
    x.map_or("–".into(), |v| format!("{v:.digits$}"))
}

/// One source's tables.
fn source_md(s: &SourceReport, out: &mut String) {
    let _ = writeln!(
        out,
        "## {} ({} problems, {} samples each)\n",
        s.data_source, s.problems, s.samples
    );
    let _ = writeln!(out, "| metric | % |\n|---|---:|");
    let _ = writeln!(out, "| greedy accuracy | {} |", pct(s.greedy_accuracy));
    let _ = writeln!(out, "| mean@{} | {} |", s.samples, pct(s.mean_at_n));
    let _ = writeln!(
        out,
        "| problems with mixed outcomes (0 < correct < {}) | {} |",
        s.samples,
        pct(s.mixed_share)
    );
    for (k, v) in &s.pass_at_k {
        let _ = writeln!(out, "| pass@{k} | {} |", pct(*v));
    }
    for (k, v) in &s.maj_at_k {
        let _ = writeln!(out, "| maj@{k} | {} |", pct(*v));
    }
    let _ = writeln!(out, "| majority vote over {} | {} |\n", s.samples, pct(s.majority_vote));
    let _ = writeln!(
        out,
        "| signal | better | best-of-{} % | Borda % | AUROC | AUROC within problems |\n|---|---|---:|---:|---:|---:|",
        s.samples
    );
    for sig in Signal::ALL {
        let n = sig.name();
        let _ = writeln!(
            out,
            "| {n} | {} | {} | {} | {} | {} |",
            if sig.higher_is_better() { "higher" } else { "lower" },
            pct(s.best_of_n[n]),
            pct(s.borda[n]),
            opt(s.auroc[n], 3),
            opt(s.auroc_within[n], 3)
        );
    }
    best_k_md(s, out);
    let _ = writeln!(out, "\n| | correct | incorrect |\n|---|---:|---:|");
    let _ = writeln!(
        out,
        "| mean EDIS | {} | {} |",
        opt(s.edis_correct, 3),
        opt(s.edis_incorrect, 3)
    );
    let _ = writeln!(
        out,
        "| mean token entropy (nats) | {} | {} |",
        opt(s.entropy_correct, 3),
        opt(s.entropy_incorrect, 3)
    );
    let _ = writeln!(out, "\nmean completion length: {:.1} tokens\n", s.mean_length);
    intervals_md(s, out);
}

/// The paired bootstrap's differences: the difference on all problems and its 95% interval.
fn intervals_md(s: &SourceReport, out: &mut String) {
    let Some(iv) = &s.intervals else { return };
    let _ = writeln!(
        out,
        "Paired comparisons, 95% intervals from {} bootstrap resamples of the problems (an interval that excludes 0 decides):\n\n| comparison | difference | 95% interval |\n|---|---:|---|",
        iv.resamples
    );
    for (name, [d, lo, hi]) in &iv.differences {
        let _ = writeln!(out, "| {name} | {d:+.3} | [{lo:+.3}, {hi:+.3}] |");
    }
    let _ = writeln!(out);
}

/// The best-k-of-N table: per signal and pool size N, mean accuracy of the kept k, the best one,
/// and the majority vote over the kept k.
fn best_k_md(s: &SourceReport, out: &mut String) {
    let pools: Vec<usize> = s
        .best_k_of_n
        .values()
        .next()
        .map_or(vec![], |p| p.keys().copied().collect());
    if pools.is_empty() {
        return;
    }
    let _ = writeln!(
        out,
        "\nBest-{k}-of-N (EDIS paper §5.1): each pool of N samples ranked by the signal, the {k} most confident kept; \
         mean = their mean accuracy, best = the single most confident, maj = majority vote over the kept {k}.\n",
        k = s.best_k
    );
    let mut head = String::from("| signal |");
    for p in &pools {
        let _ = write!(head, " N={p} mean | N={p} best | N={p} maj |");
    }
    let _ = writeln!(out, "{head}\n|---|{}", "---:|".repeat(3 * pools.len()));
    for sig in Signal::ALL {
        let mut row = format!("| {} |", sig.name());
        for kept in s.best_k_of_n[sig.name()].values() {
            let _ = write!(
                row,
                " {} | {} | {} |",
                pct(kept.mean),
                pct(kept.best),
                pct(kept.majority)
            );
        }
        let _ = writeln!(out, "{row}");
    }
}

/// `OUT/<label>/report.md`.
pub fn checkpoint_md(r: &CheckpointReport) -> String {
    let h = &r.header;
    let mut out = format!(
        "# Evaluation of `{}`{}\n\n{} samples per problem at temperature {} plus greedy; EDIS w = {}, τ_b = {}, τ_r = {}. \
         AUROC is oriented so that > 0.5 means the signal ranks correct samples as more confident; \
         \"within problems\" averages it over problems with both correct and incorrect samples.\n\n",
        h.checkpoint,
        h.step.map_or(String::new(), |s| format!(" (step {s})")),
        h.samples,
        h.temperature,
        h.edis.window,
        h.edis.tau_burst,
        h.edis.tau_rebound
    );
    for s in &r.sources {
        source_md(s, &mut out);
    }
    if !r.decoders.is_empty() {
        decoders_md(&r.decoders, &mut out);
        if let Some(iv) = &r.decoder_intervals {
            decoder_intervals_md(&r.decoders, iv, &mut out);
        }
    }
    out
}

/// The decoder arms: accuracy, pass@k, calibration (AUROC of the predictive entropy and of the
/// signals) and cost side by side.
fn decoders_md(arms: &[super::decoders::ArmReport], out: &mut String) {
    let ks: Vec<usize> = arms[0].pass_at_k.keys().copied().collect();
    let _ = writeln!(
        out,
        "## Decoders as arms ({} problems)\n\nEach arm gives every problem N completions (a tree: at most N leaves). \
         vote = majority (chains) or argmax of the leaf-weighted p(a|x) (tree); AUROC(PE) = AUROC of −predictive \
         entropy for the vote being correct; cost per problem: prompt tokens prefilled and decode-step token rows.\n",
        arms[0].problems
    );
    let pass_head: String = ks.iter().map(|k| format!(" pass@{k} % |")).collect();
    let _ = writeln!(
        out,
        "| decoder | T | completions | mean acc % | vote % |{pass_head} PE | AUROC(PE) | AUROC edis | AUROC conf_mean | prefill tok | decode tok | fwd passes | proc it/tok |"
    );
    let _ = writeln!(
        out,
        "|---|---:|---:|---:|---:|{}---:|---:|---:|---:|---:|---:|---:|---:|",
        "---:|".repeat(ks.len())
    );
    for a in arms {
        let pass: String = ks.iter().map(|k| format!(" {} |", pct(a.pass_at_k[k]))).collect();
        let _ = writeln!(
            out,
            "| {} | {} | {:.1} | {} | {} |{pass} {:.3} | {} | {} | {} | {:.0} | {:.0} | {} | {:.2} |",
            a.label,
            a.temperature,
            a.completions_per_problem,
            pct(a.mean_accuracy),
            pct(a.vote_accuracy),
            a.predictive_entropy,
            opt(a.auroc_predictive_entropy, 3),
            opt(a.auroc.get("edis").copied().flatten(), 3),
            opt(a.auroc.get("conf_mean").copied().flatten(), 3),
            a.prefill_tokens_per_problem,
            a.decoded_tokens_per_problem,
            a.forward_passes,
            a.processor_iterations_per_token
        );
    }
    let _ = writeln!(out);
}

/// The arms' 95% intervals and paired differences.
fn decoder_intervals_md(arms: &[super::decoders::ArmReport], iv: &super::bootstrap::Intervals, out: &mut String) {
    let ci = |k: &str| {
        iv.metrics
            .get(k)
            .map_or("–".into(), |[lo, hi]| format!("[{}, {}]", pct(*lo), pct(*hi)))
    };
    let _ = writeln!(
        out,
        "95% intervals from {} bootstrap resamples of the problems; greedy {}.\n\n| decoder | mean acc | vote | pass@N | AUROC(PE) |\n|---|---|---|---|---|",
        iv.resamples,
        ci("greedy")
    );
    for (a, name) in arms.iter().zip(super::decoders::arm_keys(arms)) {
        let k = a
            .pass_at_k
            .keys()
            .last()
            .map_or(String::new(), |k| ci(&format!("{name}/pass@{k}")));
        let _ = writeln!(
            out,
            "| {name} | {} | {} | {k} | {} |",
            ci(&format!("{name}/mean")),
            ci(&format!("{name}/vote")),
            iv.metrics
                .get(&format!("{name}/auroc_pe"))
                .map_or("–".into(), |[lo, hi]| format!("[{lo:.3}, {hi:.3}]"))
        );
    }
    let _ = writeln!(
        out,
        "\n| comparison | difference (points; AUROC × 100) | 95% interval |\n|---|---:|---|"
    );
    for (k, [d, lo, hi]) in &iv.differences {
        let _ = writeln!(
            out,
            "| {k} | {:+.1} | [{:+.1}, {:+.1}] |",
            100.0 * d,
            100.0 * lo,
            100.0 * hi
        );
    }
    let _ = writeln!(out);
}

/// `OUT/report.md`: one row per checkpoint (all sources together).
pub fn job_md(all: &[CheckpointReport]) -> String {
    let mut out = String::from("# Evaluation job\n\nAll data sources together; accuracies in %.\n\n");
    let Some(first) = all.first().and_then(|r| r.sources.last()) else {
        return out;
    };
    let ks: Vec<usize> = first.pass_at_k.keys().copied().collect();
    let mut head = String::from("| checkpoint | step | greedy | mean@N |");
    for k in &ks {
        let _ = write!(head, " pass@{k} |");
    }
    let _ = write!(head, " majority |");
    for s in Signal::ALL {
        let _ = write!(head, " best-of-N {} |", s.name());
    }
    let _ = write!(head, " AUROC edis | AUROC mean_entropy |");
    let cols = head.matches('|').count() - 1;
    let _ = writeln!(out, "{head}\n|{}", "---|".repeat(cols));
    for r in all {
        let s = r.sources.last().expect("an 'all' row");
        let mut row = format!(
            "| `{}` | {} | {} | {} |",
            r.header.checkpoint,
            r.header.step.map_or("–".into(), |x| x.to_string()),
            pct(s.greedy_accuracy),
            pct(s.mean_at_n)
        );
        for k in &ks {
            let _ = write!(row, " {} |", s.pass_at_k.get(k).map_or("–".into(), |v| pct(*v)));
        }
        let _ = write!(row, " {} |", pct(s.majority_vote));
        for sig in Signal::ALL {
            let _ = write!(row, " {} |", pct(s.best_of_n[sig.name()]));
        }
        let _ = write!(
            row,
            " {} | {} |",
            opt(s.auroc["edis"], 3),
            opt(s.auroc["mean_entropy"], 3)
        );
        let _ = writeln!(out, "{row}");
    }
    out
}
