//! Texture matrix builders (PyRadiomics `cmatrices.c`), apart from the feature formulas.
//!
//! All builders work on the ROI bounding box with `x` fastest and 1-based grey levels
//! (0 = outside the ROI). Grey levels are compressed to the levels present in the ROI, which is
//! what PyRadiomics does after building (it deletes empty rows/columns); the formulas use the
//! level values themselves, kept in [`Levels::values`].

use std::collections::BTreeMap;

use super::roi::Discretised;

/// Neighbour offsets (dx, dy, dz) as PyRadiomics generates them: every offset whose infinity
/// norm is one of `distances` and that fits in the box (`|offset| < size` per axis). With
/// `bidirectional == false` only one of each ± pair is kept.
pub fn angles(size: [usize; 3], distances: &[usize], bidirectional: bool) -> Vec<[i64; 3]> {
    let dmax = distances.iter().copied().max().unwrap_or(1) as i64;
    let mut out = Vec::new();
    // Same enumeration as PyRadiomics (numpy z, y, x order, from +d down to -d).
    for dz in (-dmax..=dmax).rev() {
        for dy in (-dmax..=dmax).rev() {
            for dx in (-dmax..=dmax).rev() {
                let o = [dx, dy, dz];
                let norm = o.iter().map(|v| v.abs()).max().unwrap_or(0);
                if norm == 0 || !distances.contains(&(norm as usize)) {
                    continue;
                }
                if (0..3).any(|a| o[a].unsigned_abs() as usize >= size[a]) {
                    continue;
                }
                out.push(o);
            }
        }
    }
    if !bidirectional {
        // The enumeration is mirrored around its middle: keep the first half.
        out.truncate(out.len() / 2);
    }
    out
}

/// Present grey levels and the map from level to compressed index.
#[derive(Debug, Clone)]
pub struct Levels {
    /// Level values present in the ROI, ascending.
    pub values: Vec<f64>,
    /// `index[level]` = compressed index (only meaningful for present levels).
    pub index: Vec<usize>,
}

impl Levels {
    /// From a discretised ROI.
    pub fn of(d: &Discretised) -> Levels {
        let mut index = vec![usize::MAX; d.ng as usize + 1];
        for (i, &l) in d.present.iter().enumerate() {
            index[l as usize] = i;
        }
        Levels {
            values: d.present.iter().map(|&l| f64::from(l)).collect(),
            index,
        }
    }

    /// Number of present levels.
    pub fn len(&self) -> usize {
        self.values.len()
    }

    /// Whether no level is present.
    pub fn is_empty(&self) -> bool {
        self.values.is_empty()
    }
}

#[inline]
fn neighbour(p: [usize; 3], o: [i64; 3], dims: [usize; 3]) -> Option<usize> {
    let x = p[0] as i64 + o[0];
    let y = p[1] as i64 + o[1];
    let z = p[2] as i64 + o[2];
    if x < 0 || y < 0 || z < 0 || x >= dims[0] as i64 || y >= dims[1] as i64 || z >= dims[2] as i64
    {
        return None;
    }
    Some((z as usize * dims[1] + y as usize) * dims[0] + x as usize)
}

/// The ROI box surrounded by a margin of empty cells as wide as the longest offset, so that a
/// neighbour of a box voxel is one linear offset away and never needs a bounds check: outside
/// the box reads as outside the ROI, which is what every builder does with it. A cell holds the
/// voxel's compressed level index + 1 (0 outside the ROI): equal cells are equal levels, and
/// [`Padded::level`] gives the level itself. Built once per image and shared by the builders;
/// `roi` lists the ROI voxels in box order (`x` fastest), the order in which every builder
/// visits them.
#[derive(Debug)]
pub struct Padded {
    levels: Vec<u32>,
    /// Level of each cell value (`raw[0] = 0`).
    raw: Vec<u32>,
    /// Padded indices of the ROI voxels, box order.
    roi: Vec<usize>,
    /// Padded dimensions.
    dims: [usize; 3],
    /// Box dimensions.
    inner: [usize; 3],
}

impl Padded {
    /// The discretised ROI (`d`, levels in box order of the ROI voxels of `mask`, a box of
    /// `inner` voxels, `x` fastest) with a margin of `pad` voxels (at least 1; at least the
    /// largest offset component the builders will use).
    pub fn new(
        d: &Discretised,
        lv: &Levels,
        mask: &[bool],
        inner: [usize; 3],
        pad: usize,
    ) -> Padded {
        let pad = pad.max(1);
        let dims = inner.map(|n| n + 2 * pad);
        let mut out = vec![0u32; dims[0] * dims[1] * dims[2]];
        let mut roi = Vec::with_capacity(d.levels.len());
        for z in 0..inner[2] {
            for y in 0..inner[1] {
                let src = (z * inner[1] + y) * inner[0];
                let dst = ((z + pad) * dims[1] + y + pad) * dims[0] + pad;
                roi.extend(
                    mask[src..src + inner[0]]
                        .iter()
                        .enumerate()
                        .filter(|(_, &m)| m)
                        .map(|(x, _)| dst + x),
                );
            }
        }
        for (&i, &l) in roi.iter().zip(&d.levels) {
            out[i] = lv.index[l as usize] as u32 + 1;
        }
        let raw = std::iter::once(0)
            .chain(d.present.iter().copied())
            .collect();
        Padded {
            levels: out,
            raw,
            roi,
            dims,
            inner,
        }
    }

    /// The level of a cell value.
    #[inline(always)]
    fn level(&self, cell: u32) -> u32 {
        self.raw[cell as usize]
    }

    /// The margin needed for offsets of infinity norm up to the largest of `distances`.
    pub fn margin(distances: &[usize]) -> usize {
        distances.iter().copied().max().unwrap_or(1).max(1)
    }

    /// Linear offset of a neighbour.
    fn offset(&self, o: [i64; 3]) -> isize {
        (o[0] + self.dims[0] as i64 * (o[1] + self.dims[1] as i64 * o[2])) as isize
    }

    /// Linear offsets of all angles.
    fn offsets(&self, angles: &[[i64; 3]]) -> Vec<isize> {
        angles.iter().map(|&o| self.offset(o)).collect()
    }

    /// The level `off` away from padded index `i` (a box voxel, `off` within the margin).
    #[inline(always)]
    fn at(&self, i: usize, off: isize) -> u32 {
        self.levels[i.wrapping_add_signed(off)]
    }

    /// ROI voxels with their levels, box order.
    fn voxels(&self) -> impl Iterator<Item = (usize, u32)> + '_ {
        self.roi.iter().map(|&i| (i, self.levels[i]))
    }

    /// The box contents (unpadded), `x` fastest.
    fn unpadded(&self) -> Vec<u32> {
        let pad = (self.dims[0] - self.inner[0]) / 2;
        let mut out = Vec::with_capacity(self.inner.iter().product());
        for z in 0..self.inner[2] {
            for y in 0..self.inner[1] {
                let row = ((z + pad) * self.dims[1] + y + pad) * self.dims[0] + pad;
                out.extend_from_slice(&self.levels[row..row + self.inner[0]]);
            }
        }
        out
    }
}

/// Raw co-occurrence counts per angle: `counts[a][i * n + j]` (i = centre, j = neighbour).
pub fn glcm(grid: &Padded, lv: &Levels, angles: &[[i64; 3]]) -> Vec<Vec<f64>> {
    let n = lv.len();
    let offsets = grid.offsets(angles);
    // One angle at a time (its matrix stays in cache), integer counts converted once (exact
    // either way).
    offsets
        .iter()
        .map(|&off| {
            let mut m = vec![0u32; n * n + 1];
            for &i in &grid.roi {
                let row = (grid.levels[i] as usize - 1) * n;
                let cj = grid.at(i, off) as usize;
                // Outside the ROI (cj = 0) counts into the spare last cell.
                let cell = if cj == 0 { n * n } else { row + cj - 1 };
                m[cell] += 1;
            }
            m.truncate(n * n);
            m.into_iter().map(f64::from).collect()
        })
        .collect()
}

/// Run-length counts per angle: `runs[a][i * nr + (length - 1)]`; `nr` = longest box side.
/// Angles in which no line holds more than one ROI voxel are returned empty (PyRadiomics).
///
/// A run starts at an ROI voxel whose predecessor along the angle has another level (the
/// margin reads as level 0) and extends while the level stays the same.
pub fn glrlm(grid: &Padded, lv: &Levels, angles: &[[i64; 3]]) -> (Vec<Vec<f64>>, usize) {
    let n = lv.len();
    let nr = grid.inner.iter().copied().max().unwrap_or(1);
    let mut out = Vec::with_capacity(angles.len());
    let mut box_levels: Option<Vec<u32>> = None;
    // Per padded voxel, its level and the length of the run so far along the current angle,
    // in one word (16 + 16 bits when they fit, else 32 + 32).
    let mut state = if n < 0xffff && nr < 0xffff {
        RunState::Narrow(grid.levels.iter().map(|&l| l << 16).collect())
    } else {
        RunState::Wide(grid.levels.iter().map(|&l| u64::from(l) << 32).collect())
    };
    // Compressed level of each ROI voxel, in `grid.roi` order.
    let rows: Vec<usize> = grid.voxels().map(|(_, l)| (l as usize - 1) * nr).collect();
    for &o in angles {
        let off = grid.offset(o);
        let mut counts = vec![0u32; n * nr];
        // Two ROI voxels adjacent along the angle share a line; the exact rule (any line
        // with two ROI voxels, adjacent or not) is only walked when that quick test fails.
        let mut multi = false;
        if off > 0 {
            // One pass, no data-dependent jumps: a voxel continues its predecessor's run when
            // the levels agree, and a run is counted where the next voxel differs.
            let step = off.unsigned_abs();
            multi = match &mut state {
                RunState::Narrow(v) => forward_runs(v, &grid.roi, &rows, step, &mut counts),
                RunState::Wide(v) => forward_runs(v, &grid.roi, &rows, step, &mut counts),
            };
        } else {
            for (&i, &row) in grid.roi.iter().zip(&rows) {
                let l = grid.levels[i];
                let next = grid.at(i, off);
                multi |= next != 0;
                if grid.at(i, -off) == l {
                    continue;
                }
                let mut len = 1usize;
                let mut j = i.wrapping_add_signed(off);
                while grid.levels[j] == l {
                    len += 1;
                    j = j.wrapping_add_signed(off);
                }
                counts[row + len - 1] += 1;
            }
        }
        let mut m: Vec<f64> = counts.into_iter().map(f64::from).collect();
        if !multi {
            let levels = box_levels.get_or_insert_with(|| grid.unpadded());
            if !line_with_two_roi_voxels(levels, grid.inner, o) {
                m.iter_mut().for_each(|v| *v = 0.0);
            }
        }
        out.push(m);
    }
    (out, nr)
}

/// The per-voxel state of [`glrlm`]: level and run length packed in one word.
enum RunState {
    Narrow(Vec<u32>),
    Wide(Vec<u64>),
}

/// A word holding a level (high half) and a run length (low half).
/// (The caller picks the width so that both halves fit: levels and run lengths below 2^16
/// for `u32`.)
trait Packed: Copy {
    const HALF: u32;
    fn pack(level: u64, len: u64) -> Self;
    fn as_u64(self) -> u64;
}

impl Packed for u32 {
    const HALF: u32 = 16;
    fn pack(level: u64, len: u64) -> Self {
        ((level << 16) | len) as u32
    }
    fn as_u64(self) -> u64 {
        u64::from(self)
    }
}

impl Packed for u64 {
    const HALF: u32 = 32;
    fn pack(level: u64, len: u64) -> Self {
        (level << 32) | len
    }
    fn as_u64(self) -> u64 {
        self
    }
}

/// One forward angle (`step` > 0) of [`glrlm`], in one pass without data-dependent jumps: a
/// voxel continues its predecessor's run when the levels agree (the predecessor comes earlier
/// in box order, so its state is this angle's), and a run is counted where the next voxel
/// differs. Returns whether two ROI voxels are adjacent along the angle.
fn forward_runs<P: Packed>(
    state: &mut [P],
    roi: &[usize],
    rows: &[usize],
    step: usize,
    counts: &mut [u32],
) -> bool {
    let half = P::HALF;
    let low = (1u64 << half) - 1;
    let mut multi = false;
    for (&i, &row) in roi.iter().zip(rows) {
        let key = state[i].as_u64() >> half;
        let before = state[i - step].as_u64();
        // Same level: one more than the predecessor's run; otherwise a new run.
        let same = u64::from(before >> half == key);
        let len = same * (before & low) + 1;
        state[i] = P::pack(key, len);
        let next = state[i + step].as_u64() >> half;
        multi |= next != 0;
        counts[row + len as usize - 1] += u32::from(next != key);
    }
    multi
}

/// Whether some line of the box along `o` holds more than one ROI voxel.
fn line_with_two_roi_voxels(levels: &[u32], dims: [usize; 3], o: [i64; 3]) -> bool {
    for z in 0..dims[2] {
        for y in 0..dims[1] {
            for x in 0..dims[0] {
                if neighbour([x, y, z], [-o[0], -o[1], -o[2]], dims).is_some() {
                    continue;
                }
                let mut elements = 0usize;
                let mut p = Some((z * dims[1] + y) * dims[0] + x);
                let mut q = [x, y, z];
                while let Some(i) = p {
                    if levels[i] != 0 {
                        elements += 1;
                        if elements > 1 {
                            return true;
                        }
                    }
                    p = neighbour(q, o, dims);
                    q = [
                        q[0].wrapping_add_signed(o[0] as isize),
                        q[1].wrapping_add_signed(o[1] as isize),
                        q[2].wrapping_add_signed(o[2] as isize),
                    ];
                }
            }
        }
    }
    false
}

/// Zones (connected voxels of one level, neighbours by `angles`, both directions):
/// `(compressed level, zone size) → number of zones`.
pub fn glszm(grid: &Padded, lv: &Levels, angles: &[[i64; 3]]) -> BTreeMap<(usize, usize), f64> {
    let offsets = grid.offsets(angles);
    // A voxel taken into a zone is set to 0 (outside), so it is never visited again.
    let mut levels = grid.levels.clone();
    // Every voxel is pushed at most once, and each visit may write one slot past the top.
    let mut stack = vec![0usize; grid.roi.len() + offsets.len() + 1];
    // Zone counts per (compressed level, size): small sizes in a dense table, the rest listed.
    const SMALL: usize = 64;
    let mut small = vec![0u32; lv.len() * SMALL];
    let mut large: Vec<(usize, usize)> = Vec::new();
    for &start in &grid.roi {
        let l = levels[start];
        if l == 0 {
            continue;
        }
        levels[start] = 0;
        stack[0] = start;
        let mut top = 1usize;
        let mut size = 0usize;
        while top > 0 {
            top -= 1;
            let k = stack[top];
            size += 1;
            // Without branches: the neighbour is written above the top and kept (top moves
            // up) only when it has the zone's level; it is then cleared.
            for &off in &offsets {
                let j = k.wrapping_add_signed(off);
                let same = levels[j] == l;
                levels[j] = if same { 0 } else { levels[j] };
                stack[top] = j;
                top += usize::from(same);
            }
        }
        let c = l as usize - 1;
        if size <= SMALL {
            small[c * SMALL + size - 1] += 1;
        } else {
            large.push((c, size));
        }
    }
    let mut zones = BTreeMap::new();
    for (i, &count) in small.iter().enumerate() {
        if count > 0 {
            zones.insert((i / SMALL, i % SMALL + 1), f64::from(count));
        }
    }
    for key in large {
        *zones.entry(key).or_insert(0.0) += 1.0;
    }
    zones
}

/// GLDM dependence counts and NGTDM sums from one pass over the neighbourhoods (the two
/// families visit the same neighbours); each is what [`gldm`] and [`ngtdm`] return.
#[derive(Debug, Clone)]
pub struct Neighbourhood {
    /// `dep[i * cols + d]`, as [`gldm`].
    pub dep: Vec<f64>,
    /// Columns of `dep`.
    pub cols: usize,
    /// NGTDM voxel counts per present level, as [`ngtdm`].
    pub n: Vec<f64>,
    /// NGTDM summed differences per present level, as [`ngtdm`].
    pub s: Vec<f64>,
}

/// [`gldm`] and [`ngtdm`] in one pass (same summation order as each of them alone).
pub fn neighbourhood(grid: &Padded, lv: &Levels, angles: &[[i64; 3]], alpha: i64) -> Neighbourhood {
    let cols = angles.len() + 1;
    let offsets = grid.offsets(angles);
    let mut dep = vec![0.0f64; lv.len() * cols];
    let mut n = vec![0.0f64; lv.len()];
    let mut s = vec![0.0f64; lv.len()];
    // The levels themselves on the padded grid (0 outside the ROI), for the sums and level
    // differences: one load per neighbour.
    let levels: Vec<u32> = grid.levels.iter().map(|&c| grid.level(c)).collect();
    for (i, ci) in grid.voxels() {
        // Integer counts and sums (exact, as the float sums of integers were, but without a
        // chain of float additions).
        let li = levels[i];
        let mut dependent = 0usize;
        let mut count = 0u32;
        let mut sum = 0u64;
        for &off in &offsets {
            let lj = levels[i.wrapping_add_signed(off)];
            let inside = lj != 0;
            count += u32::from(inside);
            sum += u64::from(lj);
            dependent += usize::from(inside && (i64::from(li) - i64::from(lj)).abs() <= alpha);
        }
        let diff = if count == 0 {
            0.0
        } else {
            (f64::from(li) - sum as f64 / f64::from(count)).abs()
        };
        let c = ci as usize - 1;
        dep[c * cols + dependent] += 1.0;
        n[c] += 1.0;
        s[c] += diff;
    }
    Neighbourhood { dep, cols, n, s }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn angle_counts_as_pyradiomics() {
        assert_eq!(angles([5, 5, 5], &[1], false).len(), 13);
        assert_eq!(angles([5, 5, 5], &[1], true).len(), 26);
        assert_eq!(angles([5, 5, 1], &[1], false).len(), 4);
        assert_eq!(angles([5, 5, 5], &[1, 2], true).len(), 124);
    }
}
