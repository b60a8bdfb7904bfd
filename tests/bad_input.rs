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
    let d = std::env::temp_dir().join(format!("entrl_bad_{}_{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
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
    let e = RunFile::parse(&good, "x", &["rl.num_generations=1".into()])
        .unwrap_err()
        .to_string();
    assert!(e.contains("rl.num_generations"), "{e}");
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
