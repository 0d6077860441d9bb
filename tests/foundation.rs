//! The foundation: `inspect` on real scanner files, and every kind of bad input refused with an
//! error that names the file — through the library and through the binary (which must never
//! panic on input).

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;

use glioedge::case::study::load_study;
use glioedge::case::{CaseError, CaseFiles};
use glioedge::config::{Config, RawConfig};
use glioedge::volume::{read_nifti, write_nifti, Affine, Grid, StoredType, Volume, VolumeError};
use serde_json::Value;

fn inspect_json(dir: &Path) -> Value {
    let out = Command::new(common::bin())
        .args(["inspect", "--json"])
        .arg(dir)
        .output()
        .expect("runs");
    assert!(
        out.status.success(),
        "inspect failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("JSON")
}

fn file_entry<'a>(report: &'a Value, name: &str) -> &'a Value {
    report["files"]
        .as_array()
        .expect("files")
        .iter()
        .find(|f| f["path"].as_str().is_some_and(|p| p.ends_with(name)))
        .unwrap_or_else(|| panic!("{name} not in report"))
}

#[test]
fn inspect_brats_case_matches_nibabel_headers() {
    let Some(data) = common::data_dir() else {
        return;
    };
    let dir = data.join("brats_case");
    let report = inspect_json(&dir);
    let headers: Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("headers.json")).expect("headers"))
            .expect("JSON");
    for name in [
        "t1c.nii.gz",
        "t1n.nii.gz",
        "t2f.nii.gz",
        "t2w.nii.gz",
        "segmentation.nii.gz",
    ] {
        let ours = file_entry(&report, name);
        let theirs = &headers[name];
        assert_eq!(ours["shape"], theirs["shape"], "{name} shape");
        assert_eq!(
            ours["orientation"], theirs["orientation"],
            "{name} orientation"
        );
        assert_eq!(ours["datatype"], theirs["datatype"], "{name} datatype");
        assert_eq!(ours["sha256"], theirs["sha256"], "{name} sha256");
        for (a, b) in ours["zooms"]
            .as_array()
            .expect("zooms")
            .iter()
            .zip(theirs["zooms"].as_array().expect("zooms"))
        {
            assert!(
                (a.as_f64().expect("num") - b.as_f64().expect("num")).abs() < 1e-6,
                "{name} zooms"
            );
        }
        for (ra, rb) in ours["affine"]
            .as_array()
            .expect("affine")
            .iter()
            .zip(theirs["affine"].as_array().expect("affine"))
        {
            for (a, b) in ra
                .as_array()
                .expect("row")
                .iter()
                .zip(rb.as_array().expect("row"))
            {
                assert!(
                    (a.as_f64().expect("num") - b.as_f64().expect("num")).abs() < 1e-6,
                    "{name} affine"
                );
            }
        }
    }
    let labels: Vec<(i64, u64)> = report["mask_labels"]
        .as_array()
        .expect("labels")
        .iter()
        .map(|l| {
            (
                l["label"].as_i64().expect("label"),
                l["voxels"].as_u64().expect("voxels"),
            )
        })
        .collect();
    assert_eq!(labels, vec![(1, 14300), (2, 108566), (3, 21866)]);
    assert_eq!(report["roi_voxels"], 144732);
    assert!(file_entry(&report, "segmentation.nii.gz")["role"] == "mask");
    // The derived union mask lying beside it is reported as ignored, not silently used.
    assert!(report["warnings"]
        .as_array()
        .expect("warnings")
        .iter()
        .any(|w| w
            .as_str()
            .is_some_and(|s| s.contains("tumour_union_mask.nii.gz"))));
}

/// A case folder made from the raw TCGA series under alias names, plus a spherical mask on the
/// T1c grid (no mask ships with the case).
fn tcga_case(data: &Path, tmp: &Path) -> PathBuf {
    let dir = tmp.join("TCGA-FG-6692");
    std::fs::create_dir_all(&dir).expect("mkdir");
    for (src, dst) in [
        ("t1", "t1w"),
        ("t1c", "t1ce"),
        ("t2", "t2w"),
        ("flair", "t2-flair"),
    ] {
        std::fs::copy(
            data.join(format!("tcga_fg_6692_raw/TCGA-FG-6692_{src}.nii.gz")),
            dir.join(format!("{dst}.nii.gz")),
        )
        .expect("copy");
    }
    let (t1c, _) = read_nifti(&dir.join("t1ce.nii.gz"), 1 << 30).expect("t1c");
    let centre = t1c.affine().apply([128.0, 100.0, 13.0]);
    let [nx, ny, nz] = t1c.dims();
    let mut mask = vec![0.0f32; nx * ny * nz];
    for k in 0..nz {
        for j in 0..ny {
            for i in 0..nx {
                let p = t1c.affine().apply([i as f64, j as f64, k as f64]);
                let d2: f64 = (0..3).map(|a| (p[a] - centre[a]).powi(2)).sum();
                if d2 < 20.0 * 20.0 {
                    mask[i + nx * (j + ny * k)] = 1.0;
                }
            }
        }
    }
    write_nifti(
        &dir.join("roi.nii.gz"),
        &t1c.with_data(mask).expect("shape"),
        StoredType::U8,
    )
    .expect("write");
    dir
}

#[test]
fn inspect_raw_tcga_case_reports_grids() {
    let Some(data) = common::data_dir() else {
        return;
    };
    let tmp = tempfile::tempdir().expect("tmp");
    let dir = tcga_case(&data, tmp.path());
    let report = inspect_json(&dir);
    let t1c = file_entry(&report, "t1ce.nii.gz");
    assert_eq!(t1c["orientation"], "LAS");
    let z: Vec<f64> = t1c["zooms"]
        .as_array()
        .expect("zooms")
        .iter()
        .map(|v| v.as_f64().expect("num"))
        .collect();
    assert!(
        (z[0] - 0.898).abs() < 1e-3 && (z[1] - 0.898).abs() < 1e-3 && (z[2] - 5.5).abs() < 1e-3,
        "{z:?}"
    );
    assert_eq!(t1c["grid"]["relation"], "reference");
    for name in ["t2w.nii.gz", "t2-flair.nii.gz"] {
        let e = file_entry(&report, name);
        assert_eq!(e["grid"]["relation"], "resampled", "{name}");
        assert!(
            e["grid"]["max_corner_displacement_mm"]
                .as_f64()
                .expect("mm")
                > 1.0
        );
    }
    assert_eq!(
        file_entry(&report, "t1w.nii.gz")["grid"]["relation"],
        "same_grid"
    );
    assert_eq!(
        report["reference_grid"]["dims"],
        serde_json::json!([256, 224, 26])
    );
    // The text form says so too.
    let out = Command::new(common::bin())
        .arg("inspect")
        .arg(&dir)
        .output()
        .expect("runs");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("t2: on another grid than t1c")
            && text.contains("flair: on another grid than t1c"),
        "{text}"
    );
}

// ---------------------------------------------------------------------------------------------
// Bad input. Each case: the library returns the right error kind naming the file, and the binary
// exits 2 with the file name in its one-line reason.

fn small_grid() -> Grid {
    Grid {
        dims: [8, 8, 6],
        affine: Affine::from_diag([-1.0, -1.0, 2.0], [0.0, 7.0, 0.0]),
    }
}

fn small_image() -> Volume {
    Volume::new(
        small_grid(),
        (0..384).map(|v| (v % 17) as f32 * 10.0).collect(),
    )
    .expect("shape")
}

fn small_mask() -> Volume {
    let mut d = vec![0.0f32; 384];
    for k in 2..4 {
        for j in 2..6 {
            for i in 2..6 {
                d[i + 8 * (j + 8 * k)] = 1.0;
            }
        }
    }
    Volume::new(small_grid(), d).expect("shape")
}

/// A valid little case; tests then break one thing.
fn good_case(root: &Path) -> PathBuf {
    let dir = root.join("case");
    std::fs::create_dir_all(&dir).expect("mkdir");
    write_nifti(&dir.join("t1c.nii.gz"), &small_image(), StoredType::I16).expect("write");
    write_nifti(&dir.join("flair.nii"), &small_image(), StoredType::F32).expect("write");
    write_nifti(&dir.join("mask.nii.gz"), &small_mask(), StoredType::U8).expect("write");
    dir
}

fn load(dir: &Path) -> Result<glioedge::case::study::Study, CaseError> {
    let files = CaseFiles::discover(dir)?;
    load_study(&files, &Config::defaults())
}

/// Runs `inspect` on the folder and checks exit code 2 and that stderr names `needle`.
fn assert_cli_refuses(dir: &Path, needle: &str) {
    let out = Command::new(common::bin())
        .arg("inspect")
        .arg(dir)
        .output()
        .expect("runs");
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "exit code; stderr: {err}");
    assert!(err.contains(needle), "stderr does not name {needle}: {err}");
    assert!(!err.contains("panicked"), "{err}");
}

#[test]
fn good_small_case_loads() {
    let tmp = tempfile::tempdir().expect("tmp");
    let dir = good_case(tmp.path());
    let s = load(&dir).expect("valid case");
    assert_eq!(s.roi.count(), 32);
    let out = Command::new(common::bin())
        .arg("inspect")
        .arg(&dir)
        .output()
        .expect("runs");
    assert!(out.status.success());
}

#[test]
fn truncated_gzip_is_refused() {
    let tmp = tempfile::tempdir().expect("tmp");
    let dir = good_case(tmp.path());
    let path = dir.join("t1c.nii.gz");
    let bytes = std::fs::read(&path).expect("read");
    std::fs::write(&path, &bytes[..bytes.len() / 2]).expect("write");
    match read_nifti(&path, 1 << 30) {
        Err(e @ VolumeError::Truncated { .. }) => {
            assert!(e.to_string().contains("t1c.nii.gz"), "{e}")
        }
        other => panic!("expected Truncated, got {other:?}"),
    }
    assert_cli_refuses(&dir, "t1c.nii.gz");
}

#[test]
fn corrupt_gzip_crc_is_refused() {
    let tmp = tempfile::tempdir().expect("tmp");
    let dir = good_case(tmp.path());
    let path = dir.join("t1c.nii.gz");
    let mut bytes = std::fs::read(&path).expect("read");
    let n = bytes.len();
    bytes[n - 6] ^= 0xff; // inside the CRC32 trailer
    std::fs::write(&path, &bytes).expect("write");
    assert!(matches!(
        read_nifti(&path, 1 << 30),
        Err(VolumeError::Truncated { .. })
    ));
}

#[test]
fn wrong_magic_is_refused() {
    let tmp = tempfile::tempdir().expect("tmp");
    let dir = good_case(tmp.path());
    let path = dir.join("flair.nii");
    let mut bytes = std::fs::read(&path).expect("read");
    bytes[344..348].copy_from_slice(b"xyz\0");
    std::fs::write(&path, &bytes).expect("write");
    match read_nifti(&path, 1 << 30) {
        Err(e @ VolumeError::NotNifti { .. }) => {
            assert!(e.to_string().contains("flair.nii") && e.to_string().contains("magic"))
        }
        other => panic!("expected NotNifti, got {other:?}"),
    }
    assert_cli_refuses(&dir, "flair.nii");
    // Something that is not NIfTI at all.
    std::fs::write(&path, b"%PDF-1.4 not an image").expect("write");
    assert!(matches!(
        read_nifti(&path, 1 << 30),
        Err(VolumeError::NotNifti { .. })
    ));
}

fn set_dims(path: &Path, dims: [i16; 3]) {
    let mut bytes = std::fs::read(path).expect("read");
    for (d, v) in dims.iter().enumerate() {
        bytes[42 + 2 * d..44 + 2 * d].copy_from_slice(&v.to_le_bytes());
    }
    std::fs::write(path, &bytes).expect("write");
}

#[test]
fn header_claiming_huge_volume_costs_nothing() {
    let tmp = tempfile::tempdir().expect("tmp");
    let dir = good_case(tmp.path());
    let path = dir.join("flair.nii");
    set_dims(&path, [10000, 10000, 10000]); // 10^12 voxels
    match read_nifti(&path, 1 << 30) {
        Err(e @ VolumeError::TooLarge { .. }) => {
            let m = e.to_string();
            assert!(
                m.contains("flair.nii") && m.contains("4000000000000 bytes"),
                "{m}"
            );
        }
        other => panic!("expected TooLarge, got {other:?}"),
    }
    assert_cli_refuses(&dir, "flair.nii");
}

#[test]
fn zero_and_negative_dims_are_refused() {
    for dims in [[8, 0, 6], [8, -8, 6]] {
        let tmp = tempfile::tempdir().expect("tmp");
        let dir = good_case(tmp.path());
        let path = dir.join("flair.nii");
        set_dims(&path, dims);
        match read_nifti(&path, 1 << 30) {
            Err(e @ VolumeError::BadDims { .. }) => assert!(e.to_string().contains("flair.nii")),
            other => panic!("expected BadDims for {dims:?}, got {other:?}"),
        }
        assert_cli_refuses(&dir, "flair.nii");
    }
}

#[test]
fn nifti2_is_refused_clearly() {
    let tmp = tempfile::tempdir().expect("tmp");
    let dir = good_case(tmp.path());
    let path = dir.join("flair.nii");
    let mut bytes = vec![0u8; 600];
    bytes[..4].copy_from_slice(&540i32.to_le_bytes());
    bytes[4..8].copy_from_slice(b"n+2\0");
    std::fs::write(&path, &bytes).expect("write");
    match read_nifti(&path, 1 << 30) {
        Err(e @ VolumeError::Nifti2 { .. }) => assert!(e.to_string().contains("NIfTI-2")),
        other => panic!("expected Nifti2, got {other:?}"),
    }
    assert_cli_refuses(&dir, "NIfTI-2");
}

#[test]
fn non_finite_voxels_are_counted_and_refused_or_zeroed() {
    let tmp = tempfile::tempdir().expect("tmp");
    let dir = good_case(tmp.path());
    let mut img = small_image();
    img.data_mut()[5] = f32::NAN;
    img.data_mut()[77] = f32::INFINITY;
    img.data_mut()[78] = f32::NEG_INFINITY;
    write_nifti(&dir.join("flair.nii"), &img, StoredType::F32).expect("write");
    match load(&dir) {
        Err(e @ CaseError::NonFinite { count: 3, .. }) => {
            assert!(e.to_string().contains("flair.nii"))
        }
        other => panic!("expected NonFinite(3), got {other:?}"),
    }
    assert_cli_refuses(&dir, "3 voxels are NaN or infinite");
    let raw =
        RawConfig::parse("[volume]\nnon_finite = \"zero\"\n", Path::new("t.toml")).expect("toml");
    let config = raw.resolve(None).expect("valid");
    let study = load_study(&CaseFiles::discover(&dir).expect("files"), &config).expect("zeroed");
    assert_eq!(study.quality.non_finite_replaced.get("flair"), Some(&3));
    assert!(study.images[&glioedge::case::Sequence::Flair]
        .data()
        .iter()
        .all(|v| v.is_finite()));
}

#[test]
fn empty_mask_and_absent_label_are_refused() {
    let tmp = tempfile::tempdir().expect("tmp");
    let dir = good_case(tmp.path());
    write_nifti(
        &dir.join("mask.nii.gz"),
        &Volume::filled(small_grid(), 0.0),
        StoredType::U8,
    )
    .expect("write");
    match load(&dir) {
        Err(e @ CaseError::EmptyMask { .. }) => assert!(e.to_string().contains("mask.nii.gz")),
        other => panic!("expected EmptyMask, got {other:?}"),
    }
    assert_cli_refuses(&dir, "mask.nii.gz");

    write_nifti(&dir.join("mask.nii.gz"), &small_mask(), StoredType::U8).expect("write");
    std::fs::write(
        dir.join("case.toml"),
        "mask = \"mask.nii.gz\"\nmask_labels = [4]\n[sequences]\nt1c = \"t1c.nii.gz\"\n",
    )
    .expect("write");
    match load(&dir) {
        Err(e @ CaseError::EmptyMask { .. }) => {
            let m = e.to_string();
            assert!(
                m.contains("mask.nii.gz") && m.contains("[4]") && m.contains("labels present: 1"),
                "{m}"
            );
        }
        other => panic!("expected EmptyMask, got {other:?}"),
    }
}

#[test]
fn mask_outside_the_image_is_refused() {
    let tmp = tempfile::tempdir().expect("tmp");
    let dir = good_case(tmp.path());
    let far = Grid {
        dims: [8, 8, 6],
        affine: Affine::from_diag([-1.0, -1.0, 2.0], [500.0, 7.0, 0.0]),
    };
    write_nifti(
        &dir.join("mask.nii.gz"),
        &Volume::new(far, small_mask().into_data()).expect("shape"),
        StoredType::U8,
    )
    .expect("write");
    match load(&dir) {
        Err(e @ CaseError::NoOverlap { .. }) => {
            assert!(e.to_string().contains("mask.nii.gz") && e.to_string().contains("t1c.nii.gz"))
        }
        other => panic!("expected NoOverlap, got {other:?}"),
    }
    assert_cli_refuses(&dir, "does not overlap");
}

#[test]
fn two_files_for_one_sequence_are_refused_listing_both() {
    let tmp = tempfile::tempdir().expect("tmp");
    let dir = good_case(tmp.path());
    write_nifti(&dir.join("t1ce.nii.gz"), &small_image(), StoredType::I16).expect("write");
    match CaseFiles::discover(&dir) {
        Err(e @ CaseError::Ambiguous { .. }) => {
            let m = e.to_string();
            assert!(m.contains("t1c.nii.gz") && m.contains("t1ce.nii.gz"), "{m}");
        }
        other => panic!("expected Ambiguous, got {other:?}"),
    }
    assert_cli_refuses(&dir, "t1ce.nii.gz");
}

#[test]
fn unreadable_file_is_refused() {
    let tmp = tempfile::tempdir().expect("tmp");
    let dir = good_case(tmp.path());
    // A dangling link: the name is there, the file is not (root can read any mode bits).
    std::fs::remove_file(dir.join("flair.nii")).expect("rm");
    std::os::unix::fs::symlink(tmp.path().join("gone.nii"), dir.join("flair.nii"))
        .expect("symlink");
    match load(&dir) {
        Err(CaseError::Volume(e @ VolumeError::Open { .. })) => {
            assert!(e.to_string().contains("flair.nii"))
        }
        other => panic!("expected Open, got {other:?}"),
    }
    assert_cli_refuses(&dir, "flair.nii: cannot open");
}

#[test]
fn directory_instead_of_file_is_refused() {
    let tmp = tempfile::tempdir().expect("tmp");
    let dir = good_case(tmp.path());
    std::fs::remove_file(dir.join("flair.nii")).expect("rm");
    std::fs::create_dir(dir.join("flair.nii")).expect("mkdir");
    match load(&dir) {
        Err(CaseError::Volume(e @ VolumeError::IsDirectory { .. })) => {
            assert!(e.to_string().contains("flair.nii"))
        }
        other => panic!("expected IsDirectory, got {other:?}"),
    }
    assert_cli_refuses(&dir, "is a directory");
    // And a file where the case folder is expected.
    assert!(matches!(
        CaseFiles::discover(&dir.join("t1c.nii.gz")),
        Err(CaseError::NotADirectory { .. })
    ));
}

#[test]
fn written_volume_round_trips_with_geometry_and_is_deterministic() {
    let tmp = tempfile::tempdir().expect("tmp");
    // An oblique grid: a rotation of 4° about x then 3.5° about z, voxels 0.9 × 0.9 × 5.5 mm.
    let (cx, sx) = (4f64.to_radians().cos(), 4f64.to_radians().sin());
    let (cz, sz) = (3.5f64.to_radians().cos(), 3.5f64.to_radians().sin());
    let rot = [
        [cz, -sz * cx, sz * sx],
        [sz, cz * cx, -cz * sx],
        [0.0, sx, cx],
    ];
    let zooms = [0.9, 0.9, 5.5];
    let lin = [0, 1, 2].map(|r| [0, 1, 2].map(|c| rot[r][c] * zooms[c]));
    let a = Affine::from_parts(lin, [-113.6, -74.6, -46.8]);
    let v = Volume::new(
        Grid {
            dims: [5, 4, 3],
            affine: a,
        },
        (0..60).map(|x| x as f32 * 1.5).collect(),
    )
    .expect("shape");
    let p1 = tmp.path().join("one.nii.gz");
    let p2 = tmp.path().join("two.nii.gz");
    write_nifti(&p1, &v, StoredType::F32).expect("write");
    write_nifti(&p2, &v, StoredType::F32).expect("write");
    assert_eq!(
        std::fs::read(&p1).expect("read"),
        std::fs::read(&p2).expect("read")
    );
    let (back, info) = read_nifti(&p1, 1 << 30).expect("read back");
    assert_eq!(back.data(), v.data());
    assert!(back.affine().max_abs_diff(&a) < 1e-5);
    // The qform written beside the sform describes the same grid.
    let mismatch = info.sform_qform_mismatch_mm.expect("both set");
    assert!(mismatch < 1e-3, "qform and sform differ by {mismatch} mm");
    assert!(std::fs::read_dir(tmp.path()).expect("ls").all(|e| !e
        .expect("entry")
        .file_name()
        .to_string_lossy()
        .contains(".tmp")));
}

#[test]
fn config_print_and_unknown_keys() {
    let out = Command::new(common::bin())
        .args(["config", "print"])
        .output()
        .expect("runs");
    assert!(out.status.success());
    assert!(String::from_utf8_lossy(&out.stdout).contains("max_volume_bytes = 1073741824"));
    let tmp = tempfile::tempdir().expect("tmp");
    let cfg = tmp.path().join("glioedge.toml");
    std::fs::write(&cfg, "[volume]\nnon_finit = \"zero\"\n").expect("write");
    let out = Command::new(common::bin())
        .arg("--config")
        .arg(&cfg)
        .args(["config", "check"])
        .output()
        .expect("runs");
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        err.contains("glioedge.toml") && err.contains("non_finit"),
        "{err}"
    );
}
