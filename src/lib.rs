//! glioedge — a CPU-only glioma MRI analysis appliance.
//!
//! A study (NIfTI volumes per MRI sequence + a tumour mask + optional clinical variables) is
//! dropped into a folder; the box computes radiomics features, deep features from an int8
//! ConvNeXt-Tiny through tract, and the two published glioma models built on them, and writes a
//! result folder. See `ARCHITECTURE.md` for the data flow and the module map.
//!
//! Modules (each a stage on owned data; only the service and web layers are async):
//! * [`config`]: raw TOML → resolved configuration, every key optional with embedded defaults.
//! * [`error`]: the bad-input / internal classification shared by every error type.
//! * [`volume`]: NIfTI I/O, geometry, reorientation, resampling, masks, normalisation.
//! * [`case`]: what a case folder is (sequences, ROI mask, clinical variables) and loading it
//!   onto one reference grid.
//!
//! Cargo features: `rpi` — real Raspberry Pi GPIO through `rppal` (the default build uses a
//! simulated board).
#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod board;
pub mod case;
pub mod cohort;
pub mod config;
pub mod error;
pub mod fusion;
pub mod inference;
pub mod model;
pub mod phantom;
pub mod pipeline;
pub mod radiomics;
pub mod report;
pub mod service;
pub mod spool;
pub mod stats;
pub mod volume;
pub mod web;

/// The software version written into every result.
pub const VERSION: &str = env!("CARGO_PKG_VERSION");
