#!/usr/bin/env python3
"""Golden values for Entropy Sentinel's classifiers and calibration, from scikit-learn 1.6.1
(independent of the Rust code; METHODS-2 §1c).

Writes tests/fixtures/sentinel_classifiers_golden.json.
Run: .venv/bin/python scripts/oracle/sentinel_classifiers_golden.py
(pins: scripts/oracle/requirements.txt)

The committed dataset: 300 rows × 4 features drawn with numpy (seed 7), a noisy logistic label
(~35% positive), feature 3 rounded to one decimal so thresholds meet ties. Rows 0..200 train,
200..300 test. Everything the Rust side must reproduce is computed here:

* StandardScaler (population std) on the train rows.
* StratifiedKFold(5, shuffle=False) test-fold ids of the train labels.
* DecisionTreeClassifier (gini, every feature at every split, no class weight and balanced),
  predict_proba on the test rows. sklearn casts X to float32; the Rust tree does the same.
* IsotonicRegression(out_of_bounds="clip") and the sigmoid (Platt) calibrator on fixed scores
  with ties, predictions on a grid that leaves the fitted range.
* CalibratedClassifierCV(tree, cv=5, method=isotonic|sigmoid): k calibrated clones, mean proba.
* LogisticRegression with balanced class weights, fitted to tight tolerance:
  L1 liblinear (intercept a penalised feature of value 1), L2 liblinear (same), L2 lbfgs
  (intercept not penalised). Coefficients, intercept, test proba.
* GridSearchCV(L1 liblinear, C ∈ {0.5, 2, 10}, StratifiedKFold(5), roc_auc): mean AUROC per C.
* RandomForestClassifier(100 trees, max_depth 5, balanced_subsample) over seeds 0..5: test AUROC.
* scipy's Spearman and Pearson on fixed vectors; the ATC estimate (numpy quantile, linear).
"""
import json
import pathlib

import numpy as np
from scipy import stats
from sklearn.calibration import CalibratedClassifierCV, _SigmoidCalibration
from sklearn.isotonic import IsotonicRegression
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import roc_auc_score
from sklearn.model_selection import GridSearchCV, StratifiedKFold
from sklearn.ensemble import RandomForestClassifier
from sklearn.preprocessing import StandardScaler
from sklearn.tree import DecisionTreeClassifier

OUT = pathlib.Path(__file__).resolve().parents[2] / "tests" / "fixtures" / "sentinel_classifiers_golden.json"


def dataset():
    rng = np.random.default_rng(7)
    n = 300
    x = rng.normal(size=(n, 4))
    x[:, 1] = x[:, 1] * 3.0 + 2.0          # another scale and offset (the scaler matters)
    x[:, 3] = np.round(x[:, 3], 1)         # ties
    logit = 1.2 * x[:, 0] - 0.4 * (x[:, 1] - 2.0) + 0.8 * x[:, 3] - 0.7
    y = (rng.random(n) < 1.0 / (1.0 + np.exp(-logit))).astype(int)
    return x, y


def tree_case(xtr, ytr, xte, **kw):
    """A tree with random_state=0. sklearn visits features in an order drawn from its splitter's
    xorshift state, seeded with RandomState(0).randint(0, 2**31 - 1) (`rand_r_seed`); where two
    features tie for the best split the order decides. `order_dependent` says whether another
    random_state (1..19) changes the predictions, i.e. whether the case tests the visiting order."""
    t = DecisionTreeClassifier(random_state=0, **kw).fit(xtr, ytr)
    dependent = any(
        not np.array_equal(DecisionTreeClassifier(random_state=rs, **kw).fit(xtr, ytr).predict_proba(xte),
                           t.predict_proba(xte))
        for rs in range(1, 20))
    return {"params": {k: v for k, v in kw.items()}, "proba": t.predict_proba(xte)[:, 1].tolist(),
            "n_leaves": int(t.get_n_leaves()), "order_dependent": dependent}


def calibration_scores():
    rng = np.random.default_rng(11)
    s = np.round(rng.normal(size=80), 1)   # many ties
    y = (rng.random(80) < 1.0 / (1.0 + np.exp(-2.0 * s))).astype(int)
    grid = np.linspace(-4.0, 4.0, 33)
    return s, y, grid


def logistic_case(xtr, ytr, xte, **kw):
    m = LogisticRegression(class_weight="balanced", **kw).fit(xtr, ytr)
    return {"params": kw, "coef": m.coef_[0].tolist(), "intercept": float(m.intercept_[0]),
            "proba": m.predict_proba(xte)[:, 1].tolist()}


def atc(src_scores, src_correct, tgt_scores):
    """ATC as in stemqa_analysis.py: orient so correct scores higher, threshold at the source error."""
    sign = 1.0 if src_scores[src_correct == 1].mean() >= src_scores[src_correct == 0].mean() else -1.0
    err = 1.0 - src_correct.mean()
    t = np.quantile(sign * src_scores, err)
    return {"sign": sign, "threshold": float(t), "estimate": float(np.mean(sign * tgt_scores >= t))}


def main():
    x, y = dataset()
    xtr, ytr, xte, yte = x[:200], y[:200], x[200:], y[200:]
    out = {"x": x.tolist(), "y": y.tolist(), "n_train": 200,
           "rand_r_seed": int(np.random.RandomState(0).randint(0, 2**31 - 1))}

    sc = StandardScaler().fit(xtr)
    out["scaler"] = {"mean": sc.mean_.tolist(), "scale": sc.scale_.tolist()}
    ztr, zte = sc.transform(xtr), sc.transform(xte)

    folds = np.empty(200, dtype=int)
    for k, (_, test) in enumerate(StratifiedKFold(5).split(xtr, ytr)):
        folds[test] = k
    out["stratified_folds"] = folds.tolist()

    out["trees"] = [
        tree_case(xtr, ytr, xte, max_depth=4, min_samples_split=5),
        tree_case(xtr, ytr, xte, max_depth=3, min_samples_split=2, class_weight="balanced"),
        tree_case(xtr, ytr, xte, min_samples_split=10),
        tree_case(xtr, ytr, xte, max_depth=10, min_samples_split=2),
    ]

    s, ys, grid = calibration_scores()
    iso = IsotonicRegression(out_of_bounds="clip").fit(s, ys)
    sig = _SigmoidCalibration().fit(s, ys)
    out["calibration"] = {"scores": s.tolist(), "y": ys.tolist(), "grid": grid.tolist(),
                          "isotonic": iso.predict(grid).tolist(),
                          "sigmoid_a": float(sig.a_), "sigmoid_b": float(sig.b_),
                          "sigmoid": sig.predict(grid).tolist()}

    base = DecisionTreeClassifier(max_depth=3, random_state=0)
    out["calibrated_tree"] = {
        m: CalibratedClassifierCV(base, cv=5, method=m).fit(xtr, ytr).predict_proba(xte)[:, 1].tolist()
        for m in ("isotonic", "sigmoid")
    }

    out["logistic"] = [
        logistic_case(ztr, ytr, zte, penalty="l1", solver="liblinear", C=0.5, tol=1e-12, max_iter=100000),
        logistic_case(ztr, ytr, zte, penalty="l1", solver="liblinear", C=0.05, tol=1e-12, max_iter=100000),
        logistic_case(ztr, ytr, zte, penalty="l2", solver="liblinear", C=2.0, tol=1e-12, max_iter=100000),
        logistic_case(ztr, ytr, zte, penalty="l2", solver="lbfgs", C=0.3, tol=1e-12, max_iter=100000),
    ]

    gs = GridSearchCV(LogisticRegression(penalty="l1", solver="liblinear", class_weight="balanced",
                                         tol=1e-12, max_iter=100000),
                      {"C": [0.5, 2.0, 10.0]}, scoring="roc_auc", cv=StratifiedKFold(5)).fit(ztr, ytr)
    out["grid_search"] = {"C": [0.5, 2.0, 10.0], "mean_auroc": gs.cv_results_["mean_test_score"].tolist(),
                          "best_C": float(gs.best_params_["C"])}

    aurocs = []
    for seed in range(5):
        rf = RandomForestClassifier(n_estimators=100, max_depth=5, min_samples_split=2,
                                    class_weight="balanced_subsample", random_state=seed).fit(xtr, ytr)
        aurocs.append(float(roc_auc_score(yte, rf.predict_proba(xte)[:, 1])))
    out["forest"] = {"n_estimators": 100, "max_depth": 5, "min_samples_split": 2, "test_auroc": aurocs}

    a, b = x[:40, 0], 0.5 * x[:40, 0] + x[:40, 2]
    a[3] = a[5]                              # a tie for Spearman's average ranks
    out["correlation"] = {"a": a.tolist(), "b": b.tolist(),
                          "spearman": float(stats.spearmanr(a, b).statistic),
                          "pearson": float(stats.pearsonr(a, b).statistic)}
    out["atc"] = atc(x[:200, 0], y[:200], x[200:, 0])      # feature 0: source = train rows, target = test rows
    atc_neg = atc(-x[:200, 0], y[:200], -x[200:, 0])
    out["atc_negative"] = {"sign": atc_neg["sign"], "threshold": atc_neg["threshold"], "estimate": atc_neg["estimate"]}

    OUT.write_text(json.dumps(out, indent=1) + "\n")
    print(f"wrote {OUT}; forest test AUROC over seeds: {[round(v, 4) for v in aurocs]}")


if __name__ == "__main__":
    main()
