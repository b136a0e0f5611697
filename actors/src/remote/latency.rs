//! How long this node's remote asks took: a fixed-bucket histogram.

use std::time::Duration;

/// Upper bounds of the buckets, in seconds: 100 µs doubling to about 6.5 s (17
/// bounds); slower asks fall in the last, unbounded bucket.
pub const ASK_LATENCY_BOUNDS: [f64; 17] = [
    0.000_1, 0.000_2, 0.000_4, 0.000_8, 0.001_6, 0.003_2, 0.006_4, 0.012_8, 0.025_6, 0.051_2,
    0.102_4, 0.204_8, 0.409_6, 0.819_2, 1.638_4, 3.276_8, 6.553_6,
];

/// The latency of every remote ask this node made that ended (with a reply, an error
/// or its deadline), from the call to its outcome. Bucket `i` counts asks of at most
/// [`ASK_LATENCY_BOUNDS`]`[i]` seconds (and more than the bound before it); the last
/// bucket counts the slower ones.
///
/// ```
/// use std::time::Duration;
/// use tern_actors::remote::AskLatency;
///
/// let mut h = AskLatency::default();
/// h.observe(Duration::from_micros(150));
/// h.observe(Duration::from_secs(10));
/// assert_eq!(h.count(), 2);
/// assert_eq!(h.buckets()[1], 1); // (100 µs, 200 µs]
/// assert_eq!(h.buckets()[17], 1); // slower than 6.5536 s
/// assert_eq!(h.quantile(0.5), Some(Duration::from_micros(200)));
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AskLatency {
    buckets: [u64; 18],
    count: u64,
    sum: Duration,
}

impl Default for AskLatency {
    fn default() -> Self {
        Self {
            buckets: [0; 18],
            count: 0,
            sum: Duration::ZERO,
        }
    }
}

impl AskLatency {
    /// Counts one ask that took `d`.
    pub fn observe(&mut self, d: Duration) {
        let secs = d.as_secs_f64();
        let i = ASK_LATENCY_BOUNDS
            .iter()
            .position(|b| secs <= *b)
            .unwrap_or(ASK_LATENCY_BOUNDS.len());
        self.buckets[i] += 1;
        self.count += 1;
        self.sum = self.sum.saturating_add(d);
    }

    /// Asks per bucket (not cumulative), the last one unbounded.
    #[must_use]
    pub const fn buckets(&self) -> &[u64; 18] {
        &self.buckets
    }

    /// Asks counted.
    #[must_use]
    pub const fn count(&self) -> u64 {
        self.count
    }

    /// Their total time.
    #[must_use]
    pub const fn sum(&self) -> Duration {
        self.sum
    }

    /// The upper bound of the bucket holding quantile `q` (0 to 1) of the asks, `None`
    /// without asks; asks slower than the last bound report twice that bound.
    #[must_use]
    pub fn quantile(&self, q: f64) -> Option<Duration> {
        if self.count == 0 {
            return None;
        }
        // The rank of the quantile, at least the first ask.
        #[allow(
            clippy::cast_possible_truncation,
            clippy::cast_sign_loss,
            clippy::cast_precision_loss
        )]
        let rank = ((q.clamp(0.0, 1.0) * self.count as f64).ceil() as u64).max(1);
        let mut seen = 0;
        for (i, n) in self.buckets.iter().enumerate() {
            seen += n;
            if seen >= rank {
                let bound = ASK_LATENCY_BOUNDS
                    .get(i)
                    .copied()
                    .unwrap_or(ASK_LATENCY_BOUNDS[ASK_LATENCY_BOUNDS.len() - 1] * 2.0);
                return Some(Duration::from_secs_f64(bound));
            }
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bounds_are_inclusive_and_quantiles_follow_the_counts() {
        let mut h = AskLatency::default();
        h.observe(Duration::from_micros(100));
        assert_eq!(h.buckets()[0], 1, "a bound is inside its bucket");
        for _ in 0..8 {
            h.observe(Duration::from_millis(3));
        }
        h.observe(Duration::from_millis(500));
        assert_eq!(h.count(), 10);
        assert_eq!(h.buckets()[5], 8);
        assert_eq!(h.buckets()[13], 1);
        assert_eq!(h.quantile(0.05), Some(Duration::from_secs_f64(0.000_1)));
        assert_eq!(h.quantile(0.5), Some(Duration::from_secs_f64(0.003_2)));
        assert_eq!(h.quantile(1.0), Some(Duration::from_secs_f64(0.819_2)));
        assert_eq!(AskLatency::default().quantile(0.5), None);
        assert_eq!(h.sum(), Duration::from_micros(100 + 24_000 + 500_000));
    }
}
