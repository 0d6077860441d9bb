//! The fitted part of a model package (`tasks.json`, written by `glioedge fit`): per task the
//! nomogram with its signatures, the clinical-only model and every fitted signature (the
//! validation table compares them), with the cohort facts the fit saw.

use serde::{Deserialize, Serialize};

use super::{Nomogram, Signature};
use crate::model::{FileRole, ModelError, ModelPackage};

/// Format tag of `tasks.json`.
pub const TASKS_FORMAT: &str = "glioedge.tasks/1";

/// One fitted task.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FittedTask {
    /// Task key (`idh`, `ki67`, `tp_psp`).
    pub task: String,
    /// The `labels.csv` column it was fitted on.
    pub label: String,
    /// Which cases of a cohort belong to the task (`untreated`, `post_treatment`, `all`).
    pub cases: String,
    /// Cases used by the nomogram fit.
    pub n: usize,
    /// Positive cases among them.
    pub n_positive: usize,
    /// Training AUC of the nomogram.
    pub training_auc: f64,
    /// The nomogram (with the signatures it uses).
    pub nomogram: Nomogram,
    /// The clinical-only model, when a clinical variable entered.
    pub clinical_model: Option<Nomogram>,
    /// Every fitted signature (also those the nomogram did not take).
    pub signatures: Vec<Signature>,
}

/// `tasks.json`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FittedTasks {
    /// [`TASKS_FORMAT`].
    pub format: String,
    /// Sequences whose features the models use.
    pub sequences: Vec<String>,
    /// Inference precision the deep features were computed with.
    pub precision: String,
    /// Seed of the CV folds.
    pub seed: u64,
    /// The tasks.
    pub tasks: Vec<FittedTask>,
}

impl FittedTasks {
    /// A task by key.
    pub fn task(&self, key: &str) -> Option<&FittedTask> {
        self.tasks.iter().find(|t| t.task == key)
    }
}

/// Reads the package's `tasks.json` (re-checked against the manifest); `None` for a package
/// that has not been fitted.
pub fn load_fitted(pkg: &ModelPackage) -> Result<Option<FittedTasks>, ModelError> {
    let Some(bytes) = pkg.read_verified(FileRole::Tasks)? else {
        return Ok(None);
    };
    let path = pkg
        .path_of(FileRole::Tasks)
        .unwrap_or_else(|| pkg.dir.clone());
    let t: FittedTasks = serde_json::from_slice(&bytes).map_err(|e| ModelError::Manifest {
        path: path.clone(),
        message: e.to_string(),
    })?;
    if t.format != TASKS_FORMAT {
        return Err(ModelError::Invalid {
            path,
            problem: format!("format {:?}, this build reads {TASKS_FORMAT:?}", t.format),
        });
    }
    for task in &t.tasks {
        let models = std::iter::once(&task.nomogram).chain(task.clinical_model.as_ref());
        for m in models {
            for s in &m.signatures {
                s.check().map_err(|problem| ModelError::Invalid {
                    path: path.clone(),
                    problem,
                })?;
            }
        }
        for s in &task.signatures {
            s.check().map_err(|problem| ModelError::Invalid {
                path: path.clone(),
                problem,
            })?;
        }
    }
    Ok(Some(t))
}
