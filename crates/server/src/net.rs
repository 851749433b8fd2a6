//! Bounded connections. The process's file-descriptor limit is raised to
//! its hard limit at start (where allowed) and shared out: a reserve for
//! the database, the broker and the files the server opens, then HTTP,
//! then the JT/T 808 gateway — so terminals can never take the last
//! descriptor the API needs. HTTP connections are limited in total and
//! per client address, must send their headers within
//! `server.header_timeout_s` (which also closes idle kept-alive
//! connections: slowloris) and their bodies within `body_timeout_s`.

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::extract::ConnectInfo;
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::sync::Semaphore;
use tower::ServiceExt;

use crate::config::ServerConfig;

/// Descriptors kept for everything but client connections.
pub const FD_RESERVE: u64 = 256;

/// Raises the soft `RLIMIT_NOFILE` to the hard limit; returns the soft
/// limit now in force (`None` where it cannot be read).
pub fn raise_fd_limit() -> Option<u64> {
    #[cfg(unix)]
    {
        let mut r = libc::rlimit {
            rlim_cur: 0,
            rlim_max: 0,
        };
        // SAFETY: `r` is a valid out-pointer.
        if unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut r) } != 0 {
            return None;
        }
        if r.rlim_cur < r.rlim_max {
            let want = libc::rlimit {
                rlim_cur: r.rlim_max,
                rlim_max: r.rlim_max,
            };
            // SAFETY: `want` is a valid rlimit.
            if unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &want) } == 0 {
                r.rlim_cur = r.rlim_max;
            }
        }
        #[allow(clippy::unnecessary_cast)] // rlim_t is not u64 everywhere
        Some(r.rlim_cur as u64)
    }
    #[cfg(not(unix))]
    None
}

/// The soft file-descriptor limit now in force.
pub fn fd_limit() -> Option<u64> {
    #[cfg(unix)]
    {
        let mut r = libc::rlimit {
            rlim_cur: 0,
            rlim_max: 0,
        };
        // SAFETY: `r` is a valid out-pointer.
        if unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut r) } != 0 {
            return None;
        }
        #[allow(clippy::unnecessary_cast)] // rlim_t is not u64 everywhere
        Some(r.rlim_cur as u64)
    }
    #[cfg(not(unix))]
    None
}

/// Connection limits in force.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// HTTP connections at once.
    pub http: usize,
    /// HTTP connections per client address.
    pub http_per_ip: usize,
    /// JT/T 808 connections at once (0 when the gateway is off).
    pub jt808: usize,
}

/// Shares `fd_limit` descriptors out (see the module doc): the configured
/// limits, lowered where they would not fit.
pub fn limits(cfg: &ServerConfig, fd_limit: Option<u64>) -> Limits {
    let avail = fd_limit.map_or(u64::MAX, |l| l.saturating_sub(FD_RESERVE).max(16));
    let http = (cfg.server.max_connections as u64).min(avail / 2).max(8) as usize;
    let jt808 = if cfg.jt808.listen.is_empty() {
        0
    } else {
        (cfg.jt808.max_connections as u64)
            .min(avail.saturating_sub(http as u64))
            .max(1) as usize
    };
    let l = Limits {
        http,
        http_per_ip: cfg.server.max_connections_per_ip.min(http),
        jt808,
    };
    if l.http < cfg.server.max_connections || (jt808 > 0 && l.jt808 < cfg.jt808.max_connections) {
        tracing::warn!(
            message = "Connection limits lowered to fit the file-descriptor limit.",
            fd_limit,
            http = l.http,
            jt808 = l.jt808
        );
    }
    l
}

/// Counts connections per address; a slot is given back when dropped.
#[derive(Clone, Default)]
pub struct PerIp {
    max: usize,
    map: Arc<Mutex<HashMap<IpAddr, usize>>>,
}

/// One connection's place in [`PerIp`].
pub struct IpSlot {
    ip: IpAddr,
    map: Arc<Mutex<HashMap<IpAddr, usize>>>,
}

impl Drop for IpSlot {
    fn drop(&mut self) {
        if let Ok(mut m) = self.map.lock()
            && let Some(n) = m.get_mut(&self.ip)
        {
            *n -= 1;
            if *n == 0 {
                m.remove(&self.ip);
            }
        }
    }
}

impl PerIp {
    /// At most `max` at once per address.
    pub fn new(max: usize) -> PerIp {
        PerIp {
            max,
            map: Arc::default(),
        }
    }

    /// A slot for `ip`, or `None` when it has `max` already.
    pub fn take(&self, ip: IpAddr) -> Option<IpSlot> {
        let mut m = self.map.lock().ok()?;
        let n = m.entry(ip).or_insert(0);
        if *n >= self.max {
            return None;
        }
        *n += 1;
        Some(IpSlot {
            ip,
            map: self.map.clone(),
        })
    }
}

/// Serves `app` on `listener` with the limits until `shutdown` resolves;
/// connections in progress are then asked to finish.
pub async fn serve_http(
    listener: tokio::net::TcpListener,
    app: axum::Router,
    limits: Limits,
    header_timeout: Duration,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) {
    let total = Arc::new(Semaphore::new(limits.http));
    let per_ip = PerIp::new(limits.http_per_ip);
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    tokio::pin!(shutdown);
    loop {
        let (stream, peer) = tokio::select! {
            a = listener.accept() => match a {
                Ok(x) => x,
                Err(e) => {
                    // Out of descriptors and the like: back off, keep serving.
                    tracing::warn!(message = "HTTP accept failed.", error = %e);
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            _ = &mut shutdown => break,
        };
        let Ok(permit) = total.clone().try_acquire_owned() else {
            metrics::counter!("zhilu_http_refused_total", "why" => "total").increment(1);
            drop(stream);
            continue;
        };
        let Some(slot) = per_ip.take(peer.ip()) else {
            metrics::counter!("zhilu_http_refused_total", "why" => "per_ip").increment(1);
            drop(stream);
            continue;
        };
        let app = app.clone();
        let mut stop = stop_rx.clone();
        tokio::spawn(async move {
            let _held = (permit, slot);
            let svc = hyper::service::service_fn(
                move |mut req: hyper::Request<hyper::body::Incoming>| {
                    req.extensions_mut().insert(ConnectInfo::<SocketAddr>(peer));
                    app.clone().oneshot(req.map(axum::body::Body::new))
                },
            );
            let conn = hyper::server::conn::http1::Builder::new()
                .timer(TokioTimer::new())
                .header_read_timeout(header_timeout)
                .serve_connection(TokioIo::new(stream), svc);
            tokio::pin!(conn);
            tokio::select! {
                r = conn.as_mut() => {
                    if let Err(e) = r {
                        tracing::debug!(error = %e, "http connection ended");
                    }
                }
                _ = stop.changed() => {
                    conn.as_mut().graceful_shutdown();
                    // Streams never finish on their own: bounded.
                    let _ = tokio::time::timeout(Duration::from_secs(5), conn).await;
                }
            }
        });
    }
    let _ = stop_tx.send(true);
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The descriptors are shared out below the limit: HTTP first (at
    /// most half), the gateway what is left, and a reserve.
    #[test]
    fn limits_fit_the_descriptor_limit() {
        let mut cfg = ServerConfig::default();
        cfg.jt808.listen = "127.0.0.1:0".into();
        for (fd, http, jt808) in [
            (Some(20_000), 2_048, 17_696),
            (Some(1_024), 384, 384),
            (Some(1_000_000), 2_048, 20_000),
            (None, 2_048, 20_000),
        ] {
            let l = limits(&cfg, fd);
            assert_eq!((l.http, l.jt808), (http, jt808), "{fd:?}");
            if let Some(fd) = fd {
                assert!(l.http as u64 + l.jt808 as u64 + FD_RESERVE <= fd);
            }
        }
        cfg.jt808.listen.clear();
        assert_eq!(limits(&cfg, Some(20_000)).jt808, 0);
    }

    #[test]
    fn per_ip_slots_are_given_back() {
        let p = PerIp::new(2);
        let ip: IpAddr = "10.0.0.1".parse().unwrap();
        let a = p.take(ip).unwrap();
        let _b = p.take(ip).unwrap();
        assert!(p.take(ip).is_none());
        assert!(p.take("10.0.0.2".parse().unwrap()).is_some());
        drop(a);
        assert!(p.take(ip).is_some());
    }
}
