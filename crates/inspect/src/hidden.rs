//! Hidden text in HTML and Markdown. STUB (to be replaced).
