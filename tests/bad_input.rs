//! Bad input fails before any work, with a message naming the key, file or line.

use entrl::backend::CpuTrain;
use entrl::config::RunFile;
use entrl_tests::root;

fn base(out: &std::path::Path, train: &str) -> String {
    format!(
        "output_dir = \"{}\"\n[model]\nconfig = \"{}\"\ntokenizer = \"{}\"\n[data]\ntrain = {train}\n[rl]\nsteps = 1\n",
        out.display(),
        root().join("configs/model/tiny.toml").display(),
        root().join("data/tokenizer.json").display()
    )
}

fn tmp(name: &str) -> std::path::PathBuf {
    let d = entrl_tests::fresh_tmp("bad", name);
    std::fs::create_dir_all(&d).unwrap();
    d
}

#[test]
fn config_errors_name_the_key() {
    let dir = tmp("cfg");
    let out = dir.join("run");
    let good = base(&out, "{ kind = \"arithmetic\", digits = 1, operands = 2 }");
    let cases = [
        (format!("{good}epsilon_hgh = 0.3\n"), "rl.epsilon_hgh", "unknown field"),
        (format!("{good}beta = \"lots\"\n"), "rl.beta", "invalid type"),
        (format!("{good}epsilon = 1.5\n"), "rl.epsilon", "1.5"),
        (good.replace("digits = 1", "digits = 12"), "data.train", "digits"),
        (format!("{good}[sft]\nbatch_size = 0\n"), "sft.batch_size", ">= 1"),
        (
            format!("{good}[decode]\nshapes = \"square\"\n"),
            "decode.shapes",
            "unknown variant",
        ),
        (
            format!("{good}[decode]\nlength_bucket = 0\n"),
            "decode.length_bucket",
            ">= 1",
        ),
        (
            format!("{good}top_p = 0.9\n[decode]\nsampler = \"device\"\n"),
            "rl.top_p",
            "top_k",
        ),
    ];
    for (text, key, what) in cases {
        let path = dir.join("run.toml");
        std::fs::write(&path, &text).unwrap();
        let e = RunFile::load(&path, &[]).unwrap_err().to_string();
        assert!(
            e.contains("run.toml") && e.contains(key) && e.contains(what),
            "expected {key}/{what} in: {e}"
        );
    }
    // device lists: no duplicates, no CPU/GPU mix, not empty; workers per device >= 1
    for (set, what) in [
        ("device=[\"cuda:0\", \"cuda:0\"]", "listed twice"),
        ("device=[\"cpu\", \"cuda:0\"]", "cannot be mixed"),
        ("device=[]", "empty"),
        ("device=[\"tpu:0\"]", "cuda:N"),
        ("workers_per_device=0", ">= 1"),
        ("precision=\"fp8\"", "unknown variant"),
    ] {
        let e = RunFile::parse(&good, "x", &[set.into()]).unwrap_err().to_string();
        let key = set.split('=').next().unwrap();
        assert!(e.contains(key) && e.contains(what), "{set}: {e}");
    }
    let two = RunFile::parse(&good, "x", &["device=[\"cuda:0\", \"cuda:1\"]".into()]).unwrap();
    assert_eq!(two.device.specs().unwrap().len(), 2);
    // the decode policy follows the device unless forced
    use entrl::rollout::{SamplerPlace, Shapes};
    let on = |sets: &[&str]| {
        let sets: Vec<String> = sets.iter().map(|s| s.to_string()).collect();
        let p = RunFile::parse(&good, "x", &sets).unwrap().decode_policy();
        (p.shapes, p.sampler)
    };
    assert_eq!(on(&[]), (Shapes::Shrink, SamplerPlace::Host));
    assert_eq!(on(&["device=\"cuda:0\""]), (Shapes::Fixed, SamplerPlace::Device));
    assert_eq!(
        on(&["device=\"cuda:0\"", "decode.sampler=\"host\""]),
        (Shapes::Fixed, SamplerPlace::Host)
    );
    let e = RunFile::parse(&good, "x", &["rl.num_generations=1".into()])
        .unwrap_err()
        .to_string();
    assert!(e.contains("rl.num_generations"), "{e}");
    // decoders: unknown names, unknown options and out-of-range values name the key
    for (set, what) in [
        ("eval.decoders=[{kind=\"beam\"}]", "unknown variant `beam`"),
        ("eval.decoders=[{kind=\"em_inf\", lrr=0.1}]", "unknown field `lrr`"),
        ("eval.decoders=[{kind=\"em_inf\", n_grad_steps=0}]", "n_grad_steps"),
        ("eval.decoders=[{kind=\"em_inf\", threshold=-1.0}]", "threshold"),
        ("eval.decoders=[{kind=\"sample\"}, {kind=\"tree\", branch=1}]", "branch"),
        ("eval.decoders=[{kind=\"tree\", max_leaves=0}]", "max_leaves"),
        (
            "eval.decoders=[{kind=\"tree\", tau={percentile=150.0}}]",
            "tau.percentile",
        ),
        ("eval.decoders=[{kind=\"tree\", delta={value=2.0}}]", "delta.value"),
        ("eval.decoders=[{kind=\"adaptive_temperature\", ratio=0.0}]", "ratio"),
    ] {
        let e = RunFile::parse(&good, "x", &[set.into()]).unwrap_err().to_string();
        assert!(e.contains("eval.decoders[") && e.contains(what), "{set}: {e}");
    }
    // entropy controls
    for (set, what) in [
        (
            "entropy.cov_control={kind=\"clip_cov\", ratio=0.0}",
            "entropy.cov_control.ratio",
        ),
        ("entropy.cov_control={kind=\"clip_cov\", lb=5.0, ub=1.0}", "lb < ub"),
        (
            "entropy.cov_control={kind=\"kl_cov\", coef=-1.0}",
            "entropy.cov_control.coef",
        ),
        ("entropy.cov_control={kind=\"kl_kov\"}", "unknown variant"),
        ("entropy.adaptive={target=0.2}", "entropy.regularizer"),
        ("entropy.adaptive={target=0.2, min=0.5, max=0.1}", "entropy.adaptive"),
    ] {
        let e = RunFile::parse(&good, "x", &[set.into()]).unwrap_err().to_string();
        assert!(e.contains("entropy.") && e.contains(what), "{set}: {e}");
    }
    assert!(!out.exists(), "no run directory may be created for a bad config");
}

#[test]
fn malformed_dataset_line_names_file_and_line_before_any_work() {
    let dir = tmp("data");
    let data = dir.join("train.jsonl");
    std::fs::write(
        &data,
        "{\"question\": \"1+1?\", \"answer\": \"2 #### 2\"}\n{\"question\": \"oops\"\n",
    )
    .unwrap();
    let out = dir.join("run");
    let text = base(
        &out,
        &format!("{{ path = \"{}\", format = \"gsm8k\" }}", data.display()),
    );
    let run = RunFile::parse(&text, "x", &[]).unwrap();
    let e = entrl::train::train::<CpuTrain>(run, false, false, &Default::default())
        .unwrap_err()
        .to_string();
    assert!(e.contains("train.jsonl:2:"), "{e}");
    assert!(!out.exists(), "no run directory may be created for a bad dataset");
}

#[test]
fn corrupt_checkpoint_is_a_clear_error() {
    let dir = tmp("ckpt");
    std::fs::write(
        dir.join("config.json"),
        std::fs::read_to_string(root().join("assets/../configs/model/tiny.toml")).unwrap_or_default(),
    )
    .unwrap();
    let e = entrl::model::load_hf_dir::<entrl::backend::Cpu>(&dir, &Default::default())
        .unwrap_err()
        .to_string();
    assert!(e.contains("config.json"), "{e}");
    // valid config, truncated weights
    let cfg = entrl::model::read_model_config_file(&root().join("configs/model/tiny.toml")).unwrap();
    entrl::model::write_config(&cfg, &dir).unwrap();
    std::fs::write(
        dir.join("model.safetensors"),
        b"\x10\x00\x00\x00\x00\x00\x00\x00{\"a\":",
    )
    .unwrap();
    let e = entrl::model::load_hf_dir::<entrl::backend::Cpu>(&dir, &Default::default())
        .unwrap_err()
        .to_string();
    assert!(e.contains("model.safetensors") && e.contains("safetensors"), "{e}");
}

#[test]
fn chat_template_missing_or_broken_fails_before_any_work() {
    // `template = "model"` with the synthetic tokenizer: there is no tokenizer_config.json beside it
    let dir = tmp("tmpl");
    let out = dir.join("run");
    let good = base(&out, "{ kind = \"arithmetic\", digits = 1, operands = 2 }");
    let run = RunFile::parse(&good.replace("[data]\n", "[data]\ntemplate = \"model\"\n"), "x", &[]).unwrap();
    let e = entrl::train::train::<CpuTrain>(run, false, false, &Default::default())
        .unwrap_err()
        .to_string();
    assert!(e.contains("tokenizer_config.json") && e.contains("not found"), "{e}");
    assert!(
        !out.exists(),
        "no run directory may be created for a missing chat template"
    );
    // a template that does not parse, beside a copy of the tokenizer
    std::fs::copy(root().join("data/tokenizer.json"), dir.join("tokenizer.json")).unwrap();
    std::fs::write(
        dir.join("tokenizer_config.json"),
        r#"{"chat_template": "{% for m in messages %}"}"#,
    )
    .unwrap();
    let text = good.replace("[data]\n", "[data]\ntemplate = \"model\"\n").replace(
        &root().join("data/tokenizer.json").display().to_string(),
        &dir.join("tokenizer.json").display().to_string(),
    );
    let run = RunFile::parse(&text, "x", &[]).unwrap();
    let e = entrl::train::train::<CpuTrain>(run, false, false, &Default::default())
        .unwrap_err()
        .to_string();
    assert!(
        e.contains(&dir.join("tokenizer_config.json").display().to_string()) && e.contains("does not parse"),
        "{e}"
    );
    assert!(!out.exists());
}

#[test]
fn missing_model_config_leaves_no_run_directory() {
    let dir = tmp("nomodel");
    let out = dir.join("run");
    let text = base(&out, "{ kind = \"arithmetic\", digits = 1, operands = 2 }").replace(
        &root().join("configs/model/tiny.toml").display().to_string(),
        &dir.join("no_such_model.toml").display().to_string(),
    );
    let run = RunFile::parse(&text, "x", &[]).unwrap();
    let e = entrl::train::train::<CpuTrain>(run, false, false, &Default::default())
        .unwrap_err()
        .to_string();
    assert!(e.contains("no_such_model.toml"), "{e}");
    assert!(
        !out.exists(),
        "no run directory may be created for a missing model config"
    );
}

/// A model directory saved from the tiny model, then edited by `edit(config.json, weights)`.
fn edited_model_dir(
    name: &str,
    edit: impl FnOnce(&mut serde_json::Value, &mut entrl::model::Weights),
) -> std::path::PathBuf {
    let dir = tmp(name);
    let cfg = entrl::model::read_model_config_file(&root().join("configs/model/tiny.toml")).unwrap();
    let mut w = entrl::model::weights::init_weights(&cfg, 1);
    entrl::model::write_config(&cfg, &dir).unwrap();
    let mut json: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("config.json")).unwrap()).unwrap();
    edit(&mut json, &mut w);
    std::fs::write(dir.join("config.json"), json.to_string()).unwrap();
    entrl::model::weights::write_safetensors(&w, &dir.join("model.safetensors")).unwrap();
    dir
}

#[test]
fn unsupported_architecture_rope_scaling_or_tensors_fail_naming_them() {
    let load = |d: &std::path::Path| {
        entrl::model::load_hf_dir::<entrl::backend::Cpu>(d, &Default::default())
            .expect_err("must not load")
            .to_string()
    };
    // Gemma 3: a model_type entrl does not implement; Qwen3's q/k norms in a Llama config (tensors
    // the Llama layout has no place for); YaRN, a rope scaling entrl does not implement
    let d = edited_model_dir("gemma3", |c, _| c["model_type"] = "gemma3".into());
    let e = load(&d);
    assert!(e.contains("config.json") && e.contains("model_type 'gemma3'"), "{e}");
    let d = edited_model_dir("yarn", |c, _| {
        c["rope_scaling"] = serde_json::json!({"rope_type": "yarn", "factor": 8.0});
    });
    let e = load(&d);
    assert!(
        e.contains("config.json") && e.contains("rope_scaling of type 'yarn'"),
        "{e}"
    );
    let d = edited_model_dir("qnorm", |_, w| {
        let norm = w["model.norm.weight"].clone();
        w.insert("model.layers.0.self_attn.q_norm.weight".into(), norm);
    });
    let e = load(&d);
    assert!(
        e.contains("unexpected tensor 'model.layers.0.self_attn.q_norm.weight'"),
        "{e}"
    );
    // what stays accepted: an explicit unscaled rope_scaling, a rotary cache
    let d = edited_model_dir("fine", |c, w| {
        c["rope_scaling"] = serde_json::json!({"rope_type": "default"});
        let norm = w["model.norm.weight"].clone();
        w.insert("model.layers.0.self_attn.rotary_emb.inv_freq".into(), norm);
    });
    entrl::model::load_hf_dir::<entrl::backend::Cpu>(&d, &Default::default()).unwrap();
}
