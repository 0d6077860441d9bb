//! NIfTI-1 reading (through the `nifti` crate) and writing.
//!
//! Reading is done in stages so that a hostile or broken file costs nothing:
//! 1. the first 348 bytes are read and classified (NIfTI-1, NIfTI-2, something else);
//! 2. dimensions and datatype are validated and the declared size is checked against the
//!    configured limit **before** any voxel buffer is allocated;
//! 3. only then are the voxels read, converted to `f32` with `scl_slope`/`scl_inter` applied,
//!    and the rest of a gzip stream drained so that its CRC is checked.
//!
//! The affine is chosen as nibabel chooses it (`get_best_affine`): the sform if
//! `sform_code > 0`, else the qform if `qform_code > 0`, else the pixdim scaling with the
//! x axis flipped (nibabel's `get_base_affine`).
//!
//! Writing produces a single-file `.nii` or `.nii.gz` with identical sform and qform (code 1),
//! a deterministic gzip stream (no timestamp, no file name, fixed level) so that the same
//! volume always gives the same bytes, and goes through a temporary name and a rename.

use std::fs::File;
use std::io::{self, BufReader, BufWriter, Read, Write};
use std::path::{Path, PathBuf};

use flate2::read::MultiGzDecoder;
use flate2::{Compression, GzBuilder};
use nifti::NiftiHeader;
use serde::Serialize;
use sha2::{Digest, Sha256};

use super::geometry::{det3, Affine};
use super::{Grid, Volume};
use crate::error::{Classify, ErrorKind};

/// Everything that can go wrong reading or writing a NIfTI file. Every variant names the file.
#[derive(Debug, thiserror::Error)]
pub enum VolumeError {
    /// The file does not exist or cannot be opened.
    #[error("{}: cannot open: {source}", path.display())]
    Open {
        /// File.
        path: PathBuf,
        /// Cause.
        source: io::Error,
    },
    /// A directory where a file was expected.
    #[error("{}: is a directory, expected a NIfTI file (.nii or .nii.gz)", path.display())]
    IsDirectory {
        /// Path.
        path: PathBuf,
    },
    /// Not a NIfTI file at all.
    #[error("{}: not a NIfTI-1 file ({detail})", path.display())]
    NotNifti {
        /// File.
        path: PathBuf,
        /// What was found.
        detail: String,
    },
    /// A NIfTI-2 file.
    #[error("{}: NIfTI-2 files are not supported", path.display())]
    Nifti2 {
        /// File.
        path: PathBuf,
    },
    /// The file ends early or its compressed stream is corrupt.
    #[error("{}: truncated or corrupt ({detail})", path.display())]
    Truncated {
        /// File.
        path: PathBuf,
        /// What the decoder said.
        detail: String,
    },
    /// Dimensions in the header are unusable.
    #[error("{}: invalid dimensions in header: {detail}", path.display())]
    BadDims {
        /// File.
        path: PathBuf,
        /// What is wrong.
        detail: String,
    },
    /// The header declares more data than the configured limit.
    #[error(
        "{}: header declares {dims:?} voxels ({bytes} bytes in memory), over the limit of {limit} bytes",
        path.display()
    )]
    TooLarge {
        /// File.
        path: PathBuf,
        /// Declared dimensions.
        dims: Vec<i64>,
        /// Bytes needed.
        bytes: u128,
        /// Configured limit.
        limit: u64,
    },
    /// A datatype that is not a real scalar.
    #[error("{}: unsupported voxel datatype {code} ({name})", path.display())]
    UnsupportedType {
        /// File.
        path: PathBuf,
        /// NIfTI datatype code.
        code: i16,
        /// Its name.
        name: String,
    },
    /// Some header field is inconsistent.
    #[error("{}: invalid header: {detail}", path.display())]
    BadHeader {
        /// File.
        path: PathBuf,
        /// What is wrong.
        detail: String,
    },
    /// Writing failed.
    #[error("{}: cannot write: {source}", path.display())]
    Write {
        /// File.
        path: PathBuf,
        /// Cause.
        source: io::Error,
    },
}

impl Classify for VolumeError {
    fn kind(&self) -> ErrorKind {
        match self {
            VolumeError::Write { .. } => ErrorKind::Internal,
            _ => ErrorKind::BadInput,
        }
    }

    fn hint(&self) -> Option<String> {
        Some(
            match self {
                VolumeError::Open { .. } => "check that the file exists and is readable by the service user",
                VolumeError::IsDirectory { .. } => "put the NIfTI file itself in the case folder, not a folder of DICOM slices",
                VolumeError::NotNifti { .. } => "convert the series to NIfTI-1 (for example with dcm2niix)",
                VolumeError::Nifti2 { .. } => "convert the file to NIfTI-1 (nibabel: nib.Nifti1Image(img.dataobj, img.affine))",
                VolumeError::Truncated { .. } => "the copy was probably interrupted: copy the file again",
                VolumeError::BadDims { .. } | VolumeError::BadHeader { .. } => "the file header is damaged or was written by a broken tool; re-export the series",
                VolumeError::TooLarge { .. } => "if the file is genuine, raise limits.max_volume_bytes in the configuration",
                VolumeError::UnsupportedType { .. } => "convert the image to a scalar integer or float type",
                VolumeError::Write { .. } => "check free disk space and permissions of the output folder",
            }
            .to_string(),
        )
    }
}

/// The voxel type a file stores (serialised with numpy's names: `int16`, `float32`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StoredType {
    /// uint8
    U8,
    /// int8
    I8,
    /// uint16
    U16,
    /// int16
    I16,
    /// uint32
    U32,
    /// int32
    I32,
    /// uint64
    U64,
    /// int64
    I64,
    /// float32
    F32,
    /// float64
    F64,
}

impl Serialize for StoredType {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.name())
    }
}

impl StoredType {
    fn from_code(code: i16) -> Option<Self> {
        Some(match code {
            2 => StoredType::U8,
            256 => StoredType::I8,
            512 => StoredType::U16,
            4 => StoredType::I16,
            768 => StoredType::U32,
            8 => StoredType::I32,
            1280 => StoredType::U64,
            1024 => StoredType::I64,
            16 => StoredType::F32,
            64 => StoredType::F64,
            _ => return None,
        })
    }

    fn code(self) -> i16 {
        match self {
            StoredType::U8 => 2,
            StoredType::I8 => 256,
            StoredType::U16 => 512,
            StoredType::I16 => 4,
            StoredType::U32 => 768,
            StoredType::I32 => 8,
            StoredType::U64 => 1280,
            StoredType::I64 => 1024,
            StoredType::F32 => 16,
            StoredType::F64 => 64,
        }
    }

    /// Bytes per voxel.
    pub fn size(self) -> usize {
        match self {
            StoredType::U8 | StoredType::I8 => 1,
            StoredType::U16 | StoredType::I16 => 2,
            StoredType::U32 | StoredType::I32 | StoredType::F32 => 4,
            StoredType::U64 | StoredType::I64 | StoredType::F64 => 8,
        }
    }

    /// numpy-style name (`int16`, `float32`).
    pub fn name(self) -> &'static str {
        match self {
            StoredType::U8 => "uint8",
            StoredType::I8 => "int8",
            StoredType::U16 => "uint16",
            StoredType::I16 => "int16",
            StoredType::U32 => "uint32",
            StoredType::I32 => "int32",
            StoredType::U64 => "uint64",
            StoredType::I64 => "int64",
            StoredType::F32 => "float32",
            StoredType::F64 => "float64",
        }
    }
}

fn type_name_of_code(code: i16) -> &'static str {
    match code {
        0 => "unknown",
        1 => "binary",
        32 => "complex64",
        128 => "rgb24",
        1536 => "float128",
        1792 => "complex128",
        2048 => "complex256",
        2304 => "rgba32",
        _ => "not a NIfTI datatype",
    }
}

/// Where the affine came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum AffineSource {
    /// `srow_*` (sform_code > 0).
    Sform,
    /// quaternion (qform_code > 0, sform_code = 0).
    Qform,
    /// pixdim only (both codes 0), as nibabel's base affine.
    Pixdim,
}

/// Facts about a file that was read, for `inspect` and for the result's provenance.
#[derive(Debug, Clone, Serialize)]
pub struct NiftiInfo {
    /// The file.
    pub path: PathBuf,
    /// SHA-256 of the file's bytes as stored (compressed if `.gz`).
    pub sha256: String,
    /// gzip-compressed.
    pub compressed: bool,
    /// Stored voxel type.
    pub datatype: StoredType,
    /// qform code.
    pub qform_code: i16,
    /// sform code.
    pub sform_code: i16,
    /// Which transform the affine came from.
    pub affine_source: AffineSource,
    /// `pixdim[1..4]` as stored.
    pub pixdim: [f64; 3],
    /// Scaling applied (`None` when the header asks for none).
    pub scaling: Option<(f64, f64)>,
    /// NaN or infinite voxels after scaling.
    pub non_finite: usize,
    /// Max distance (mm) between the sform and qform at the grid corners, when both are set.
    pub sform_qform_mismatch_mm: Option<f64>,
}

/// Reads a NIfTI-1 file (`.nii` or `.nii.gz`, detected by content, not by name).
///
/// `max_bytes` bounds the in-memory size (`voxels × max(stored bytes, 4)`) declared by the
/// header; it is checked before any voxel is read.
pub fn read_nifti(path: &Path, max_bytes: u64) -> Result<(Volume, NiftiInfo), VolumeError> {
    let p = || path.to_path_buf();
    let meta = std::fs::metadata(path).map_err(|source| VolumeError::Open { path: p(), source })?;
    if meta.is_dir() {
        return Err(VolumeError::IsDirectory { path: p() });
    }
    let file = File::open(path).map_err(|source| VolumeError::Open { path: p(), source })?;
    let mut hashing = HashingReader {
        inner: BufReader::new(file),
        hasher: Sha256::new(),
    };

    let mut magic = [0u8; 2];
    let n = read_full(&mut hashing, &mut magic).map_err(|e| truncated(path, e))?;
    let compressed = n == 2 && magic == [0x1f, 0x8b];
    let head = io::Cursor::new(magic[..n].to_vec());
    let mut source: Box<dyn Read + '_> = if compressed {
        Box::new(MultiGzDecoder::new(head.chain(&mut hashing)))
    } else {
        Box::new(head.chain(&mut hashing))
    };

    let mut hdr = [0u8; 348];
    let got = read_full(&mut source, &mut hdr).map_err(|e| truncated(path, e))?;
    if got < 348 {
        if got >= 4 && is_nifti2(&hdr) {
            return Err(VolumeError::Nifti2 { path: p() });
        }
        return Err(VolumeError::NotNifti {
            path: p(),
            detail: format!("only {got} bytes, a NIfTI-1 header has 348"),
        });
    }
    let little = match (
        i32::from_le_bytes([hdr[0], hdr[1], hdr[2], hdr[3]]),
        i32::from_be_bytes([hdr[0], hdr[1], hdr[2], hdr[3]]),
    ) {
        (348, _) => true,
        (_, 348) => false,
        _ if is_nifti2(&hdr) => return Err(VolumeError::Nifti2 { path: p() }),
        (v, _) => {
            return Err(VolumeError::NotNifti {
                path: p(),
                detail: format!("header size field is {v}, expected 348"),
            })
        }
    };
    match &hdr[344..348] {
        b"n+1\0" => {}
        b"ni1\0" => {
            return Err(VolumeError::NotNifti {
                path: p(),
                detail: "this is the header of a .hdr/.img pair; use a single-file .nii".into(),
            })
        }
        other => {
            return Err(VolumeError::NotNifti {
                path: p(),
                detail: format!(
                    "magic {:?}, expected \"n+1\"",
                    String::from_utf8_lossy(other)
                ),
            })
        }
    }
    let i16_at = |off: usize| {
        let b = [hdr[off], hdr[off + 1]];
        if little {
            i16::from_le_bytes(b)
        } else {
            i16::from_be_bytes(b)
        }
    };
    let raw_dims: Vec<i64> = (0..8).map(|d| i64::from(i16_at(40 + 2 * d))).collect();
    let ndim = raw_dims[0];
    if !(1..=7).contains(&ndim) {
        return Err(VolumeError::BadDims {
            path: p(),
            detail: format!("dim[0] = {ndim}, must be 1..7"),
        });
    }
    let ndim = ndim as usize;
    let declared: Vec<i64> = raw_dims[1..=ndim].to_vec();
    if let Some(bad) = declared.iter().find(|&&d| d <= 0) {
        return Err(VolumeError::BadDims {
            path: p(),
            detail: format!(
                "dimensions {declared:?} contain {bad}; every dimension must be at least 1"
            ),
        });
    }
    if declared.len() > 3 && declared[3..].iter().any(|&d| d > 1) {
        return Err(VolumeError::BadDims {
            path: p(),
            detail: format!(
                "dimensions {declared:?}: a 4-D series; glioedge expects one 3-D volume per file"
            ),
        });
    }
    let code = i16_at(70);
    let Some(stored) = StoredType::from_code(code) else {
        return Err(VolumeError::UnsupportedType {
            path: p(),
            code,
            name: type_name_of_code(code).into(),
        });
    };
    let voxels: u128 = declared.iter().map(|&d| d as u128).product();
    let bytes = voxels * (stored.size().max(4) as u128);
    if bytes > u128::from(max_bytes) {
        return Err(VolumeError::TooLarge {
            path: p(),
            dims: declared,
            bytes,
            limit: max_bytes,
        });
    }

    let header = NiftiHeader::from_reader(io::Cursor::new(&hdr[..])).map_err(|e| {
        VolumeError::BadHeader {
            path: p(),
            detail: e.to_string(),
        }
    })?;
    let vox_offset = header.vox_offset;
    if !(352.0..=64.0 * 1024.0 * 1024.0).contains(&vox_offset) {
        return Err(VolumeError::BadHeader {
            path: p(),
            detail: format!("vox_offset = {vox_offset}, expected at least 352"),
        });
    }
    let skip = vox_offset as u64 - 348;
    let skipped =
        io::copy(&mut (&mut source).take(skip), &mut io::sink()).map_err(|e| truncated(path, e))?;
    if skipped != skip {
        return Err(VolumeError::Truncated {
            path: p(),
            detail: "file ends inside the header extensions".into(),
        });
    }
    let scaling =
        scaling_of(&header).map_err(|detail| VolumeError::BadHeader { path: p(), detail })?;
    let data = read_voxels(&mut source, stored, little, voxels as usize, scaling)
        .map_err(|e| truncated(path, e))?;
    // Drain what follows so that a gzip stream's CRC and length are checked.
    io::copy(&mut source, &mut io::sink()).map_err(|e| truncated(path, e))?;
    drop(source);
    let sha256 = hex::encode(hashing.hasher.finalize());

    let mut dims = [1usize; 3];
    for (d, v) in declared.iter().take(3).enumerate() {
        dims[d] = *v as usize;
    }
    let pixdim = [
        f64::from(header.pixdim[1]),
        f64::from(header.pixdim[2]),
        f64::from(header.pixdim[3]),
    ];
    let (affine, affine_source) = best_affine(&header, dims)
        .map_err(|detail| VolumeError::BadHeader { path: p(), detail })?;
    let grid = Grid { dims, affine };
    let sform_qform_mismatch_mm = if header.sform_code > 0 && header.qform_code > 0 {
        qform_affine(&header)
            .ok()
            .map(|q| Grid { dims, affine: q }.max_corner_displacement(&grid))
    } else {
        None
    };
    let volume = Volume::new(grid, data).map_err(|e| VolumeError::BadHeader {
        path: p(),
        detail: e.to_string(),
    })?;
    let info = NiftiInfo {
        path: p(),
        sha256,
        compressed,
        datatype: stored,
        qform_code: header.qform_code,
        sform_code: header.sform_code,
        affine_source,
        pixdim,
        scaling,
        non_finite: volume.count_non_finite(),
        sform_qform_mismatch_mm,
    };
    Ok((volume, info))
}

fn is_nifti2(hdr: &[u8]) -> bool {
    let b = [hdr[0], hdr[1], hdr[2], hdr[3]];
    i32::from_le_bytes(b) == 540 || i32::from_be_bytes(b) == 540
}

fn truncated(path: &Path, e: io::Error) -> VolumeError {
    VolumeError::Truncated {
        path: path.to_path_buf(),
        detail: e.to_string(),
    }
}

/// Reads until `buf` is full or the stream ends; returns the bytes read.
fn read_full(r: &mut impl Read, buf: &mut [u8]) -> io::Result<usize> {
    let mut n = 0;
    while n < buf.len() {
        match r.read(&mut buf[n..]) {
            Ok(0) => break,
            Ok(k) => n += k,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(n)
}

struct HashingReader<R> {
    inner: R,
    hasher: Sha256,
}

impl<R: Read> Read for HashingReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.hasher.update(&buf[..n]);
        Ok(n)
    }
}

/// nibabel's rule: no scaling when the slope is 0 or not finite; a valid slope with an invalid
/// intercept is an error; `(1, 0)` is no scaling.
fn scaling_of(h: &NiftiHeader) -> Result<Option<(f64, f64)>, String> {
    let slope = f64::from(h.scl_slope);
    let inter = f64::from(h.scl_inter);
    if slope == 0.0 || !slope.is_finite() {
        return Ok(None);
    }
    if !inter.is_finite() {
        return Err(format!(
            "valid scl_slope {slope} but invalid scl_inter {inter}"
        ));
    }
    if slope == 1.0 && inter == 0.0 {
        return Ok(None);
    }
    Ok(Some((slope, inter)))
}

/// Reads `voxels` values of type `stored` (byte order `little` or big) and converts them to
/// `f32` as they arrive, through one small buffer: the volume is allocated once, at its final
/// size (checked against the caller's limit before this is called), with no copy of the raw
/// bytes beside it. A stream that ends early is an `UnexpectedEof` error.
fn read_voxels(
    source: &mut impl Read,
    stored: StoredType,
    little: bool,
    voxels: usize,
    scaling: Option<(f64, f64)>,
) -> io::Result<Vec<f32>> {
    const CHUNK: usize = 1 << 16;
    let size = stored.size();
    let mut out: Vec<f32> = Vec::with_capacity(voxels);
    let mut buf = vec![0u8; CHUNK * size];
    while out.len() < voxels {
        let n = (voxels - out.len()).min(CHUNK);
        source.read_exact(&mut buf[..n * size]).map_err(|e| {
            if e.kind() == io::ErrorKind::UnexpectedEof {
                io::Error::new(
                    io::ErrorKind::UnexpectedEof,
                    format!(
                        "voxel data ends within voxels {}..{} of the {voxels} the header declares",
                        out.len(),
                        out.len() + n
                    ),
                )
            } else {
                e
            }
        })?;
        let bytes = &buf[..n * size];
        macro_rules! typed {
            ($t:ty) => {{
                let w = std::mem::size_of::<$t>();
                let values = bytes.chunks_exact(w).map(|c| {
                    let a = c.try_into().unwrap_or([0; std::mem::size_of::<$t>()]);
                    if little {
                        <$t>::from_le_bytes(a)
                    } else {
                        <$t>::from_be_bytes(a)
                    }
                });
                match scaling {
                    None => out.extend(values.map(|v| v as f32)),
                    Some((sl, ic)) => out.extend(values.map(|v| (v as f64 * sl + ic) as f32)),
                }
            }};
        }
        match stored {
            StoredType::U8 => typed!(u8),
            StoredType::I8 => typed!(i8),
            StoredType::U16 => typed!(u16),
            StoredType::I16 => typed!(i16),
            StoredType::U32 => typed!(u32),
            StoredType::I32 => typed!(i32),
            StoredType::U64 => typed!(u64),
            StoredType::I64 => typed!(i64),
            StoredType::F32 => typed!(f32),
            StoredType::F64 => typed!(f64),
        }
    }
    Ok(out)
}

fn best_affine(h: &NiftiHeader, dims: [usize; 3]) -> Result<(Affine, AffineSource), String> {
    if h.sform_code > 0 {
        let rows = [h.srow_x, h.srow_y, h.srow_z];
        let mut m = Affine::identity();
        for (r, row) in rows.iter().enumerate() {
            for c in 0..4 {
                m.0[r][c] = f64::from(row[c]);
            }
        }
        if m.0.iter().flatten().any(|v| !v.is_finite()) {
            return Err("sform contains NaN or infinity".into());
        }
        if m.inverse().is_none() {
            return Err("sform is singular (a zero voxel size or collinear axes)".into());
        }
        return Ok((m, AffineSource::Sform));
    }
    if h.qform_code > 0 {
        return Ok((qform_affine(h)?, AffineSource::Qform));
    }
    let mut zooms = [1.0; 3];
    for (d, z) in zooms.iter_mut().enumerate() {
        let v = f64::from(h.pixdim[d + 1]);
        *z = if v.is_finite() && v != 0.0 {
            v.abs()
        } else {
            1.0
        };
    }
    let flipped = [-zooms[0], zooms[1], zooms[2]];
    let origin = [0, 1, 2].map(|d| -((dims[d] as f64 - 1.0) / 2.0) * flipped[d]);
    Ok((Affine::from_diag(flipped, origin), AffineSource::Pixdim))
}

/// The qform as nibabel computes it (quaternion → rotation, × pixdim, qfac on the last axis).
fn qform_affine(h: &NiftiHeader) -> Result<Affine, String> {
    let (b, c, d) = (
        f64::from(h.quatern_b),
        f64::from(h.quatern_c),
        f64::from(h.quatern_d),
    );
    let w2 = 1.0 - (b * b + c * c + d * d);
    let a = if w2 < 0.0 {
        if w2 < -3.0 * f64::from(f32::EPSILON) {
            return Err(format!("qform quaternion ({b}, {c}, {d}) has norm above 1"));
        }
        0.0
    } else {
        w2.sqrt()
    };
    let r = [
        [
            a * a + b * b - c * c - d * d,
            2.0 * (b * c - a * d),
            2.0 * (b * d + a * c),
        ],
        [
            2.0 * (b * c + a * d),
            a * a + c * c - b * b - d * d,
            2.0 * (c * d - a * b),
        ],
        [
            2.0 * (b * d - a * c),
            2.0 * (c * d + a * b),
            a * a + d * d - c * c - b * b,
        ],
    ];
    let mut vox = [
        f64::from(h.pixdim[1]),
        f64::from(h.pixdim[2]),
        f64::from(h.pixdim[3]),
    ];
    if vox.iter().any(|v| *v < 0.0 || !v.is_finite()) {
        return Err(format!("pixdim[1..4] = {vox:?} must be positive"));
    }
    for v in vox.iter_mut() {
        if *v == 0.0 {
            *v = 1.0;
        }
    }
    let qfac = if h.pixdim[0] < 0.0 { -1.0 } else { 1.0 };
    vox[2] *= qfac;
    let mut lin = [[0.0; 3]; 3];
    for row in 0..3 {
        for col in 0..3 {
            lin[row][col] = r[row][col] * vox[col];
        }
    }
    Ok(Affine::from_parts(
        lin,
        [
            f64::from(h.quatern_x),
            f64::from(h.quatern_y),
            f64::from(h.quatern_z),
        ],
    ))
}

/// Quaternion `(b, c, d)`, `qfac` and voxel sizes for an affine (NIfTI's `mat44_to_quatern`,
/// via the nearest rotation).
fn quatern_of(affine: &Affine) -> ([f64; 3], f64, [f64; 3]) {
    let zooms = affine.zooms();
    let mut m = affine.nearest_rotation();
    let det = det3(&m);
    let qfac = if det < 0.0 {
        for row in m.iter_mut() {
            row[2] = -row[2];
        }
        -1.0
    } else {
        1.0
    };
    let (r11, r12, r13) = (m[0][0], m[0][1], m[0][2]);
    let (r21, r22, r23) = (m[1][0], m[1][1], m[1][2]);
    let (r31, r32, r33) = (m[2][0], m[2][1], m[2][2]);
    let trace = r11 + r22 + r33 + 1.0;
    let (a, b, c, d);
    if trace > 0.5 {
        let a0 = 0.5 * trace.sqrt();
        a = a0;
        b = 0.25 * (r32 - r23) / a0;
        c = 0.25 * (r13 - r31) / a0;
        d = 0.25 * (r21 - r12) / a0;
    } else {
        let xd = 1.0 + r11 - (r22 + r33);
        let yd = 1.0 + r22 - (r11 + r33);
        let zd = 1.0 + r33 - (r11 + r22);
        if xd > 1.0 {
            let b0 = 0.5 * xd.sqrt();
            b = b0;
            c = 0.25 * (r12 + r21) / b0;
            d = 0.25 * (r13 + r31) / b0;
            a = 0.25 * (r32 - r23) / b0;
        } else if yd > 1.0 {
            let c0 = 0.5 * yd.sqrt();
            c = c0;
            b = 0.25 * (r12 + r21) / c0;
            d = 0.25 * (r23 + r32) / c0;
            a = 0.25 * (r13 - r31) / c0;
        } else {
            let d0 = 0.5 * zd.sqrt();
            d = d0;
            b = 0.25 * (r13 + r31) / d0;
            c = 0.25 * (r23 + r32) / d0;
            a = 0.25 * (r21 - r12) / d0;
        }
    }
    let sign = if a < 0.0 { -1.0 } else { 1.0 };
    ([b * sign, c * sign, d * sign], qfac, zooms)
}

/// Writes a volume as NIfTI-1 (`.nii.gz` when the name ends in `.gz`), through a temporary file
/// in the same directory and a rename. The output is deterministic: same volume, same bytes.
pub fn write_nifti(path: &Path, volume: &Volume, stored: StoredType) -> Result<(), VolumeError> {
    let werr = |source: io::Error| VolumeError::Write {
        path: path.to_path_buf(),
        source,
    };
    let compressed = path.extension().is_some_and(|e| e == "gz");
    let header = encode_header(volume, stored);
    let mut body = Vec::with_capacity(352 + volume.data().len() * stored.size());
    body.extend_from_slice(&header);
    body.extend_from_slice(&[0u8; 4]);
    encode_data(volume.data(), stored, &mut body);
    let tmp = temp_path(path);
    let result = (|| -> io::Result<()> {
        let file = File::create(&tmp)?;
        let mut w = BufWriter::new(file);
        if compressed {
            let mut gz = GzBuilder::new().mtime(0).write(&mut w, Compression::new(6));
            gz.write_all(&body)?;
            gz.finish()?;
        } else {
            w.write_all(&body)?;
        }
        let file = w.into_inner().map_err(|e| e.into_error())?;
        file.sync_all()?;
        std::fs::rename(&tmp, path)
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    result.map_err(werr)
}

/// `dir/.name.tmp-<pid>`: hidden, same directory (so the rename is atomic), unique per process.
pub(crate) fn temp_path(path: &Path) -> PathBuf {
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    path.with_file_name(format!(".{name}.tmp-{}", std::process::id()))
}

fn encode_header(volume: &Volume, stored: StoredType) -> [u8; 348] {
    let mut h = [0u8; 348];
    let put_i32 =
        |h: &mut [u8; 348], off: usize, v: i32| h[off..off + 4].copy_from_slice(&v.to_le_bytes());
    let put_i16 =
        |h: &mut [u8; 348], off: usize, v: i16| h[off..off + 2].copy_from_slice(&v.to_le_bytes());
    let put_f32 =
        |h: &mut [u8; 348], off: usize, v: f32| h[off..off + 4].copy_from_slice(&v.to_le_bytes());
    put_i32(&mut h, 0, 348);
    h[39] = 0; // dim_info
    let dims = volume.dims();
    put_i16(&mut h, 40, 3);
    for (d, v) in dims.iter().enumerate() {
        put_i16(&mut h, 42 + 2 * d, i16::try_from(*v).unwrap_or(i16::MAX));
    }
    for d in 4..8 {
        put_i16(&mut h, 40 + 2 * d, 1);
    }
    put_i16(&mut h, 70, stored.code());
    put_i16(&mut h, 72, (stored.size() * 8) as i16);
    let ([qb, qc, qd], qfac, zooms) = quatern_of(volume.affine());
    put_f32(&mut h, 76, qfac as f32);
    for (d, z) in zooms.iter().enumerate() {
        put_f32(&mut h, 80 + 4 * d, *z as f32);
    }
    put_f32(&mut h, 108, 352.0); // vox_offset
    put_f32(&mut h, 112, 1.0); // scl_slope
    put_f32(&mut h, 116, 0.0); // scl_inter
    h[123] = 2 | 8; // xyzt_units: mm, s
    let descrip = format!("glioedge {}", env!("CARGO_PKG_VERSION"));
    h[148..148 + descrip.len().min(79)]
        .copy_from_slice(&descrip.as_bytes()[..descrip.len().min(79)]);
    put_i16(&mut h, 252, 1); // qform_code: scanner
    put_i16(&mut h, 254, 1); // sform_code: scanner
    put_f32(&mut h, 256, qb as f32);
    put_f32(&mut h, 260, qc as f32);
    put_f32(&mut h, 264, qd as f32);
    let t = volume.affine().translation();
    for (d, v) in t.iter().enumerate() {
        put_f32(&mut h, 268 + 4 * d, *v as f32);
    }
    let a = volume.affine().0;
    for r in 0..3 {
        for c in 0..4 {
            put_f32(&mut h, 280 + 16 * r + 4 * c, a[r][c] as f32);
        }
    }
    h[344..348].copy_from_slice(b"n+1\0");
    h
}

fn encode_data(data: &[f32], stored: StoredType, out: &mut Vec<u8>) {
    macro_rules! put {
        ($t:ty) => {
            for v in data {
                let x = if v.is_nan() { 0 as $t } else { v.round() as $t };
                out.extend_from_slice(&x.to_le_bytes());
            }
        };
    }
    match stored {
        StoredType::F32 => data
            .iter()
            .for_each(|v| out.extend_from_slice(&v.to_le_bytes())),
        StoredType::F64 => data
            .iter()
            .for_each(|v| out.extend_from_slice(&f64::from(*v).to_le_bytes())),
        StoredType::U8 => put!(u8),
        StoredType::I8 => put!(i8),
        StoredType::U16 => put!(u16),
        StoredType::I16 => put!(i16),
        StoredType::U32 => put!(u32),
        StoredType::I32 => put!(i32),
        StoredType::U64 => put!(u64),
        StoredType::I64 => put!(i64),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn voxels_convert_in_both_byte_orders_with_scaling_across_chunks() {
        // More values than one read chunk, so the chunk boundary is crossed.
        let values: Vec<i16> = (0..70_000).map(|i| (i % 601) as i16 - 300).collect();
        for little in [true, false] {
            let bytes: Vec<u8> = values
                .iter()
                .flat_map(|v| {
                    if little {
                        v.to_le_bytes()
                    } else {
                        v.to_be_bytes()
                    }
                })
                .collect();
            let plain = read_voxels(&mut &bytes[..], StoredType::I16, little, values.len(), None)
                .expect("read");
            assert!(plain.iter().zip(&values).all(|(&a, &b)| a == f32::from(b)));
            let scaled = read_voxels(
                &mut &bytes[..],
                StoredType::I16,
                little,
                values.len(),
                Some((0.5, 10.0)),
            )
            .expect("read");
            assert!(scaled
                .iter()
                .zip(&values)
                .all(|(&a, &b)| a == (f64::from(b) * 0.5 + 10.0) as f32));
        }
        let f: Vec<u8> = [1.5f32, -2.25]
            .iter()
            .flat_map(|v| v.to_be_bytes())
            .collect();
        let got = read_voxels(&mut &f[..], StoredType::F32, false, 2, None).expect("read");
        assert_eq!(got, vec![1.5, -2.25]);
    }

    #[test]
    fn voxel_data_shorter_than_declared_is_an_error_naming_the_count() {
        let bytes = [0u8; 10];
        let e = read_voxels(&mut &bytes[..], StoredType::I16, true, 6, None)
            .expect_err("6 voxels need 12 bytes");
        assert_eq!(e.kind(), io::ErrorKind::UnexpectedEof);
        assert!(
            e.to_string().contains("of the 6 the header declares"),
            "{e}"
        );
    }
}
