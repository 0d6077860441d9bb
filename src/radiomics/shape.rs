//! 3-D shape features (PyRadiomics `shape.py` + `cshape.c`).
//!
//! The mesh is PyRadiomics' marching cubes on the binary mask padded by one voxel: vertices
//! sit halfway along cube edges, the triangle table is the classic one (Lorensen & Cline, as
//! tabulated by P. Bourke) restricted to the 128 cases whose last corner is outside, the other
//! 128 being their complements with the volume sign flipped. Volume is the signed sum of the
//! tetrahedra (triangle, origin), surface the sum of triangle areas, diameters the largest
//! vertex distances. Axis lengths come from the PCA of the ROI voxel centres.

use std::collections::{BTreeMap, HashMap};

use super::features::Shape;
use super::linalg::symmetric_eigenvalues;
use super::roi::Cropped;

/// Corners of a marching cube as (z, y, x) offsets, bit `k` of the cube index = corner `k`.
const CORNERS: [[usize; 3]; 8] = [
    [0, 0, 0],
    [0, 0, 1],
    [0, 1, 1],
    [0, 1, 0],
    [1, 0, 0],
    [1, 0, 1],
    [1, 1, 1],
    [1, 1, 0],
];

/// Edge midpoints (z, y, x), doubled so they are integers.
const EDGE_MID2: [[i64; 3]; 12] = [
    [0, 0, 1],
    [0, 1, 2],
    [0, 2, 1],
    [0, 1, 0],
    [2, 0, 1],
    [2, 1, 2],
    [2, 2, 1],
    [2, 1, 0],
    [1, 0, 0],
    [1, 0, 2],
    [1, 2, 2],
    [1, 2, 0],
];

/// Triangles per cube case (edge indices, three per triangle), cases 0..128.
#[rustfmt::skip]
const TRIANGLES: [&[u8]; 128] = [
    &[], &[0,8,3], &[1,9,0], &[1,8,3,1,9,8], &[1,2,10], &[0,8,3,1,2,10], &[9,2,10,0,2,9],
    &[2,8,3,2,10,8,10,9,8], &[11,2,3], &[11,2,0,0,8,11], &[1,9,0,11,2,3], &[11,2,1,1,9,11,9,8,11],
    &[3,10,1,11,10,3], &[10,1,0,0,8,10,8,11,10], &[9,0,3,3,11,9,11,10,9], &[9,8,10,11,10,8],
    &[4,7,8], &[0,4,3,4,7,3], &[1,9,0,4,7,8], &[1,9,4,1,4,7,1,7,3], &[1,2,10,4,7,8],
    &[3,4,7,3,0,4,1,2,10], &[9,2,10,9,0,2,4,7,8], &[2,10,9,2,9,7,2,7,3,4,7,9], &[4,7,8,11,2,3],
    &[11,4,7,11,2,4,2,0,4], &[1,9,0,4,7,8,11,2,3], &[4,7,11,9,4,11,11,2,9,1,9,2],
    &[3,10,1,11,10,3,4,7,8], &[11,10,1,1,4,11,1,0,4,4,7,11], &[4,7,8,9,0,3,3,11,9,11,10,9],
    &[4,7,11,4,11,9,9,11,10], &[9,5,4], &[9,5,4,0,8,3], &[0,5,4,0,1,5], &[8,5,4,8,3,5,3,1,5],
    &[1,2,10,9,5,4], &[0,8,3,1,2,10,9,5,4], &[2,10,5,5,4,2,2,4,0], &[2,10,5,3,2,5,3,5,4,8,3,4],
    &[9,5,4,11,2,3], &[11,2,0,0,8,11,9,5,4], &[0,5,4,0,1,5,11,2,3], &[2,1,5,2,5,8,11,2,8,5,4,8],
    &[3,10,1,11,10,3,9,5,4], &[5,4,9,10,1,0,0,8,10,8,11,10], &[5,4,0,5,0,11,10,5,11,11,0,3],
    &[5,4,8,10,5,8,11,10,8], &[7,8,9,5,7,9], &[3,0,9,5,3,9,3,5,7], &[7,8,0,0,1,7,7,1,5],
    &[1,5,7,1,7,3], &[7,8,9,5,7,9,1,2,10], &[1,2,10,3,0,9,3,9,5,3,5,7], &[0,2,8,8,2,5,8,5,7,2,10,5],
    &[2,10,5,2,5,3,3,5,7], &[5,7,9,7,8,9,11,2,3], &[5,7,9,9,7,2,2,0,9,11,2,7],
    &[11,2,3,0,1,8,1,7,8,1,5,7], &[2,1,11,1,7,11,1,5,7], &[7,8,9,5,7,9,3,10,1,11,10,3],
    &[5,7,0,5,0,9,7,11,0,10,1,0,11,10,0], &[11,10,0,0,3,11,10,5,0,0,7,8,5,7,0], &[11,10,5,5,7,11],
    &[6,5,10], &[0,8,3,6,5,10], &[1,9,0,6,5,10], &[1,8,3,1,9,8,6,5,10], &[1,6,5,1,2,6],
    &[1,6,5,1,2,6,0,8,3], &[9,6,5,9,0,6,0,2,6], &[5,9,8,5,8,2,5,2,6,8,3,2], &[11,2,3,6,5,10],
    &[11,2,0,0,8,11,6,5,10], &[1,9,0,11,2,3,6,5,10], &[11,2,1,1,9,11,9,8,11,6,5,10],
    &[6,3,11,6,5,3,5,1,3], &[0,8,11,0,11,5,0,5,1,5,11,6], &[6,3,11,0,3,6,0,6,5,0,5,9],
    &[6,5,9,6,9,11,11,9,8], &[4,7,8,6,5,10], &[0,4,3,4,7,3,6,5,10], &[1,9,0,4,7,8,6,5,10],
    &[1,9,4,1,4,7,1,7,3,6,5,10], &[4,7,8,1,6,5,1,2,6], &[0,4,3,4,7,3,1,6,5,1,2,6],
    &[4,7,8,9,6,5,9,0,6,0,2,6], &[7,3,9,4,7,9,3,2,9,5,9,6,2,6,9], &[11,2,3,4,7,8,6,5,10],
    &[11,4,7,11,2,4,2,0,4,6,5,10], &[1,9,0,11,2,3,4,7,8,6,5,10], &[4,7,11,9,4,11,11,2,9,1,9,2,6,5,10],
    &[4,7,8,6,3,11,6,5,3,5,1,3], &[5,1,11,5,11,6,1,0,11,4,7,11,0,4,11], &[4,7,8,6,3,11,0,3,6,0,6,5,0,5,9],
    &[6,5,9,6,9,11,4,7,9,7,11,9], &[10,4,9,6,4,10], &[10,4,9,6,4,10,0,8,3], &[0,1,10,10,6,0,6,4,0],
    &[1,8,3,1,6,8,8,6,4,6,1,10], &[1,4,9,1,2,4,2,6,4], &[1,4,9,1,2,4,2,6,4,0,8,3], &[0,2,4,4,2,6],
    &[8,3,2,8,2,4,4,2,6], &[11,2,3,10,4,9,6,4,10], &[11,2,0,0,8,11,10,4,9,6,4,10],
    &[11,2,3,0,1,10,10,6,0,6,4,0], &[6,4,1,6,1,10,1,4,8,11,2,1,1,8,11], &[9,6,4,3,6,9,1,3,9,11,6,3],
    &[1,8,11,0,8,1,11,6,1,1,4,9,6,4,1], &[6,3,11,0,3,6,6,4,0], &[8,6,4,6,8,11], &[6,7,10,7,8,10,8,9,10],
    &[6,7,10,0,10,7,0,9,10,0,7,3], &[6,7,10,1,10,7,1,7,8,0,1,8], &[6,7,10,1,10,7,1,7,3],
    &[1,2,6,1,6,8,1,8,9,6,7,8], &[2,6,9,1,2,9,6,7,9,3,0,9,7,3,9], &[0,7,8,7,0,6,6,0,2], &[2,7,3,2,6,7],
    &[11,2,3,6,7,10,7,8,10,8,9,10], &[2,0,7,11,2,7,0,9,7,6,7,10,9,10,7], &[6,7,10,1,10,7,1,7,8,0,1,8,11,2,3],
    &[11,2,1,1,7,11,10,6,1,1,6,7], &[8,9,6,6,7,8,1,6,9,11,6,3,1,3,6], &[0,9,1,6,7,11], &[0,7,8,7,0,6,0,3,11,11,6,0],
    &[6,7,11],
];

/// Surface area, mesh volume and the four maximal diameters (slice, column, row, 3-D).
#[derive(Debug, Clone, Copy)]
pub struct Mesh {
    /// Surface area in mm².
    pub area: f64,
    /// Mesh volume in mm³.
    pub volume: f64,
    /// Max 2-D diameters at equal z (slice), equal y (column), equal x (row), and 3-D.
    pub diameters: [f64; 4],
}

/// Marching cubes over the padded mask of `c` (see module docs).
pub fn mesh(c: &Cropped) -> Mesh {
    // Padded mask in numpy (z, y, x) order.
    let [nx, ny, nz] = c.dims;
    let (pz, py, px) = (nz + 2, ny + 2, nx + 2);
    let mut m = vec![false; pz * py * px];
    for z in 0..nz {
        for y in 0..ny {
            for x in 0..nx {
                m[((z + 1) * py + y + 1) * px + x + 1] = c.mask[(z * ny + y) * nx + x];
            }
        }
    }
    let sp = [c.spacing[2], c.spacing[1], c.spacing[0]]; // z, y, x
    let mut area = 0.0;
    let mut vol = 0.0;
    // Vertices on edges 6, 7, 11 (owned by this cube), doubled integer coordinates.
    let mut verts: Vec<[i64; 3]> = Vec::new();
    for iz in 0..pz - 1 {
        for iy in 0..py - 1 {
            for ix in 0..px - 1 {
                let mut idx: u8 = 0;
                for (k, o) in CORNERS.iter().enumerate() {
                    if m[((iz + o[0]) * py + iy + o[1]) * px + ix + o[2]] {
                        idx |= 1 << k;
                    }
                }
                let sign = if idx & 0x80 != 0 {
                    idx ^= 0xff;
                    -1.0
                } else {
                    1.0
                };
                for (corner, edge) in [(6usize, 6usize), (4, 7), (3, 11)] {
                    if idx & (1 << corner) != 0 {
                        let e = EDGE_MID2[edge];
                        verts.push([
                            2 * iz as i64 + e[0],
                            2 * iy as i64 + e[1],
                            2 * ix as i64 + e[2],
                        ]);
                    }
                }
                if idx == 0 {
                    continue;
                }
                let base = [iz as f64, iy as f64, ix as f64];
                for t in TRIANGLES[idx as usize].chunks_exact(3) {
                    let pt = |e: u8| {
                        let h = EDGE_MID2[e as usize];
                        [
                            (base[0] + h[0] as f64 * 0.5) * sp[0],
                            (base[1] + h[1] as f64 * 0.5) * sp[1],
                            (base[2] + h[2] as f64 * 0.5) * sp[2],
                        ]
                    };
                    let (a, b, cc) = (pt(t[0]), pt(t[1]), pt(t[2]));
                    let ab = cross(a, b);
                    vol += sign * (ab[0] * cc[0] + ab[1] * cc[1] + ab[2] * cc[2]);
                    let u = [a[0] - cc[0], a[1] - cc[1], a[2] - cc[2]];
                    let v = [b[0] - cc[0], b[1] - cc[1], b[2] - cc[2]];
                    let n = cross(u, v);
                    area += 0.5 * (n[0] * n[0] + n[1] * n[1] + n[2] * n[2]).sqrt();
                }
            }
        }
    }
    Mesh {
        area,
        volume: vol / 6.0,
        diameters: diameters(&verts, sp),
    }
}

fn cross(a: [f64; 3], b: [f64; 3]) -> [f64; 3] {
    [
        a[1] * b[2] - b[1] * a[2],
        a[2] * b[0] - b[2] * a[0],
        a[0] * b[1] - b[0] * a[1],
    ]
}

/// Points that are the first or last along every axis-parallel line through them (in the
/// given axes): only these can be vertices of the convex hull, hence ends of a diameter.
fn line_extremes(points: &[[i64; 3]], axes: &[usize]) -> Vec<[i64; 3]> {
    if points.is_empty() {
        return Vec::new();
    }
    let mut keep = vec![true; points.len()];
    let (lo, hi) = bounds(points);
    // Lowest and highest coordinate along `a` of every line, in a dense table over the
    // bounding rectangle of the two other coordinates.
    let mut ext: Vec<(i64, i64)> = Vec::new();
    for &a in axes {
        let (b, c) = match a {
            0 => (1, 2),
            1 => (0, 2),
            _ => (0, 1),
        };
        let w = (hi[c] - lo[c] + 1) as usize;
        let line = |p: &[i64; 3]| (p[b] - lo[b]) as usize * w + (p[c] - lo[c]) as usize;
        ext.clear();
        ext.resize((hi[b] - lo[b] + 1) as usize * w, (i64::MAX, i64::MIN));
        for p in points {
            let e = &mut ext[line(p)];
            e.0 = e.0.min(p[a]);
            e.1 = e.1.max(p[a]);
        }
        for (k, p) in points.iter().enumerate() {
            let (l, h) = ext[line(p)];
            if p[a] != l && p[a] != h {
                keep[k] = false;
            }
        }
    }
    let mut out: Vec<[i64; 3]> = points
        .iter()
        .zip(&keep)
        .filter_map(|(p, &k)| k.then_some(*p))
        .collect();
    out.sort_unstable();
    out.dedup();
    out
}

/// Lowest and highest coordinate of the points along each axis.
fn bounds(points: &[[i64; 3]]) -> ([i64; 3], [i64; 3]) {
    let mut lo = [i64::MAX; 3];
    let mut hi = [i64::MIN; 3];
    for p in points {
        for a in 0..3 {
            lo[a] = lo[a].min(p[a]);
            hi[a] = hi[a].max(p[a]);
        }
    }
    (lo, hi)
}

fn d2(p: &[i64; 3], q: &[i64; 3], sp: [f64; 3]) -> f64 {
    let mut s = 0.0;
    for a in 0..3 {
        let d = (p[a] - q[a]) as f64 * 0.5 * sp[a];
        s += d * d;
    }
    s
}

/// Points of one grid cell with their bounding box (low, high corners).
type Cell = (Vec<[i64; 3]>, [i64; 3], [i64; 3]);

/// Largest squared distance between two points, by branch and bound over a coarse grid of
/// cells: cell pairs are visited by decreasing upper bound (largest distance between their
/// boxes) and the scan stops once no remaining pair can beat the best distance found. The
/// bound uses the same arithmetic as the distances, so the result equals the full O(n²) scan.
fn max_pair_distance(pts: &[[i64; 3]], sp: [f64; 3]) -> f64 {
    let brute = |a: &[[i64; 3]], b: &[[i64; 3]], best: &mut f64| {
        for p in a {
            for q in b {
                *best = best.max(d2(p, q, sp));
            }
        }
    };
    let mut best = 0.0f64;
    if pts.len() < 64 {
        brute(pts, pts, &mut best);
        return best;
    }
    let (lo, hi) = bounds(pts);
    const G: i64 = 8;
    let step = [0, 1, 2].map(|a| ((hi[a] - lo[a]) / G + 1).max(1));
    let mut cells: BTreeMap<[i64; 3], Vec<[i64; 3]>> = BTreeMap::new();
    for p in pts {
        let key = [0, 1, 2].map(|a| (p[a] - lo[a]) / step[a]);
        cells.entry(key).or_default().push(*p);
    }
    let cells: Vec<Cell> = cells
        .into_values()
        .map(|v| {
            let (l, h) = bounds(&v);
            (v, l, h)
        })
        .collect();
    let mut pairs: Vec<(f64, usize, usize)> = Vec::new();
    for i in 0..cells.len() {
        for j in i..cells.len() {
            let (_, li, hi_) = &cells[i];
            let (_, lj, hj) = &cells[j];
            let far_i = [0, 1, 2].map(|a| {
                if (hj[a] - li[a]).abs() >= (hi_[a] - lj[a]).abs() {
                    li[a]
                } else {
                    hi_[a]
                }
            });
            let far_j = [0, 1, 2].map(|a| {
                if (hj[a] - li[a]).abs() >= (hi_[a] - lj[a]).abs() {
                    hj[a]
                } else {
                    lj[a]
                }
            });
            pairs.push((d2(&far_i, &far_j, sp), i, j));
        }
    }
    pairs.sort_by(|a, b| b.0.total_cmp(&a.0).then((a.1, a.2).cmp(&(b.1, b.2))));
    for (bound, i, j) in pairs {
        if bound <= best {
            break;
        }
        brute(&cells[i].0, &cells[j].0, &mut best);
    }
    best
}

fn diameters(verts: &[[i64; 3]], sp: [f64; 3]) -> [f64; 4] {
    let mut out = [0.0f64; 4];
    // 3-D: candidates are extremes along all three axes.
    let cand = line_extremes(verts, &[0, 1, 2]);
    out[3] = max_pair_distance(&cand, sp);
    // 2-D: in each plane of constant coordinate `a`, extremes along the two in-plane axes.
    for a in 0..3 {
        let others: Vec<usize> = (0..3).filter(|&b| b != a).collect();
        let cand = line_extremes(verts, &others);
        let mut planes: HashMap<i64, Vec<[i64; 3]>> = HashMap::new();
        for p in cand {
            planes.entry(p[a]).or_default().push(p);
        }
        let mut best = 0.0f64;
        for pts in planes.values() {
            best = best.max(max_pair_distance(pts, sp));
        }
        out[a] = best;
    }
    out.map(f64::sqrt)
}

/// Computes the requested shape features.
pub fn compute(c: &Cropped, which: &[Shape]) -> Vec<(Shape, Result<f64, String>)> {
    let mesh = mesh(c);
    // PCA of voxel centres (physical, numpy z, y, x order as PyRadiomics).
    let sp = [c.spacing[2], c.spacing[1], c.spacing[0]];
    let [nx, ny, nz] = c.dims;
    let mut pts: Vec<[f64; 3]> = Vec::with_capacity(c.count);
    for z in 0..nz {
        for y in 0..ny {
            for x in 0..nx {
                if c.mask[(z * ny + y) * nx + x] {
                    pts.push([z as f64 * sp[0], y as f64 * sp[1], x as f64 * sp[2]]);
                }
            }
        }
    }
    let np = pts.len() as f64;
    let mut mean = [0.0; 3];
    for a in 0..3 {
        mean[a] =
            super::firstorder::pairwise_sum(&pts.iter().map(|p| p[a]).collect::<Vec<_>>()) / np;
    }
    let sq = np.sqrt();
    let centred: Vec<[f64; 3]> = pts
        .iter()
        .map(|p| {
            [
                (p[0] - mean[0]) / sq,
                (p[1] - mean[1]) / sq,
                (p[2] - mean[2]) / sq,
            ]
        })
        .collect();
    let mut cov = [0.0f64; 9];
    for a in 0..3 {
        for b in a..3 {
            let s = super::firstorder::pairwise_sum(
                &centred.iter().map(|p| p[a] * p[b]).collect::<Vec<_>>(),
            );
            cov[a * 3 + b] = s;
            cov[b * 3 + a] = s;
        }
    }
    let mut ev = symmetric_eigenvalues(&cov, 3);
    for e in ev.iter_mut() {
        if *e < 0.0 && *e > -1e-10 {
            *e = 0.0;
        }
    }
    let voxel_volume = np * c.spacing.iter().product::<f64>();
    let axis = |e: f64| -> Result<f64, String> {
        if e < 0.0 {
            Err("negative covariance eigenvalue".into())
        } else {
            Ok(4.0 * e.sqrt())
        }
    };
    which
        .iter()
        .map(|&f| {
            let v = match f {
                Shape::MeshVolume => Ok(mesh.volume),
                Shape::VoxelVolume => Ok(voxel_volume),
                Shape::SurfaceArea => Ok(mesh.area),
                Shape::SurfaceVolumeRatio => Ok(mesh.area / mesh.volume),
                Shape::Sphericity => Ok((36.0 * std::f64::consts::PI * mesh.volume * mesh.volume)
                    .powf(1.0 / 3.0)
                    / mesh.area),
                Shape::Maximum3DDiameter => Ok(mesh.diameters[3]),
                Shape::Maximum2DDiameterSlice => Ok(mesh.diameters[0]),
                Shape::Maximum2DDiameterColumn => Ok(mesh.diameters[1]),
                Shape::Maximum2DDiameterRow => Ok(mesh.diameters[2]),
                Shape::MajorAxisLength => axis(ev[2]),
                Shape::MinorAxisLength => axis(ev[1]),
                Shape::LeastAxisLength => axis(ev[0]),
                Shape::Elongation => ratio(ev[1], ev[2]),
                Shape::Flatness => ratio(ev[0], ev[2]),
            };
            (f, v)
        })
        .collect()
}

fn ratio(a: f64, b: f64) -> Result<f64, String> {
    if a < 0.0 || b <= 0.0 {
        Err("degenerate ROI: covariance eigenvalue not positive".into())
    } else {
        Ok((a / b).sqrt())
    }
}
