//! Latency summaries from raw samples.
//!
//! Every sample is kept (microseconds as `u64`) and sorted once at the end: a run of a few
//! seconds at a few thousand requests per second is at most a few megabytes, and exact
//! percentiles need no bucket-precision caveat in the report.

use serde::Serialize;

/// Percentiles of a set of durations, in milliseconds.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, serde::Deserialize)]
pub struct Percentiles {
    /// Number of samples.
    pub count: u64,
    /// Arithmetic mean.
    pub mean: f64,
    /// Median.
    pub p50: f64,
    /// 90th percentile.
    pub p90: f64,
    /// 99th percentile.
    pub p99: f64,
    /// Largest sample.
    pub max: f64,
}

impl Percentiles {
    /// Summarises samples given in microseconds (sorted in place). Empty input gives zeros.
    pub fn from_micros(samples: &mut [u64]) -> Self {
        if samples.is_empty() {
            return Self::default();
        }
        samples.sort_unstable();
        let n = samples.len();
        // Nearest-rank: the smallest sample with at least q·n samples at or below it.
        let rank = |q: f64| {
            let r = (q * n as f64).ceil() as usize;
            samples[r.clamp(1, n) - 1] as f64 / 1e3
        };
        let sum: f64 = samples.iter().map(|&v| v as f64).sum();
        Self {
            count: n as u64,
            mean: sum / n as f64 / 1e3,
            p50: rank(0.50),
            p90: rank(0.90),
            p99: rank(0.99),
            max: samples[n - 1] as f64 / 1e3,
        }
    }

    /// Summarises samples given in milliseconds (server-reported timings).
    pub fn from_millis(samples: &[f64]) -> Self {
        let mut micros: Vec<u64> =
            samples.iter().map(|&ms| (ms.max(0.0) * 1e3).round() as u64).collect();
        Self::from_micros(&mut micros)
    }

    /// Whether p50 ≤ p90 ≤ p99 ≤ max.
    pub fn is_ordered(&self) -> bool {
        self.p50 <= self.p90 && self.p90 <= self.p99 && self.p99 <= self.max
    }
}

/// A small deterministic generator for Poisson inter-arrival gaps (splitmix64), so the crate
/// needs no random-number dependency for one exponential draw per request.
#[derive(Debug, Clone)]
pub(crate) struct SplitMix(u64);

impl SplitMix {
    pub(crate) fn new(seed: u64) -> Self {
        Self(seed)
    }

    /// Uniform in (0, 1].
    pub(crate) fn unit(&mut self) -> f64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^= z >> 31;
        ((z >> 11) as f64 + 1.0) / (1u64 << 53) as f64
    }

    /// An exponential gap with the given mean.
    pub(crate) fn exponential(&mut self, mean: f64) -> f64 {
        -mean * self.unit().ln()
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;

    #[test]
    fn nearest_rank_percentiles_of_one_to_hundred() {
        let mut v: Vec<u64> = (1..=100).rev().map(|ms| ms * 1000).collect();
        let p = Percentiles::from_micros(&mut v);
        assert_eq!((p.p50, p.p90, p.p99, p.max), (50.0, 90.0, 99.0, 100.0));
        assert!((p.mean - 50.5).abs() < 1e-9);
        assert!(p.is_ordered());
        assert_eq!(Percentiles::from_micros(&mut []).count, 0);
    }

    #[test]
    fn exponential_gaps_have_the_requested_mean() {
        let mut r = SplitMix::new(7);
        let n = 200_000;
        let mean = (0..n).map(|_| r.exponential(2.0)).sum::<f64>() / f64::from(n);
        assert!((mean - 2.0).abs() < 0.05, "mean {mean}");
    }
}
