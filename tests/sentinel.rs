//! `entrl sentinel`: answers and their columns from a real model, the fit → file → estimate path,
//! and bad input (config keys, Sentinel files, missing columns, empty or one-class domains).

use std::collections::BTreeMap;

use entrl::config::RunFile;
use entrl::model::ModelConfig;
use entrl::plan::ModelInputs;
use entrl::sentinel::report::{estimate, markdown, write};
use entrl::sentinel::{Answer, Answering, DomainAnswers, FORMAT, SentinelFile, collect};
use entrl_rewards::sentinel::FEATURE_NAMES;
use entrl_tests::{fresh_tmp, root, tiny_model, tiny_run};

const DOMAINS: &str = "[sentinel]\nproblems = 12\nmax_completion_length = 8\ncv_folds = 3\ntrees = 10\n\
    max_depth = [3]\nmin_samples_split = [2]\n\
    [[sentinel.domains]]\nname = \"easy\"\nsource = { kind = \"arithmetic\", digits = 1, operands = 2 }\ntrain = true\n\
    [[sentinel.domains]]\nname = \"hard\"\nsource = { kind = \"arithmetic\", digits = 2, operands = 3 }\n";

fn fit(domains: &[DomainAnswers], s: &entrl::config::SentinelSection, model: &str) -> anyhow::Result<SentinelFile> {
    let answering = Answering {
        temperature: 0.5,
        top_logprobs: 20,
        max_new_tokens: 8,
        drop_truncated: true,
        seed: 42,
        policy: Default::default(),
    };
    entrl::sentinel::fit(domains, s, answering, model)
}

fn run_file(name: &str, sentinel: &str) -> RunFile {
    let dir = fresh_tmp("sentinel", name);
    tiny_run(
        &dir,
        0,
        &format!("[data]\ntrain = {{ kind = \"arithmetic\", digits = 1, operands = 2 }}\n{sentinel}"),
        "run.toml",
    )
}

#[test]
fn answers_carry_every_column_and_truncation_is_dropped() {
    let run = run_file("collect", DOMAINS);
    let s = run.sentinel.clone().expect("section");
    let model = tiny_model(96, 3);
    let inputs = ModelInputs::resolve(&run, None, &ModelConfig::tiny(96)).expect("inputs");
    let domains = collect(&model, &inputs, &run, &s).expect("collect");
    assert_eq!(
        domains.iter().map(|d| d.name.as_str()).collect::<Vec<_>>(),
        ["easy", "hard"]
    );
    for d in &domains {
        // An untrained model rarely stops within 8 tokens: truncated answers are dropped.
        assert_eq!(d.answers.len() + d.dropped, 12, "{}", d.name);
        assert!(
            d.answers.iter().all(|a| a.columns["length"] < 8.0),
            "kept answers ended before the limit"
        );
    }
    let keep = {
        let mut s = s.clone();
        s.drop_truncated = false;
        collect(&model, &inputs, &run, &s).expect("collect")
    };
    for d in &keep {
        for a in &d.answers {
            for c in FEATURE_NAMES
                .iter()
                .chain(&["length", "edis", "mean_entropy", "self_certainty"])
            {
                assert!(a.columns[*c].is_finite(), "{}: column {c}", d.name);
            }
        }
    }
    assert!(
        keep.iter().all(|d| d.answers.len() == 12),
        "nothing dropped when truncation is kept"
    );
}

/// Answers whose `max` column is N(0,1) + 1.5 when correct (deterministic quasi-noise).
fn synthetic(name: &str, train: bool, n: usize, accuracy: f64) -> DomainAnswers {
    let answers = (0..n)
        .map(|i| {
            let correct = (i as f64 + 0.5) / n as f64 <= accuracy;
            let noise = ((i * 7919 % 1000) as f64 / 1000.0 - 0.5) * 3.0;
            let mut columns: BTreeMap<String, f64> =
                FEATURE_NAMES.iter().map(|f| (f.to_string(), 0.1 * noise)).collect();
            columns.insert("max".into(), noise - if correct { 1.5 } else { 0.0 });
            columns.insert("length".into(), 10.0 + (i % 5) as f64);
            Answer {
                index: i,
                correct,
                columns,
            }
        })
        .collect();
    DomainAnswers {
        name: name.into(),
        train,
        answers,
        dropped: 0,
    }
}

#[test]
fn fit_save_load_estimate_and_report() {
    let run = run_file("fit", DOMAINS);
    let s = run.sentinel.expect("section");
    let domains = vec![
        synthetic("easy", true, 200, 0.8),
        synthetic("hard", true, 200, 0.2),
        synthetic("mid", false, 200, 0.5),
    ];
    let file = fit(&domains, &s, "model").expect("fit");
    let dir = fresh_tmp("sentinel", "files");
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("sentinel.json");
    file.save(&path).expect("save");
    let loaded = SentinelFile::load(&path).expect("load");
    assert_eq!(loaded, file, "a saved Sentinel reads back equal");
    let rep = estimate(&loaded, &domains, "model").expect("estimate");
    let iv = entrl::sentinel::intervals::intervals(&rep.domains, 200, 0).expect("intervals");
    let [lo, hi] = iv.metrics["mae/sentinel"];
    assert!(lo <= hi && hi < 0.5, "MAE interval [{lo}, {hi}]");
    assert!(iv.differences.contains_key("mae/sentinel − mae/atc[max]"));
    let sentinel: Vec<f64> = rep.domains.iter().map(|d| d.estimates["sentinel"]).collect();
    assert!(
        sentinel[0] > sentinel[2] && sentinel[2] > sentinel[1],
        "ranks easy > mid > hard: {sentinel:?}"
    );
    assert_eq!(
        rep.domains[0].answers, 40,
        "a training domain is scored on its 20% held-out part"
    );
    assert_eq!(rep.domains[2].answers, 200);
    assert_eq!(rep.summary[0].method, "sentinel");
    assert!(
        rep.summary.iter().any(|m| m.method == "atc[max]") && rep.summary.iter().any(|m| m.method == "length_only")
    );
    write(&rep, &dir).expect("write");
    for f in [
        "report.md",
        "report.json",
        "plots/sentinel_scatter.svg",
        "plots/sentinel_scatter.png",
    ] {
        assert!(dir.join(f).exists(), "{f}");
    }
    assert!(markdown(&rep).contains("| easy (train, held-out part) | 40 |"));
}

#[test]
fn bad_sentinel_files_are_refused_naming_the_file() {
    let dir = fresh_tmp("sentinel", "bad_files");
    std::fs::create_dir_all(&dir).unwrap();
    let cases = [
        ("notjson.json", "{ not json".to_string(), "not JSON"),
        (
            "other.json",
            "{\"format\": \"sklearn-pickle\", \"version\": 1}".to_string(),
            "not an entrl Sentinel file",
        ),
        (
            "future.json",
            format!("{{\"format\": \"{FORMAT}\", \"version\": 99}}"),
            "version 99",
        ),
        (
            "broken.json",
            format!("{{\"format\": \"{FORMAT}\", \"version\": 1, \"columns\": 3}}"),
            "malformed",
        ),
    ];
    for (name, text, what) in cases {
        let p = dir.join(name);
        std::fs::write(&p, text).unwrap();
        let e = format!("{:#}", SentinelFile::load(&p).expect_err(name));
        assert!(e.contains(name) && e.contains(what), "{name}: {e}");
    }
}

#[test]
fn data_errors_name_the_domain_key_or_column() {
    let s = run_file("data_errors", DOMAINS).sentinel.expect("section");
    let mut empty = synthetic("easy", true, 50, 0.5);
    empty.answers.clear();
    empty.dropped = 50;
    let e = format!("{:#}", fit(&[empty], &s, "m").expect_err("empty"));
    assert!(
        e.contains("sentinel.domains[0]") && e.contains("no labelled answers") && e.contains("50 dropped"),
        "{e}"
    );

    let e = format!(
        "{:#}",
        fit(&[synthetic("easy", true, 50, 1.0)], &s, "m").expect_err("one class")
    );
    assert!(
        e.contains("all 40 training answers are correct") && e.contains("easy"),
        "{e}"
    );

    let domains = [synthetic("easy", true, 100, 0.5)];
    let mut file = fit(&domains, &s, "m").expect("fit");
    file.columns.push("perplexity_of_moon".into());
    let e = format!("{:#}", estimate(&file, &domains, "m").expect_err("missing column"));
    assert!(
        e.contains("no feature column 'perplexity_of_moon'") && e.contains("easy"),
        "{e}"
    );

    let mut none = synthetic("other", false, 10, 0.5);
    none.answers.clear();
    let file = fit(&domains, &s, "m").expect("fit");
    let e = format!("{:#}", estimate(&file, &[none], "m").expect_err("no rows"));
    assert!(e.contains("domain 'other'") && e.contains("no labelled answers"), "{e}");
}

#[test]
fn sentinel_config_errors_name_the_key() {
    let cases = [
        (
            DOMAINS.replace("cv_folds = 3", "extra_features = [\"vibes\"]"),
            "sentinel.extra_features",
            "unknown feature 'vibes'",
        ),
        (DOMAINS.replace("train = true", ""), "sentinel.domains", "train = true"),
        (
            DOMAINS.replace("\"hard\"", "\"easy\""),
            "sentinel.domains[1].name",
            "twice",
        ),
        (
            DOMAINS.replace("trees = 10", "treez = 10"),
            "sentinel.treez",
            "unknown field",
        ),
        (
            DOMAINS.replace("cv_folds = 3", "cv_folds = 1"),
            "sentinel.cv_folds",
            ">= 2",
        ),
        (
            DOMAINS.replace("cv_folds = 3", "features = \"d4\""),
            "sentinel.features",
            "unknown variant",
        ),
    ];
    for (i, (sentinel, key, what)) in cases.into_iter().enumerate() {
        let text = format!(
            "output_dir = \"/nonexistent\"\n[model]\nconfig = \"{}\"\n[data]\ntrain = {{ kind = \"arithmetic\", digits = 1, operands = 2 }}\n{sentinel}",
            root().join("configs/model/tiny.toml").display()
        );
        let e = RunFile::parse(&text, "run.toml", &[]).expect_err(key).to_string();
        assert!(
            e.contains(key) && e.contains(what),
            "case {i}: expected {key} / {what} in: {e}"
        );
    }
}

/// A quickstart-style run with `[monitor]`: every evaluation line carries the Sentinel's
/// label-free estimate beside the verifier's accuracy on the same answers; a bad Sentinel file
/// stops the run before its directory exists.
#[test]
fn monitor_lines_appear_at_each_evaluation() {
    let dir = fresh_tmp("sentinel", "monitor");
    std::fs::create_dir_all(&dir).unwrap();
    let s = run_file("monitor_cfg", DOMAINS).sentinel.expect("section");
    let mut file = fit(&[synthetic("easy", true, 100, 0.7)], &s, "synthetic").expect("fit");
    file.answering.drop_truncated = false; // an untrained model's answers are mostly truncated
    let path = dir.join("sentinel.json");
    file.save(&path).expect("save");
    let section = |p: &std::path::Path| {
        format!(
            "[data]\ntrain = {{ kind = \"arithmetic\", digits = 1, operands = 2 }}\n[sft]\nsteps = 2\nbatch_size = 4\n\
             [rl]\nsteps = 0\nmax_completion_length = 8\n[eval]\nnum_problems = 4\n\
             [monitor]\nsentinel = \"{}\"\nproblems = 6\n",
            p.display()
        )
    };
    let run_dir = dir.join("run");
    let run = tiny_run(&run_dir, 0, &section(&path), "run.toml");
    entrl::train::train::<entrl::backend::CpuTrain>(run, false, false, &Default::default()).expect("train");
    let evals: Vec<serde_json::Value> = entrl_tests::metric_lines(&run_dir)
        .into_iter()
        .filter(|j| j.get("eval/label").is_some())
        .collect();
    assert!(evals.len() >= 2, "initial and final evaluations");
    for j in &evals {
        assert_eq!(
            j["monitor/answers"].as_u64().unwrap() + j["monitor/dropped"].as_u64().unwrap(),
            6,
            "{j}"
        );
        if j["monitor/answers"].as_u64() > Some(0) {
            let est = j["monitor/sentinel_accuracy"].as_f64().expect("estimate");
            let acc = j["monitor/verifier_accuracy"].as_f64().expect("verifier");
            assert!((0.0..=1.0).contains(&est) && (0.0..=1.0).contains(&acc), "{j}");
        }
    }
    let plot = dir.join("curves");
    entrl::plots::run_curves(&run_dir, &plot).expect("plot");
    assert!(plot.with_extension("svg").exists());

    let bad = dir.join("bad.json");
    std::fs::write(&bad, "{\"format\": \"entrl-sentinel\", \"version\": 0}").unwrap();
    let run_dir2 = dir.join("run2");
    let run = tiny_run(&run_dir2, 0, &section(&bad), "run.toml");
    let e = format!(
        "{:#}",
        entrl::train::train::<entrl::backend::CpuTrain>(run, false, false, &Default::default()).expect_err("bad file")
    );
    assert!(
        e.contains("monitor.sentinel") && e.contains("bad.json") && e.contains("version 0"),
        "{e}"
    );
    assert!(!run_dir2.exists(), "nothing left behind");
}
