//! Figures as SVG and PNG (plotters; text in PNGs is rendered with the embedded DejaVu Sans font,
//! so no system fonts are needed): entropy trajectories of correct vs incorrect completions, EDIS
//! distributions, training curves, and bar charts with error bars for sweeps.

use std::path::{Path, PathBuf};
use std::sync::Once;

use anyhow::anyhow;
use entrl_rewards::Signal;
use plotters::coord::Shift;
use plotters::prelude::*;

use crate::trajectories::Record;

const W: u32 = 900;
const H: u32 = 560;
const CORRECT: RGBColor = RGBColor(0, 114, 178); // blue
const INCORRECT: RGBColor = RGBColor(213, 94, 0); // vermillion

fn register_font() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        plotters::style::register_font("sans-serif", FontStyle::Normal, dejavu::sans::regular())
            .unwrap_or_else(|_| panic!("embedded DejaVu Sans is a valid font"));
    });
}

type DrawResult = Result<(), String>;
fn e<E: std::fmt::Debug>(err: E) -> String {
    format!("{err:?}")
}

/// The legend box every chart uses.
fn legend<'a, DB: DrawingBackend + 'a, CT: plotters::coord::CoordTranslate>(
    chart: &mut ChartContext<'a, DB, CT>,
    position: SeriesLabelPosition,
    size: u32,
) -> DrawResult {
    chart
        .configure_series_labels()
        .background_style(WHITE.mix(0.9))
        .border_style(BLACK)
        .label_font(("sans-serif", size))
        .position(position)
        .draw()
        .map_err(e)
}

/// Draws `draw` twice, into `stem.svg` and `stem.png`; returns both paths.
fn render(
    stem: &Path,
    size: (u32, u32),
    draw_svg: impl Fn(DrawingArea<SVGBackend, Shift>) -> DrawResult,
    draw_png: impl Fn(DrawingArea<BitMapBackend, Shift>) -> DrawResult,
) -> anyhow::Result<Vec<PathBuf>> {
    register_font();
    if let Some(dir) = stem.parent() {
        std::fs::create_dir_all(dir)?;
    }
    let svg = stem.with_extension("svg");
    let png = stem.with_extension("png");
    {
        let root = SVGBackend::new(&svg, size).into_drawing_area();
        root.fill(&WHITE).map_err(|x| anyhow!("{x:?}"))?;
        draw_svg(root.clone()).map_err(|m| anyhow!("{}: {m}", svg.display()))?;
        root.present().map_err(|x| anyhow!("{}: {x:?}", svg.display()))?;
    }
    {
        let root = BitMapBackend::new(&png, size).into_drawing_area();
        root.fill(&WHITE).map_err(|x| anyhow!("{x:?}"))?;
        draw_png(root.clone()).map_err(|m| anyhow!("{}: {m}", png.display()))?;
        root.present().map_err(|x| anyhow!("{}: {x:?}", png.display()))?;
    }
    Ok(vec![svg, png])
}

/// Both backends from one generic drawing function.
macro_rules! render_with {
    ($stem:expr, $size:expr, $f:ident, $($arg:expr),*) => {
        render($stem, $size, |r| $f(r, $($arg),*), |r| $f(r, $($arg),*))
    };
}

/// Mean entropy at each position over the trajectories long enough to reach it (positions with
/// fewer than `min_n` trajectories are cut off).
fn positional_mean(trajs: &[&[f32]], min_n: usize) -> Vec<(usize, f64)> {
    let len = trajs.iter().map(|t| t.len()).max().unwrap_or(0);
    (0..len)
        .map(|t| {
            let v: Vec<f64> = trajs.iter().filter(|x| x.len() > t).map(|x| x[t] as f64).collect();
            (t, v)
        })
        .take_while(|(_, v)| v.len() >= min_n.max(1))
        .map(|(t, v)| (t, v.iter().sum::<f64>() / v.len() as f64))
        .collect()
}

fn trajectories_chart<DB: DrawingBackend>(root: DrawingArea<DB, Shift>, records: &[Record], title: &str) -> DrawResult {
    let ok: Vec<&[f32]> = records
        .iter()
        .filter(|r| r.correct)
        .map(|r| r.entropies.as_slice())
        .collect();
    let bad: Vec<&[f32]> = records
        .iter()
        .filter(|r| !r.correct)
        .map(|r| r.entropies.as_slice())
        .collect();
    let x_max = records.iter().map(|r| r.entropies.len()).max().unwrap_or(1).max(2);
    let y_max = records
        .iter()
        .flat_map(|r| r.entropies.iter())
        .fold(0f32, |m, &x| m.max(x))
        .max(0.05) as f64
        * 1.05;
    let mut chart = ChartBuilder::on(&root)
        .caption(title, ("sans-serif", 22))
        .margin(12)
        .x_label_area_size(45)
        .y_label_area_size(60)
        .build_cartesian_2d(0f64..(x_max - 1) as f64, 0f64..y_max)
        .map_err(e)?;
    chart
        .configure_mesh()
        .x_desc("token position in the completion")
        .x_label_formatter(&|x| format!("{x:.0}"))
        .y_desc("token entropy H_t (nats)")
        .label_style(("sans-serif", 15))
        .axis_desc_style(("sans-serif", 17))
        .draw()
        .map_err(e)?;
    // a few examples of each class (thin), then the position-wise means (thick)
    for (set, color) in [(&ok, CORRECT), (&bad, INCORRECT)] {
        for t in set.iter().take(4) {
            let pts = t.iter().enumerate().map(|(i, &h)| (i as f64, h as f64));
            chart.draw_series(LineSeries::new(pts, color.mix(0.35))).map_err(e)?;
        }
    }
    for (set, color, name) in [(&ok, CORRECT, "correct"), (&bad, INCORRECT, "incorrect")] {
        let mean = positional_mean(set, 5);
        if mean.is_empty() {
            continue;
        }
        let label = format!("{name}: mean of {} (thin: 4 examples)", set.len());
        chart
            .draw_series(LineSeries::new(
                mean.iter().map(|&(t, m)| (t as f64, m)),
                color.stroke_width(3),
            ))
            .map_err(e)?
            .label(label)
            .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], color.stroke_width(3)));
    }
    legend(&mut chart, SeriesLabelPosition::UpperRight, 15)?;
    Ok(())
}

/// Entropy trajectories of correct vs incorrect completions: 4 examples of each and the
/// position-wise mean (positions reached by ≥ 5 completions). Writes `stem.{svg,png}`.
pub fn entropy_trajectories(stem: &Path, records: &[Record], title: &str) -> anyhow::Result<Vec<PathBuf>> {
    render_with!(stem, (W, H), trajectories_chart, records, title)
}

fn histogram_chart<DB: DrawingBackend>(
    root: DrawingArea<DB, Shift>,
    records: &[Record],
    signal: Signal,
    title: &str,
) -> DrawResult {
    const BINS: usize = 30;
    let v = |want: bool| -> Vec<f64> {
        records
            .iter()
            .filter(|r| r.correct == want)
            .map(|r| r.signals.get(signal))
            .collect()
    };
    let (ok, bad) = (v(true), v(false));
    let max = ok.iter().chain(&bad).fold(0f64, |m, &x| m.max(x)).max(1e-9);
    let width = max / BINS as f64;
    let density = |xs: &[f64]| -> Vec<f64> {
        let mut c = vec![0f64; BINS];
        for &x in xs {
            c[((x / width) as usize).min(BINS - 1)] += 1.0;
        }
        c.iter().map(|n| n / xs.len().max(1) as f64).collect()
    };
    let (dok, dbad) = (density(&ok), density(&bad));
    let y_max = dok.iter().chain(&dbad).fold(0f64, |m, &x| m.max(x)).max(0.01) * 1.1;
    let mut chart = ChartBuilder::on(&root)
        .caption(title, ("sans-serif", 22))
        .margin(12)
        .x_label_area_size(45)
        .y_label_area_size(60)
        .build_cartesian_2d(0f64..max, 0f64..y_max)
        .map_err(e)?;
    chart
        .configure_mesh()
        .x_desc(signal.name().to_uppercase().replace('_', " "))
        .y_desc("share of completions in the class")
        .label_style(("sans-serif", 15))
        .axis_desc_style(("sans-serif", 17))
        .draw()
        .map_err(e)?;
    for (d, color, name, n, offset) in [
        (&dok, CORRECT, "correct", ok.len(), 0.0),
        (&dbad, INCORRECT, "incorrect", bad.len(), 0.5),
    ] {
        let bars = d.iter().enumerate().map(|(i, &y)| {
            let x0 = (i as f64 + offset * 0.5) * width;
            Rectangle::new([(x0, 0.0), (x0 + width * 0.5, y)], color.mix(0.8).filled())
        });
        chart
            .draw_series(bars)
            .map_err(e)?
            .label(format!("{name} (n = {n})"))
            .legend(move |(x, y)| Rectangle::new([(x, y - 6), (x + 14, y + 6)], color.filled()));
    }
    legend(&mut chart, SeriesLabelPosition::UpperRight, 15)?;
    Ok(())
}

/// Histogram of a signal (e.g. EDIS) for correct vs incorrect completions, each normalised to its
/// class size. Writes `stem.{svg,png}`.
pub fn signal_distribution(
    stem: &Path,
    records: &[Record],
    signal: Signal,
    title: &str,
) -> anyhow::Result<Vec<PathBuf>> {
    render_with!(stem, (W, H), histogram_chart, records, signal, title)
}

/// One panel's series: (label, points).
pub type Series = (String, Vec<(f64, f64)>);

fn curves_chart<DB: DrawingBackend>(
    root: DrawingArea<DB, Shift>,
    panels: &[(String, Vec<Series>)],
    title: &str,
) -> DrawResult {
    let (top, rest) = root.split_vertically(40);
    top.titled(title, ("sans-serif", 22)).map_err(e)?;
    let areas = rest.split_evenly((panels.len().max(1), 1));
    let palette = [
        CORRECT,
        INCORRECT,
        RGBColor(0, 158, 115),
        RGBColor(204, 121, 167),
        BLACK,
    ];
    for (area, (name, series)) in areas.into_iter().zip(panels) {
        let pts = series.iter().flat_map(|s| s.1.iter());
        let (mut x0, mut x1, mut y0, mut y1) = (f64::MAX, f64::MIN, f64::MAX, f64::MIN);
        for &(x, y) in pts {
            (x0, x1, y0, y1) = (x0.min(x), x1.max(x), y0.min(y), y1.max(y));
        }
        if x0 > x1 {
            continue;
        }
        let pad = ((y1 - y0) * 0.08).max(1e-6);
        let mut chart = ChartBuilder::on(&area)
            .margin(8)
            .x_label_area_size(35)
            .y_label_area_size(70)
            .build_cartesian_2d(x0..x1.max(x0 + 1.0), (y0 - pad)..(y1 + pad))
            .map_err(e)?;
        chart
            .configure_mesh()
            .x_desc("step")
            .x_label_formatter(&|x| format!("{x:.0}"))
            .y_desc(name.as_str())
            .label_style(("sans-serif", 13))
            .axis_desc_style(("sans-serif", 15))
            .draw()
            .map_err(e)?;
        for (i, (label, p)) in series.iter().enumerate() {
            let color = palette[i % palette.len()];
            chart
                .draw_series(LineSeries::new(p.iter().copied(), color.stroke_width(2)))
                .map_err(e)?
                .label(label.as_str())
                .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], color.stroke_width(2)));
            if p.len() < 20 {
                // sparse series (evaluations): show where the measurements are
                chart
                    .draw_series(p.iter().map(|&xy| Circle::new(xy, 4, color.filled())))
                    .map_err(e)?;
            }
        }
        legend(&mut chart, SeriesLabelPosition::LowerRight, 13)?;
    }
    Ok(())
}

/// Stacked line panels sharing the step axis (e.g. accuracy, reward, entropy vs training step).
pub fn curves(stem: &Path, panels: &[(String, Vec<Series>)], title: &str) -> anyhow::Result<Vec<PathBuf>> {
    let h = 60 + 260 * panels.len().max(1) as u32;
    render_with!(stem, (W, h), curves_chart, panels, title)
}

/// One bar: label, mean, half-width of its interval.
pub type Bar = (String, f64, f64);

fn bars_chart<DB: DrawingBackend>(
    root: DrawingArea<DB, Shift>,
    bars: &[Bar],
    axes: [&str; 2],
    title: &str,
) -> DrawResult {
    let lo = bars.iter().map(|b| b.1 - b.2).fold(f64::MAX, f64::min).min(0.0);
    let hi = bars.iter().map(|b| b.1 + b.2).fold(f64::MIN, f64::max).max(lo + 1e-9);
    let pad = (hi - lo) * 0.1;
    let n = bars.len();
    let mut chart = ChartBuilder::on(&root)
        .caption(title, ("sans-serif", 22))
        .margin(12)
        .x_label_area_size(60)
        .y_label_area_size(70)
        .build_cartesian_2d(-0.5f64..(n as f64 - 0.5), lo..(hi + pad))
        .map_err(e)?;
    let labels: Vec<String> = bars.iter().map(|b| b.0.clone()).collect();
    chart
        .configure_mesh()
        .disable_x_mesh()
        .x_labels(n.max(1))
        .x_label_formatter(&|x| {
            let i = x.round();
            if (x - i).abs() < 1e-6 && i >= 0.0 && (i as usize) < labels.len() {
                labels[i as usize].clone()
            } else {
                String::new()
            }
        })
        .y_desc(axes[1])
        .x_desc(axes[0])
        .label_style(("sans-serif", 14))
        .axis_desc_style(("sans-serif", 16))
        .draw()
        .map_err(e)?;
    chart
        .draw_series(bars.iter().enumerate().map(|(i, b)| {
            Rectangle::new(
                [(i as f64 - 0.3, 0f64.max(lo)), (i as f64 + 0.3, b.1)],
                CORRECT.mix(0.75).filled(),
            )
        }))
        .map_err(e)?;
    chart
        .draw_series(
            bars.iter()
                .enumerate()
                .map(|(i, b)| ErrorBar::new_vertical(i as f64, b.1 - b.2, b.1, b.1 + b.2, BLACK.stroke_width(2), 14)),
        )
        .map_err(e)?;
    Ok(())
}

/// Bar chart of one metric with error bars; `axes` = [x description, y description]. Writes
/// `stem.{svg,png}`.
pub fn bars(stem: &Path, bars: &[Bar], axes: [&str; 2], title: &str) -> anyhow::Result<Vec<PathBuf>> {
    render_with!(stem, (W, H), bars_chart, bars, axes, title)
}

/// (method, points (true, estimated)) per series of a scatter plot.
pub type ScatterSeries = (String, Vec<(f64, f64)>);

fn scatter_chart<DB: DrawingBackend>(
    root: DrawingArea<DB, Shift>,
    series: &[ScatterSeries],
    labels: &[String],
    title: &str,
) -> DrawResult {
    let mut chart = ChartBuilder::on(&root)
        .caption(title, ("sans-serif", 20))
        .margin(14)
        .x_label_area_size(45)
        .y_label_area_size(60)
        .build_cartesian_2d(0f64..1f64, 0f64..1f64)
        .map_err(e)?;
    chart
        .configure_mesh()
        .x_desc("true accuracy (verifier)")
        .y_desc("estimated accuracy (no labels)")
        .label_style(("sans-serif", 13))
        .axis_desc_style(("sans-serif", 15))
        .draw()
        .map_err(e)?;
    chart
        .draw_series(LineSeries::new([(0.0, 0.0), (1.0, 1.0)], BLACK.mix(0.4)))
        .map_err(e)?
        .label("y = x")
        .legend(|(x, y)| PathElement::new(vec![(x, y), (x + 16, y)], BLACK.mix(0.4)));
    let palette = [CORRECT, INCORRECT, RGBColor(0, 158, 115), RGBColor(204, 121, 167)];
    for (i, (name, pts)) in series.iter().enumerate() {
        let c = palette[i % palette.len()];
        chart
            .draw_series(pts.iter().map(|&p| Circle::new(p, 5, c.filled())))
            .map_err(e)?
            .label(name.as_str())
            .legend(move |(x, y)| Circle::new((x + 8, y), 5, c.filled()));
    }
    if let Some((_, first)) = series.first() {
        chart
            .draw_series(
                first
                    .iter()
                    .zip(labels)
                    .map(|(&p, l)| Text::new(l.clone(), (p.0 + 0.01, p.1 + 0.015), ("sans-serif", 12).into_font())),
            )
            .map_err(e)?;
    }
    legend(&mut chart, SeriesLabelPosition::UpperLeft, 14)
}

/// Estimated vs true accuracy per domain, one colour per method, the first series labelled by
/// `labels`. Writes `stem.{svg,png}`.
pub fn scatter(stem: &Path, series: &[ScatterSeries], labels: &[String], title: &str) -> anyhow::Result<Vec<PathBuf>> {
    render_with!(stem, (760, 700), scatter_chart, series, labels, title)
}

/// Training curves of one run directory: sampled accuracy (and held-out greedy accuracy at
/// evaluations), reward, token entropy, EDIS, and `[monitor]`'s Sentinel estimate beside the
/// verifier's accuracy versus step. Writes `stem.{svg,png}`.
pub fn run_curves(run_dir: &Path, stem: &Path) -> anyhow::Result<Vec<PathBuf>> {
    let mut s: Vec<Vec<(f64, f64)>> = vec![vec![]; 7];
    for j in crate::metrics_log::read_lines(run_dir)? {
        let step = j["step"].as_f64().unwrap_or(0.0);
        for (i, k) in [
            (1, "eval/greedy_accuracy"),
            (5, "monitor/sentinel_accuracy"),
            (6, "monitor/verifier_accuracy"),
        ] {
            if let Some(v) = j[k].as_f64() {
                s[i].push((step, v));
            }
        }
        if j["phase"].as_str() != Some("rl") {
            continue;
        }
        for (i, k) in [(0, "accuracy"), (2, "reward/mean"), (3, "entropy"), (4, "edis/mean")] {
            if let Some(v) = j[k].as_f64() {
                s[i].push((step, v));
            }
        }
    }
    let mut panels = vec![
        (
            "accuracy".to_string(),
            vec![
                ("sampled (training rollouts)".to_string(), s[0].clone()),
                ("held-out greedy (evaluations)".to_string(), s[1].clone()),
            ],
        ),
        ("reward (mean)".to_string(), vec![("reward".to_string(), s[2].clone())]),
        (
            "token entropy (nats)".to_string(),
            vec![("entropy".to_string(), s[3].clone())],
        ),
        ("EDIS (mean)".to_string(), vec![("EDIS".to_string(), s[4].clone())]),
        (
            "monitor stream accuracy".to_string(),
            vec![
                ("Entropy Sentinel estimate (no labels)".to_string(), s[5].clone()),
                ("verifier, same answers".to_string(), s[6].clone()),
            ],
        ),
    ];
    // runs from before a metric existed have nothing to show in its panel
    panels.retain(|(_, series)| series.iter().any(|(_, p)| !p.is_empty()));
    curves(stem, &panels, &format!("Training run {}", run_dir.display()))
}
