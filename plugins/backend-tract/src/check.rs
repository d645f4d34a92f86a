//! Argument checks shared by every entry point.

use crate::{Error, ErrorKind};

/// Checks a padded batch against the model's feature width.
pub(crate) fn check_batch(
    features: &[f32],
    n: usize,
    t: usize,
    f: usize,
    lengths: &[i64],
    width: usize,
) -> Result<(), Error> {
    let bad = |m: String| Err(Error::new(ErrorKind::InvalidInput, m));
    if n == 0 || t == 0 {
        return bad(format!("empty batch: n = {n}, t = {t}"));
    }
    if f != width {
        return bad(format!("feature width mismatch: the model expects F = {width}, got {f}"));
    }
    match n.checked_mul(t).and_then(|nt| nt.checked_mul(f)) {
        Some(len) if len == features.len() => {}
        expected => {
            return bad(format!(
                "features hold {} values, expected n × t × f = {n} × {t} × {f} ({expected:?})",
                features.len()
            ));
        }
    }
    if lengths.len() != n {
        return bad(format!("{} lengths for a batch of {n}", lengths.len()));
    }
    if let Some((i, &l)) = lengths.iter().enumerate().find(|&(_, &l)| l < 1 || l as u64 > t as u64)
    {
        return bad(format!("item {i} has length {l}; lengths must be in 1..={t}"));
    }
    if let Some(pos) = features.iter().position(|v| !v.is_finite()) {
        return bad(format!(
            "feature value {} at item {}, frame {} is not finite",
            features[pos],
            pos / (t * f),
            pos / f % t
        ));
    }
    Ok(())
}
