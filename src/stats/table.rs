//! A small CSV reader for labelled score and feature tables (`validate --scores`, fitting):
//! a header row, comma-separated fields, optional double quotes (`""` inside quotes is a
//! quote), empty fields and `NA` read as missing.

use std::path::{Path, PathBuf};

use crate::error::{Classify, ErrorKind};

/// A CSV that cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum TableError {
    /// Cannot read the file.
    #[error("cannot read '{path}': {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// The file is not a usable table.
    #[error("'{path}' line {line}: {problem}")]
    Format {
        /// The file.
        path: PathBuf,
        /// 1-based line.
        line: usize,
        /// What is wrong.
        problem: String,
    },
    /// A column is missing.
    #[error("'{path}' has no column '{column}' (columns: {available})")]
    NoColumn {
        /// The file.
        path: PathBuf,
        /// The requested column.
        column: String,
        /// The header.
        available: String,
    },
}

impl Classify for TableError {
    fn kind(&self) -> ErrorKind {
        ErrorKind::BadInput
    }
    fn hint(&self) -> Option<String> {
        Some("the table needs a header row and one row per case, comma-separated".into())
    }
}

/// A table of text cells.
#[derive(Debug, Clone, PartialEq)]
pub struct Table {
    /// Where it came from (for messages).
    pub path: PathBuf,
    /// Column names.
    pub header: Vec<String>,
    /// Rows (each as long as the header).
    pub rows: Vec<Vec<String>>,
}

fn split_line(line: &str) -> Result<Vec<String>, String> {
    let mut out = Vec::new();
    let mut cur = String::new();
    let mut quoted = false;
    let mut chars = line.chars().peekable();
    while let Some(c) = chars.next() {
        match (c, quoted) {
            ('"', true) if chars.peek() == Some(&'"') => {
                cur.push('"');
                chars.next();
            }
            ('"', true) => quoted = false,
            ('"', false) if cur.is_empty() => quoted = true,
            (',', false) => out.push(std::mem::take(&mut cur)),
            (ch, _) => cur.push(ch),
        }
    }
    if quoted {
        return Err("unterminated quote".into());
    }
    out.push(cur);
    Ok(out)
}

impl Table {
    /// Parses CSV text.
    pub fn parse(text: &str, path: &Path) -> Result<Table, TableError> {
        let fmt = |line: usize, problem: String| TableError::Format {
            path: path.to_path_buf(),
            line,
            problem,
        };
        let mut lines = text
            .lines()
            .enumerate()
            .map(|(i, l)| (i + 1, l.trim_end_matches('\r')));
        let (_, head) = lines
            .next()
            .ok_or_else(|| fmt(1, "the file is empty".into()))?;
        let header: Vec<String> = split_line(head)
            .map_err(|e| fmt(1, e))?
            .into_iter()
            .map(|h| h.trim().to_string())
            .collect();
        let mut seen = std::collections::BTreeSet::new();
        for h in &header {
            if !seen.insert(h) {
                return Err(fmt(1, format!("column '{h}' appears twice")));
            }
        }
        let mut rows = Vec::new();
        for (no, l) in lines {
            if l.trim().is_empty() {
                continue;
            }
            let cells = split_line(l).map_err(|e| fmt(no, e))?;
            if cells.len() != header.len() {
                return Err(fmt(
                    no,
                    format!("{} fields, the header has {}", cells.len(), header.len()),
                ));
            }
            rows.push(cells.into_iter().map(|c| c.trim().to_string()).collect());
        }
        Ok(Table {
            path: path.to_path_buf(),
            header,
            rows,
        })
    }

    /// Reads a CSV file.
    pub fn read(path: &Path) -> Result<Table, TableError> {
        let text = std::fs::read_to_string(path).map_err(|source| TableError::Read {
            path: path.to_path_buf(),
            source,
        })?;
        Table::parse(&text, path)
    }

    /// Index of a column.
    pub fn column_index(&self, name: &str) -> Result<usize, TableError> {
        self.header
            .iter()
            .position(|h| h == name)
            .ok_or_else(|| TableError::NoColumn {
                path: self.path.clone(),
                column: name.to_string(),
                available: self.header.join(", "),
            })
    }

    /// A column as numbers; empty cells and `NA` are `None`, anything else unparsable is an
    /// error naming the line.
    pub fn numeric(&self, name: &str) -> Result<Vec<Option<f64>>, TableError> {
        let j = self.column_index(name)?;
        self.rows
            .iter()
            .enumerate()
            .map(|(i, r)| {
                let c = r[j].as_str();
                if c.is_empty() || c == "NA" || c == "NaN" {
                    return Ok(None);
                }
                c.parse::<f64>()
                    .ok()
                    .filter(|v| v.is_finite())
                    .map(Some)
                    .ok_or_else(|| TableError::Format {
                        path: self.path.clone(),
                        line: i + 2,
                        problem: format!("column '{name}': '{c}' is not a number"),
                    })
            })
            .collect()
    }

    /// A column as numbers with no missing values allowed.
    pub fn numeric_complete(&self, name: &str) -> Result<Vec<f64>, TableError> {
        let v = self.numeric(name)?;
        v.iter()
            .enumerate()
            .map(|(i, x)| {
                x.ok_or_else(|| TableError::Format {
                    path: self.path.clone(),
                    line: i + 2,
                    problem: format!("column '{name}' is empty"),
                })
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_quotes_and_missing() {
        let t = Table::parse("\"a\",\"b,c\"\n1,\"x\"\"y\"\nNA,2\n", Path::new("t.csv"))
            .expect("parses");
        assert_eq!(t.header, vec!["a", "b,c"]);
        assert_eq!(t.rows[0][1], "x\"y");
        assert_eq!(t.numeric("a").expect("numeric"), vec![Some(1.0), None]);
        assert!(t.numeric("b,c").is_err());
        assert!(Table::parse("a,b\n1\n", Path::new("t.csv")).is_err());
    }
}
