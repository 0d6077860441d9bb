//! The procedural head: brain with cortex, sulci, white matter, deep grey nuclei, ventricles
//! and CSF spaces, and (for raw scanner-like images) skull and scalp.
//!
//! Coordinates are the *head frame*: RAS millimetres with the origin at the centre of the
//! brain. Sizes are those of an adult brain (about 128 × 160 × 114 mm, ≈ 1.2 L, cortex
//! 2.5–4 mm thick, sulci down to ~15 mm). Per case the brain's size and shape vary smoothly
//! (a random [`RadialShape`]-like perturbation of an ellipsoid plus value-noise folding), and the
//! ventricles grow with age (about 1 %/year of volume after 40, as in normal ageing).

use super::field::Lattice;
use super::rng::Rng;

/// Tissue classes of the anatomy (before the tumour is painted in).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum Tissue {
    /// Outside the head.
    Air = 0,
    /// Scalp and subcutaneous fat.
    Scalp = 1,
    /// Skull (cortical bone).
    Skull = 2,
    /// Cerebrospinal fluid (ventricles, sulci, subarachnoid space).
    Csf = 3,
    /// Grey matter (cortex and deep nuclei).
    Gm = 4,
    /// White matter.
    Wm = 5,
}

#[derive(Debug, Clone, Copy)]
struct Ellipsoid {
    c: [f64; 3],
    s: [f64; 3],
}

impl Ellipsoid {
    fn inside(&self, p: [f64; 3]) -> bool {
        let q = [0, 1, 2].map(|d| (p[d] - self.c[d]) / self.s[d]);
        q[0] * q[0] + q[1] * q[1] + q[2] * q[2] < 1.0
    }
}

/// The head box the fields cover (head frame, mm).
pub const BOX_LO: [f64; 3] = [-110.0, -130.0, -110.0];
/// Upper corner of the head box.
pub const BOX_HI: [f64; 3] = [110.0, 130.0, 110.0];

/// One case's head.
#[derive(Debug, Clone)]
pub struct Anatomy {
    semi: [f64; 3],
    shape: [f64; 6],
    gyri: Lattice,
    fold: Lattice,
    ventricles: Vec<Ellipsoid>,
    deep_gm: Vec<Ellipsoid>,
}

impl Anatomy {
    /// Draws a head; `age` enlarges the ventricles.
    pub fn draw(rng: &mut Rng, age: f64) -> Anatomy {
        let size = rng.range(0.93, 1.06);
        let semi = [
            64.0 * size * rng.range(0.97, 1.03),
            80.0 * size * rng.range(0.97, 1.03),
            57.0 * size * rng.range(0.97, 1.03),
        ];
        let mut shape = [0.0; 6];
        for s in shape.iter_mut() {
            *s = 0.025 * rng.normal();
        }
        let gyri = Lattice::new(rng, BOX_LO, BOX_HI, 7.0);
        let fold = Lattice::new(rng, BOX_LO, BOX_HI, 14.0);
        let v = (0.85 + 0.012 * (age - 40.0).max(0.0)) * rng.range(0.85, 1.15);
        let asym = rng.range(0.9, 1.1);
        let ventricles = vec![
            // Lateral ventricle bodies and frontal horns.
            Ellipsoid {
                c: [-9.0, 4.0, 14.0],
                s: [4.5 * v, 26.0, 7.0 * v],
            },
            Ellipsoid {
                c: [9.0, 4.0, 14.0],
                s: [4.5 * v * asym, 26.0, 7.0 * v * asym],
            },
            // Atria and occipital horns.
            Ellipsoid {
                c: [-16.0, -26.0, 10.0],
                s: [5.0 * v, 10.0, 8.0 * v],
            },
            Ellipsoid {
                c: [16.0, -26.0, 10.0],
                s: [5.0 * v * asym, 10.0, 8.0 * v * asym],
            },
            // Third ventricle.
            Ellipsoid {
                c: [0.0, -4.0, -2.0],
                s: [1.6 * v, 12.0, 8.0],
            },
        ];
        let deep_gm = vec![
            // Thalami.
            Ellipsoid {
                c: [-10.5, -10.0, 2.0],
                s: [7.5, 13.0, 8.0],
            },
            Ellipsoid {
                c: [10.5, -10.0, 2.0],
                s: [7.5, 13.0, 8.0],
            },
            // Lentiform nuclei.
            Ellipsoid {
                c: [-23.0, 6.0, 0.0],
                s: [5.5, 14.0, 9.0],
            },
            Ellipsoid {
                c: [23.0, 6.0, 0.0],
                s: [5.5, 14.0, 9.0],
            },
            // Caudate heads.
            Ellipsoid {
                c: [-13.0, 20.0, 10.0],
                s: [4.0, 8.0, 7.0],
            },
            Ellipsoid {
                c: [13.0, 20.0, 10.0],
                s: [4.0, 8.0, 7.0],
            },
        ];
        Anatomy {
            semi,
            shape,
            gyri,
            fold,
            ventricles,
            deep_gm,
        }
    }

    /// Brain semi-axes (mm).
    pub fn semi_axes(&self) -> [f64; 3] {
        self.semi
    }

    /// Depth below the brain surface in mm (negative outside), and whether the quick bound
    /// already says "far outside" (more than 20 mm).
    pub fn depth(&self, p: [f64; 3]) -> f64 {
        let q = [
            p[0] / self.semi[0],
            p[1] / self.semi[1],
            p[2] / self.semi[2],
        ];
        let r2 = q[0] * q[0] + q[1] * q[1] + q[2] * q[2];
        if r2 > 2.0 {
            return -100.0;
        }
        let r = r2.sqrt().max(1e-9);
        let u = [q[0] / r, q[1] / r, q[2] / r];
        let s = &self.shape;
        // Flattened base (temporal fossae, tentorium) and a slightly wider occiput.
        let base = if u[2] < -0.3 {
            0.12 * (u[2] + 0.3)
        } else {
            0.0
        };
        let delta = s[0] * u[0] * u[0]
            + s[1] * u[1]
            + s[2] * u[2]
            + s[3] * u[0] * u[1]
            + s[4] * u[1] * u[2]
            + s[5] * (u[1] * u[1] - u[2] * u[2])
            + base
            + 0.015 * self.fold.at(p);
        let radius = 1.0 + delta;
        let scale = ((u[0] * self.semi[0]).powi(2)
            + (u[1] * self.semi[1]).powi(2)
            + (u[2] * self.semi[2]).powi(2))
        .sqrt();
        (radius - r) * scale
    }

    /// Tissue at a head-frame point; `with_head` adds skull and scalp outside the brain
    /// (otherwise everything outside the brain is [`Tissue::Air`], as after skull stripping).
    pub fn tissue(&self, p: [f64; 3], with_head: bool) -> Tissue {
        let d = self.depth(p);
        if d < 0.0 {
            if !with_head {
                return Tissue::Air;
            }
            return if d > -2.5 {
                Tissue::Csf
            } else if d > -9.0 {
                Tissue::Skull
            } else if d > -15.0 {
                Tissue::Scalp
            } else {
                Tissue::Air
            };
        }
        let fold = self.fold.at(p);
        // Subarachnoid CSF over the convexity.
        if d < 1.2 + 0.8 * fold.abs() {
            return Tissue::Csf;
        }
        // Interhemispheric fissure above the corpus callosum and at the poles.
        if p[0].abs() < 1.3 && (p[2] > 22.0 || p[1].abs() > 50.0) {
            return Tissue::Csf;
        }
        // Sulci: thin CSF sheets along a level set of the gyral field, lined by cortex.
        let g = self.gyri.at(p);
        let sulcal_depth = 14.0 + 6.0 * fold;
        if d < sulcal_depth {
            if g.abs() < 0.035 {
                return Tissue::Csf;
            }
            if g.abs() < 0.12 {
                return Tissue::Gm;
            }
        }
        if d < 3.2 + 1.2 * fold {
            return Tissue::Gm;
        }
        if self.ventricles.iter().any(|e| e.inside(p)) {
            return Tissue::Csf;
        }
        if self.deep_gm.iter().any(|e| e.inside(p)) {
            return Tissue::Gm;
        }
        Tissue::Wm
    }
}
