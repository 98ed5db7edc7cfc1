//! `showfloor verify-draw RECORD.json`: re-checks a lucky-draw record offline and says OK or
//! what does not match.

use crate::draw::{self, DrawRecord};
use std::io::Read;
use std::path::Path;

/// The record reproduces.
pub const EXIT_OK: i32 = 0;
/// The record was read but does not reproduce.
pub const EXIT_MISMATCH: i32 = 1;
/// The record could not be read or is not a draw record.
pub const EXIT_UNREADABLE: i32 = 2;

/// Reads the record at `path` (`-` for stdin), verifies it, prints the verdict, and returns
/// the process exit code.
pub fn run(path: &Path) -> i32 {
    let name = if path.as_os_str() == "-" {
        "standard input".to_string()
    } else {
        path.display().to_string()
    };
    let text = match read(path) {
        Ok(text) => text,
        Err(e) => {
            eprintln!("showfloor verify-draw: cannot read {name}: {e}");
            return EXIT_UNREADABLE;
        }
    };
    let record: DrawRecord = match serde_json::from_str(&text) {
        Ok(record) => record,
        Err(e) => {
            eprintln!(
                "showfloor verify-draw: {name} is not a draw record (the JSON of GetDrawRecord's \
                 record_json): {e}"
            );
            return EXIT_UNREADABLE;
        }
    };
    let (code, report) = report(&record);
    print!("{report}");
    code
}

/// The exit code and the text to print for `record`.
pub fn report(record: &DrawRecord) -> (i32, String) {
    let problems = draw::verify(record);
    if problems.is_empty() {
        let text = format!(
            "OK: draw {} of room {}: {} entrants, winners {:?} reproduced from seed, entrants \
             hash and beacon\n",
            record.draw_id,
            record.room_id,
            record.entrants.len(),
            record.winners
        );
        return (EXIT_OK, text);
    }
    let mut text = String::from("MISMATCH\n");
    for problem in problems {
        text.push_str(&problem);
        text.push('\n');
    }
    (EXIT_MISMATCH, text)
}

fn read(path: &Path) -> std::io::Result<String> {
    if path.as_os_str() == "-" {
        let mut text = String::new();
        std::io::stdin().read_to_string(&mut text)?;
        Ok(text)
    } else {
        std::fs::read_to_string(path)
    }
}
