//! What every CSV we write goes through. A cell that starts with `=`, `+`, `-`, `@`, a tab or
//! a carriage return is a formula to Excel and LibreOffice (CSV injection): a client-chosen
//! `CONF` such as `=HYPERLINK(…)` would run in the vendor's spreadsheet. Such cells get a
//! leading `'`, which spreadsheets show as text and do not evaluate (the OWASP advice).

/// `text` as a CSV cell that no spreadsheet evaluates.
pub fn spreadsheet_safe(text: &str) -> String {
    if text.starts_with(['=', '+', '-', '@', '\t', '\r']) {
        format!("'{text}")
    } else {
        text.to_owned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formula_prefixes_are_neutralised() {
        for bad in ["=1+1", "+1", "-1", "@SUM(A1)", "\t=1", "\r=1"] {
            assert_eq!(spreadsheet_safe(bad), format!("'{bad}"));
        }
        for ok in ["УТ 11", "1.0.0.2", "", "a=b"] {
            assert_eq!(spreadsheet_safe(ok), ok);
        }
    }
}
