//! `availability_target` (agent.md §5.7): besides the half-life rule, an X.509-SVID
//! (workload or agent) is rotated once its remaining lifetime falls to the target plus
//! a random 0–10 minutes, so that it stays valid at least that long should the server
//! become unreachable. The rule applies only to SVIDs living more than 12 hours beyond
//! the target; shorter ones keep the half-life rule alone (with a warning).

use std::time::{Duration, SystemTime};

/// How much longer than `availability_target` an SVID must live for the target to
/// apply.
pub const MIN_LIFETIME_BEYOND_TARGET: Duration = Duration::from_secs(12 * 3600);

/// The largest random addition to the target.
pub const MAX_TARGET_JITTER: Duration = Duration::from_secs(10 * 60);

/// Whether `availability_target` applies to an SVID valid from `not_before` to
/// `not_after`.
pub fn target_applies(not_before: SystemTime, not_after: SystemTime, target: Duration) -> bool {
    not_after
        .duration_since(not_before)
        .is_ok_and(|lifetime| lifetime.saturating_sub(target) > MIN_LIFETIME_BEYOND_TARGET)
}

/// Whether the availability target makes an SVID due at `now`: the target applies and
/// the remaining lifetime is at most `target + jitter` (`jitter` is clamped to
/// [`MAX_TARGET_JITTER`]).
pub fn availability_due(
    not_before: SystemTime,
    not_after: SystemTime,
    now: SystemTime,
    target: Duration,
    jitter: Duration,
) -> bool {
    if !target_applies(not_before, not_after, target) {
        return false;
    }
    let remaining = not_after.duration_since(now).unwrap_or(Duration::ZERO);
    remaining <= target + jitter.min(MAX_TARGET_JITTER)
}

/// A random jitter in `0..=MAX_TARGET_JITTER`, drawn from `unit` in `[0, 1]`.
pub fn target_jitter(unit: f64) -> Duration {
    MAX_TARGET_JITTER.mul_f64(unit.clamp(0.0, 1.0))
}

#[cfg(test)]
mod tests {
    use super::*;

    const HOUR: Duration = Duration::from_secs(3600);

    #[test]
    fn due_once_the_remaining_lifetime_reaches_the_target() {
        let start = SystemTime::UNIX_EPOCH + HOUR * 1000;
        let end = start + HOUR * 72;
        let target = HOUR * 24;
        // 48h elapsed: 24h remain, the target is reached (half life would be at 36h).
        assert!(!availability_due(
            start,
            end,
            start + HOUR * 47,
            target,
            Duration::ZERO
        ));
        assert!(availability_due(
            start,
            end,
            start + HOUR * 48,
            target,
            Duration::ZERO
        ));
        // The jitter brings it forward by at most 10 minutes.
        let early = start + HOUR * 48 - Duration::from_secs(5 * 60);
        assert!(availability_due(start, end, early, target, HOUR));
        assert!(!availability_due(
            start,
            end,
            start + HOUR * 47,
            target,
            HOUR
        ));
        // Expired: due.
        assert!(availability_due(
            start,
            end,
            end + HOUR,
            target,
            Duration::ZERO
        ));
    }

    #[test]
    fn short_lifetimes_ignore_the_target() {
        let start = SystemTime::UNIX_EPOCH + HOUR * 1000;
        let target = HOUR * 24;
        // 36h lifetime: only 12h beyond the target, not more.
        assert!(!target_applies(start, start + HOUR * 36, target));
        assert!(!availability_due(
            start,
            start + HOUR * 36,
            start + HOUR * 35,
            target,
            Duration::ZERO
        ));
        assert!(target_applies(start, start + HOUR * 37, target));
        assert_eq!(target_jitter(2.0), MAX_TARGET_JITTER);
        assert_eq!(target_jitter(0.0), Duration::ZERO);
    }
}
