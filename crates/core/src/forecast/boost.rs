//! Gradient-boosted oblivious regression trees (one split per level, as in
//! CatBoost), fitted to the ridge model's residuals: histogram splits on
//! Huber gradients, median leaves. An oblivious tree is evaluated with
//! `depth` independent comparisons and one table look-up.

/// An ensemble of oblivious trees; the prediction is the sum of one leaf
/// per tree.
#[derive(Debug, Clone, PartialEq, Default)]
pub(crate) struct Booster {
    depth: usize,
    /// Per tree and level: the feature compared.
    feature: Vec<u16>,
    /// Per tree and level: `x ≥ threshold` sets the level's bit.
    threshold: Vec<f32>,
    /// Per tree, `2^depth` leaf values.
    leaf: Vec<f32>,
}

/// Parameters of the boosting.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct BoostParams {
    pub(crate) trees: usize,
    pub(crate) depth: usize,
    pub(crate) rate: f32,
    pub(crate) min_leaf: usize,
    pub(crate) delta: f32,
    /// Share of rows each tree is grown on.
    pub(crate) subsample: f32,
}

const BINS: usize = 32;

impl Booster {
    /// Adds the prediction for each of `count` feature vectors to `out`.
    /// `xs` is feature-major: feature `f` of vector `r` at `xs[f * block + r]`,
    /// so that each level of a tree is one pass of comparisons over the
    /// block; `idx` is scratch of at least `count`.
    pub(crate) fn add_block(
        &self,
        xs: &[f32],
        block: usize,
        count: usize,
        idx: &mut [u8],
        out: &mut [f32],
    ) {
        let d = self.depth;
        let (idx, out) = (&mut idx[..count], &mut out[..count]);
        for ((feat, thr), leaf) in self
            .feature
            .chunks_exact(d)
            .zip(self.threshold.chunks_exact(d))
            .zip(self.leaf.chunks_exact(1 << d))
        {
            idx.fill(0);
            for (l, (&f, &t)) in feat.iter().zip(thr).enumerate() {
                let col = &xs[f as usize * block..f as usize * block + count];
                for (i, &v) in idx.iter_mut().zip(col) {
                    *i |= u8::from(v >= t) << l;
                }
            }
            for (o, &i) in out.iter_mut().zip(idx.iter()) {
                *o += leaf[usize::from(i)];
            }
        }
    }

    /// Fits `y` from row-major `x` (`y.len()` rows × `p`).
    pub(crate) fn fit(x: &[f32], p: usize, y: &[f32], prm: BoostParams) -> Booster {
        let (n, depth) = (y.len(), prm.depth.clamp(1, 8));
        // Quantile edges per feature from a strided sample.
        let stride = (n / 20_000).max(1);
        let mut edges: Vec<Vec<f32>> = Vec::with_capacity(p);
        let mut col: Vec<f32> = Vec::new();
        for f in 0..p {
            col.clear();
            col.extend(
                (0..n)
                    .step_by(stride)
                    .map(|i| x[i * p + f])
                    .filter(|v| !v.is_nan()),
            );
            col.sort_by(f32::total_cmp);
            let mut e: Vec<f32> = if col.is_empty() {
                Vec::new()
            } else {
                (1..BINS).map(|b| col[b * (col.len() - 1) / BINS]).collect()
            };
            e.dedup();
            edges.push(e);
        }
        let mut binned = vec![0u8; n * p];
        for i in 0..n {
            for f in 0..p {
                let v = x[i * p + f];
                binned[i * p + f] = edges[f].partition_point(|&e| e <= v) as u8;
            }
        }
        let mut b = Booster {
            depth,
            feature: Vec::with_capacity(prm.trees * depth),
            threshold: Vec::with_capacity(prm.trees * depth),
            leaf: Vec::with_capacity(prm.trees << depth),
        };
        let mut fit = vec![0.0f32; n];
        let mut g = vec![0.0f32; n];
        let mut node = vec![0u16; n];
        let mut hist = vec![(0.0f64, 0u32); (1 << (depth - 1)) * p * BINS];
        let mut tot = vec![(0.0f64, 0u32); 1 << depth];
        let mut res: Vec<Vec<f32>> = vec![Vec::new(); 1 << depth];
        let keep = (prm.subsample.clamp(0.01, 1.0) * 65536.0) as u32;
        for t in 0..prm.trees {
            let sample: Vec<u32> = (0..n as u32)
                .filter(|&i| {
                    (i.wrapping_mul(2_654_435_761)
                        .wrapping_add(t as u32 * 40_503)
                        >> 16)
                        & 0xffff
                        < keep
                })
                .collect();
            for &i in &sample {
                let i = i as usize;
                g[i] = (y[i] - fit[i]).clamp(-prm.delta, prm.delta);
                node[i] = 0;
            }
            let mut splits: Vec<(usize, usize)> = Vec::with_capacity(depth);
            for level in 0..depth {
                let nodes = 1 << level;
                hist[..nodes * p * BINS].fill((0.0, 0));
                tot[..nodes].fill((0.0, 0));
                for &i in &sample {
                    let i = i as usize;
                    let (nd, gi) = (node[i] as usize, f64::from(g[i]));
                    tot[nd].0 += gi;
                    tot[nd].1 += 1;
                    let h = &mut hist[nd * p * BINS..(nd + 1) * p * BINS];
                    for (f, &bin) in binned[i * p..(i + 1) * p].iter().enumerate() {
                        let e = &mut h[f * BINS + bin as usize];
                        e.0 += gi;
                        e.1 += 1;
                    }
                }
                let mut best: Option<(f64, usize, usize)> = None;
                for f in 0..p {
                    for bin in 0..edges[f].len() {
                        let mut gain = 0.0;
                        for nd in 0..nodes {
                            let (st, ct) = tot[nd];
                            let h = &hist[(nd * p + f) * BINS..(nd * p + f) * BINS + bin + 1];
                            let (sl, cl) =
                                h.iter().fold((0.0, 0u32), |a, e| (a.0 + e.0, a.1 + e.1));
                            let (sr, cr) = (st - sl, ct - cl);
                            if (cl as usize) >= prm.min_leaf && (cr as usize) >= prm.min_leaf {
                                gain += sl * sl / f64::from(cl) + sr * sr / f64::from(cr)
                                    - st * st / f64::from(ct);
                            }
                        }
                        if gain > 0.0 && best.is_none_or(|(bg, _, _)| gain > bg) {
                            best = Some((gain, f, bin));
                        }
                    }
                }
                let Some((_, f, bin)) = best else { break };
                splits.push((f, bin));
                for &i in &sample {
                    let i = i as usize;
                    node[i] |= u16::from(binned[i * p + f] as usize > bin) << level;
                }
            }
            // Levels without a useful split never set their bit.
            for l in 0..depth {
                match splits.get(l) {
                    Some(&(f, bin)) => {
                        b.feature.push(f as u16);
                        b.threshold.push(edges[f][bin]);
                    }
                    None => {
                        b.feature.push(0);
                        b.threshold.push(f32::INFINITY);
                    }
                }
            }
            // Leaves: the median residual of each (an L1 step), shrunk.
            res.iter_mut().for_each(Vec::clear);
            for &i in &sample {
                let i = i as usize;
                res[node[i] as usize].push(y[i] - fit[i]);
            }
            let base = b.leaf.len();
            for r in &mut res {
                let mid = r.len() / 2;
                let v = if r.is_empty() {
                    0.0
                } else {
                    *r.select_nth_unstable_by(mid, f32::total_cmp).1
                };
                b.leaf.push(v * prm.rate);
            }
            for i in 0..n {
                let row = &binned[i * p..(i + 1) * p];
                let mut k = 0;
                for (l, &(f, bin)) in splits.iter().enumerate() {
                    k |= usize::from(row[f] as usize > bin) << l;
                }
                fit[i] += b.leaf[base + k];
            }
        }
        b
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn learns_a_step_and_evaluates_as_trained() {
        // y = 5 where x0 > 0.5, else −5; x1 is noise.
        let n = 2000;
        let mut x = Vec::with_capacity(2 * n);
        let mut y = Vec::with_capacity(n);
        for i in 0..n {
            let x0 = (i as f32 * 0.618).fract();
            let x1 = (i as f32 * 0.414).fract();
            x.extend([x0, x1]);
            y.push(if x0 > 0.5 { 5.0 } else { -5.0 });
        }
        let prm = BoostParams {
            trees: 20,
            depth: 2,
            rate: 0.5,
            min_leaf: 20,
            delta: 10.0,
            subsample: 1.0,
        };
        let b = Booster::fit(&x, 2, &y, prm);
        let mut out = vec![0.0; 2];
        // Feature-major: x0 of both vectors, then x1 of both.
        b.add_block(&[0.9, 0.1, 0.1, 0.9], 2, 2, &mut [0; 2], &mut out);
        assert!(
            (out[0] - 5.0).abs() < 0.2 && (out[1] + 5.0).abs() < 0.2,
            "{out:?}"
        );
    }
}
