//! `entrl eval`: sampled evaluation of one checkpoint, every checkpoint of a run directory (in
//! step order), or a list. Each checkpoint gets `OUT/<label>/{report.json, report.md,
//! trajectories/}`; `OUT/report.json` and `OUT/report.md` collect them. A checkpoint whose
//! `report.json` exists is skipped, so a killed job re-run finishes only what is missing.

use std::path::{Path, PathBuf};

use anyhow::{Context, bail};
use burn::tensor::backend::Backend;

use super::EvalSpec;
use super::report::CheckpointReport;
use super::sampled::{ReportHeader, SampleSpec, SummarySpec, report, run_problems};
use crate::checkpoint;
use crate::config::RunFile;
use crate::model;
use crate::plan::{EvalPlan, ModelInputs, calibration_problems};
use crate::trajectories::{self, Header, Record};

/// A checkpoint to evaluate: its directory, a label for its output folder, its step if known.
#[derive(Debug, Clone, PartialEq)]
pub struct Target {
    /// HF model directory.
    pub dir: PathBuf,
    /// Output folder name.
    pub label: String,
    /// Global step (from `trainer_state.json`).
    pub step: Option<u64>,
}

fn step_of(dir: &Path) -> Option<u64> {
    let s = std::fs::read_to_string(dir.join("trainer_state.json")).ok()?;
    serde_json::from_str::<checkpoint::TrainerState>(&s)
        .ok()
        .map(|st| st.global_step)
}

/// Expands paths into checkpoints: a model directory is itself; a run directory gives every
/// complete `checkpoints/step-N` in step order (or its `final/` if it has none).
pub fn resolve_targets(paths: &[PathBuf]) -> anyhow::Result<Vec<Target>> {
    let mut out: Vec<Target> = vec![];
    for p in paths {
        if p.join("model.safetensors").exists() {
            let tail: Vec<String> = p
                .components()
                .rev()
                .take(2)
                .map(|c| c.as_os_str().to_string_lossy().into_owned())
                .collect();
            let label: String = tail
                .into_iter()
                .rev()
                .collect::<Vec<_>>()
                .join("-")
                .chars()
                .map(|c| {
                    if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
                        c
                    } else {
                        '_'
                    }
                })
                .collect();
            out.push(Target {
                dir: p.clone(),
                label,
                step: step_of(p),
            });
        } else if checkpoint::checkpoints_dir(p).is_dir() || p.join("final").is_dir() {
            let list = checkpoint::list(p);
            if list.is_empty() {
                out.extend(resolve_targets(&[p.join("final")])?);
            }
            for (step, dir) in list {
                out.push(Target {
                    dir,
                    label: format!("step-{step:06}"),
                    step: Some(step),
                });
            }
        } else {
            bail!(
                "{}: neither a model directory (model.safetensors) nor a run directory (checkpoints/)",
                p.display()
            );
        }
    }
    for (i, t) in out.iter().enumerate() {
        if out[..i].iter().any(|u| u.label == t.label) {
            bail!("two checkpoints would share the output folder '{}'", t.label);
        }
    }
    Ok(out)
}

/// `eval.decoders` run as arms (none when the list is empty); a tree calibrates on the first
/// `eval.calibration_problems` training problems.
fn decoder_arms<B: Backend>(
    model: &model::Transformer<B>,
    spec: &EvalSpec,
    plan: &EvalPlan,
    run: &RunFile,
) -> anyhow::Result<Vec<super::decoders::ArmReport>> {
    if run.eval.decoders.is_empty() {
        return Ok(vec![]);
    }
    let calibration = calibration_problems(run)?;
    let arm = super::decoders::ArmSpec {
        n: run.eval.samples,
        temperature: plan.sampled.temperature,
        seed: run.seed,
        ks: &run.eval.ks,
        calibration: &calibration,
    };
    let mut out = vec![];
    for d in &run.eval.decoders {
        let t0 = std::time::Instant::now();
        let r = super::decoders::run_arm(model, &plan.problems, spec, d, &arm)?;
        tracing::info!(
            "decoder arm {}: vote {:.3}, mean {:.3}, AUROC(PE) {:?} ({:.0} s)",
            r.decoder,
            r.vote_accuracy,
            r.mean_accuracy,
            r.auroc_predictive_entropy,
            t0.elapsed().as_secs_f64()
        );
        out.push(r);
    }
    Ok(out)
}

/// Evaluates every target (skipping those with a finished report) and writes the combined report.
pub fn eval_job<B: Backend>(
    run: &RunFile,
    targets: &[Target],
    out_dir: &Path,
    device: &B::Device,
) -> anyhow::Result<Vec<CheckpointReport>> {
    let plan = EvalPlan::resolve(run)?;
    std::fs::create_dir_all(out_dir).with_context(|| format!("creating {}", out_dir.display()))?;
    let mut all = vec![];
    for t in targets {
        let done = out_dir.join(&t.label).join("report.json");
        if done.exists() {
            let r: CheckpointReport = serde_json::from_str(&std::fs::read_to_string(&done)?)
                .with_context(|| format!("{}", done.display()))?;
            tracing::info!("{}: already evaluated, skipped", t.label);
            all.push(r);
            continue;
        }
        all.push(eval_target::<B>(run, &plan, t, &out_dir.join(&t.label), device)?);
    }
    std::fs::write(out_dir.join("report.json"), serde_json::to_string_pretty(&all)?)?;
    std::fs::write(out_dir.join("report.md"), super::report::job_md(&all))?;
    Ok(all)
}

/// One checkpoint: greedy and sampled completions of every problem, the decoder arms, the
/// trajectories, plots and report in `dir` (`report.json` last: it marks the target done).
fn eval_target<B: Backend>(
    run: &RunFile,
    plan: &EvalPlan,
    t: &Target,
    dir: &Path,
    device: &B::Device,
) -> anyhow::Result<CheckpointReport> {
    let model = model::load_hf_dir::<B>(&t.dir, device)?;
    let inputs = ModelInputs::resolve(run, Some(&t.dir), model.config())?;
    let spec = EvalSpec::new(plan, &inputs);
    let ss = SampleSpec {
        samples: run.eval.samples,
        sampling: plan.sampled.params(),
        seed: run.seed,
        ks: run.eval.ks.clone(),
        best_k: run.eval.best_k,
    };
    let t0 = std::time::Instant::now();
    let results = run_problems(&model, &plan.problems, &spec, &ss)?;
    let step = t.step.unwrap_or(0);
    let samples: Vec<Record> = results.iter().flat_map(|r| r.samples.iter().cloned()).collect();
    let greedy: Vec<Record> = results.iter().map(|r| r.greedy.clone()).collect();
    for (label, recs) in [("samples", &samples), ("greedy", &greedy)] {
        let h = Header {
            kind: "eval".into(),
            step,
            label: label.into(),
            signals: plan.signals,
        };
        trajectories::write(&dir.join("trajectories"), &h, recs)?;
    }
    let decoders = decoder_arms(&model, &spec, plan, run)?;
    let greedy_correct: Vec<bool> = greedy.iter().map(|r| r.correct).collect();
    let decoder_intervals =
        super::decoders::arm_intervals(&decoders, &greedy_correct, run.eval.bootstrap, run.seed ^ 0xDEC0_DE25);
    let rep = CheckpointReport {
        header: ReportHeader {
            checkpoint: t.dir.display().to_string(),
            step: t.step,
            samples: run.eval.samples,
            temperature: plan.sampled.temperature,
            edis: run.entropy.edis,
            deepconf: run.entropy.deepconf,
        },
        sources: report(
            &results,
            &SummarySpec {
                ks: ss.ks.clone(),
                best_k: ss.best_k,
                resamples: run.eval.bootstrap,
                seed: run.seed ^ 0xB007_57A9,
            },
        ),
        decoders,
        decoder_intervals,
    };
    let title = |what: &str| {
        format!(
            "{what}: {} ({} samples/problem, T = {})",
            t.label, ss.samples, plan.sampled.temperature
        )
    };
    crate::plots::entropy_trajectories(
        &dir.join("plots/entropy_trajectories"),
        &samples,
        &title("Entropy trajectories"),
    )?;
    crate::plots::signal_distribution(
        &dir.join("plots/edis_distribution"),
        &samples,
        entrl_rewards::Signal::Edis,
        &title("EDIS of correct vs incorrect samples"),
    )?;
    std::fs::write(dir.join("report.md"), super::report::checkpoint_md(&rep))?;
    let tmp = dir.join("report.json.tmp");
    std::fs::write(&tmp, serde_json::to_string_pretty(&rep)?)?;
    std::fs::rename(&tmp, dir.join("report.json"))?;
    let all_src = rep.sources.last().expect("an 'all' row");
    tracing::info!(
        "{}: greedy {:.3}, mean@{} {:.3}, best-of-N by EDIS {:.3} ({} problems, {:.0} s)",
        t.label,
        all_src.greedy_accuracy,
        all_src.samples,
        all_src.mean_at_n,
        all_src.best_of_n["edis"],
        all_src.problems,
        t0.elapsed().as_secs_f64()
    );
    Ok(rep)
}
