//! Small dense linear algebra: eigenvalues of real symmetric matrices.
//!
//! Used for the shape axes (3×3 covariance) and the GLCM maximal correlation coefficient
//! (one matrix per angle and image type, up to a few hundred rows). Householder reduction to
//! tridiagonal form, then the implicit QL iteration with Wilkinson shifts (the classic
//! `tred2`/`tqli` pair, eigenvalues only): O(n³) once instead of per Jacobi sweep, backward
//! stable, and deterministic (a fixed sequence of operations).

/// Eigenvalues of the symmetric `n`×`n` matrix `a` (row-major; only the lower triangle is
/// read), ascending.
pub fn symmetric_eigenvalues(a: &[f64], n: usize) -> Vec<f64> {
    let (mut d, mut e) = tridiagonalise(a, n);
    tridiagonal_ql(&mut d, &mut e);
    d.sort_by(f64::total_cmp);
    d
}

/// Householder reduction of the symmetric matrix to tridiagonal form: the diagonal `d` and
/// the sub-diagonal `e` (`e[i]` couples rows `i - 1` and `i`; `e[0] = 0`).
///
/// `tred2`'s operations on the lower triangle, on a matrix kept whole: the lower triangle is
/// mirrored first, so that a row read left to right visits the terms `tred2` reads along the
/// row and then down the column, in the same order, and the rank-2 update is applied to whole
/// rows (each mirrored element gets the same two products, added in the other order, which is
/// the same sum). The results are `tred2`'s bit for bit; rows are contiguous, four dot products
/// run side by side and the update vectorises.
fn tridiagonalise(a: &[f64], n: usize) -> (Vec<f64>, Vec<f64>) {
    let mut z = a.to_vec();
    for i in 0..n {
        for j in (i + 1)..n {
            z[i * n + j] = z[j * n + i];
        }
    }
    let mut e = vec![0.0; n];
    let mut u = vec![0.0; n];
    for i in (1..n).rev() {
        let l = i - 1;
        if l == 0 {
            e[i] = z[i * n + l];
            continue;
        }
        let scale: f64 = (0..=l).map(|k| z[i * n + k].abs()).sum();
        if scale == 0.0 {
            e[i] = z[i * n + l];
            continue;
        }
        let mut h = 0.0;
        for k in 0..=l {
            z[i * n + k] /= scale;
            h += z[i * n + k] * z[i * n + k];
        }
        let f = z[i * n + l];
        let g = if f >= 0.0 { -h.sqrt() } else { h.sqrt() };
        e[i] = scale * g;
        h -= f * g;
        z[i * n + l] = f - g;
        let len = l + 1;
        let u = &mut u[..len];
        u.copy_from_slice(&z[i * n..i * n + len]);
        // e = A·u / h (rows 0..=l), f = eᵀu.
        let mut f = 0.0;
        let mut j = 0;
        while j + 4 <= len {
            let (r0, r1, r2, r3) = (
                &z[j * n..j * n + len],
                &z[(j + 1) * n..(j + 1) * n + len],
                &z[(j + 2) * n..(j + 2) * n + len],
                &z[(j + 3) * n..(j + 3) * n + len],
            );
            let mut g = [0.0f64; 4];
            for k in 0..len {
                let uk = u[k];
                g[0] += r0[k] * uk;
                g[1] += r1[k] * uk;
                g[2] += r2[k] * uk;
                g[3] += r3[k] * uk;
            }
            for (t, gt) in g.iter().enumerate() {
                e[j + t] = gt / h;
                f += e[j + t] * u[j + t];
            }
            j += 4;
        }
        while j < len {
            let row = &z[j * n..j * n + len];
            let mut g = 0.0;
            for k in 0..len {
                g += row[k] * u[k];
            }
            e[j] = g / h;
            f += e[j] * u[j];
            j += 1;
        }
        let hh = f / (h + h);
        for j in 0..len {
            e[j] -= hh * u[j];
        }
        let e = &e[..len];
        for j in 0..len {
            let (fj, gj) = (u[j], e[j]);
            let row = &mut z[j * n..j * n + len];
            for ((zk, &ek), &uk) in row.iter_mut().zip(e).zip(u.iter()) {
                *zk -= fj * ek + gj * uk;
            }
        }
    }
    let d = (0..n).map(|i| z[i * n + i]).collect();
    (d, e)
}

/// Eigenvalues of the symmetric tridiagonal matrix (`d`, `e` as [`tridiagonalise`] leaves
/// them) by the implicit QL iteration; they replace `d` (unordered).
fn tridiagonal_ql(d: &mut [f64], e: &mut [f64]) {
    let n = d.len();
    if n < 2 {
        return;
    }
    for i in 1..n {
        e[i - 1] = e[i];
    }
    e[n - 1] = 0.0;
    let sign = |a: f64, b: f64| if b >= 0.0 { a.abs() } else { -a.abs() };
    for l in 0..n {
        for _iteration in 0..64 {
            let mut m = l;
            while m + 1 < n {
                let dd = d[m].abs() + d[m + 1].abs();
                if e[m].abs() <= f64::EPSILON * dd {
                    break;
                }
                m += 1;
            }
            if m == l {
                break;
            }
            let mut g = (d[l + 1] - d[l]) / (2.0 * e[l]);
            let mut r = g.hypot(1.0);
            g = d[m] - d[l] + e[l] / (g + sign(r, g));
            let (mut s, mut c, mut p) = (1.0, 1.0, 0.0);
            let mut deflated = false;
            for i in (l..m).rev() {
                let f = s * e[i];
                let b = c * e[i];
                r = f.hypot(g);
                e[i + 1] = r;
                if r == 0.0 {
                    d[i + 1] -= p;
                    e[m] = 0.0;
                    deflated = true;
                    break;
                }
                s = f / r;
                c = g / r;
                g = d[i + 1] - p;
                r = (d[i] - g) * s + 2.0 * c * b;
                p = s * r;
                d[i + 1] = g + p;
                g = c * r - b;
            }
            if deflated {
                continue;
            }
            d[l] -= p;
            e[l] = g;
            e[m] = 0.0;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Cyclic Jacobi (slow, simple): the reference the fast path is checked against.
    fn jacobi_eigenvalues(a: &[f64], n: usize) -> Vec<f64> {
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

    /// Deterministic pseudo-random symmetric matrices (GLCM-like: non-negative, some zero rows)
    /// give Jacobi's eigenvalues to a few ulp of the largest.
    #[test]
    fn tridiagonal_ql_agrees_with_jacobi() {
        let mut state = 0x9e37_79b9_7f4a_7c15u64;
        let mut next = || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            (state >> 11) as f64 / (1u64 << 53) as f64
        };
        for n in [1usize, 2, 3, 5, 17, 64, 130] {
            let mut a = vec![0.0; n * n];
            for i in 0..n {
                for j in 0..=i {
                    let v = if (i * 7 + j) % 11 == 0 {
                        0.0
                    } else {
                        next() - 0.3
                    };
                    a[i * n + j] = v;
                    a[j * n + i] = v;
                }
            }
            let fast = symmetric_eigenvalues(&a, n);
            let slow = jacobi_eigenvalues(&a, n);
            let scale = slow.iter().fold(1.0f64, |m, v| m.max(v.abs()));
            for (x, y) in fast.iter().zip(&slow) {
                assert!(
                    (x - y).abs() <= 1e-12 * scale,
                    "n {n}: {fast:?} vs {slow:?}"
                );
            }
        }
    }
}
