//! The JT/T 808 gateway in the live centre: terminals register and
//! authenticate against the database (auth codes stored as SHA-256), their
//! location reports become position readings through the same writer as
//! every other ingest (so hazmat tracking reads them like any position
//! source), and alarm bits (emergency button, over-speed, …) become
//! `terminal_alarm` events.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{mpsc, oneshot};
use zhilu_jt808::gateway::{
    BoxFuture, Gateway, GatewayConfig, GatewayEvent, RegisterOutcome, Registration, TerminalInfo,
    TerminalRegistry,
};
use zhilu_store::{PositionRow, ReadingBatch, Store, TerminalRow};

use crate::engine::{Msg, wall_ms};
use crate::{AppState, WriteReq, auth};

/// Terminals in the database.
pub struct StoreRegistry {
    store: Store,
}

impl TerminalRegistry for StoreRegistry {
    fn register<'a>(&'a self, reg: &'a Registration) -> BoxFuture<'a, RegisterOutcome> {
        Box::pin(async move {
            let Ok(token) = auth::new_token() else {
                return RegisterOutcome::Refused(zhilu_jt808::body::register_result::NO_TERMINAL);
            };
            let code = token[..16].to_string();
            let row = TerminalRow {
                phone: reg.phone.clone(),
                plate: reg.plate.clone(),
                terminal_id: reg.terminal_id.clone(),
                auth_hash: auth::token_hash(&code),
                registered_wall_ms: wall_ms(),
            };
            match self.store.upsert_terminal(&row).await {
                Ok(()) => RegisterOutcome::Accepted { auth_code: code },
                Err(e) => {
                    tracing::error!(message = "Terminal registration not stored.", phone = reg.phone, error = %e);
                    RegisterOutcome::Refused(zhilu_jt808::body::register_result::NO_TERMINAL)
                }
            }
        })
    }

    fn check_auth<'a>(
        &'a self,
        phone: &'a str,
        code: &'a str,
    ) -> BoxFuture<'a, Option<TerminalInfo>> {
        Box::pin(async move {
            let t = self.store.terminal(phone).await.ok()??;
            (t.auth_hash == auth::token_hash(code)).then_some(TerminalInfo { plate: t.plate })
        })
    }

    fn deregister<'a>(&'a self, phone: &'a str) -> BoxFuture<'a, ()> {
        Box::pin(async move {
            if let Err(e) = self.store.delete_terminal(phone).await {
                tracing::error!(message = "Terminal not deregistered.", phone, error = %e);
            }
        })
    }
}

/// Starts the gateway on `listen`; returns its address and tasks.
pub async fn start(
    st: &AppState,
    listen: std::net::SocketAddr,
) -> anyhow::Result<(std::net::SocketAddr, Vec<tokio::task::JoinHandle<()>>)> {
    let c = &st.cfg.jt808;
    let cfg = GatewayConfig {
        bind: listen,
        // Kept below the file-descriptor limit (`net::limits`).
        max_connections: st.limits.jt808.max(1),
        max_per_ip: c.max_connections_per_ip,
        auth_timeout: Duration::from_secs_f64(c.auth_timeout_s),
        idle_timeout: Duration::from_secs_f64(c.idle_timeout_s),
        auth_failures: c.auth_failures,
        auth_lockout: Duration::from_secs_f64(c.auth_lockout_s),
        ..GatewayConfig::default()
    };
    let (tx, rx) = mpsc::channel::<GatewayEvent>(8192);
    let registry = Arc::new(StoreRegistry {
        store: st.store.clone(),
    });
    let (handle, task) = Gateway::start(cfg, registry, tx).await?;
    let addr = handle.local_addr();
    let consumer = tokio::spawn(consume(st.clone(), rx, handle));
    Ok((addr, vec![task, consumer]))
}

async fn consume(
    st: AppState,
    mut rx: mpsc::Receiver<GatewayEvent>,
    _handle: zhilu_jt808::gateway::GatewayHandle,
) {
    let mut batch = ReadingBatch::default();
    let max = st.cfg.jt808.batch_rows.max(1);
    let mut tick = tokio::time::interval(Duration::from_millis(200));
    loop {
        tokio::select! {
            ev = rx.recv() => {
                let Some(ev) = ev else { break };
                match ev {
                    GatewayEvent::Position { phone, plate, time_ms, lat, lon, speed_kmh, heading_deg, .. } => {
                        let vehicle = if plate.trim().is_empty() { phone } else { plate };
                        // Device time is checked against receive time: a fix
                        // dated 2099 (or 1970) moves nothing.
                        let now = wall_ms();
                        if let Some(f) = crate::clock::judge(time_ms, now, &st.cfg.time) {
                            refuse_fix(&st, &vehicle, time_ms, lat, lon, now, f).await;
                            continue;
                        }
                        let class = st.cfg.jt808.classes.get(&vehicle).unwrap_or(&st.cfg.jt808.default_class).clone();
                        batch.positions.push(PositionRow {
                            seq: 0,
                            ts_ms: time_ms,
                            vehicle,
                            class,
                            lat,
                            lon,
                            speed_kmh: Some(speed_kmh.clamp(0.0, 250.0)),
                            heading_deg: Some(heading_deg.rem_euclid(360.0)),
                        });
                        metrics::counter!("zhilu_jt808_positions_total").increment(1);
                        if batch.positions.len() >= max {
                            flush(&st, &mut batch).await;
                        }
                    }
                    GatewayEvent::Alarm { plate, phone, time_ms, lat, lon, alarm_bits, raised, cleared } => {
                        let vehicle = if plate.trim().is_empty() { phone } else { plate };
                        if crate::clock::judge(time_ms, wall_ms(), &st.cfg.time).is_some() {
                            // Refused with its position report (above).
                            continue;
                        }
                        let _ = st.engine.send(Msg::TerminalAlarm { vehicle, time_ms, lat, lon, bits: alarm_bits, raised, cleared }).await;
                    }
                    GatewayEvent::AuthFailed { phone, failures, locked } => {
                        tracing::warn!(message = "JT/T 808 authentication failed.", phone, failures, locked);
                        metrics::counter!("zhilu_jt808_auth_failures_total").increment(1);
                    }
                    GatewayEvent::Registered { .. } => metrics::counter!("zhilu_jt808_registrations_total").increment(1),
                    GatewayEvent::Authenticated { .. } | GatewayEvent::Disconnected { .. } => {}
                }
            }
            _ = tick.tick() => {
                if !batch.is_empty() {
                    flush(&st, &mut batch).await;
                }
            }
        }
    }
}

/// A fix refused for its time: counted, quarantined, its terminal marked.
async fn refuse_fix(
    st: &AppState,
    vehicle: &str,
    time_ms: i64,
    lat: f64,
    lon: f64,
    now: i64,
    f: crate::clock::TimeFault,
) {
    st.clocks.refused(vehicle, now, f);
    metrics::counter!("zhilu_ingest_clock_refused_total", "kind" => "jt808", "why" => f.kind())
        .increment(1);
    let row = zhilu_store::QuarantineRow {
        id: 0,
        wall_ms: now,
        kind: "jt808".into(),
        source: vehicle.to_string(),
        ts_ms: time_ms,
        reason: f.reason(),
        row_json:
            serde_json::json!({"vehicle": vehicle, "time_ms": time_ms, "lat": lat, "lon": lon})
                .to_string(),
    };
    if let Err(e) = st.store.quarantine(&[row], crate::QUARANTINE_KEEP).await {
        tracing::error!(message = "Quarantine not stored.", error = %e);
    }
}

async fn flush(st: &AppState, batch: &mut ReadingBatch) {
    let b = std::mem::take(batch);
    let (tx, rx) = oneshot::channel();
    if st
        .writer
        .send(WriteReq {
            batch: b,
            reply: tx,
        })
        .await
        .is_err()
    {
        return;
    }
    match rx.await {
        Ok(Ok(_)) => {}
        Ok(Err(e)) => tracing::error!(message = "JT/T 808 positions not stored.", error = e),
        Err(_) => {}
    }
}
