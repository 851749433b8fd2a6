//! Ridge regression by a Cholesky solve of the (small) normal equations.

/// Normal equations `G w = b` of one least-squares problem, accumulated
/// sample by sample (only the lower triangle of `G` is kept up to date).
#[derive(Debug, Clone)]
pub(crate) struct Normal {
    p: usize,
    pub(crate) g: Vec<f64>,
    pub(crate) b: Vec<f64>,
    pub(crate) n: u64,
}

impl Normal {
    pub(crate) fn new(p: usize) -> Normal {
        Normal {
            p,
            g: vec![0.0; p * p],
            b: vec![0.0; p],
            n: 0,
        }
    }

    pub(crate) fn clear(&mut self) {
        self.g.fill(0.0);
        self.b.fill(0.0);
        self.n = 0;
    }

    /// Adds one sample (features `x`, target `y`).
    #[cfg(test)]
    pub(crate) fn add(&mut self, x: &[f32], y: f32) {
        self.add_weighted(x, y, 1.0);
    }

    /// Adds one sample with weight `wt`.
    pub(crate) fn add_weighted(&mut self, x: &[f32], y: f32, wt: f64) {
        let p = self.p;
        let y = f64::from(y) * wt;
        for i in 0..p {
            let xi = f64::from(x[i]);
            if xi == 0.0 {
                continue;
            }
            self.b[i] += xi * y;
            let xi = xi * wt;
            let row = &mut self.g[i * p..i * p + i + 1];
            for (gij, &xj) in row.iter_mut().zip(&x[..=i]) {
                *gij += xi * f64::from(xj);
            }
        }
        self.n += 1;
    }

    /// Adds another accumulator's sums.
    pub(crate) fn merge(&mut self, other: &Normal) {
        for (a, b) in self.g.iter_mut().zip(&other.g) {
            *a += b;
        }
        for (a, b) in self.b.iter_mut().zip(&other.b) {
            *a += b;
        }
        self.n += other.n;
    }

    /// Solves `(G + Λ) w = b + Λ prior` with `Λ = λ·diag(G)` on every
    /// feature except `unpenalised` — ridge on standardised features,
    /// shrinking towards `prior` (zeros if `None`). Returns `None` when
    /// the system is singular even after the penalty.
    pub(crate) fn solve(
        &self,
        lambda: f64,
        unpenalised: usize,
        prior: Option<&[f64]>,
    ) -> Option<Vec<f64>> {
        let p = self.p;
        let mut a = vec![0.0; p * p];
        let mut rhs = self.b.clone();
        for i in 0..p {
            for j in 0..=i {
                a[i * p + j] = self.g[i * p + j];
            }
            let d = self.g[i * p + i];
            // A feature never seen (all zeros) gets a unit penalty so the
            // system stays positive definite; its weight comes out as the prior.
            let pen = if i == unpenalised {
                1e-9 * (1.0 + d)
            } else {
                lambda * d + 1e-9 + if d == 0.0 { 1.0 } else { 0.0 }
            };
            a[i * p + i] += pen;
            if let Some(prior) = prior {
                rhs[i] += pen * prior[i];
            }
        }
        cholesky_solve(&mut a, &mut rhs, p)?;
        Some(rhs)
    }
}

/// Solves `A x = b` in place for symmetric positive definite `A` (lower
/// triangle used; overwritten by the factor). `b` becomes `x`.
pub(crate) fn cholesky_solve(a: &mut [f64], b: &mut [f64], p: usize) -> Option<()> {
    for j in 0..p {
        let mut d = a[j * p + j];
        for k in 0..j {
            d -= a[j * p + k] * a[j * p + k];
        }
        if d.is_nan() || d <= 0.0 || !d.is_finite() {
            return None;
        }
        let d = d.sqrt();
        a[j * p + j] = d;
        for i in j + 1..p {
            let mut s = a[i * p + j];
            for k in 0..j {
                s -= a[i * p + k] * a[j * p + k];
            }
            a[i * p + j] = s / d;
        }
    }
    for i in 0..p {
        let mut s = b[i];
        for k in 0..i {
            s -= a[i * p + k] * b[k];
        }
        b[i] = s / a[i * p + i];
    }
    for i in (0..p).rev() {
        let mut s = b[i];
        for k in i + 1..p {
            s -= a[k * p + i] * b[k];
        }
        b[i] = s / a[i * p + i];
    }
    Some(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn recovers_exact_linear_relation() {
        let mut n = Normal::new(3);
        for i in 0..50 {
            let x1 = (i as f32 * 0.37).sin();
            let x2 = (i as f32 * 0.11).cos();
            n.add(&[1.0, x1, x2], 2.0 + 3.0 * x1 - 1.5 * x2);
        }
        let w = n.solve(0.0, 0, None).unwrap();
        assert!((w[0] - 2.0).abs() < 1e-6, "{w:?}");
        assert!((w[1] - 3.0).abs() < 1e-6, "{w:?}");
        assert!((w[2] + 1.5).abs() < 1e-6, "{w:?}");
    }

    #[test]
    fn penalty_shrinks_towards_the_prior() {
        let mut n = Normal::new(2);
        for i in 0..20 {
            let x = i as f32 / 10.0;
            n.add(&[1.0, x], 1.0 + 2.0 * x);
        }
        let w = n.solve(1e6, 0, Some(&[0.0, 5.0])).unwrap();
        assert!((w[1] - 5.0).abs() < 1e-3, "{w:?}");
    }
}
