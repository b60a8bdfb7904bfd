//! `entrl eval` over a run directory: one report per checkpoint in step order, internally
//! consistent figures, and a re-run after losing one report redoes only that checkpoint (and
//! reproduces it exactly).

use std::path::Path;
use std::time::SystemTime;

use entrl::backend::{Cpu, CpuTrain};
use entrl::config::RunFile;
use entrl::eval::job::{eval_job, resolve_targets};
use entrl_tests::tiny_run;

fn config(run_dir: &Path) -> RunFile {
    let rest = r#"
[data]
train = { kind = "arithmetic", digits = 1, operands = 2 }
[sft]
steps = 60
batch_size = 32
learning_rate = 3e-3
warmup_steps = 5
[rl]
max_completion_length = 16
[eval]
num_problems = 20
samples = 6
ks = [1, 2, 6, 9]
[checkpoint]
save_every = 20
keep_last = 3
"#;
    tiny_run(run_dir, 5, rest, "eval-job-test")
}

fn mtime(p: &Path) -> SystemTime {
    std::fs::metadata(p).unwrap().modified().unwrap()
}

#[test]
fn eval_job_over_run_directory_is_resumable() {
    let dir = std::env::temp_dir().join(format!("entrl-eval-job-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let run = config(&dir);
    entrl::train::train::<CpuTrain>(run.clone(), false, false, &Default::default()).unwrap();
    let targets = resolve_targets(std::slice::from_ref(&dir)).unwrap();
    let labels: Vec<&str> = targets.iter().map(|t| t.label.as_str()).collect();
    assert_eq!(labels, ["step-000020", "step-000040", "step-000060"]);
    let out = dir.join("eval");
    let first = eval_job::<Cpu>(&run, &targets, &out, &Default::default()).unwrap();
    assert_eq!(first.len(), 3);
    for r in &first {
        let all = r.sources.last().unwrap();
        assert_eq!((all.problems, all.samples), (20, 6));
        assert!((all.pass_at_k[&1] - all.mean_at_n).abs() < 1e-12, "pass@1 = mean@N");
        assert!((all.maj_at_k[&1] - all.mean_at_n).abs() < 1e-12, "maj@1 = mean@N");
        assert!(!all.pass_at_k.contains_key(&9), "k > N skipped");
        assert!(all.pass_at_k[&6] >= all.pass_at_k[&2] && all.pass_at_k[&2] >= all.pass_at_k[&1]);
        for f in [
            "report.json",
            "report.md",
            "trajectories/eval-step-000000-samples.safetensors",
        ] {
            let f = f.replace("000000", &format!("{:06}", r.header.step.unwrap()));
            assert!(
                out.join(format!("step-{:06}", r.header.step.unwrap()))
                    .join(&f)
                    .exists(),
                "{f}"
            );
        }
        // mixed outcomes, recounted from the samples' trajectory artifact
        let step = r.header.step.unwrap();
        let path = out
            .join(format!("step-{step:06}/trajectories"))
            .join(format!("eval-step-{step:06}-samples.safetensors"));
        let (_, recs) = entrl::trajectories::read(&path).unwrap();
        let mut per: std::collections::BTreeMap<u64, (usize, usize)> = Default::default();
        for x in &recs {
            let e = per.entry(x.prompt_index).or_default();
            e.0 += 1;
            e.1 += x.correct as usize;
        }
        let mixed = per.values().filter(|&&(n, c)| c > 0 && c < n).count() as f64 / per.len() as f64;
        assert_eq!(per.len(), 20);
        // bootstrap intervals (eval.bootstrap = 1000 by default): every metric has one, ordered;
        // mean@N's has width whenever the problems differ in accuracy
        let iv = all.intervals.as_ref().expect("intervals");
        assert_eq!(iv.resamples, 1000);
        for (k, [lo, hi]) in &iv.metrics {
            assert!(lo <= hi, "{k}: [{lo}, {hi}]");
        }
        let [lo, hi] = iv.metrics["mean_at_n"];
        if mixed > 0.0 {
            assert!(
                lo < all.mean_at_n && all.mean_at_n < hi,
                "mean@N {} in [{lo}, {hi}]",
                all.mean_at_n
            );
        }
        assert!(iv.differences.contains_key("borda/edis − majority_vote"));
        assert!(
            (all.mixed_share - mixed).abs() < 1e-12,
            "{} vs {mixed}",
            all.mixed_share
        );
    }
    assert!(out.join("report.md").exists() && out.join("report.json").exists());
    // a job killed before the last checkpoint finished: its report.json is missing
    let kept = [
        mtime(&out.join("step-000020/report.json")),
        mtime(&out.join("step-000040/report.json")),
    ];
    let last = out.join("step-000060/report.json");
    let before = std::fs::read_to_string(&last).unwrap();
    std::fs::remove_file(&last).unwrap();
    let second = eval_job::<Cpu>(&run, &targets, &out, &Default::default()).unwrap();
    assert_eq!(
        kept[0],
        mtime(&out.join("step-000020/report.json")),
        "finished checkpoint redone"
    );
    assert_eq!(
        kept[1],
        mtime(&out.join("step-000040/report.json")),
        "finished checkpoint redone"
    );
    assert_eq!(
        before,
        std::fs::read_to_string(&last).unwrap(),
        "re-evaluation is not identical"
    );
    assert_eq!(first, second);
    std::fs::remove_dir_all(&dir).unwrap();
}

/// `eval.decoders`: one arm per decoder in `report.json` and `report.md`; the sample arm agrees
/// with the sampled evaluation's own figures (same seed, same N, same temperature); a tree never
/// has more than N leaves; every AUROC and rate is a probability; a processor arm reports its
/// iterations.
#[test]
fn decoder_arms_in_one_report() {
    let dir = std::env::temp_dir().join(format!("entrl-eval-arms-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let mut run = config(&dir);
    run.sft.steps = 40;
    run.checkpoint.save_every = 0;
    run.eval.decoders = ["sample", "em-inf", "adaptive-temperature", "tree"]
        .iter()
        .map(|n| entrl::decoding::Decoder::named(n).unwrap())
        .collect();
    run.eval.calibration_problems = 8;
    entrl::train::train::<CpuTrain>(run.clone(), false, false, &Default::default()).unwrap();
    let targets = resolve_targets(&[dir.join("final")]).unwrap();
    let reports = eval_job::<Cpu>(&run, &targets, &dir.join("eval"), &Default::default()).unwrap();
    let r = &reports[0];
    let names: Vec<&str> = r.decoders.iter().map(|a| a.decoder.as_str()).collect();
    assert_eq!(names, ["sample", "em-inf", "adaptive-temperature", "tree"]);
    let all = r.sources.last().unwrap();
    let sample = &r.decoders[0];
    assert!(
        (sample.mean_accuracy - all.mean_at_n).abs() < 1e-12,
        "sample arm = sampled eval"
    );
    assert!((sample.pass_at_k[&2] - all.pass_at_k[&2]).abs() < 1e-12);
    assert_eq!(sample.completions_per_problem, 6.0);
    let tree = &r.decoders[3];
    assert!(tree.completions_per_problem >= 1.0 && tree.completions_per_problem <= 6.0);
    assert!(
        tree.options["tau"]["value"].is_number(),
        "τ calibrated: {}",
        tree.options
    );
    assert!(r.decoders[1].processor_iterations_per_token >= 0.0 && r.decoders[2].processor_iterations_per_token >= 1.0);
    for a in &r.decoders {
        for v in [a.mean_accuracy, a.vote_accuracy]
            .into_iter()
            .chain(a.pass_at_k.values().copied())
        {
            assert!((0.0..=1.0).contains(&v), "{}: {v}", a.decoder);
        }
        for v in a.auroc.values().flatten().chain(a.auroc_predictive_entropy.iter()) {
            assert!((0.0..=1.0).contains(v));
        }
        assert!(a.decoded_tokens_per_problem > 0.0 && a.forward_passes > 0);
    }
    let md = std::fs::read_to_string(dir.join("eval").join(&targets[0].label).join("report.md")).unwrap();
    assert!(
        md.contains("## Decoders as arms") && md.contains("| tree (b 2, N 6) |"),
        "{md}"
    );
    let _ = std::fs::remove_dir_all(&dir);
}
