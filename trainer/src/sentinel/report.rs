//! Estimates per domain against the verifier's accuracy, for the Sentinel and its baselines;
//! errors and rank agreement across domains; `report.md`, `report.json` and a scatter plot.

use std::collections::BTreeMap;
use std::fmt::Write;
use std::path::Path;

use anyhow::bail;
use entrl_rewards::stats::{auroc, pearson, spearman};
use serde::{Deserialize, Serialize};

use super::{DomainAnswers, SentinelFile, row, split};

/// One domain's truth and estimates.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DomainEstimate {
    /// Domain name.
    pub name: String,
    /// A training domain (then only its held-out part is scored).
    pub train: bool,
    /// Answers scored.
    pub answers: usize,
    /// The verifier's accuracy.
    pub accuracy: f64,
    /// Estimates by method (`sentinel`, `length_only`, `atc[<column>]`).
    pub estimates: BTreeMap<String, f64>,
    /// Per-answer AUROC of the Sentinel's P(correct) (null with one class).
    pub auroc: Option<f64>,
    /// Per method, each scored answer's contribution (P(correct), or ATC's 0/1): an estimate is
    /// their mean. Kept for the bootstrap, not written.
    #[serde(skip)]
    pub values: BTreeMap<String, Vec<f64>>,
    /// Each scored answer's verdict (same order). Not written.
    #[serde(skip)]
    pub correct: Vec<bool>,
}

/// One method across domains.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MethodSummary {
    /// Method name.
    pub method: String,
    /// Mean absolute error of the estimates.
    pub mae: f64,
    /// Spearman's ρ between estimates and accuracies (null when either is constant).
    pub spearman: Option<f64>,
    /// Pearson's r.
    pub pearson: Option<f64>,
}

/// The whole report.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SentinelReport {
    /// The model whose answers were scored.
    pub model: String,
    /// The model that trained the Sentinel.
    pub fitted_on: String,
    /// The Sentinel's feature columns.
    pub columns: Vec<String>,
    /// The chosen classifier (JSON of its spec) and the grid's fold AUROCs.
    pub selected: String,
    /// Mean fold AUROC of each grid entry.
    pub grid_auroc: Vec<f64>,
    /// Per domain.
    pub domains: Vec<DomainEstimate>,
    /// Per method, across domains.
    pub summary: Vec<MethodSummary>,
    /// 95% intervals of each method's MAE, Spearman ρ and Pearson r by a bootstrap of the scored
    /// answers within each domain (the fitted Sentinel held fixed), with paired differences
    /// (`sentinel::intervals`; `None` until computed).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub intervals: Option<crate::eval::bootstrap::Intervals>,
}

/// Scores every domain (a training domain by its held-out part) with the file's Sentinel and
/// baselines. A domain without answers is an error naming it.
pub fn estimate(file: &SentinelFile, domains: &[DomainAnswers], model: &str) -> anyhow::Result<SentinelReport> {
    let length = [super::LENGTH.to_string()];
    let mut out = Vec::new();
    for d in domains {
        let trained = file.training_domains.contains(&d.name);
        let rows = if trained {
            split(&d.answers, file.train_fraction, file.seed).1
        } else {
            d.answers.iter().collect()
        };
        if rows.is_empty() {
            bail!(
                "domain '{}': no labelled answers to score ({} dropped as truncated or empty)",
                d.name,
                d.dropped
            );
        }
        let x: Vec<Vec<f64>> = rows
            .iter()
            .map(|a| row(a, &file.columns, &d.name))
            .collect::<anyhow::Result<_>>()?;
        let y: Vec<bool> = rows.iter().map(|a| a.correct).collect();
        let p: Vec<f64> = x.iter().map(|r| file.sentinel.proba(r)).collect();
        let mut values = BTreeMap::new();
        values.insert("sentinel".to_string(), p.clone());
        let lengths: Vec<f64> = rows
            .iter()
            .map(|a| row(a, &length, &d.name).map(|r| file.length_only.proba(&r)))
            .collect::<anyhow::Result<_>>()?;
        values.insert("length_only".into(), lengths);
        for (col, atc) in &file.atc {
            let s: Vec<f64> = rows
                .iter()
                .map(|a| row(a, std::slice::from_ref(col), &d.name).map(|r| f64::from(u8::from(atc.accepts(r[0])))))
                .collect::<anyhow::Result<_>>()?;
            values.insert(format!("atc[{col}]"), s);
        }
        let estimates = values
            .iter()
            .map(|(k, v)| (k.clone(), v.iter().sum::<f64>() / v.len() as f64))
            .collect();
        out.push(DomainEstimate {
            name: d.name.clone(),
            train: trained,
            answers: rows.len(),
            accuracy: y.iter().filter(|&&c| c).count() as f64 / y.len() as f64,
            estimates,
            auroc: auroc(&p, &y),
            values,
            correct: y,
        });
    }
    Ok(SentinelReport {
        model: model.into(),
        fitted_on: file.model.clone(),
        columns: file.columns.clone(),
        selected: serde_json::to_string(&file.sentinel.selected)?,
        grid_auroc: file.sentinel.grid_auroc.clone(),
        summary: summarise(&out),
        intervals: None,
        domains: out,
    })
}

/// MAE, Spearman ρ and Pearson r of every method across `domains`.
pub fn summarise(domains: &[DomainEstimate]) -> Vec<MethodSummary> {
    let truth: Vec<f64> = domains.iter().map(|d| d.accuracy).collect();
    let methods: Vec<String> = domains
        .first()
        .map_or(vec![], |d| d.estimates.keys().cloned().collect());
    let mut out: Vec<MethodSummary> = methods
        .into_iter()
        .map(|m| {
            let est: Vec<f64> = domains.iter().map(|d| d.estimates[&m]).collect();
            let mae = est.iter().zip(&truth).map(|(e, t)| (e - t).abs()).sum::<f64>() / est.len() as f64;
            MethodSummary {
                spearman: spearman(&est, &truth),
                pearson: pearson(&est, &truth),
                mae,
                method: m,
            }
        })
        .collect();
    out.sort_by_key(|s| (s.method != "sentinel", s.method.clone()));
    out
}

fn opt(v: Option<f64>) -> String {
    v.map_or("–".into(), |x| format!("{x:.3}"))
}

/// The report as markdown.
pub fn markdown(r: &SentinelReport) -> String {
    let mut s = format!(
        "# Entropy Sentinel\n\nAnswers of `{}`; Sentinel fitted on answers of `{}`.\n\n",
        r.model, r.fitted_on
    );
    let _ = writeln!(
        s,
        "Features: {}. Chosen classifier: `{}` (grid fold AUROCs {:?}).\n",
        r.columns.join(", "),
        r.selected,
        r.grid_auroc
            .iter()
            .map(|v| (v * 1000.0).round() / 1000.0)
            .collect::<Vec<_>>()
    );
    let methods: Vec<String> = r.summary.iter().map(|m| m.method.clone()).collect();
    let _ = writeln!(
        s,
        "| domain | answers | true acc | Sentinel | abs err | AUROC | {} |",
        methods[1..].join(" | ")
    );
    let _ = writeln!(s, "|---|---|---|---|---|---|{}", "---|".repeat(methods.len() - 1));
    for d in &r.domains {
        let est = d.estimates["sentinel"];
        let others: Vec<String> = methods[1..].iter().map(|m| format!("{:.3}", d.estimates[m])).collect();
        let name = if d.train {
            format!("{} (train, held-out part)", d.name)
        } else {
            d.name.clone()
        };
        let _ = writeln!(
            s,
            "| {name} | {} | {:.3} | {est:.3} | {:.3} | {} | {} |",
            d.answers,
            d.accuracy,
            (est - d.accuracy).abs(),
            opt(d.auroc),
            others.join(" | ")
        );
    }
    let ci = |k: String| {
        r.intervals
            .as_ref()
            .and_then(|iv| iv.metrics.get(&k))
            .map_or(String::new(), |[lo, hi]| format!(" [{lo:.3}, {hi:.3}]"))
    };
    s.push_str("\n| method | MAE [95%] | Spearman ρ [95%] | Pearson r |\n|---|---|---|---|\n");
    for m in &r.summary {
        let _ = writeln!(
            s,
            "| {} | {:.3}{} | {}{} | {} |",
            m.method,
            m.mae,
            ci(format!("mae/{}", m.method)),
            opt(m.spearman),
            ci(format!("spearman/{}", m.method)),
            opt(m.pearson)
        );
    }
    if let Some(iv) = &r.intervals {
        let _ = writeln!(
            s,
            "\nIntervals: {} bootstrap resamples of the scored answers within each domain, the fitted \
             Sentinel held fixed. Paired differences:\n\n| difference | value | 95% |\n|---|---:|---|",
            iv.resamples
        );
        for (k, [d, lo, hi]) in &iv.differences {
            let _ = writeln!(s, "| {k} | {d:+.3} | [{lo:+.3}, {hi:+.3}] |");
        }
    }
    s
}

/// Writes `report.md`, `report.json` and `plots/sentinel_scatter.{svg,png}` under `dir`.
pub fn write(r: &SentinelReport, dir: &Path) -> anyhow::Result<()> {
    std::fs::create_dir_all(dir)?;
    std::fs::write(dir.join("report.md"), markdown(r))?;
    std::fs::write(dir.join("report.json"), serde_json::to_string_pretty(r)?)?;
    let points: Vec<(String, Vec<(f64, f64)>)> = ["sentinel", "length_only", "atc[max]"]
        .iter()
        .filter(|m| r.domains.first().is_some_and(|d| d.estimates.contains_key(**m)))
        .map(|m| {
            (
                m.to_string(),
                r.domains.iter().map(|d| (d.accuracy, d.estimates[*m])).collect(),
            )
        })
        .collect();
    let labels: Vec<String> = r.domains.iter().map(|d| d.name.clone()).collect();
    crate::plots::scatter(
        &dir.join("plots/sentinel_scatter"),
        &points,
        &labels,
        "Entropy Sentinel: estimated vs true accuracy per domain",
    )?;
    Ok(())
}
