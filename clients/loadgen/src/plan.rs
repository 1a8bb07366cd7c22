//! Who carries what: how the load is split over the connections (docs/loadgen.md, "Skew").
//!
//! Closed loop splits the pipeline depth, open loop the rate. Without skew every connection gets
//! `--pipeline` requests outstanding and `rate / C` requests per second. With `--hot-fraction F
//! --hot-share S`, `H = round(F * C)` connections are hot (each thread's first ones, spread over
//! the threads like the connections are) and carry the share `S`:
//! - open loop: a hot connection's rate is `R * S / H`, a cold one's `R * (1 - S) / (C - H)`;
//! - closed loop: of the total depth `P * C`, a hot connection keeps
//!   `max(1, round(S * P * C / H))` requests outstanding and a cold one
//!   `max(1, round((1 - S) * P * C / (C - H)))`.

use crate::config::{Config, MAX_DEPTH};

/// One connection's share of the load.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct ConnPlan {
    /// Global index of the connection, `0..C`.
    pub index: usize,
    /// Requests kept outstanding (closed loop) or allowed outstanding (open loop).
    pub depth: usize,
    /// Open loop: intended requests per second of this connection.
    pub rate: Option<f64>,
}

/// Number of hot connections, `round(F * C)`; 0 without skew.
pub fn hot_count(cfg: &Config) -> usize {
    cfg.skew.map_or(0, |s| {
        (s.fraction * cfg.connections as f64).round() as usize
    })
}

/// Hot connections owned by `thread`: an even spread, the first threads taking the remainder.
fn hot_of(cfg: &Config, thread: usize) -> usize {
    let h = hot_count(cfg);
    h / cfg.threads + usize::from(thread < h % cfg.threads)
}

/// Closed-loop depths `(hot, cold)`; both `--pipeline` without skew.
pub fn depths(cfg: &Config) -> (usize, usize) {
    let skew = match cfg.skew {
        Some(skew) => skew,
        None => return (cfg.pipeline, cfg.pipeline),
    };
    let (c, h) = (cfg.connections as f64, hot_count(cfg) as f64);
    let total = (cfg.pipeline * cfg.connections) as f64;
    let share = |s: f64, n: f64| ((s * total / n).round() as usize).max(1);
    (share(skew.share, h), share(1.0 - skew.share, c - h))
}

/// Open-loop rates `(hot, cold)` per connection.
fn rates(cfg: &Config, rate: f64) -> (f64, f64) {
    let c = cfg.connections as f64;
    match cfg.skew {
        None => (rate / c, rate / c),
        Some(skew) => {
            let h = hot_count(cfg) as f64;
            (rate * skew.share / h, rate * (1.0 - skew.share) / (c - h))
        }
    }
}

/// Rejects a skew that leaves no hot or no cold connection, or a depth beyond the limit.
pub fn check(cfg: &Config) -> Result<(), String> {
    if cfg.skew.is_none() {
        return Ok(());
    }
    let h = hot_count(cfg);
    if h == 0 || h >= cfg.connections {
        return Err(format!(
            "--hot-fraction: round(F * {}) = {h} hot connections; need at least 1 hot and 1 cold",
            cfg.connections
        ));
    }
    let (hot, cold) = depths(cfg);
    if cfg.open.is_none() && hot.max(cold) > MAX_DEPTH {
        return Err(format!(
            "--hot-share: a hot connection would keep {hot} requests outstanding (max {MAX_DEPTH})"
        ));
    }
    Ok(())
}

/// Plans of the connections of `thread`, in order.
pub fn for_thread(cfg: &Config, thread: usize) -> Vec<ConnPlan> {
    let first: usize = (0..thread).map(|t| cfg.connections_of(t)).sum();
    let hot = hot_of(cfg, thread);
    let (hot_depth, cold_depth) = match cfg.open {
        None => depths(cfg),
        Some(_) => (cfg.pipeline, cfg.pipeline),
    };
    let rates = cfg.open.map(|o| rates(cfg, o.rate));
    (0..cfg.connections_of(thread))
        .map(|i| {
            let is_hot = i < hot;
            ConnPlan {
                index: first + i,
                depth: if is_hot { hot_depth } else { cold_depth },
                rate: rates.map(|(h, c)| if is_hot { h } else { c }),
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{Arrival, OpenLoop, Skew};

    /// `connections` over `threads`, closed loop at `pipeline` or open loop at `rate`, with an
    /// optional skew `(fraction, share)`.
    fn cfg(
        connections: usize,
        threads: usize,
        pipeline: usize,
        rate: Option<f64>,
        skew: Option<(f64, f64)>,
    ) -> Config {
        Config {
            connections,
            threads,
            pipeline,
            open: rate.map(|rate| OpenLoop {
                rate,
                arrival: Arrival::Poisson,
                seed: 1,
            }),
            skew: skew.map(|(fraction, share)| Skew { fraction, share }),
            ..Config::example()
        }
    }

    fn all(c: &Config) -> Vec<ConnPlan> {
        (0..c.threads).flat_map(|t| for_thread(c, t)).collect()
    }

    #[test]
    fn no_skew_is_even() {
        let c = cfg(5, 2, 3, Some(1000.0), None);
        let plans = all(&c);
        assert_eq!(
            plans.iter().map(|p| p.index).collect::<Vec<_>>(),
            [0, 1, 2, 3, 4]
        );
        assert!(plans.iter().all(|p| p.depth == 3 && p.rate == Some(200.0)));
        let closed = cfg(5, 2, 3, None, None);
        assert!(all(&closed)
            .iter()
            .all(|p| p.depth == 3 && p.rate.is_none()));
    }

    #[test]
    fn open_loop_skew_splits_the_rate() {
        let c = cfg(8, 2, 1, Some(1000.0), Some((0.25, 0.6)));
        check(&c).unwrap();
        let plans = all(&c);
        // H = 2: one per thread, each thread's first connection.
        let hot: Vec<_> = plans
            .iter()
            .filter(|p| p.rate == Some(300.0))
            .map(|p| p.index)
            .collect();
        assert_eq!(hot, [0, 4]);
        let total: f64 = plans.iter().map(|p| p.rate.unwrap()).sum();
        assert!((total - 1000.0).abs() < 1e-9);
        assert!(plans.iter().all(|p| p.depth == 1));
    }

    #[test]
    fn closed_loop_skew_splits_and_rounds_the_depth() {
        // Total 4 * 2 = 8: hot round(0.5 * 8 / 1) = 4, cold round(0.5 * 8 / 3) = round(1.33) = 1.
        let c = cfg(4, 1, 2, None, Some((0.25, 0.5)));
        assert_eq!(depths(&c), (4, 1));
        assert_eq!(
            all(&c).iter().map(|p| p.depth).collect::<Vec<_>>(),
            [4, 1, 1, 1]
        );
        // A cold share that rounds to 0 still keeps one request outstanding.
        let c = cfg(10, 1, 1, None, Some((0.1, 0.99)));
        assert_eq!(depths(&c), (10, 1));
    }

    #[test]
    fn rejects_skews_without_hot_or_cold_connections() {
        assert!(check(&cfg(4, 1, 1, None, Some((0.1, 0.5)))).is_err()); // H = 0
        assert!(check(&cfg(4, 1, 1, None, Some((0.9, 0.5)))).is_err()); // H = 4
        assert!(check(&cfg(4, 1, 1, None, Some((0.5, 0.5)))).is_ok());
        assert!(check(&cfg(2, 1, 4096, None, Some((0.5, 0.9)))).is_err()); // depth > MAX_DEPTH
    }
}
