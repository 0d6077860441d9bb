//! Small dense linear algebra: eigenvalues of real symmetric matrices (cyclic Jacobi).
//!
//! Used for the shape axes (3×3 covariance) and the GLCM maximal correlation coefficient.
//! Jacobi is slow for large matrices but exact to a few ulp and deterministic; the matrices
//! here are at most a few hundred rows.

/// Eigenvalues of the symmetric `n`×`n` matrix `a` (row-major), ascending.
pub fn symmetric_eigenvalues(a: &[f64], n: usize) -> Vec<f64> {
    let mut m = a.to_vec();
    if n == 0 {
        return Vec::new();
    }
    for _sweep in 0..100 {
        let mut off = 0.0;
        let mut diag = 0.0;
        for p in 0..n {
            diag += m[p * n + p] * m[p * n + p];
            for q in (p + 1)..n {
                off += m[p * n + q] * m[p * n + q];
            }
        }
        if off == 0.0 || off <= 1e-36 * diag {
            break;
        }
        for p in 0..n {
            for q in (p + 1)..n {
                let apq = m[p * n + q];
                if apq == 0.0 {
                    continue;
                }
                let app = m[p * n + p];
                let aqq = m[q * n + q];
                let theta = (aqq - app) / (2.0 * apq);
                let t = theta.signum() / (theta.abs() + (theta * theta + 1.0).sqrt());
                let t = if theta == 0.0 { 1.0 } else { t };
                let c = 1.0 / (t * t + 1.0).sqrt();
                let s = t * c;
                for k in 0..n {
                    let akp = m[k * n + p];
                    let akq = m[k * n + q];
                    m[k * n + p] = c * akp - s * akq;
                    m[k * n + q] = s * akp + c * akq;
                }
                for k in 0..n {
                    let apk = m[p * n + k];
                    let aqk = m[q * n + k];
                    m[p * n + k] = c * apk - s * aqk;
                    m[q * n + k] = s * apk + c * aqk;
                }
                m[p * n + q] = 0.0;
                m[q * n + p] = 0.0;
            }
        }
    }
    let mut ev: Vec<f64> = (0..n).map(|i| m[i * n + i]).collect();
    ev.sort_by(f64::total_cmp);
    ev
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn eigenvalues_of_known_matrices() {
        let ev = symmetric_eigenvalues(&[2.0, 1.0, 0.0, 1.0, 2.0, 0.0, 0.0, 0.0, 5.0], 3);
        let want = [1.0, 3.0, 5.0];
        for (a, b) in ev.iter().zip(want) {
            assert!((a - b).abs() < 1e-12, "{ev:?}");
        }
        let ev = symmetric_eigenvalues(&[4.0, -2.0, -2.0, 1.0], 2);
        assert!(
            (ev[0]).abs() < 1e-12 && (ev[1] - 5.0).abs() < 1e-12,
            "{ev:?}"
        );
    }
}
