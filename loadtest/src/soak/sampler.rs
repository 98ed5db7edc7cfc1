//! The server's resources over the soak: resident memory (`/proc/PID/status` VmRSS), open
//! file descriptors (`/proc/PID/fd`), and live tokio tasks and viewer connections from its
//! `/metrics`, every few seconds — summarised per life of the process, and written out as a
//! time series.

use super::Life;
use crate::{Clock, Target};
use serde::Serialize;
use std::time::Duration;
use tokio::sync::watch;

/// One sample.
#[derive(Debug, Clone, Serialize)]
pub struct Sample {
    /// Seconds since the run started.
    pub t_s: f64,
    /// The life of the server (1 for the first process, 2 after the first kill, …).
    pub life: u32,
    /// Seconds since this life's process was ready.
    pub life_s: f64,
    pub pid: u32,
    pub rss_kb: u64,
    pub fds: u64,
    /// `showfloor_tokio_alive_tasks`.
    pub tasks: Option<u64>,
    /// `showfloor_connections`.
    pub connections: Option<u64>,
}

/// Samples every `every` while the server is up, until `stop` turns true.
pub(super) async fn sample(
    target: Target,
    every: Duration,
    clock: Clock,
    life: watch::Receiver<Life>,
    pid: watch::Receiver<Option<u32>>,
    mut stop: watch::Receiver<bool>,
) -> Vec<Sample> {
    let mut out = Vec::new();
    let mut tick = tokio::time::interval(every);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = tick.tick() => {}
            c = stop.changed() => if c.is_err() || *stop.borrow() { return out },
        }
        let l = *life.borrow();
        let Some(p) = *pid.borrow() else { continue };
        if !l.up {
            continue;
        }
        let (Some(rss_kb), Some(fds)) = (rss_kb(p), open_fds(p)) else {
            continue;
        };
        let (tasks, connections) = scrape(&target).await;
        // A kill between reading /proc and now: the sample belongs to a dead process.
        if !life.borrow().up || life.borrow().n != l.n {
            continue;
        }
        let now = clock.now_us();
        out.push(Sample {
            t_s: now as f64 / 1e6,
            life: l.n,
            life_s: now.saturating_sub(l.ready_us) as f64 / 1e6,
            pid: p,
            rss_kb,
            fds,
            tasks,
            connections,
        });
    }
}

fn rss_kb(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

fn open_fds(pid: u32) -> Option<u64> {
    Some(std::fs::read_dir(format!("/proc/{pid}/fd")).ok()?.count() as u64)
}

async fn scrape(target: &Target) -> (Option<u64>, Option<u64>) {
    let body = async {
        crate::http_client()
            .get(target.url("/metrics"))
            .timeout(Duration::from_secs(5))
            .send()
            .await
            .ok()?
            .text()
            .await
            .ok()
    }
    .await
    .unwrap_or_default();
    let value = |name: &str| {
        body.lines()
            .filter_map(|l| l.strip_prefix(name))
            .find_map(|v| v.strip_prefix(' '))
            .and_then(|v| v.trim().parse::<f64>().ok())
            .map(|v| v as u64)
    };
    (
        value("showfloor_tokio_alive_tasks"),
        value("showfloor_connections"),
    )
}

/// One measure over one life: first, last, highest, and the change from the first sample
/// `settle_s` into the life (once the reconnects after the restart are over) to the last.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Span {
    pub first: u64,
    pub last: u64,
    pub max: u64,
    /// The first sample at least `settle_s` into the life.
    pub settled: u64,
    /// `last - settled` (negative: it went down).
    pub growth: i64,
}

/// A life's samples, summarised.
#[derive(Debug, Clone, Serialize)]
pub struct LifeSummary {
    pub life: u32,
    pub pid: u32,
    pub samples: usize,
    /// Seconds from the settled sample to the last.
    pub settled_span_s: f64,
    pub rss_kb: Span,
    pub fds: Span,
    pub tasks: Option<Span>,
}

/// Summaries per life; `settle_s` as in [`Span`] (a life shorter than that is measured from
/// its first sample).
pub fn summarise(samples: &[Sample], settle_s: f64) -> Vec<LifeSummary> {
    let mut lives: Vec<u32> = samples.iter().map(|s| s.life).collect();
    lives.dedup();
    lives
        .into_iter()
        .filter_map(|life| {
            let of: Vec<&Sample> = samples.iter().filter(|s| s.life == life).collect();
            let first = *of.first()?;
            let last = *of.last()?;
            let settled = of
                .iter()
                .find(|s| s.life_s >= settle_s && !std::ptr::eq(**s, last))
                .copied()
                .unwrap_or(first);
            let span = |get: &dyn Fn(&Sample) -> Option<u64>| {
                let values: Vec<u64> = of.iter().filter_map(|s| get(s)).collect();
                let (f, l, s) = (get(first)?, get(last)?, get(settled)?);
                Some(Span {
                    first: f,
                    last: l,
                    max: values.iter().copied().max()?,
                    settled: s,
                    growth: l as i64 - s as i64,
                })
            };
            Some(LifeSummary {
                life,
                pid: first.pid,
                samples: of.len(),
                settled_span_s: last.t_s - settled.t_s,
                rss_kb: span(&|s| Some(s.rss_kb))?,
                fds: span(&|s| Some(s.fds))?,
                tasks: span(&|s| s.tasks),
            })
        })
        .collect()
}

/// The series as CSV (`.csv`) or JSON (anything else).
pub fn write_series(path: &std::path::Path, samples: &[Sample]) -> anyhow::Result<()> {
    let text = if path.extension().is_some_and(|e| e == "csv") {
        let mut s = String::from("t_s,life,life_s,pid,rss_kb,fds,tasks,connections\n");
        let opt = |v: Option<u64>| v.map(|v| v.to_string()).unwrap_or_default();
        for x in samples {
            s.push_str(&format!(
                "{:.1},{},{:.1},{},{},{},{},{}\n",
                x.t_s,
                x.life,
                x.life_s,
                x.pid,
                x.rss_kb,
                x.fds,
                opt(x.tasks),
                opt(x.connections)
            ));
        }
        s
    } else {
        serde_json::to_string_pretty(samples)?
    };
    std::fs::write(path, text)
        .map_err(|e| anyhow::anyhow!("cannot write the series to {}: {e}", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(t_s: f64, life: u32, life_s: f64, rss_kb: u64, tasks: u64) -> Sample {
        Sample {
            t_s,
            life,
            life_s,
            pid: life,
            rss_kb,
            fds: 100,
            tasks: Some(tasks),
            connections: None,
        }
    }

    #[test]
    fn each_life_is_summarised_from_its_settled_sample() {
        let samples = [
            at(1.0, 1, 1.0, 500, 40),
            at(31.0, 1, 31.0, 900, 60),
            at(61.0, 1, 61.0, 950, 58),
            at(65.0, 2, 1.0, 400, 30),
            at(70.0, 2, 6.0, 410, 31),
        ];
        let s = summarise(&samples, 30.0);
        assert_eq!(s.len(), 2);
        assert_eq!(
            s[0].rss_kb,
            Span {
                first: 500,
                last: 950,
                max: 950,
                settled: 900,
                growth: 50
            }
        );
        assert_eq!(s[0].tasks.as_ref().map(|t| t.growth), Some(-2));
        assert_eq!(s[0].settled_span_s, 30.0);
        // Too short to settle: measured from its first sample.
        assert_eq!(s[1].rss_kb.settled, 400);
        assert_eq!(s[1].rss_kb.growth, 10);
    }
}
