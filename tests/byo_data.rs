//! Datasets as TRL and verl users have them (`data/examples/`, written by
//! `scripts/experiments/byo_examples.py`): both layouts read to the same problems, every extra
//! column is kept for reward programs, and a verl-style file trains and evaluates with one report
//! row per `data_source`.

use entrl::backend::{Cpu, CpuTrain};
use entrl::eval::job::{eval_job, resolve_targets};
use entrl_tests::{fresh_tmp, metric_lines, root, tiny_run};

fn data_section(flavour: &str, fields: &str) -> String {
    let file = |split: &str| root().join(format!("data/examples/{flavour}_arith_{split}.jsonl"));
    format!(
        "[data]\ntrain = {{ path = \"{}\", format = \"{flavour}\", fields = {fields} }}\n\
         eval = {{ path = \"{}\", format = \"{flavour}\", fields = {fields} }}\n",
        file("train").display(),
        file("test").display()
    )
}

const TRL_FIELDS: &str = "{ answer = \"answer\", solution = \"solution\" }";
const VERL_FIELDS: &str = "{ solution = \"extra_info.solution\" }";

#[test]
fn trl_and_verl_layouts_read_the_same_problems() {
    let dir = fresh_tmp("byo_data", "plans");
    let plan = |flavour, fields| {
        let run = tiny_run(&dir, 0, &data_section(flavour, fields), "byo-test");
        entrl::plan::RunPlan::resolve(run).unwrap()
    };
    let (trl, verl) = (plan("trl", TRL_FIELDS), plan("verl", VERL_FIELDS));
    assert_eq!((trl.train.len(), verl.train.len()), (Some(400), Some(400)));
    for i in 0..400 {
        let (a, b) = (trl.train.get(i), verl.train.get(i));
        assert_eq!(
            (&a.question, &a.answer, &a.solution, &a.data_source),
            (&b.question, &b.answer, &b.solution, &b.data_source)
        );
        assert!(b.messages.is_some() && a.messages.is_none());
        assert_eq!(b.extra["ability"], "math");
        assert_eq!(
            b.extra["reward_model"]["ground_truth"].as_str(),
            Some(b.answer.as_str())
        );
        assert_eq!(a.extra["solution"].as_str(), Some(a.solution.as_str()));
    }
    let sources: std::collections::BTreeSet<String> = (0..400).map(|i| verl.train.get(i).data_source).collect();
    assert_eq!(sources.into_iter().collect::<Vec<_>>(), ["add", "sub"]);

    // a missing configured column is an error naming the file, the line and the field
    let run = tiny_run(
        &dir,
        0,
        &data_section("verl", "{ solution = \"extra_info.worked\" }"),
        "byo-test",
    );
    let e = format!("{:#}", entrl::plan::RunPlan::resolve(run).err().unwrap());
    assert!(
        e.contains("verl_arith_train.jsonl:1:") && e.contains("'extra_info.worked'"),
        "{e}"
    );
}

#[test]
fn verl_file_trains_and_evaluates_per_data_source() {
    let dir = fresh_tmp("byo_data", "verl_run");
    let rest = format!(
        "{}\n[sft]\nsteps = 40\nbatch_size = 32\nlearning_rate = 3e-3\nwarmup_steps = 4\n\
         [rl]\nsteps = 2\nprompts_per_step = 4\nnum_generations = 4\nmax_completion_length = 24\n\
         [eval]\nnum_problems = 30\nsamples = 2\n",
        data_section("verl", VERL_FIELDS)
    );
    let run = tiny_run(&dir, 0, &rest, "byo-test");
    entrl::train::train::<CpuTrain>(run.clone(), false, false, &Default::default()).unwrap();
    let last_eval = metric_lines(&dir)
        .into_iter()
        .rfind(|l| l.get("eval/greedy_accuracy").is_some())
        .unwrap();
    assert!(last_eval.get("eval/add/greedy_accuracy").is_some() && last_eval.get("eval/sub/greedy_accuracy").is_some());
    let targets = resolve_targets(std::slice::from_ref(&dir)).unwrap();
    let reports = eval_job::<Cpu>(&run, &targets, &dir.join("eval"), &Default::default()).unwrap();
    let report = reports.last().unwrap();
    let rows: Vec<(&str, usize)> = report
        .sources
        .iter()
        .map(|s| (s.data_source.as_str(), s.problems))
        .collect();
    println!("per-source rows: {rows:?}");
    assert_eq!(rows.iter().map(|r| r.0).collect::<Vec<_>>(), ["add", "sub", "all"]);
    assert_eq!(rows[0].1 + rows[1].1, 30);
    let md = std::fs::read_to_string(dir.join("eval").join(&targets.last().unwrap().label).join("report.md")).unwrap();
    assert!(md.contains("## add (") && md.contains("## sub ("), "{md}");
}
