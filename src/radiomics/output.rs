//! JSON and CSV renderings of an [`Extraction`], keeping PyRadiomics' feature order.

use super::extractor::Extraction;

/// JSON with `diagnostics`, `features` (key → value, PyRadiomics order) and `errors`
/// (key → reason). Keys can be prefixed (e.g. `t1c_`) for multi-sequence output.
pub fn to_json(ex: &Extraction, prefix: &str) -> String {
    let mut out = String::from("{\n  \"diagnostics\": ");
    out.push_str(&serde_json::to_string(&ex.diagnostics).unwrap_or_else(|_| "null".into()));
    out.push_str(",\n  \"features\": {");
    push_pairs(
        &mut out,
        ex.features()
            .into_iter()
            .map(|(k, v)| (format!("{prefix}{k}"), serde_json::Value::from(v))),
    );
    out.push_str("},\n  \"errors\": {");
    push_pairs(
        &mut out,
        ex.errors()
            .into_iter()
            .map(|(k, e)| (format!("{prefix}{k}"), serde_json::Value::from(e))),
    );
    out.push_str("}\n}\n");
    out
}

fn push_pairs(out: &mut String, pairs: impl Iterator<Item = (String, serde_json::Value)>) {
    let mut first = true;
    for (k, v) in pairs {
        out.push_str(if first { "\n    " } else { ",\n    " });
        first = false;
        out.push_str(&serde_json::Value::from(k).to_string());
        out.push_str(": ");
        out.push_str(&v.to_string());
    }
    if !first {
        out.push_str("\n  ");
    }
}

/// CSV rows `feature,value,error` (no header), one per enabled feature; the value is empty
/// when the feature has none and the error column says why.
pub fn to_csv_rows(ex: &Extraction, prefix: &str) -> Vec<String> {
    ex.results
        .iter()
        .map(|r| match &r.value {
            Ok(v) => format!("{prefix}{},{},", r.key, serde_json::Value::from(*v)),
            Err(e) => format!("{prefix}{},,{}", r.key, csv_field(e)),
        })
        .collect()
}

/// The CSV header matching [`to_csv_rows`].
pub const CSV_HEADER: &str = "feature,value,error";

fn csv_field(s: &str) -> String {
    if s.contains([',', '"', '\n']) {
        format!("\"{}\"", s.replace('"', "\"\""))
    } else {
        s.to_string()
    }
}
