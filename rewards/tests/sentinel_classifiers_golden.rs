//! Entropy Sentinel's classifiers and calibration against scikit-learn 1.6.1
//! (`scripts/oracle/sentinel_classifiers_golden.py` → `tests/fixtures/sentinel_classifiers_golden.json`).

use entrl_rewards::sentinel::cart::{Tree, TreeParams};
use entrl_rewards::sentinel::forest::{Forest, ForestParams};
use entrl_rewards::sentinel::logistic::{Logistic, LogisticParams, Penalty};
use entrl_rewards::sentinel::{
    Atc, CalibratedEnsemble, CalibrationMethod, Calibrator, ClassifierSpec, Scaler, grid_search, stratified_folds,
};
use entrl_rewards::stats::{auroc, pearson, spearman};
use serde_json::Value;

struct Data {
    fixture: Value,
    xtr: Vec<Vec<f64>>,
    ytr: Vec<bool>,
    xte: Vec<Vec<f64>>,
    yte: Vec<bool>,
}

fn floats(v: &Value) -> Vec<f64> {
    v.as_array()
        .expect("array")
        .iter()
        .map(|x| x.as_f64().expect("number"))
        .collect()
}

fn labels(v: &Value) -> Vec<bool> {
    v.as_array()
        .expect("array")
        .iter()
        .map(|x| x.as_i64() == Some(1))
        .collect()
}

fn load() -> Data {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../tests/fixtures/sentinel_classifiers_golden.json"
    );
    let fixture: Value = serde_json::from_str(&std::fs::read_to_string(path).expect("fixture")).expect("json");
    let x: Vec<Vec<f64>> = fixture["x"].as_array().expect("x").iter().map(floats).collect();
    let y = labels(&fixture["y"]);
    let n = fixture["n_train"].as_u64().expect("n_train") as usize;
    Data {
        xtr: x[..n].to_vec(),
        ytr: y[..n].to_vec(),
        xte: x[n..].to_vec(),
        yte: y[n..].to_vec(),
        fixture,
    }
}

fn max_diff(a: &[f64], b: &[f64]) -> f64 {
    assert_eq!(a.len(), b.len());
    a.iter().zip(b).map(|(x, y)| (x - y).abs()).fold(0.0, f64::max)
}

/// sklearn's `class_weight="balanced"` as per-row weights.
fn balanced(y: &[bool]) -> Vec<f64> {
    let n = y.len() as f64;
    let pos = y.iter().filter(|&&v| v).count() as f64;
    y.iter()
        .map(|&v| if v { n / (2.0 * pos) } else { n / (2.0 * (n - pos)) })
        .collect()
}

#[test]
fn scaler_and_stratified_folds_match_sklearn() {
    let d = load();
    let s = Scaler::fit(&d.xtr);
    assert!(max_diff(&s.mean, &floats(&d.fixture["scaler"]["mean"])) < 1e-12);
    assert!(max_diff(&s.scale, &floats(&d.fixture["scaler"]["scale"])) < 1e-12);
    let folds: Vec<f64> = stratified_folds(&d.ytr, 5).iter().map(|&f| f as f64).collect();
    assert_eq!(folds, floats(&d.fixture["stratified_folds"]));
}

#[test]
fn cart_matches_decision_tree_classifier_exactly() {
    let d = load();
    let seed = d.fixture["rand_r_seed"].as_u64().expect("seed") as u32;
    for case in d.fixture["trees"].as_array().expect("trees") {
        let p = &case["params"];
        let params = TreeParams {
            max_depth: p["max_depth"].as_u64().map(|v| v as usize),
            min_samples_split: p["min_samples_split"].as_u64().expect("mss") as usize,
            max_features: None,
        };
        let w = (p["class_weight"].as_str() == Some("balanced")).then(|| balanced(&d.ytr));
        let tree = Tree::fit(&d.xtr, &d.ytr, w.as_deref(), params, seed);
        let got: Vec<f64> = d.xte.iter().map(|r| tree.proba(r)).collect();
        assert_eq!(
            tree.n_leaves() as u64,
            case["n_leaves"].as_u64().expect("leaves"),
            "{p}"
        );
        let diff = max_diff(&got, &floats(&case["proba"]));
        assert!(diff < 1e-12, "{p}: max |Δp| {diff}");
    }
}

#[test]
fn isotonic_and_sigmoid_calibrators_match_sklearn() {
    let d = load();
    let c = &d.fixture["calibration"];
    let (scores, y, grid) = (floats(&c["scores"]), labels(&c["y"]), floats(&c["grid"]));
    let iso = Calibrator::fit(CalibrationMethod::Isotonic, &scores, &y);
    let got: Vec<f64> = grid.iter().map(|&s| iso.apply(s)).collect();
    assert!(max_diff(&got, &floats(&c["isotonic"])) < 1e-6, "isotonic");
    let sig = Calibrator::fit(CalibrationMethod::Sigmoid, &scores, &y);
    let got: Vec<f64> = grid.iter().map(|&s| sig.apply(s)).collect();
    let diff = max_diff(&got, &floats(&c["sigmoid"]));
    eprintln!("sigmoid max |Δp| {diff:.2e}");
    assert!(
        diff < 1e-6,
        "sigmoid: max |Δp| {diff} ({sig:?} vs a = {}, b = {})",
        c["sigmoid_a"],
        c["sigmoid_b"]
    );
}

#[test]
fn calibrated_clones_of_a_tree_match_calibrated_classifier_cv() {
    let d = load();
    let seed = d.fixture["rand_r_seed"].as_u64().expect("seed");
    let spec = ClassifierSpec::Tree(TreeParams {
        max_depth: Some(3),
        min_samples_split: 2,
        max_features: None,
    });
    for (method, key) in [
        (CalibrationMethod::Isotonic, "isotonic"),
        (CalibrationMethod::Sigmoid, "sigmoid"),
    ] {
        let ens = CalibratedEnsemble::fit(&spec, method, 5, &d.xtr, &d.ytr, seed);
        let got: Vec<f64> = d.xte.iter().map(|r| ens.proba(r)).collect();
        let diff = max_diff(&got, &floats(&d.fixture["calibrated_tree"][key]));
        assert!(diff < 1e-6, "{key}: max |Δp| {diff}");
    }
}

fn logistic_params(p: &Value) -> LogisticParams {
    LogisticParams {
        penalty: if p["penalty"] == "l1" { Penalty::L1 } else { Penalty::L2 },
        c: p["C"].as_f64().expect("C"),
        balanced: true,
        // liblinear penalises the intercept (a constant feature of value 1); lbfgs does not.
        penalise_intercept: p["solver"] == "liblinear",
    }
}

#[test]
fn logistic_regressions_match_sklearn_within_1e_4() {
    let d = load();
    let s = Scaler::fit(&d.xtr);
    let ztr: Vec<Vec<f64>> = d.xtr.iter().map(|r| s.transform(r)).collect();
    let zte: Vec<Vec<f64>> = d.xte.iter().map(|r| s.transform(r)).collect();
    for case in d.fixture["logistic"].as_array().expect("logistic") {
        let m = Logistic::fit(&ztr, &d.ytr, logistic_params(&case["params"]));
        let got: Vec<f64> = zte.iter().map(|r| m.proba(r)).collect();
        let diff = max_diff(&got, &floats(&case["proba"]));
        eprintln!("{}: max |Δp| {diff:.2e}", case["params"]);
        assert!(
            diff < 1e-4,
            "{}: max |Δp| {diff}; coef {:?} vs {}",
            case["params"],
            m.coef,
            case["coef"]
        );
        let zeros = |c: &[f64]| c.iter().map(|v| v.abs() < 1e-9).collect::<Vec<_>>();
        assert_eq!(
            zeros(&m.coef),
            zeros(&floats(&case["coef"])),
            "L1 zeroes the same coefficients"
        );
    }
}

#[test]
fn grid_search_scores_match_grid_search_cv() {
    let d = load();
    let s = Scaler::fit(&d.xtr);
    let ztr: Vec<Vec<f64>> = d.xtr.iter().map(|r| s.transform(r)).collect();
    let g = &d.fixture["grid_search"];
    let grid: Vec<ClassifierSpec> = floats(&g["C"])
        .into_iter()
        .map(|c| {
            ClassifierSpec::Logistic(LogisticParams {
                penalty: Penalty::L1,
                c,
                balanced: true,
                penalise_intercept: true,
            })
        })
        .collect();
    let (best, scores) = grid_search(&grid, 5, &ztr, &d.ytr, 0);
    assert!(max_diff(&scores, &floats(&g["mean_auroc"])) < 1e-6, "{scores:?}");
    assert_eq!(floats(&g["C"])[best], g["best_C"].as_f64().expect("best"));
}

/// Held-out AUROC of our forest, mean over 5 seeds.
fn forest_auroc(d: &Data, params: ForestParams) -> f64 {
    let total: f64 = (0..5u64)
        .map(|seed| {
            let f = Forest::fit(&d.xtr, &d.ytr, params, seed);
            let p: Vec<f64> = d.xte.iter().map(|r| f.proba(r)).collect();
            auroc(&p, &d.yte).expect("both classes")
        })
        .sum();
    total / 5.0
}

#[test]
fn forest_auroc_lies_within_sklearns_range_over_seeds() {
    let d = load();
    let f = &d.fixture["forest"];
    let sk = floats(&f["test_auroc"]);
    let (lo, hi) = (
        sk.iter().copied().fold(1.0, f64::min),
        sk.iter().copied().fold(0.0, f64::max),
    );
    let params = ForestParams {
        n_estimators: f["n_estimators"].as_u64().expect("n") as usize,
        max_depth: f["max_depth"].as_u64().map(|v| v as usize),
        min_samples_split: f["min_samples_split"].as_u64().expect("mss") as usize,
        balanced: true,
    };
    let ours = forest_auroc(&d, params);
    eprintln!("forest held-out AUROC: ours {ours:.4} (mean of 5 seeds), sklearn {sk:?}");
    assert!(
        (lo..=hi).contains(&ours),
        "our mean AUROC {ours:.4} outside sklearn's [{lo:.4}, {hi:.4}]"
    );
}

#[test]
fn correlations_and_atc_match_scipy_and_numpy() {
    let d = load();
    let c = &d.fixture["correlation"];
    let (a, b) = (floats(&c["a"]), floats(&c["b"]));
    assert!((spearman(&a, &b).expect("rho") - c["spearman"].as_f64().expect("s")).abs() < 1e-12);
    assert!((pearson(&a, &b).expect("r") - c["pearson"].as_f64().expect("p")).abs() < 1e-12);
    let src: Vec<f64> = d.xtr.iter().map(|r| r[0]).collect();
    let tgt: Vec<f64> = d.xte.iter().map(|r| r[0]).collect();
    for (key, sign) in [("atc", 1.0), ("atc_negative", -1.0)] {
        let s: Vec<f64> = src.iter().map(|v| sign * v).collect();
        let t: Vec<f64> = tgt.iter().map(|v| sign * v).collect();
        let atc = Atc::fit(&s, &d.ytr).expect("both classes");
        let want = &d.fixture[key];
        assert_eq!(atc.sign, want["sign"].as_f64().expect("sign"), "{key}");
        assert!(
            (atc.threshold - want["threshold"].as_f64().expect("t")).abs() < 1e-12,
            "{key}"
        );
        assert_eq!(atc.estimate(&t), want["estimate"].as_f64().expect("estimate"), "{key}");
    }
}
