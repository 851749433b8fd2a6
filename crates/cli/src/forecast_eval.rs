//! `zhilu forecast-eval`: trains the forecaster on the first rows of a wide
//! table of readings and scores it on the rest against persistence and the
//! historical average (sliding windows of one hour; 15, 30 and 60 minutes
//! ahead).

use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{Context, bail};
use serde_json::json;
use zhilu_core::forecast::{
    ForecastConfig, Forecaster, HorizonReport, Metrics, Neighbours, Quantity, Series, evaluate,
};

/// Intervals ahead that are scored: 15, 30 and 60 minutes at 5-minute steps.
const HORIZONS: [usize; 3] = [3, 6, 12];
/// Minutes per interval (the table's rows are 5-minute steps).
const STEP_MIN: usize = 5;
/// Above this many stations without an adjacency matrix, no neighbours are
/// derived (their correlation search costs stations² × rows).
const CORRELATION_MAX_STATIONS: usize = 2000;

/// Arguments of `zhilu forecast-eval`.
#[derive(clap::Args, Debug)]
pub struct Args {
    /// Wide CSV of speeds: header = station ids, one row per 5-minute interval, the first starting at midnight; an empty cell, NaN or 0 is missing.
    #[arg(long)]
    pub speeds: PathBuf,
    /// Adjacency matrix CSV (no header; stations × stations in the column order of --speeds). Without it, each station's neighbours are the stations whose changes correlate most with its own in the training rows.
    #[arg(long)]
    pub adj: Option<PathBuf>,
    /// First data row (0-based, header not counted) of the test part: training sees only the rows before it.
    #[arg(long = "test-from")]
    pub test_from: usize,
    /// Also write the results as JSON to this file.
    #[arg(long)]
    pub json: Option<PathBuf>,
}

/// Runs the evaluation and prints one line per horizon.
pub fn run(a: Args) -> anyhow::Result<()> {
    let (ids, values) = read_table(&a.speeds, true)?;
    let stations = ids.len();
    let series = Series::new(stations, values, 0, Quantity::Speed)
        .with_context(|| a.speeds.display().to_string())?;
    if a.test_from == 0 || a.test_from >= series.rows() {
        bail!(
            "--test-from {} must lie inside the {} data rows of {}",
            a.test_from,
            series.rows(),
            a.speeds.display()
        );
    }
    let cfg = ForecastConfig::default();
    let t = Instant::now();
    let neighbours = match &a.adj {
        Some(path) => {
            let (_, adj) = read_table(path, false)?;
            Neighbours::from_adjacency(stations, &adj, 4)
                .with_context(|| path.display().to_string())?
        }
        None if stations <= CORRELATION_MAX_STATIONS => {
            Neighbours::by_correlation(&series, a.test_from, 4)
        }
        None => Neighbours::none(),
    };
    let model = Forecaster::train(&series, a.test_from, neighbours, cfg)
        .context("training the forecaster")?;
    let train_s = t.elapsed().as_secs_f64();
    let ev = evaluate(&model, &series, a.test_from, &HORIZONS).context("evaluating")?;

    println!(
        "forecast-eval: {} stations, trained on rows 0..{} in {:.1} s, tested on rows {}..{} ({} windows of {} rows; {:.2} % of readings missing)",
        stations,
        a.test_from,
        train_s,
        a.test_from,
        series.rows(),
        ev.windows,
        model.config().history,
        100.0 * series.missing_share()
    );
    println!(
        "{:>4}  {:>26}  {:>26}  {:>26}  {:>9}  {:>17}",
        "min",
        "model MAE / RMSE / MAPE",
        "persistence",
        "historical average",
        "model/per",
        "model mean 1..h"
    );
    for h in &ev.horizons {
        println!(
            "{:>4}  {}  {}  {}  {:>9.3}  {:>7.3} / {:>7.3}",
            h.steps * STEP_MIN,
            cell(&h.model),
            cell(&h.persistence),
            cell(&h.historical_average),
            h.model.mae / h.persistence.mae,
            h.model_through.mae,
            h.model_through.rmse
        );
    }
    if let Some(path) = &a.json {
        write_json(
            path,
            &ev.horizons,
            ev.windows,
            a.test_from,
            stations,
            train_s,
        )?;
    }
    Ok(())
}

fn cell(m: &Metrics) -> String {
    format!("{:>7.3} / {:>7.3} / {:>6.2} %", m.mae, m.rmse, m.mape)
}

fn metrics_json(m: &Metrics) -> serde_json::Value {
    json!({ "mae": m.mae, "rmse": m.rmse, "mape": m.mape, "count": m.count })
}

fn write_json(
    path: &Path,
    horizons: &[HorizonReport],
    windows: usize,
    train_rows: usize,
    stations: usize,
    train_s: f64,
) -> anyhow::Result<()> {
    let doc = json!({
        "horizons": horizons.iter().map(|h| json!({
            "minutes": h.steps * STEP_MIN,
            "model": metrics_json(&h.model),
            "persistence": metrics_json(&h.persistence),
            "historical_average": metrics_json(&h.historical_average),
            "model_mean_steps_1_to_h": metrics_json(&h.model_through),
            "persistence_mean_steps_1_to_h": metrics_json(&h.persistence_through),
        })).collect::<Vec<_>>(),
        "windows": windows,
        "train_rows": train_rows,
        "stations": stations,
        "train_seconds": train_s,
        "mape_unit": "percent",
    });
    let write = || -> std::io::Result<()> {
        let mut w = BufWriter::new(File::create(path)?);
        serde_json::to_writer_pretty(&mut w, &doc)?;
        w.write_all(b"\n")?;
        w.flush()
    };
    write().with_context(|| format!("writing {}", path.display()))
}

/// Reads a numeric CSV: the header's fields (if `header`) and the values
/// row-major; an empty cell or NaN is missing. Every row must have as many
/// fields as the first.
fn read_table(path: &Path, header: bool) -> anyhow::Result<(Vec<String>, Vec<f32>)> {
    let file = File::open(path).with_context(|| format!("opening {}", path.display()))?;
    let mut rdr = csv::ReaderBuilder::new()
        .has_headers(header)
        .flexible(true)
        .quoting(false)
        .from_reader(file);
    let ids: Vec<String> = if header {
        rdr.headers()
            .with_context(|| path.display().to_string())?
            .iter()
            .map(|s| s.trim().to_owned())
            .collect()
    } else {
        Vec::new()
    };
    let mut width = (!ids.is_empty()).then_some(ids.len());
    let mut values = Vec::new();
    let mut rec = csv::StringRecord::new();
    while rdr
        .read_record(&mut rec)
        .with_context(|| path.display().to_string())?
    {
        let line = rec.position().map_or(0, |p| p.line());
        if rec.len() == 1 && rec[0].trim().is_empty() {
            continue;
        }
        let w = *width.get_or_insert(rec.len());
        if rec.len() != w {
            bail!(
                "{}:{line}: {} fields, expected {w}",
                path.display(),
                rec.len()
            );
        }
        for (col, field) in rec.iter().enumerate() {
            let f = field.trim();
            let v = if f.is_empty() || f.eq_ignore_ascii_case("nan") {
                f32::NAN
            } else {
                f.parse::<f32>().with_context(|| {
                    format!(
                        "{}:{line}: column {}: not a number: {f:?}",
                        path.display(),
                        col + 1
                    )
                })?
            };
            values.push(v);
        }
    }
    let width = width.unwrap_or(0);
    if width == 0 || values.is_empty() {
        bail!("{}: no data rows", path.display());
    }
    Ok((
        if ids.is_empty() {
            (0..width).map(|i| i.to_string()).collect()
        } else {
            ids
        },
        values,
    ))
}
