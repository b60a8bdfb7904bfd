//! Trajectory signals, selection rules and evaluation statistics against values computed
//! independently with numpy / the Python standard library (`scripts/oracle/signals_golden.py`,
//! fixture `tests/fixtures/signals_golden.json`).

use entrl_rewards::selection::{
    best_k_of_n, best_k_of_n_pools, best_of_n, borda_vote, edis_filter, edis_weights, majority_vote,
};
use entrl_rewards::signals::{burst_count, population_variance, rebound_count};
use entrl_rewards::stats::{auroc, maj_at_k, pass_at_k};
use entrl_rewards::{DeepConfParams, EdisParams, Signal, SignalParams, Signals, Trajectory, token_confidence};
use serde_json::Value;

fn fixture() -> Value {
    let p = entrl_tests::root().join("tests/fixtures/signals_golden.json");
    serde_json::from_str(&std::fs::read_to_string(&p).expect("fixture")).expect("json")
}

fn f32s(v: &Value) -> Vec<f32> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|x| x.as_f64().unwrap() as f32)
        .collect()
}
fn f64s(v: &Value) -> Vec<f64> {
    v.as_array().unwrap().iter().map(|x| x.as_f64().unwrap()).collect()
}
fn bools(v: &Value) -> Vec<bool> {
    v.as_array().unwrap().iter().map(|x| x.as_bool().unwrap()).collect()
}
fn usizes(v: &Value) -> Vec<usize> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|x| x.as_u64().unwrap() as usize)
        .collect()
}
fn keys(v: &Value) -> Vec<Option<String>> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|x| x.as_str().map(String::from))
        .collect()
}
fn close(a: f64, b: f64, what: &str) {
    assert!((a - b).abs() <= 1e-12 * b.abs().max(1.0), "{what}: ours {a}, numpy {b}");
}

#[test]
fn trajectory_signals_match_numpy() {
    let fx = fixture();
    let cases = fx["trajectories"].as_array().unwrap();
    for (i, c) in cases.iter().enumerate() {
        let (h, lp, sc) = (f32s(&c["entropies"]), f32s(&c["logprobs"]), f32s(&c["self_certainty"]));
        let p = EdisParams {
            window: c["window"].as_u64().unwrap() as usize,
            tau_burst: c["tau_burst"].as_f64().unwrap(),
            tau_rebound: c["tau_rebound"].as_f64().unwrap(),
        };
        assert_eq!(
            burst_count(&h, p.window, p.tau_burst) as u64,
            c["bursts"].as_u64().unwrap(),
            "case {i} bursts"
        );
        assert_eq!(
            rebound_count(&h, p.tau_rebound) as u64,
            c["rebounds"].as_u64().unwrap(),
            "case {i} rebounds"
        );
        close(
            population_variance(&h),
            c["variance"].as_f64().unwrap(),
            &format!("case {i} variance"),
        );
        // DeepConf: token confidence from each position's top-k log-probs
        let conf: Vec<f32> = c["top_logprobs"]
            .as_array()
            .unwrap()
            .iter()
            .map(|t| token_confidence(f32s(t)))
            .collect();
        let dc = &c["deepconf"];
        let params = SignalParams {
            edis: p,
            deepconf: DeepConfParams {
                window: dc["window"].as_u64().unwrap() as usize,
                tail: dc["tail"].as_u64().unwrap() as usize,
                bottom_percent: dc["bottom_percent"].as_u64().unwrap() as u32,
            },
        };
        let t = Trajectory {
            entropies: &h,
            logprobs: &lp,
            self_certainty: &sc,
            confidence: &conf,
        };
        let ours = Signals::of(&t, &params);
        for s in Signal::ALL {
            close(
                ours.get(s),
                c["signals"][s.name()].as_f64().unwrap(),
                &format!("case {i} {}", s.name()),
            );
        }
    }
    println!(
        "{} trajectories: bursts, rebounds, variance and {} signals equal the reference's",
        cases.len(),
        Signal::ALL.len()
    );
}

#[test]
fn selection_rules_match_reference() {
    let fx = fixture();
    for (i, c) in fx["selection"].as_array().unwrap().iter().enumerate() {
        let k = keys(&c["keys"]);
        assert_eq!(
            majority_vote(&k),
            c["majority"].as_str().map(String::from),
            "set {i} majority"
        );
        for s in Signal::ALL {
            let v = f64s(&c["values"][s.name()]);
            let want = c["borda"][s.name()].as_str().map(String::from);
            assert_eq!(borda_vote(&k, &v, s), want, "set {i} borda {}", s.name());
            assert_eq!(
                best_of_n(&v, s),
                c["best_of_n"][s.name()].as_u64().map(|x| x as usize),
                "set {i} best {}",
                s.name()
            );
            assert_eq!(
                best_k_of_n(&v, 4, s),
                usizes(&c["best_4_of_n"][s.name()]),
                "set {i} best-4 {}",
                s.name()
            );
        }
    }
}

#[test]
fn best_k_of_n_pools_match_reference() {
    // the EDIS paper's best-k-of-N view (mean of the kept k, the best one, majority over the kept
    // k) over disjoint pools; numpy's lexsort ranks independently of our `ranked`
    let fx = fixture();
    let cases = fx["best_k_of_n_pools"].as_array().unwrap();
    assert!(cases.len() > 100);
    for (i, c) in cases.iter().enumerate() {
        let set = &fx["selection"][c["case"].as_u64().unwrap() as usize];
        let k = keys(&set["keys"]);
        let correct: Vec<bool> = k.iter().map(|x| x.as_deref() == Some("1")).collect();
        let s = Signal::ALL
            .into_iter()
            .find(|s| s.name() == c["signal"].as_str().unwrap())
            .unwrap();
        let v = f64s(&set["values"][s.name()]);
        let (kk, pool) = (c["k"].as_u64().unwrap() as usize, c["pool"].as_u64().unwrap() as usize);
        let ours = best_k_of_n_pools(&k, &correct, &v, s, kk, pool);
        close(ours.mean, c["mean"].as_f64().unwrap(), &format!("case {i} mean"));
        close(ours.best, c["best"].as_f64().unwrap(), &format!("case {i} best"));
        close(
            ours.majority,
            c["majority"].as_f64().unwrap(),
            &format!("case {i} majority"),
        );
    }
}

#[test]
fn edis_grpo_hooks_match_reference() {
    let fx = fixture();
    for (i, c) in fx["edis_filter"].as_array().unwrap().iter().enumerate() {
        let kept = edis_filter(
            &f64s(&c["edis"]),
            &bools(&c["correct"]),
            c["keep"].as_u64().unwrap() as usize,
        );
        assert_eq!(kept, usizes(&c["kept"]), "filter case {i}");
    }
    for (i, c) in fx["edis_weights"].as_array().unwrap().iter().enumerate() {
        let w = edis_weights(
            &f64s(&c["edis"]),
            &bools(&c["correct"]),
            c["group"].as_u64().unwrap() as usize,
            c["alpha"].as_f64().unwrap(),
            c["eps"].as_f64().unwrap(),
        );
        for (j, (a, b)) in w.iter().zip(f64s(&c["weights"])).enumerate() {
            assert!(
                (a - b).abs() < 1e-10,
                "weights case {i} rollout {j}: ours {a}, numpy {b}"
            );
        }
    }
}

#[test]
fn auroc_pass_and_maj_at_k_match_reference() {
    let fx = fixture();
    for (i, c) in fx["auroc"].as_array().unwrap().iter().enumerate() {
        let ours = auroc(&f64s(&c["scores"]), &bools(&c["labels"]));
        match c["auroc"].as_f64() {
            Some(want) => close(ours.expect("both classes present"), want, &format!("auroc case {i}")),
            None => assert_eq!(ours, None, "auroc case {i}: one class only"),
        }
    }
    for c in fx["pass_at_k"].as_array().unwrap() {
        let (n, cc, k) = (
            c["n"].as_u64().unwrap(),
            c["c"].as_u64().unwrap(),
            c["k"].as_u64().unwrap(),
        );
        let ours = pass_at_k(n as usize, cc as usize, k as usize);
        assert!(
            (ours - c["pass_at_k"].as_f64().unwrap()).abs() < 1e-12,
            "pass@{k} n={n} c={cc}: {ours}"
        );
    }
    for (i, c) in fx["maj_at_k"].as_array().unwrap().iter().enumerate() {
        let ours = maj_at_k(
            &keys(&c["keys"]),
            &bools(&c["correct"]),
            c["k"].as_u64().unwrap() as usize,
        );
        close(ours, c["maj_at_k"].as_f64().unwrap(), &format!("maj@k case {i}"));
    }
}

#[test]
fn high_entropy_mask_matches_numpy_quantile() {
    let fx = fixture();
    for (i, c) in fx["high_entropy_mask"].as_array().unwrap().iter().enumerate() {
        let keep = entrl::objectives::entropy::high_entropy_mask(
            &f32s(&c["entropies"]),
            &bools(&c["mask"]),
            c["rho"].as_f64().unwrap(),
        );
        assert_eq!(keep, bools(&c["keep"]), "case {i}");
    }
}
