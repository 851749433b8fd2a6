//! Live forecasts (issue 8) — being written; see `docs/FORECAST.md`.
