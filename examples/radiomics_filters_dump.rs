//! Writes the pre-processed (resampled) image of a case as raw little-endian f32 (NIfTI order)
//! for comparison with a peer: `radiomics_filters_dump IMAGE MASK LABEL SPACING INTERP PAD OUT
//! [BOX i0,j0,k0,i1,j1,k1]`.

use std::io::Write;
use std::path::Path;

use glioedge::radiomics::preprocess::{resample_image_and_mask_typed, ResampleSettings};
use glioedge::volume::read_nifti;
use glioedge::volume::resample::Interpolator;

fn main() -> anyhow::Result<()> {
    let a: Vec<String> = std::env::args().collect();
    anyhow::ensure!(
        a.len() >= 8,
        "usage: IMAGE MASK LABEL SPACING INTERP PAD OUT [BOX]"
    );
    let (image, info) = read_nifti(Path::new(&a[1]), 1 << 30)?;
    let (mut mask, _) = read_nifti(Path::new(&a[2]), 1 << 30)?;
    let label: u32 = a[3].parse()?;
    let sp: f64 = a[4].parse()?;
    let interpolator = match a[5].as_str() {
        "linear" => Interpolator::Linear,
        "nearest" => Interpolator::Nearest,
        _ => Interpolator::BSpline,
    };
    if let Some(b) = a.get(8) {
        let c: Vec<usize> = b.split(',').map(|x| x.parse()).collect::<Result<_, _>>()?;
        let [nx, ny, _] = mask.dims();
        for (n, v) in mask.data_mut().iter_mut().enumerate() {
            let idx = [n % nx, (n / nx) % ny, n / (nx * ny)];
            let inside = (0..3).all(|d| idx[d] >= c[d] && idx[d] < c[d + 3]);
            *v = if inside { label as f32 } else { 0.0 };
        }
    }
    let s = ResampleSettings {
        spacing: [sp; 3],
        interpolator,
        label,
        pad_distance: a[6].parse()?,
    };
    let (im, _) = resample_image_and_mask_typed(&image, info.datatype, &mask, &s)?;
    println!("dims {:?} affine {:?}", im.dims(), im.affine());
    let mut f = std::fs::File::create(&a[7])?;
    for v in im.data() {
        f.write_all(&v.to_le_bytes())?;
    }
    Ok(())
}
