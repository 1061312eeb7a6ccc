//! Reports: JSON, Markdown, SARIF 2.1.0 and a self-contained HTML page.
