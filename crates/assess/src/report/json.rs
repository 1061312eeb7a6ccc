//! The JSON report: [`Report`] as it serialises, and read back for `--compare`.

use crate::model::{REPORT_FORMAT, Report};

/// Pretty JSON, with a trailing newline.
pub fn render(report: &Report) -> String {
    match serde_json::to_string_pretty(report) {
        Ok(mut s) => {
            s.push('\n');
            s
        }
        // Plain data of strings, numbers and maps cannot fail to serialise; say
        // so in the output rather than panic if that ever changes.
        Err(e) => format!("{{\"error\": \"cannot serialise the report: {e}\"}}\n"),
    }
}

/// Why an earlier report cannot be read.
#[derive(Debug, thiserror::Error)]
pub enum ReadError {
    /// Not a zt4ai assessment report.
    #[error("{name}: not a zt4ai assessment report: {message}")]
    Invalid {
        /// File name.
        name: String,
        /// What is wrong, with line and column.
        message: String,
    },
    /// A report format this version does not read.
    #[error("{name}: report format {found}, this zt4ai reads format {REPORT_FORMAT}")]
    Format {
        /// File name.
        name: String,
        /// The format found.
        found: u32,
    },
}

/// Reads an earlier JSON report.
pub fn read(text: &str, name: &str) -> Result<Report, ReadError> {
    let probe: serde_json::Value = serde_json::from_str(text).map_err(|e| ReadError::Invalid {
        name: name.to_owned(),
        message: e.to_string(),
    })?;
    let found = probe.get("format").and_then(serde_json::Value::as_u64);
    if let Some(f) = found
        && f != u64::from(REPORT_FORMAT)
    {
        return Err(ReadError::Format {
            name: name.to_owned(),
            found: u32::try_from(f).unwrap_or(u32::MAX),
        });
    }
    let de = &mut serde_json::Deserializer::from_str(text);
    serde_path_to_error::deserialize(de).map_err(|e| ReadError::Invalid {
        name: name.to_owned(),
        message: format!("at `{}`: {}", e.path(), e.inner()),
    })
}
