//! The live monitor (`[monitor]`): a fitted Sentinel estimates the policy's accuracy on a
//! held-out stream at each evaluation, from the answers' entropy profiles alone.

use anyhow::Context;
use burn::tensor::backend::Backend;
use entrl_rewards::{RewardSet, SignalParams};
use serde_json::{Map, Value, json};

use super::{SentinelFile, answer_problems, row};
use crate::config::RunFile;
use crate::data::Problem;
use crate::model::Transformer;
use crate::plan::{ModelInputs, first_problems, reward_set};

/// A resolved monitor: the Sentinel, the stream's problems, how answers are judged.
pub struct Monitor {
    file: SentinelFile,
    problems: Vec<Problem>,
    rewards: RewardSet,
    signals: SignalParams,
}

impl Monitor {
    /// Loads `[monitor]`'s Sentinel file and stream (`None` without the section); a bad file
    /// fails here, before training starts.
    pub fn resolve(run: &RunFile) -> anyhow::Result<Option<Self>> {
        let Some(m) = &run.monitor else { return Ok(None) };
        let file = SentinelFile::load(&m.sentinel).context("key 'monitor.sentinel'")?;
        let spec = m.stream.as_ref().or(run.data.eval.as_ref()).unwrap_or(&run.data.train);
        let problems = first_problems(spec, run.data.eval_seed, m.problems).context("key 'monitor.stream'")?;
        Ok(Some(Self {
            file,
            problems,
            rewards: reward_set(run),
            signals: run.entropy.signal_params(),
        }))
    }

    /// `monitor/*` metrics of `model`: the Sentinel's estimate (no labels used), the verifier's
    /// accuracy on the same answers, how many answers were kept and dropped.
    pub fn metrics<B: Backend>(
        &self,
        model: &Transformer<B>,
        inputs: &ModelInputs,
    ) -> anyhow::Result<Map<String, Value>> {
        let (answers, dropped) = answer_problems(
            model,
            inputs,
            &self.problems,
            &self.file.answering,
            &self.rewards,
            &self.signals,
        )?;
        let mut m = Map::new();
        m.insert("monitor/answers".into(), json!(answers.len()));
        m.insert("monitor/dropped".into(), json!(dropped));
        if answers.is_empty() {
            return Ok(m); // every answer truncated: nothing to estimate from
        }
        let rows: Vec<Vec<f64>> = answers
            .iter()
            .map(|a| row(a, &self.file.columns, "monitor stream"))
            .collect::<anyhow::Result<_>>()?;
        let correct = answers.iter().filter(|a| a.correct).count() as f64;
        m.insert(
            "monitor/sentinel_accuracy".into(),
            json!(self.file.sentinel.estimate(&rows)),
        );
        m.insert(
            "monitor/verifier_accuracy".into(),
            json!(correct / answers.len() as f64),
        );
        Ok(m)
    }
}
