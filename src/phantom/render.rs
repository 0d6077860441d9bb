//! Rendering a case onto voxel grids: geometry of the two grid kinds, partial-volume sampling,
//! bias field, Rician noise and skull stripping.
//!
//! * `brats`: the BraTS / SRI24 grid (240 × 240 × 155, 1 mm, LPS, affine
//!   `diag(−1, −1, 1)` with origin `(0, 239, 0)`), all sequences and the mask on it, the head
//!   atlas-aligned. Images are skull-stripped (zero outside the brain) and only mildly
//!   bias-corrupted, as after BraTS preprocessing. Partial volume: a 3-tap blur
//!   (¼ ½ ¼ … in fact 0.2 / 0.6 / 0.2) along each axis before the noise.
//! * `raw`: scanner geometry like the TCGA case — axial 0.9 × 0.9 × 5.5 mm slices, LAS, each
//!   series tilted by its own oblique angle; T1 and T1c share one grid (same planning), T2,
//!   FLAIR, ADC (1.8 mm) and CBF (3.75 × 3.75 × 6 mm) each have their own; the head is at a
//!   random pose with skull and scalp and a stronger bias field; the mask is on the T1c grid.
//!   Partial volume: each voxel averages sub-samples across its thickness (and in-plane for the
//!   coarse maps).
//!
//! Noise: magnitude images get Rician noise `|S + σ(n₁ + i n₂)|`, ADC/CBF additive Gaussian
//! noise clipped at zero, drawn per slice from the case's noise streams ([`super::rng`]).

use rayon::prelude::*;

use super::anatomy::{Anatomy, Tissue};
use super::field::Lattice;
use super::rng::{Purpose, Rng};
use super::signal::{compartment_mr, signals, tissue_mr, WEIGHTED};
use super::tumour::{Compartment, Tumour};
use crate::volume::geometry::invert3;
use crate::volume::{Affine, Grid, Volume};

/// Which grids the images are written on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum GridKind {
    /// BraTS-like: one 240 × 240 × 155 1 mm LPS grid, skull-stripped.
    Brats,
    /// Scanner-like: anisotropic oblique grids, one per series.
    Raw,
}

impl GridKind {
    /// Name as on the command line.
    pub fn name(self) -> &'static str {
        match self {
            GridKind::Brats => "brats",
            GridKind::Raw => "raw",
        }
    }
}

/// Scanner-side parameters of a case.
#[derive(Debug, Clone)]
pub struct Scanner {
    /// Gain per sequence (weighted ones; 1 for the maps).
    pub gains: [f64; 6],
    /// Noise standard deviation per sequence, in output units.
    pub sigma: [f64; 6],
    bias: Lattice,
    bias_amp: f64,
    bias_grad: [f64; 3],
    /// Head pose: world = rotation · head + translation.
    pose: Affine,
    /// Oblique tilt (pitch, roll) in degrees of the raw series groups.
    tilts: [[f64; 2]; 5],
}

/// Mean white-matter intensity each weighted sequence is scaled to (before the case gain).
const WM_LEVEL: [f64; WEIGHTED] = [800.0, 820.0, 420.0, 480.0];

impl Scanner {
    /// Draws the scanner parameters.
    pub fn draw(rng: &mut Rng, grid: GridKind) -> Scanner {
        let wm = signals(&tissue_mr(Tissue::Wm));
        let mut gains = [1.0; 6];
        for s in 0..WEIGHTED {
            gains[s] = WM_LEVEL[s] / wm[s] * rng.range(0.8, 1.25);
        }
        let noise = rng.range(0.02, 0.045);
        let mut sigma = [0.0; 6];
        for s in 0..WEIGHTED {
            sigma[s] = noise * wm[s] * gains[s];
        }
        sigma[4] = rng.range(35.0, 70.0);
        sigma[5] = rng.range(3.0, 7.0);
        let bias = Lattice::new(rng, super::anatomy::BOX_LO, super::anatomy::BOX_HI, 60.0);
        let (bias_amp, grad) = match grid {
            GridKind::Brats => (0.06, 0.02),
            GridKind::Raw => (0.25, 0.08),
        };
        let bias_grad = [0, 1, 2].map(|_| grad * rng.normal());
        let pose = match grid {
            GridKind::Brats => {
                // Atlas-aligned: the brain centre near voxel (119.5, 121, 75), ±2 mm.
                let c = [
                    -119.5 + rng.range(-2.0, 2.0),
                    239.0 - 121.0 + rng.range(-2.0, 2.0),
                    75.0 + rng.range(-2.0, 2.0),
                ];
                Affine::from_parts([[1.0, 0.0, 0.0], [0.0, 1.0, 0.0], [0.0, 0.0, 1.0]], c)
            }
            GridKind::Raw => {
                let yaw = rng.range(-6.0, 6.0);
                let pitch = rng.range(-8.0, 8.0);
                let roll = rng.range(-4.0, 4.0);
                let r = rotation(pitch, roll, yaw);
                let t = [
                    rng.range(-8.0, 8.0),
                    rng.range(-25.0, 5.0),
                    rng.range(0.0, 30.0),
                ];
                Affine::from_parts(r, t)
            }
        };
        let mut tilts = [[0.0; 2]; 5];
        for t in tilts.iter_mut() {
            *t = [rng.range(6.0, 20.0), rng.range(-4.0, 4.0)];
        }
        Scanner {
            gains,
            sigma,
            bias,
            bias_amp,
            bias_grad,
            pose,
            tilts,
        }
    }
}

/// Rotation about x (pitch), y (roll) and z (yaw), degrees: `Rz · Ry · Rx`.
fn rotation(pitch: f64, roll: f64, yaw: f64) -> [[f64; 3]; 3] {
    let r = |deg: f64| deg * std::f64::consts::PI / 180.0;
    let (sx, cx) = (libm::sin(r(pitch)), libm::cos(r(pitch)));
    let (sy, cy) = (libm::sin(r(roll)), libm::cos(r(roll)));
    let (sz, cz) = (libm::sin(r(yaw)), libm::cos(r(yaw)));
    let rx = [[1.0, 0.0, 0.0], [0.0, cx, -sx], [0.0, sx, cx]];
    let ry = [[cy, 0.0, sy], [0.0, 1.0, 0.0], [-sy, 0.0, cy]];
    let rz = [[cz, -sz, 0.0], [sz, cz, 0.0], [0.0, 0.0, 1.0]];
    matmul(&rz, &matmul(&ry, &rx))
}

fn matmul(a: &[[f64; 3]; 3], b: &[[f64; 3]; 3]) -> [[f64; 3]; 3] {
    let mut m = [[0.0; 3]; 3];
    for r in 0..3 {
        for c in 0..3 {
            m[r][c] = (0..3).map(|k| a[r][k] * b[k][c]).sum();
        }
    }
    m
}

/// A case ready to be sampled.
#[derive(Debug, Clone)]
pub struct Subject {
    /// Anatomy.
    pub anatomy: Anatomy,
    /// Lesion.
    pub tumour: Tumour,
    /// Scanner.
    pub scanner: Scanner,
    /// Skull and scalp present (raw) or skull-stripped (brats).
    pub grid: GridKind,
    table: [[f64; 6]; 6],
}

/// One series group: which sequences share a grid, the grid, and the sub-sampling.
#[derive(Debug, Clone)]
pub struct Series {
    /// Indices into [`SEQUENCES`].
    pub sequences: Vec<usize>,
    /// The grid.
    pub grid: Grid,
    /// Sub-samples per voxel along i, j, k.
    pub sub: [usize; 3],
}

/// The rendered images and the mask of a case.
#[derive(Debug)]
pub struct Rendered {
    /// One volume per sequence, in [`SEQUENCES`] order.
    pub images: Vec<Volume>,
    /// BraTS label map on the reference (T1c) grid.
    pub mask: Volume,
}

impl Subject {
    /// Assembles a subject.
    pub fn new(anatomy: Anatomy, tumour: Tumour, scanner: Scanner, grid: GridKind) -> Subject {
        let all = [
            Tissue::Air,
            Tissue::Scalp,
            Tissue::Skull,
            Tissue::Csf,
            Tissue::Gm,
            Tissue::Wm,
        ];
        let mut table = [[0.0; 6]; 6];
        for t in all {
            table[t as usize] = signals(&tissue_mr(t));
        }
        Subject {
            anatomy,
            tumour,
            scanner,
            grid,
            table,
        }
    }

    /// Signals (gain and bias applied), BraTS label and whether the point counts as brain
    /// (for skull stripping) at a head-frame point.
    pub fn eval(&self, p: [f64; 3]) -> ([f64; 6], u8, bool) {
        let tissue = self.anatomy.tissue(p, self.grid == GridKind::Raw);
        if tissue == Tissue::Air {
            return ([0.0; 6], 0, false);
        }
        let (comp, h, m) = self.tumour.at(p, tissue);
        let mut s = if comp == Compartment::None {
            self.table[tissue as usize]
        } else {
            signals(&compartment_mr(comp, tissue, &self.tumour, h, m))
        };
        let sc = &self.scanner;
        let bias = 1.0
            + sc.bias_amp * 3.0 * sc.bias.at(p)
            + (sc.bias_grad[0] * p[0] + sc.bias_grad[1] * p[1] + sc.bias_grad[2] * p[2]) / 100.0;
        for v in s.iter_mut().take(WEIGHTED).enumerate() {
            *v.1 *= sc.gains[v.0] * bias.max(0.2);
        }
        let brain = self.anatomy.depth(p) >= 0.0;
        (s, comp.label(), brain)
    }

    /// The series groups of this case's grid kind; the first group holds the reference (T1c).
    pub fn series(&self) -> Vec<Series> {
        match self.grid {
            GridKind::Brats => vec![Series {
                sequences: (0..6).collect(),
                grid: brats_grid(),
                sub: [1, 1, 1],
            }],
            GridKind::Raw => {
                let centre = self.scanner.pose.apply([0.0, 0.0, 4.0]);
                let sc = &self.scanner;
                let g = |dims: [usize; 3], zooms: [f64; 3], tilt: [f64; 2], shift: f64| {
                    let r = rotation(tilt[0], tilt[1], 0.0);
                    // LAS: i toward the patient's left (−x), j anterior, k superior.
                    let axes = [
                        [-zooms[0], 0.0, 0.0],
                        [0.0, zooms[1], 0.0],
                        [0.0, 0.0, zooms[2]],
                    ];
                    let mut lin = [[0.0; 3]; 3];
                    for c in 0..3 {
                        for rr in 0..3 {
                            lin[rr][c] = (0..3).map(|k| r[rr][k] * axes[c][k]).sum();
                        }
                    }
                    let half = dims.map(|n| (n as f64 - 1.0) / 2.0);
                    let mut t = [0.0; 3];
                    for rr in 0..3 {
                        t[rr] = centre[rr] + shift * (rr as f64 - 1.0)
                            - (0..3).map(|c| lin[rr][c] * half[c]).sum::<f64>();
                    }
                    Grid {
                        dims,
                        affine: Affine::from_parts(lin, t),
                    }
                };
                let ip = 0.8984375;
                vec![
                    Series {
                        sequences: vec![1, 0],
                        grid: g([256, 224, 26], [ip, ip, 5.5], sc.tilts[0], 0.0),
                        sub: [1, 1, 3],
                    },
                    Series {
                        sequences: vec![2],
                        grid: g([224, 256, 26], [ip, ip, 5.5], sc.tilts[1], 1.5),
                        sub: [1, 1, 3],
                    },
                    Series {
                        sequences: vec![3],
                        grid: g([208, 256, 26], [ip, ip, 5.5], sc.tilts[2], -1.0),
                        sub: [1, 1, 3],
                    },
                    Series {
                        sequences: vec![4],
                        grid: g([128, 128, 26], [1.796875, 1.796875, 5.5], sc.tilts[3], 2.0),
                        sub: [2, 2, 3],
                    },
                    Series {
                        sequences: vec![5],
                        grid: g([64, 64, 24], [3.75, 3.75, 6.0], sc.tilts[4], -2.0),
                        sub: [3, 3, 3],
                    },
                ]
            }
        }
    }

    /// Renders every sequence and the mask; noise comes from the streams of case `case` of the
    /// cohort with seed `seed`.
    pub fn render(&self, seed: u64, case: u64) -> Rendered {
        let series = self.series();
        let mut images: Vec<Option<Volume>> = vec![None; 6];
        let mut mask = None;
        for (n, s) in series.iter().enumerate() {
            let (vols, labels) = self.render_series(s, seed, case, n == 0);
            for (seq, v) in s.sequences.iter().zip(vols) {
                images[*seq] = Some(v);
            }
            if let Some(l) = labels {
                mask = Some(l);
            }
        }
        let images = images
            .into_iter()
            .map(|v| v.unwrap_or_else(|| Volume::filled(series[0].grid, 0.0)))
            .collect();
        let mask = mask.unwrap_or_else(|| Volume::filled(series[0].grid, 0.0));
        Rendered { images, mask }
    }

    fn render_series(
        &self,
        s: &Series,
        seed: u64,
        case: u64,
        with_labels: bool,
    ) -> (Vec<Volume>, Option<Volume>) {
        let [nx, ny, nz] = s.grid.dims;
        let plane = nx * ny;
        let m = s.sequences.len();
        let head_from_world = head_from_world(&self.scanner.pose);
        let vox_to_head = head_from_world.compose(&s.grid.affine);
        let offsets = |n: usize| -> Vec<f64> {
            (0..n)
                .map(|q| (q as f64 + 0.5) / n as f64 - 0.5)
                .collect::<Vec<_>>()
        };
        let (oi, oj, ok) = (offsets(s.sub[0]), offsets(s.sub[1]), offsets(s.sub[2]));
        let nsub = (oi.len() * oj.len() * ok.len()) as f64;
        let centre_sub = (s.sub[0] / 2, s.sub[1] / 2, s.sub[2] / 2);
        struct SliceOut {
            sig: Vec<f32>,
            labels: Vec<u8>,
            brain: Vec<bool>,
        }
        let slices: Vec<SliceOut> = (0..nz)
            .into_par_iter()
            .map(|k| {
                let mut out = SliceOut {
                    sig: vec![0.0; plane * m],
                    labels: vec![0; plane],
                    brain: vec![false; plane],
                };
                for j in 0..ny {
                    for i in 0..nx {
                        let mut acc = [0.0f64; 6];
                        let mut label = 0u8;
                        let mut brain = false;
                        for (a, di) in oi.iter().enumerate() {
                            for (b, dj) in oj.iter().enumerate() {
                                for (c, dk) in ok.iter().enumerate() {
                                    let p = vox_to_head.apply([
                                        i as f64 + di,
                                        j as f64 + dj,
                                        k as f64 + dk,
                                    ]);
                                    let (sig, l, br) = self.eval(p);
                                    for q in 0..6 {
                                        acc[q] += sig[q];
                                    }
                                    if (a, b, c) == centre_sub {
                                        label = l;
                                        brain = br;
                                    }
                                }
                            }
                        }
                        let v = i + nx * j;
                        for (q, seq) in s.sequences.iter().enumerate() {
                            out.sig[q * plane + v] = (acc[*seq] / nsub) as f32;
                        }
                        out.labels[v] = label;
                        out.brain[v] = brain;
                    }
                }
                out
            })
            .collect();
        let brain: Vec<bool> = slices
            .iter()
            .flat_map(|s| s.brain.iter().copied())
            .collect();
        let labels = with_labels.then(|| {
            let data: Vec<f32> = slices
                .iter()
                .flat_map(|s| s.labels.iter().map(|&l| f32::from(l)))
                .collect();
            Volume::new(s.grid, data).unwrap_or_else(|_| Volume::filled(s.grid, 0.0))
        });
        let strip = self.grid == GridKind::Brats;
        let vols: Vec<Volume> = (0..m)
            .into_par_iter()
            .map(|q| {
                let seq = s.sequences[q];
                let mut data: Vec<f32> = slices
                    .iter()
                    .flat_map(|sl| sl.sig[q * plane..(q + 1) * plane].iter().copied())
                    .collect();
                if strip {
                    blur3(&mut data, s.grid.dims);
                }
                let rng = Rng::for_case(seed, case, Purpose::Noise(seq));
                let sigma = self.scanner.sigma[seq];
                data.par_chunks_mut(plane).enumerate().for_each(|(k, sl)| {
                    let mut r = rng.at_slice(k);
                    let br = &brain[k * plane..(k + 1) * plane];
                    for (v, x) in sl.iter_mut().enumerate() {
                        if strip && !br[v] {
                            *x = 0.0;
                            continue;
                        }
                        let clean = f64::from(*x);
                        let noisy = if seq < WEIGHTED {
                            let (n1, n2) = r.normal_pair();
                            ((clean + sigma * n1).powi(2) + (sigma * n2).powi(2)).sqrt()
                        } else if clean > 0.0 {
                            (clean + sigma * r.normal()).max(0.0)
                        } else {
                            0.0
                        };
                        *x = noisy.clamp(0.0, 32767.0) as f32;
                    }
                });
                Volume::new(s.grid, data).unwrap_or_else(|_| Volume::filled(s.grid, 0.0))
            })
            .collect();
        (vols, labels)
    }
}

fn head_from_world(pose: &Affine) -> Affine {
    let r = pose.linear();
    let rt = invert3(&r).unwrap_or([[1.0, 0.0, 0.0], [0.0, 1.0, 0.0], [0.0, 0.0, 1.0]]);
    let t = pose.translation();
    let mut ti = [0.0; 3];
    for a in 0..3 {
        ti[a] = -(0..3).map(|b| rt[a][b] * t[b]).sum::<f64>();
    }
    Affine::from_parts(rt, ti)
}

/// The BraTS (SRI24) grid.
pub fn brats_grid() -> Grid {
    Grid {
        dims: [240, 240, 155],
        affine: Affine::from_parts(
            [[-1.0, 0.0, 0.0], [0.0, -1.0, 0.0], [0.0, 0.0, 1.0]],
            [0.0, 239.0, 0.0],
        ),
    }
}

/// Separable 0.2 / 0.6 / 0.2 blur (partial volume), edges replicated; fixed order.
fn blur3(data: &mut [f32], dims: [usize; 3]) {
    let [nx, ny, _] = dims;
    let stride = [1, nx, nx * ny];
    for axis in 0..3 {
        let n = dims[axis];
        if n < 3 {
            continue;
        }
        let st = stride[axis];
        let src = data.to_vec();
        let plane = nx * ny;
        data.par_chunks_mut(plane).enumerate().for_each(|(k, sl)| {
            for j in 0..ny {
                for i in 0..nx {
                    let idx = [i, j, k];
                    let pos = idx[axis];
                    let g = i + nx * j + plane * k;
                    let lo = if pos == 0 { g } else { g - st };
                    let hi = if pos + 1 == n { g } else { g + st };
                    sl[i + nx * j] = 0.2 * src[lo] + 0.6 * src[g] + 0.2 * src[hi];
                }
            }
        });
    }
}
