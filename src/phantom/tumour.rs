//! The lesion: BraTS-style compartments (1 necrosis / non-enhancing core, 2 oedema,
//! 3 enhancing) whose size, shape, place and MR parameters follow the case's latent labels.
//!
//! Each case carries continuous *latent scores* ([`Latent`]): for a label `y ∈ {0, 1}` with
//! effect size `d`, the score is `d · (y − ½) + N(0, 1)`. Every imaging correlate below is a
//! smooth function of the scores, so no single image property gives the label away and the
//! best achievable AUC from the images is about `Φ(d / √2)` (before label noise): with the
//! default `d` of 1.8 that is 0.90. The claims each parameter encodes:
//!
//! | parameter | IDH-mutant (score `a` > 0) vs IDH-wildtype | source of the claim |
//! |---|---|---|
//! | location | frontal lobe favoured for IDH-mutant (~50–60 % vs ~25 %); wildtype also deep / temporal | Lai et al., J Clin Oncol 2011; Carrillo et al., AJNR 2012 |
//! | ring enhancement + central necrosis | typical of IDH-wildtype glioblastoma, rare in IDH-mutant | Carrillo 2012; Lasocki & Gaillard, 2016 review |
//! | little or no (patchy) enhancement, homogeneous | IDH-mutant lower-grade glioma | Patel et al., Clin Cancer Res 2017 |
//! | T2-FLAIR mismatch: core bright on T2, relatively dark on FLAIR with a bright rim | IDH-mutant, 1p/19q-intact astrocytoma (specific, ~100 % PPV) | Patel 2017; Broen et al., Neuro-Oncol 2018 |
//! | ADC of solid tumour higher in IDH-mutant (≈ 1.2–1.5 vs 0.8–1.1 ×10⁻³ mm²/s) | lower cellularity | Xing et al., Eur J Radiol 2017; Thust et al., Eur Radiol 2018 (meta-analysis) |
//! | rCBF/CBF lower in IDH-mutant | less neo-angiogenesis | Kickingereder et al., Radiology 2015; Brendle et al., 2018 (ASL) |
//! | larger peritumoural oedema in wildtype | vasogenic oedema of GBM | Carrillo 2012 |
//!
//! | parameter | Ki-67 high (score `b` > 0) | source |
//! |---|---|---|
//! | stronger, larger enhancement; more heterogeneity | proliferation ~ BBB breakdown and necrosis | Li et al., Front Oncol 2021 (MRI radiomics of Ki-67) |
//! | lower ADC | ADC inversely correlated with Ki-67 (r ≈ −0.4 … −0.6) | Surov et al., meta-analysis, 2017 |
//! | higher CBF | perfusion correlates with proliferation | Fudaba et al., 2014 |
//!
//! | parameter | true progression (score `c` > 0) vs pseudoprogression | source |
//! |---|---|---|
//! | nodular, solid enhancement (and satellite nodules) vs diffuse "soap-bubble"/"Swiss-cheese" enhancement | Mullins et al., AJNR 2005; Young et al., Neurology 2011 |
//! | high vs low rCBV/CBF | Patel et al., AJNR 2017 (meta-analysis); Choi et al., 2013 (ASL) |
//! | low vs high ADC | Hein et al., AJNR 2004; Lee et al., 2012 |
//! | later vs earlier after radiotherapy (PsP mostly within 12 weeks) | Brandes et al., J Clin Oncol 2008; Wen et al., RANO 2010 |
//! | MGMT methylation more frequent in pseudoprogression | Brandes 2008 |
//!
//! Compartments only replace brain tissue; oedema spreads through white matter and spares
//! the cortex except close to the core (vasogenic oedema follows the fibre tracts).

use super::anatomy::{Anatomy, Tissue, BOX_HI, BOX_LO};
use super::field::{Lattice, RadialShape};
use super::rng::{sigmoid, Rng};

/// Latent scores of one case (see the module docs).
#[derive(Debug, Clone, Copy)]
pub struct Latent {
    /// IDH score: positive = mutant-like.
    pub idh: f64,
    /// Ki-67 score: positive = high-proliferation-like.
    pub ki67: f64,
    /// Progression score: positive = true-progression-like (post-treatment cases).
    pub tp: f64,
}

/// A tumour compartment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Compartment {
    /// Not tumour.
    None,
    /// Necrosis (label 1).
    Necrosis,
    /// Non-enhancing tumour or treatment change (label 1).
    NonEnhancing,
    /// Oedema / infiltrated tissue (label 2).
    Oedema,
    /// Enhancing tumour (label 3).
    Enhancing,
    /// Resection cavity (fluid; label 0).
    Cavity,
}

impl Compartment {
    /// BraTS label.
    pub fn label(self) -> u8 {
        match self {
            Compartment::None | Compartment::Cavity => 0,
            Compartment::Necrosis | Compartment::NonEnhancing => 1,
            Compartment::Oedema => 2,
            Compartment::Enhancing => 3,
        }
    }
}

/// Enhancement pattern.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Pattern {
    /// Ring around central necrosis.
    Ring {
        /// Necrosis radius as a fraction of the core radius.
        necrosis: f64,
    },
    /// Patchy enhancement where the patch field exceeds the threshold (high = almost none).
    Patchy {
        /// Threshold on the patch field.
        threshold: f64,
    },
    /// Solid nodular enhancement (true progression).
    Nodular,
    /// Thin shells ("soap bubble") through a treated core (pseudoprogression).
    SoapBubble,
}

/// MR parameters of a compartment.
#[derive(Debug, Clone, Copy)]
pub struct Mr {
    /// Proton density (relative).
    pub pd: f64,
    /// T1, ms.
    pub t1: f64,
    /// T2, ms.
    pub t2: f64,
    /// ADC, 10⁻⁶ mm²/s.
    pub adc: f64,
    /// CBF, ml/100 g/min.
    pub cbf: f64,
    /// Gadolinium concentration after contrast, mM.
    pub conc: f64,
}

/// One case's lesion.
#[derive(Debug, Clone)]
pub struct Tumour {
    /// Enhancement pattern.
    pub pattern: Pattern,
    core: RadialShape,
    oedema: RadialShape,
    satellite: Option<RadialShape>,
    cavity: Option<RadialShape>,
    het: Lattice,
    patches: Lattice,
    /// Heterogeneity amplitude (relative modulation of every parameter).
    pub het_amp: f64,
    /// Strength of the T2-FLAIR mismatch, 0..1.
    pub mismatch: f64,
    /// Parameters of necrosis, non-enhancing core, oedema, enhancing tumour.
    pub necrosis_mr: Mr,
    /// Non-enhancing core.
    pub net_mr: Mr,
    /// Oedema.
    pub oedema_mr: Mr,
    /// Enhancing tumour.
    pub enh_mr: Mr,
    /// Lobe name, for the record.
    pub lobe: &'static str,
}

const LOBES: [(&str, [f64; 3], [f64; 3]); 5] = [
    ("frontal", [15.0, 20.0, 0.0], [45.0, 55.0, 35.0]),
    ("temporal", [35.0, -15.0, -28.0], [50.0, 20.0, -5.0]),
    ("parietal", [15.0, -50.0, 12.0], [45.0, -15.0, 40.0]),
    ("deep", [12.0, -15.0, 0.0], [26.0, 15.0, 20.0]),
    ("occipital", [10.0, -75.0, 0.0], [35.0, -55.0, 25.0]),
];

impl Tumour {
    /// Draws the lesion of a case. `post_treatment` selects the treated patterns.
    pub fn draw(rng: &mut Rng, anatomy: &Anatomy, z: Latent, post_treatment: bool) -> Tumour {
        let a = z.idh;
        let b = z.ki67;
        let c = z.tp;
        let wt_like = sigmoid(-1.6 * a);
        let prolif = sigmoid(1.4 * b);
        // Location.
        let weights = if post_treatment {
            [0.35, 0.25, 0.25, 0.05, 0.10]
        } else {
            let frontal = 0.2 + 0.5 * sigmoid(1.8 * a);
            let rest = 1.0 - frontal;
            [
                frontal,
                rest * 0.3,
                rest * 0.3,
                rest * 0.25 * wt_like,
                rest * 0.1,
            ]
        };
        let lobe = rng.pick(&weights);
        let (name, lo, hi) = LOBES[lobe];
        let side = if rng.chance(0.5) { 1.0 } else { -1.0 };
        let mut centre = [
            side * rng.range(lo[0], hi[0]),
            rng.range(lo[1], hi[1]),
            rng.range(lo[2], hi[2]),
        ];
        // Sizes.
        let r_core = if post_treatment {
            rng.range(10.0, 17.0) + 3.0 * sigmoid(c)
        } else {
            rng.range(11.0, 19.0) + 4.0 * wt_like
        };
        // Keep the core inside the brain: pull the centre inward until it is deep enough.
        for _ in 0..40 {
            if anatomy.depth(centre) >= 0.7 * r_core + 6.0 {
                break;
            }
            centre = centre.map(|v| v * 0.95);
        }
        let irregular = if post_treatment {
            0.15
        } else {
            0.06 + 0.12 * wt_like
        };
        let core = RadialShape::new(rng, centre, r_core, irregular);
        let oedema_factor = if post_treatment {
            1.4 + 0.4 * rng.uniform()
        } else {
            1.2 + 0.8 * wt_like * rng.range(0.6, 1.4) + 0.15 * prolif
        };
        let oedema = RadialShape::new(rng, centre, r_core * oedema_factor, irregular + 0.05);
        let het = Lattice::new(rng, BOX_LO, BOX_HI, 4.0);
        let patches = Lattice::new(rng, BOX_LO, BOX_HI, 5.0);
        let het_amp = if post_treatment {
            0.12
        } else {
            0.04 + 0.18 * sigmoid(-1.5 * a + 0.8 * b)
        };

        let pattern;
        let mut satellite = None;
        let mut cavity = None;
        if post_treatment {
            let off = [0, 1, 2].map(|_| rng.normal());
            let n = (off[0] * off[0] + off[1] * off[1] + off[2] * off[2])
                .sqrt()
                .max(1e-6);
            let cc = [0, 1, 2].map(|d| centre[d] + 0.45 * r_core * off[d] / n);
            let r = rng.range(6.0, 10.0);
            cavity = Some(RadialShape::new(rng, cc, r, 0.1));
            if rng.chance(sigmoid(1.8 * c)) {
                pattern = Pattern::Nodular;
                if rng.chance(0.5) {
                    let dir = [0, 1, 2].map(|_| rng.normal());
                    let n = (dir[0] * dir[0] + dir[1] * dir[1] + dir[2] * dir[2])
                        .sqrt()
                        .max(1e-6);
                    let sc = [0, 1, 2].map(|d| centre[d] + 1.1 * r_core * dir[d] / n);
                    if anatomy.depth(sc) > 8.0 {
                        let r = rng.range(3.5, 6.0);
                        satellite = Some(RadialShape::new(rng, sc, r, 0.1));
                    }
                }
            } else {
                pattern = Pattern::SoapBubble;
            }
        } else if rng.chance(sigmoid(-2.2 * a + 0.8 * b - 0.2)) {
            pattern = Pattern::Ring {
                necrosis: (0.3 + 0.3 * wt_like * rng.range(0.7, 1.3) + 0.1 * prolif).min(0.78),
            };
        } else {
            pattern = Pattern::Patchy {
                threshold: 0.62 - 0.45 * prolif - 0.15 * wt_like,
            };
        }

        let mismatch = if post_treatment {
            0.0
        } else {
            sigmoid(2.4 * a - 1.0)
        };
        let (adc_solid, cbf_solid, conc) = if post_treatment {
            (
                (1150.0 - 220.0 * c).clamp(600.0, 1800.0),
                (42.0 + 22.0 * c).clamp(8.0, 140.0),
                0.8 + 0.25 * sigmoid(c),
            )
        } else {
            (
                (1080.0 + 190.0 * a - 150.0 * b).clamp(550.0, 1900.0),
                (55.0 - 16.0 * a + 14.0 * b).clamp(12.0, 150.0),
                0.55 + 0.45 * prolif + 0.25 * wt_like,
            )
        };
        let necrosis_mr = Mr {
            pd: 0.92,
            t1: 2300.0,
            t2: 260.0,
            adc: 2300.0,
            cbf: 4.0,
            conc: 0.0,
        };
        let net_mr = if post_treatment {
            Mr {
                pd: 0.86,
                t1: 1500.0,
                t2: 170.0,
                adc: adc_solid + 250.0,
                cbf: 0.6 * cbf_solid,
                conc: 0.0,
            }
        } else {
            Mr {
                pd: 0.85 + 0.08 * mismatch,
                t1: 1450.0,
                t2: 150.0,
                adc: adc_solid + 80.0,
                cbf: 0.75 * cbf_solid,
                conc: 0.0,
            }
        };
        let oedema_mr = Mr {
            pd: 0.84,
            t1: 1250.0,
            t2: 135.0,
            adc: 1350.0 + 60.0 * a.clamp(-2.0, 2.0),
            cbf: 24.0,
            conc: 0.0,
        };
        let enh_mr = Mr {
            pd: 0.84,
            t1: 1350.0,
            t2: 120.0,
            adc: adc_solid,
            cbf: 1.25 * cbf_solid,
            conc,
        };
        Tumour {
            pattern,
            core,
            oedema,
            satellite,
            cavity,
            het,
            patches,
            het_amp,
            mismatch,
            necrosis_mr,
            net_mr,
            oedema_mr,
            enh_mr,
            lobe: name,
        }
    }

    /// Core centre (head frame).
    pub fn centre(&self) -> [f64; 3] {
        self.core.centre
    }

    /// The compartment at a point whose anatomy is `tissue`, and the local heterogeneity
    /// value (about ±1) and mismatch weight (0..1).
    pub fn at(&self, p: [f64; 3], tissue: Tissue) -> (Compartment, f64, f64) {
        if !matches!(tissue, Tissue::Csf | Tissue::Gm | Tissue::Wm) {
            return (Compartment::None, 0.0, 0.0);
        }
        let d = [
            p[0] - self.core.centre[0],
            p[1] - self.core.centre[1],
            p[2] - self.core.centre[2],
        ];
        let r2 = d[0] * d[0] + d[1] * d[1] + d[2] * d[2];
        let reach = self.oedema.r0 * 1.7 + 12.0;
        if r2 > reach * reach {
            return (Compartment::None, 0.0, 0.0);
        }
        let h = self.het.at(p) * 3.0;
        if let Some(cav) = &self.cavity {
            if cav.rho(p) < 1.0 {
                return (Compartment::Cavity, 0.0, 0.0);
            }
        }
        let rho_c = self.core.rho(p) + 0.05 * h;
        let in_sat = self.satellite.is_some_and(|s| s.rho(p) < 1.0);
        if rho_c < 1.0 || in_sat {
            let comp = match self.pattern {
                Pattern::Ring { necrosis } => {
                    if rho_c < necrosis + 0.06 * h {
                        Compartment::Necrosis
                    } else {
                        Compartment::Enhancing
                    }
                }
                Pattern::Patchy { threshold } => {
                    if self.patches.at(p) > threshold {
                        Compartment::Enhancing
                    } else {
                        Compartment::NonEnhancing
                    }
                }
                Pattern::Nodular => {
                    if rho_c < 0.25 && !in_sat {
                        Compartment::Necrosis
                    } else {
                        Compartment::Enhancing
                    }
                }
                Pattern::SoapBubble => {
                    let near_cavity = self.cavity.is_some_and(|c| c.rho(p) < 1.25);
                    if near_cavity || self.patches.at(p).abs() < 0.045 {
                        Compartment::Enhancing
                    } else {
                        Compartment::NonEnhancing
                    }
                }
            };
            // The mismatch fades out over the outer rim of the core (the FLAIR-bright rim).
            let t = ((0.9 - rho_c) / 0.2).clamp(0.0, 1.0);
            let m = self.mismatch * t * t * (3.0 - 2.0 * t);
            return (comp, h, m);
        }
        let rho_o = self.oedema.rho(p) + 0.08 * h;
        let oedema = match tissue {
            Tissue::Wm => rho_o < 1.0,
            Tissue::Gm => rho_o < 0.8,
            _ => false,
        };
        if oedema {
            (Compartment::Oedema, h, 0.0)
        } else {
            (Compartment::None, 0.0, 0.0)
        }
    }
}
