//! From tissue parameters to image intensities.
//!
//! Weighted images follow textbook signal equations with relative proton density `PD`:
//! * T1-weighted spin echo (TR 500 ms, TE 12 ms): `PD · (1 − e^(−TR/T1)) · e^(−TE/T2)`;
//! * T1 after gadolinium: the same with `1/T1' = 1/T1 + r1 · C` (r1 = 4.5 /s/mM), where `C` is
//!   non-zero only where the blood–brain barrier is broken (enhancing tumour);
//! * T2-weighted (TR 4000 ms, TE 100 ms): `PD · (1 − e^(−TR/T1)) · e^(−TE/T2)`;
//! * FLAIR (TR 9000 ms, TE 120 ms, TI chosen to null CSF):
//!   `PD · |1 − 2e^(−TI/T1) + e^(−TR/T1)| · e^(−TE/T2)`.
//!
//! ADC (10⁻⁶ mm²/s) and CBF (ml/100 g/min, as from arterial spin labelling) are parametric
//! maps taken straight from the tissue values. Tissue values at 1.5–3 T are from the usual
//! tables (e.g. Wansapura et al., JMRI 1999; Stanisz et al., MRM 2005): white matter T1 ≈ 830,
//! T2 ≈ 80; grey matter 1330 / 110; CSF 4000 / 2000; ADC 750 / 850 / 3000; CBF 22 / 55 / 0.

use super::anatomy::Tissue;
use super::tumour::{Compartment, Mr};

/// File stems of the six sequences, in the order of every per-sequence array here.
pub const SEQUENCES: [&str; 6] = ["t1", "t1c", "t2", "flair", "adc", "cbf"];

/// Number of weighted (non-quantitative) sequences at the front of [`SEQUENCES`].
pub const WEIGHTED: usize = 4;

const TR_T1: f64 = 500.0;
const TE_T1: f64 = 12.0;
const TR_T2: f64 = 4000.0;
const TE_T2: f64 = 100.0;
const TR_FL: f64 = 9000.0;
const TE_FL: f64 = 120.0;
const R1: f64 = 4.5e-3; // per ms per mM
const T1_CSF: f64 = 4000.0;

/// Normal tissue parameters.
pub fn tissue_mr(t: Tissue) -> Mr {
    let m = |pd, t1, t2, adc, cbf| Mr {
        pd,
        t1,
        t2,
        adc,
        cbf,
        conc: 0.0,
    };
    match t {
        Tissue::Air => m(0.0, 1000.0, 1.0, 0.0, 0.0),
        Tissue::Scalp => m(0.9, 380.0, 110.0, 300.0, 5.0),
        Tissue::Skull => m(0.08, 1000.0, 15.0, 200.0, 1.0),
        Tissue::Csf => m(1.0, T1_CSF, 2000.0, 3000.0, 0.0),
        Tissue::Gm => m(0.80, 1330.0, 110.0, 850.0, 55.0),
        Tissue::Wm => m(0.70, 830.0, 80.0, 750.0, 22.0),
    }
}

/// The CSF-nulling inversion time of the FLAIR protocol.
fn ti_flair() -> f64 {
    T1_CSF * libm::log(2.0 / (1.0 + libm::exp(-TR_FL / T1_CSF)))
}

/// Raw signals (before gain, bias and noise) of the six sequences for tissue parameters.
pub fn signals(mr: &Mr) -> [f64; 6] {
    if mr.pd == 0.0 {
        return [0.0; 6];
    }
    let e2 = |te: f64| libm::exp(-te / mr.t2);
    let sat = |tr: f64, t1: f64| 1.0 - libm::exp(-tr / t1);
    let t1w = mr.pd * sat(TR_T1, mr.t1) * e2(TE_T1);
    let t1_post = 1.0 / (1.0 / mr.t1 + R1 * mr.conc);
    let t1c = mr.pd * sat(TR_T1, t1_post) * e2(TE_T1);
    let t2w = mr.pd * sat(TR_T2, mr.t1) * e2(TE_T2);
    let ti = ti_flair();
    let flair =
        mr.pd * (1.0 - 2.0 * libm::exp(-ti / mr.t1) + libm::exp(-TR_FL / mr.t1)).abs() * e2(TE_FL);
    [t1w, t1c, t2w, flair, mr.adc, mr.cbf]
}

/// Tumour parameters modulated by the local heterogeneity `h` (about ±1) with amplitude
/// `amp`, and pushed towards free water by the T2-FLAIR mismatch weight `m`.
pub fn modulate(base: &Mr, h: f64, amp: f64, m: f64) -> Mr {
    // Relative modulation, kept positive whatever the field does.
    let f = |gain: f64| (1.0 + gain * amp * h).clamp(0.4, 2.0);
    let mut out = Mr {
        pd: base.pd,
        t1: base.t1 * f(0.5),
        t2: base.t2 * f(1.0),
        adc: base.adc * f(0.6),
        cbf: base.cbf * f(1.2),
        conc: base.conc * f(1.5),
    };
    if m > 0.0 {
        // Near-fluid core: long T1 and T2 (bright on T2, partly nulled on FLAIR).
        out.t1 += m * 1700.0;
        out.t2 += m * 260.0;
        out.adc += m * 350.0;
    }
    out
}

/// Parameters of a compartment (`None` = the normal tissue).
pub fn compartment_mr(
    c: Compartment,
    tissue: Tissue,
    t: &super::tumour::Tumour,
    h: f64,
    m: f64,
) -> Mr {
    match c {
        Compartment::None => tissue_mr(tissue),
        Compartment::Cavity => tissue_mr(Tissue::Csf),
        Compartment::Necrosis => modulate(&t.necrosis_mr, h, 0.5 * t.het_amp, 0.0),
        Compartment::NonEnhancing => modulate(&t.net_mr, h, t.het_amp, m),
        Compartment::Oedema => modulate(&t.oedema_mr, h, 0.5 * t.het_amp, 0.0),
        Compartment::Enhancing => modulate(&t.enh_mr, h, t.het_amp, 0.0),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn contrasts_are_those_of_the_textbook() {
        let wm = signals(&tissue_mr(Tissue::Wm));
        let gm = signals(&tissue_mr(Tissue::Gm));
        let csf = signals(&tissue_mr(Tissue::Csf));
        // T1: WM > GM > CSF; T2: CSF > GM > WM; FLAIR: CSF nulled.
        assert!(wm[0] > gm[0] && gm[0] > csf[0]);
        assert!(csf[2] > gm[2] && gm[2] > wm[2]);
        assert!(csf[3] < 0.05 * gm[3], "csf {} gm {}", csf[3], gm[3]);
        // Contrast brightens T1 where C > 0 and leaves it unchanged elsewhere.
        let mut enh = tissue_mr(Tissue::Gm);
        enh.conc = 1.0;
        assert!(signals(&enh)[1] > 1.3 * gm[1]);
        assert_eq!(wm[0], wm[1]);
    }

    #[test]
    fn strong_heterogeneity_keeps_signals_finite_and_bounded() {
        let base = tissue_mr(Tissue::Wm);
        for h in [-3.0, -1.0, 0.0, 1.0, 3.0] {
            let s = signals(&modulate(&base, h, 0.6, 0.5));
            assert!(
                s.iter().all(|v| v.is_finite() && *v >= 0.0 && *v < 5000.0),
                "{s:?}"
            );
            assert!(s[..WEIGHTED].iter().all(|v| *v <= 1.0), "{s:?}");
        }
    }
}
